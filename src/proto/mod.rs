//! Sans-IO RADIUS wire codec.
//!
//! Nothing in here touches a socket, a clock or the heap on the hot path:
//! every function works on caller-provided byte slices and stack arrays, so
//! a shard can parse, verify, build and sign packets without allocating.
//!
//! The flow of a request through this module:
//!
//! 1. [`Packet::parse`] validates the framing of untrusted bytes once
//!    (header, Length, attribute TLVs, at most one Message-Authenticator)
//!    and hands back a zero-copy view.
//! 2. [`verify_request`] is the trust boundary: it checks the client's
//!    shared [`Secret`] against the packet (Message-Authenticator, Request
//!    Authenticator) and only then yields a [`Verified`] request.
//! 3. [`PacketBuilder::reply`] writes the answer into a caller buffer and
//!    [`PacketBuilder::finish`] signs it (Message-Authenticator first,
//!    Response Authenticator last).
//!
//! Attribute-level crypto (User-Password, Tunnel-Password, MS-MPPE keys,
//! CHAP) lives in [`crypto`], one file per mechanism.

pub mod attr;
mod attributes;
mod builder;
mod code;
pub mod crypto;
pub mod eap;
mod error;
/// Hidden attributes, moved between two secrets or into and out of the clear.
pub mod hidden;
mod packet;
/// RADIUS/1.1 (RFC 9765) packets: Token header, no MD5; a codec for the coming TLS transports.
pub mod radius11;
mod secret;
/// Length-delimited RADIUS framing over a byte stream; a codec for the coming TCP/TLS transports.
pub mod stream;
mod verified;
mod verify;

pub use attr::*;
pub use attributes::{
    Attribute, Attributes, SubAttribute, SubAttributes, VendorAttribute, VendorAttributes,
};
pub use builder::PacketBuilder;
pub use code::Code;
pub use crypto::{chap_response, chap_verify, CryptoError};
pub use error::{BuildError, DecodeError, SecretError, VerifyError};
pub use packet::Packet;
pub use secret::{wipe, Secret};
pub use verified::{Verified, VerifiedBuf};
pub use verify::{verify_request, verify_response};

/// Size of the fixed RADIUS header: Code, Identifier, Length, Authenticator.
pub const HEADER_LEN: usize = 20;
/// Size of the Request/Response Authenticator and of a Message-Authenticator value.
pub const AUTH_LEN: usize = 16;
/// Largest packet RFC 2865 §3 allows; also the largest datagram we accept.
pub const MAX_PACKET_LEN: usize = 4096;
