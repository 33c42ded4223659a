//! A request that its client's secret authenticated.

use super::attr::{CHAP_CHALLENGE, CHAP_PASSWORD, USER_NAME, USER_PASSWORD};
use super::attributes::{Attributes, VendorAttributes};
use super::code::Code;
use super::crypto::{user_password, CryptoError};
use super::packet::Packet;
use super::secret::Secret;

/// A request that passed [`super::verify_request`]. The only way to get one
/// is through that function (the constructor is private to `proto`), so
/// code taking a `Verified` never sees unauthenticated input by mistake.
///
/// It keeps the secret it was verified with, because answering the request
/// (User-Password, reply signing) needs the same secret.
#[derive(Clone, Copy, Debug)]
pub struct Verified<'a> {
    packet: Packet<'a>,
    secret: &'a Secret,
}

impl<'a> Verified<'a> {
    pub(super) fn new(packet: Packet<'a>, secret: &'a Secret) -> Self {
        Verified { packet, secret }
    }

    /// The request and its secret owned, to be handed to another thread (the proxy) that
    /// views it again without checking it a second time.
    pub fn to_owned_request(&self) -> VerifiedBuf {
        VerifiedBuf {
            bytes: self.packet.as_bytes().into(),
            secret: self.secret.clone(),
        }
    }

    /// The underlying packet view.
    pub fn packet(&self) -> &Packet<'a> {
        &self.packet
    }

    pub fn code(&self) -> Code {
        self.packet.code()
    }

    pub fn identifier(&self) -> u8 {
        self.packet.identifier()
    }

    /// The Request Authenticator.
    pub fn authenticator(&self) -> &'a [u8; 16] {
        self.packet.authenticator()
    }

    /// The secret the request was verified with.
    pub fn secret(&self) -> &'a Secret {
        self.secret
    }

    /// Whether the request carried a (valid) Message-Authenticator.
    pub fn has_message_authenticator(&self) -> bool {
        self.packet.message_authenticator_offset().is_some()
    }

    pub fn attributes(&self) -> Attributes<'a> {
        self.packet.attributes()
    }

    pub fn attr(&self, typ: u8) -> Option<&'a [u8]> {
        self.packet.attr(typ)
    }

    pub fn vendor_attributes(&self) -> VendorAttributes<'a> {
        self.packet.vendor_attributes()
    }

    /// Value of the first sub-attribute `vtype` of vendor `vendor`.
    pub fn vendor_attr(&self, vendor: u32, vtype: u8) -> Option<&'a [u8]> {
        self.packet.vendor_attr(vendor, vtype)
    }

    pub fn user_name(&self) -> Option<&'a [u8]> {
        self.attr(USER_NAME)
    }

    /// Reveals User-Password into `out` (RFC 2865 §5.2), trailing NULs
    /// stripped. [`CryptoError::MissingAttribute`] if absent.
    pub fn user_password<'o>(&self, out: &'o mut [u8; 128]) -> Result<&'o [u8], CryptoError> {
        let hidden = self
            .attr(USER_PASSWORD)
            .ok_or(CryptoError::MissingAttribute)?;
        user_password::unhide(self.secret, self.authenticator(), hidden, out)
    }

    /// CHAP-Password as `(CHAP ident, response)`; `None` if absent or not
    /// exactly 17 octets (RFC 2865 §5.3).
    pub fn chap_password(&self) -> Option<(u8, &'a [u8; 16])> {
        let (ident, response) = self.attr(CHAP_PASSWORD)?.split_first()?;
        Some((*ident, response.try_into().ok()?))
    }

    /// The CHAP challenge: CHAP-Challenge if present, else the Request
    /// Authenticator (RFC 2865 §5.3).
    pub fn chap_challenge(&self) -> &'a [u8] {
        self.attr(CHAP_CHALLENGE)
            .unwrap_or(self.authenticator().as_slice())
    }
}

/// An owned [`Verified`]: made only by [`Verified::to_owned_request`], so its bytes passed
/// [`super::verify_request`] once and [`VerifiedBuf::view`] need not check them again.
#[derive(Clone)]
pub struct VerifiedBuf {
    bytes: Box<[u8]>,
    secret: Secret,
}

impl VerifiedBuf {
    /// The verified request again (its framing parsed anew: it parsed before, so this
    /// returns `None` never; parsing is cheap, the crypto is what is skipped).
    pub fn view(&self) -> Option<Verified<'_>> {
        let packet = Packet::parse(&self.bytes).ok()?;
        Some(Verified::new(packet, &self.secret))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn secret(&self) -> &Secret {
        &self.secret
    }
}

impl std::fmt::Debug for VerifiedBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedBuf")
            .field("len", &self.bytes.len())
            .finish_non_exhaustive()
    }
}
