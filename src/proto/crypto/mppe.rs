//! MS-MPPE-Send-Key / MS-MPPE-Recv-Key (RFC 2548 §2.4.2–2.4.3): the VSA
//! value is `Salt + salted ciphertext` of `key-length + key + padding`,
//! seeded with the Request Authenticator of the request being answered.

use super::super::secret::Secret;
use super::salted;
use super::CryptoError;

/// Longest VSA value `encrypt` produces: salt + 240.
pub const MAX_VALUE_LEN: usize = salted::MAX_VALUE;
/// Longest key that fits in one VSA.
pub const MAX_KEY_LEN: usize = salted::MAX_DATA;

/// Encrypts `key` into the VSA value (salt + ciphertext) inside `out`.
pub fn encrypt<'o>(
    secret: &Secret,
    request_authenticator: &[u8; 16],
    salt: u16,
    key: &[u8],
    out: &'o mut [u8; MAX_VALUE_LEN],
) -> Result<&'o [u8], CryptoError> {
    let n = salted::encrypt(secret, request_authenticator, salt, key, out)?;
    Ok(&out[..n])
}

/// Decrypts an MS-MPPE key VSA value.
pub fn decrypt<'o>(
    secret: &Secret,
    request_authenticator: &[u8; 16],
    value: &[u8],
    out: &'o mut [u8; 240],
) -> Result<&'o [u8], CryptoError> {
    salted::decrypt(secret, request_authenticator, value, out)
}
