//! Error types of the codec. Every variant has a stable snake_case `label()`
//! so the dataplane can count drops by reason without formatting strings.

use super::crypto::CryptoError;

/// Why a datagram is not a well-formed RADIUS packet.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// Fewer than 20 octets: not even a header.
    #[error("datagram shorter than the 20-octet RADIUS header")]
    TooShort,
    /// The datagram itself is longer than 4096 octets. RFC 2865 §3 caps
    /// packets at 4096, and a receive loop sized for that never sees more,
    /// so a bigger datagram is treated as abuse rather than padding.
    #[error("datagram of {received} octets exceeds the 4096-octet maximum")]
    TooLong { received: usize },
    /// Length field below 20, above 4096, or above the octets received.
    #[error("length field {declared} invalid for a {received}-octet datagram")]
    BadLength { declared: u16, received: usize },
    /// A code this server does not implement.
    #[error("unknown packet code {0}")]
    UnknownCode(u8),
    /// An attribute whose Length octet is below 2.
    #[error("attribute at offset {offset} has length below 2")]
    AttributeTooShort { offset: usize },
    /// An attribute (or its 2-octet header) runs past the packet Length.
    #[error("attribute at offset {offset} overruns the packet")]
    AttributeOverrun { offset: usize },
    /// RFC 3579 §3.2 allows at most one Message-Authenticator.
    #[error("more than one Message-Authenticator")]
    DuplicateMessageAuthenticator,
    /// A Message-Authenticator must be exactly 18 octets long.
    #[error("Message-Authenticator length is not 18")]
    BadMessageAuthenticatorLength,
}

impl DecodeError {
    /// Stable metrics label for the drop reason.
    pub const fn label(&self) -> &'static str {
        match self {
            DecodeError::TooShort => "too_short",
            DecodeError::TooLong { .. } => "too_long",
            DecodeError::BadLength { .. } => "bad_length",
            DecodeError::UnknownCode(_) => "unknown_code",
            DecodeError::AttributeTooShort { .. } | DecodeError::AttributeOverrun { .. } => {
                "malformed_attribute"
            }
            DecodeError::DuplicateMessageAuthenticator => "duplicate_message_authenticator",
            DecodeError::BadMessageAuthenticatorLength => "bad_message_authenticator_length",
        }
    }
}

/// Why a packet failed authentication against its shared secret.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum VerifyError {
    /// `verify_request` was handed a response code.
    #[error("packet code is not a request")]
    NotARequest,
    /// `verify_response` was handed a request code.
    #[error("packet code is not a response")]
    NotAResponse,
    /// The packet must carry a Message-Authenticator and does not.
    #[error("required Message-Authenticator is missing")]
    MissingMessageAuthenticator,
    /// The Message-Authenticator HMAC does not match.
    #[error("Message-Authenticator does not verify")]
    BadMessageAuthenticator,
    /// Accounting/CoA/Disconnect Request Authenticator does not match.
    #[error("Request Authenticator does not verify")]
    BadRequestAuthenticator,
    /// A reply's Response Authenticator does not match.
    #[error("Response Authenticator does not verify")]
    BadResponseAuthenticator,
}

impl VerifyError {
    /// Stable metrics label for the drop reason.
    pub const fn label(&self) -> &'static str {
        match self {
            VerifyError::NotARequest => "not_a_request",
            VerifyError::NotAResponse => "not_a_response",
            VerifyError::MissingMessageAuthenticator => "missing_message_authenticator",
            VerifyError::BadMessageAuthenticator => "bad_message_authenticator",
            VerifyError::BadRequestAuthenticator => "bad_request_authenticator",
            VerifyError::BadResponseAuthenticator => "bad_response_authenticator",
        }
    }
}

/// Why a packet could not be built.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum BuildError {
    /// The caller's buffer cannot hold the next attribute.
    #[error("output buffer too small")]
    BufferTooSmall,
    /// An attribute value longer than its 1-octet Length allows.
    #[error("attribute value too long")]
    ValueTooLong,
    /// The packet would exceed 4096 octets.
    #[error("packet would exceed 4096 octets")]
    PacketTooLong,
    /// The operation does not fit this packet: a request code passed to
    /// `reply`, a reply code to `request`, or an attribute whose hiding
    /// needs an authenticator this packet does not have.
    #[error("operation not valid for this packet code")]
    WrongPacketKind,
    /// Pre-encoded attributes passed to `raw` are not well-formed TLVs, or
    /// contain a Message-Authenticator (which the builder owns).
    #[error("pre-encoded attributes are malformed")]
    MalformedRaw,
    /// Attribute hiding failed (plaintext too long, bad tag).
    #[error("attribute encryption failed: {0}")]
    Crypto(#[from] CryptoError),
}

impl BuildError {
    /// Stable metrics label.
    pub const fn label(&self) -> &'static str {
        match self {
            BuildError::BufferTooSmall => "buffer_too_small",
            BuildError::ValueTooLong => "value_too_long",
            BuildError::PacketTooLong => "packet_too_long",
            BuildError::WrongPacketKind => "wrong_packet_kind",
            BuildError::MalformedRaw => "malformed_raw",
            BuildError::Crypto(e) => e.label(),
        }
    }
}

/// Why a shared secret was refused.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum SecretError {
    /// RFC 2865 §3: the secret MUST NOT be empty.
    #[error("shared secret is empty")]
    Empty,
}
