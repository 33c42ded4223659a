//! The RADIUS State of an OTP challenge: unguessable, integrity-protected, expiring, bound to
//! the client and user it was issued to.
//!
//! Layout (56 octets): 16 random octets ‖ expiry (u64 big-endian, Unix seconds) ‖
//! HMAC-SHA256(key, nonce ‖ expiry ‖ len(client) ‖ client ‖ len(user) ‖ user). The key is
//! random per process, so a State from another process (or a restart) is simply invalid.
//! Single use is enforced by the challenge store ([`super::Challenges`]), not here.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

pub const NONCE_LEN: usize = 16;
const EXPIRY_LEN: usize = 8;
const TAG_LEN: usize = 32;
pub const STATE_LEN: usize = NONCE_LEN + EXPIRY_LEN + TAG_LEN;

pub type Nonce = [u8; NONCE_LEN];

/// Why a State was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateError {
    /// Wrong length or a tag that does not verify (forged, altered, or for another user/client).
    Invalid,
    Expired,
}

impl StateError {
    pub fn label(self) -> &'static str {
        match self {
            StateError::Invalid => "mfa_state_invalid",
            StateError::Expired => "mfa_state_expired",
        }
    }
}

/// Issues and checks States under one secret key.
pub struct StateKey {
    key: [u8; 32],
}

impl std::fmt::Debug for StateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StateKey(<redacted>)")
    }
}

impl Default for StateKey {
    fn default() -> Self {
        StateKey::random()
    }
}

impl StateKey {
    pub fn random() -> StateKey {
        StateKey {
            key: rand::random(),
        }
    }

    fn tag(&self, nonce: &Nonce, expiry: u64, client: &str, user: &[u8]) -> [u8; TAG_LEN] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("any key length");
        mac.update(nonce);
        mac.update(&expiry.to_be_bytes());
        for part in [client.as_bytes(), user] {
            mac.update(&(part.len() as u32).to_be_bytes());
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    /// A fresh State for `client`/`user` expiring at `expiry` (Unix seconds), and its nonce
    /// (the key of the pending challenge).
    pub fn issue(&self, client: &str, user: &[u8], expiry: u64) -> ([u8; STATE_LEN], Nonce) {
        let nonce: Nonce = rand::random();
        let mut out = [0u8; STATE_LEN];
        out[..NONCE_LEN].copy_from_slice(&nonce);
        out[NONCE_LEN..NONCE_LEN + EXPIRY_LEN].copy_from_slice(&expiry.to_be_bytes());
        out[NONCE_LEN + EXPIRY_LEN..].copy_from_slice(&self.tag(&nonce, expiry, client, user));
        (out, nonce)
    }

    /// Checks `state` for `client`/`user` at time `now` (Unix seconds); the tag is compared in
    /// constant time before the expiry is looked at. Returns the nonce and the expiry.
    pub fn verify(
        &self,
        state: &[u8],
        client: &str,
        user: &[u8],
        now: u64,
    ) -> Result<(Nonce, u64), StateError> {
        if state.len() != STATE_LEN {
            return Err(StateError::Invalid);
        }
        let mut nonce: Nonce = [0; NONCE_LEN];
        nonce.copy_from_slice(&state[..NONCE_LEN]);
        let mut exp = [0u8; EXPIRY_LEN];
        exp.copy_from_slice(&state[NONCE_LEN..NONCE_LEN + EXPIRY_LEN]);
        let expiry = u64::from_be_bytes(exp);
        let want = self.tag(&nonce, expiry, client, user);
        if !bool::from(want.ct_eq(&state[NONCE_LEN + EXPIRY_LEN..])) {
            return Err(StateError::Invalid);
        }
        if now >= expiry {
            return Err(StateError::Expired);
        }
        Ok((nonce, expiry))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let k = StateKey::random();
        let (s, n) = k.issue("nas1", b"alice", 1000);
        assert_eq!(k.verify(&s, "nas1", b"alice", 999), Ok((n, 1000)));
    }

    #[test]
    fn two_states_differ() {
        let k = StateKey::random();
        let (a, _) = k.issue("nas1", b"alice", 1000);
        let (b, _) = k.issue("nas1", b"alice", 1000);
        assert_ne!(a, b);
    }

    #[test]
    fn forged_or_altered_state_is_invalid() {
        let k = StateKey::random();
        let (s, _) = k.issue("nas1", b"alice", 1000);
        for i in 0..STATE_LEN {
            let mut t = s;
            t[i] ^= 1;
            assert_eq!(
                k.verify(&t, "nas1", b"alice", 10),
                Err(StateError::Invalid),
                "bit flipped in octet {i}"
            );
        }
        // Pushing the expiry forward breaks the tag.
        let mut t = s;
        t[NONCE_LEN..NONCE_LEN + EXPIRY_LEN].copy_from_slice(&u64::MAX.to_be_bytes());
        assert_eq!(
            k.verify(&t, "nas1", b"alice", 2000),
            Err(StateError::Invalid)
        );
        // Random bytes, truncation, another process's key.
        assert_eq!(
            k.verify(&rand::random::<[u8; 32]>(), "nas1", b"alice", 10),
            Err(StateError::Invalid)
        );
        assert_eq!(
            k.verify(&s[..40], "nas1", b"alice", 10),
            Err(StateError::Invalid)
        );
        assert_eq!(
            StateKey::random().verify(&s, "nas1", b"alice", 10),
            Err(StateError::Invalid)
        );
    }

    #[test]
    fn bound_to_user_and_client() {
        let k = StateKey::random();
        let (s, _) = k.issue("nas1", b"alice", 1000);
        assert_eq!(k.verify(&s, "nas1", b"bob", 10), Err(StateError::Invalid));
        assert_eq!(k.verify(&s, "nas2", b"alice", 10), Err(StateError::Invalid));
        // Length prefixes keep ("nas1a", "lice") from colliding with ("nas1", "alice").
        assert_eq!(k.verify(&s, "nas1a", b"lice", 10), Err(StateError::Invalid));
    }

    #[test]
    fn expires() {
        let k = StateKey::random();
        let (s, _) = k.issue("nas1", b"alice", 1000);
        assert_eq!(
            k.verify(&s, "nas1", b"alice", 1000),
            Err(StateError::Expired)
        );
        assert_eq!(
            k.verify(&s, "nas1", b"alice", 5000),
            Err(StateError::Expired)
        );
    }
}
