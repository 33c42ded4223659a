//! MS-CHAP v1 and v2 as authentication methods: the exchange read from an Access-Request,
//! its check against an NT hash, and what the reply carries for it (MS-CHAP2-Success and the
//! MPPE keys on accept, MS-CHAP-Error on reject). The crypto is in
//! [`crate::proto::crypto::mschap`]; this is what the pipeline makes of it.

use subtle::ConstantTimeEq;

use super::{Method, RejectReason};
use crate::proto::crypto::mschap::{
    self as m, MsChap2Response, MsChap2Success, MsChapChallenge, MsChapErrorCode, MsChapResponse,
    HASH_LEN, RESPONSE_LEN, V1_ERROR_LEN, V1_MPPE_KEYS_LEN, V2_ERROR_LEN,
};
pub use crate::proto::crypto::mschap::{NtHash, NtKey};
use crate::proto::{
    BuildError, PacketBuilder, Secret, Verified, MICROSOFT, MS_CHAP2_CPW, MS_CHAP2_RESPONSE,
    MS_CHAP2_SUCCESS, MS_CHAP_CHALLENGE, MS_CHAP_ERROR, MS_CHAP_RESPONSE, MS_MPPE_RECV_KEY,
    MS_MPPE_SEND_KEY,
};

/// MS-MPPE-Encryption-Policy (RFC 2548 §2.4.4) vendor type.
const MS_MPPE_ENCRYPTION_POLICY: u8 = 7;
/// MS-MPPE-Encryption-Types (RFC 2548 §2.4.5) vendor type.
const MS_MPPE_ENCRYPTION_TYPES: u8 = 8;
/// Encryption allowed (1), not required (2): the NAS and the client negotiate it.
const ENCRYPTION_ALLOWED: [u8; 4] = 1u32.to_be_bytes();
/// RC4 with 40-bit (2) or 128-bit (4) keys.
const RC4_40_OR_128: [u8; 4] = 6u32.to_be_bytes();

/// An MS-CHAP exchange as the NAS relayed it. Its `Debug` leaves out the response.
#[derive(Clone, Copy)]
pub enum MsChap<'c> {
    V1 {
        ident: u8,
        challenge: &'c [u8; 8],
        nt_response: &'c [u8; RESPONSE_LEN],
    },
    V2 {
        ident: u8,
        authenticator_challenge: &'c [u8; 16],
        peer_challenge: &'c [u8; 16],
        nt_response: &'c [u8; RESPONSE_LEN],
    },
}

impl std::fmt::Debug for MsChap<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MsChap::V1 { ident, .. } => write!(f, "MsChap::V1(ident {ident}, <response>)"),
            MsChap::V2 { ident, .. } => write!(f, "MsChap::V2(ident {ident}, <response>)"),
        }
    }
}

impl<'c> MsChap<'c> {
    /// Reads the exchange of `method` (v1 or v2) from the request.
    pub fn read(packet: &Verified<'c>, method: Method) -> Result<MsChap<'c>, RejectReason> {
        let bad = |_| RejectReason::MalformedMsChap;
        let challenge = packet
            .vendor_attr(MICROSOFT, MS_CHAP_CHALLENGE)
            .ok_or(RejectReason::MalformedMsChap)?;
        match (method, MsChapChallenge::parse(challenge).map_err(bad)?) {
            (Method::MsChapV2, MsChapChallenge::V2(authenticator_challenge)) => {
                let Some(value) = packet.vendor_attr(MICROSOFT, MS_CHAP2_RESPONSE) else {
                    return Err(match packet.vendor_attr(MICROSOFT, MS_CHAP2_CPW) {
                        Some(_) => RejectReason::PasswordChangeUnsupported,
                        None => RejectReason::MalformedMsChap,
                    });
                };
                let r = MsChap2Response::parse(value).map_err(bad)?;
                Ok(MsChap::V2 {
                    ident: r.ident,
                    authenticator_challenge,
                    peer_challenge: r.peer_challenge,
                    nt_response: r.nt_response,
                })
            }
            (Method::MsChap, MsChapChallenge::V1(challenge)) => {
                let value = packet
                    .vendor_attr(MICROSOFT, MS_CHAP_RESPONSE)
                    .ok_or(RejectReason::MalformedMsChap)?;
                let r = MsChapResponse::parse(value).map_err(bad)?;
                // Only the LM-Response: LM hashes are not supported (broken beyond use).
                if !r.uses_nt_response() {
                    return Err(RejectReason::MalformedMsChap);
                }
                Ok(MsChap::V1 {
                    ident: r.ident,
                    challenge,
                    nt_response: r.nt_response,
                })
            }
            _ => Err(RejectReason::MalformedMsChap),
        }
    }

    /// The MS-CHAP-Error refusing a password change (MS-CHAP2-CPW, RFC 2548 §2.3.4: Code 7,
    /// then the Ident): E=709. Password changes are not offered: a user whose password
    /// expired is told so (E=648) and changes it elsewhere.
    pub fn change_refused(packet: &Verified<'_>) -> Option<MethodReply> {
        let cpw = packet.vendor_attr(MICROSOFT, MS_CHAP2_CPW)?;
        let ident = *cpw.get(1)?;
        let challenge = packet.vendor_attr(MICROSOFT, MS_CHAP_CHALLENGE)?;
        let MsChapChallenge::V2(challenge) = MsChapChallenge::parse(challenge).ok()? else {
            return None;
        };
        Some(MethodReply::MsChap2Error(m::ms_chap2_error(
            ident,
            MsChapErrorCode::ChangingPassword,
            false,
            challenge,
        )))
    }

    pub fn method(&self) -> Method {
        match self {
            MsChap::V1 { .. } => Method::MsChap,
            MsChap::V2 { .. } => Method::MsChapV2,
        }
    }

    pub fn ident(&self) -> u8 {
        match self {
            MsChap::V1 { ident, .. } | MsChap::V2 { ident, .. } => *ident,
        }
    }

    pub fn nt_response(&self) -> &'c [u8; RESPONSE_LEN] {
        match self {
            MsChap::V1 { nt_response, .. } | MsChap::V2 { nt_response, .. } => nt_response,
        }
    }

    /// The eight octets the NT-Response is the DES answer to: v1's challenge itself; v2's
    /// ChallengeHash over both challenges and the user name as the peer hashed it (without a
    /// `DOMAIN\` prefix, RFC 2759 §4). Both versions then check the same way, which is what
    /// lets a directory or winbind verify either.
    pub fn challenge(&self, user_name: &[u8]) -> [u8; 8] {
        match self {
            MsChap::V1 { challenge, .. } => **challenge,
            MsChap::V2 {
                authenticator_challenge,
                peer_challenge,
                ..
            } => m::challenge_hash(
                peer_challenge,
                authenticator_challenge,
                m::strip_domain(user_name),
            ),
        }
    }

    /// Whether the response was computed from `nt_hash` (constant time).
    pub fn verify(&self, user_name: &[u8], nt_hash: &NtHash) -> bool {
        let expected = m::challenge_response(&self.challenge(user_name), &nt_hash.0);
        bool::from(expected.ct_eq(self.nt_response()))
    }

    /// What an Access-Accept carries for this exchange, from the user's NT key.
    pub fn accepted(&self, user_name: &[u8], nt_key: &NtKey) -> MethodReply {
        match self {
            MsChap::V1 { .. } => MethodReply::MsChapKeys(m::v1_mppe_keys(None, &nt_key.0)),
            MsChap::V2 {
                ident,
                authenticator_challenge,
                peer_challenge,
                nt_response,
            } => {
                let success = MsChap2Success {
                    ident: *ident,
                    authenticator_response: m::authenticator_response(
                        &nt_key.0,
                        nt_response,
                        peer_challenge,
                        authenticator_challenge,
                        m::strip_domain(user_name),
                    ),
                };
                let keys = m::server_mppe_keys(&nt_key.0, nt_response);
                MethodReply::MsChap2Success {
                    success: success.to_bytes(),
                    send: keys.send,
                    recv: keys.recv,
                }
            }
        }
    }

    /// What an Access-Reject carries for this exchange: MS-CHAP-Error with the code for
    /// `why`. No retry (R=0): a retry would need a new challenge, which only the NAS picks.
    pub fn rejected(&self, why: RejectReason) -> MethodReply {
        let code = error_code(why);
        match self {
            MsChap::V1 { ident, .. } => {
                MethodReply::MsChapError(m::ms_chap_error_v1(*ident, code, false))
            }
            MsChap::V2 {
                ident,
                authenticator_challenge,
                ..
            } => MethodReply::MsChap2Error(m::ms_chap2_error(
                *ident,
                code,
                false,
                authenticator_challenge,
            )),
        }
    }
}

/// The MS-CHAP error code the peer is told for a reject (RFC 2759 §6, as NPS reports them).
pub fn error_code(why: RejectReason) -> MsChapErrorCode {
    match why {
        RejectReason::LogonRestricted => MsChapErrorCode::RestrictedLogonHours,
        RejectReason::AccountDisabled
        | RejectReason::AccountLocked
        | RejectReason::AccountExpired => MsChapErrorCode::AccountDisabled,
        RejectReason::PasswordExpired | RejectReason::PasswordMustChange => {
            MsChapErrorCode::PasswordExpired
        }
        // NPS answers a login its network policies refuse with "no dial-in permission".
        RejectReason::PolicyReject => MsChapErrorCode::NoDialinPermission,
        _ => MsChapErrorCode::AuthenticationFailure,
    }
}

/// What a reply carries for its method beyond the policies' attributes. Its `Debug` leaves
/// out the keys.
#[derive(Clone, Copy)]
pub enum MethodReply {
    /// v2 accept: MS-CHAP2-Success and the MPPE key pair (RFC 3079 §3).
    MsChap2Success {
        success: [u8; MsChap2Success::LEN],
        send: [u8; HASH_LEN],
        recv: [u8; HASH_LEN],
    },
    /// v1 accept: MS-CHAP-MPPE-Keys (RFC 2548 §2.4.1).
    MsChapKeys([u8; V1_MPPE_KEYS_LEN]),
    /// v2 reject: MS-CHAP-Error with `C=` and `V=3`.
    MsChap2Error([u8; V2_ERROR_LEN]),
    /// v1 reject: MS-CHAP-Error.
    MsChapError([u8; V1_ERROR_LEN]),
    /// EAP accept: EAP-Success and the MPPE keys from the MSK (RFC 5216 §2.3: Recv-Key its
    /// first 32 octets, Send-Key the next 32).
    EapSuccess { identifier: u8, msk: [u8; 64] },
    /// EAP reject: EAP-Failure.
    EapFailure { identifier: u8 },
}

impl std::fmt::Debug for MethodReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MethodReply::MsChap2Success { .. } => f.write_str("MsChap2Success(<keys>)"),
            MethodReply::MsChapKeys(_) => f.write_str("MsChapKeys(<keys>)"),
            MethodReply::MsChap2Error(e) => write!(f, "MsChap2Error({:?})", error_text(e)),
            MethodReply::MsChapError(e) => write!(f, "MsChapError({:?})", error_text(e)),
            MethodReply::EapSuccess { identifier, .. } => {
                write!(f, "EapSuccess({identifier}, <keys>)")
            }
            MethodReply::EapFailure { identifier } => write!(f, "EapFailure({identifier})"),
        }
    }
}

/// The `E=… R=…` text after the Ident octet.
fn error_text(value: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(value.get(1..).unwrap_or_default())
}

impl MethodReply {
    /// Appends the method's attributes; the MPPE keys are encrypted with the request's
    /// authenticator (a fresh random salt each).
    pub fn apply(&self, b: &mut PacketBuilder<'_, '_>, s: &Secret) -> Result<(), BuildError> {
        let mppe_policy = |b: &mut PacketBuilder<'_, '_>| {
            b.vsa(MICROSOFT, MS_MPPE_ENCRYPTION_POLICY, &ENCRYPTION_ALLOWED)?;
            b.vsa(MICROSOFT, MS_MPPE_ENCRYPTION_TYPES, &RC4_40_OR_128)
        };
        match self {
            MethodReply::MsChap2Success {
                success,
                send,
                recv,
            } => {
                b.vsa(MICROSOFT, MS_CHAP2_SUCCESS, success)?;
                b.mppe_key(s, MS_MPPE_SEND_KEY, rand::random(), send)?;
                b.mppe_key(s, MS_MPPE_RECV_KEY, rand::random(), recv)?;
                mppe_policy(b)
            }
            MethodReply::MsChapKeys(keys) => {
                b.ms_chap_mppe_keys(s, keys)?;
                mppe_policy(b)
            }
            MethodReply::MsChap2Error(e) => b.vsa(MICROSOFT, MS_CHAP_ERROR, e),
            MethodReply::MsChapError(e) => b.vsa(MICROSOFT, MS_CHAP_ERROR, e),
            MethodReply::EapSuccess { identifier, msk } => {
                b.eap_message(&crate::proto::eap::result_packet(true, *identifier))?;
                b.mppe_key(s, MS_MPPE_RECV_KEY, rand::random(), &msk[..32])?;
                b.mppe_key(s, MS_MPPE_SEND_KEY, rand::random(), &msk[32..])
            }
            MethodReply::EapFailure { identifier } => {
                b.eap_message(&crate::proto::eap::result_packet(false, *identifier))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_say_why() {
        use MsChapErrorCode as E;
        for (why, code) in [
            (RejectReason::BadPassword, E::AuthenticationFailure),
            (RejectReason::UnknownUser, E::AuthenticationFailure),
            (RejectReason::AccountLocked, E::AccountDisabled),
            (RejectReason::AccountDisabled, E::AccountDisabled),
            (RejectReason::PasswordExpired, E::PasswordExpired),
            (RejectReason::PasswordMustChange, E::PasswordExpired),
            (RejectReason::LogonRestricted, E::RestrictedLogonHours),
            (RejectReason::PolicyReject, E::NoDialinPermission),
        ] {
            assert_eq!(error_code(why), code, "{why:?}");
        }
    }

    #[test]
    fn debug_shows_no_key_or_response() {
        let key = NtKey([0x41; 16]);
        let reply = MethodReply::MsChap2Success {
            success: [0x42; MsChap2Success::LEN],
            send: [0x43; 16],
            recv: [0x44; 16],
        };
        let resp = [0x45; 24];
        let ex = MsChap::V1 {
            ident: 7,
            challenge: &[0x46; 8],
            nt_response: &resp,
        };
        let shown = format!("{key:?} {reply:?} {ex:?}");
        for b in [
            "65", "66", "67", "68", "69", "70", "AAAA", "BBBB", "CCCC", "DDDD",
        ] {
            assert!(!shown.contains(b), "{shown}");
        }
    }
}
