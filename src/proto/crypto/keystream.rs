//! The MD5 "keystream" shared by User-Password (RFC 2865 §5.2),
//! Tunnel-Password (RFC 2868 §3.5) and MS-MPPE keys (RFC 2548 §2.4.2):
//!
//! ```text
//! b1 = MD5(S + seed)      c1 = p1 xor b1
//! bi = MD5(S + c(i-1))    ci = pi xor bi
//! ```
//!
//! The three mechanisms differ only in `seed` and in how the plaintext is
//! framed, so the chaining is written once here.

use md5::Digest;

use super::super::secret::Secret;

const BLOCK: usize = 16;

/// `MD5(S + parts...)` using the secret's pre-absorbed MD5 state.
fn pad_block(secret: &Secret, parts: &[&[u8]]) -> [u8; BLOCK] {
    let mut h = secret.md5_with_secret();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// Encrypts `data` in place. `data.len()` must be a multiple of 16; the
/// callers guarantee it (a trailing partial block would be left as is).
pub(crate) fn encrypt_in_place(secret: &Secret, seed: &[&[u8]], data: &mut [u8]) {
    let mut prev = [0u8; BLOCK];
    for (i, block) in data.chunks_exact_mut(BLOCK).enumerate() {
        let b = if i == 0 {
            pad_block(secret, seed)
        } else {
            pad_block(secret, &[&prev])
        };
        for (x, k) in block.iter_mut().zip(b.iter()) {
            *x ^= k;
        }
        // Chain on the ciphertext just produced.
        prev.copy_from_slice(block);
    }
}

/// Decrypts `data` in place; the inverse of [`encrypt_in_place`].
pub(crate) fn decrypt_in_place(secret: &Secret, seed: &[&[u8]], data: &mut [u8]) {
    let mut prev = [0u8; BLOCK];
    for (i, block) in data.chunks_exact_mut(BLOCK).enumerate() {
        let b = if i == 0 {
            pad_block(secret, seed)
        } else {
            pad_block(secret, &[&prev])
        };
        // Chain on the ciphertext, so remember it before overwriting.
        prev.copy_from_slice(block);
        for (x, k) in block.iter_mut().zip(b.iter()) {
            *x ^= k;
        }
    }
}
