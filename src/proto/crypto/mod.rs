//! Attribute-level cryptography, one file per mechanism. All functions
//! write into caller buffers; none allocates.
//!
//! Everything here is MD5 based because the RFCs say so, except MS-CHAP
//! (`mschap`), which is MD4, DES and SHA-1 for the same reason; none of it
//! is a modern construction, and none of it is meant to be.

pub mod authenticator;
pub mod chap;
mod keystream;
pub mod mppe;
pub mod mschap;
mod salted;
pub mod tunnel_password;
pub mod user_password;

pub use chap::{chap_response, chap_verify};

/// Why an attribute could not be hidden or revealed.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum CryptoError {
    /// Plaintext longer than the attribute can carry.
    #[error("plaintext too long for this attribute")]
    TooLong,
    /// Ciphertext is empty, not a multiple of 16 octets, or too long.
    #[error("ciphertext has an invalid length")]
    BadLength,
    /// The decrypted length octet claims more data than was encrypted.
    #[error("embedded length octet out of range")]
    BadEmbeddedLength,
    /// RFC 2868 tags are 0x00..=0x1F.
    #[error("tunnel tag out of range")]
    InvalidTag,
    /// The attribute to decrypt is not in the packet.
    #[error("attribute not present")]
    MissingAttribute,
}

impl CryptoError {
    /// Stable metrics label.
    pub const fn label(&self) -> &'static str {
        match self {
            CryptoError::TooLong => "crypto_too_long",
            CryptoError::BadLength => "crypto_bad_length",
            CryptoError::BadEmbeddedLength => "crypto_bad_embedded_length",
            CryptoError::InvalidTag => "crypto_invalid_tag",
            CryptoError::MissingAttribute => "crypto_missing_attribute",
        }
    }
}
