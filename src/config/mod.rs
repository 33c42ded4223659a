//! Configuration: a TOML file, validated completely before anything starts.
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

use ipnet::IpNet;
use toml::Spanned;

use crate::cfg::{line_of, ConfigError, Lines, Located, SecretText};
pub use schema::LogFormat;

pub use schema::ShedPolicy;
use schema::{RawBackend, RawClient, RawConfig, RawPolicy, RawUser, RawUsersFile};

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
    pub ldap: Option<crate::backend::ldap::LdapConfig>,
    pub policies: Vec<PolicyConfig>,
    /// `[mfa]`: without it, policies' `mfa` flag is only logged.
    pub mfa: Option<crate::backend::mfa::MfaConfig>,
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

/// `[backend]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendConfig {
    pub threads: usize,
    pub queue: usize,
    pub max_in_flight: usize,
    pub deadline: Duration,
    pub on_overload: ShedPolicy,
    pub on_unavailable: ShedPolicy,
    pub positive_cache_ttl: Duration,
    pub negative_cache_ttl: Duration,
}

impl Default for BackendConfig {
    fn default() -> Self {
        BackendConfig {
            threads: 2,
            queue: 1024,
            max_in_flight: 256,
            deadline: Duration::from_secs(3),
            on_overload: ShedPolicy::Drop,
            on_unavailable: ShedPolicy::Drop,
            positive_cache_ttl: Duration::ZERO,
            negative_cache_ttl: Duration::from_secs(10),
        }
    }
}

/// One `[[policies]]` entry, validated (names are resolved when the runtime is built).
#[derive(Debug, Clone)]
pub struct PolicyConfig {
    pub name: String,
    pub clients: Vec<String>,
    pub client_groups: Vec<String>,
    pub nas_ip: Vec<IpNet>,
    pub nas_port_type: Vec<Located<String>>,
    pub called_station_id: Option<Located<String>>,
    pub groups: Vec<String>,
    pub auth_methods: Vec<crate::auth::Method>,
    pub auth_sources: Vec<crate::policy::AuthSource>,
    pub reject: bool,
    pub mfa: bool,
    pub mfa_mode: crate::policy::MfaMode,
    /// Where `mfa_mode` was written (the policy's line if not), for errors found later.
    pub mfa_mode_line: usize,
    pub reply: Vec<Located<(String, String)>>,
    pub file: PathBuf,
    pub line: usize,
}

#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub name: String,
    pub networks: Vec<IpNet>,
    pub secret: SecretText,
    pub require_message_authenticator: bool,
    pub limit_proxy_state: bool,
    pub rate_limit: Option<u32>,
    pub group: Option<String>,
    pub file: PathBuf,
    pub line: usize,
}

#[derive(Debug, Clone)]
pub enum PasswordConfig {
    Cleartext(SecretText),
    /// A crypt-style hash (`$argon2id$…`, `$2b$…`, `$6$…`), checked for its scheme here and
    /// parsed fully when the user table is built.
    Hash(Located<SecretText>),
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
    pub file: PathBuf,
    pub line: usize,
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

/// The hash schemes local users may use, by crypt prefix.
const HASH_PREFIXES: &[(&str, &str)] = &[
    ("$argon2id$", "argon2id"),
    ("$2a$", "bcrypt"),
    ("$2b$", "bcrypt"),
    ("$2y$", "bcrypt"),
    ("$6$", "sha512-crypt"),
];

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
            clients.push(client(c.into_inner(), origin, line, &at, &mut warnings)?);
        }
        check_client_overlap(&clients)?;

        let mut users = Vec::with_capacity(raw.users.len());
        let lines = Lines::new(text);
        for u in raw.users {
            users.push(user(u, origin, &lines)?);
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
                users.push(user(u, &path, &lines)?);
            }
        }
        check_duplicate_users(&users)?;
        for u in &users {
            if let Some(PasswordConfig::Hash(h)) = &u.password {
                warnings.push(h.error(format!(
                    "user {:?} has a hashed password: PAP works, CHAP cannot authenticate this user (CHAP needs the cleartext)",
                    u.name
                )));
            }
        }

        let backend = backend(raw.backend, origin, &at)?;
        let ldap = match raw.ldap {
            Some(l) => Some(crate::backend::ldap::LdapConfig::from_raw(
                l.into_inner(),
                origin,
                &at,
                &resolve,
                &mut warnings,
            )?),
            None => None,
        };
        let mut policies = Vec::with_capacity(raw.policies.len());
        for p in raw.policies {
            policies.push(policy(p, origin, text, &clients)?);
        }
        let mfa = match raw.mfa {
            Some(m) => {
                let line = at(m.span());
                let m = crate::backend::mfa::MfaConfig::from_raw(m.into_inner(), origin, &at)?;
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
                Some(crate::backend::mfa::Provider::Totp)
                    if p.mfa_mode != crate::policy::MfaMode::AppendedCode(6)
                        && matches!(p.mfa_mode, crate::policy::MfaMode::AppendedCode(_)) =>
                {
                    return refuse("with mfa.provider = \"totp\": built-in TOTP codes have 6 digits, so mfa_code_digits must be 6")
                }
                _ => {}
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
            } else if !mfa.as_ref().is_some_and(|m| m.provider.is_push())
                && (p.auth_methods.is_empty()
                    || p.auth_methods.contains(&crate::auth::Method::Chap))
            {
                warnings.push(ConfigError::new(
                    &p.file,
                    p.line,
                    format!(
                        "policy {:?} requires MFA and matches CHAP: CHAP cannot carry a one-time code (CHAP works with push only, not configured), so CHAP requests it accepts are rejected",
                        p.name
                    ),
                ));
            }
        }

        Ok(Config {
            path: origin.to_path_buf(),
            backend,
            ldap,
            policies,
            mfa,
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

fn client(
    c: RawClient,
    origin: &Path,
    line: usize,
    at: &impl Fn(std::ops::Range<usize>) -> usize,
    warnings: &mut Vec<ConfigError>,
) -> Result<ClientConfig, ConfigError> {
    let secret_line = at(c.secret.span());
    let secret = c.secret.into_inner();
    if secret.is_empty() {
        return Err(ConfigError::new(
            origin,
            secret_line,
            format!("client {:?}: secret must not be empty", c.name),
        ));
    }
    if secret.len() < 16 && secret != "testing123" {
        warnings.push(ConfigError::new(
            origin,
            secret_line,
            format!(
                "client {:?}: secret is shorter than 16 characters; RFC 2865 advises at least 16",
                c.name
            ),
        ));
    }
    if c.addresses.is_empty() {
        return Err(ConfigError::new(
            origin,
            line,
            format!(
                "client {:?}: addresses must list at least one address or network",
                c.name
            ),
        ));
    }
    if !c.require_message_authenticator {
        warnings.push(ConfigError::new(
            origin,
            line,
            format!(
                "client {:?}: require_message_authenticator = false leaves this client open to BlastRADIUS (CVE-2024-3596) forgeries",
                c.name
            ),
        ));
    }
    let rate_limit = match c.rate_limit {
        Some(r) if *r.get_ref() == 0 => {
            return Err(ConfigError::new(
                origin,
                at(r.span()),
                format!(
                    "client {:?}: rate_limit must be positive (omit it for no limit)",
                    c.name
                ),
            ))
        }
        r => r.map(Spanned::into_inner),
    };
    Ok(ClientConfig {
        name: c.name,
        networks: c.addresses.into_iter().map(|a| a.into_inner().0).collect(),
        secret: SecretText::new(secret),
        require_message_authenticator: c.require_message_authenticator,
        limit_proxy_state: c.limit_proxy_state,
        rate_limit,
        group: c.group,
        file: origin.to_path_buf(),
        line,
    })
}

fn check_client_overlap(clients: &[ClientConfig]) -> Result<(), ConfigError> {
    for (i, c) in clients.iter().enumerate() {
        for net in &c.networks {
            if let Some(prev) = clients[..i].iter().find(|p| p.networks.contains(net)) {
                return Err(ConfigError::new(
                    &c.file,
                    c.line,
                    format!(
                        "client {:?}: network {net} is already used by client {:?} (line {})",
                        c.name, prev.name, prev.line
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn user(u: Spanned<RawUser>, file: &Path, lines: &Lines) -> Result<UserConfig, ConfigError> {
    let line = lines.line(u.span().start);
    let u = u.into_inner();
    if u.name.is_empty() {
        return Err(ConfigError::new(file, line, "user name must not be empty"));
    }
    let password = match (u.password, u.password_hash) {
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
                    "user {:?}: needs password or password_hash (or, for a directory user's second factor only, totp_secret)",
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
    Ok(UserConfig {
        name: u.name,
        password,
        reply,
        groups: u.groups,
        totp_secret,
        file: file.to_path_buf(),
        line,
    })
}

fn backend(
    raw: RawBackend,
    origin: &Path,
    at: &impl Fn(std::ops::Range<usize>) -> usize,
) -> Result<BackendConfig, ConfigError> {
    let d = BackendConfig::default();
    let bounded = |v: Option<Spanned<usize>>, key: &str, max: usize, default: usize| match v {
        Some(n) if *n.get_ref() == 0 || *n.get_ref() > max => Err(ConfigError::new(
            origin,
            at(n.span()),
            format!("backend.{key} must be between 1 and {max}"),
        )),
        Some(n) => Ok(n.into_inner()),
        None => Ok(default),
    };
    let deadline = match raw.deadline {
        Some(v) if v.get_ref().0.is_zero() => {
            return Err(ConfigError::new(
                origin,
                at(v.span()),
                "backend.deadline must be positive",
            ))
        }
        Some(v) => v.into_inner().0,
        None => d.deadline,
    };
    Ok(BackendConfig {
        threads: bounded(raw.threads, "threads", 256, d.threads)?,
        queue: bounded(raw.queue, "queue", 1 << 20, d.queue)?,
        max_in_flight: bounded(raw.max_in_flight, "max_in_flight", 1 << 16, d.max_in_flight)?,
        deadline,
        on_overload: raw.on_overload.unwrap_or_default(),
        on_unavailable: raw.on_unavailable.unwrap_or_default(),
        positive_cache_ttl: raw.positive_cache_ttl.map_or(d.positive_cache_ttl, |v| v.0),
        negative_cache_ttl: raw.negative_cache_ttl.map_or(d.negative_cache_ttl, |v| v.0),
    })
}

fn policy(
    p: Spanned<RawPolicy>,
    file: &Path,
    text: &str,
    clients: &[ClientConfig],
) -> Result<PolicyConfig, ConfigError> {
    use crate::auth::Method;
    use crate::policy::{AuthSource, MfaMode};
    let line = line_of(text, p.span().start);
    let p = p.into_inner();
    let at = |s: std::ops::Range<usize>| line_of(text, s.start);
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
    let mut auth_methods = Vec::new();
    for m in &p.auth_methods {
        auth_methods.push(match m.get_ref().as_str() {
            "pap" => Method::Pap,
            "chap" => Method::Chap,
            other => {
                return Err(err(
                    at(m.span()),
                    format!("auth method {other:?} is not pap or chap"),
                ))
            }
        });
    }
    let mut auth_sources = Vec::new();
    for s in &p.auth_sources {
        auth_sources.push(match s.get_ref().as_str() {
            "local" => AuthSource::Local,
            "ldap" => AuthSource::Ldap,
            other => {
                return Err(err(
                    at(s.span()),
                    format!("auth source {other:?} is not local or ldap"),
                ))
            }
        });
    }
    let mfa_mode_line = p.mfa_mode.as_ref().map_or(line, |m| at(m.span()));
    let mfa_mode = match (&p.mfa_mode, &p.mfa_code_digits) {
        (None, None) => MfaMode::Challenge,
        (Some(m), digits) => match (m.get_ref().as_str(), digits) {
            ("challenge", None) => MfaMode::Challenge,
            ("password_code", None) => MfaMode::PasswordCode,
            ("appended_code", None) => MfaMode::AppendedCode(6),
            ("appended_code", Some(d)) if (4..=10).contains(d.get_ref()) => {
                MfaMode::AppendedCode(*d.get_ref())
            }
            ("appended_code", Some(d)) => {
                return Err(err(
                    at(d.span()),
                    "mfa_code_digits must be between 4 and 10".into(),
                ))
            }
            ("challenge" | "password_code", Some(d)) => {
                return Err(err(
                    at(d.span()),
                    "mfa_code_digits applies only to mfa_mode = \"appended_code\"".into(),
                ))
            }
            (other, _) => {
                return Err(err(
                    at(m.span()),
                    format!("mfa_mode {other:?} is not \"challenge\", \"password_code\" or \"appended_code\""),
                ))
            }
        },
        (None, Some(d)) => {
            return Err(err(
                at(d.span()),
                "mfa_code_digits applies only to mfa_mode = \"appended_code\"".into(),
            ))
        }
    };
    if mfa_mode.is_combined() && !p.mfa {
        return Err(err(
            mfa_mode_line,
            format!(
                "mfa_mode = {:?} needs mfa = true (without a second factor the whole User-Password is the password)",
                mfa_mode.label()
            ),
        ));
    }
    if mfa_mode.is_combined() && auth_methods.contains(&Method::Chap) {
        return Err(err(
            mfa_mode_line,
            format!(
                "mfa_mode = {:?} cannot work with CHAP (the password arrives hashed, so no code can be split off it): remove \"chap\" from auth_methods",
                mfa_mode.label()
            ),
        ));
    }
    let reject = match &p.action {
        None => false,
        Some(a) => match a.get_ref().as_str() {
            "accept" => false,
            "reject" => true,
            other => {
                return Err(err(
                    at(a.span()),
                    format!("action {other:?} is not accept or reject"),
                ))
            }
        },
    };
    let called_station_id = match p.called_station_id {
        Some(r) => {
            let l = at(r.span());
            let r = r.into_inner();
            if let Err(e) = regex::Regex::new(&r) {
                return Err(err(
                    l,
                    format!("called_station_id is not a valid regex: {e}"),
                ));
            }
            Some(Located {
                value: r,
                file: file.to_path_buf(),
                line: l,
            })
        }
        None => None,
    };
    let nas_port_type = match p.nas_port_type {
        Some(v) => {
            let l = at(v.span());
            v.into_inner()
                .0
                .into_iter()
                .map(|value| Located {
                    value,
                    file: file.to_path_buf(),
                    line: l,
                })
                .collect()
        }
        None => Vec::new(),
    };
    let mut reply = Vec::new();
    for (name, values) in p.reply {
        let vline = at(values.span());
        for v in values.into_inner().0 {
            reply.push(Located {
                value: (name.clone(), v),
                file: file.to_path_buf(),
                line: vline,
            });
        }
    }
    if reject && !reply.is_empty() {
        return Err(err(
            line,
            "a rejecting policy cannot have reply attributes".into(),
        ));
    }
    Ok(PolicyConfig {
        nas_ip: p.nas_ip.into_iter().map(|n| n.into_inner().0).collect(),
        name: p.name,
        clients: p.clients,
        client_groups: p.client_groups,
        nas_port_type,
        called_station_id,
        groups: p.groups,
        auth_methods,
        auth_sources,
        reject,
        mfa: p.mfa,
        mfa_mode,
        mfa_mode_line,
        reply,
        file: file.to_path_buf(),
        line,
    })
}

/// How a policy wants User-Password read (see `NetworkPolicies::read_mode`).
fn read_mode(p: &PolicyConfig) -> crate::policy::MfaMode {
    if p.mfa && !p.reject {
        p.mfa_mode
    } else {
        crate::policy::MfaMode::Challenge
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
            && (q.auth_methods.is_empty() || q.auth_methods.contains(&crate::auth::Method::Pap))
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

fn check_duplicate_users(users: &[UserConfig]) -> Result<(), ConfigError> {
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

#[cfg(test)]
mod tests;
