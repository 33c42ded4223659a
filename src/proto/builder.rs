//! Writing and signing packets into caller-provided buffers.

use super::attr::{
    MAX_VALUE_LEN, MAX_VSA_VALUE_LEN, MESSAGE_AUTHENTICATOR, MICROSOFT, PROXY_STATE,
    TUNNEL_PASSWORD, USER_PASSWORD, VENDOR_SPECIFIC,
};
use super::attributes::split_tlv;
use super::code::Code;
use super::crypto::authenticator::{md5_authenticator, message_authenticator};
use super::crypto::{mppe, tunnel_password, user_password};
use super::error::BuildError;
use super::packet::Packet;
use super::secret::Secret;
use super::verified::Verified;
use super::{AUTH_LEN, HEADER_LEN, MAX_PACKET_LEN};

/// Builds one packet in place in `buf`; nothing is allocated.
///
/// The header's Authenticator field always holds the value that the
/// Message-Authenticator and MD5 authenticators are computed over (the
/// request's authenticator for replies, the caller's nonce for
/// Access-Request/Status-Server, zeros for Accounting/CoA/Disconnect
/// requests) until [`PacketBuilder::finish`] overwrites it, so signing is
/// one straight pass over the finished bytes.
pub struct PacketBuilder<'b, 'r> {
    buf: &'b mut [u8],
    len: usize,
    code: Code,
    /// Offset of our Message-Authenticator attribute, if any.
    ma_offset: Option<usize>,
    /// For replies: the request, whose Proxy-States are copied at finish.
    request: Option<Packet<'r>>,
    /// A reply: signed with the request's authenticator, which hides its attributes.
    reply: bool,
}

impl<'b, 'r> PacketBuilder<'b, 'r> {
    /// Starts a reply to `request`. The identifier and (for signing) the
    /// Request Authenticator are taken from the request. Access-Accept,
    /// -Reject and -Challenge (and any reply to Status-Server) get a
    /// Message-Authenticator as their FIRST attribute (BlastRADIUS
    /// guidance); its value is filled in by `finish`.
    pub fn reply(
        buf: &'b mut [u8],
        code: Code,
        request: &Verified<'r>,
    ) -> Result<Self, BuildError> {
        if code.is_request() {
            return Err(BuildError::WrongPacketKind);
        }
        let mut b = Self::answer(
            buf,
            code,
            request.code(),
            request.identifier(),
            request.authenticator(),
        )?;
        b.request = Some(*request.packet());
        Ok(b)
    }

    /// Starts a reply to a request known only by its code, Identifier and authenticator
    /// (one that reached us in another form: a RADIUS/1.1 edge). Like
    /// [`PacketBuilder::reply`], except that no Proxy-State is copied: the caller writes
    /// them.
    pub fn answer(
        buf: &'b mut [u8],
        code: Code,
        request_code: Code,
        identifier: u8,
        request_authenticator: &[u8; AUTH_LEN],
    ) -> Result<Self, BuildError> {
        if code.is_request() {
            return Err(BuildError::WrongPacketKind);
        }
        let mut b = Self::start(buf, code, identifier, request_authenticator)?;
        b.reply = true;
        // Replies to Status-Server carry one too: RFC 5997 §3 expects every
        // response to it to be authenticated by Message-Authenticator.
        if matches!(
            code,
            Code::AccessAccept | Code::AccessReject | Code::AccessChallenge
        ) || request_code == Code::StatusServer
        {
            b.message_authenticator()?;
        }
        Ok(b)
    }

    /// Starts a client-side request.
    ///
    /// For Access-Request and Status-Server, `authenticator` is the Request
    /// Authenticator and must be unpredictable (fresh random per request).
    /// For Accounting-, CoA- and Disconnect-Request it is IGNORED: the
    /// Request Authenticator is an MD5 over the packet computed by `finish`.
    /// Status-Server gets its mandatory Message-Authenticator (RFC 5997)
    /// automatically.
    pub fn request(
        buf: &'b mut [u8],
        code: Code,
        identifier: u8,
        authenticator: &[u8; AUTH_LEN],
    ) -> Result<Self, BuildError> {
        if !code.is_request() {
            return Err(BuildError::WrongPacketKind);
        }
        let auth = if code.has_computed_request_authenticator() {
            &[0; AUTH_LEN]
        } else {
            authenticator
        };
        let mut b = Self::start(buf, code, identifier, auth)?;
        if code == Code::StatusServer {
            b.message_authenticator()?;
        }
        Ok(b)
    }

    fn start(
        buf: &'b mut [u8],
        code: Code,
        identifier: u8,
        auth_field: &[u8; AUTH_LEN],
    ) -> Result<Self, BuildError> {
        let header = buf
            .get_mut(..HEADER_LEN)
            .ok_or(BuildError::BufferTooSmall)?;
        header[0] = code.as_u8();
        header[1] = identifier;
        header[2..4].copy_from_slice(&(HEADER_LEN as u16).to_be_bytes());
        header[4..].copy_from_slice(auth_field);
        Ok(PacketBuilder {
            buf,
            len: HEADER_LEN,
            code,
            ma_offset: None,
            request: None,
            reply: false,
        })
    }

    /// The code being built.
    pub fn code(&self) -> Code {
        self.code
    }

    /// Octets written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Never true: the header is always there.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Reserves room for `n` more octets, returning the slice to fill.
    fn reserve(&mut self, n: usize) -> Result<&mut [u8], BuildError> {
        reserve(self.buf, &mut self.len, n)
    }

    /// Adds a Message-Authenticator (value computed by `finish`). Idempotent:
    /// a packet carries at most one.
    pub fn message_authenticator(&mut self) -> Result<(), BuildError> {
        if self.ma_offset.is_some() {
            return Ok(());
        }
        let offset = self.len;
        let out = self.reserve(2 + AUTH_LEN)?;
        out[0] = MESSAGE_AUTHENTICATOR;
        out[1] = (2 + AUTH_LEN) as u8;
        out[2..].fill(0);
        self.ma_offset = Some(offset);
        Ok(())
    }

    /// Appends an attribute. A Message-Authenticator type is routed to
    /// [`Self::message_authenticator`] (value ignored) so a packet never
    /// carries two.
    pub fn attr(&mut self, typ: u8, value: &[u8]) -> Result<(), BuildError> {
        if typ == MESSAGE_AUTHENTICATOR {
            return self.message_authenticator();
        }
        if value.len() > MAX_VALUE_LEN {
            return Err(BuildError::ValueTooLong);
        }
        put_attr(self.reserve(2 + value.len())?, typ, value);
        Ok(())
    }

    /// Appends a Vendor-Specific attribute holding one sub-attribute in the
    /// RFC 2865 §5.26 layout.
    pub fn vsa(&mut self, vendor: u32, vtype: u8, value: &[u8]) -> Result<(), BuildError> {
        if value.len() > MAX_VSA_VALUE_LEN {
            return Err(BuildError::ValueTooLong);
        }
        put_vsa(self.reserve(8 + value.len())?, vendor, vtype, value);
        Ok(())
    }

    /// Appends pre-encoded attributes (e.g. per-user reply items prepared at
    /// config load). They are checked to be well-formed TLVs without a
    /// Message-Authenticator, so a bad blob cannot corrupt the packet.
    pub fn raw(&mut self, tlvs: &[u8]) -> Result<(), BuildError> {
        let mut rest = tlvs;
        while !rest.is_empty() {
            let (typ, _, r) = split_tlv(rest).ok_or(BuildError::MalformedRaw)?;
            if typ == MESSAGE_AUTHENTICATOR {
                return Err(BuildError::MalformedRaw);
            }
            rest = r;
        }
        self.reserve(tlvs.len())?.copy_from_slice(tlvs);
        Ok(())
    }

    /// The Request Authenticator that hides attributes in this packet:
    /// the request's for replies, our own for Access-Request. `None` where
    /// it is not known before `finish` (Accounting/CoA/Disconnect requests).
    fn hiding_authenticator(&self) -> Option<[u8; AUTH_LEN]> {
        if self.code.has_computed_request_authenticator() {
            return None;
        }
        self.buf.get(4..HEADER_LEN)?.try_into().ok()
    }

    /// Client side: appends a hidden User-Password (RFC 2865 §5.2) using
    /// this packet's Request Authenticator. Access-Request only.
    pub fn user_password(&mut self, secret: &Secret, plaintext: &[u8]) -> Result<(), BuildError> {
        if self.code != Code::AccessRequest {
            return Err(BuildError::WrongPacketKind);
        }
        let ra = self
            .hiding_authenticator()
            .ok_or(BuildError::WrongPacketKind)?;
        let mut out = [0u8; user_password::MAX_LEN];
        let hidden = user_password::hide(secret, &ra, plaintext, &mut out)?;
        self.attr(USER_PASSWORD, hidden)
    }

    /// Reply side: appends Tunnel-Password (RFC 2868 §3.5), encrypted with
    /// the request's authenticator. The salt's high bit is forced on; pass a
    /// fresh random salt per attribute.
    pub fn tunnel_password(
        &mut self,
        secret: &Secret,
        tag: u8,
        salt: u16,
        plaintext: &[u8],
    ) -> Result<(), BuildError> {
        let ra = self.reply_authenticator()?;
        let mut out = [0u8; tunnel_password::MAX_VALUE_LEN];
        let value = tunnel_password::encrypt(secret, &ra, tag, salt, plaintext, &mut out)?;
        self.attr(TUNNEL_PASSWORD, value)
    }

    /// Reply side: appends MS-MPPE-Send-Key (16) or -Recv-Key (17)
    /// (RFC 2548 §2.4.2-3), encrypted with the request's authenticator.
    pub fn mppe_key(
        &mut self,
        secret: &Secret,
        vtype: u8,
        salt: u16,
        key: &[u8],
    ) -> Result<(), BuildError> {
        let ra = self.reply_authenticator()?;
        let mut out = [0u8; mppe::MAX_VALUE_LEN];
        let value = mppe::encrypt(secret, &ra, salt, key, &mut out)?;
        self.vsa(MICROSOFT, vtype, value)
    }

    /// Reply side: appends MS-CHAP-MPPE-Keys (RFC 2548 §2.4.1), hidden like User-Password
    /// with the request's authenticator.
    pub fn ms_chap_mppe_keys(
        &mut self,
        secret: &Secret,
        keys: &[u8; super::crypto::mschap::V1_MPPE_KEYS_LEN],
    ) -> Result<(), BuildError> {
        let ra = self.reply_authenticator()?;
        let mut out = [0u8; user_password::MAX_LEN];
        let value = user_password::hide(secret, &ra, keys, &mut out)?;
        self.vsa(MICROSOFT, super::attr::MS_CHAP_MPPE_KEYS, value)
    }

    fn reply_authenticator(&self) -> Result<[u8; AUTH_LEN], BuildError> {
        if !self.reply {
            return Err(BuildError::WrongPacketKind);
        }
        self.hiding_authenticator()
            .ok_or(BuildError::WrongPacketKind)
    }

    /// Completes the packet and returns exactly its bytes.
    ///
    /// Replies get every Proxy-State of the request appended, in order
    /// (RFC 2865 §5.33). Then Length is written, the Message-Authenticator
    /// (if any) computed over the packet with the header Authenticator field
    /// as described on [`PacketBuilder`], and finally the Response
    /// Authenticator (replies) or Request Authenticator (Accounting/CoA/
    /// Disconnect) is computed and written.
    pub fn finish(mut self, secret: &Secret) -> Result<&'b [u8], BuildError> {
        if let Some(request) = self.request {
            for a in request.attributes().filter(|a| a.typ == PROXY_STATE) {
                self.attr(PROXY_STATE, a.value)?;
            }
        }
        let PacketBuilder {
            buf,
            len,
            code,
            ma_offset,
            reply,
            ..
        } = self;
        let packet = buf.get_mut(..len).ok_or(BuildError::BufferTooSmall)?;
        // len <= MAX_PACKET_LEN (checked by reserve), so it fits in u16.
        packet[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        let mut auth_field = [0u8; AUTH_LEN];
        auth_field.copy_from_slice(&packet[4..HEADER_LEN]);

        if let Some(off) = ma_offset {
            let mac = message_authenticator(secret, packet, &auth_field, off)
                .ok_or(BuildError::BufferTooSmall)?;
            packet[off + 2..off + 2 + AUTH_LEN].copy_from_slice(&mac);
        }
        if reply || code.has_computed_request_authenticator() {
            let auth =
                md5_authenticator(secret, packet, &auth_field).ok_or(BuildError::BufferTooSmall)?;
            packet[4..HEADER_LEN].copy_from_slice(&auth);
        }
        Ok(packet)
    }
}

/// The next `n` octets of `buf` after the `len` already written (`len` advanced past them),
/// within [`MAX_PACKET_LEN`]: the one bounds check both packet builders write through.
pub(super) fn reserve<'a>(
    buf: &'a mut [u8],
    len: &mut usize,
    n: usize,
) -> Result<&'a mut [u8], BuildError> {
    let end = *len + n;
    if end > MAX_PACKET_LEN {
        return Err(BuildError::PacketTooLong);
    }
    let out = buf.get_mut(*len..end).ok_or(BuildError::BufferTooSmall)?;
    *len = end;
    Ok(out)
}

/// Writes one attribute into `out`, which the caller reserved as exactly `2 + value.len()`
/// octets (the value's length checked against [`MAX_VALUE_LEN`] first).
pub(super) fn put_attr(out: &mut [u8], typ: u8, value: &[u8]) {
    out[0] = typ;
    out[1] = (2 + value.len()) as u8;
    out[2..].copy_from_slice(value);
}

/// Writes a Vendor-Specific attribute holding one sub-attribute (RFC 2865 §5.26 layout) into
/// `out`, reserved as exactly `8 + value.len()` octets (checked against
/// [`MAX_VSA_VALUE_LEN`] first).
pub(super) fn put_vsa(out: &mut [u8], vendor: u32, vtype: u8, value: &[u8]) {
    out[0] = VENDOR_SPECIFIC;
    out[1] = (8 + value.len()) as u8;
    out[2..6].copy_from_slice(&vendor.to_be_bytes());
    out[6] = vtype;
    out[7] = (2 + value.len()) as u8;
    out[8..].copy_from_slice(value);
}
