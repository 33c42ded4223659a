//! Configuration: a TOML file, validated completely before anything starts.
//!
//! This module only aggregates: each component owns its section's types and checks
//! (`clients::config`, `auth::config`, `backend::config`, `backend::ldap`, `backend::mfa`,
//! `policy::config`), all built on the shared primitives of [`crate::cfg`]. Here are the file
//! loading, the server-wide sections (`[server]`, `[log]`, `[metrics]`, `[accounting]`,
//! `[local]`) and the checks that span components (policies against clients and `[mfa]`).
//! Components never import this module, so there is no import cycle.
//!
//! Loading is two steps: [`schema`] mirrors the file (serde, unknown keys refused), then
//! [`Config::from_raw`] checks what serde cannot (duplicates, empty secrets, hash formats) and
//! resolves relative paths. Every error is a [`ConfigError`] rendered `FILE:LINE: reason`.
//! Names in reply attributes are resolved against the dictionary later, when the runtime tables
//! are built, and those errors carry the same position.

pub mod schema;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use crate::auth::config::{RawUsersFile, UserConfig};
use crate::auth::Method;
use crate::backend::config::BackendConfig;
use crate::backend::ldap::LdapConfig;
use crate::backend::mfa::{MfaConfig, Provider};
use crate::cfg::{line_of, ConfigError, Lines, Located};
use crate::clients::config::ClientConfig;
use crate::policy::config::{PolicyConfig, RawPolicy};
use crate::policy::MfaMode;
pub use schema::LogFormat;
use schema::RawConfig;

/// The default configuration, compiled into the binary so that `radshard serve` works anywhere.
pub const EMBEDDED_DEFAULT: &str = include_str!("../../config/radshard.toml");
/// Where `serve` and `check-config` look when no `--config` is given.
pub const DEFAULT_PATH: &str = "config/radshard.toml";

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file this came from (for the embedded default, a descriptive name).
    pub path: PathBuf,
    pub server: ServerConfig,
    pub log: LogConfig,
    pub metrics: MetricsConfig,
    pub accounting: AccountingConfig,
    pub reject_reply_message: Option<String>,
    pub clients: Vec<ClientConfig>,
    pub users: Vec<UserConfig>,
    pub backend: BackendConfig,
    /// The directory for users not defined locally.
    pub ldap: Option<LdapConfig>,
    /// `[sql]`: the SQL database (users, the nas table as clients).
    pub sql: Option<crate::backend::sql::SqlConfig>,
    /// `[winbind]`: MS-CHAP for users not defined locally, checked by Active Directory.
    pub winbind: Option<crate::backend::winbind::WinbindConfig>,
    pub policies: Vec<PolicyConfig>,
    /// `[mfa]`: without it, policies' `mfa` flag is only logged.
    pub mfa: Option<MfaConfig>,
    /// `[eap]`: without it, no EAP method is offered.
    pub eap: Option<crate::auth::eap::config::EapConfig>,
    /// `[proxy]`: without it, every request is answered here.
    pub proxy: Option<crate::proxy::config::ProxyConfig>,
    /// `[radsec]`: the RadSec listener; its peers are the `transport = "tls"` clients.
    pub radsec: Option<crate::radsec::config::RadsecConfig>,
    /// `[tcp]`: RADIUS/TCP listeners; their peers are the `transport = "tcp"` clients.
    pub tcp: Option<crate::radsec::config::TcpConfig>,
    /// `[sessions]`: the session table (on by default).
    pub sessions: crate::session::SessionsConfig,
    /// `[admin]`: the admin API; without it, none is served.
    pub admin: Option<crate::admin::config::AdminConfig>,
    /// `[dynauth]`: Disconnect/CoA sending limits and the CoA listener; absent: the defaults
    /// apply to clients with a `das`, and no listener.
    pub dynauth: Option<crate::dynauth::DynAuthConfig>,
    /// Things that work but deserve an operator's attention; `check-config` prints them.
    pub warnings: Vec<ConfigError>,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// `None`: one shard per available core.
    pub shards: Option<usize>,
    pub listen_auth: Vec<SocketAddr>,
    pub listen_acct: Vec<SocketAddr>,
    pub reply_cache_ttl: Duration,
    /// Per shard; bounds the memory the duplicate-detection cache can use.
    pub reply_cache_entries: usize,
    /// Extra FreeRADIUS-format dictionary files loaded on top of the built-in one.
    pub dictionaries: Vec<Located<PathBuf>>,
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    pub level: String,
    pub format: LogFormat,
}

#[derive(Debug, Clone)]
pub struct MetricsConfig {
    pub listen: Option<SocketAddr>,
}

#[derive(Debug, Clone)]
pub struct AccountingConfig {
    pub directory: PathBuf,
}

/// Command-line values that take precedence over the file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub shards: Option<usize>,
    pub listen_auth: Vec<SocketAddr>,
    pub listen_acct: Vec<SocketAddr>,
    pub metrics_listen: Option<SocketAddr>,
    pub log_level: Option<String>,
    pub log_format: Option<LogFormat>,
    pub accounting_directory: Option<PathBuf>,
}

impl Config {
    /// Loads `path`; with `path == None`, [`DEFAULT_PATH`] if it exists, else the embedded default.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        match path {
            Some(p) => Config::load_file(p),
            None if Path::new(DEFAULT_PATH).exists() => Config::load_file(Path::new(DEFAULT_PATH)),
            None => Config::from_str(
                EMBEDDED_DEFAULT,
                Path::new("<embedded config/radshard.toml>"),
                None,
            ),
        }
    }

    pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new(path, 0, format!("cannot read config file: {e}")))?;
        let base = path.parent().map(Path::to_path_buf);
        Config::from_str(&text, path, base.as_deref())
    }

    /// Parses and validates `text` as if read from `origin`. Relative paths in it are resolved
    /// against `base` (the config file's directory), or the working directory if `None`.
    pub fn from_str(text: &str, origin: &Path, base: Option<&Path>) -> Result<Config, ConfigError> {
        let raw: RawConfig = parse_toml(text, origin)?;
        Config::from_raw(raw, text, origin, base)
    }

    fn from_raw(
        raw: RawConfig,
        text: &str,
        origin: &Path,
        base: Option<&Path>,
    ) -> Result<Config, ConfigError> {
        let at = |span: std::ops::Range<usize>| line_of(text, span.start);
        let resolve = |p: &Path| match base {
            Some(b) if p.is_relative() && !b.as_os_str().is_empty() => b.join(p),
            _ => p.to_path_buf(),
        };
        let mut warnings = Vec::new();

        let shards = match raw.server.shards {
            Some(s) if *s.get_ref() > 1024 => {
                return Err(ConfigError::new(
                    origin,
                    at(s.span()),
                    "shards must be at most 1024",
                ))
            }
            Some(s) if *s.get_ref() > 0 => Some(*s.get_ref()),
            _ => None,
        };
        let reply_cache_entries = match raw.server.reply_cache_entries {
            Some(n) if *n.get_ref() == 0 => {
                return Err(ConfigError::new(
                    origin,
                    at(n.span()),
                    "reply_cache_entries must be at least 1: without a reply cache retransmissions would be processed twice",
                ))
            }
            Some(n) => n.into_inner(),
            None => 65_536,
        };
        let server = ServerConfig {
            shards,
            listen_auth: raw.server.listen_auth.unwrap_or_else(|| {
                vec![
                    "0.0.0.0:1812".parse().expect("literal"),
                    "[::]:1812".parse().expect("literal"),
                ]
            }),
            listen_acct: raw.server.listen_acct.unwrap_or_else(|| {
                vec![
                    "0.0.0.0:1813".parse().expect("literal"),
                    "[::]:1813".parse().expect("literal"),
                ]
            }),
            reply_cache_ttl: raw
                .server
                .reply_cache_ttl
                .map(|d| d.0)
                .unwrap_or(Duration::from_secs(30)),
            reply_cache_entries,
            dictionaries: raw
                .server
                .dictionaries
                .unwrap_or_default()
                .into_iter()
                .map(|p| Located {
                    line: at(p.span()),
                    value: resolve(p.get_ref()),
                    file: origin.to_path_buf(),
                })
                .collect(),
        };

        let level = match raw.log.level {
            Some(l) => {
                tracing_subscriber::EnvFilter::try_new(l.get_ref()).map_err(|e| {
                    ConfigError::new(
                        origin,
                        at(l.span()),
                        format!("invalid log level {:?}: {e}", l.get_ref()),
                    )
                })?;
                l.into_inner()
            }
            None => "info".to_string(),
        };

        let mut clients = Vec::with_capacity(raw.clients.len());
        for c in raw.clients {
            let line = at(c.span());
            clients.push(ClientConfig::from_raw(
                c.into_inner(),
                origin,
                line,
                &at,
                &mut warnings,
            )?);
        }
        crate::clients::config::check_overlap(&clients)?;

        let mut users = Vec::with_capacity(raw.users.len());
        let lines = Lines::new(text);
        for u in raw.users {
            users.push(UserConfig::from_raw(u, origin, &lines)?);
        }
        if let Some(file) = raw.local.users_file {
            let path = resolve(file.get_ref());
            let utext = std::fs::read_to_string(&path).map_err(|e| {
                ConfigError::new(
                    origin,
                    at(file.span()),
                    format!("cannot read users_file {}: {e}", path.display()),
                )
            })?;
            let parsed: RawUsersFile = parse_toml(&utext, &path)?;
            let lines = Lines::new(&utext);
            for u in parsed.users {
                users.push(UserConfig::from_raw(u, &path, &lines)?);
            }
        }
        crate::auth::config::check_duplicates(&users)?;
        crate::auth::config::warn_hashed_passwords(&users, &mut warnings);

        let backend = BackendConfig::from_raw(raw.backend, origin, &at)?;
        let ldap = match raw.ldap {
            Some(l) => Some(LdapConfig::from_raw(
                l.into_inner(),
                origin,
                &at,
                &resolve,
                &mut warnings,
            )?),
            None => None,
        };
        let shared_state_line = raw
            .sql
            .as_ref()
            .and_then(|s| s.get_ref().shared_state.as_ref())
            .filter(|v| *v.get_ref())
            .map(|v| at(v.span()));
        let sql = raw
            .sql
            .map(|s| {
                crate::backend::sql::SqlConfig::from_raw(s.into_inner(), origin, &at, &resolve)
            })
            .transpose()?;
        let winbind = raw
            .winbind
            .map(|w| crate::backend::winbind::WinbindConfig::from_raw(w.into_inner(), origin, &at))
            .transpose()?;
        let eap = raw
            .eap
            .map(|e| {
                crate::auth::eap::config::EapConfig::from_raw(e.into_inner(), origin, &at, &resolve)
            })
            .transpose()?;
        let proxy = raw
            .proxy
            .map(|p| {
                crate::proxy::config::ProxyConfig::from_raw(p.into_inner(), origin, &at, &resolve)
            })
            .transpose()?;
        let radsec = raw
            .radsec
            .map(|r| crate::radsec::config::RadsecConfig::from_raw(r, origin, &at, &resolve))
            .transpose()?;
        if let Some(r) = &radsec {
            // The files are read now, so check-config and a reload refuse what rustls cannot
            // use, at the line that names it.
            r.server_config()?;
            if !clients
                .iter()
                .any(|c| c.transport == crate::clients::Transport::Tls)
            {
                warnings.push(ConfigError::new(
                    origin,
                    r.tls.lines.table,
                    "[radsec] is configured but no client has transport = \"tls\": every RadSec connection will be refused",
                ));
            }
        } else if let Some(c) = clients
            .iter()
            .find(|c| c.transport == crate::clients::Transport::Tls)
        {
            warnings.push(ConfigError::new(
                &c.file,
                c.line,
                format!(
                    "client {:?} has transport = \"tls\" but there is no [radsec] listener",
                    c.name
                ),
            ));
        }
        let tcp = raw
            .tcp
            .map(|t| crate::radsec::config::TcpConfig::from_raw(t.into_inner(), origin, &at))
            .transpose()?;
        let sessions = crate::session::SessionsConfig::from_raw(raw.sessions, origin, &at)?;
        let admin = raw
            .admin
            .map(|a| {
                crate::admin::config::AdminConfig::from_raw(a, origin, &at, &resolve, &mut warnings)
            })
            .transpose()?;
        let dynauth = raw
            .dynauth
            .map(|d| {
                let line = at(d.span());
                crate::dynauth::DynAuthConfig::from_raw(d.into_inner(), origin, &at)
                    .map(|c| (c, line))
            })
            .transpose()?;
        check_dynauth(dynauth.as_ref(), &clients, origin, &mut warnings);
        let dynauth = dynauth.map(|(c, _)| c);
        let mut policies = Vec::with_capacity(raw.policies.len());
        for p in raw.policies {
            check_policy_clients(&p, origin, text, &clients)?;
            policies.push(PolicyConfig::from_raw(p, origin, text)?);
        }
        let mfa = match raw.mfa {
            Some(m) => {
                let line = at(m.span());
                let key_file = m.get_ref().state_key_file.clone();
                let mut m = MfaConfig::from_raw(m.into_inner(), origin, &at)?;
                if let Some(f) = key_file {
                    let line = at(f.span());
                    let (key, warning) =
                        crate::auth::conversation::state::KeyMaterial::read(&resolve(f.get_ref()))
                            .map_err(|e| {
                                ConfigError::new(origin, line, format!("mfa.state_key_file: {e}"))
                            })?;
                    if let Some(w) = warning {
                        warnings.push(ConfigError::new(
                            origin,
                            line,
                            format!("mfa.state_key_file: {w}"),
                        ));
                    }
                    m.state_key = Some(key);
                }
                if let Some(unknown) = m
                    .exempt_clients
                    .iter()
                    .find(|n| !clients.iter().any(|c| &c.name == *n))
                {
                    return Err(ConfigError::new(
                        origin,
                        line,
                        format!("mfa.exempt_clients: no client is named {unknown:?}"),
                    ));
                }
                Some(m)
            }
            None => None,
        };
        if let Some(line) = shared_state_line {
            if mfa.as_ref().is_some_and(|m| m.state_key.is_none()) {
                return Err(ConfigError::new(
                    origin,
                    line,
                    "sql.shared_state needs [mfa] state_key_file (the same key on every node), or another node cannot verify a State",
                ));
            }
        }
        for p in policies.iter().filter(|p| p.mfa_mode.is_combined()) {
            let refuse = |why: &str| {
                Err(ConfigError::new(
                    &p.file,
                    p.mfa_mode_line,
                    format!(
                        "policy {:?}: mfa_mode = {:?} {why}",
                        p.name,
                        p.mfa_mode.label()
                    ),
                ))
            };
            match mfa.as_ref().map(|m| &m.provider) {
                Some(provider) if provider.is_push() => {
                    return refuse("cannot work with a push provider (there is no code to type): use mfa_mode = \"challenge\" or leave it out")
                }
                Some(Provider::Totp)
                    if p.mfa_mode != MfaMode::AppendedCode(6)
                        && matches!(p.mfa_mode, MfaMode::AppendedCode(_)) =>
                {
                    return refuse("with mfa.provider = \"totp\": built-in TOTP codes have 6 digits, so mfa_code_digits must be 6")
                }
                _ => {}
            }
        }
        for p in policies.iter().filter(|p| p.primary_by_nas) {
            let refuse = |why: String| {
                Err(ConfigError::new(
                    &p.file,
                    p.primary_line,
                    format!("policy {:?}: primary = \"nas\" {why}", p.name),
                ))
            };
            match &mfa {
                None => {
                    return refuse(
                        "needs an [mfa] section: without a second factor nothing would be checked"
                            .into(),
                    )
                }
                Some(m) => {
                    if let Some(c) = p.clients.iter().find(|c| m.exempt_clients.contains(c)) {
                        return refuse(format!("names client {c:?}, which mfa.exempt_clients exempts from the second factor: nothing would be checked"));
                    }
                }
            }
        }
        if mfa.is_some() {
            shadowed_read_modes(&policies, &mut warnings);
        }
        for p in policies.iter().filter(|p| p.mfa) {
            if mfa.is_none() {
                warnings.push(ConfigError::new(
                    &p.file,
                    p.line,
                    format!(
                        "policy {:?} has mfa = true but there is no [mfa] section: the flag is only logged",
                        p.name
                    ),
                ));
            } else if !mfa.as_ref().is_some_and(|m| m.provider.is_push()) {
                // A one-time code needs PAP: CHAP and MS-CHAP carry only a response, and the
                // NAS of an MS-CHAP login cannot answer an Access-Challenge with a code.
                if let Some(m) = p.auth_methods.iter().find(|m| m.is_ms_chap()) {
                    return Err(ConfigError::new(
                        &p.file,
                        p.line,
                        format!(
                            "policy {:?} requires a one-time code but allows {}: MS-CHAP cannot carry a code or answer a challenge; use a push provider (as the NPS extension does for MS-CHAPv2) or remove {:?} from auth_methods",
                            p.name,
                            m.label(),
                            m.label()
                        ),
                    ));
                }
                // Inside PEAP or TTLS a code travels in EAP-GTC (or TTLS-PAP): a tunnel that
                // offers no GTC leaves PEAP logins under this policy nothing to answer with.
                let tunnels = p.auth_methods.is_empty()
                    || p.auth_methods
                        .iter()
                        .any(|m| matches!(m, Method::Peap | Method::Ttls));
                let gtc = eap.as_ref().is_some_and(|e| {
                    e.inner_methods
                        .contains(&crate::auth::eap::config::InnerMethod::Gtc)
                });
                if tunnels && eap.is_some() && !gtc {
                    warnings.push(ConfigError::new(
                        &p.file,
                        p.line,
                        format!(
                            "policy {:?} requires a one-time code but [eap] inner_methods offers no \"gtc\": PEAP logins (and TTLS with inner EAP) it matches cannot carry the code and are rejected",
                            p.name
                        ),
                    ));
                }
                if p.auth_methods.is_empty() || p.auth_methods.contains(&Method::Chap) {
                    warnings.push(ConfigError::new(
                        &p.file,
                        p.line,
                        format!(
                            "policy {:?} requires MFA and matches CHAP and MS-CHAP: they cannot carry a one-time code (they work with push only, not configured), so CHAP and MS-CHAP requests it accepts are rejected",
                            p.name
                        ),
                    ));
                }
            }
        }

        Ok(Config {
            path: origin.to_path_buf(),
            backend,
            ldap,
            sql,
            winbind,
            policies,
            mfa,
            eap,
            proxy,
            radsec,
            tcp,
            sessions,
            admin,
            dynauth,
            server,
            log: LogConfig {
                level,
                format: raw.log.format.unwrap_or_default(),
            },
            metrics: MetricsConfig {
                listen: raw.metrics.listen,
            },
            accounting: AccountingConfig {
                directory: resolve(
                    raw.accounting
                        .directory
                        .as_deref()
                        .unwrap_or(Path::new("/var/log/radshard/accounting")),
                ),
            },
            reject_reply_message: raw.local.reject_reply_message,
            clients,
            users,
            warnings,
        })
    }

    /// Applies command-line overrides; flags win over the file.
    pub fn apply(&mut self, o: &Overrides) {
        if let Some(n) = o.shards {
            self.server.shards = (n > 0).then_some(n);
        }
        if !o.listen_auth.is_empty() {
            self.server.listen_auth = o.listen_auth.clone();
        }
        if !o.listen_acct.is_empty() {
            self.server.listen_acct = o.listen_acct.clone();
        }
        if let Some(m) = o.metrics_listen {
            self.metrics.listen = Some(m);
        }
        if let Some(l) = &o.log_level {
            self.log.level = l.clone();
        }
        if let Some(f) = o.log_format {
            self.log.format = f;
        }
        if let Some(d) = &o.accounting_directory {
            self.accounting.directory = d.clone();
        }
    }
}

fn parse_toml<T: serde::de::DeserializeOwned>(text: &str, origin: &Path) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(0);
        ConfigError::new(origin, line, e.message().trim().to_string())
    })
}

/// The clients and client groups a policy names exist (checked before the policy itself, on
/// the policy's line).
fn check_policy_clients(
    p: &Spanned<RawPolicy>,
    file: &Path,
    text: &str,
    clients: &[ClientConfig],
) -> Result<(), ConfigError> {
    let line = line_of(text, p.span().start);
    let p = p.get_ref();
    let err = |l: usize, m: String| ConfigError::new(file, l, format!("policy {:?}: {m}", p.name));
    for c in &p.clients {
        if !clients.iter().any(|k| &k.name == c) {
            return Err(err(line, format!("no client is named {c:?}")));
        }
    }
    for g in &p.client_groups {
        if !clients.iter().any(|k| k.group.as_ref() == Some(g)) {
            return Err(err(line, format!("no client has group {g:?}")));
        }
    }
    Ok(())
}

/// A CoA listener nobody may use, or upstreams with no listener to send to, are warned about.
fn check_dynauth(
    dynauth: Option<&(crate::dynauth::DynAuthConfig, usize)>,
    clients: &[ClientConfig],
    origin: &Path,
    warnings: &mut Vec<ConfigError>,
) {
    let listening = dynauth.is_some_and(|(d, _)| !d.listen.is_empty());
    let upstream = clients.iter().find(|c| c.dynauth_upstream);
    match (dynauth, upstream) {
        (Some((d, line)), None) if !d.listen.is_empty() => warnings.push(ConfigError::new(
            origin,
            *line,
            "[dynauth] listen is set but no client has dynauth_upstream = true: every request to the CoA listener will be dropped",
        )),
        (_, Some(c)) if !listening => warnings.push(ConfigError::new(
            &c.file,
            c.line,
            format!(
                "client {:?} has dynauth_upstream = true but there is no [dynauth] listen: nothing receives its requests",
                c.name
            ),
        )),
        _ => {}
    }
}

/// How a policy wants User-Password read (see `NetworkPolicies::read_mode`).
fn read_mode(p: &PolicyConfig) -> MfaMode {
    if p.primary_by_nas && !p.reject {
        MfaMode::CodeOnly
    } else if p.mfa && !p.reject {
        p.mfa_mode
    } else {
        MfaMode::Challenge
    }
}

/// Warns about policies that can never accept a PAP request: User-Password is read as the
/// first non-rejecting policy whose request conditions match says, so after one whose
/// request conditions match every PAP request, a policy wanting another mode rejects every
/// PAP request it decides (`mfa_mode_mismatch`).
fn shadowed_read_modes(policies: &[PolicyConfig], warnings: &mut Vec<ConfigError>) {
    let covers_all_pap = |q: &PolicyConfig| {
        !q.reject
            && q.clients.is_empty()
            && q.client_groups.is_empty()
            && q.nas_ip.is_empty()
            && q.nas_port_type.is_empty()
            && q.called_station_id.is_none()
            && (q.auth_methods.is_empty() || q.auth_methods.contains(&Method::Pap))
    };
    let Some(at) = policies.iter().position(covers_all_pap) else {
        return;
    };
    let first = &policies[at];
    for p in policies[at + 1..]
        .iter()
        .filter(|p| !p.reject && read_mode(p) != read_mode(first))
    {
        warnings.push(ConfigError::new(
            &p.file,
            p.line,
            format!(
                "policy {:?} wants User-Password read as {:?} but policy {:?} before it matches every PAP request on request attributes and reads it as {:?}: PAP requests this policy decides are rejected (mfa_mode_mismatch); give the policies client, NAS or port conditions that tell them apart",
                p.name,
                read_mode(p).label(),
                first.name,
                read_mode(first).label()
            ),
        ));
    }
}

#[cfg(test)]
mod tests;
