//! RFC 5176 packets on the sender's side: a request drafted from a session (its attributes,
//! signed once an Identifier is chosen) and the NAS's answer read back and verified.

use std::net::SocketAddr;

use crate::proto::{
    verify_response, BuildError, Code, DecodeError, Packet, PacketBuilder, Secret, VerifyError,
    ACCT_SESSION_ID, CALLED_STATION_ID, CALLING_STATION_ID, CHARGEABLE_USER_IDENTITY,
    EVENT_TIMESTAMP, FRAMED_IP_ADDRESS, HEADER_LEN, MAX_PACKET_LEN, MAX_VALUE_LEN, NAS_IDENTIFIER,
    NAS_IP_ADDRESS, NAS_PORT, USER_NAME,
};
use crate::session::SessionView;

use super::config::{Identify, IdentifyAttr};
use super::error_cause::{ErrorCause, ERROR_CAUSE};

pub const ACCT_MULTI_SESSION_ID: u8 = 50;
pub const NAS_PORT_ID: u8 = 87;

/// Disconnect or CoA: the request code and the two answers it admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Disconnect,
    Coa,
}

impl Kind {
    pub const ALL: [Kind; 2] = [Kind::Disconnect, Kind::Coa];

    pub const fn request(self) -> Code {
        match self {
            Kind::Disconnect => Code::DisconnectRequest,
            Kind::Coa => Code::CoaRequest,
        }
    }

    pub const fn ack(self) -> Code {
        match self {
            Kind::Disconnect => Code::DisconnectAck,
            Kind::Coa => Code::CoaAck,
        }
    }

    pub const fn nak(self) -> Code {
        match self {
            Kind::Disconnect => Code::DisconnectNak,
            Kind::Coa => Code::CoaNak,
        }
    }

    /// The metrics label.
    pub const fn label(self) -> &'static str {
        match self {
            Kind::Disconnect => "disconnect",
            Kind::Coa => "coa",
        }
    }

    pub fn of_request(code: Code) -> Option<Kind> {
        match code {
            Code::DisconnectRequest => Some(Kind::Disconnect),
            Code::CoaRequest => Some(Kind::Coa),
            _ => None,
        }
    }

    pub const fn index(self) -> usize {
        self as usize
    }
}

/// A request before its Identifier is chosen: everything but the header and the
/// Message-Authenticator, which [`Draft::sign`] adds.
#[derive(Debug, Clone)]
pub struct Draft {
    pub kind: Kind,
    pub to: SocketAddr,
    pub secret: Secret,
    /// Attribute TLVs, well-formed (checked by [`Draft::new`]).
    attributes: Vec<u8>,
}

/// Why a request could not be drafted.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum DraftError {
    #[error("the request does not fit a RADIUS packet: {0}")]
    Build(#[from] BuildError),
}

impl Draft {
    /// The session's identification (as `identify` asks, each attribute only when the
    /// session has it), then `extra` (pre-encoded TLVs: a CoA's changes), then
    /// Event-Timestamp `now_unix` (RFC 5176 §3: replay protection the NAS may check).
    pub fn new(
        kind: Kind,
        to: SocketAddr,
        secret: Secret,
        session: &SessionView,
        identify: Identify,
        extra: &[u8],
        now_unix: u32,
    ) -> Result<Draft, DraftError> {
        let mut attributes = Vec::with_capacity(128 + extra.len());
        session_attributes(session, identify, &mut attributes);
        attributes.extend_from_slice(extra);
        put(&mut attributes, EVENT_TIMESTAMP, &now_unix.to_be_bytes());
        let d = Draft {
            kind,
            to,
            secret,
            attributes,
        };
        // Signed once now so that a request too long or malformed is refused to its caller
        // rather than found out after it was queued.
        d.sign(0)?;
        Ok(d)
    }

    /// The request's bytes with Identifier `id`: a Message-Authenticator first, computed over
    /// a zero Authenticator field, then the Request Authenticator MD5(Code + Identifier +
    /// Length + 16 zero octets + Attributes + Secret) (RFC 5176 §3.1, §2.3; the layout the
    /// proto builder shares with Accounting-Request).
    pub fn sign(&self, id: u8) -> Result<Vec<u8>, BuildError> {
        let mut buf = [0u8; MAX_PACKET_LEN];
        let mut b = PacketBuilder::request(&mut buf, self.kind.request(), id, &[0; 16])?;
        b.message_authenticator()?;
        b.raw(&self.attributes)?;
        Ok(b.finish(&self.secret)?.to_vec())
    }
}

/// Appends one attribute, truncating a value too long for one (a NAS's own strings fit:
/// they came to us in an attribute).
fn put(out: &mut Vec<u8>, typ: u8, value: &[u8]) {
    let value = value.get(..MAX_VALUE_LEN).unwrap_or(value);
    out.push(typ);
    out.push((2 + value.len()) as u8);
    out.extend_from_slice(value);
}

fn put_str(out: &mut Vec<u8>, typ: u8, value: Option<&str>) {
    if let Some(v) = value.filter(|v| !v.is_empty()) {
        put(out, typ, v.as_bytes());
    }
}

/// The identification attributes `identify` asks for, as the session has them.
pub fn session_attributes(s: &SessionView, identify: Identify, out: &mut Vec<u8>) {
    for a in identify.iter() {
        match a {
            // The NAS knows the session by the name it accounts under (often an outer
            // `anonymous`), not by the inner identity radshard authenticated.
            IdentifyAttr::UserName => put_str(
                out,
                USER_NAME,
                s.accounted_user.as_deref().or(Some(s.user.as_str())),
            ),
            IdentifyAttr::AcctSessionId => put_str(out, ACCT_SESSION_ID, Some(&s.acct_session_id)),
            IdentifyAttr::NasIpAddress => {
                if let Some(ip) = s.nas_ip_address {
                    put(out, NAS_IP_ADDRESS, &ip.octets());
                }
            }
            IdentifyAttr::NasIdentifier => {
                put_str(out, NAS_IDENTIFIER, s.nas_identifier.as_deref())
            }
            IdentifyAttr::NasPort => {
                if let Some(p) = s.nas_port {
                    put(out, NAS_PORT, &p.to_be_bytes());
                }
            }
            IdentifyAttr::NasPortId => put_str(out, NAS_PORT_ID, s.nas_port_id.as_deref()),
            IdentifyAttr::FramedIpAddress => {
                if let Some(ip) = s.framed_ip_address {
                    put(out, FRAMED_IP_ADDRESS, &ip.octets());
                }
            }
            IdentifyAttr::CallingStationId => {
                put_str(out, CALLING_STATION_ID, s.calling_station_id.as_deref())
            }
            IdentifyAttr::CalledStationId => {
                put_str(out, CALLED_STATION_ID, s.called_station_id.as_deref())
            }
            IdentifyAttr::AcctMultiSessionId => put_str(
                out,
                ACCT_MULTI_SESSION_ID,
                s.acct_multi_session_id.as_deref(),
            ),
            IdentifyAttr::ChargeableUserIdentity => put_str(
                out,
                CHARGEABLE_USER_IDENTITY,
                s.chargeable_user_identity.as_deref(),
            ),
        }
    }
}

/// What a verified answer said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    pub ack: bool,
    pub error_cause: Option<ErrorCause>,
}

/// Why a datagram is not an answer to the request it claims to answer.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum ReplyError {
    #[error("malformed: {0}")]
    Malformed(#[from] DecodeError),
    #[error("its Identifier is not the request's")]
    WrongIdentifier,
    #[error("code {0} is not an answer to this request")]
    WrongCode(u8),
    #[error("does not verify: {0}")]
    BadAuthenticator(#[from] VerifyError),
}

impl ReplyError {
    pub const fn label(&self) -> &'static str {
        match self {
            ReplyError::Malformed(_) => "malformed",
            ReplyError::WrongIdentifier => "unmatched",
            ReplyError::WrongCode(_) => "wrong_code",
            ReplyError::BadAuthenticator(_) => "bad_authenticator",
        }
    }
}

/// Reads `datagram` as the answer to `request` (the signed bytes we sent): the right
/// Identifier and code, a Response Authenticator (and Message-Authenticator, if present)
/// that verify with `secret` against the request's authenticator (RFC 5176 §3.5), all
/// compared in constant time by proto. The Error-Cause, if any, is decoded.
pub fn read_answer(
    kind: Kind,
    request: &[u8],
    datagram: &[u8],
    secret: &Secret,
) -> Result<Answer, ReplyError> {
    let p = Packet::parse(datagram)?;
    if Some(&p.identifier()) != request.get(1) {
        return Err(ReplyError::WrongIdentifier);
    }
    let ack = match p.code() {
        c if c == kind.ack() => true,
        c if c == kind.nak() => false,
        c => return Err(ReplyError::WrongCode(c.as_u8())),
    };
    let authenticator: [u8; 16] = request
        .get(4..HEADER_LEN)
        .and_then(|a| a.try_into().ok())
        .ok_or(ReplyError::WrongIdentifier)?;
    verify_response(&p, &authenticator, secret)?;
    let error_cause = p.attr(ERROR_CAUSE).and_then(ErrorCause::from_value);
    Ok(Answer { ack, error_cause })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::proto::{verify_request, MESSAGE_AUTHENTICATOR};
    use std::net::Ipv4Addr;

    pub(crate) fn session() -> SessionView {
        SessionView {
            id: "0123456789abcdef0123456789abcdef".into(),
            user: "alice@example.org".into(),
            accounted_user: Some("anonymous@example.org".into()),
            acct_session_id: "S-1".into(),
            client: "nas1".into(),
            nas_address: "127.0.0.1".parse().unwrap(),
            nas_ip_address: Some(Ipv4Addr::new(192, 0, 2, 1)),
            nas_identifier: Some("nas-one".into()),
            nas_port: Some(7),
            nas_port_id: None,
            framed_ip_address: Some(Ipv4Addr::new(10, 0, 0, 9)),
            calling_station_id: Some("aa-bb-cc-dd-ee-ff".into()),
            called_station_id: None,
            acct_multi_session_id: None,
            chargeable_user_identity: None,
            started: 1,
            last_update: 1,
            session_time: None,
            input_octets: 0,
            output_octets: 0,
        }
    }

    pub(crate) fn secret(s: &str) -> Secret {
        Secret::new(s).expect("non-empty")
    }

    pub(crate) fn draft(kind: Kind) -> Draft {
        Draft::new(
            kind,
            "127.0.0.1:3799".parse().unwrap(),
            secret("das-secret"),
            &session(),
            Identify::default(),
            &[],
            1_700_000_000,
        )
        .expect("fits")
    }

    /// An answer as a NAS would build it, with an optional Error-Cause and a
    /// Message-Authenticator.
    pub(crate) fn answer(
        request: &[u8],
        code: Code,
        cause: Option<u32>,
        secret: &Secret,
    ) -> Vec<u8> {
        let req = Packet::parse(request).expect("parses");
        let mut buf = [0u8; 4096];
        let mut b = PacketBuilder::answer(
            &mut buf,
            code,
            req.code(),
            req.identifier(),
            req.authenticator(),
        )
        .expect("fits");
        b.message_authenticator().expect("fits");
        if let Some(c) = cause {
            b.attr(ERROR_CAUSE, &c.to_be_bytes()).expect("fits");
        }
        b.finish(secret).expect("signs").to_vec()
    }

    #[test]
    fn request_is_signed_as_rfc_5176_says_and_names_the_session_as_the_nas_knows_it() {
        let d = draft(Kind::Disconnect);
        let bytes = d.sign(42).expect("signs");
        let p = Packet::parse(&bytes).expect("parses");
        assert_eq!((p.code(), p.identifier()), (Code::DisconnectRequest, 42));
        // The receiving side's check: MD5 Request Authenticator and MA over zeros.
        let s = secret("das-secret");
        verify_request(p, &s, true).expect("verifies as a DAS would");
        assert!(verify_request(p, &secret("other"), false).is_err());
        assert_eq!(
            p.attributes().next().map(|a| a.typ),
            Some(MESSAGE_AUTHENTICATOR)
        );
        assert_eq!(p.attr(USER_NAME), Some(&b"anonymous@example.org"[..]));
        assert_eq!(p.attr(ACCT_SESSION_ID), Some(&b"S-1"[..]));
        assert_eq!(p.attr(NAS_IP_ADDRESS), Some(&[192, 0, 2, 1][..]));
        assert_eq!(p.attr(FRAMED_IP_ADDRESS), Some(&[10, 0, 0, 9][..]));
        assert_eq!(p.attr(NAS_PORT), None, "not in the default identify set");
        assert_eq!(
            p.attr(EVENT_TIMESTAMP),
            Some(&1_700_000_000u32.to_be_bytes()[..])
        );
        // Retransmissions are the same bytes; another Identifier is another authenticator.
        assert_eq!(d.sign(42).unwrap(), bytes);
        assert_ne!(d.sign(43).unwrap()[4..20], bytes[4..20]);
    }

    #[test]
    fn answers_verify_only_with_the_right_secret_code_and_identifier() {
        let s = secret("das-secret");
        let req = draft(Kind::Disconnect).sign(7).unwrap();
        let nak = answer(&req, Code::DisconnectNak, Some(503), &s);
        let a = read_answer(Kind::Disconnect, &req, &nak, &s).expect("verifies");
        assert!(!a.ack);
        assert_eq!(a.error_cause, Some(ErrorCause::SESSION_CONTEXT_NOT_FOUND));
        let ack = answer(&req, Code::DisconnectAck, None, &s);
        assert_eq!(
            read_answer(Kind::Disconnect, &req, &ack, &s),
            Ok(Answer {
                ack: true,
                error_cause: None
            })
        );
        // Signed with another secret: a bad authenticator, ignored.
        let forged = answer(&req, Code::DisconnectAck, None, &secret("guess"));
        assert_eq!(
            read_answer(Kind::Disconnect, &req, &forged, &s).map_err(|e| e.label()),
            Err("bad_authenticator")
        );
        // One flipped bit in the Error-Cause breaks the Response Authenticator.
        let mut tampered = nak.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(matches!(
            read_answer(Kind::Disconnect, &req, &tampered, &s),
            Err(ReplyError::BadAuthenticator(_))
        ));
        let coa_ack = answer(&req, Code::CoaAck, None, &s);
        assert_eq!(
            read_answer(Kind::Disconnect, &req, &coa_ack, &s),
            Err(ReplyError::WrongCode(44))
        );
        let other = draft(Kind::Disconnect).sign(8).unwrap();
        assert_eq!(
            read_answer(Kind::Disconnect, &other, &ack, &s),
            Err(ReplyError::WrongIdentifier)
        );
        assert!(matches!(
            read_answer(Kind::Disconnect, &req, &ack[..19], &s),
            Err(ReplyError::Malformed(_))
        ));
    }

    #[test]
    fn oversized_coa_is_refused_when_drafted() {
        let mut extra = Vec::new();
        for _ in 0..20 {
            put(&mut extra, 11, &[b'x'; 253]);
        }
        let e = Draft::new(
            Kind::Coa,
            "127.0.0.1:3799".parse().unwrap(),
            secret("s"),
            &session(),
            Identify::default(),
            &extra,
            0,
        );
        assert_eq!(e.err(), Some(DraftError::Build(BuildError::PacketTooLong)));
    }
}
