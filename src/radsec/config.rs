//! `[radsec]`: the RadSec listener, its limits and its TLS.
//!
//! ```toml
//! [radsec]
//! listen = ["127.0.0.1:2083"]
//! max_connections = 1024        # open connections at most, whole server; more are refused
//! handshake_timeout = "10s"     # a TLS handshake not done by then is closed (slowloris)
//! idle_timeout = "120s"         # no request (Status-Server included) for this long: closed
//! radius_1_1 = "allow"          # RFC 9765 via ALPN: "allow" (1.1 when offered), "require", "forbid"
//! [radsec.tls]
//! certificate = "server.pem"    # relative: to this file's directory
//! private_key = "server.key"
//! ca = "ca.pem"                 # required: peers are authenticated by their certificate
//! ```
//!
//! Peers are `[[clients]]` with `transport = "tls"`: their address must match, their
//! certificate must chain to `ca` (and match the client's `fingerprints` when it has any).

use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::radius11::Radius11;
use crate::cfg::{ConfigError, DurationValue};
use crate::tls::config::{server_tls, RawTls, TlsConfig};

const DEFAULT_MAX_CONNECTIONS: usize = 1024;
const MAX_CONNECTIONS: usize = 1_000_000;
const DEFAULT_HANDSHAKE: Duration = Duration::from_secs(10);
const DEFAULT_IDLE: Duration = Duration::from_secs(120);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRadsec {
    pub listen: Option<Spanned<Vec<SocketAddr>>>,
    pub max_connections: Option<Spanned<usize>>,
    pub handshake_timeout: Option<Spanned<DurationValue>>,
    pub idle_timeout: Option<Spanned<DurationValue>>,
    pub radius_1_1: Option<Radius11>,
    pub tls: Spanned<RawTls>,
}

/// `[radsec]`, validated; its TLS files are loaded by [`RadsecConfig::server_config`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RadsecConfig {
    pub listen: Vec<SocketAddr>,
    pub max_connections: usize,
    pub handshake_timeout: Duration,
    pub idle_timeout: Duration,
    pub radius11: Radius11,
    pub tls: TlsConfig,
}

impl RadsecConfig {
    pub fn from_raw(
        raw: Spanned<RawRadsec>,
        origin: &Path,
        at: &impl Fn(Range<usize>) -> usize,
        resolve: &impl Fn(&Path) -> PathBuf,
    ) -> Result<RadsecConfig, ConfigError> {
        let table = at(raw.span());
        let raw = raw.into_inner();
        let err = |span: Range<usize>, m: &str| ConfigError::new(origin, at(span), m.to_string());
        let listen = match raw.listen {
            None => vec![SocketAddr::from(([0, 0, 0, 0], 2083))],
            Some(l) if l.get_ref().is_empty() => {
                return Err(err(
                    l.span(),
                    "radsec.listen must name at least one address",
                ))
            }
            Some(l) => l.into_inner(),
        };
        let max_connections = match raw.max_connections {
            Some(n) if *n.get_ref() == 0 || *n.get_ref() > MAX_CONNECTIONS => {
                return Err(err(
                    n.span(),
                    "radsec.max_connections must be between 1 and 1000000",
                ))
            }
            Some(n) => n.into_inner(),
            None => DEFAULT_MAX_CONNECTIONS,
        };
        let duration = |d: Option<Spanned<DurationValue>>, key: &str, default| match d {
            Some(d) if d.get_ref().0.is_zero() => {
                Err(err(d.span(), &format!("radsec.{key} must be above zero")))
            }
            Some(d) => Ok(d.into_inner().0),
            None => Ok(default),
        };
        let handshake_timeout = duration(
            raw.handshake_timeout,
            "handshake_timeout",
            DEFAULT_HANDSHAKE,
        )?;
        let idle_timeout = duration(raw.idle_timeout, "idle_timeout", DEFAULT_IDLE)?;
        let tls = TlsConfig::from_raw(raw.tls, "radsec.tls", origin, at, resolve)?;
        if tls.settings.ca.is_none() {
            return Err(ConfigError::new(
                origin,
                tls.lines.table.max(table),
                "radsec.tls.ca is required: RadSec peers are authenticated by their certificate"
                    .to_string(),
            ));
        }
        Ok(RadsecConfig {
            listen,
            max_connections,
            handshake_timeout,
            idle_timeout,
            radius11: raw.radius_1_1.unwrap_or_default(),
            tls,
        })
    }

    /// Reads the certificate, key and CA: the rustls configuration every connection uses
    /// (client certificate required and verified against the CA; the ALPN names of
    /// `radius_1_1`).
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, ConfigError> {
        let tls = server_tls(&self.tls.settings, &self.tls.lines, "radsec.tls")?;
        let mutual = tls.mutual.ok_or_else(|| {
            ConfigError::new(
                &self.tls.lines.file,
                self.tls.lines.table,
                "radsec.tls.ca is required".to_string(),
            )
        })?;
        let mut config = (*mutual).clone();
        config.alpn_protocols = self.radius11.alpn_protocols();
        Ok(Arc::new(config))
    }
}

/// `[tcp]`: RADIUS over TCP (RFC 6613) listeners, for peers that want a stream without TLS
/// (`[[clients]]` with `transport = "tcp"` and a secret). Prefer RadSec on any network that
/// is not trusted: TCP adds nothing to UDP's protection.
///
/// ```toml
/// [tcp]
/// listen = ["127.0.0.1:1812"]
/// max_connections = 1024
/// idle_timeout = "120s"
/// ```
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTcp {
    pub listen: Spanned<Vec<SocketAddr>>,
    pub max_connections: Option<Spanned<usize>>,
    pub idle_timeout: Option<Spanned<DurationValue>>,
}

/// `[tcp]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpConfig {
    pub listen: Vec<SocketAddr>,
    pub max_connections: usize,
    pub idle_timeout: Duration,
}

impl TcpConfig {
    pub fn from_raw(
        raw: RawTcp,
        origin: &Path,
        at: &impl Fn(Range<usize>) -> usize,
    ) -> Result<TcpConfig, ConfigError> {
        let err = |span: Range<usize>, m: &str| ConfigError::new(origin, at(span), m.to_string());
        if raw.listen.get_ref().is_empty() {
            return Err(err(
                raw.listen.span(),
                "tcp.listen must name at least one address",
            ));
        }
        let max_connections = match raw.max_connections {
            Some(n) if *n.get_ref() == 0 || *n.get_ref() > MAX_CONNECTIONS => {
                return Err(err(
                    n.span(),
                    "tcp.max_connections must be between 1 and 1000000",
                ))
            }
            Some(n) => n.into_inner(),
            None => DEFAULT_MAX_CONNECTIONS,
        };
        let idle_timeout = match raw.idle_timeout {
            Some(d) if d.get_ref().0.is_zero() => {
                return Err(err(d.span(), "tcp.idle_timeout must be above zero"))
            }
            Some(d) => d.into_inner().0,
            None => DEFAULT_IDLE,
        };
        Ok(TcpConfig {
            listen: raw.listen.into_inner(),
            max_connections,
            idle_timeout,
        })
    }
}
