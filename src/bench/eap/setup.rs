//! What every conversation of a run shares: the method, the rustls client configuration (one
//! `Arc<ClientConfig>`, hence one session cache for the whole loader), the server name and the
//! fragment size. Built once, before the first login.

use std::path::Path;
use std::sync::Arc;

use rustls::client::{ClientSessionMemoryCache, Resumption};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};

use super::args::{EapArgs, TlsVersion};
use crate::proto::eap::EapType;

/// Server names a session cache keeps: every login names the same server, so one would do
/// (rustls keeps one TLS 1.2 session and a few single-use TLS 1.3 tickets per name).
const SESSION_CACHE: usize = 4;
/// The largest `--eap-fragment`: a fragment, its EAP and RADIUS framing, User-Name, State and
/// Message-Authenticator must fit one 4096-octet RADIUS packet.
pub const FRAGMENT_MAX: usize = 3000;
const FRAGMENT_MIN: usize = 64;

/// The EAP method a run speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// EAP-TLS (RFC 5216, RFC 9190): a client certificate, no inner method.
    EapTls,
    /// PEAPv0 with inner EAP-MSCHAPv2 (MS-PEAP).
    Peap,
    /// EAP-TTLS (RFC 5281) with inner PAP (User-Name and User-Password AVPs).
    TtlsPap,
}

impl Method {
    pub fn eap_type(self) -> EapType {
        match self {
            Method::EapTls => EapType::Tls,
            Method::Peap => EapType::Peap,
            Method::TtlsPap => EapType::Ttls,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Method::EapTls => "eap-tls",
            Method::Peap => "peap",
            Method::TtlsPap => "ttls-pap",
        }
    }

    /// Whether the users' passwords are used (the tunnelled methods).
    pub fn uses_password(self) -> bool {
        self != Method::EapTls
    }
}

/// Why the run's TLS setup could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("--mode {0} needs --ca FILE to verify the server's certificate")]
    NoCa(&'static str),
    #[error("--mode eap-tls needs --client-cert FILE and --client-key FILE")]
    NoClientCert,
    #[error("{path}: {reason}")]
    Pem { path: String, reason: String },
    #[error("{path}: no certificate in it")]
    NoCertificate { path: String },
    #[error("--server-name {0:?} is not a DNS name or IP address")]
    ServerName(String),
    #[error("--eap-fragment must be {FRAGMENT_MIN}..={FRAGMENT_MAX}")]
    Fragment,
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
}

/// Whose sessions a login resumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    Off,
    /// Each window place its own previous login's (a session cache per place).
    PerSlot,
    /// The whole loader's latest (one session cache).
    Shared,
}

/// Shared by every conversation of one run.
pub struct Setup {
    pub method: Method,
    pub tls_version: TlsVersion,
    /// The configuration every login uses, or (per-slot resumption) the one each window
    /// place's configuration copies with a session cache of its own: [`Setup::slot_config`].
    pub config: Arc<ClientConfig>,
    pub server_name: ServerName<'static>,
    pub fragment: usize,
    /// The outer identity, when it is not each user's name.
    pub outer_identity: Option<Box<[u8]>>,
    pub resume: Resume,
}

impl Setup {
    pub fn new(method: Method, args: &EapArgs) -> Result<Setup, SetupError> {
        if !(FRAGMENT_MIN..=FRAGMENT_MAX).contains(&args.eap_fragment) {
            return Err(SetupError::Fragment);
        }
        let server_name = ServerName::try_from(args.server_name.clone())
            .map_err(|_| SetupError::ServerName(args.server_name.clone()))?;
        let ca = args.ca.as_deref().ok_or(SetupError::NoCa(method.label()))?;
        let mut roots = RootCertStore::empty();
        for cert in certificates(ca)? {
            roots.add(cert)?;
        }
        let version: &[&'static rustls::SupportedProtocolVersion] = match args.tls_version {
            TlsVersion::Tls12 => &[&rustls::version::TLS12],
            TlsVersion::Tls13 => &[&rustls::version::TLS13],
        };
        // An explicit provider: the process-wide default may be unset, or set by someone else.
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(version)?
            .with_root_certificates(roots);
        let mut config = match method {
            Method::EapTls => {
                let (Some(cert), Some(key)) = (&args.client_cert, &args.client_key) else {
                    return Err(SetupError::NoClientCert);
                };
                builder.with_client_auth_cert(certificates(cert)?, private_key(key)?)?
            }
            Method::Peap | Method::TtlsPap => builder.with_no_client_auth(),
        };
        let resume = match (args.resume, args.resume_shared) {
            (_, true) => Resume::Shared,
            (true, false) => Resume::PerSlot,
            (false, false) => Resume::Off,
        };
        config.resumption = match resume {
            Resume::Off => Resumption::disabled(),
            // Per slot: replaced by each slot's own store in `slot_config`.
            Resume::PerSlot | Resume::Shared => session_store(),
        };
        Ok(Setup {
            method,
            tls_version: args.tls_version,
            config: Arc::new(config),
            server_name,
            fragment: args.eap_fragment,
            outer_identity: args
                .outer_identity
                .as_ref()
                .map(|s| s.as_bytes().to_vec().into_boxed_slice()),
            resume,
        })
    }

    /// The configuration for one window place: with per-slot resumption a copy with a
    /// session cache of its own (made once per place, not per login), else the shared one.
    pub fn slot_config(&self) -> Arc<ClientConfig> {
        match self.resume {
            Resume::PerSlot => {
                let mut config = (*self.config).clone();
                config.resumption = session_store();
                Arc::new(config)
            }
            Resume::Off | Resume::Shared => self.config.clone(),
        }
    }
}

fn session_store() -> Resumption {
    Resumption::store(Arc::new(ClientSessionMemoryCache::new(SESSION_CACHE)))
}

fn pem_error(path: &Path, e: impl std::fmt::Display) -> SetupError {
    SetupError::Pem {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, SetupError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_error(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, e))?;
    if certs.is_empty() {
        return Err(SetupError::NoCertificate {
            path: path.display().to_string(),
        });
    }
    Ok(certs)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, SetupError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| pem_error(path, e))
}
