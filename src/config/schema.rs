//! The config file's shape, exactly as an operator writes it. `serde` with `deny_unknown_fields`
//! turns typos into errors; values that carry their own syntax (addresses, networks, durations)
//! are parsed while deserializing so that `toml` reports the offending value's position.
//! The sections of components are the components' own raw types (`RawClient`, `RawUser`,
//! `RawBackend`, `RawLdap`, `RawPolicy`, `RawMfa`, `RawEap`); the server-wide sections are here.
//! Checks that span several values happen in [`super::Config::from_str`], using the `Spanned`
//! positions kept here.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use crate::auth::config::RawUser;
use crate::backend::config::RawBackend;
use crate::cfg::DurationValue;
use crate::clients::config::RawClient;
use crate::policy::config::RawPolicy;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub server: RawServer,
    #[serde(default)]
    pub log: RawLog,
    #[serde(default)]
    pub metrics: RawMetrics,
    #[serde(default)]
    pub accounting: RawAccounting,
    #[serde(default)]
    pub local: RawLocal,
    #[serde(default)]
    pub clients: Vec<Spanned<RawClient>>,
    #[serde(default)]
    pub users: Vec<Spanned<RawUser>>,
    #[serde(default)]
    pub backend: RawBackend,
    pub ldap: Option<Spanned<crate::backend::ldap::RawLdap>>,
    /// The SQL database (FreeRADIUS's schema): users and the nas table.
    pub sql: Option<Spanned<crate::backend::sql::RawSql>>,
    /// MS-CHAP through Samba's winbind (Active Directory).
    pub winbind: Option<Spanned<crate::backend::winbind::RawWinbind>>,
    #[serde(default)]
    pub policies: Vec<Spanned<RawPolicy>>,
    /// The second factor for policies with `mfa = true`.
    pub mfa: Option<Spanned<crate::backend::mfa::RawMfa>>,
    /// PEAP, EAP-TTLS and EAP-TLS, and their TLS.
    pub eap: Option<Spanned<crate::auth::eap::config::RawEap>>,
    /// Realms, pools of home servers, and the home servers.
    pub proxy: Option<Spanned<crate::proxy::config::RawProxy>>,
    /// The RadSec (RADIUS over TLS) listener.
    pub radsec: Option<Spanned<crate::radsec::config::RawRadsec>>,
    /// RADIUS over TCP listeners.
    pub tcp: Option<Spanned<crate::radsec::config::RawTcp>>,
    /// The session table (from accounting) and Simultaneous-Use.
    #[serde(default)]
    pub sessions: crate::session::config::RawSessions,
    /// The admin API (sessions, disconnect, CoA) and its bearer tokens.
    pub admin: Option<Spanned<crate::admin::config::RawAdmin>>,
    /// Dynamic authorization (RFC 5176): the Disconnect/CoA sender's limits, the CoA listener.
    pub dynauth: Option<Spanned<crate::dynauth::RawDynAuth>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    /// Number of shards (one glommio executor per core). Absent or 0: one per available core.
    pub shards: Option<Spanned<usize>>,
    pub listen_auth: Option<Vec<SocketAddr>>,
    pub listen_acct: Option<Vec<SocketAddr>>,
    pub reply_cache_ttl: Option<DurationValue>,
    pub reply_cache_entries: Option<Spanned<usize>>,
    pub dictionaries: Option<Vec<Spanned<PathBuf>>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawLog {
    pub level: Option<Spanned<String>>,
    pub format: Option<LogFormat>,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawMetrics {
    pub listen: Option<SocketAddr>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawAccounting {
    pub directory: Option<PathBuf>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawLocal {
    /// A TOML file holding more `[[users]]`; relative paths are relative to the config file.
    pub users_file: Option<Spanned<PathBuf>>,
    /// Reply-Message sent with Access-Reject; none unless configured, so that a reject tells an
    /// attacker nothing by default.
    pub reject_reply_message: Option<String>,
}
