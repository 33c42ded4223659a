//! `[admin]`: the admin API's listener, its tokens and its TLS.
//!
//! ```toml
//! [admin]
//! listen = "127.0.0.1:9813"     # default; loopback only unless [admin.tls] is set
//! token_file = "admin-tokens"   # relative: to this file's directory
//! max_connections = 64          # open API connections at most; more are closed at once
//! [admin.tls]                   # optional: HTTPS (the shared TLS section reader)
//! certificate = "certs/server.pem"
//! private_key = "certs/server.key"
//! ```
//!
//! A bearer token crosses the network in the clear without TLS, so a listener on anything but
//! a loopback address is refused unless `[admin.tls]` is set. `ca` is refused in
//! `[admin.tls]`: API clients are authenticated by their token, not by a certificate.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::tokens::{self, TokenSet};
use crate::cfg::ConfigError;
use crate::tls::config::{server_tls, RawTls, TlsConfig};

pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9813);
const DEFAULT_MAX_CONNECTIONS: usize = 64;
const MAX_CONNECTIONS: usize = 10_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    pub listen: Option<Spanned<SocketAddr>>,
    pub token_file: Spanned<PathBuf>,
    pub max_connections: Option<Spanned<usize>>,
    pub tls: Option<Spanned<RawTls>>,
}

/// `[admin]`, validated: the token file is read and its tokens hashed, the TLS files loaded.
#[derive(Debug, Clone)]
pub struct AdminConfig {
    pub listen: SocketAddr,
    /// Absolute, or relative to the working directory when the config had no directory.
    pub token_file: PathBuf,
    pub tokens: TokenSet,
    pub max_connections: usize,
    pub tls: Option<TlsConfig>,
    /// The file and line of `[admin]`, for errors found at start-up (a bind that fails).
    pub file: PathBuf,
    pub line: usize,
}

impl AdminConfig {
    pub fn from_raw(
        raw: Spanned<RawAdmin>,
        origin: &Path,
        at: &impl Fn(Range<usize>) -> usize,
        resolve: &impl Fn(&Path) -> PathBuf,
        warnings: &mut Vec<ConfigError>,
    ) -> Result<AdminConfig, ConfigError> {
        let line = at(raw.span());
        let raw = raw.into_inner();
        let err = |span: Range<usize>, m: String| ConfigError::new(origin, at(span), m);

        let listen_line = raw.listen.as_ref().map_or(line, |l| at(l.span()));
        let listen = raw.listen.map_or(DEFAULT_LISTEN, Spanned::into_inner);
        let max_connections = match raw.max_connections {
            Some(n) if *n.get_ref() == 0 || *n.get_ref() > MAX_CONNECTIONS => {
                return Err(err(
                    n.span(),
                    format!("admin.max_connections must be between 1 and {MAX_CONNECTIONS}"),
                ))
            }
            Some(n) => n.into_inner(),
            None => DEFAULT_MAX_CONNECTIONS,
        };

        let tls = match raw.tls {
            Some(t) => {
                if let Some(ca) = &t.get_ref().ca {
                    return Err(err(
                        ca.span(),
                        "admin.tls.ca: the admin API authenticates its clients by bearer token, not by certificate; leave ca out (the CLI is told which CA to trust with --ca)".into(),
                    ));
                }
                let tls = TlsConfig::from_raw(t, "admin.tls", origin, at, resolve)?;
                // Read the files now so that check-config refuses what rustls cannot use.
                server_tls(&tls.settings, &tls.lines, "admin.tls")?;
                Some(tls)
            }
            None => None,
        };
        if tls.is_none() && !listen.ip().is_loopback() {
            return Err(ConfigError::new(
                origin,
                listen_line,
                format!("admin.listen {listen} is not a loopback address: bearer tokens would cross the network in the clear; configure [admin.tls] or listen on 127.0.0.1 / [::1]"),
            ));
        }

        let token_line = at(raw.token_file.span());
        let token_file = resolve(raw.token_file.get_ref());
        let tokens = TokenSet::load(&token_file)
            .map_err(|e| ConfigError::new(origin, token_line, format!("admin.token_file: {e}")))?;
        if tokens.has_plain() && tokens::world_readable(&token_file) {
            warnings.push(ConfigError::new(
                origin,
                token_line,
                format!(
                    "admin.token_file {} holds plain tokens and is readable by every local user: chmod o-r it, or store \"sha256:\" hashes",
                    token_file.display()
                ),
            ));
        }

        Ok(AdminConfig {
            listen,
            token_file,
            tokens,
            max_connections,
            tls,
            file: origin.to_path_buf(),
            line,
        })
    }
}
