//! The rustls server configurations of one service, built from its [`TlsSettings`].
//!
//! Two configurations share the certificate and key: `tunnel` asks for no client certificate
//! (PEAP, TTLS: the user authenticates inside the tunnel), `mutual` requires one that chains to
//! the configured CAs (EAP-TLS). Each has its own session cache and its own ticket keys, so a
//! session made by one method can never be resumed by the other (a TTLS session carries no
//! client certificate and must not pass for an EAP-TLS one).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::crypto::{aws_lc_rs, CryptoProvider, GetRandomFailed};
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{
    NoServerSessionStorage, ProducesTickets, ServerSessionMemoryCache, StoresServerSessions,
    WebPkiClientVerifier,
};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{RootCertStore, ServerConfig, SupportedProtocolVersion, TicketRotator};

use super::resumption::{TaggedSessions, TaggedTickets};
use super::{TlsError, TlsFile, TlsSettings, TlsVersion};

/// The rustls server configurations for one service: built once at start-up and on reload,
/// shared (`Arc`) by every worker thread, so sessions and tickets are shared across all shards.
#[derive(Debug, Clone)]
pub struct ServerTls {
    /// No client certificate requested (PEAP, TTLS).
    pub tunnel: Arc<ServerConfig>,
    /// A client certificate required and verified against `ca` and `crls` (webpki: chain,
    /// validity dates, clientAuth EKU, revocation); `None` without `ca`.
    pub mutual: Option<Arc<ServerConfig>>,
}

impl ServerTls {
    /// Takes `old`'s session caches and ticket keys into these (freshly built, not yet shared)
    /// configurations; false, changing nothing, if either is already shared.
    pub fn carry_resumption(&mut self, old: &ServerTls) -> bool {
        fn carry(new: &mut Arc<ServerConfig>, old: &ServerConfig) -> bool {
            match Arc::get_mut(new) {
                Some(c) => {
                    c.session_storage = old.session_storage.clone();
                    c.ticketer = old.ticketer.clone();
                    true
                }
                None => false,
            }
        }
        let unshared = Arc::get_mut(&mut self.tunnel).is_some()
            && self
                .mutual
                .as_mut()
                .map_or(true, |m| Arc::get_mut(m).is_some());
        if !unshared {
            return false;
        }
        carry(&mut self.tunnel, &old.tunnel);
        // EAP-TLS keeps its own cache; a new CA without an old one starts afresh.
        if let (Some(new), Some(old)) = (self.mutual.as_mut(), old.mutual.as_ref()) {
            carry(new, old);
        }
        true
    }

    /// Reads the certificate, key, CAs and CRLs and builds both configurations. Every file is
    /// checked here, so a configuration that builds serves.
    pub fn build(s: &TlsSettings) -> Result<ServerTls, TlsError> {
        if s.min_version > s.max_version {
            return Err(TlsError::Versions {
                min: s.min_version,
                max: s.max_version,
            });
        }
        if s.session_cache == 0 {
            return Err(TlsError::NoSessionCache);
        }
        if !s.crls.is_empty() && s.ca.is_none() {
            return Err(TlsError::CrlsWithoutCa);
        }
        let provider = Arc::new(aws_lc_rs::default_provider());
        let key = certified_key(s, &provider)?;
        let versions = versions(s.min_version, s.max_version);

        let verifier = match &s.ca {
            Some(ca) => Some(client_verifier(ca, &s.crls, &provider)?),
            None => None,
        };

        let config = |verifier: Option<Arc<dyn ClientCertVerifier>>| {
            let builder = ServerConfig::builder_with_provider(provider.clone())
                .with_protocol_versions(&versions)
                .map_err(|e| TlsError::Setup(e.to_string()))?;
            let mutual = verifier.is_some();
            let builder = match verifier {
                Some(v) => builder.with_client_cert_verifier(v),
                None => builder.with_no_client_auth(),
            };
            let mut c = builder.with_cert_resolver(Arc::new(SingleCertAndKey::from(key.clone())));
            resumption(&mut c, s, mutual)?;
            Ok::<_, TlsError>(Arc::new(c))
        };
        Ok(ServerTls {
            tunnel: config(None)?,
            mutual: verifier.map(|v| config(Some(v))).transpose()?,
        })
    }
}

fn versions(min: TlsVersion, max: TlsVersion) -> Vec<&'static SupportedProtocolVersion> {
    [
        (TlsVersion::V1_2, &rustls::version::TLS12),
        (TlsVersion::V1_3, &rustls::version::TLS13),
    ]
    .into_iter()
    .filter(|(v, _)| (min..=max).contains(v))
    .map(|(_, r)| r)
    .collect()
}

fn unreadable(file: TlsFile, path: &Path, e: &pem::Error) -> TlsError {
    TlsError::Unreadable {
        file,
        path: path.to_path_buf(),
        reason: match e {
            pem::Error::Io(io) => io.to_string(),
            other => format!("not valid PEM ({other})"),
        },
    }
}

/// Every certificate of a PEM file, in order.
pub(super) fn read_certs(
    file: TlsFile,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| unreadable(file, path, &e))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            file,
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

/// The chain and key, the key checked against the leaf.
pub(super) fn certified_key(
    s: &TlsSettings,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let chain = read_certs(TlsFile::Certificate, &s.certificate)?;
    for (i, cert) in chain.iter().enumerate() {
        x509_parser::parse_x509_certificate(cert).map_err(|e| TlsError::BadCertificate {
            file: TlsFile::Certificate,
            path: s.certificate.clone(),
            reason: format!("certificate {} of the chain does not parse: {e}", i + 1),
        })?;
    }
    let key = PrivateKeyDer::from_pem_file(&s.private_key).map_err(|e| match e {
        pem::Error::NoItemsFound => TlsError::NoKey {
            path: s.private_key.clone(),
        },
        // The PEM parser's other errors may quote bytes of the file: say only what kind.
        pem::Error::Io(io) => TlsError::Unreadable {
            file: TlsFile::PrivateKey,
            path: s.private_key.clone(),
            reason: io.to_string(),
        },
        _ => TlsError::Unreadable {
            file: TlsFile::PrivateKey,
            path: s.private_key.clone(),
            reason: "not valid PEM".into(),
        },
    })?;
    let signing =
        provider
            .key_provider
            .load_private_key(key)
            .map_err(|e| TlsError::UnsupportedKey {
                path: s.private_key.clone(),
                reason: e.to_string(),
            })?;
    let certified = CertifiedKey::new(chain, signing);
    match certified.keys_match() {
        Ok(()) => Ok(certified),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            Err(TlsError::KeyMismatch {
                key: s.private_key.clone(),
                certificate: s.certificate.clone(),
            })
        }
        Err(e) => Err(TlsError::BadCertificate {
            file: TlsFile::Certificate,
            path: s.certificate.clone(),
            reason: format!("cannot check it against the private key: {e}"),
        }),
    }
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The webpki verifier for client certificates: chain to `ca`, validity, clientAuth EKU, and
/// the leaf's revocation by `crls`.
///
/// Revocation follows FreeRADIUS's `check_crl = yes` (OpenSSL's CRL check): the leaf only,
/// a leaf whose issuer has no CRL among `crls` is refused (unknown status), and so is one
/// checked against an expired CRL. An already expired CRL is refused here, at start-up.
fn client_verifier(
    ca: &Path,
    crls: &[std::path::PathBuf],
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
    let bad_ca = |reason: String| TlsError::BadCa {
        path: ca.to_path_buf(),
        reason,
    };
    let cas = read_certs(TlsFile::Ca, ca)?;
    let mut roots = RootCertStore::empty();
    let mut parsed_cas = Vec::with_capacity(cas.len());
    for (i, cert) in cas.iter().enumerate() {
        let (_, parsed) = x509_parser::parse_x509_certificate(cert)
            .map_err(|e| bad_ca(format!("certificate {} does not parse: {e}", i + 1)))?;
        parsed_cas.push(parsed);
        roots
            .add(cert.clone())
            .map_err(|e| bad_ca(format!("certificate {} is not a usable CA: {e}", i + 1)))?;
    }
    let roots = Arc::new(roots);

    let mut all = Vec::with_capacity(crls.len());
    for (index, path) in crls.iter().enumerate() {
        let bad = |reason: String| TlsError::BadCrl {
            index,
            path: path.clone(),
            reason,
        };
        let list = CertificateRevocationListDer::pem_file_iter(path)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| unreadable(TlsFile::Crl(index), path, &e))?;
        if list.is_empty() {
            return Err(bad("no PEM X509 CRL in it".into()));
        }
        for crl in &list {
            let (_, parsed) = x509_parser::parse_x509_crl(crl)
                .map_err(|e| bad(format!("does not parse: {e}")))?;
            // Signed by one of the CAs: otherwise webpki would find no CRL for their
            // certificates and refuse every one of them (unknown revocation status).
            let signed = parsed_cas.iter().any(|c| {
                c.subject().as_raw() == parsed.issuer().as_raw()
                    && parsed.verify_signature(c.public_key()).is_ok()
            });
            if !signed {
                return Err(bad(format!(
                    "not signed by a CA in {} (its issuer is {})",
                    ca.display(),
                    parsed.issuer()
                )));
            }
            if let Some(next) = parsed.next_update() {
                if next.timestamp() < now_unix() {
                    return Err(bad(format!(
                        "expired: its next update was due {next}; every certificate it covers would be refused"
                    )));
                }
            }
            // webpki's own parse, which is the one that decides: checked one file at a time
            // so that the error can name the file.
            WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
                .with_crls([crl.clone()])
                .build()
                .map_err(|e| bad(e.to_string()))?;
        }
        all.extend(list);
    }
    WebPkiClientVerifier::builder_with_provider(roots, provider.clone())
        .with_crls(all)
        .only_check_end_entity_revocation()
        .enforce_revocation_expiration()
        .build()
        .map_err(|e| bad_ca(e.to_string()))
}

/// Session IDs and tickets per the settings: each configuration gets its own cache and keys.
///
/// `mutual` (EAP-TLS) resumes from the server's cache only (TLS 1.2 session IDs, TLS 1.3
/// stateful tickets), never from a stateless ticket: a session's state holds the client's
/// certificate chain, so a ticket carrying it is a kilobyte or more, sent by the server at
/// every handshake and back by the client at every resumption, each time in extra EAP rounds.
/// A cache entry costs that memory instead, bounded by `session_cache`.
fn resumption(c: &mut ServerConfig, s: &TlsSettings, mutual: bool) -> Result<(), TlsError> {
    if !s.resumption {
        c.session_storage = Arc::new(NoServerSessionStorage {});
        c.ticketer = Arc::new(NoTickets);
        c.send_tls13_tickets = 0;
        return Ok(());
    }
    // Tagged with the token of the conversation that made each session (`resumption.rs`),
    // which rustls does not report on TLS 1.2.
    c.session_storage = Arc::new(TaggedSessions(Arc::new(ExpiringSessions {
        inner: ServerSessionMemoryCache::new(s.session_cache),
        lifetime: s.session_lifetime,
    })));
    c.ticketer = if mutual {
        Arc::new(NoTickets)
    } else {
        Arc::new(TaggedTickets(rotating_ticketer(s.session_lifetime)?))
    };
    // One ticket per handshake: an EAP conversation resumes once, and each ticket is another
    // round of TLS data to fragment.
    c.send_tls13_tickets = 1;
    Ok(())
}

/// Ticket keys rotated every `period` (the previous keys still decrypt for one more period).
///
/// rustls's [`TicketRotator`] takes a generator of sub-ticketers; aws-lc-rs's RFC 5077 ticket
/// producer is reachable only through `aws_lc_rs::Ticketer::new()`, itself a rotator with a
/// fixed 6-hour period, so each sub-ticketer is one of those. With `period` at most 6 hours
/// (the config refuses more), the inner rotator never rotates before the outer one retires it.
fn rotating_ticketer(period: Duration) -> Result<Arc<dyn ProducesTickets>, TlsError> {
    let secs = u32::try_from(period.as_secs()).unwrap_or(u32::MAX).max(1);
    let rotator =
        TicketRotator::new(secs, sub_ticketer).map_err(|e| TlsError::Setup(e.to_string()))?;
    Ok(Arc::new(rotator))
}

fn sub_ticketer() -> Result<Box<dyn ProducesTickets>, GetRandomFailed> {
    aws_lc_rs::Ticketer::new()
        .map(|t| Box::new(SharedTicketer(t)) as Box<dyn ProducesTickets>)
        .map_err(|_| GetRandomFailed)
}

/// An `Arc`'d ticketer as the boxed one [`TicketRotator`] wants.
#[derive(Debug)]
struct SharedTicketer(Arc<dyn ProducesTickets>);

impl ProducesTickets for SharedTicketer {
    fn enabled(&self) -> bool {
        self.0.enabled()
    }
    fn lifetime(&self) -> u32 {
        self.0.lifetime()
    }
    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        self.0.encrypt(plain)
    }
    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        self.0.decrypt(cipher)
    }
}

/// No tickets: rustls then falls back to session IDs, which `NoServerSessionStorage` refuses.
#[derive(Debug)]
struct NoTickets;

impl ProducesTickets for NoTickets {
    fn enabled(&self) -> bool {
        false
    }
    fn lifetime(&self) -> u32 {
        0
    }
    fn encrypt(&self, _: &[u8]) -> Option<Vec<u8>> {
        None
    }
    fn decrypt(&self, _: &[u8]) -> Option<Vec<u8>> {
        None
    }
}

/// rustls's bounded session cache, with an age limit it does not have: each value is stored
/// behind the Unix second it was made, and a session older than `lifetime` is not resumed.
#[derive(Debug)]
struct ExpiringSessions {
    inner: Arc<ServerSessionMemoryCache>,
    lifetime: Duration,
}

impl ExpiringSessions {
    fn fresh(&self, stored: Vec<u8>) -> Option<Vec<u8>> {
        let (made, value) = stored.split_first_chunk::<8>()?;
        let age = now_unix().saturating_sub(i64::from_be_bytes(*made));
        (u64::try_from(age).ok()? <= self.lifetime.as_secs()).then(|| value.to_vec())
    }
}

impl StoresServerSessions for ExpiringSessions {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        let mut stored = Vec::with_capacity(8 + value.len());
        stored.extend_from_slice(&now_unix().to_be_bytes());
        stored.extend_from_slice(&value);
        self.inner.put(key, stored)
    }
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.fresh(self.inner.get(key)?)
    }
    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.fresh(self.inner.take(key)?)
    }
    fn can_cache(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_span_min_to_max() {
        let v = |a, b| {
            versions(a, b)
                .into_iter()
                .map(|v| v.version)
                .collect::<Vec<_>>()
        };
        use rustls::ProtocolVersion::{TLSv1_2, TLSv1_3};
        assert_eq!(v(TlsVersion::V1_2, TlsVersion::V1_3), [TLSv1_2, TLSv1_3]);
        assert_eq!(v(TlsVersion::V1_3, TlsVersion::V1_3), [TLSv1_3]);
        assert_eq!(v(TlsVersion::V1_2, TlsVersion::V1_2), [TLSv1_2]);
    }

    #[test]
    fn cached_sessions_expire() {
        let store = ExpiringSessions {
            inner: ServerSessionMemoryCache::new(4),
            lifetime: Duration::from_secs(60),
        };
        assert!(store.put(b"id".to_vec(), b"value".to_vec()));
        assert_eq!(store.get(b"id").as_deref(), Some(&b"value"[..]));
        let mut old = (now_unix() - 61).to_be_bytes().to_vec();
        old.extend_from_slice(b"stale");
        store.inner.put(b"old".to_vec(), old);
        assert_eq!(store.get(b"old"), None);
        assert_eq!(store.take(b"id").as_deref(), Some(&b"value"[..]));
        assert_eq!(store.get(b"id"), None);
    }
}
