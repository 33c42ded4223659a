//! The salted framing shared by Tunnel-Password (RFC 2868 §3.5) and
//! MS-MPPE-Send/Recv-Key (RFC 2548 §2.4.2–2.4.3):
//!
//! ```text
//! value = Salt(2, high bit set) + ciphertext
//! plaintext = Length(1) + data + NUL padding to a multiple of 16
//! seed  = Request-Authenticator + Salt
//! ```

use super::super::secret::Secret;
use super::keystream;
use super::CryptoError;

/// Longest ciphertext that still fits a 253-octet attribute value (tunnel:
/// tag + salt + 240) and a 247-octet VSA value (MPPE: salt + 240).
pub(crate) const MAX_CIPHERTEXT: usize = 240;
/// Longest data: one octet of the ciphertext carries the length.
pub(crate) const MAX_DATA: usize = MAX_CIPHERTEXT - 1;
/// Salt plus the largest ciphertext.
pub(crate) const MAX_VALUE: usize = 2 + MAX_CIPHERTEXT;

/// Writes `salt || ciphertext` into `out` and returns its length. The salt's
/// high bit is forced on, as both RFCs require.
pub(crate) fn encrypt(
    secret: &Secret,
    request_authenticator: &[u8; 16],
    salt: u16,
    data: &[u8],
    out: &mut [u8; MAX_VALUE],
) -> Result<usize, CryptoError> {
    if data.len() > MAX_DATA {
        return Err(CryptoError::TooLong);
    }
    let salt = (salt | 0x8000).to_be_bytes();
    let padded = (1 + data.len()).div_ceil(16) * 16;
    out[..2].copy_from_slice(&salt);
    let body = &mut out[2..2 + padded];
    body.fill(0);
    // Length fits: MAX_DATA < 256.
    body[0] = data.len() as u8;
    body[1..1 + data.len()].copy_from_slice(data);
    keystream::encrypt_in_place(secret, &[request_authenticator, &salt], body);
    Ok(2 + padded)
}

/// Reverses [`encrypt`]: `value` is `salt || ciphertext`; the data is
/// returned inside `out`.
pub(crate) fn decrypt<'o>(
    secret: &Secret,
    request_authenticator: &[u8; 16],
    value: &[u8],
    out: &'o mut [u8; MAX_CIPHERTEXT],
) -> Result<&'o [u8], CryptoError> {
    let (salt, ct) = value.split_at_checked(2).ok_or(CryptoError::BadLength)?;
    if ct.is_empty() || ct.len() % 16 != 0 || ct.len() > MAX_CIPHERTEXT {
        return Err(CryptoError::BadLength);
    }
    let body = &mut out[..ct.len()];
    body.copy_from_slice(ct);
    keystream::decrypt_in_place(secret, &[request_authenticator, salt], body);
    let n = usize::from(body[0]);
    if n + 1 > body.len() {
        return Err(CryptoError::BadEmbeddedLength);
    }
    Ok(&body[1..1 + n])
}
