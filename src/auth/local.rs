//! Users defined in the configuration (or its users file).

use std::collections::HashMap;

use super::password::StoredPassword;
use super::{Method, RejectReason};
use crate::config::{ConfigError, PasswordConfig, UserConfig};
use crate::dict::Dictionary;
use crate::policy::ReplyAttributes;
use crate::proto::{chap_verify, Verified};

#[derive(Debug)]
pub struct LocalUser {
    pub name: String,
    pub password: StoredPassword,
    pub reply: ReplyAttributes,
    /// Groups network policies match.
    pub groups: Vec<String>,
    /// The built-in TOTP provider's secret, if enrolled.
    pub totp: Option<crate::backend::mfa::totp::TotpSecret>,
}

/// The local user table. Read-only once built; shared by all shards.
#[derive(Debug, Default)]
pub struct LocalUsers {
    by_name: HashMap<Box<[u8]>, LocalUser>,
}

/// The outcome of checking a request against the local table.
pub enum Decision<'u> {
    Accept(&'u LocalUser),
    Reject(RejectReason),
    /// The password is behind a slow hash: check it off the shard with
    /// [`StoredPassword::verify`], then accept with the user's reply attributes or reject.
    VerifySlowly(&'u LocalUser),
}

impl LocalUsers {
    pub fn build(users: &[UserConfig], dict: &Dictionary) -> Result<LocalUsers, ConfigError> {
        let mut by_name = HashMap::with_capacity(users.len());
        for u in users {
            let password = match &u.password {
                PasswordConfig::Cleartext(p) => {
                    StoredPassword::Cleartext(p.expose().as_bytes().into())
                }
                PasswordConfig::Hash(h) => StoredPassword::from_hash(h)?,
            };
            let reply = ReplyAttributes::compile(&u.reply, dict)?;
            by_name.insert(
                u.name.as_bytes().into(),
                LocalUser {
                    name: u.name.clone(),
                    password,
                    reply,
                    groups: u.groups.clone(),
                    totp: match &u.totp_secret {
                        Some(t) => Some(
                            crate::backend::mfa::totp::TotpSecret::from_base32(t.expose())
                                .map_err(|r| ConfigError::new(&u.file, u.line, r))?,
                        ),
                        None => None,
                    },
                },
            );
        }
        Ok(LocalUsers { by_name })
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

    /// Decides an Access-Request by PAP or CHAP against the table.
    pub fn decide<'u>(&'u self, req: &Verified<'_>) -> (Option<Method>, Decision<'u>) {
        let method = Method::of(req);
        let Some(name) = req.user_name() else {
            return (method, Decision::Reject(RejectReason::NoUserName));
        };
        let Some(user) = self.get(name) else {
            return (method, Decision::Reject(RejectReason::UnknownUser));
        };
        let decision = match method {
            Some(Method::Pap) => {
                if user.password.is_slow() {
                    Decision::VerifySlowly(user)
                } else {
                    let mut buf = [0u8; 128];
                    match req.user_password(&mut buf) {
                        Ok(pw) if user.password.verify(pw) => Decision::Accept(user),
                        Ok(_) => Decision::Reject(RejectReason::BadPassword),
                        Err(_) => Decision::Reject(RejectReason::MalformedPassword),
                    }
                }
            }
            Some(Method::Chap) => match (user.password.cleartext(), req.chap_password()) {
                (None, _) => Decision::Reject(RejectReason::ChapNeedsCleartext),
                (Some(_), None) => Decision::Reject(RejectReason::MalformedPassword),
                (Some(pw), Some((ident, response))) => {
                    if chap_verify(ident, pw, req.chap_challenge(), response) {
                        Decision::Accept(user)
                    } else {
                        Decision::Reject(RejectReason::BadPassword)
                    }
                }
            },
            None => Decision::Reject(RejectReason::NoSupportedCredentials),
        };
        (method, decision)
    }
}
