//! EAP packets (RFC 3748 §4) and their transport in RADIUS (RFC 3579 §3.1): a validated view
//! of one EAP packet, its reassembly from the EAP-Message attributes of a request, and its
//! split into 253-octet EAP-Message attributes of a reply.
//!
//! Sans-IO and allocation-free: reassembly copies into a caller's fixed buffer, and every
//! failure is an [`EapError`], never a panic, so the shard can drop and count what it cannot
//! read.
//!
//! The tunnel methods' Type-Data codecs live beside it, one file per format: [`tls`] (the
//! flags/length/fragment header EAP-TLS, EAP-TTLS and PEAP share), [`mschapv2`] (EAP-MSCHAPv2,
//! the usual inner method), [`ttls`] (Diameter AVPs inside EAP-TTLS) and [`peap`] (PEAPv0's
//! Result TLV and its header-less inner packets) with [`peap_binding`] (its Cryptobinding TLV
//! and compound keys).

pub mod mschapv2;
pub mod peap;
pub mod peap_binding;
pub mod tls;
pub mod ttls;

use super::attr::EAP_MESSAGE;
use super::builder::PacketBuilder;
use super::error::BuildError;
use super::verified::Verified;

/// Largest EAP packet a RADIUS packet can carry: 4096 octets minus the 20-octet header, minus
/// the two-octet header of each of the 17 attributes it takes (a request also needs room for
/// User-Name and Message-Authenticator, so real ones are smaller).
pub const MAX_EAP_LEN: usize = 4096 - 20 - 2 * 17;

/// Value octets per EAP-Message attribute (RFC 3579 §3.1: split at 253).
pub const CHUNK: usize = 253;

/// An EAP packet's Code (RFC 3748 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EapCode {
    Request,
    Response,
    Success,
    Failure,
}

impl EapCode {
    pub fn from_u8(code: u8) -> Option<EapCode> {
        match code {
            1 => Some(EapCode::Request),
            2 => Some(EapCode::Response),
            3 => Some(EapCode::Success),
            4 => Some(EapCode::Failure),
            _ => None,
        }
    }

    pub fn to_u8(self) -> u8 {
        match self {
            EapCode::Request => 1,
            EapCode::Response => 2,
            EapCode::Success => 3,
            EapCode::Failure => 4,
        }
    }
}

/// The method types this server knows (RFC 3748 §5, IANA); others are kept by number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EapType {
    Identity,
    Notification,
    Nak,
    Md5Challenge,
    Gtc,
    Tls,
    Ttls,
    Peap,
    MsChapV2,
    Expanded,
    Other(u8),
}

impl EapType {
    pub fn from_u8(t: u8) -> EapType {
        match t {
            1 => EapType::Identity,
            2 => EapType::Notification,
            3 => EapType::Nak,
            4 => EapType::Md5Challenge,
            6 => EapType::Gtc,
            13 => EapType::Tls,
            21 => EapType::Ttls,
            25 => EapType::Peap,
            26 => EapType::MsChapV2,
            254 => EapType::Expanded,
            other => EapType::Other(other),
        }
    }

    pub fn to_u8(self) -> u8 {
        match self {
            EapType::Identity => 1,
            EapType::Notification => 2,
            EapType::Nak => 3,
            EapType::Md5Challenge => 4,
            EapType::Gtc => 6,
            EapType::Tls => 13,
            EapType::Ttls => 21,
            EapType::Peap => 25,
            EapType::MsChapV2 => 26,
            EapType::Expanded => 254,
            EapType::Other(t) => t,
        }
    }
}

/// Why EAP in a RADIUS packet could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EapError {
    #[error("no EAP-Message attribute")]
    Missing,
    #[error("an empty EAP-Message attribute")]
    EmptyAttribute,
    #[error("EAP-Message attributes hold more than {MAX_EAP_LEN} octets")]
    TooLong,
    #[error("EAP packet shorter than its 4-octet header")]
    TooShort,
    #[error("EAP Length {declared} does not match the {received} octets carried")]
    BadLength { declared: u16, received: usize },
    #[error("unknown EAP Code {0}")]
    UnknownCode(u8),
    #[error("an EAP Request or Response without a Type")]
    NoType,
    #[error("an EAP Success or Failure with data after the header")]
    TrailingData,
    #[error("a malformed EAP-TLS/TTLS/PEAP header (flags, TLS Message Length)")]
    BadTlsHeader,
    #[error("a malformed EAP-MSCHAPv2 packet")]
    BadMsChapV2,
    #[error("an EAP-MSCHAPv2 MS-Length that does not match the packet")]
    BadMsLength,
    #[error("an EAP-MSCHAPv2 OpCode {0} that has no place in this direction")]
    UnexpectedOpCode(u8),
    #[error("a malformed Diameter AVP in EAP-TTLS")]
    BadAvp,
    #[error("a malformed TLV in a PEAP Extensions packet")]
    BadTlv,
    #[error("an unknown mandatory TLV of type {0} in a PEAP Extensions packet")]
    UnknownMandatoryTlv(u16),
    #[error("a PEAP Extensions packet without exactly one Result TLV")]
    NoResultTlv,
}

/// A well-formed EAP packet: its Length matches the octets, its Code is known, a Request or
/// Response has a Type, a Success or Failure nothing after the header.
#[derive(Clone, Copy)]
pub struct EapPacket<'a> {
    bytes: &'a [u8],
    code: EapCode,
}

impl std::fmt::Debug for EapPacket<'_> {
    // Type data can hold credentials (EAP-GTC, inner methods): never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EapPacket")
            .field("code", &self.code)
            .field("identifier", &self.identifier())
            .field("type", &self.eap_type())
            .field("len", &self.bytes.len())
            .finish()
    }
}

impl<'a> EapPacket<'a> {
    pub fn parse(bytes: &'a [u8]) -> Result<EapPacket<'a>, EapError> {
        let header = bytes.get(..4).ok_or(EapError::TooShort)?;
        let declared = u16::from_be_bytes([header[2], header[3]]);
        if usize::from(declared) != bytes.len() {
            return Err(EapError::BadLength {
                declared,
                received: bytes.len(),
            });
        }
        let code = EapCode::from_u8(header[0]).ok_or(EapError::UnknownCode(header[0]))?;
        match code {
            EapCode::Request | EapCode::Response if bytes.len() < 5 => Err(EapError::NoType),
            EapCode::Success | EapCode::Failure if bytes.len() > 4 => Err(EapError::TrailingData),
            _ => Ok(EapPacket { bytes, code }),
        }
    }

    pub fn code(&self) -> EapCode {
        self.code
    }

    pub fn identifier(&self) -> u8 {
        self.bytes[1]
    }

    /// The Type of a Request or Response.
    pub fn eap_type(&self) -> Option<EapType> {
        self.bytes.get(4).copied().map(EapType::from_u8)
    }

    /// What follows the Type (empty for Success and Failure).
    pub fn type_data(&self) -> &'a [u8] {
        self.bytes.get(5..).unwrap_or_default()
    }

    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }
}

/// The EAP packet a request carries: its EAP-Message attributes concatenated in order into
/// `out` (RFC 3579 §3.1), then validated. (That such a request has a valid
/// Message-Authenticator, RFC 3579 §3.2, is `verify_request`'s to enforce: it is `Verified`.)
pub fn reassemble<'o>(
    request: &Verified<'_>,
    out: &'o mut [u8; MAX_EAP_LEN],
) -> Result<EapPacket<'o>, EapError> {
    let mut len = 0;
    for a in request.attributes().filter(|a| a.typ == EAP_MESSAGE) {
        if a.value.is_empty() {
            return Err(EapError::EmptyAttribute);
        }
        let end = len + a.value.len();
        out.get_mut(len..end)
            .ok_or(EapError::TooLong)?
            .copy_from_slice(a.value);
        len = end;
    }
    if len == 0 {
        return Err(EapError::Missing);
    }
    EapPacket::parse(&out[..len])
}

impl PacketBuilder<'_, '_> {
    /// Appends `eap` as EAP-Message attributes of at most 253 octets each, in order.
    pub fn eap_message(&mut self, eap: &[u8]) -> Result<(), BuildError> {
        if eap.is_empty() {
            return Err(BuildError::ValueTooLong);
        }
        for chunk in eap.chunks(CHUNK) {
            self.attr(EAP_MESSAGE, chunk)?;
        }
        Ok(())
    }
}

/// Writes an EAP Request or Response with `eap_type` and `data` into `out`: its length, or
/// `None` when it does not fit.
pub fn write_packet(
    out: &mut [u8],
    code: EapCode,
    identifier: u8,
    eap_type: EapType,
    data: &[u8],
) -> Option<usize> {
    let len = 5 + data.len();
    let declared = u16::try_from(len).ok()?;
    let dst = out.get_mut(..len)?;
    dst[0] = code.to_u8();
    dst[1] = identifier;
    dst[2..4].copy_from_slice(&declared.to_be_bytes());
    dst[4] = eap_type.to_u8();
    dst[5..].copy_from_slice(data);
    Some(len)
}

/// EAP-Success or EAP-Failure (four octets).
pub fn result_packet(success: bool, identifier: u8) -> [u8; 4] {
    let code = if success {
        EapCode::Success
    } else {
        EapCode::Failure
    };
    [code.to_u8(), identifier, 0, 4]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{verify_request, Code, Packet, Secret, MESSAGE_AUTHENTICATOR};

    fn request_with(secret: &Secret, eap: &[&[u8]]) -> Vec<u8> {
        request_ma(secret, eap, true)
    }

    fn request_ma(secret: &Secret, eap: &[&[u8]], ma: bool) -> Vec<u8> {
        let mut buf = [0u8; 4096];
        let mut b = PacketBuilder::request(&mut buf, Code::AccessRequest, 1, &[7; 16]).unwrap();
        if ma {
            b.message_authenticator().unwrap();
        }
        for part in eap {
            b.attr(EAP_MESSAGE, part).unwrap();
        }
        b.finish(secret).unwrap().to_vec()
    }

    fn read(bytes: &[u8], secret: &Secret) -> Result<Vec<u8>, EapError> {
        let p = Packet::parse(bytes).unwrap();
        let v = verify_request(p, secret, false).unwrap();
        let mut out = [0u8; MAX_EAP_LEN];
        reassemble(&v, &mut out).map(|e| e.as_bytes().to_vec())
    }

    #[test]
    fn identity_response_round_trips() {
        let mut buf = [0u8; 64];
        let n = write_packet(&mut buf, EapCode::Response, 9, EapType::Identity, b"alice").unwrap();
        let e = EapPacket::parse(&buf[..n]).unwrap();
        assert_eq!(e.code(), EapCode::Response);
        assert_eq!(e.identifier(), 9);
        assert_eq!(e.eap_type(), Some(EapType::Identity));
        assert_eq!(e.type_data(), b"alice");
        assert!(!format!("{e:?}").contains("alice"));
        for t in 0..=255u8 {
            assert_eq!(EapType::from_u8(t).to_u8(), t);
        }
    }

    #[test]
    fn split_and_reassembled_in_order() {
        let secret = Secret::new("s").unwrap();
        let mut eap = vec![0u8; 1000];
        let n = write_packet(&mut eap, EapCode::Response, 3, EapType::Tls, &[0xAB; 995]).unwrap();
        assert_eq!(n, 1000);
        let mut buf = [0u8; 4096];
        let bytes = request_with(&secret, &[]);
        let req = Packet::parse(&bytes).unwrap();
        let v = verify_request(req, &secret, true).unwrap();
        let mut b = PacketBuilder::reply(&mut buf, Code::AccessChallenge, &v).unwrap();
        b.eap_message(&eap).unwrap();
        let reply = b.finish(&secret).unwrap();
        let p = Packet::parse(reply).unwrap();
        let sizes: Vec<usize> = p
            .attributes()
            .filter(|a| a.typ == EAP_MESSAGE)
            .map(|a| a.value.len())
            .collect();
        assert_eq!(sizes, [253, 253, 253, 241]);
        assert!(p.attr(MESSAGE_AUTHENTICATOR).is_some());
        let parts: Vec<&[u8]> = eap.chunks(253).collect();
        assert_eq!(read(&request_with(&secret, &parts), &secret).unwrap(), eap);
    }

    #[test]
    fn bad_eap_is_an_error_never_a_panic() {
        let s = Secret::new("s").unwrap();
        let cases: &[(&[&[u8]], EapError)] = &[
            (&[], EapError::Missing),
            (&[&[2, 1, 0]], EapError::TooShort),
            (
                &[&[2, 1, 0, 9, 1]],
                EapError::BadLength {
                    declared: 9,
                    received: 5,
                },
            ),
            (&[&[2, 1, 0, 4]], EapError::NoType),
            (&[&[3, 1, 0, 5, 0]], EapError::TrailingData),
            (&[&[9, 1, 0, 5, 1]], EapError::UnknownCode(9)),
        ];
        for (parts, want) in cases {
            assert_eq!(read(&request_with(&s, parts), &s), Err(*want), "{parts:?}");
        }
        // Without a Message-Authenticator the request never becomes `Verified`.
        let bytes = request_ma(&s, &[&[2, 1, 0, 6, 1, b'a']], false);
        assert!(verify_request(Packet::parse(&bytes).unwrap(), &s, false).is_err());
        // 15 full attributes whose EAP header claims 0x0202 octets: a length mismatch.
        let big = [2u8; 253];
        let parts: Vec<&[u8]> = std::iter::repeat_n(&big[..], 15).collect();
        assert!(matches!(
            read(&request_with(&s, &parts), &s),
            Err(EapError::BadLength { .. })
        ));
        // Split across attributes is fine; the Length covers all of them.
        assert!(read(&request_with(&s, &[&[2, 1], &[0, 6, 1, b'a']]), &s).is_ok());
        assert_eq!(result_packet(true, 5), [3, 5, 0, 4]);
        assert!(EapPacket::parse(&result_packet(false, 5)).is_ok());
    }
}
