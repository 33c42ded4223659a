//! What an authentication method extracts from an Access-Request: the credential a source
//! verifies. Passwords and codes are revealed once per pipeline call into a [`PasswordBuf`] on
//! the stack, which is wiped when it goes out of scope.

use super::context::{Context, Request};
use super::mschap::MsChap;
use super::{Method, RejectReason};
use crate::policy::PolicyInput;
use crate::vocab::{AuthSource, MfaMode};

/// Room for a revealed User-Password (RFC 2865 §5.2: at most 128 octets), and for what an EAP
/// tunnel reveals during one call (allocated only when a tunnel needs it).
pub struct PasswordBuf {
    password: [u8; 128],
    tunnel: Option<Box<TunnelBuf>>,
}

impl PasswordBuf {
    pub fn new() -> PasswordBuf {
        PasswordBuf {
            password: [0; 128],
            tunnel: None,
        }
    }

    /// The buffer, to reveal a User-Password into.
    pub fn bytes(&mut self) -> &mut [u8; 128] {
        &mut self.password
    }

    /// The tunnel's room: its inner identity and password, the inner MS-CHAPv2 exchange, the
    /// EAP packet of the reply. Wiped when the call is done, like the password.
    pub fn tunnel(&mut self) -> &mut TunnelBuf {
        self.tunnel.get_or_insert_with(|| {
            Box::new(TunnelBuf {
                user: [0; 256],
                password: [0; 256],
                exchange: [0; 56],
                out: [0; TUNNEL_OUT],
                authorized: std::cell::Cell::new(None),
            })
        })
    }
}

/// Largest EAP packet a reply carries (a TLS fragment of at most 4000 octets and headers).
pub const TUNNEL_OUT: usize = 4096;

/// What an EAP tunnel reveals during one pipeline call, borrowed by the step it answers.
pub struct TunnelBuf {
    pub user: [u8; 256],
    pub password: [u8; 256],
    /// An inner MS-CHAPv2 exchange: authenticator challenge, peer challenge, NT-Response.
    pub exchange: [u8; 56],
    /// The EAP packet the reply carries.
    pub out: [u8; TUNNEL_OUT],
    /// Who the inner login authenticated, left by the pipeline when it accepts.
    pub authorized: std::cell::Cell<Option<super::second_factor::Pending>>,
}

impl Drop for TunnelBuf {
    fn drop(&mut self) {
        crate::proto::wipe(&mut self.user);
        crate::proto::wipe(&mut self.password);
        crate::proto::wipe(&mut self.exchange);
    }
}

impl Default for PasswordBuf {
    fn default() -> Self {
        PasswordBuf::new()
    }
}

impl Drop for PasswordBuf {
    fn drop(&mut self) {
        crate::proto::wipe(&mut self.password);
    }
}

/// How a request's User-Password was read before primary authentication. Its `Debug` leaves
/// out the code.
#[derive(Clone, Copy)]
pub enum PasswordRead<'c> {
    /// Not PAP: there is no User-Password to split (CHAP cannot carry a code).
    NotPap,
    /// All of it is the password (challenge mode, or no second factor).
    Whole,
    /// A combined `mfa_mode`: the password went to primary authentication, this is the code.
    /// In [`MfaMode::CodeOnly`] the NAS did the primary authentication and all of it is the
    /// code.
    Split(MfaMode, &'c [u8]),
}

/// The credential a method extracted. Its `Debug` leaves out passwords and responses.
#[derive(Clone, Copy)]
pub enum Credential<'c> {
    /// PAP: the password part of User-Password (`Err` when there is none to check: unreadable,
    /// or a combined mode that cannot hold a password and a code).
    Pap(Result<&'c [u8], RejectReason>),
    /// CHAP: the CHAP ident, response and challenge (`None`: CHAP-Password malformed).
    Chap(Option<(u8, &'c [u8; 16], &'c [u8])>),
    /// MS-CHAP v1 or v2 (`Err`: its attributes are malformed).
    MsChap(Result<MsChap<'c>, RejectReason>),
    /// None of User-Password, CHAP-Password, MS-CHAP(2)-Response.
    None,
}

impl std::fmt::Debug for PasswordRead<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PasswordRead::NotPap => f.write_str("NotPap"),
            PasswordRead::Whole => f.write_str("Whole"),
            PasswordRead::Split(mode, _) => write!(f, "Split({}, <code>)", mode.label()),
        }
    }
}

impl std::fmt::Debug for Credential<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Pap(Ok(_)) => f.write_str("Pap(<password>)"),
            Credential::Pap(Err(r)) => write!(f, "Pap(none: {})", r.label()),
            Credential::Chap(Some(_)) => f.write_str("Chap(<response>)"),
            Credential::Chap(None) => f.write_str("Chap(malformed)"),
            Credential::MsChap(Ok(m)) => write!(f, "MsChap({m:?})"),
            Credential::MsChap(Err(r)) => write!(f, "MsChap(none: {})", r.label()),
            Credential::None => f.write_str("None"),
        }
    }
}

impl<'c> Credential<'c> {
    /// The method the credential came by.
    pub fn method(&self) -> Option<Method> {
        match self {
            Credential::Pap(_) => Some(Method::Pap),
            Credential::Chap(_) => Some(Method::Chap),
            Credential::MsChap(Ok(m)) => Some(m.method()),
            // Malformed: still MS-CHAP by what it carried, so the reject names the method.
            Credential::MsChap(Err(_)) => None,
            Credential::None => None,
        }
    }

    /// The MS-CHAP exchange, if that is what this is.
    pub fn ms_chap(&self) -> Option<&MsChap<'c>> {
        match self {
            Credential::MsChap(Ok(m)) => Some(m),
            _ => None,
        }
    }
}

/// A request's credential and how its User-Password was read.
pub struct Extracted<'c> {
    pub credential: Credential<'c>,
    pub read: PasswordRead<'c>,
    /// The mode the request was read in (see [`read_mode`]).
    pub mode: MfaMode,
}

/// Reads the request's credential, revealing User-Password into `buf`; in a combined mode the
/// code is split off (only the password part reaches a source).
pub fn extract<'c>(ctx: &Context<'_>, r: &Request<'c>, buf: &'c mut PasswordBuf) -> Extracted<'c> {
    let method = Method::of(r.packet);
    let mode = read_mode(ctx, r, method);
    let (credential, read) = match method {
        Some(Method::Pap) => {
            let (password, read) = read_password(r, mode, buf.bytes());
            (Credential::Pap(password), read)
        }
        Some(Method::Chap) => (
            Credential::Chap(
                r.packet
                    .chap_password()
                    .map(|(ident, response)| (ident, response, r.packet.chap_challenge())),
            ),
            PasswordRead::NotPap,
        ),
        Some(m @ (Method::MsChap | Method::MsChapV2)) => (
            Credential::MsChap(MsChap::read(r.packet, m)),
            PasswordRead::NotPap,
        ),
        // EAP methods carry their credential inside EAP-Message (`auth::eap`).
        Some(Method::EapTls | Method::Peap | Method::Ttls) | None => {
            (Credential::None, PasswordRead::NotPap)
        }
    };
    Extracted {
        credential,
        read,
        mode,
    }
}

/// The mode this request's User-Password is read with, before primary authentication decides
/// which policy applies: see [`crate::policy::NetworkPolicies::read_mode`]. Without `[mfa]`
/// or policies, or for an exempt client, nothing is split.
pub fn read_mode(ctx: &Context<'_>, r: &Request<'_>, method: Option<Method>) -> MfaMode {
    let Some(mfa) = ctx.mfa else {
        return MfaMode::Challenge;
    };
    if ctx.policies.is_empty() || mfa.config.exempt_clients.iter().any(|c| c == r.client) {
        return MfaMode::Challenge;
    }
    ctx.policies.read_mode(&PolicyInput::from_request(
        r.packet,
        r.client,
        r.client_group,
        &[],
        method,
        AuthSource::Local,
    ))
}

/// Reads User-Password into `buf` and, in a combined mode, splits off the code: the password
/// part for primary authentication (or why there is none: `MfaBadCode` when the value cannot
/// hold a password and a code, which must then reach no directory), and how it was read.
fn read_password<'b>(
    r: &Request<'_>,
    mode: MfaMode,
    buf: &'b mut [u8; 128],
) -> (Result<&'b [u8], RejectReason>, PasswordRead<'b>) {
    let Ok(value) = r.packet.user_password(buf) else {
        return (Err(RejectReason::MalformedPassword), PasswordRead::Whole);
    };
    match mode.split(value) {
        Some((password, _)) if mode == MfaMode::Challenge => (Ok(password), PasswordRead::Whole),
        Some((password, code)) => (Ok(password), PasswordRead::Split(mode, code)),
        None => (
            Err(RejectReason::MfaBadCode),
            PasswordRead::Split(mode, &[]),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_shows_no_secret() {
        let shown = format!(
            "{:?} {:?} {:?}",
            Credential::Pap(Ok(b"hunter2")),
            PasswordRead::Split(MfaMode::PasswordCode, b"987654"),
            Credential::Chap(Some((1, &[0x41; 16], b"challenge"))),
        );
        assert!(
            !shown.contains("hunter2") && !shown.contains("987654"),
            "{shown}"
        );
        assert!(
            !shown.contains("65, 65") && !shown.contains("AAAA"),
            "{shown}"
        );
        let job = crate::auth::Job::Check {
            user: "alice".into(),
            code: "987654".into(),
            transaction_id: None,
        };
        let dir = crate::auth::Job::Directory {
            user: "bob",
            proof: crate::backend::Proof::Password(b"hunter2"),
        };
        let shown = format!("{job:?} {dir:?}");
        assert!(shown.contains("alice") && shown.contains("bob"), "{shown}");
        assert!(
            !shown.contains("987654") && !shown.contains("hunter2"),
            "{shown}"
        );
    }
}
