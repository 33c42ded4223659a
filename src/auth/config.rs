//! `[[users]]` (in the config file or `local.users_file`): local users, validated.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::cfg::{AttrValues, ConfigError, Lines, Located, SecretText};

/// A file with only users, for `local.users_file`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUsersFile {
    #[serde(default)]
    pub users: Vec<Spanned<RawUser>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUser {
    pub name: String,
    pub password: Option<String>,
    pub password_hash: Option<Spanned<String>>,
    /// The NT hash (MD4 of the UTF-16LE password, 32 hex digits, as `sambaNTPassword` and
    /// FreeRADIUS's NT-Password store it): PAP, MS-CHAP v1 and v2 work, CHAP does not.
    pub nt_hash: Option<Spanned<String>>,
    /// Reply attributes by dictionary name: `reply = { Session-Timeout = 3600, Class = ["a", "b"] }`.
    #[serde(default)]
    pub reply: BTreeMap<String, Spanned<AttrValues>>,
    /// Groups network policies can match for this user.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Base32 TOTP secret (RFC 6238) for the built-in `[mfa] provider = "totp"`.
    pub totp_secret: Option<Spanned<String>>,
    /// Simultaneous-Use: this user's open sessions at most (a login past it is rejected).
    pub simultaneous_use: Option<Spanned<u32>>,
}

#[derive(Debug, Clone)]
pub enum PasswordConfig {
    Cleartext(SecretText),
    /// A crypt-style hash (`$argon2id$…`, `$2b$…`, `$6$…`), checked for its scheme here and
    /// parsed fully when the user table is built.
    Hash(Located<SecretText>),
    /// An NT hash, 32 hex digits (checked here).
    NtHash(Located<SecretText>),
}

#[derive(Debug, Clone)]
pub struct UserConfig {
    pub name: String,
    /// `None`: an MFA-only entry (a `totp_secret` for a directory user of this name); it
    /// never authenticates as a primary.
    pub password: Option<PasswordConfig>,
    /// Reply attributes as written: `(name, value)` in file order, one entry per value.
    pub reply: Vec<Located<(String, String)>>,
    pub groups: Vec<String>,
    /// Base32 TOTP secret, checked to decode at load; never logged.
    pub totp_secret: Option<SecretText>,
    pub simultaneous_use: Option<u32>,
    pub file: PathBuf,
    pub line: usize,
}

/// The hash schemes local users may use, by crypt prefix.
const HASH_PREFIXES: &[(&str, &str)] = &[
    ("$argon2id$", "argon2id"),
    ("$2a$", "bcrypt"),
    ("$2b$", "bcrypt"),
    ("$2y$", "bcrypt"),
    ("$6$", "sha512-crypt"),
];

impl UserConfig {
    /// Validates one `[[users]]` entry of `file` (whose line starts are `lines`).
    pub fn from_raw(
        u: Spanned<RawUser>,
        file: &Path,
        lines: &Lines,
    ) -> Result<UserConfig, ConfigError> {
        let line = lines.line(u.span().start);
        let u = u.into_inner();
        if u.name.is_empty() {
            return Err(ConfigError::new(file, line, "user name must not be empty"));
        }
        if let Some(h) = &u.nt_hash {
            if u.password.is_some() || u.password_hash.is_some() {
                return Err(ConfigError::new(
                    file,
                    lines.line(h.span().start),
                    format!(
                        "user {:?}: set one of password, password_hash, nt_hash",
                        u.name
                    ),
                ));
            }
        }
        let password = match (u.password, u.password_hash) {
            (None, None) if u.nt_hash.is_some() => {
                let h = u.nt_hash.expect("checked");
                let hline = lines.line(h.span().start);
                let h = h.into_inner();
                if h.len() != 32 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(ConfigError::new(
                        file,
                        hline,
                        format!("user {:?}: nt_hash must be 32 hex digits", u.name),
                    ));
                }
                Some(PasswordConfig::NtHash(Located {
                    value: SecretText::new(h),
                    file: file.to_path_buf(),
                    line: hline,
                }))
            }
            (Some(p), None) => Some(PasswordConfig::Cleartext(SecretText::new(p))),
            (None, Some(h)) => {
                let hline = lines.line(h.span().start);
                let h = h.into_inner();
                if !HASH_PREFIXES.iter().any(|(p, _)| h.starts_with(p)) {
                    return Err(ConfigError::new(
                        file,
                        hline,
                        format!("user {:?}: password_hash must be argon2id ($argon2id$…), bcrypt ($2b$…) or sha512-crypt ($6$…)", u.name),
                    ));
                }
                Some(PasswordConfig::Hash(Located {
                    value: SecretText::new(h),
                    file: file.to_path_buf(),
                    line: hline,
                }))
            }
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    file,
                    line,
                    format!("user {:?}: set password or password_hash, not both", u.name),
                ))
            }
            // An MFA-only entry: the TOTP secret of a directory user (checked below).
            (None, None) if u.totp_secret.is_some() => None,
            (None, None) => {
                return Err(ConfigError::new(
                    file,
                    line,
                    format!(
                        "user {:?}: needs password, password_hash or nt_hash (or, for a directory user's second factor only, totp_secret)",
                        u.name
                    ),
                ))
            }
        };
        if password.is_none() && (!u.groups.is_empty() || !u.reply.is_empty()) {
            // Its user authenticates against the directory, which supplies the groups, and
            // reply attributes of local users apply to local authentications only.
            return Err(ConfigError::new(
                file,
                line,
                format!(
                    "user {:?} has no password (an MFA-only entry): groups and reply apply only to users with a password",
                    u.name
                ),
            ));
        }
        let totp_secret = match u.totp_secret {
            Some(t) => {
                let tline = lines.line(t.span().start);
                let t = t.into_inner();
                crate::backend::mfa::totp::TotpSecret::from_base32(&t).map_err(|reason| {
                    ConfigError::new(file, tline, format!("user {:?}: {reason}", u.name))
                })?;
                Some(SecretText::new(t))
            }
            None => None,
        };
        let mut reply = Vec::new();
        for (name, values) in u.reply {
            let vline = lines.line(values.span().start);
            for v in values.into_inner().0 {
                reply.push(Located {
                    value: (name.clone(), v),
                    file: file.to_path_buf(),
                    line: vline,
                });
            }
        }
        let simultaneous_use = match u.simultaneous_use {
            Some(n) if *n.get_ref() == 0 => {
                return Err(ConfigError::new(
                    file,
                    lines.line(n.span().start),
                    format!("user {:?}: simultaneous_use must be at least 1", u.name),
                ))
            }
            n => n.map(Spanned::into_inner),
        };
        Ok(UserConfig {
            name: u.name,
            password,
            reply,
            groups: u.groups,
            totp_secret,
            simultaneous_use,
            file: file.to_path_buf(),
            line,
        })
    }
}

/// Refuses a user name defined twice (in the config file, the users file, or both).
pub fn check_duplicates(users: &[UserConfig]) -> Result<(), ConfigError> {
    let mut seen = std::collections::HashMap::with_capacity(users.len());
    for u in users {
        if let Some((f, l)) = seen.insert(u.name.as_str(), (&u.file, u.line)) {
            return Err(ConfigError::new(
                &u.file,
                u.line,
                format!(
                    "user {:?} is already defined at {}:{}",
                    u.name,
                    f.display(),
                    l
                ),
            ));
        }
    }
    Ok(())
}

/// Warns about each user with a hashed password: CHAP (and, for crypt hashes, MS-CHAP)
/// cannot authenticate them.
pub fn warn_hashed_passwords(users: &[UserConfig], warnings: &mut Vec<ConfigError>) {
    for u in users {
        match &u.password {
            Some(PasswordConfig::Hash(h)) => warnings.push(h.error(format!(
                "user {:?} has a hashed password: PAP works, CHAP and MS-CHAP cannot authenticate this user (CHAP needs the cleartext, MS-CHAP the cleartext or nt_hash)",
                u.name
            ))),
            Some(PasswordConfig::NtHash(h)) => warnings.push(h.error(format!(
                "user {:?} has an nt_hash: PAP and MS-CHAP work, CHAP cannot authenticate this user (CHAP needs the cleartext)",
                u.name
            ))),
            _ => {}
        }
    }
}
