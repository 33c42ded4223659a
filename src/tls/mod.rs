//! TLS for the protocols that carry it: EAP-TLS, EAP-TTLS and PEAP now, RadSec later.
//!
//! * [`TlsSettings`]: what a TLS server needs (certificate, key, CAs, CRLs, versions,
//!   resumption), paths already resolved; each protocol's config section produces one.
//! * [`ServerTls`] (`server.rs`): the rustls server configurations built from them, once at
//!   start-up and on reload, shared by every worker thread.
//! * [`PeerCertificate`] and [`IdentityRule`] (`peer.rs`): the client certificate's names, for
//!   policies and for tying an EAP-TLS certificate to the EAP identity.
//! * [`resumption`]: which earlier conversation a resumed session (TLS 1.2 too) came from.
//! * [`pki`]: the throwaway test PKI of `radshard certs`.
//!
//! Nothing here does I/O on a connection: rustls is driven over caller buffers
//! (`read_tls` / `process_new_packets` / `write_tls`) by whoever owns the transport.

pub mod client;
pub mod config;
mod peer;
pub mod pki;
pub mod resumption;
mod server;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

pub use peer::{IdentityRule, PeerCertificate};
pub use server::ServerTls;

/// A TLS protocol version we serve (written `"1.2"` or `"1.3"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    V1_2,
    V1_3,
}

impl TlsVersion {
    pub fn label(self) -> &'static str {
        match self {
            TlsVersion::V1_2 => "1.2",
            TlsVersion::V1_3 => "1.3",
        }
    }

    pub fn from_label(label: &str) -> Option<TlsVersion> {
        match label {
            "1.2" => Some(TlsVersion::V1_2),
            "1.3" => Some(TlsVersion::V1_3),
            _ => None,
        }
    }
}

impl fmt::Display for TlsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Sessions remembered when nothing says otherwise.
pub const DEFAULT_SESSION_CACHE: usize = 10_000;
/// Ticket key rotation period and session cache lifetime when nothing says otherwise.
pub const DEFAULT_SESSION_LIFETIME: Duration = Duration::from_secs(3600);

/// What a TLS server needs, paths already resolved against the config file's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// PEM chain, leaf first.
    pub certificate: PathBuf,
    /// PEM, RSA (PKCS#1 or #8) or ECDSA (SEC1 or PKCS#8). Only the path is kept here.
    pub private_key: PathBuf,
    /// PEM bundle of the CAs client certificates must chain to.
    pub ca: Option<PathBuf>,
    /// PEM CRL files; a revoked client certificate is refused.
    pub crls: Vec<PathBuf>,
    pub min_version: TlsVersion,
    pub max_version: TlsVersion,
    /// TLS 1.2 session IDs and tickets, TLS 1.3 tickets.
    pub resumption: bool,
    /// The ticket key rotation period (a ticket is accepted for at most twice this) and the
    /// longest a cached session may be resumed.
    pub session_lifetime: Duration,
    /// Sessions kept in each configuration's cache (TLS 1.2 session IDs).
    pub session_cache: usize,
}

impl TlsSettings {
    /// A certificate and key with every other setting at its default.
    pub fn new(certificate: impl Into<PathBuf>, private_key: impl Into<PathBuf>) -> TlsSettings {
        TlsSettings {
            certificate: certificate.into(),
            private_key: private_key.into(),
            ca: None,
            crls: Vec::new(),
            min_version: TlsVersion::V1_2,
            max_version: TlsVersion::V1_3,
            resumption: true,
            session_lifetime: DEFAULT_SESSION_LIFETIME,
            session_cache: DEFAULT_SESSION_CACHE,
        }
    }
}

/// Which of the [`TlsSettings`] a [`TlsError`] is about, so a config section can point at the
/// key that named it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsFile {
    Certificate,
    PrivateKey,
    Ca,
    /// The n-th entry of `crls`.
    Crl(usize),
}

impl fmt::Display for TlsFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsFile::Certificate => "certificate",
            TlsFile::PrivateKey => "private_key",
            TlsFile::Ca => "ca",
            TlsFile::Crl(_) => "crl",
        })
    }
}

/// Why TLS settings or a certificate cannot be used. Each names the file and what is wrong;
/// none carries key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    #[error("{file} {}: cannot read: {reason}", path.display())]
    Unreadable {
        file: TlsFile,
        path: PathBuf,
        reason: String,
    },
    #[error("{file} {}: no PEM certificate in it", path.display())]
    NoCertificate { file: TlsFile, path: PathBuf },
    #[error("{file} {}: {reason}", path.display())]
    BadCertificate {
        file: TlsFile,
        path: PathBuf,
        reason: String,
    },
    #[error("private_key {}: no PEM private key (PKCS#1, PKCS#8 or SEC1) in it", path.display())]
    NoKey { path: PathBuf },
    #[error("private_key {}: unsupported private key: {reason}", path.display())]
    UnsupportedKey { path: PathBuf, reason: String },
    #[error("private_key {} does not match certificate {}", key.display(), certificate.display())]
    KeyMismatch { key: PathBuf, certificate: PathBuf },
    #[error("ca {}: {reason}", path.display())]
    BadCa { path: PathBuf, reason: String },
    #[error("crl {}: {reason}", path.display())]
    BadCrl {
        index: usize,
        path: PathBuf,
        reason: String,
    },
    #[error("crls need a ca: a CRL is checked against the CA that issued it")]
    CrlsWithoutCa,
    #[error("min_version {min} is above max_version {max}")]
    Versions { min: TlsVersion, max: TlsVersion },
    #[error("session_cache must be at least 1")]
    NoSessionCache,
    #[error("TLS setup failed: {0}")]
    Setup(String),
    #[error("not a usable X.509 certificate: {0}")]
    PeerCertificate(String),
}

impl TlsError {
    /// The setting the error is about, if it is about one file.
    pub fn file(&self) -> Option<TlsFile> {
        match self {
            TlsError::Unreadable { file, .. }
            | TlsError::NoCertificate { file, .. }
            | TlsError::BadCertificate { file, .. } => Some(*file),
            TlsError::NoKey { .. }
            | TlsError::UnsupportedKey { .. }
            | TlsError::KeyMismatch { .. } => Some(TlsFile::PrivateKey),
            TlsError::BadCa { .. } => Some(TlsFile::Ca),
            TlsError::BadCrl { index, .. } => Some(TlsFile::Crl(*index)),
            TlsError::CrlsWithoutCa
            | TlsError::Versions { .. }
            | TlsError::NoSessionCache
            | TlsError::Setup(_)
            | TlsError::PeerCertificate(_) => None,
        }
    }
}
