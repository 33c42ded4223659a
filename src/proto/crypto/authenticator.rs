//! Packet-level integrity checks, shared by verification and building so
//! the byte layout is written exactly once:
//!
//! * Message-Authenticator (RFC 3579 §3.2, RFC 5176 §3.1): HMAC-MD5 over the
//!   packet with the MA value as 16 zeros and the Authenticator field set to
//!   whatever the packet type prescribes.
//! * MD5 authenticators (RFC 2865 §3 Response, RFC 2866 §3 / RFC 5176 §3.5
//!   Request): MD5(Code + Identifier + Length + auth_field + Attributes + S).
//!
//! Both are computed by feeding slices of the packet around the substituted
//! fields, so the caller's bytes are never copied or modified.

use hmac::Mac;
use md5::{Digest, Md5};
use subtle::ConstantTimeEq;

use super::super::secret::Secret;
use super::super::{AUTH_LEN, HEADER_LEN};

const ZEROS: [u8; AUTH_LEN] = [0; AUTH_LEN];

/// HMAC-MD5 Message-Authenticator of `packet` (exactly Length octets).
///
/// `auth_field` replaces header octets 4..20 (Request Authenticator for
/// Access-Request/Status-Server and replies, zeros for Accounting/CoA/
/// Disconnect requests). `ma_offset` is the offset of the MA attribute
/// (its Type octet); its 16-octet value is replaced by zeros. Returns `None`
/// if the offsets do not fit the packet (never for parsed packets).
pub fn message_authenticator(
    secret: &Secret,
    packet: &[u8],
    auth_field: &[u8; AUTH_LEN],
    ma_offset: usize,
) -> Option<[u8; AUTH_LEN]> {
    let value_start = ma_offset.checked_add(2)?;
    let value_end = value_start.checked_add(AUTH_LEN)?;
    if value_start < HEADER_LEN || value_end > packet.len() {
        return None;
    }
    let mut mac = secret.hmac();
    mac.update(packet.get(..4)?);
    mac.update(auth_field);
    mac.update(packet.get(HEADER_LEN..value_start)?);
    mac.update(&ZEROS);
    mac.update(packet.get(value_end..)?);
    Some(mac.finalize().into_bytes().into())
}

/// Checks the Message-Authenticator value present in `packet` at
/// `ma_offset`, in constant time.
pub fn message_authenticator_ok(
    secret: &Secret,
    packet: &[u8],
    auth_field: &[u8; AUTH_LEN],
    ma_offset: usize,
) -> bool {
    let Some(expected) = message_authenticator(secret, packet, auth_field, ma_offset) else {
        return false;
    };
    let Some(received) =
        packet.get(ma_offset.saturating_add(2)..ma_offset.saturating_add(2 + AUTH_LEN))
    else {
        return false;
    };
    bool::from(expected.ct_eq(received))
}

/// MD5(packet[0..4] + auth_field + packet[20..] + secret): the Response
/// Authenticator when `auth_field` is the request's authenticator, the
/// Accounting/CoA/Disconnect Request Authenticator when it is zeros.
pub fn md5_authenticator(
    secret: &Secret,
    packet: &[u8],
    auth_field: &[u8; AUTH_LEN],
) -> Option<[u8; AUTH_LEN]> {
    let mut h = Md5::new();
    h.update(packet.get(..4)?);
    h.update(auth_field);
    h.update(packet.get(HEADER_LEN..)?);
    h.update(secret.as_bytes());
    Some(h.finalize().into())
}

/// Checks the packet's own Authenticator field against
/// [`md5_authenticator`], in constant time.
pub fn md5_authenticator_ok(secret: &Secret, packet: &[u8], auth_field: &[u8; AUTH_LEN]) -> bool {
    let Some(expected) = md5_authenticator(secret, packet, auth_field) else {
        return false;
    };
    let Some(received) = packet.get(4..HEADER_LEN) else {
        return false;
    };
    bool::from(expected.ct_eq(received))
}

/// The all-zero Authenticator field used for Accounting/CoA/Disconnect.
pub const ZERO_AUTHENTICATOR: [u8; AUTH_LEN] = ZEROS;
