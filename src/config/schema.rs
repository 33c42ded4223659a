//! The config file's shape, exactly as an operator writes it. `serde` with `deny_unknown_fields`
//! turns typos into errors; values that carry their own syntax (addresses, networks, durations)
//! are parsed while deserializing so that `toml` reports the offending value's position.
//! Checks that span several values happen in [`super::validate`], using the `Spanned` positions
//! kept here.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use crate::cfg::{AttrValues, ClientNet, DurationValue};

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
    #[serde(default)]
    pub policies: Vec<Spanned<RawPolicy>>,
    /// The second factor for policies with `mfa = true`.
    pub mfa: Option<Spanned<crate::backend::mfa::RawMfa>>,
}

/// `[backend]`: the pool that runs directory (and later MFA) work off the shards.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawBackend {
    /// Tokio worker threads (default 2).
    pub threads: Option<Spanned<usize>>,
    /// Jobs that may wait for a free slot (default 1024); beyond that requests are shed.
    pub queue: Option<Spanned<usize>>,
    /// Jobs running at once (default 256).
    pub max_in_flight: Option<Spanned<usize>>,
    /// From a request's arrival to its answer (default "3s"): keep it below the NAS timeout.
    pub deadline: Option<Spanned<DurationValue>>,
    /// When the queue is full: "drop" (the NAS retries) or "reject".
    pub on_overload: Option<ShedPolicy>,
    /// When no directory answers by the deadline: "drop" or "reject".
    pub on_unavailable: Option<ShedPolicy>,
    /// How long an accept / a reject is reused for the same client, user and password.
    pub positive_cache_ttl: Option<DurationValue>,
    pub negative_cache_ttl: Option<DurationValue>,
}

/// What to do with a request the backend cannot serve.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum ShedPolicy {
    /// No reply: the NAS retries (or fails over to another server).
    #[default]
    Drop,
    /// Access-Reject.
    Reject,
}

/// `[[policies]]`: an ordered network policy, as NPS has them. All given conditions must
/// match; the first policy that matches decides.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    pub name: String,
    /// Client names (`[[clients]] name`).
    #[serde(default)]
    pub clients: Vec<String>,
    /// Client groups (`[[clients]] group`).
    #[serde(default)]
    pub client_groups: Vec<String>,
    /// NAS-IP-Address in one of these networks.
    #[serde(default)]
    pub nas_ip: Vec<Spanned<ClientNet>>,
    /// NAS-Port-Type values by dictionary name (`"Wireless-802.11"`) or number.
    pub nas_port_type: Option<Spanned<AttrValues>>,
    /// A regular expression the Called-Station-Id must match.
    pub called_station_id: Option<Spanned<String>>,
    /// The user is in one of these groups (a group's DN or its first RDN value, any case).
    #[serde(default)]
    pub groups: Vec<String>,
    /// "pap" / "chap".
    #[serde(default)]
    pub auth_methods: Vec<Spanned<String>>,
    /// "local" / "ldap".
    #[serde(default)]
    pub auth_sources: Vec<Spanned<String>>,
    /// "accept" (default) or "reject".
    pub action: Option<Spanned<String>>,
    /// Whether a second factor is required (for the MFA stage).
    #[serde(default)]
    pub mfa: bool,
    /// How the code is presented: "challenge" (default), "password_code", "appended_code".
    pub mfa_mode: Option<Spanned<String>>,
    /// `appended_code`: how many trailing digits of User-Password are the code (default 6).
    pub mfa_code_digits: Option<Spanned<u8>>,
    #[serde(default)]
    pub reply: BTreeMap<String, Spanned<AttrValues>>,
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClient {
    pub name: String,
    /// IP addresses or CIDR networks, IPv4 or IPv6.
    pub addresses: Vec<Spanned<ClientNet>>,
    pub secret: Spanned<String>,
    #[serde(default = "default_true")]
    pub require_message_authenticator: bool,
    #[serde(default = "default_true")]
    pub limit_proxy_state: bool,
    /// Requests per second accepted from this client (whole server); absent: unlimited.
    pub rate_limit: Option<Spanned<u32>>,
    /// A group name network policies can match (`client_groups`).
    pub group: Option<String>,
}

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
    /// Reply attributes by dictionary name: `reply = { Session-Timeout = 3600, Class = ["a", "b"] }`.
    #[serde(default)]
    pub reply: BTreeMap<String, Spanned<AttrValues>>,
    /// Groups network policies can match for this user.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Base32 TOTP secret (RFC 6238) for the built-in `[mfa] provider = "totp"`.
    pub totp_secret: Option<Spanned<String>>,
}

fn default_true() -> bool {
    true
}
