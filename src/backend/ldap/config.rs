//! `[ldap]`: the directory used for primary authentication of users not defined locally.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::filter::RealmMode;
use crate::cfg::{ConfigError, DurationValue, SecretText};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLdap {
    /// `ldap://host:port` or `ldaps://host:port`, tried in order (failover).
    pub servers: Spanned<Vec<String>>,
    #[serde(default)]
    pub starttls: bool,
    /// PEM CA bundle trusted for LDAPS/StartTLS; absent: the system roots.
    pub ca_file: Option<Spanned<PathBuf>>,
    /// Skips certificate verification. For tests only; check-config warns.
    pub tls_insecure_skip_verify: Option<Spanned<bool>>,
    pub bind_dn: String,
    pub bind_password: Spanned<String>,
    pub base_dn: String,
    /// A filter with `{user}`, e.g. `(uid={user})` or `(sAMAccountName={user})`.
    pub user_filter: Spanned<String>,
    /// `strip` (default) or `keep` the realm of `user@realm` / `DOMAIN\user`.
    pub realm: Option<RawRealm>,
    /// Realms served (case-insensitive); empty: any.
    #[serde(default)]
    pub realms: Vec<String>,
    /// Attribute whose value is presented to later stages (MFA) instead of the login name,
    /// as the NPS extension's LDAP_ALTERNATE_LOGINID_ATTRIBUTE (e.g. `userPrincipalName`).
    pub alternate_login_attribute: Option<String>,
    /// Attribute listing the user's groups (default `memberOf`).
    pub group_attribute: Option<String>,
    /// Attribute holding the user's NT hash (`sambaNTPassword`: 32 hex digits, or 16 raw
    /// octets), read with the service account: MS-CHAP is checked against it. Unset: MS-CHAP
    /// users of the directory need `[winbind]`.
    pub nt_password_attribute: Option<String>,
    /// Expand nested groups with LDAP_MATCHING_RULE_IN_CHAIN (Active Directory only).
    #[serde(default)]
    pub nested_groups: bool,
    /// Where nested-group searches start; default `base_dn`.
    pub group_base_dn: Option<String>,
    /// User-bind connections per server (searches share one multiplexed connection).
    pub pool_size: Option<Spanned<usize>>,
    pub connect_timeout: Option<DurationValue>,
    /// Per LDAP operation.
    pub timeout: Option<DurationValue>,
    /// First wait before retrying a server that failed; doubles up to `reconnect_backoff_max`.
    pub reconnect_backoff: Option<DurationValue>,
    pub reconnect_backoff_max: Option<DurationValue>,
    /// Reply-Message sent with the reject, by reason label (`account_locked`, `password_expired`,
    /// …); none by default.
    #[serde(default)]
    pub reject_messages: BTreeMap<String, Spanned<String>>,
}

impl std::fmt::Debug for RawLdap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the service account's password.
        f.debug_struct("RawLdap")
            .field("servers", self.servers.get_ref())
            .field("bind_dn", &self.bind_dn)
            .field("base_dn", &self.base_dn)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub enum RawRealm {
    Strip,
    Keep,
}

/// A validated `[ldap]` section. Debug never shows the service account's password.
#[derive(Debug, Clone)]
pub struct LdapConfig {
    pub servers: Vec<String>,
    pub starttls: bool,
    pub ca_file: Option<PathBuf>,
    pub tls_insecure_skip_verify: bool,
    pub bind_dn: String,
    pub bind_password: SecretText,
    pub base_dn: String,
    pub user_filter: String,
    pub realm: RealmMode,
    pub realms: Vec<String>,
    pub alternate_login_attribute: Option<String>,
    pub group_attribute: String,
    pub nt_password_attribute: Option<String>,
    pub nested_groups: bool,
    pub group_base_dn: String,
    pub pool_size: usize,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    pub reconnect_backoff: Duration,
    pub reconnect_backoff_max: Duration,
    pub reject_messages: BTreeMap<String, String>,
}

/// Reject reasons an operator may attach a Reply-Message to.
const MESSAGE_REASONS: &[&str] = &[
    "bad_password",
    "unknown_user",
    "logon_restricted",
    "password_expired",
    "password_must_change",
    "account_disabled",
    "account_expired",
    "account_locked",
];

impl LdapConfig {
    pub fn from_raw(
        raw: RawLdap,
        origin: &Path,
        at: &impl Fn(std::ops::Range<usize>) -> usize,
        resolve: &impl Fn(&Path) -> PathBuf,
        warnings: &mut Vec<ConfigError>,
    ) -> Result<LdapConfig, ConfigError> {
        let err = |span: std::ops::Range<usize>, m: String| ConfigError::new(origin, at(span), m);
        let servers_span = raw.servers.span();
        let servers = raw.servers.into_inner();
        if servers.is_empty() {
            return Err(err(
                servers_span,
                "ldap.servers must list at least one server".into(),
            ));
        }
        for s in &servers {
            if !(s.starts_with("ldap://") || s.starts_with("ldaps://")) {
                return Err(err(
                    servers_span.clone(),
                    format!("ldap server {s:?} must start with ldap:// or ldaps://"),
                ));
            }
            let loopback = ["ldap://127.", "ldap://localhost", "ldap://[::1]"]
                .iter()
                .any(|p| s.starts_with(p));
            if s.starts_with("ldap://") && !raw.starttls && !loopback {
                warnings.push(err(
                    servers_span.clone(),
                    format!(
                        "ldap server {s:?} without starttls: passwords cross the network in clear"
                    ),
                ));
            }
        }
        let filter_span = raw.user_filter.span();
        let user_filter = raw.user_filter.into_inner();
        if !user_filter.contains("{user}") {
            return Err(err(
                filter_span,
                "ldap.user_filter must contain {user}".into(),
            ));
        }
        if !(user_filter.starts_with('(') && user_filter.ends_with(')')) {
            return Err(err(
                filter_span,
                "ldap.user_filter must be a parenthesised LDAP filter such as \"(uid={user})\""
                    .into(),
            ));
        }
        let pool_size = match raw.pool_size {
            Some(n) if *n.get_ref() == 0 || *n.get_ref() > 1024 => {
                return Err(err(
                    n.span(),
                    "ldap.pool_size must be between 1 and 1024".into(),
                ))
            }
            Some(n) => n.into_inner(),
            None => 16,
        };
        let ca_file = match raw.ca_file {
            Some(p) => {
                let path = resolve(p.get_ref());
                if let Err(e) = std::fs::metadata(&path) {
                    return Err(err(
                        p.span(),
                        format!("cannot read ldap.ca_file {}: {e}", path.display()),
                    ));
                }
                Some(path)
            }
            None => None,
        };
        let mut reject_messages = BTreeMap::new();
        for (reason, msg) in raw.reject_messages {
            if !MESSAGE_REASONS.contains(&reason.as_str()) {
                return Err(err(
                    msg.span(),
                    format!(
                        "ldap.reject_messages: unknown reason {reason:?} (one of {})",
                        MESSAGE_REASONS.join(", ")
                    ),
                ));
            }
            if msg.get_ref().len() > 253 {
                return Err(err(
                    msg.span(),
                    "a Reply-Message is at most 253 octets".into(),
                ));
            }
            reject_messages.insert(reason, msg.into_inner());
        }
        let tls_insecure_skip_verify = match raw.tls_insecure_skip_verify {
            Some(v) if *v.get_ref() => {
                warnings.push(err(
                    v.span(),
                    "ldap.tls_insecure_skip_verify = true: the directory's certificate is not checked".into(),
                ));
                true
            }
            _ => false,
        };
        if raw.bind_password.get_ref().is_empty() {
            return Err(err(
                raw.bind_password.span(),
                "ldap.bind_password must not be empty (an empty simple bind is unauthenticated)"
                    .into(),
            ));
        }
        Ok(LdapConfig {
            servers,
            starttls: raw.starttls,
            ca_file,
            tls_insecure_skip_verify,
            bind_dn: raw.bind_dn,
            bind_password: SecretText::new(raw.bind_password.into_inner()),
            group_base_dn: raw.group_base_dn.unwrap_or_else(|| raw.base_dn.clone()),
            base_dn: raw.base_dn,
            user_filter,
            realm: match raw.realm {
                Some(RawRealm::Keep) => RealmMode::Keep,
                _ => RealmMode::Strip,
            },
            realms: raw.realms,
            alternate_login_attribute: raw.alternate_login_attribute,
            group_attribute: raw.group_attribute.unwrap_or_else(|| "memberOf".into()),
            nt_password_attribute: raw.nt_password_attribute,
            nested_groups: raw.nested_groups,
            pool_size,
            connect_timeout: raw.connect_timeout.map_or(Duration::from_secs(2), |d| d.0),
            timeout: raw.timeout.map_or(Duration::from_secs(2), |d| d.0),
            reconnect_backoff: raw
                .reconnect_backoff
                .map_or(Duration::from_secs(1), |d| d.0),
            reconnect_backoff_max: raw
                .reconnect_backoff_max
                .map_or(Duration::from_secs(30), |d| d.0),
            reject_messages,
        })
    }
}
