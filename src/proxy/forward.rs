//! The proxied request and its reply, on the wire.
//!
//! Forward ([`forward_request`]): a verified NAS request becomes the home server's request.
//! Its attributes are copied in order, except that User-Name is rewritten per the route,
//! User-Password is revealed with the NAS's secret and hidden again under the home server's
//! secret and our Request Authenticator, CHAP gets an explicit CHAP-Challenge when it used
//! the NAS's Request Authenticator as its challenge (ours differs), the NAS's
//! Message-Authenticator is replaced by ours (first, as BlastRADIUS guidance asks, and on
//! every proxied Access-Request), and our own 8-octet Proxy-State goes last. MS-CHAP,
//! EAP-Message and the rest are not hidden with the Request Authenticator and pass as is.
//! A request that already carries more than `max_proxy_states` Proxy-States has been
//! through too many proxies: most likely a loop, and it is refused.
//!
//! Back ([`verify_reply`], then [`relay_reply`]): the home server's reply must carry the
//! expected code and Identifier, a Message-Authenticator (Access replies), a Response
//! Authenticator and Message-Authenticator that verify against our Request Authenticator
//! and the home server's secret, and our Proxy-State. Then the NAS's reply is built: the
//! attributes copied in order without our Proxy-State, the attributes hidden with the
//! Request Authenticator (Tunnel-Password, MS-MPPE-Send/Recv-Key, MS-CHAP-MPPE-Keys)
//! decrypted and encrypted again for the NAS, the NAS's Proxy-States in the order of its
//! request, and the packet signed with the NAS's secret.
//!
//! [`status_check`] builds the Status-Server probe of a zombie or dead home server; its
//! answer goes through [`verify_reply`] too.
//!
//! Everything works in caller buffers; nothing allocates.

use crate::proto::crypto::user_password;
use crate::proto::hidden::{transcribe, Hiding, Md5Sink};
use crate::proto::{
    verify_response, Attribute, BuildError, Code, CryptoError, DecodeError, Packet, PacketBuilder,
    Secret, Verified, VerifyError, AUTH_LEN, CHAP_CHALLENGE, CHAP_PASSWORD,
    CHARGEABLE_USER_IDENTITY, MESSAGE_AUTHENTICATOR, OPERATOR_NAME, PROXY_STATE, USER_NAME,
    USER_PASSWORD,
};

/// Length of our Proxy-State value: it names the outstanding entry (the caller chooses
/// the octets, e.g. a shard number, the slot, the identifier and a per-entry counter).
pub const PROXY_STATE_LEN: usize = 8;
/// Proxy-States a request may already carry before we call it a loop. In eduroam the
/// longest legitimate path (institution, national, top-level, national proxy, then the
/// identity provider) reaches the last proxy with three; one more is slack, not a path.
pub const DEFAULT_MAX_PROXY_STATES: usize = 4;

/// The home server side of one forwarded request.
#[derive(Clone, Copy, Debug)]
pub struct Upstream<'h> {
    /// The secret shared with the home server.
    pub secret: &'h Secret,
    /// The Identifier from [`super::ids::IdTable::allocate`].
    pub identifier: u8,
    /// A fresh unpredictable Request Authenticator (Access-Request; ignored for
    /// Accounting-Request, whose authenticator is computed).
    pub authenticator: [u8; AUTH_LEN],
    /// Our Proxy-State value.
    pub proxy_state: [u8; PROXY_STATE_LEN],
}

/// What must be kept of a forwarded request to check and relay its reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sent {
    pub code: Code,
    pub identifier: u8,
    /// The Request Authenticator as sent (computed, for Accounting-Request).
    pub authenticator: [u8; AUTH_LEN],
    pub proxy_state: [u8; PROXY_STATE_LEN],
}

/// Why a request is not forwarded.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum ForwardError {
    /// RFC 5997 §4: Status-Server is about this server, and is never proxied.
    #[error("Status-Server is answered here, never proxied")]
    StatusServer,
    /// Only Access- and Accounting-Requests are proxied.
    #[error("{0} is not proxied")]
    NotProxied(Code),
    /// More Proxy-States than allowed: the request is probably looping between proxies.
    #[error("request carries {count} Proxy-State attributes, more than the {max} allowed")]
    Loop { count: usize, max: usize },
    /// The NAS's User-Password does not decrypt (bad length).
    #[error("User-Password: {0}")]
    UserPassword(CryptoError),
    #[error("building the proxied request: {0}")]
    Build(#[from] BuildError),
}

impl ForwardError {
    /// Stable metrics label.
    pub const fn label(&self) -> &'static str {
        match self {
            ForwardError::StatusServer => "status_server_not_proxied",
            ForwardError::NotProxied(_) => "code_not_proxied",
            ForwardError::Loop { .. } => "proxy_loop",
            ForwardError::UserPassword(_) => "bad_user_password",
            ForwardError::Build(e) => e.label(),
        }
    }
}

/// What every forwarded request gets, whichever home server it goes to (`[proxy]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardRules {
    /// More Proxy-States than this on a NAS request is a loop.
    pub max_proxy_states: usize,
    /// RFC 5580 Operator-Name (namespace digit then the name, `1example.edu`) added to
    /// requests that do not carry one: eduroam's home servers log the visited site by it.
    pub operator_name: Option<Box<[u8]>>,
    /// Whether an Access-Request without Chargeable-User-Identity gets one holding a single
    /// NUL (RFC 4372 §2.1: the NAS side asks the home server for the user's CUI).
    pub request_cui: bool,
}

impl ForwardRules {
    /// Only a loop limit: nothing added.
    pub fn with_max_proxy_states(max_proxy_states: usize) -> Self {
        ForwardRules {
            max_proxy_states,
            operator_name: None,
            request_cui: false,
        }
    }
}

impl Default for ForwardRules {
    fn default() -> Self {
        ForwardRules::with_max_proxy_states(DEFAULT_MAX_PROXY_STATES)
    }
}

/// Builds the home server's request from `nas` into `buf`.
///
/// `user_name` replaces the NAS's User-Name (the route's stripped name; `None` keeps it).
/// Returns the packet's bytes and what [`verify_reply`] needs later.
pub fn forward_request<'b>(
    nas: &Verified<'_>,
    user_name: Option<&[u8]>,
    upstream: &Upstream<'_>,
    rules: &ForwardRules,
    buf: &'b mut [u8],
) -> Result<(&'b [u8], Sent), ForwardError> {
    let max_proxy_states = rules.max_proxy_states;
    let code = nas.code();
    match code {
        Code::AccessRequest | Code::AccountingRequest => {}
        Code::StatusServer => return Err(ForwardError::StatusServer),
        other => return Err(ForwardError::NotProxied(other)),
    }
    let count = nas.attributes().filter(|a| a.typ == PROXY_STATE).count();
    if count > max_proxy_states {
        return Err(ForwardError::Loop {
            count,
            max: max_proxy_states,
        });
    }
    let mut b = PacketBuilder::request(buf, code, upstream.identifier, &upstream.authenticator)?;
    if code == Code::AccessRequest {
        b.message_authenticator()?;
    }
    let has_chap_challenge = nas.attr(CHAP_CHALLENGE).is_some();
    let mut user_name_done = false;
    for a in nas.attributes() {
        match a.typ {
            // Ours is in place already; the NAS's was keyed with its secret.
            MESSAGE_AUTHENTICATOR => {}
            USER_NAME => {
                // RFC 2865 allows one User-Name; a second is dropped rather than forwarded
                // unrewritten next to the rewritten first.
                if !user_name_done {
                    b.attr(USER_NAME, user_name.unwrap_or(a.value))?;
                    user_name_done = true;
                }
            }
            USER_PASSWORD if code == Code::AccessRequest => {
                let mut plain = [0u8; user_password::MAX_LEN];
                let revealed =
                    user_password::unhide(nas.secret(), nas.authenticator(), a.value, &mut plain)
                        .map_err(ForwardError::UserPassword);
                let result =
                    revealed.and_then(|p| b.user_password(upstream.secret, p).map_err(Into::into));
                crate::proto::wipe(&mut plain);
                result?;
            }
            CHAP_PASSWORD if !has_chap_challenge => {
                // RFC 2865 §5.3: without CHAP-Challenge the challenge is the Request
                // Authenticator, which is ours upstream; carry the NAS's explicitly.
                b.attr(CHAP_PASSWORD, a.value)?;
                b.attr(CHAP_CHALLENGE, nas.authenticator())?;
            }
            typ => b.attr(typ, a.value)?,
        }
    }
    if let Some(op) = rules.operator_name.as_deref() {
        if nas.attr(OPERATOR_NAME).is_none() {
            b.attr(OPERATOR_NAME, op)?;
        }
    }
    if rules.request_cui
        && code == Code::AccessRequest
        && nas.attr(CHARGEABLE_USER_IDENTITY).is_none()
    {
        b.attr(CHARGEABLE_USER_IDENTITY, &[0])?;
    }
    b.attr(PROXY_STATE, &upstream.proxy_state)?;
    let bytes = b.finish(upstream.secret)?;
    let mut authenticator = [0u8; AUTH_LEN];
    if let Some(a) = bytes.get(4..4 + AUTH_LEN) {
        authenticator.copy_from_slice(a);
    }
    Ok((
        bytes,
        Sent {
            code,
            identifier: upstream.identifier,
            authenticator,
            proxy_state: upstream.proxy_state,
        },
    ))
}

/// Builds a Status-Server check (RFC 5997) for [`super::home::HomeServer`]'s probing. It
/// carries the mandatory Message-Authenticator and no Proxy-State (it is about the next hop
/// only, never forwarded); its answer is checked by [`verify_reply`] like any other, with
/// `upstream.proxy_state` unused.
pub fn status_check<'b>(
    upstream: &Upstream<'_>,
    buf: &'b mut [u8],
) -> Result<(&'b [u8], Sent), BuildError> {
    let b = PacketBuilder::request(
        buf,
        Code::StatusServer,
        upstream.identifier,
        &upstream.authenticator,
    )?;
    let bytes = b.finish(upstream.secret)?;
    Ok((
        bytes,
        Sent {
            code: Code::StatusServer,
            identifier: upstream.identifier,
            authenticator: upstream.authenticator,
            proxy_state: upstream.proxy_state,
        },
    ))
}

/// Why a home server's reply is refused. Each is counted apart: a bad authenticator is a
/// wrong secret or a forgery, a missing Proxy-State a broken home server, a wrong code or
/// Identifier a stray packet.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum ReplyError {
    #[error("malformed reply: {0}")]
    Decode(DecodeError),
    #[error("reply code {reply} does not answer {request}")]
    UnexpectedCode { request: Code, reply: Code },
    #[error("reply Identifier {got} is not the request's {expected}")]
    WrongIdentifier { expected: u8, got: u8 },
    /// Required on replies to a proxied Access-Request (BlastRADIUS) and to Status-Server
    /// (RFC 5997 §3) by the home server's [`ReplyMaRule`].
    #[error("reply lacks a Message-Authenticator")]
    MissingMessageAuthenticator,
    #[error("reply's Message-Authenticator does not verify")]
    BadMessageAuthenticator,
    #[error("reply's Response Authenticator does not verify")]
    BadResponseAuthenticator,
    /// RFC 2865 §5.33: a server must return every Proxy-State unmodified.
    #[error("reply lacks our Proxy-State")]
    MissingProxyState,
}

impl ReplyError {
    /// Stable metrics label.
    pub const fn label(&self) -> &'static str {
        match self {
            ReplyError::Decode(e) => e.label(),
            ReplyError::UnexpectedCode { .. } => "unexpected_code",
            ReplyError::WrongIdentifier { .. } => "wrong_identifier",
            ReplyError::MissingMessageAuthenticator => "missing_message_authenticator",
            ReplyError::BadMessageAuthenticator => "bad_message_authenticator",
            ReplyError::BadResponseAuthenticator => "bad_response_authenticator",
            ReplyError::MissingProxyState => "missing_proxy_state",
        }
    }
}

/// A home server's reply that passed [`verify_reply`].
#[derive(Clone, Copy, Debug)]
pub struct HomeReply<'a> {
    packet: Packet<'a>,
    /// Attribute index of our Proxy-State (the last one carrying our value).
    ours: usize,
}

impl<'a> HomeReply<'a> {
    /// Whether it carried a (verified) Message-Authenticator.
    pub fn signed(&self) -> bool {
        self.packet.message_authenticator_offset().is_some()
    }

    pub fn code(&self) -> Code {
        self.packet.code()
    }

    pub fn packet(&self) -> &Packet<'a> {
        &self.packet
    }

    /// The reply's attributes in order, without the Message-Authenticator and without our
    /// Proxy-State: what the NAS is to see (the NAS's own Proxy-States included).
    pub fn attributes(&self) -> impl Iterator<Item = Attribute<'a>> {
        let ours = self.ours;
        self.packet
            .attributes()
            .enumerate()
            .filter(move |(i, a)| *i != ours && a.typ != MESSAGE_AUTHENTICATOR)
            .map(|(_, a)| a)
    }

    /// The Proxy-States the home server returned other than ours, in order.
    pub fn nas_proxy_states(&self) -> impl Iterator<Item = &'a [u8]> {
        self.attributes()
            .filter(|a| a.typ == PROXY_STATE)
            .map(|a| a.value)
    }
}

fn answers(request: Code, reply: Code) -> bool {
    match request {
        Code::AccessRequest => matches!(
            reply,
            Code::AccessAccept | Code::AccessReject | Code::AccessChallenge
        ),
        Code::AccountingRequest => reply == Code::AccountingResponse,
        // RFC 5997 §3: Access-Accept on an authentication port, Accounting-Response on an
        // accounting port.
        Code::StatusServer => matches!(reply, Code::AccessAccept | Code::AccountingResponse),
        _ => false,
    }
}

/// Whether a home server's replies to Access-Request and Status-Server must carry a
/// Message-Authenticator (`require_message_authenticator`). One that is present is always
/// verified; the rule only decides whether one that is absent is refused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReplyMaRule {
    /// Always (BlastRADIUS-safe; home servers from FreeRADIUS 3.2.5 on, radshard).
    Require,
    /// Required from the first reply that carries one on (FreeRADIUS's `auto`): a home
    /// server that signs once is never again trusted unsigned, one too old to sign at all
    /// (FreeRADIUS before 3.2.5) still works.
    #[default]
    Auto,
    /// Never required.
    Optional,
}

/// Checks a home server's reply to the request described by `sent`; `ma_required` says
/// whether an Access reply without Message-Authenticator is refused ([`ReplyMaRule`]).
pub fn verify_reply<'a>(
    datagram: &'a [u8],
    sent: &Sent,
    home_secret: &Secret,
    ma_required: bool,
) -> Result<HomeReply<'a>, ReplyError> {
    let packet = Packet::parse(datagram).map_err(ReplyError::Decode)?;
    if !answers(sent.code, packet.code()) {
        return Err(ReplyError::UnexpectedCode {
            request: sent.code,
            reply: packet.code(),
        });
    }
    if packet.identifier() != sent.identifier {
        return Err(ReplyError::WrongIdentifier {
            expected: sent.identifier,
            got: packet.identifier(),
        });
    }
    let access = matches!(sent.code, Code::AccessRequest | Code::StatusServer);
    if access && ma_required && packet.message_authenticator_offset().is_none() {
        return Err(ReplyError::MissingMessageAuthenticator);
    }
    verify_response(&packet, &sent.authenticator, home_secret).map_err(|e| match e {
        VerifyError::BadMessageAuthenticator => ReplyError::BadMessageAuthenticator,
        VerifyError::MissingMessageAuthenticator => ReplyError::MissingMessageAuthenticator,
        // NotAResponse cannot happen after `answers`; a failed MD5 is the rest.
        _ => ReplyError::BadResponseAuthenticator,
    })?;
    if sent.code == Code::StatusServer {
        // No Proxy-State was sent; no attribute is ours.
        return Ok(HomeReply {
            packet,
            ours: usize::MAX,
        });
    }
    let ours = packet
        .attributes()
        .enumerate()
        .filter(|(_, a)| a.typ == PROXY_STATE && a.value == sent.proxy_state)
        .map(|(i, _)| i)
        .last()
        .ok_or(ReplyError::MissingProxyState)?;
    Ok(HomeReply { packet, ours })
}

pub use crate::proto::hidden::HiddenAttribute;
/// Why a verified reply could not be relayed to the NAS: a hidden attribute that does not
/// reveal with the home server's secret, a malformed Microsoft VSA, or the NAS's reply
/// overflowing.
pub use crate::proto::hidden::TranscribeError as RelayError;

/// Builds the NAS's reply from a verified home server reply, signed with the NAS's secret.
///
/// The NAS's Proxy-States come from its request (the builder appends them, in order), not
/// from the home server's copies: the NAS matches on what it sent, whatever a home server
/// did to them.
pub fn relay_reply<'b>(
    reply: &HomeReply<'_>,
    sent: &Sent,
    home_secret: &Secret,
    nas: &Verified<'_>,
    buf: &'b mut [u8],
) -> Result<&'b [u8], RelayError> {
    let mut b = PacketBuilder::reply(buf, reply.code(), nas)?;
    relay_attributes(&mut b, reply, sent, home_secret, nas.secret(), |_| true)?;
    Ok(b.finish(nas.secret())?)
}

/// Appends a verified home server reply's attributes to the NAS's reply in `b`: hidden ones
/// re-encrypted from `home_secret` to `nas_secret`, those `keep` refuses (by type) left out,
/// and never our Proxy-State or the home server's copies of the NAS's (the builder adds the
/// NAS's own), nor its Message-Authenticator (the builder adds ours).
pub fn relay_attributes(
    b: &mut PacketBuilder<'_, '_>,
    reply: &HomeReply<'_>,
    sent: &Sent,
    home_secret: &Secret,
    nas_secret: &Secret,
    keep: impl Fn(u8) -> bool,
) -> Result<(), RelayError> {
    let from = Hiding::Md5 {
        secret: home_secret,
        authenticator: &sent.authenticator,
    };
    let attributes = reply
        .attributes()
        .filter(|a| a.typ != PROXY_STATE && keep(a.typ));
    transcribe(
        attributes,
        from,
        &mut Md5Sink {
            builder: b,
            secret: nas_secret,
        },
    )
}

/// A reply [`verify_reply`] accepted earlier, parsed again where it is relayed (another
/// thread: the engine hands on the bytes). `None` if it is not that reply.
pub fn trusted_reply<'a>(datagram: &'a [u8], sent: &Sent) -> Option<HomeReply<'a>> {
    let packet = Packet::parse(datagram).ok()?;
    if packet.identifier() != sent.identifier || !answers(sent.code, packet.code()) {
        return None;
    }
    let ours = packet
        .attributes()
        .enumerate()
        .filter(|(_, a)| a.typ == PROXY_STATE && a.value == sent.proxy_state)
        .map(|(i, _)| i)
        .last()?;
    Some(HomeReply { packet, ours })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::crypto::mppe;
    use crate::proto::{verify_request, CALLING_STATION_ID, MAX_PACKET_LEN, REPLY_MESSAGE, STATE};
    use crate::proto::{
        MICROSOFT, MS_CHAP_MPPE_KEYS, MS_MPPE_RECV_KEY, MS_MPPE_SEND_KEY, TUNNEL_PASSWORD,
        VENDOR_SPECIFIC,
    };

    fn secret(s: &str) -> Secret {
        Secret::new(s).expect("non-empty")
    }

    const NAS_AUTH: [u8; 16] = [0x11; 16];
    const OUR_AUTH: [u8; 16] = [0x22; 16];
    const OUR_PS: [u8; 8] = *b"rs\x00\x01\x00\x07\x00\x2a";

    struct Nas {
        secret: Secret,
        bytes: Vec<u8>,
    }

    impl Nas {
        fn verified(&self) -> Verified<'_> {
            let p = Packet::parse(&self.bytes).expect("parses");
            verify_request(p, &self.secret, false).expect("verifies")
        }
    }

    /// An Access-Request from the NAS with the given Proxy-States and password.
    fn nas_request(proxy_states: &[&[u8]], password: Option<&[u8]>, chap: bool) -> Nas {
        let s = secret("nas-secret");
        let mut buf = [0u8; MAX_PACKET_LEN];
        let mut b =
            PacketBuilder::request(&mut buf, Code::AccessRequest, 7, &NAS_AUTH).expect("ok");
        b.message_authenticator().expect("ok");
        b.attr(USER_NAME, b"bob@partner.edu").expect("ok");
        if let Some(pw) = password {
            b.user_password(&s, pw).expect("ok");
        }
        if chap {
            b.attr(CHAP_PASSWORD, &[5; 17]).expect("ok");
        }
        b.attr(CALLING_STATION_ID, b"02-00-00-00-00-01")
            .expect("ok");
        for ps in proxy_states {
            b.attr(PROXY_STATE, ps).expect("ok");
        }
        let bytes = b.finish(&s).expect("ok").to_vec();
        Nas { secret: s, bytes }
    }

    fn upstream(home: &Secret) -> Upstream<'_> {
        Upstream {
            secret: home,
            identifier: 200,
            authenticator: OUR_AUTH,
            proxy_state: OUR_PS,
        }
    }

    /// [`forward_request`] with the default rules and [`upstream`]`(home)`.
    fn forward<'b>(
        nas: &Verified<'_>,
        user_name: Option<&[u8]>,
        home: &Secret,
        buf: &'b mut [u8],
    ) -> Result<(&'b [u8], Sent), ForwardError> {
        forward_request(
            nas,
            user_name,
            &upstream(home),
            &ForwardRules::default(),
            buf,
        )
    }

    fn attrs(bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
        Packet::parse(bytes)
            .expect("parses")
            .attributes()
            .map(|a| (a.typ, a.value.to_vec()))
            .collect()
    }

    /// The home server: verifies our request with its secret and answers it (the builder
    /// copies every Proxy-State of the request, ours included, as a server must).
    fn home_reply(
        forwarded: &[u8],
        home: &Secret,
        code: Code,
        add: impl FnOnce(&mut PacketBuilder<'_, '_>, &Verified<'_>),
    ) -> Vec<u8> {
        let req = verify_request(Packet::parse(forwarded).expect("parses"), home, true)
            .expect("home server verifies our request");
        let mut buf = [0u8; MAX_PACKET_LEN];
        let mut b = PacketBuilder::reply(&mut buf, code, &req).expect("ok");
        add(&mut b, &req);
        b.finish(home).expect("ok").to_vec()
    }

    #[test]
    fn forwards_with_rewritten_name_rehidden_password_and_our_proxy_state() {
        let nas = nas_request(&[b"nas-ps-1", b"nas-ps-2"], Some(b"correct horse"), false);
        let home = secret("home-secret");
        let mut buf = [0u8; MAX_PACKET_LEN];
        let (bytes, sent) = forward_request(
            &nas.verified(),
            Some(b"bob"),
            &upstream(&home),
            &ForwardRules::default(),
            &mut buf,
        )
        .expect("forwarded");
        assert_eq!(
            sent,
            Sent {
                code: Code::AccessRequest,
                identifier: 200,
                authenticator: OUR_AUTH,
                proxy_state: OUR_PS
            }
        );
        // The home server verifies it (Message-Authenticator under its secret) and reads
        // the same password.
        let p = Packet::parse(bytes).expect("parses");
        assert_eq!(p.identifier(), 200);
        assert_eq!(p.authenticator(), &OUR_AUTH);
        let v = verify_request(p, &home, true).expect("verifies under the home secret");
        let mut out = [0u8; 128];
        assert_eq!(v.user_password(&mut out), Ok(&b"correct horse"[..]));
        assert!(verify_request(p, &nas.secret, true).is_err());
        let a = attrs(bytes);
        let types: Vec<u8> = a.iter().map(|(t, _)| *t).collect();
        assert_eq!(
            types,
            [
                MESSAGE_AUTHENTICATOR,
                USER_NAME,
                USER_PASSWORD,
                CALLING_STATION_ID,
                PROXY_STATE,
                PROXY_STATE,
                PROXY_STATE
            ]
        );
        assert_eq!(a[1].1, b"bob");
        let ps: Vec<&[u8]> = a[4..].iter().map(|(_, v)| v.as_slice()).collect();
        assert_eq!(ps, [&b"nas-ps-1"[..], b"nas-ps-2", &OUR_PS]);
    }

    #[test]
    fn chap_without_challenge_carries_the_nas_authenticator() {
        let nas = nas_request(&[], None, true);
        let home = secret("home-secret");
        let mut buf = [0u8; MAX_PACKET_LEN];
        let (bytes, _) = forward(&nas.verified(), None, &home, &mut buf).expect("forwarded");
        let v = verify_request(Packet::parse(bytes).expect("ok"), &home, true).expect("ok");
        assert_eq!(v.chap_challenge(), &NAS_AUTH);
        assert_eq!(v.chap_password(), Some((5, &[5; 16])));
        assert_eq!(v.user_name(), Some(&b"bob@partner.edu"[..]));
    }

    #[test]
    fn refuses_loops_status_server_and_other_codes() {
        let home = secret("home-secret");
        let mut buf = [0u8; MAX_PACKET_LEN];
        let four: [&[u8]; 4] = [b"a", b"b", b"c", b"d"];
        let nas = nas_request(&four, None, false);
        let at = |max| ForwardRules::with_max_proxy_states(max);
        let ok = forward_request(&nas.verified(), None, &upstream(&home), &at(4), &mut buf);
        assert!(ok.is_ok(), "four Proxy-States with a limit of four");
        let err = forward_request(&nas.verified(), None, &upstream(&home), &at(3), &mut buf);
        assert_eq!(err.err(), Some(ForwardError::Loop { count: 4, max: 3 }));
        assert_eq!(
            ForwardError::Loop { count: 4, max: 3 }.label(),
            "proxy_loop"
        );

        let s = secret("nas-secret");
        for code in [Code::StatusServer, Code::CoaRequest] {
            let mut rb = [0u8; MAX_PACKET_LEN];
            let mut b = PacketBuilder::request(&mut rb, code, 1, &NAS_AUTH).expect("ok");
            b.message_authenticator().expect("ok");
            let bytes = b.finish(&s).expect("ok").to_vec();
            let v = verify_request(Packet::parse(&bytes).expect("ok"), &s, true).expect("ok");
            let err = forward(&v, None, &home, &mut buf).err();
            let want = if code == Code::StatusServer {
                ForwardError::StatusServer
            } else {
                ForwardError::NotProxied(code)
            };
            assert_eq!(err, Some(want));
        }
    }

    #[test]
    fn accounting_is_forwarded_with_a_computed_authenticator() {
        let s = secret("nas-secret");
        let mut rb = [0u8; MAX_PACKET_LEN];
        let mut b =
            PacketBuilder::request(&mut rb, Code::AccountingRequest, 3, &[0; 16]).expect("ok");
        b.attr(USER_NAME, b"bob@partner.edu").expect("ok");
        b.attr(PROXY_STATE, b"nas").expect("ok");
        let bytes = b.finish(&s).expect("ok").to_vec();
        let nas = verify_request(Packet::parse(&bytes).expect("ok"), &s, false).expect("ok");
        let home = secret("home-secret");
        let mut buf = [0u8; MAX_PACKET_LEN];
        let (fwd, sent) = forward(&nas, Some(b"bob"), &home, &mut buf).expect("ok");
        let fwd = fwd.to_vec();
        let v = verify_request(Packet::parse(&fwd).expect("ok"), &home, false).expect("ok");
        assert_eq!(v.user_name(), Some(&b"bob"[..]));
        assert_eq!(&sent.authenticator, v.authenticator());
        let reply = home_reply(&fwd, &home, Code::AccountingResponse, |_, _| {});
        let hr = verify_reply(&reply, &sent, &home, true).expect("verifies");
        let mut out = [0u8; MAX_PACKET_LEN];
        let to_nas = relay_reply(&hr, &sent, &home, &nas, &mut out).expect("relayed");
        let p = Packet::parse(to_nas).expect("ok");
        assert_eq!(p.identifier(), 3);
        assert_eq!(verify_response(&p, nas.authenticator(), &s), Ok(()));
        assert_eq!(
            p.attributes().map(|a| (a.typ, a.value)).collect::<Vec<_>>(),
            vec![(PROXY_STATE, &b"nas"[..])]
        );
    }

    #[test]
    fn relays_an_accept_with_keys_reencrypted_and_nas_proxy_states_in_order() {
        let nas = nas_request(&[b"nas-ps-1", b"nas-ps-2"], Some(b"pw"), false);
        let home = secret("home-secret");
        let mut buf = [0u8; MAX_PACKET_LEN];
        let (fwd, sent) =
            forward(&nas.verified(), Some(b"bob"), &home, &mut buf).expect("forwarded");
        let fwd = fwd.to_vec();
        let send_key = [0xa5u8; 32];
        let recv_key = [0x5au8; 32];
        let v1_keys = {
            let mut k = [0u8; 32];
            k[..24].fill(0x77);
            k
        };
        let reply = home_reply(&fwd, &home, Code::AccessAccept, |b, req| {
            b.attr(REPLY_MESSAGE, b"welcome").expect("ok");
            b.mppe_key(&home, MS_MPPE_SEND_KEY, 0x8001, &send_key)
                .expect("ok");
            b.mppe_key(&home, MS_MPPE_RECV_KEY, 0x8002, &recv_key)
                .expect("ok");
            b.tunnel_password(&home, 1, 0x8003, b"tunnel-pw")
                .expect("ok");
            b.ms_chap_mppe_keys(&home, &v1_keys).expect("ok");
            b.vsa(MICROSOFT, 26, b"S=ABC").expect("ok");
            assert_eq!(req.identifier(), 200);
        });
        let hr = verify_reply(&reply, &sent, &home, true).expect("verifies");
        assert_eq!(hr.code(), Code::AccessAccept);
        assert_eq!(
            hr.nas_proxy_states().collect::<Vec<_>>(),
            [&b"nas-ps-1"[..], b"nas-ps-2"]
        );
        let nas_v = nas.verified();
        let mut out = [0u8; MAX_PACKET_LEN];
        let to_nas = relay_reply(&hr, &sent, &home, &nas_v, &mut out).expect("relayed");
        let p = Packet::parse(to_nas).expect("parses");
        assert_eq!(p.code(), Code::AccessAccept);
        assert_eq!(p.identifier(), 7);
        assert_eq!(verify_response(&p, &NAS_AUTH, &nas.secret), Ok(()));
        assert!(p.message_authenticator_offset().is_some());
        // Keys decrypt for the NAS to what the home server sent.
        let mut k = [0u8; 240];
        let v = p.vendor_attr(MICROSOFT, MS_MPPE_SEND_KEY).expect("present");
        assert_eq!(
            mppe::decrypt(&nas.secret, &NAS_AUTH, v, &mut k),
            Ok(&send_key[..])
        );
        let v = p.vendor_attr(MICROSOFT, MS_MPPE_RECV_KEY).expect("present");
        assert_eq!(
            mppe::decrypt(&nas.secret, &NAS_AUTH, v, &mut k),
            Ok(&recv_key[..])
        );
        let v = p.attr(TUNNEL_PASSWORD).expect("present");
        assert_eq!(
            crate::proto::crypto::tunnel_password::decrypt(&nas.secret, &NAS_AUTH, v, &mut k),
            Ok((1, &b"tunnel-pw"[..]))
        );
        let v = p
            .vendor_attr(MICROSOFT, MS_CHAP_MPPE_KEYS)
            .expect("present");
        let mut u = [0u8; 128];
        assert_eq!(
            user_password::unhide(&nas.secret, &NAS_AUTH, v, &mut u),
            Ok(&v1_keys[..24])
        );
        assert_eq!(p.vendor_attr(MICROSOFT, 26), Some(&b"S=ABC"[..]));
        assert_eq!(p.attr(REPLY_MESSAGE), Some(&b"welcome"[..]));
        // Ours is gone, the NAS's are there once each, in order, last.
        let ps: Vec<&[u8]> = p
            .attributes()
            .filter(|a| a.typ == PROXY_STATE)
            .map(|a| a.value)
            .collect();
        assert_eq!(ps, [&b"nas-ps-1"[..], b"nas-ps-2"]);
        let last_two: Vec<u8> = p.attributes().map(|a| a.typ).collect();
        assert_eq!(&last_two[last_two.len() - 2..], [PROXY_STATE, PROXY_STATE]);
    }

    #[test]
    fn refuses_bad_replies_each_with_its_own_error() {
        let nas = nas_request(&[], Some(b"pw"), false);
        let home = secret("home-secret");
        let mut buf = [0u8; MAX_PACKET_LEN];
        let (fwd, sent) = forward(&nas.verified(), None, &home, &mut buf).expect("ok");
        let fwd = fwd.to_vec();
        let good = home_reply(&fwd, &home, Code::AccessChallenge, |b, _| {
            b.attr(STATE, b"state-1").expect("ok");
        });
        assert!(verify_reply(&good, &sent, &home, true).is_ok());

        // Wrong secret: the Message-Authenticator is checked after the MD5, which fails first.
        let wrong = home_reply(&fwd, &home, Code::AccessAccept, |_, _| {});
        assert_eq!(
            verify_reply(&wrong, &sent, &secret("other"), true).err(),
            Some(ReplyError::BadResponseAuthenticator)
        );
        // A flipped attribute octet.
        let mut tampered = good.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert_eq!(
            verify_reply(&tampered, &sent, &home, true).err(),
            Some(ReplyError::BadResponseAuthenticator)
        );
        // A Message-Authenticator that does not verify, under a correct Response
        // Authenticator (a home server with a buggy HMAC).
        let bad_ma = {
            let mut p = good.clone();
            let off = Packet::parse(&p)
                .expect("ok")
                .message_authenticator_offset()
                .expect("ma");
            p[off + 2] ^= 1;
            resign(&mut p, &OUR_AUTH, &home);
            p
        };
        assert_eq!(
            verify_reply(&bad_ma, &sent, &home, true).err(),
            Some(ReplyError::BadMessageAuthenticator)
        );
        // No Message-Authenticator at all (an Accounting-Response-style builder).
        let no_ma = {
            let req = verify_request(Packet::parse(&fwd).expect("ok"), &home, true).expect("ok");
            let mut rb = [0u8; MAX_PACKET_LEN];
            let b = PacketBuilder::reply(&mut rb, Code::AccessReject, &req).expect("ok");
            let mut p = b.finish(&home).expect("ok").to_vec();
            strip_ma(&mut p);
            resign(&mut p, &OUR_AUTH, &home);
            p
        };
        assert_eq!(
            Packet::parse(&no_ma)
                .expect("ok")
                .message_authenticator_offset(),
            None
        );
        assert_eq!(
            verify_reply(&no_ma, &sent, &home, true).err(),
            Some(ReplyError::MissingMessageAuthenticator)
        );
        // Not required: the unsigned reply passes, a badly signed one still does not.
        assert!(verify_reply(&no_ma, &sent, &home, false).is_ok());
        assert_eq!(
            verify_reply(&bad_ma, &sent, &home, false).err(),
            Some(ReplyError::BadMessageAuthenticator)
        );
        // Our Proxy-State dropped by the home server (reply built to a request without it).
        let no_ps = {
            let mut rb = [0u8; MAX_PACKET_LEN];
            let mut b =
                PacketBuilder::request(&mut rb, Code::AccessRequest, 200, &OUR_AUTH).expect("ok");
            b.message_authenticator().expect("ok");
            let req_bytes = b.finish(&home).expect("ok").to_vec();
            home_reply(&req_bytes, &home, Code::AccessAccept, |_, _| {})
        };
        assert_eq!(
            verify_reply(&no_ps, &sent, &home, true).err(),
            Some(ReplyError::MissingProxyState)
        );
        // Wrong code, wrong identifier, garbage.
        let mut wrong_id = good.clone();
        wrong_id[1] = 201;
        assert_eq!(
            verify_reply(&wrong_id, &sent, &home, true).err(),
            Some(ReplyError::WrongIdentifier {
                expected: 200,
                got: 201
            })
        );
        let mut acct = good.clone();
        acct[0] = Code::AccountingResponse.as_u8();
        assert_eq!(
            verify_reply(&acct, &sent, &home, true).err(),
            Some(ReplyError::UnexpectedCode {
                request: Code::AccessRequest,
                reply: Code::AccountingResponse
            })
        );
        assert_eq!(
            verify_reply(&good[..10], &sent, &home, true).err(),
            Some(ReplyError::Decode(DecodeError::TooShort))
        );
        let labels = [
            ReplyError::MissingMessageAuthenticator.label(),
            ReplyError::BadMessageAuthenticator.label(),
            ReplyError::BadResponseAuthenticator.label(),
            ReplyError::MissingProxyState.label(),
        ];
        assert_eq!(
            labels.len(),
            labels
                .iter()
                .collect::<std::collections::HashSet<_>>()
                .len()
        );
    }

    #[test]
    fn a_malformed_hidden_key_is_refused_not_passed_on() {
        let nas = nas_request(&[], Some(b"pw"), false);
        let home = secret("home-secret");
        let mut buf = [0u8; MAX_PACKET_LEN];
        let (fwd, sent) = forward(&nas.verified(), None, &home, &mut buf).expect("ok");
        let fwd = fwd.to_vec();
        let reply = home_reply(&fwd, &home, Code::AccessAccept, |b, _| {
            b.vsa(MICROSOFT, MS_MPPE_SEND_KEY, &[0x80, 1, 2, 3])
                .expect("ok");
        });
        let hr = verify_reply(&reply, &sent, &home, true).expect("verifies");
        let mut out = [0u8; MAX_PACKET_LEN];
        assert!(matches!(
            relay_reply(&hr, &sent, &home, &nas.verified(), &mut out),
            Err(RelayError::Hidden {
                attribute: HiddenAttribute::MppeSendKey,
                ..
            })
        ));
    }

    #[test]
    fn a_malformed_microsoft_vsa_is_refused_and_other_vendors_pass() {
        let nas = nas_request(&[], Some(b"pw"), false);
        let home = secret("home-secret");
        let mut buf = [0u8; MAX_PACKET_LEN];
        let (fwd, sent) = forward(&nas.verified(), None, &home, &mut buf).expect("ok");
        let fwd = fwd.to_vec();
        // Microsoft, then a sub-attribute claiming 40 octets in 4.
        let mut broken = MICROSOFT.to_be_bytes().to_vec();
        broken.extend_from_slice(&[MS_MPPE_SEND_KEY, 40, 0x80, 1]);
        // Another vendor's opaque data passes untouched.
        let mut other = 9u32.to_be_bytes().to_vec();
        other.extend_from_slice(&[1, 40, 0x80, 1]);
        for (value, ok) in [(broken, false), (other, true)] {
            let reply = home_reply(&fwd, &home, Code::AccessAccept, |b, _| {
                b.attr(VENDOR_SPECIFIC, &value).expect("ok");
            });
            let hr = verify_reply(&reply, &sent, &home, true).expect("verifies");
            let mut out = [0u8; MAX_PACKET_LEN];
            let relayed = relay_reply(&hr, &sent, &home, &nas.verified(), &mut out);
            if ok {
                let p = Packet::parse(relayed.expect("relayed")).expect("ok");
                assert_eq!(p.attr(VENDOR_SPECIFIC), Some(&value[..]));
            } else {
                assert_eq!(relayed.err(), Some(RelayError::MalformedMicrosoftVsa));
            }
        }
    }

    #[test]
    fn status_checks_are_built_and_their_answers_verified() {
        let home = secret("home-secret");
        let mut buf = [0u8; MAX_PACKET_LEN];
        let (bytes, sent) = status_check(&upstream(&home), &mut buf).expect("built");
        let bytes = bytes.to_vec();
        assert_eq!(sent.code, Code::StatusServer);
        let p = Packet::parse(&bytes).expect("ok");
        assert!(p.attributes().all(|a| a.typ != PROXY_STATE));
        // The home server verifies it (Message-Authenticator mandatory) and answers.
        let accept = home_reply(&bytes, &home, Code::AccessAccept, |_, _| {});
        let hr = verify_reply(&accept, &sent, &home, true).expect("verifies");
        assert_eq!(hr.attributes().count(), 0);
        let acct = home_reply(&bytes, &home, Code::AccountingResponse, |_, _| {});
        assert!(verify_reply(&acct, &sent, &home, true).is_ok());
        let reject = home_reply(&bytes, &home, Code::AccessReject, |_, _| {});
        assert!(matches!(
            verify_reply(&reject, &sent, &home, true),
            Err(ReplyError::UnexpectedCode { .. })
        ));
        let mut no_ma = accept.clone();
        strip_ma(&mut no_ma);
        resign(&mut no_ma, &OUR_AUTH, &home);
        assert_eq!(
            verify_reply(&no_ma, &sent, &home, true).err(),
            Some(ReplyError::MissingMessageAuthenticator)
        );
    }

    /// Removes the Message-Authenticator attribute and fixes Length.
    #[test]
    fn adds_operator_name_and_asks_for_cui_unless_the_nas_did() {
        let rules = ForwardRules {
            operator_name: Some(b"1example.edu"[..].into()),
            request_cui: true,
            ..ForwardRules::default()
        };
        let home = secret("home");
        let mut buf = [0u8; MAX_PACKET_LEN];
        let nas = nas_request(&[], Some(b"pw"), false);
        let (bytes, _) =
            forward_request(&nas.verified(), None, &upstream(&home), &rules, &mut buf).expect("ok");
        let a = attrs(bytes);
        let get = |t| a.iter().filter(|(typ, _)| *typ == t).collect::<Vec<_>>();
        assert_eq!(
            get(OPERATOR_NAME),
            [&(OPERATOR_NAME, b"1example.edu".to_vec())]
        );
        assert_eq!(
            get(CHARGEABLE_USER_IDENTITY),
            [&(CHARGEABLE_USER_IDENTITY, vec![0])]
        );

        // The NAS's own are forwarded as they are, never doubled.
        let s = secret("nas-secret");
        let mut nb = [0u8; MAX_PACKET_LEN];
        let mut b = PacketBuilder::request(&mut nb, Code::AccessRequest, 7, &NAS_AUTH).expect("ok");
        b.message_authenticator().expect("ok");
        b.attr(USER_NAME, b"bob@partner.edu").expect("ok");
        b.attr(OPERATOR_NAME, b"1visited.example").expect("ok");
        b.attr(CHARGEABLE_USER_IDENTITY, b"\0").expect("ok");
        let own = Nas {
            bytes: b.finish(&s).expect("ok").to_vec(),
            secret: s,
        };
        let (bytes, _) =
            forward_request(&own.verified(), None, &upstream(&home), &rules, &mut buf).expect("ok");
        let a = attrs(bytes);
        let ops: Vec<_> = a.iter().filter(|(t, _)| *t == OPERATOR_NAME).collect();
        assert_eq!(ops, [&(OPERATOR_NAME, b"1visited.example".to_vec())]);
        assert_eq!(
            a.iter()
                .filter(|(t, _)| *t == CHARGEABLE_USER_IDENTITY)
                .count(),
            1
        );

        // Accounting: Operator-Name, but CUI is asked for only in an Access-Request.
        let s = secret("nas-secret");
        let mut nb = [0u8; MAX_PACKET_LEN];
        let mut b =
            PacketBuilder::request(&mut nb, Code::AccountingRequest, 8, &[0; 16]).expect("ok");
        b.attr(USER_NAME, b"bob@partner.edu").expect("ok");
        let acct = Nas {
            bytes: b.finish(&s).expect("ok").to_vec(),
            secret: s,
        };
        let (bytes, _) =
            forward_request(&acct.verified(), None, &upstream(&home), &rules, &mut buf)
                .expect("ok");
        let a = attrs(bytes);
        assert!(a.iter().any(|(t, _)| *t == OPERATOR_NAME));
        assert!(!a.iter().any(|(t, _)| *t == CHARGEABLE_USER_IDENTITY));
    }

    fn strip_ma(p: &mut Vec<u8>) {
        let off = Packet::parse(p)
            .expect("ok")
            .message_authenticator_offset()
            .expect("ma");
        p.drain(off..off + 18);
        let len = p.len() as u16;
        p[2..4].copy_from_slice(&len.to_be_bytes());
    }

    /// Recomputes the Response Authenticator (and nothing else) over `p`.
    fn resign(p: &mut [u8], request_auth: &[u8; 16], s: &Secret) {
        let auth = crate::proto::crypto::authenticator::md5_authenticator(s, p, request_auth)
            .expect("fits");
        p[4..20].copy_from_slice(&auth);
    }
}
