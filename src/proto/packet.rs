//! A validated, zero-copy view over an untrusted datagram.

use core::fmt;

use super::attr::{MESSAGE_AUTHENTICATOR, VENDOR_SPECIFIC};
use super::attributes::{Attributes, VendorAttribute, VendorAttributes};
use super::code::Code;
use super::error::DecodeError;
use super::{AUTH_LEN, HEADER_LEN, MAX_PACKET_LEN};

/// A RADIUS packet whose framing has been validated by [`Packet::parse`].
///
/// Framing only: nothing about a `Packet` is authenticated. Pass it to
/// [`super::verify_request`] to obtain a [`super::Verified`] request.
#[derive(Clone, Copy)]
pub struct Packet<'a> {
    /// Exactly Length octets.
    bytes: &'a [u8],
    /// Header octets 4..20, split out at parse time so accessors need no
    /// fallible slicing.
    authenticator: &'a [u8; AUTH_LEN],
    code: Code,
    identifier: u8,
    /// Offset of the Message-Authenticator attribute's Type octet.
    ma_offset: Option<u16>,
}

/// The framing every RADIUS packet view checks first (RADIUS/UDP here, RADIUS/1.1 in
/// [`super::radius11`]): at least 20 octets; at most 4096 ([`DecodeError::TooLong`]); a Length
/// field in 20..=4096 and not beyond the datagram; a known code. Returns the header, the code
/// and the packet without the octets past Length (padding, RFC 2865 §3).
pub(super) fn frame(datagram: &[u8]) -> Result<(&[u8; HEADER_LEN], Code, &[u8]), DecodeError> {
    let received = datagram.len();
    let Some(header) = datagram.first_chunk::<HEADER_LEN>() else {
        return Err(DecodeError::TooShort);
    };
    if received > MAX_PACKET_LEN {
        return Err(DecodeError::TooLong { received });
    }
    let declared = u16::from_be_bytes([header[2], header[3]]);
    let len = usize::from(declared);
    if !(HEADER_LEN..=MAX_PACKET_LEN).contains(&len) || len > received {
        return Err(DecodeError::BadLength { declared, received });
    }
    let code = Code::from_u8(header[0]).ok_or(DecodeError::UnknownCode(header[0]))?;
    let bytes = datagram
        .get(..len)
        .ok_or(DecodeError::BadLength { declared, received })?;
    Ok((header, code, bytes))
}

impl<'a> Packet<'a> {
    /// Validates `datagram` in one pass without allocating.
    ///
    /// Checks, in order: at least 20 octets; at most 4096 octets
    /// ([`DecodeError::TooLong`]); Length field in 20..=4096 and not beyond
    /// the datagram; a known code; every attribute at least 2 octets long
    /// and inside Length; at most one Message-Authenticator, of length 18.
    /// Octets past Length are padding (RFC 2865 §3) and are dropped from the
    /// view.
    pub fn parse(datagram: &'a [u8]) -> Result<Packet<'a>, DecodeError> {
        let (header, code, bytes) = frame(datagram)?;
        let len = bytes.len();
        let (_, authenticator) = header
            .split_last_chunk::<AUTH_LEN>()
            .ok_or(DecodeError::TooShort)?;

        let mut ma_offset = None;
        let mut offset = HEADER_LEN;
        while offset < len {
            // `offset < len <= bytes.len()`, so the type octet exists; the
            // length octet might not.
            let Some(&alen) = bytes.get(offset + 1) else {
                return Err(DecodeError::AttributeOverrun { offset });
            };
            let alen = usize::from(alen);
            if alen < 2 {
                return Err(DecodeError::AttributeTooShort { offset });
            }
            if alen > len - offset {
                return Err(DecodeError::AttributeOverrun { offset });
            }
            if bytes.get(offset) == Some(&MESSAGE_AUTHENTICATOR) {
                if ma_offset.is_some() {
                    return Err(DecodeError::DuplicateMessageAuthenticator);
                }
                if alen != 2 + AUTH_LEN {
                    return Err(DecodeError::BadMessageAuthenticatorLength);
                }
                // offset < 4096, fits u16.
                ma_offset = Some(offset as u16);
            }
            offset += alen;
        }
        Ok(Packet {
            bytes,
            authenticator,
            code,
            identifier: header[1],
            ma_offset,
        })
    }

    /// The packet code.
    pub fn code(&self) -> Code {
        self.code
    }

    /// The Identifier octet.
    pub fn identifier(&self) -> u8 {
        self.identifier
    }

    /// The 16-octet Authenticator field.
    pub fn authenticator(&self) -> &'a [u8; AUTH_LEN] {
        self.authenticator
    }

    /// Length in octets (the Length field).
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Always false: a packet has at least a header. Provided for clippy's
    /// `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Exactly Length octets of the packet.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The attributes, in wire order.
    pub fn attributes(&self) -> Attributes<'a> {
        Attributes::new(self.bytes.get(HEADER_LEN..).unwrap_or(&[]))
    }

    /// Value of the first attribute of type `typ`.
    pub fn attr(&self, typ: u8) -> Option<&'a [u8]> {
        self.attributes().find(|a| a.typ == typ).map(|a| a.value)
    }

    /// Offset of the Message-Authenticator attribute (its Type octet; the
    /// 16-octet value starts 2 octets later), if present.
    pub fn message_authenticator_offset(&self) -> Option<usize> {
        self.ma_offset.map(usize::from)
    }

    /// The Vendor-Specific attributes that carry a Vendor-Id.
    pub fn vendor_attributes(&self) -> VendorAttributes<'a> {
        VendorAttributes::new(self.attributes())
    }

    /// Value of the first sub-attribute `vtype` of vendor `vendor`.
    pub fn vendor_attr(&self, vendor: u32, vtype: u8) -> Option<&'a [u8]> {
        self.attributes()
            .filter(|a| a.typ == VENDOR_SPECIFIC)
            .filter_map(|a| VendorAttribute::from_value(a.value))
            .filter(|v| v.vendor == vendor)
            .flat_map(|v| v.sub_attributes())
            .find(|s| s.vtype == vtype)
            .map(|s| s.value)
    }
}

impl fmt::Debug for Packet<'_> {
    // Attribute values are left out: they may carry (hidden) credentials
    // and logging them is never what a Debug print of a packet wants.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Packet")
            .field("code", &self.code)
            .field("identifier", &self.identifier())
            .field("len", &self.len())
            .field("message_authenticator", &self.ma_offset.is_some())
            .finish()
    }
}
