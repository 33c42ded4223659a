//! The Class radshard puts in an Access-Accept, which the NAS echoes in its accounting: how a
//! session is tied to the identity radshard authenticated (the inner identity of a PEAP or
//! TTLS login whose NAS accounts as `anonymous`).
//!
//! `ai:` + 32 hex digits + `:` + base64url(ChaCha20-Poly1305(identity)). The first part is
//! FreeRADIUS's `insert_acct_class` form, so its `acct_unique` policy (and ours,
//! [`super::unique_id`]) keys the session by it; the digits are 16 random octets, the first
//! 12 the AEAD nonce and all 16 its associated data. The identity is sealed rather than
//! written out: the NAS (or a visited network in a federation) learns nothing from it, and a
//! NAS cannot attribute a session to someone else (which would count against their
//! Simultaneous-Use cap). The key lives for the process: a Class from before a restart no
//! longer opens, and its session falls back to the accounted User-Name — but a session
//! recorded before the restart keeps its identity, which the accounting log carries.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use rand::RngCore;

use super::unique_id::CLASS_PREFIX;
use crate::proto::attr::MAX_VALUE_LEN;

const TOKEN_LEN: usize = 16;
const TAG_LEN: usize = 16;
/// `ai:` + digits + `:`.
const HEAD_LEN: usize = CLASS_PREFIX.len() + 2 * TOKEN_LEN + 1;
/// The longest identity that still fits one Class attribute once sealed and encoded.
pub const MAX_IDENTITY: usize = (MAX_VALUE_LEN - HEAD_LEN) / 4 * 3 - TAG_LEN;

/// One Class value, built without allocating.
#[derive(Clone, Copy)]
pub struct ClassTag {
    bytes: [u8; MAX_VALUE_LEN],
    len: u8,
}

impl ClassTag {
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl std::fmt::Debug for ClassTag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The sealed part is opaque; the digits are the session's key material.
        f.debug_struct("ClassTag")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

pub struct ClassSeal {
    key: LessSafeKey,
}

impl ClassSeal {
    pub fn random() -> ClassSeal {
        let mut key = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut key);
        ClassSeal::with_key(&key)
    }

    pub fn with_key(key: &[u8; 32]) -> ClassSeal {
        // A 32-byte key is the one length ChaCha20-Poly1305 takes, so this cannot fail.
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, key)
            .unwrap_or_else(|_| unreachable!("ChaCha20-Poly1305 takes 32-byte keys"));
        ClassSeal {
            key: LessSafeKey::new(unbound),
        }
    }

    /// A fresh Class naming `identity`; `None` when the identity is too long to seal into one
    /// attribute (the Accept then goes without: its session is keyed by the NAS's attributes).
    pub fn seal(&self, identity: &[u8]) -> Option<ClassTag> {
        if identity.len() > MAX_IDENTITY {
            return None;
        }
        let mut token = [0u8; TOKEN_LEN];
        rand::thread_rng().fill_bytes(&mut token);
        let mut sealed = [0u8; MAX_IDENTITY + TAG_LEN];
        let n = identity.len();
        sealed[..n].copy_from_slice(identity);
        let tag = self
            .key
            .seal_in_place_separate_tag(nonce(&token), Aad::from(&token), &mut sealed[..n])
            .ok()?;
        sealed[n..n + TAG_LEN].copy_from_slice(tag.as_ref());

        let mut out = ClassTag {
            bytes: [0u8; MAX_VALUE_LEN],
            len: 0,
        };
        let b = &mut out.bytes;
        b[..CLASS_PREFIX.len()].copy_from_slice(CLASS_PREFIX);
        data_encoding::HEXLOWER.encode_mut(&token, &mut b[CLASS_PREFIX.len()..HEAD_LEN - 1]);
        b[HEAD_LEN - 1] = b':';
        let enc = &data_encoding::BASE64URL_NOPAD;
        let body = enc.encode_len(n + TAG_LEN);
        enc.encode_mut(&sealed[..n + TAG_LEN], &mut b[HEAD_LEN..HEAD_LEN + body]);
        out.len = (HEAD_LEN + body) as u8;
        Some(out)
    }

    /// The identity sealed in a Class of ours, opened into `buf`; `None` for anyone else's
    /// Class, a forged or altered one, or one sealed before a restart.
    pub fn open<'b>(&self, class: &[u8], buf: &'b mut [u8; MAX_VALUE_LEN]) -> Option<&'b [u8]> {
        let head = class.get(..HEAD_LEN)?;
        if !head.starts_with(CLASS_PREFIX) || head[HEAD_LEN - 1] != b':' {
            return None;
        }
        let mut token = [0u8; TOKEN_LEN];
        data_encoding::HEXLOWER_PERMISSIVE
            .decode_mut(&head[CLASS_PREFIX.len()..HEAD_LEN - 1], &mut token)
            .ok()?;
        let body = &class[HEAD_LEN..];
        let enc = &data_encoding::BASE64URL_NOPAD;
        let len = enc.decode_len(body.len()).ok()?;
        let n = enc.decode_mut(body, buf.get_mut(..len)?).ok()?;
        let opened = self
            .key
            .open_in_place(nonce(&token), Aad::from(&token), &mut buf[..n])
            .ok()?;
        Some(opened)
    }
}

fn nonce(token: &[u8; TOKEN_LEN]) -> Nonce {
    let mut n = [0u8; NONCE_LEN];
    n.copy_from_slice(&token[..NONCE_LEN]);
    Nonce::assume_unique_for_key(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::UniqueId;

    #[test]
    fn seals_and_opens_and_refuses_forgeries() {
        let seal = ClassSeal::random();
        let class = seal.seal(b"alice@example.test").unwrap();
        let bytes = class.as_bytes();
        assert!(bytes.len() <= MAX_VALUE_LEN);
        assert!(UniqueId::class_digits(bytes).is_some(), "FreeRADIUS's form");
        assert!(
            !bytes.windows(5).any(|w| w == b"alice"),
            "the identity is sealed"
        );
        let mut buf = [0u8; MAX_VALUE_LEN];
        assert_eq!(seal.open(bytes, &mut buf), Some(&b"alice@example.test"[..]));

        // Two Accepts for one user get different Classes (and session ids).
        assert_ne!(seal.seal(b"alice").unwrap().as_bytes()[..35], bytes[..35]);

        // Any altered octet, another key, a foreign Class: nothing.
        for i in 0..bytes.len() {
            let mut forged = bytes.to_vec();
            forged[i] ^= 0x01;
            assert_eq!(seal.open(&forged, &mut buf), None, "octet {i}");
        }
        assert_eq!(ClassSeal::random().open(bytes, &mut buf), None);
        assert_eq!(
            seal.open(b"ai:0123456789abcdef0123456789abcdef", &mut buf),
            None
        );
        assert_eq!(seal.open(b"", &mut buf), None);
    }

    #[test]
    fn longest_identity_fits_one_attribute() {
        let seal = ClassSeal::random();
        let long = [b'x'; MAX_IDENTITY];
        let class = seal.seal(&long).unwrap();
        assert!(class.as_bytes().len() <= MAX_VALUE_LEN);
        let mut buf = [0u8; MAX_VALUE_LEN];
        assert_eq!(seal.open(class.as_bytes(), &mut buf), Some(&long[..]));
        assert!(seal.seal(&[b'x'; MAX_IDENTITY + 1]).is_none());
    }
}
