//! The admin API's bearer tokens.
//!
//! The token file holds one token per line: a plain token, or `sha256:<64 hex>`, the SHA-256
//! of one (so the server's copy need not be able to authenticate anyone). Blank lines and
//! lines starting with `#` are skipped. Every token is hashed when the file is read and only
//! the hashes are kept; a presented token is hashed and compared with every stored hash in
//! constant time, all of them, so neither the comparison nor the number of comparisons tells
//! an attacker anything. Neither tokens nor hashes are ever logged or printed: `Debug` shows
//! only how many there are, and an error names a line, never its content.

use std::fmt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

/// Shorter plain tokens are refused: a bearer token is the API's only credential.
pub const MIN_TOKEN_LEN: usize = 16;
const HASH_PREFIX: &str = "sha256:";

/// Why a token file cannot be used. None of them carries a token.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("cannot read token file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("token file {}:{line}: a hashed token is \"sha256:\" and 64 hex digits", path.display())]
    BadHash { path: PathBuf, line: usize },
    #[error("token file {}:{line}: a token must be at least {MIN_TOKEN_LEN} characters long", path.display())]
    TooShort { path: PathBuf, line: usize },
    #[error("token file {}:{line}: a token cannot contain whitespace", path.display())]
    Whitespace { path: PathBuf, line: usize },
    #[error("token file {} holds no token: nobody could use the admin API", path.display())]
    Empty { path: PathBuf },
}

/// The hashes of the accepted tokens.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSet {
    hashes: Vec<[u8; 32]>,
    /// Whether any line is a plain token (then the file must not be readable by others).
    has_plain: bool,
}

impl fmt::Debug for TokenSet {
    // Hashes of short or guessable tokens can be brute-forced offline: keep them out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenSet({} token(s))", self.hashes.len())
    }
}

/// One line of a token file.
enum Line<'a> {
    Plain(&'a str),
    Hash([u8; 32]),
}

fn lines<'a>(
    path: &'a Path,
    text: &'a str,
) -> impl Iterator<Item = Result<Line<'a>, TokenError>> + 'a {
    text.lines().enumerate().filter_map(move |(i, raw)| {
        let line = i + 1;
        let t = raw.trim();
        if t.is_empty() || t.starts_with('#') {
            return None;
        }
        let path = path.to_path_buf();
        if let Some(hex) = t.strip_prefix(HASH_PREFIX) {
            return Some(
                parse_hash(hex)
                    .map(Line::Hash)
                    .ok_or(TokenError::BadHash { path, line }),
            );
        }
        if t.chars().any(char::is_whitespace) {
            return Some(Err(TokenError::Whitespace { path, line }));
        }
        if t.len() < MIN_TOKEN_LEN {
            return Some(Err(TokenError::TooShort { path, line }));
        }
        Some(Ok(Line::Plain(t)))
    })
}

fn parse_hash(hex: &str) -> Option<[u8; 32]> {
    let bytes = data_encoding::HEXLOWER_PERMISSIVE
        .decode(hex.as_bytes())
        .ok()?;
    bytes.try_into().ok()
}

fn read(path: &Path) -> Result<String, TokenError> {
    std::fs::read_to_string(path).map_err(|source| TokenError::Read {
        path: path.to_path_buf(),
        source,
    })
}

pub fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl TokenSet {
    /// Reads and checks a token file.
    pub fn load(path: &Path) -> Result<TokenSet, TokenError> {
        TokenSet::parse(path, &read(path)?)
    }

    /// Parses a token file's `text` (`path` names it in errors).
    pub fn parse(path: &Path, text: &str) -> Result<TokenSet, TokenError> {
        let mut hashes = Vec::new();
        let mut has_plain = false;
        for l in lines(path, text) {
            match l? {
                Line::Plain(t) => {
                    has_plain = true;
                    hashes.push(hash(t));
                }
                Line::Hash(h) => hashes.push(h),
            }
        }
        if hashes.is_empty() {
            return Err(TokenError::Empty {
                path: path.to_path_buf(),
            });
        }
        Ok(TokenSet { hashes, has_plain })
    }

    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    pub fn has_plain(&self) -> bool {
        self.has_plain
    }

    /// Whether `presented` is one of the tokens. Compares against every hash without an early
    /// exit, so the time taken says nothing about which (or whether one) matched.
    pub fn verify(&self, presented: &str) -> bool {
        let h = hash(presented);
        let mut found = Choice::from(0);
        for stored in &self.hashes {
            found |= stored.ct_eq(&h);
        }
        found.into()
    }
}

/// The first plain token of a token file: what the CLI presents when given no other.
pub fn first_plain_token(path: &Path) -> Result<Option<String>, TokenError> {
    let text = read(path)?;
    for l in lines(path, &text) {
        if let Line::Plain(t) = l? {
            return Ok(Some(t.to_string()));
        }
    }
    Ok(None)
}

/// Whether others than the owner and group can read `path` (a plain token there is anyone's).
pub fn world_readable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o004 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "0123456789abcdef-admin";

    #[test]
    fn plain_and_hashed_tokens_verify_and_others_do_not() {
        let hashed = "s3cond-token-of-the-api";
        let hex = data_encoding::HEXLOWER.encode(&hash(hashed));
        let text = format!("# admins\n\n{TOKEN}\n  sha256:{hex}  \n");
        let set = TokenSet::parse(Path::new("t"), &text).unwrap();
        assert_eq!(set.len(), 2);
        assert!(set.has_plain());
        assert!(set.verify(TOKEN));
        assert!(set.verify(hashed));
        assert!(!set.verify("0123456789abcdef-admiN"));
        assert!(!set.verify(""));
        assert!(
            !set.verify(&format!("sha256:{hex}")),
            "a hash is not a token"
        );
    }

    #[test]
    fn bad_files_are_refused_by_line_without_the_token() {
        let err = |text: &str| {
            TokenSet::parse(Path::new("tok"), text)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err("# nothing\n\n"),
            "token file tok holds no token: nobody could use the admin API"
        );
        let e = err("# c\nshort-secret\n");
        assert!(e.starts_with("token file tok:2: "), "{e}");
        assert!(!e.contains("short-secret"), "{e}");
        assert!(err("sha256:abcd\n").starts_with("token file tok:1: a hashed token"));
        let e = err("has a space in the middle\n");
        assert!(
            e.starts_with("token file tok:1:") && !e.contains("space in"),
            "{e}"
        );
    }

    #[test]
    fn debug_shows_no_hash() {
        let set = TokenSet::parse(Path::new("t"), TOKEN).unwrap();
        let d = format!("{set:?}");
        assert_eq!(d, "TokenSet(1 token(s))");
    }

    #[test]
    fn the_cli_takes_the_first_plain_token() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("tokens");
        let hex = data_encoding::HEXLOWER.encode(&hash("x"));
        std::fs::write(&p, format!("sha256:{hex}\n{TOKEN}\nsecond-token-0123456\n")).unwrap();
        assert_eq!(first_plain_token(&p).unwrap().as_deref(), Some(TOKEN));
        std::fs::write(&p, format!("sha256:{hex}\n")).unwrap();
        assert_eq!(first_plain_token(&p).unwrap(), None);
    }
}
