//! Tunnel-Password (RFC 2868 §3.5): `Tag + Salt + salted ciphertext`.
//! Only valid in replies; the keystream is seeded with the Request
//! Authenticator of the request being answered.

use super::super::secret::Secret;
use super::salted;
use super::CryptoError;

/// Longest attribute value `encrypt` produces: tag + salt + 240.
pub const MAX_VALUE_LEN: usize = 1 + salted::MAX_VALUE;
/// Longest password that fits.
pub const MAX_PASSWORD_LEN: usize = salted::MAX_DATA;
/// Largest valid tag (RFC 2868 §3.5: 0x01-0x1F, 0 meaning "no tag").
pub const MAX_TAG: u8 = 0x1f;

/// Encrypts `password` into the full attribute value (tag, salt, ciphertext)
/// inside `out`. The salt's high bit is forced on.
pub fn encrypt<'o>(
    secret: &Secret,
    request_authenticator: &[u8; 16],
    tag: u8,
    salt: u16,
    password: &[u8],
    out: &'o mut [u8; MAX_VALUE_LEN],
) -> Result<&'o [u8], CryptoError> {
    if tag > MAX_TAG {
        return Err(CryptoError::InvalidTag);
    }
    let mut body = [0u8; salted::MAX_VALUE];
    let n = salted::encrypt(secret, request_authenticator, salt, password, &mut body)?;
    out[0] = tag;
    out[1..1 + n].copy_from_slice(&body[..n]);
    Ok(&out[..1 + n])
}

/// Decrypts a Tunnel-Password value; returns `(tag, password)`.
pub fn decrypt<'o>(
    secret: &Secret,
    request_authenticator: &[u8; 16],
    value: &[u8],
    out: &'o mut [u8; 240],
) -> Result<(u8, &'o [u8]), CryptoError> {
    let (&tag, rest) = value.split_first().ok_or(CryptoError::BadLength)?;
    let pw = salted::decrypt(secret, request_authenticator, rest, out)?;
    Ok((tag, pw))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_limits() {
        let s = Secret::new("xyzzy5461").expect("ok");
        let ra = [3u8; 16];
        for n in [0usize, 1, 14, 15, 16, 100, MAX_PASSWORD_LEN] {
            let pw = vec![b'p'; n];
            let mut v = [0u8; MAX_VALUE_LEN];
            let value = encrypt(&s, &ra, 1, 0x1234, &pw, &mut v)
                .expect("fits")
                .to_vec();
            assert!(value.len() <= 253);
            assert_eq!(value[1] & 0x80, 0x80, "salt high bit");
            let mut o = [0u8; 240];
            assert_eq!(decrypt(&s, &ra, &value, &mut o).expect("ok"), (1, &pw[..]));
        }
        let mut v = [0u8; MAX_VALUE_LEN];
        assert_eq!(
            encrypt(&s, &ra, 0, 1, &[0; 240], &mut v),
            Err(CryptoError::TooLong)
        );
        assert_eq!(
            encrypt(&s, &ra, 0x20, 1, b"x", &mut v),
            Err(CryptoError::InvalidTag)
        );
        let mut o = [0u8; 240];
        assert_eq!(
            decrypt(&s, &ra, &[1, 0x80], &mut o),
            Err(CryptoError::BadLength)
        );
    }
}
