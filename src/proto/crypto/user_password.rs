//! User-Password hiding (RFC 2865 §5.2).
//!
//! The password is NUL-padded to a multiple of 16 octets (at most 128) and
//! XORed with the MD5 keystream seeded by the Request Authenticator.

use super::super::secret::Secret;
use super::keystream;
use super::CryptoError;

/// Longest password RFC 2865 §5.2 can carry.
pub const MAX_LEN: usize = 128;

/// Hides `plaintext` for a request with `authenticator`. Returns the
/// attribute value (a multiple of 16 octets, at least 16) inside `out`.
pub fn hide<'o>(
    secret: &Secret,
    authenticator: &[u8; 16],
    plaintext: &[u8],
    out: &'o mut [u8; MAX_LEN],
) -> Result<&'o [u8], CryptoError> {
    if plaintext.len() > MAX_LEN {
        return Err(CryptoError::TooLong);
    }
    // An empty password still occupies one block of NULs.
    let padded = plaintext.len().div_ceil(16).max(1) * 16;
    let data = &mut out[..padded];
    data.fill(0);
    data[..plaintext.len()].copy_from_slice(plaintext);
    keystream::encrypt_in_place(secret, &[authenticator], data);
    Ok(data)
}

/// Reveals a hidden User-Password value; trailing NUL padding is stripped.
pub fn unhide<'o>(
    secret: &Secret,
    authenticator: &[u8; 16],
    hidden: &[u8],
    out: &'o mut [u8; MAX_LEN],
) -> Result<&'o [u8], CryptoError> {
    if hidden.is_empty() || hidden.len() % 16 != 0 || hidden.len() > MAX_LEN {
        return Err(CryptoError::BadLength);
    }
    let data = &mut out[..hidden.len()];
    data.copy_from_slice(hidden);
    keystream::decrypt_in_place(secret, &[authenticator], data);
    let end = data.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    Ok(&data[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_all_lengths() {
        let s = Secret::new("s3cr3t").expect("ok");
        let ra = [7u8; 16];
        for n in 0..=MAX_LEN {
            let pw: Vec<u8> = (1..=n).map(|i| (i % 250) as u8 + 1).collect();
            let mut h = [0u8; MAX_LEN];
            let hidden = hide(&s, &ra, &pw, &mut h).expect("fits").to_vec();
            assert_eq!(hidden.len(), n.div_ceil(16).max(1) * 16);
            let mut o = [0u8; MAX_LEN];
            assert_eq!(unhide(&s, &ra, &hidden, &mut o).expect("ok"), &pw[..]);
        }
        let mut h = [0u8; MAX_LEN];
        assert_eq!(hide(&s, &ra, &[1; 129], &mut h), Err(CryptoError::TooLong));
        assert_eq!(
            unhide(&s, &ra, &[1; 15], &mut h),
            Err(CryptoError::BadLength)
        );
        assert_eq!(unhide(&s, &ra, &[], &mut h), Err(CryptoError::BadLength));
        assert_eq!(
            unhide(&s, &ra, &[1; 144], &mut h),
            Err(CryptoError::BadLength)
        );
    }
}
