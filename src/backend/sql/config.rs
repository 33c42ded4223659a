//! `[sql]`: the database (PostgreSQL with FreeRADIUS's schema, unchanged) and what radshard
//! reads from it. One connection section, shared by whatever uses the database: the user
//! store (`users`, on by default) and the NAS table as clients (`clients`); accounting and
//! IP pools may later use the same connections.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::cfg::{ConfigError, DurationValue, SecretText};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSql {
    /// `"postgresql"` (the only one for now).
    pub dialect: Option<Spanned<String>>,
    /// Host name or address of the database server.
    pub server: Spanned<String>,
    /// Default 5432.
    pub port: Option<Spanned<u16>>,
    pub database: String,
    pub login: String,
    /// The login's password; or `password_file` (first line; relative to the config file).
    pub password: Option<Spanned<String>>,
    pub password_file: Option<Spanned<PathBuf>>,
    /// Connections (default 4): each carries many lookups at once (pipelined).
    pub pool: Option<Spanned<usize>>,
    /// From a request's arrival to the database's answer (default: `[backend] deadline`).
    pub deadline: Option<Spanned<DurationValue>>,
    /// Per connection attempt (default 2 s).
    pub connect_timeout: Option<Spanned<DurationValue>>,
    /// The user store: users in radcheck/radreply/radusergroup (default true).
    pub users: Option<bool>,
    /// The `nas` table as more clients, read at start and on SIGHUP (default false).
    pub clients: Option<bool>,
    /// How long a user's rows are reused (default "2s"; "0s": never).
    pub cache_ttl: Option<Spanned<DurationValue>>,
    /// Several nodes on this database: MFA challenges finish on any node (their State sealed
    /// under `[mfa] state_key_file`) and each State is redeemed once for all nodes in
    /// `radshard_state_redeemed` (made if missing). Default false.
    pub shared_state: Option<Spanned<bool>>,
    /// An IP pool in `radippool`: `{ name = "…", lease = "1h", pool_key = "calling_station_id",
    /// on_exhausted = "reject" }`.
    pub ip_pool: Option<super::ippool::RawIpPool>,
    /// Simultaneous-Use counts the user's open sessions in `radacct` (those of every node)
    /// instead of this node's session table. Default false.
    pub sessions: Option<bool>,
    /// Ship the accounting log into radacct (default false).
    pub accounting: Option<bool>,
    /// Records per shipping transaction, so rows per statement at most (default 1000).
    pub ship_batch: Option<Spanned<usize>>,
    /// How often a caught-up shipper looks for new records (default "1s").
    pub ship_interval: Option<Spanned<DurationValue>>,
}

impl std::fmt::Debug for RawSql {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the login's password.
        f.debug_struct("RawSql")
            .field("server", self.server.get_ref())
            .field("database", &self.database)
            .field("login", &self.login)
            .finish_non_exhaustive()
    }
}

/// A validated `[sql]`. Its `Debug` never shows the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlConfig {
    pub server: String,
    pub port: u16,
    pub database: String,
    pub login: String,
    pub password: Option<SecretText>,
    pub pool: usize,
    /// `None`: `[backend] deadline`.
    pub deadline: Option<Duration>,
    pub connect_timeout: Duration,
    pub users: bool,
    pub clients: bool,
    pub cache_ttl: Duration,
    pub shared_state: bool,
    pub ip_pool: Option<super::ippool::IpPoolConfig>,
    pub sessions: bool,
    /// The accounting shipper ([`crate::accounting::ship`]).
    pub accounting: bool,
    pub ship_batch: usize,
    pub ship_interval: Duration,
}

/// Most records per shipping transaction.
pub const MAX_SHIP_BATCH: usize = 10_000;

/// Most connections in `pool`.
const MAX_POOL: usize = 64;

impl SqlConfig {
    pub fn from_raw(
        raw: RawSql,
        origin: &Path,
        at: &impl Fn(std::ops::Range<usize>) -> usize,
        resolve: &impl Fn(&Path) -> PathBuf,
    ) -> Result<SqlConfig, ConfigError> {
        let err = |span: std::ops::Range<usize>, m: String| ConfigError::new(origin, at(span), m);
        if let Some(d) = &raw.dialect {
            if d.get_ref() != "postgresql" {
                return Err(err(
                    d.span(),
                    format!(
                        "sql.dialect {:?}: only \"postgresql\" is supported",
                        d.get_ref()
                    ),
                ));
            }
        }
        if raw.server.get_ref().trim().is_empty() {
            return Err(err(
                raw.server.span(),
                "sql.server must not be empty".into(),
            ));
        }
        let port = match raw.port {
            Some(p) if *p.get_ref() == 0 => {
                return Err(err(p.span(), "sql.port must not be 0".into()))
            }
            Some(p) => p.into_inner(),
            None => 5432,
        };
        let pool = match raw.pool {
            Some(n) if *n.get_ref() == 0 || *n.get_ref() > MAX_POOL => {
                return Err(err(
                    n.span(),
                    format!("sql.pool must be between 1 and {MAX_POOL}"),
                ))
            }
            Some(n) => n.into_inner(),
            None => 4,
        };
        let positive = |v: Option<Spanned<DurationValue>>, key: &str| match v {
            Some(d) if d.get_ref().0.is_zero() => {
                Err(err(d.span(), format!("sql.{key} must be positive")))
            }
            v => Ok(v.map(|d| d.into_inner().0)),
        };
        let ship_batch = match raw.ship_batch {
            Some(n) if *n.get_ref() == 0 || *n.get_ref() > MAX_SHIP_BATCH => {
                return Err(err(
                    n.span(),
                    format!("sql.ship_batch must be between 1 and {MAX_SHIP_BATCH}"),
                ))
            }
            Some(n) => n.into_inner(),
            None => 1000,
        };
        let ship_interval = positive(raw.ship_interval, "ship_interval")?
            .unwrap_or(Duration::from_secs(1))
            .min(Duration::from_secs(60));
        let password = password(raw.password, raw.password_file, origin, at, resolve)?;
        Ok(SqlConfig {
            server: raw.server.into_inner(),
            port,
            database: raw.database,
            login: raw.login,
            password,
            pool,
            deadline: positive(raw.deadline, "deadline")?,
            connect_timeout: positive(raw.connect_timeout, "connect_timeout")?
                .unwrap_or(Duration::from_secs(2)),
            users: raw.users.unwrap_or(true),
            clients: raw.clients.unwrap_or(false),
            cache_ttl: raw
                .cache_ttl
                .map_or(Duration::from_secs(2), |d| d.into_inner().0),
            shared_state: raw.shared_state.is_some_and(|v| v.into_inner()),
            sessions: raw.sessions.unwrap_or(false),
            ip_pool: match raw.ip_pool {
                Some(p) => Some(super::ippool::IpPoolConfig::from_raw(p, &err)?),
                None => None,
            },
            accounting: raw.accounting.unwrap_or(false),
            ship_batch,
            ship_interval,
        })
    }
}

/// `password` or the first line of `password_file`, not both; neither is a login without a
/// password (trust or peer authentication on the database's side).
fn password(
    inline: Option<Spanned<String>>,
    file: Option<Spanned<PathBuf>>,
    origin: &Path,
    at: &impl Fn(std::ops::Range<usize>) -> usize,
    resolve: &impl Fn(&Path) -> PathBuf,
) -> Result<Option<SecretText>, ConfigError> {
    match (inline, file) {
        (Some(_), Some(f)) => Err(ConfigError::new(
            origin,
            at(f.span()),
            "sql: give password or password_file, not both",
        )),
        (Some(p), None) => Ok(Some(SecretText::new(p.into_inner()))),
        (None, Some(f)) => {
            let path = resolve(f.get_ref());
            let text = std::fs::read_to_string(&path).map_err(|e| {
                ConfigError::new(
                    origin,
                    at(f.span()),
                    format!("cannot read sql.password_file {}: {e}", path.display()),
                )
            })?;
            let line = text.lines().next().unwrap_or_default().to_string();
            Ok(Some(SecretText::new(line)))
        }
        (None, None) => Ok(None),
    }
}
