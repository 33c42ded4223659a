//! The RADIUS State of an OTP challenge: unguessable, integrity-protected, expiring, bound to
//! the client and user it was issued to.
//!
//! Layout (56 octets): 16 random octets ‖ expiry (u64 big-endian, Unix seconds) ‖
//! HMAC-SHA256(key, nonce ‖ expiry ‖ len(client) ‖ client ‖ len(user) ‖ user). The key is
//! random per process, so a State from another process (or a restart) is simply invalid —
//! unless the key comes from a file several nodes share ([`StateKey::from_material`],
//! `[mfa] state_key_file`): then any of them verifies it.
//!
//! A *sealed* State ([`StateKey::issue_sealed`], several nodes on one database) also carries
//! what the challenge remembers, so that another node can finish it: nonce ‖ expiry ‖
//! ChaCha20-Poly1305(payload) ‖ HMAC-SHA256(key, nonce ‖ expiry ‖ client ‖ user ‖ len ‖
//! sealed payload); at most [`MAX_STATE_LEN`] octets (one attribute), so at most
//! [`MAX_PAYLOAD`] octets of payload.
//! Single use is enforced by the challenge store ([`super::Conversations`]) and, across
//! nodes, by the database, not here.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

pub const NONCE_LEN: usize = 16;
const EXPIRY_LEN: usize = 8;
const TAG_LEN: usize = 32;
pub const STATE_LEN: usize = NONCE_LEN + EXPIRY_LEN + TAG_LEN;

pub type Nonce = [u8; NONCE_LEN];

/// Most octets of a State (one RADIUS attribute).
pub const MAX_STATE_LEN: usize = 253;
const AEAD_TAG_LEN: usize = 16;
/// Most octets a sealed State carries.
pub const MAX_PAYLOAD: usize = MAX_STATE_LEN - STATE_LEN - AEAD_TAG_LEN;
/// Least octets of key material in a shared State key file.
pub const MIN_MATERIAL: usize = 32;

/// A State as sent: the 56 octets of a node-local one, or up to 253 sealed. Inline (no
/// allocation per challenge).
#[derive(Clone, Copy)]
pub struct StateBuf {
    bytes: [u8; MAX_STATE_LEN],
    len: u8,
}

impl StateBuf {
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    pub fn to_vec(&self) -> Vec<u8> {
        self.as_slice().to_vec()
    }
}

impl From<[u8; STATE_LEN]> for StateBuf {
    fn from(s: [u8; STATE_LEN]) -> StateBuf {
        let mut bytes = [0u8; MAX_STATE_LEN];
        bytes[..STATE_LEN].copy_from_slice(&s);
        StateBuf {
            bytes,
            len: STATE_LEN as u8,
        }
    }
}

impl std::fmt::Debug for StateBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the State itself.
        f.debug_struct("StateBuf")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

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

/// The key material of a shared State key file (`[mfa] state_key_file`). Its `Debug` never
/// shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyMaterial(Vec<u8>);

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyMaterial(<redacted>)")
    }
}

impl Drop for KeyMaterial {
    fn drop(&mut self) {
        crate::proto::wipe(&mut self.0);
    }
}

impl KeyMaterial {
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// A derived 32-byte key for `purpose` (e.g. the Class seal, so that every node opens the
    /// Class another node sealed).
    pub fn derive(&self, purpose: &[u8]) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("any key length");
        mac.update(purpose);
        mac.finalize().into_bytes().into()
    }

    /// Reads a key file: its first line that is neither empty nor a `#` comment, in hex or
    /// base64, at least [`MIN_MATERIAL`] octets once decoded. Returns the material and a
    /// warning when other users may read the file.
    pub fn read(path: &std::path::Path) -> Result<(KeyMaterial, Option<String>), String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .ok_or_else(|| format!("{} holds no key", path.display()))?;
        let hex = data_encoding::HEXLOWER_PERMISSIVE.decode(line.as_bytes());
        let bytes = match hex {
            Ok(b) => b,
            Err(_) => data_encoding::BASE64
                .decode(line.as_bytes())
                .map_err(|_| format!("{}: the key is neither hex nor base64", path.display()))?,
        };
        if bytes.len() < MIN_MATERIAL {
            return Err(format!(
                "{}: the key has {} octets, at least {MIN_MATERIAL} are needed (e.g. `openssl rand -hex 32`)",
                path.display(),
                bytes.len()
            ));
        }
        let warning = {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(path)
                .ok()
                .filter(|m| m.permissions().mode() & 0o004 != 0)
                .map(|_| {
                    format!(
                        "{} is readable by every user: whoever reads it can forge MFA States (chmod 600)",
                        path.display()
                    )
                })
        };
        Ok((KeyMaterial(bytes), warning))
    }
}

/// Issues and checks States under one secret key.
pub struct StateKey {
    key: [u8; 32],
    /// The key payloads are sealed under (ChaCha20-Poly1305).
    seal: [u8; 32],
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
            seal: rand::random(),
        }
    }

    /// The key every node that reads the same `material` (a shared file, at least
    /// [`MIN_MATERIAL`] octets) derives alike: HMAC-SHA256 keys for the tag and the seal.
    pub fn from_material(material: &[u8]) -> StateKey {
        let derive = |label: &[u8]| -> [u8; 32] {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(material).expect("any key length");
            mac.update(label);
            mac.finalize().into_bytes().into()
        };
        StateKey {
            key: derive(b"radshard state tag v1"),
            seal: derive(b"radshard state seal v1"),
        }
    }

    fn aead(&self) -> aws_lc_rs::aead::LessSafeKey {
        use aws_lc_rs::aead::{LessSafeKey, UnboundKey, CHACHA20_POLY1305};
        // A 32-byte key is the one length ChaCha20-Poly1305 takes, so this cannot fail.
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, &self.seal)
            .unwrap_or_else(|_| unreachable!("ChaCha20-Poly1305 takes 32-byte keys"));
        LessSafeKey::new(unbound)
    }

    fn sealed_tag(&self, head: &[u8], sealed: &[u8], client: &str, user: &[u8]) -> [u8; TAG_LEN] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("any key length");
        mac.update(head);
        for part in [client.as_bytes(), user, sealed] {
            mac.update(&(part.len() as u32).to_be_bytes());
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    /// A fresh State for `client`/`user` expiring at `expiry` that carries `payload`
    /// (encrypted: the NAS sees none of it), and its nonce; `None` when the payload is longer
    /// than [`MAX_PAYLOAD`].
    pub fn issue_sealed(
        &self,
        client: &str,
        user: &[u8],
        expiry: u64,
        payload: &[u8],
    ) -> Option<(StateBuf, Nonce)> {
        use aws_lc_rs::aead::{Aad, Nonce as AeadNonce};
        if payload.len() > MAX_PAYLOAD {
            return None;
        }
        let nonce: Nonce = rand::random();
        let mut out = [0u8; MAX_STATE_LEN];
        out[..NONCE_LEN].copy_from_slice(&nonce);
        out[NONCE_LEN..NONCE_LEN + EXPIRY_LEN].copy_from_slice(&expiry.to_be_bytes());
        let head = NONCE_LEN + EXPIRY_LEN;
        let n = payload.len();
        out[head..head + n].copy_from_slice(payload);
        let mut iv = [0u8; 12];
        iv.copy_from_slice(&nonce[..12]);
        let tag = self
            .aead()
            .seal_in_place_separate_tag(
                AeadNonce::assume_unique_for_key(iv),
                Aad::empty(),
                &mut out[head..head + n],
            )
            .ok()?;
        out[head + n..head + n + AEAD_TAG_LEN].copy_from_slice(tag.as_ref());
        let end = head + n + AEAD_TAG_LEN;
        let t = self.sealed_tag(&out[..head], &out[head..end], client, user);
        out[end..end + TAG_LEN].copy_from_slice(&t);
        Some((
            StateBuf {
                bytes: out,
                len: (end + TAG_LEN) as u8,
            },
            nonce,
        ))
    }

    /// Checks a State, node-local ([`StateKey::verify`]) or sealed; returns the nonce, the
    /// expiry and, for a sealed one, its payload. The tag is checked (in constant time)
    /// before anything is decrypted or the expiry looked at.
    pub fn verify_any(
        &self,
        state: &[u8],
        client: &str,
        user: &[u8],
        now: u64,
    ) -> Result<(Nonce, u64, Option<Vec<u8>>), StateError> {
        use aws_lc_rs::aead::{Aad, Nonce as AeadNonce};
        if state.len() == STATE_LEN {
            return self
                .verify(state, client, user, now)
                .map(|(n, e)| (n, e, None));
        }
        if state.len() < STATE_LEN + AEAD_TAG_LEN || state.len() > MAX_STATE_LEN {
            return Err(StateError::Invalid);
        }
        let head = NONCE_LEN + EXPIRY_LEN;
        let end = state.len() - TAG_LEN;
        let want = self.sealed_tag(&state[..head], &state[head..end], client, user);
        if !bool::from(want.ct_eq(&state[end..])) {
            return Err(StateError::Invalid);
        }
        let mut nonce: Nonce = [0; NONCE_LEN];
        nonce.copy_from_slice(&state[..NONCE_LEN]);
        let mut exp = [0u8; EXPIRY_LEN];
        exp.copy_from_slice(&state[NONCE_LEN..head]);
        let expiry = u64::from_be_bytes(exp);
        if now >= expiry {
            return Err(StateError::Expired);
        }
        let mut iv = [0u8; 12];
        iv.copy_from_slice(&nonce[..12]);
        let mut sealed = state[head..end].to_vec();
        let plain = self
            .aead()
            .open_in_place(
                AeadNonce::assume_unique_for_key(iv),
                Aad::empty(),
                &mut sealed,
            )
            .map_err(|_| StateError::Invalid)?;
        let len = plain.len();
        sealed.truncate(len);
        Ok((nonce, expiry, Some(sealed)))
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
    fn sealed_round_trip_on_another_node() {
        let material = [7u8; 32];
        let (a, b) = (
            StateKey::from_material(&material),
            StateKey::from_material(&material),
        );
        let (s, n) = a
            .issue_sealed("nas1", b"alice", 1000, b"what the challenge remembers")
            .expect("fits");
        assert!(s.as_slice().len() > STATE_LEN);
        let (n2, exp, payload) = b
            .verify_any(s.as_slice(), "nas1", b"alice", 999)
            .expect("valid");
        assert_eq!((n2, exp), (n, 1000));
        assert_eq!(
            payload.as_deref(),
            Some(&b"what the challenge remembers"[..])
        );
        // The payload is not on the wire in the clear.
        assert!(!s.as_slice().windows(9).any(|w| w == b"challenge"));
        // A node-local State of the shared key verifies on the other node too (no payload).
        let (local, _) = a.issue("nas1", b"alice", 1000);
        assert_eq!(
            b.verify_any(&local, "nas1", b"alice", 10).map(|v| v.2),
            Ok(None)
        );
        // Another key, another user, any flipped octet, expiry: refused.
        let other = StateKey::from_material(&[8u8; 32]);
        assert_eq!(
            other.verify_any(s.as_slice(), "nas1", b"alice", 10).err(),
            Some(StateError::Invalid)
        );
        assert_eq!(
            b.verify_any(s.as_slice(), "nas1", b"bob", 10).err(),
            Some(StateError::Invalid)
        );
        for i in 0..s.as_slice().len() {
            let mut t = s.as_slice().to_vec();
            t[i] ^= 1;
            assert_eq!(
                b.verify_any(&t, "nas1", b"alice", 10).err(),
                Some(StateError::Invalid),
                "octet {i}"
            );
        }
        assert_eq!(
            b.verify_any(s.as_slice(), "nas1", b"alice", 1000).err(),
            Some(StateError::Expired)
        );
        assert_eq!(
            b.verify_any(&s.as_slice()[..70], "nas1", b"alice", 10)
                .err(),
            Some(StateError::Invalid)
        );
    }

    #[test]
    fn sealed_payload_is_bounded() {
        let k = StateKey::from_material(&[1u8; 40]);
        let (s, _) = k
            .issue_sealed("n", b"u", 10, &[0u8; MAX_PAYLOAD])
            .expect("fits");
        assert_eq!(s.as_slice().len(), MAX_STATE_LEN);
        assert!(k
            .issue_sealed("n", b"u", 10, &[0u8; MAX_PAYLOAD + 1])
            .is_none());
    }

    #[test]
    fn key_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let write = |name: &str, text: &str, mode: u32| {
            use std::os::unix::fs::PermissionsExt;
            let p = dir.path().join(name);
            std::fs::write(&p, text).expect("write");
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod");
            p
        };
        let hex = "ab".repeat(32);
        let (k, w) = KeyMaterial::read(&write("hex", &format!("# shared\n\n{hex}\n"), 0o600))
            .expect("hex key");
        assert_eq!(k.bytes(), &[0xab; 32]);
        assert!(w.is_none());
        let b64 = data_encoding::BASE64.encode(&[9u8; 48]);
        let (k, w) = KeyMaterial::read(&write("b64", &b64, 0o644)).expect("base64 key");
        assert_eq!(k.bytes(), &[9u8; 48]);
        assert!(w
            .expect("world-readable")
            .contains("readable by every user"));
        let short = KeyMaterial::read(&write("short", &"ab".repeat(31), 0o600)).unwrap_err();
        assert!(short.contains("31 octets"), "{short}");
        let bad = KeyMaterial::read(&write("bad", "not a key!", 0o600)).unwrap_err();
        assert!(bad.contains("neither hex nor base64"), "{bad}");
        assert!(KeyMaterial::read(&write("empty", "# nothing\n", 0o600)).is_err());
        assert!(format!("{k:?}").contains("redacted"));
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
