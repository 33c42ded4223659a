//! RADIUS/1.1 (RFC 9765): the packet format spoken on a RadSec connection
//! whose ALPN negotiated [`radius/1.1`](crate::proto::radius11::ALPN_RADIUS_1_1).
//! Sans-IO; [`crate::radsec::radius11`] translates at a connection's edge between this and
//! the RADIUS/1.0 packets the rest of the server speaks.
//!
//! (Links here are absolute: the one-line doc on `pub mod radius11` in
//! `proto/mod.rs` makes rustdoc resolve this whole text from `proto`.)
//!
//! What differs from RADIUS/UDP, and why this is a separate view rather
//! than a flag on [`crate::proto::Packet`]:
//!
//! * Header (RFC 9765 §4): Code, Reserved-1 (the old Identifier), Length,
//!   a 4-octet Token, then 12 octets of Reserved-2 (the rest of the old
//!   Authenticator). The Token alone matches a reply to its request, so a
//!   connection may have more than 256 requests outstanding. The Reserved
//!   fields are sent as zero and ignored on receipt.
//! * No shared secret and no MD5 (§5): TLS already authenticates and
//!   encrypts, so there is no Request/Response Authenticator to check and
//!   User-Password, Tunnel-Password, MS-MPPE keys etc. travel in the clear
//!   inside the tunnel. Nothing here takes a [`crate::proto::Secret`].
//! * Message-Authenticator is never sent; one that is received is treated
//!   as an invalid attribute (RFC 6929 §2.8) and ignored (§5.2), so
//!   [`Packet11::attributes`](crate::proto::radius11::Packet11::attributes)
//!   skips it rather than refusing the packet.

use super::attr::{MESSAGE_AUTHENTICATOR, PROXY_STATE, USER_PASSWORD};
use super::attributes::{split_tlv, Attribute, Attributes};
use super::code::Code;
use super::error::{BuildError, DecodeError};
use super::{attr::MAX_VALUE_LEN, attr::MAX_VSA_VALUE_LEN, HEADER_LEN};

/// ALPN protocol name of historic RADIUS/TLS (MD5 and shared secret kept).
pub const ALPN_RADIUS_1_0: &[u8] = b"radius/1.0";
/// ALPN protocol name of RADIUS/1.1.
pub const ALPN_RADIUS_1_1: &[u8] = b"radius/1.1";

/// Length of the Token field.
pub const TOKEN_LEN: usize = 4;
/// Header octets where the Token sits (the first four of the old
/// Authenticator field).
const TOKEN_AT: usize = 4;

/// A RADIUS/1.1 packet whose framing has been validated. Zero-copy, like
/// [`super::Packet`]; nothing in it is "authenticated" beyond what the TLS
/// session already guarantees about the peer.
#[derive(Clone, Copy, Debug)]
pub struct Packet11<'a> {
    /// Exactly Length octets.
    bytes: &'a [u8],
    code: Code,
    token: [u8; TOKEN_LEN],
    had_message_authenticator: bool,
}

impl<'a> Packet11<'a> {
    /// Validates one framed packet (as yielded by
    /// [`super::stream::StreamDecoder`]). The same framing rules as
    /// [`super::Packet::parse`] apply, except the Message-Authenticator ones:
    /// any number of them, of any length, are tolerated and ignored.
    pub fn parse(bytes: &'a [u8]) -> Result<Packet11<'a>, DecodeError> {
        let (header, code, bytes) = super::packet::frame(bytes)?;
        let len = bytes.len();
        let mut had_message_authenticator = false;
        let mut rest = &bytes[HEADER_LEN..];
        while !rest.is_empty() {
            let offset = len - rest.len();
            let (typ, _, r) = split_tlv(rest).ok_or(match rest.get(1) {
                Some(&l) if l < 2 => DecodeError::AttributeTooShort { offset },
                _ => DecodeError::AttributeOverrun { offset },
            })?;
            had_message_authenticator |= typ == MESSAGE_AUTHENTICATOR;
            rest = r;
        }
        let mut token = [0; TOKEN_LEN];
        token.copy_from_slice(&header[TOKEN_AT..TOKEN_AT + TOKEN_LEN]);
        Ok(Packet11 {
            bytes,
            code,
            token,
            had_message_authenticator,
        })
    }

    /// The packet code.
    pub fn code(&self) -> Code {
        self.code
    }

    /// The Token: what a reply echoes and a client matches replies by. The
    /// Identifier octet is deliberately not exposed (§4: ignored).
    pub fn token(&self) -> [u8; TOKEN_LEN] {
        self.token
    }

    /// Exactly Length octets of the packet.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Length in octets.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Always false; for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Whether the peer sent a Message-Authenticator (it should not have);
    /// for a metrics counter, nothing else depends on it.
    pub fn had_message_authenticator(&self) -> bool {
        self.had_message_authenticator
    }

    /// The attributes in wire order, Message-Authenticator skipped.
    pub fn attributes(&self) -> impl Iterator<Item = Attribute<'a>> + Clone {
        Attributes::new(&self.bytes[HEADER_LEN..]).filter(|a| a.typ != MESSAGE_AUTHENTICATOR)
    }

    /// Value of the first attribute of type `typ`.
    pub fn attr(&self, typ: u8) -> Option<&'a [u8]> {
        self.attributes().find(|a| a.typ == typ).map(|a| a.value)
    }

    /// The User-Password, in the clear (§5.1: no MD5 hiding, no padding).
    /// No secret is needed. `None` when absent or empty (RFC 2865 §5.2
    /// allows no empty password).
    pub fn user_password(&self) -> Option<&'a [u8]> {
        self.attr(USER_PASSWORD).filter(|v| !v.is_empty())
    }
}

/// Builds a RADIUS/1.1 packet in place in `buf`; nothing is allocated.
///
/// [`super::PacketBuilder`] does not fit: it always adds and signs a
/// Message-Authenticator and an MD5 authenticator, both forbidden here.
/// This one writes the header once and only appends TLVs; `finish` writes
/// Length (and for replies the request's Proxy-States).
pub struct Builder11<'b, 'r> {
    buf: &'b mut [u8],
    len: usize,
    request: Option<Packet11<'r>>,
}

impl<'b, 'r> Builder11<'b, 'r> {
    /// Starts a reply to `request`: same Token (which is how the client
    /// matches it), Proxy-States copied at `finish` (RFC 2865 §5.33).
    pub fn reply(
        buf: &'b mut [u8],
        code: Code,
        request: &Packet11<'r>,
    ) -> Result<Self, BuildError> {
        if code.is_request() {
            return Err(BuildError::WrongPacketKind);
        }
        let mut b = Self::start(buf, code, request.token())?;
        b.request = Some(*request);
        Ok(b)
    }

    /// Starts a reply carrying `token`, for a request that reached us in another form (the
    /// RADIUS/1.0 edge): the caller writes its Proxy-States.
    pub fn answer(
        buf: &'b mut [u8],
        code: Code,
        token: [u8; TOKEN_LEN],
    ) -> Result<Self, BuildError> {
        if code.is_request() {
            return Err(BuildError::WrongPacketKind);
        }
        Self::start(buf, code, token)
    }

    /// Starts a request carrying `token`, which the caller keeps unique
    /// among the requests outstanding on the connection (§4).
    pub fn request(
        buf: &'b mut [u8],
        code: Code,
        token: [u8; TOKEN_LEN],
    ) -> Result<Self, BuildError> {
        if !code.is_request() {
            return Err(BuildError::WrongPacketKind);
        }
        Self::start(buf, code, token)
    }

    fn start(buf: &'b mut [u8], code: Code, token: [u8; TOKEN_LEN]) -> Result<Self, BuildError> {
        let header = buf
            .get_mut(..HEADER_LEN)
            .ok_or(BuildError::BufferTooSmall)?;
        // Reserved-1 and Reserved-2 MUST be zero on send.
        header.fill(0);
        header[0] = code.as_u8();
        header[TOKEN_AT..TOKEN_AT + TOKEN_LEN].copy_from_slice(&token);
        Ok(Builder11 {
            buf,
            len: HEADER_LEN,
            request: None,
        })
    }

    fn reserve(&mut self, n: usize) -> Result<&mut [u8], BuildError> {
        super::builder::reserve(self.buf, &mut self.len, n)
    }

    /// Appends an attribute, its value as is: on RADIUS/1.1 that includes
    /// User-Password and the other formerly hidden attributes, in the clear.
    /// A Message-Authenticator is refused ([`BuildError::WrongPacketKind`]):
    /// RFC 9765 §5.2 forbids sending one.
    pub fn attr(&mut self, typ: u8, value: &[u8]) -> Result<(), BuildError> {
        if typ == MESSAGE_AUTHENTICATOR {
            return Err(BuildError::WrongPacketKind);
        }
        if value.len() > MAX_VALUE_LEN {
            return Err(BuildError::ValueTooLong);
        }
        super::builder::put_attr(self.reserve(2 + value.len())?, typ, value);
        Ok(())
    }

    /// Appends a Vendor-Specific attribute with one sub-attribute (RFC 2865
    /// §5.26 layout); MS-MPPE keys go here unencrypted.
    pub fn vsa(&mut self, vendor: u32, vtype: u8, value: &[u8]) -> Result<(), BuildError> {
        if value.len() > MAX_VSA_VALUE_LEN {
            return Err(BuildError::ValueTooLong);
        }
        super::builder::put_vsa(self.reserve(8 + value.len())?, vendor, vtype, value);
        Ok(())
    }

    /// Completes the packet and returns exactly its bytes.
    pub fn finish(mut self) -> Result<&'b [u8], BuildError> {
        if let Some(request) = self.request {
            for a in request.attributes().filter(|a| a.typ == PROXY_STATE) {
                self.attr(PROXY_STATE, a.value)?;
            }
        }
        let Builder11 { buf, len, .. } = self;
        let packet = buf.get_mut(..len).ok_or(BuildError::BufferTooSmall)?;
        // len <= MAX_PACKET_LEN (checked by reserve), so it fits in u16.
        packet[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        Ok(packet)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::attr::{STATE, USER_NAME, VENDOR_SPECIFIC};
    use crate::proto::MICROSOFT;

    const TOKEN: [u8; 4] = [0xde, 0xad, 0xbe, 0xef];

    fn access_request(buf: &mut [u8]) -> &[u8] {
        let mut b = Builder11::request(buf, Code::AccessRequest, TOKEN).unwrap();
        b.attr(USER_NAME, b"bob").unwrap();
        b.attr(USER_PASSWORD, b"correct horse battery staple")
            .unwrap();
        b.attr(PROXY_STATE, b"ps1").unwrap();
        b.finish().unwrap()
    }

    #[test]
    fn alpn_names() {
        assert_eq!(ALPN_RADIUS_1_0, b"radius/1.0");
        assert_eq!(ALPN_RADIUS_1_1, b"radius/1.1");
    }

    #[test]
    fn header_layout_is_token_then_zeros() {
        let mut buf = [0xffu8; 256];
        let p = access_request(&mut buf);
        assert_eq!(p[0], 1);
        assert_eq!(p[1], 0, "Reserved-1 is sent as zero");
        assert_eq!(usize::from(u16::from_be_bytes([p[2], p[3]])), p.len());
        assert_eq!(&p[4..8], &TOKEN);
        assert_eq!(&p[8..20], &[0; 12], "Reserved-2 is sent as zero");
    }

    #[test]
    fn user_password_readable_without_a_secret() {
        let mut buf = [0u8; 256];
        let p = Packet11::parse(access_request(&mut buf)).unwrap();
        assert_eq!(p.code(), Code::AccessRequest);
        assert_eq!(p.token(), TOKEN);
        assert_eq!(p.attr(USER_NAME), Some(&b"bob"[..]));
        assert_eq!(
            p.user_password(),
            Some(&b"correct horse battery staple"[..])
        );
        // And the wire carries it verbatim: no MD5 hiding, no padding.
        let wire = p.as_bytes();
        assert!(wire
            .windows(30)
            .any(|w| w == b"\x02\x1ecorrect horse battery staple"));
    }

    #[test]
    fn reserved_fields_ignored_on_receipt() {
        let mut buf = [0u8; 256];
        let mut p = access_request(&mut buf).to_vec();
        p[1] = 0x42;
        p[8..20].fill(0x99);
        let p = Packet11::parse(&p).unwrap();
        assert_eq!(p.token(), TOKEN);
        assert_eq!(
            p.user_password(),
            Some(&b"correct horse battery staple"[..])
        );
    }

    #[test]
    fn received_message_authenticator_is_ignored() {
        let mut buf = [0u8; 256];
        let mut p = access_request(&mut buf).to_vec();
        // Two of them, one of a wrong length: Packet::parse would refuse
        // this, a RADIUS/1.1 receiver treats them as invalid attributes.
        p.extend_from_slice(&[MESSAGE_AUTHENTICATOR, 18]);
        p.extend_from_slice(&[0; 16]);
        p.extend_from_slice(&[MESSAGE_AUTHENTICATOR, 3, 0]);
        let len = p.len() as u16;
        p[2..4].copy_from_slice(&len.to_be_bytes());
        let p = Packet11::parse(&p).unwrap();
        assert!(p.had_message_authenticator());
        assert!(p.attributes().all(|a| a.typ != MESSAGE_AUTHENTICATOR));
        assert_eq!(p.attributes().count(), 3);
    }

    #[test]
    fn builder_refuses_message_authenticator() {
        let mut buf = [0u8; 64];
        let mut b = Builder11::request(&mut buf, Code::StatusServer, TOKEN).unwrap();
        assert_eq!(
            b.attr(MESSAGE_AUTHENTICATOR, &[0; 16]),
            Err(BuildError::WrongPacketKind)
        );
        // Status-Server needs no Message-Authenticator here (unlike RFC 5997).
        let p = b.finish().unwrap();
        assert_eq!(p.len(), HEADER_LEN);
    }

    #[test]
    fn reply_echoes_token_and_proxy_state_in_the_clear() {
        let mut req_buf = [0u8; 256];
        let req = Packet11::parse(access_request(&mut req_buf)).unwrap();
        let mut buf = [0u8; 256];
        let mut b = Builder11::reply(&mut buf, Code::AccessAccept, &req).unwrap();
        b.attr(STATE, b"s").unwrap();
        b.vsa(MICROSOFT, crate::proto::MS_MPPE_SEND_KEY, &[7; 32])
            .unwrap();
        let reply = Packet11::parse(b.finish().unwrap()).unwrap();
        assert_eq!(reply.code(), Code::AccessAccept);
        assert_eq!(reply.token(), TOKEN);
        assert_eq!(reply.attr(PROXY_STATE), Some(&b"ps1"[..]));
        assert!(!reply.had_message_authenticator());
        let key = reply
            .attributes()
            .find(|a| a.typ == VENDOR_SPECIFIC)
            .unwrap();
        assert_eq!(&key.value[6..], &[7; 32]);
    }

    #[test]
    fn wrong_kinds_and_bad_framing() {
        let mut buf = [0u8; 64];
        assert!(Builder11::request(&mut buf, Code::AccessAccept, TOKEN).is_err());
        let mut req_buf = [0u8; 256];
        let req = Packet11::parse(access_request(&mut req_buf)).unwrap();
        assert!(Builder11::reply(&mut buf, Code::AccessRequest, &req).is_err());
        assert_eq!(
            Packet11::parse(&[1; 19]).unwrap_err(),
            DecodeError::TooShort
        );
        let mut p = [0u8; 22];
        p[0] = 1;
        p[3] = 22;
        p[20] = USER_NAME;
        p[21] = 1;
        assert_eq!(
            Packet11::parse(&p).unwrap_err(),
            DecodeError::AttributeTooShort { offset: 20 }
        );
        p[21] = 3;
        assert_eq!(
            Packet11::parse(&p).unwrap_err(),
            DecodeError::AttributeOverrun { offset: 20 }
        );
        p[0] = 99;
        assert_eq!(
            Packet11::parse(&p).unwrap_err(),
            DecodeError::UnknownCode(99)
        );
    }
}
