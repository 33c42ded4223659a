//! Users defined in the configuration (or its users file).

use std::collections::HashMap;

use super::config::{PasswordConfig, UserConfig};
use super::password::StoredPassword;
use crate::backend::mfa::totp::TotpSecret;
use crate::cfg::ConfigError;
use crate::dict::Dictionary;
use crate::policy::ReplyAttributes;

#[derive(Debug)]
pub struct LocalUser {
    pub name: String,
    pub password: StoredPassword,
    pub reply: ReplyAttributes,
    /// Groups network policies match.
    pub groups: Vec<String>,
    /// The built-in TOTP provider's secret, if enrolled.
    pub totp: Option<crate::backend::mfa::totp::TotpSecret>,
    /// Simultaneous-Use: open sessions at most.
    pub simultaneous_use: Option<u32>,
}

/// The local user table. Read-only once built; shared by all shards.
#[derive(Debug, Default)]
pub struct LocalUsers {
    by_name: HashMap<Box<[u8]>, LocalUser>,
    /// MFA-only entries (`totp_secret` without a password): second factors of directory
    /// users, never primary credentials, so kept apart from `by_name`.
    mfa_only: HashMap<Box<[u8]>, (String, TotpSecret)>,
}

impl LocalUsers {
    pub fn build(users: &[UserConfig], dict: &Dictionary) -> Result<LocalUsers, ConfigError> {
        let mut by_name = HashMap::with_capacity(users.len());
        let mut mfa_only = HashMap::new();
        let totp = |u: &UserConfig| match &u.totp_secret {
            Some(t) => TotpSecret::from_base32(t.expose())
                .map(Some)
                .map_err(|r| ConfigError::new(&u.file, u.line, r)),
            None => Ok(None),
        };
        for u in users {
            let password = match &u.password {
                Some(PasswordConfig::Cleartext(p)) => {
                    StoredPassword::Cleartext(p.expose().as_bytes().into())
                }
                Some(PasswordConfig::Hash(h)) => StoredPassword::from_hash(h)?,
                Some(PasswordConfig::NtHash(h)) => StoredPassword::from_nt_hash(h)?,
                None => {
                    if let Some(secret) = totp(u)? {
                        mfa_only.insert(u.name.as_bytes().into(), (u.name.clone(), secret));
                    }
                    continue;
                }
            };
            let reply = ReplyAttributes::compile(&u.reply, dict)?;
            by_name.insert(
                u.name.as_bytes().into(),
                LocalUser {
                    name: u.name.clone(),
                    password,
                    reply,
                    groups: u.groups.clone(),
                    totp: totp(u)?,
                    simultaneous_use: u.simultaneous_use,
                },
            );
        }
        Ok(LocalUsers { by_name, mfa_only })
    }

    /// The built-in TOTP provider's secret for a user who passed primary authentication, and
    /// the name it is filed under (codes are single use per entry). Looked up by `mfa_user`
    /// (the name the provider knows: the directory's alternate login name, or the local
    /// user's name) first, then by the User-Name; in each, a user with a password before an
    /// MFA-only entry.
    pub fn totp_for(&self, mfa_user: &str, user_name: &[u8]) -> Option<(&str, &TotpSecret)> {
        let find = |name: &[u8]| {
            self.by_name
                .get(name)
                .and_then(|u| Some((u.name.as_str(), u.totp.as_ref()?)))
                .or_else(|| self.mfa_only.get(name).map(|(n, s)| (n.as_str(), s)))
        };
        find(mfa_user.as_bytes()).or_else(|| find(user_name))
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    pub fn get(&self, name: &[u8]) -> Option<&LocalUser> {
        self.by_name.get(name)
    }

    /// Whether `name` has only an MFA entry (a directory user's TOTP secret, no password).
    pub fn is_mfa_only(&self, name: &[u8]) -> bool {
        self.mfa_only.contains_key(name)
    }
}
