//! The rustls client configuration radshard uses as a RadSec client of a home server: the
//! home server's certificate must chain to the configured CA and name the expected server,
//! and radshard presents its own certificate (RFC 6614 §2.3: mutual authentication).

use std::path::PathBuf;
use std::sync::Arc;

use rustls::crypto::aws_lc_rs;
use rustls::sign::SingleCertAndKey;
use rustls::{ClientConfig, RootCertStore};

use super::server::{certified_key, read_certs};
use super::{TlsError, TlsFile, TlsSettings};

/// What a TLS client needs, paths resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientTlsSettings {
    /// PEM bundle of the CAs the server's certificate must chain to.
    pub ca: PathBuf,
    /// Our certificate chain and key (the server requires one).
    pub certificate: PathBuf,
    pub private_key: PathBuf,
    /// The ALPN names offered, most preferred first (none: no ALPN extension).
    pub alpn_protocols: Vec<Vec<u8>>,
}

/// Reads the files and builds the configuration; every file is checked here.
pub fn client_config(s: &ClientTlsSettings) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = Arc::new(aws_lc_rs::default_provider());
    let mut roots = RootCertStore::empty();
    for (i, cert) in read_certs(TlsFile::Ca, &s.ca)?.into_iter().enumerate() {
        roots.add(cert).map_err(|e| TlsError::BadCa {
            path: s.ca.clone(),
            reason: format!("certificate {} is not a usable CA: {e}", i + 1),
        })?;
    }
    let key = certified_key(
        &TlsSettings::new(s.certificate.clone(), s.private_key.clone()),
        &provider,
    )?;
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Setup(e.to_string()))?
        .with_root_certificates(roots)
        .with_client_cert_resolver(Arc::new(SingleCertAndKey::from(key)));
    // A RadSec connection lives for hours, so resumption saves little; and radsecproxy
    // 1.9.2 (OpenSSL, no session id context set) fails every handshake that offers a
    // session to resume.
    config.resumption = rustls::client::Resumption::disabled();
    config.alpn_protocols = s.alpn_protocols.clone();
    Ok(Arc::new(config))
}
