//! Stored passwords of local users: cleartext (needed for CHAP) or a crypt-style hash.

use subtle::ConstantTimeEq;

use super::mschap::NtHash;
use crate::cfg::{ConfigError, Located, SecretText};

/// A local user's password as stored.
pub enum StoredPassword {
    Cleartext(Box<[u8]>),
    /// `$argon2id$…` (PHC string).
    Argon2(String),
    /// `$2a$`/`$2b$`/`$2y$`.
    Bcrypt(String),
    /// `$6$…`.
    Sha512Crypt(String),
    /// The NT hash (MD4 of the UTF-16LE password): what MS-CHAP checks against.
    NtHash([u8; 16]),
}

impl std::fmt::Debug for StoredPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            StoredPassword::Cleartext(_) => "cleartext",
            StoredPassword::Argon2(_) => "argon2id",
            StoredPassword::Bcrypt(_) => "bcrypt",
            StoredPassword::Sha512Crypt(_) => "sha512-crypt",
            StoredPassword::NtHash(_) => "nt-hash",
        };
        write!(f, "StoredPassword({kind}, <redacted>)")
    }
}

impl StoredPassword {
    /// Parses a configured hash, refusing one its scheme's library cannot read.
    pub fn from_hash(h: &Located<SecretText>) -> Result<StoredPassword, ConfigError> {
        let s = h.value.expose();
        if s.starts_with("$argon2id$") {
            let parsed = argon2::PasswordHash::new(s)
                .map_err(|e| h.error(format!("invalid argon2id hash: {e}")))?;
            // The PHC grammar makes salt and hash optional ("$argon2id$garbage" parses, with
            // "garbage" as the salt); such a hash can never verify, so refuse it here.
            if parsed.salt.is_none() || parsed.hash.is_none() {
                return Err(h.error(
                    "invalid argon2id hash: expected $argon2id$v=19$m=…,t=…,p=…$<salt>$<hash>",
                ));
            }
            argon2::Params::try_from(&parsed)
                .map_err(|e| h.error(format!("invalid argon2id hash: {e}")))?;
            Ok(StoredPassword::Argon2(s.to_string()))
        } else if s.starts_with("$2a$") || s.starts_with("$2b$") || s.starts_with("$2y$") {
            // bcrypt has no parse-only call; verifying a dummy password checks the format.
            bcrypt::verify("", s).map_err(|e| h.error(format!("invalid bcrypt hash: {e}")))?;
            Ok(StoredPassword::Bcrypt(s.to_string()))
        } else if s.starts_with("$6$") {
            if !is_sha512_crypt(s) {
                return Err(h.error(
                    "invalid sha512-crypt hash: expected $6$[rounds=N$]salt$<86 characters>",
                ));
            }
            Ok(StoredPassword::Sha512Crypt(s.to_string()))
        } else {
            Err(h.error("unsupported password hash scheme"))
        }
    }

    /// Parses a configured NT hash (32 hex digits, checked when the config was read).
    pub fn from_nt_hash(h: &Located<SecretText>) -> Result<StoredPassword, ConfigError> {
        let mut hash = [0u8; 16];
        match data_encoding::HEXLOWER_PERMISSIVE.decode_mut(h.value.expose().as_bytes(), &mut hash)
        {
            Ok(16) => Ok(StoredPassword::NtHash(hash)),
            _ => Err(h.error("nt_hash must be 32 hex digits")),
        }
    }

    /// The NT hash MS-CHAP checks against: of the cleartext, or as stored. `None` for crypt
    /// hashes, from which it cannot be had (and for a cleartext MS-CHAP cannot hash).
    pub fn nt_hash(&self) -> Option<NtHash> {
        match self {
            StoredPassword::Cleartext(p) => NtHash::of_password(p),
            StoredPassword::NtHash(h) => Some(NtHash(*h)),
            _ => None,
        }
    }

    pub fn cleartext(&self) -> Option<&[u8]> {
        match self {
            StoredPassword::Cleartext(p) => Some(p),
            _ => None,
        }
    }

    /// Whether checking a password costs milliseconds (a deliberately slow hash): such checks
    /// run off the shard, on a blocking thread, so that a shard never stalls.
    pub fn is_slow(&self) -> bool {
        !matches!(
            self,
            StoredPassword::Cleartext(_) | StoredPassword::NtHash(_)
        )
    }

    /// Checks `candidate`. Constant time for cleartext; the hash libraries compare their
    /// digests in constant time themselves.
    pub fn verify(&self, candidate: &[u8]) -> bool {
        match self {
            StoredPassword::Cleartext(p) => {
                // Length is not secret-dependent in a way that matters here (ct_eq on
                // different lengths returns false without comparing contents).
                bool::from(p.as_ref().ct_eq(candidate))
            }
            StoredPassword::Argon2(h) => {
                use argon2::PasswordVerifier;
                argon2::PasswordHash::new(h).is_ok_and(|parsed| {
                    argon2::Argon2::default()
                        .verify_password(candidate, &parsed)
                        .is_ok()
                })
            }
            StoredPassword::Bcrypt(h) => bcrypt::verify(candidate, h).unwrap_or(false),
            StoredPassword::Sha512Crypt(h) => {
                std::str::from_utf8(candidate).is_ok_and(|c| sha_crypt::sha512_check(c, h).is_ok())
            }
            StoredPassword::NtHash(h) => NtHash::of_password(candidate)
                .is_some_and(|c| bool::from(c.0.as_ref().ct_eq(h.as_ref()))),
        }
    }
}

/// `$6$[rounds=N$]salt$hash`: salt up to 16 characters, hash 86, both in crypt's base64.
fn is_sha512_crypt(s: &str) -> bool {
    let crypt64 = |t: &str| {
        t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'/')
    };
    let mut parts: Vec<&str> = s.split('$').collect();
    if parts.len() == 6
        && parts[2]
            .strip_prefix("rounds=")
            .is_some_and(|n| n.parse::<u32>().is_ok())
    {
        parts.remove(2);
    }
    matches!(parts.as_slice(), ["", "6", salt, hash]
        if salt.len() <= 16 && hash.len() == 86 && crypt64(hash) && !salt.contains(':'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn located(s: &str) -> Located<SecretText> {
        let toml = format!("[[users]]\nname = \"u\"\npassword_hash = {s:?}\n");
        let c =
            crate::config::Config::from_str(&toml, std::path::Path::new("t.toml"), None).unwrap();
        match &c.users[0].password {
            Some(crate::auth::config::PasswordConfig::Hash(h)) => h.clone(),
            _ => unreachable!(),
        }
    }

    #[test]
    fn cleartext() {
        let p = StoredPassword::Cleartext(b"secret".to_vec().into());
        assert!(p.verify(b"secret"));
        assert!(!p.verify(b"secreT"));
        assert!(!p.verify(b"secret2"));
        assert!(!p.is_slow());
    }

    #[test]
    fn argon2id() {
        use argon2::password_hash::{PasswordHasher, SaltString};
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let hash = argon2::Argon2::default()
            .hash_password(b"pw", &salt)
            .unwrap()
            .to_string();
        let p = StoredPassword::from_hash(&located(&hash)).unwrap();
        assert!(p.verify(b"pw"));
        assert!(!p.verify(b"pW"));
        assert!(p.is_slow());
    }

    #[test]
    fn bcrypt_hash() {
        let hash = bcrypt::hash("pw", 4).unwrap();
        let p = StoredPassword::from_hash(&located(&hash)).unwrap();
        assert!(p.verify(b"pw"));
        assert!(!p.verify(b"px"));
    }

    #[test]
    fn sha512_crypt() {
        let params = sha_crypt::Sha512Params::new(5000).unwrap();
        let hash = sha_crypt::sha512_simple("pw", &params).unwrap();
        let p = StoredPassword::from_hash(&located(&hash)).unwrap();
        assert!(p.verify(b"pw"));
        assert!(!p.verify(b"p"));
    }

    #[test]
    fn nt_hash() {
        // MD4(UTF-16LE "clientPass"), RFC 2759 §9.2.
        let toml = "[[users]]\nname = \"u\"\nnt_hash = \"44EBBA8D5312B8D611474411F56989AE\"\n";
        let c =
            crate::config::Config::from_str(toml, std::path::Path::new("t.toml"), None).unwrap();
        let Some(crate::auth::config::PasswordConfig::NtHash(h)) = &c.users[0].password else {
            panic!("not an nt_hash");
        };
        let p = StoredPassword::from_nt_hash(h).unwrap();
        assert!(p.verify(b"clientPass"));
        assert!(!p.verify(b"clientpass"));
        assert!(!p.is_slow());
        assert_eq!(
            p.nt_hash().map(|h| h.0),
            Some(*b"\x44\xEB\xBA\x8D\x53\x12\xB8\xD6\x11\x47\x44\x11\xF5\x69\x89\xAE")
        );
        assert!(!format!("{p:?}").contains("44"));
        let bad = "[[users]]\nname = \"u\"\nnt_hash = \"44EB\"\n";
        let e =
            crate::config::Config::from_str(bad, std::path::Path::new("t.toml"), None).unwrap_err();
        assert_eq!(e.line, 3, "{e}");
    }

    #[test]
    fn broken_hashes_are_refused_with_their_line() {
        let e = StoredPassword::from_hash(&located("$argon2id$garbage")).unwrap_err();
        assert_eq!(e.file, PathBuf::from("t.toml"));
        assert_eq!(e.line, 3);
        assert!(StoredPassword::from_hash(&located("$2b$zz")).is_err());
    }
}
