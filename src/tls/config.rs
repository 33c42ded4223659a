//! A TLS server's files and settings as a config section writes them (`[eap.tls]`,
//! `[radsec.tls]`): one reader, so every section refuses the same mistakes the same way, at
//! the line of the key that names the file.
//!
//! ```toml
//! certificate = "certs/server.pem"   # relative: to the config file's directory
//! private_key = "certs/server.key"
//! ca = "certs/ca.pem"                # client certificates must chain to it
//! crls = []
//! min_version = "1.2"
//! max_version = "1.3"
//! resumption = true
//! session_lifetime = "1h"            # 1s..=6h
//! session_cache = 10000
//! ```

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::{ServerTls, TlsError, TlsFile, TlsSettings, TlsVersion};
use crate::cfg::{positive, ConfigError, DurationValue};

/// aws-lc-rs's ticket producer rotates its own keys every 6 hours (see `tls::server`).
const MAX_SESSION_LIFETIME: Duration = Duration::from_secs(6 * 3600);

/// A TLS section as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    pub certificate: Spanned<PathBuf>,
    pub private_key: Spanned<PathBuf>,
    pub ca: Option<Spanned<PathBuf>>,
    pub crls: Option<Vec<Spanned<PathBuf>>>,
    pub min_version: Option<Spanned<String>>,
    pub max_version: Option<Spanned<String>>,
    pub resumption: Option<bool>,
    pub session_lifetime: Option<Spanned<DurationValue>>,
    pub session_cache: Option<Spanned<usize>>,
}

/// The file and lines of a TLS section and its file-naming keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsLines {
    pub file: PathBuf,
    pub table: usize,
    pub certificate: usize,
    pub private_key: usize,
    pub ca: Option<usize>,
    pub crls: Vec<usize>,
    pub min_version: Option<usize>,
    pub session_cache: Option<usize>,
}

/// A TLS section, validated (its files are read by [`server_tls`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    pub settings: TlsSettings,
    pub lines: TlsLines,
}

impl TlsConfig {
    /// Validates the section `section` (its dotted name, for messages) from `origin`; `at`
    /// maps a span to its line, `resolve` makes a written path absolute.
    pub fn from_raw(
        raw: Spanned<RawTls>,
        section: &str,
        origin: &Path,
        at: &impl Fn(Range<usize>) -> usize,
        resolve: &impl Fn(&Path) -> PathBuf,
    ) -> Result<TlsConfig, ConfigError> {
        let err = |span: Range<usize>, reason: String| ConfigError::new(origin, at(span), reason);
        let table = at(raw.span());
        let t = raw.into_inner();

        let version = |v: Option<Spanned<String>>, key: &str, default: TlsVersion| match v {
            None => Ok(default),
            Some(v) => TlsVersion::from_label(v.get_ref()).ok_or_else(|| {
                err(
                    v.span(),
                    format!(
                        "{section}.{key} {:?} is not a TLS version: use \"1.2\" or \"1.3\"",
                        v.get_ref()
                    ),
                )
            }),
        };
        let min_line = t.min_version.as_ref().map(|v| at(v.span()));
        let max_line = t.max_version.as_ref().map(|v| at(v.span()));
        let min_version = version(t.min_version, "min_version", TlsVersion::V1_2)?;
        let max_version = version(t.max_version, "max_version", TlsVersion::V1_3)?;
        if min_version > max_version {
            return Err(ConfigError::new(
                origin,
                min_line.or(max_line).unwrap_or(table),
                format!("{section}.min_version {min_version} is above max_version {max_version}"),
            ));
        }
        let session_lifetime = match t.session_lifetime {
            Some(d)
                if d.get_ref().0 < Duration::from_secs(1)
                    || d.get_ref().0 > MAX_SESSION_LIFETIME =>
            {
                return Err(err(
                    d.span(),
                    format!("{section}.session_lifetime must be between 1s and 6h (the ticket keys of aws-lc-rs rotate every 6 h at most)"),
                ))
            }
            Some(d) => d.into_inner().0,
            None => crate::tls::DEFAULT_SESSION_LIFETIME,
        };
        let session_cache_line = t.session_cache.as_ref().map(|n| at(n.span()));
        let session_cache = positive(t.session_cache, &format!("{section}.session_cache"), &err)?
            .unwrap_or(crate::tls::DEFAULT_SESSION_CACHE);

        let lines = TlsLines {
            file: origin.to_path_buf(),
            table,
            certificate: at(t.certificate.span()),
            private_key: at(t.private_key.span()),
            ca: t.ca.as_ref().map(|c| at(c.span())),
            crls: t.crls.iter().flatten().map(|c| at(c.span())).collect(),
            min_version: min_line,
            session_cache: session_cache_line,
        };
        let tls = TlsSettings {
            certificate: resolve(t.certificate.get_ref()),
            private_key: resolve(t.private_key.get_ref()),
            ca: t.ca.as_ref().map(|c| resolve(c.get_ref())),
            crls: t
                .crls
                .iter()
                .flatten()
                .map(|c| resolve(c.get_ref()))
                .collect(),
            min_version,
            max_version,
            resumption: t.resumption.unwrap_or(true),
            session_lifetime,
            session_cache,
        };
        Ok(TlsConfig {
            settings: tls,
            lines,
        })
    }
}

/// Reads the files `settings` names and builds the rustls configurations; a refusal names
/// the line of the key that named the file.
pub fn server_tls(
    settings: &TlsSettings,
    lines: &TlsLines,
    section: &str,
) -> Result<ServerTls, ConfigError> {
    ServerTls::build(settings).map_err(|e| {
        let l = lines;
        let line = match e.file() {
            Some(TlsFile::Certificate) => l.certificate,
            Some(TlsFile::PrivateKey) => l.private_key,
            Some(TlsFile::Ca) => l.ca.unwrap_or(l.table),
            Some(TlsFile::Crl(i)) => l.crls.get(i).copied().unwrap_or(l.table),
            None => match e {
                TlsError::Versions { .. } => l.min_version.unwrap_or(l.table),
                TlsError::NoSessionCache => l.session_cache.unwrap_or(l.table),
                _ => l.table,
            },
        };
        ConfigError::new(&l.file, line, format!("{section}: {e}"))
    })
}
