//! The RADIUS shared secret, with its MD5/HMAC key schedules precomputed.

use core::fmt;

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use subtle::ConstantTimeEq;

use super::error::SecretError;

/// HMAC-MD5 as used by Message-Authenticator (RFC 3579 §3.2).
pub(crate) type HmacMd5 = Hmac<Md5>;

/// A client's (or server's) shared secret.
///
/// Holds the raw octets plus two precomputed states so the per-packet cost
/// is a cheap clone instead of a key setup:
/// * a keyed HMAC-MD5 (ipad/opad blocks already compressed), and
/// * an MD5 that has already absorbed the secret, for the `MD5(S + x)`
///   keystreams of User-Password, Tunnel-Password and MPPE keys.
///
/// `Debug` never prints the octets, and they are wiped on drop.
#[derive(Clone)]
pub struct Secret {
    bytes: Box<[u8]>,
    hmac: HmacMd5,
    md5_prefix: Md5,
}

impl Secret {
    /// Wraps secret octets. Empty secrets are refused (RFC 2865 §3).
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Secret, SecretError> {
        let bytes: Box<[u8]> = bytes.into().into_boxed_slice();
        if bytes.is_empty() {
            return Err(SecretError::Empty);
        }
        // HMAC accepts keys of any length, so this cannot fail; map the
        // impossible error instead of unwrapping to keep the no-panic rule.
        let hmac = HmacMd5::new_from_slice(&bytes).map_err(|_| SecretError::Empty)?;
        let mut md5_prefix = Md5::new();
        md5_prefix.update(&bytes);
        Ok(Secret {
            bytes,
            hmac,
            md5_prefix,
        })
    }

    /// The raw secret octets.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Constant-time equality (length is not hidden, content is).
    pub fn ct_eq(&self, other: &Secret) -> bool {
        bool::from(self.bytes.ct_eq(&other.bytes))
    }

    /// A fresh HMAC-MD5 keyed with this secret.
    pub(crate) fn hmac(&self) -> HmacMd5 {
        self.hmac.clone()
    }

    /// A fresh MD5 that has already absorbed the secret.
    pub(crate) fn md5_with_secret(&self) -> Md5 {
        self.md5_prefix.clone()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        wipe(&mut self.bytes);
    }
}

/// Overwrites `bytes` with zeros, best effort: volatile writes and a fence keep the optimiser
/// from eliding stores to memory that is about to be freed or reused. Every buffer that held a
/// secret, password or code is wiped with this.
pub fn wipe(bytes: &mut [u8]) {
    for b in bytes.iter_mut() {
        // SAFETY: `b` is a valid, aligned, exclusive reference.
        unsafe { core::ptr::write_volatile(b, 0) };
    }
    core::sync::atomic::compiler_fence(core::sync::atomic::Ordering::SeqCst);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_empty_and_redacts() {
        assert_eq!(Secret::new(Vec::new()).err(), Some(SecretError::Empty));
        let s = Secret::new("hunter2").expect("non-empty");
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert_eq!(s.as_bytes(), b"hunter2");
    }

    #[test]
    fn ct_eq_compares_content() {
        let a = Secret::new("abc").expect("ok");
        let b = a.clone();
        let c = Secret::new("abd").expect("ok");
        let d = Secret::new("abcd").expect("ok");
        assert!(a.ct_eq(&b));
        assert!(!a.ct_eq(&c));
        assert!(!a.ct_eq(&d));
    }
}
