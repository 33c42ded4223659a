//! Connections to the directory servers: per server one multiplexed connection bound as the
//! service account for searches, and a pool of connections for user binds (a bind changes a
//! connection's identity, so user binds never share the search connection). Servers are tried
//! in order; one that fails is skipped for a backoff that doubles up to a maximum.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, Scope, SearchEntry};
use tokio::sync::Semaphore;
use tracing::{debug, info, warn};

use super::ad;
use super::config::LdapConfig;
use super::filter::{directory_name, escape_filter_value, user_filter};
use crate::backend::{Identity, NtResponse, Outcome};
use crate::metrics::BackendMetrics;
use crate::proto::crypto::mschap::{challenge_response, NtHash, NtKey};
use crate::vocab::RejectReason;
use subtle::ConstantTimeEq;

/// LDAP_MATCHING_RULE_IN_CHAIN: AD walks nested group membership server-side.
pub const IN_CHAIN: &str = "1.2.840.113556.1.4.1941";

struct Health {
    failures: u32,
    retry_at: Option<Instant>,
}

struct Server {
    url: String,
    search: tokio::sync::Mutex<Option<Ldap>>,
    idle: Mutex<Vec<Ldap>>,
    binders: Semaphore,
    health: Mutex<Health>,
}

/// A failure of the server (connect, TLS, timeout, I/O, busy), as opposed to an answer.
#[derive(Debug)]
struct ServerError(String);

impl From<LdapError> for ServerError {
    fn from(e: LdapError) -> Self {
        ServerError(e.to_string())
    }
}

/// The directory: its servers and how to talk to them.
pub struct Directory {
    cfg: LdapConfig,
    servers: Vec<Server>,
    tls: Option<Arc<rustls::ClientConfig>>,
    metrics: Arc<BackendMetrics>,
}

impl Directory {
    pub fn new(cfg: LdapConfig, metrics: Arc<BackendMetrics>) -> Result<Directory, String> {
        let tls = match &cfg.ca_file {
            Some(path) => Some(Arc::new(tls_config(path)?)),
            None => None,
        };
        let servers = cfg
            .servers
            .iter()
            .map(|url| Server {
                url: url.clone(),
                search: tokio::sync::Mutex::new(None),
                idle: Mutex::new(Vec::new()),
                binders: Semaphore::new(cfg.pool_size),
                health: Mutex::new(Health {
                    failures: 0,
                    retry_at: None,
                }),
            })
            .collect();
        Ok(Directory {
            cfg,
            servers,
            tls,
            metrics,
        })
    }

    /// Whether MS-CHAP can be checked against the entries' NT hashes.
    pub fn has_nt_hashes(&self) -> bool {
        self.cfg.nt_password_attribute.is_some()
    }

    /// Authenticates `login` (the RADIUS User-Name) with `password` by PAP.
    pub async fn authenticate(&self, login: &str, password: &[u8]) -> Outcome {
        if password.is_empty() {
            // An empty simple bind is an unauthenticated bind that "succeeds" (RFC 4513 §5.1.2).
            return Outcome::Reject(RejectReason::EmptyPassword);
        }
        let Ok(password) = std::str::from_utf8(password) else {
            return Outcome::Reject(RejectReason::MalformedPassword);
        };
        self.find(login, Check::Bind(password)).await
    }

    /// Authenticates `login` by MS-CHAP: the response is checked against the entry's NT
    /// hash (`nt_password_attribute`, read with the service account).
    pub async fn authenticate_nt(&self, login: &str, response: &NtResponse) -> Outcome {
        if self.cfg.nt_password_attribute.is_none() {
            return Outcome::Reject(RejectReason::MsChapNeedsNtHash);
        }
        self.find(login, Check::NtHash(response)).await
    }

    /// Looks `login` up for its groups only: someone else (winbind) checked the credential.
    pub async fn lookup(&self, login: &str) -> Outcome {
        self.find(login, Check::Verified).await
    }

    /// Finds `login`'s entry on the first healthy server and checks it as `check` says.
    async fn find(&self, login: &str, check: Check<'_>) -> Outcome {
        let Some(name) = directory_name(login, self.cfg.realm, &self.cfg.realms) else {
            return Outcome::Reject(RejectReason::UnknownRealm);
        };
        let filter = user_filter(&self.cfg.user_filter, name);
        let now = Instant::now();
        let mut tried = false;
        for s in &self.servers {
            if s.health
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .retry_at
                .is_some_and(|t| t > now)
            {
                continue;
            }
            tried = true;
            match self.on_server(s, name, &filter, &check).await {
                Ok(outcome) => {
                    let mut h = s.health.lock().unwrap_or_else(|e| e.into_inner());
                    if h.failures > 0 {
                        info!(target: "radshard::backend", server = %s.url, "directory server is back");
                    }
                    h.failures = 0;
                    h.retry_at = None;
                    return outcome;
                }
                Err(e) => self.server_failed(s, &e),
            }
        }
        if !tried {
            debug!(target: "radshard::backend", "every directory server is in backoff");
        }
        Outcome::Unavailable
    }

    fn server_failed(&self, s: &Server, e: &ServerError) {
        self.metrics.ldap_server_failures.fetch_add(1, Relaxed);
        let mut h = s.health.lock().unwrap_or_else(|e| e.into_inner());
        h.failures = h.failures.saturating_add(1);
        let backoff = self
            .cfg
            .reconnect_backoff
            .saturating_mul(1u32 << (h.failures - 1).min(16))
            .min(self.cfg.reconnect_backoff_max);
        h.retry_at = Some(Instant::now() + backoff);
        warn!(target: "radshard::backend", server = %s.url, error = %e.0, retry_in_ms = backoff.as_millis() as u64, "directory server failed; failing over");
        s.idle.lock().unwrap_or_else(|e| e.into_inner()).clear();
        if let Ok(mut search) = s.search.try_lock() {
            *search = None;
        }
    }

    async fn connect(&self, url: &str) -> Result<Ldap, ServerError> {
        let mut settings = LdapConnSettings::new()
            .set_conn_timeout(self.cfg.connect_timeout)
            .set_starttls(self.cfg.starttls);
        if let Some(tls) = &self.tls {
            settings = settings.set_config(tls.clone());
        }
        if self.cfg.tls_insecure_skip_verify {
            settings = settings.set_no_tls_verify(true);
        }
        let (conn, ldap) = tokio::time::timeout(
            self.cfg.connect_timeout,
            LdapConnAsync::with_settings(settings, url),
        )
        .await
        .map_err(|_| ServerError("connect timed out".into()))??;
        self.metrics.ldap_connects.fetch_add(1, Relaxed);
        tokio::spawn(async move {
            if let Err(e) = conn.drive().await {
                debug!(target: "radshard::backend", error = %e, "ldap connection ended");
            }
        });
        Ok(ldap)
    }

    /// The server's search connection, bound as the service account.
    async fn searcher(&self, s: &Server) -> Result<Ldap, ServerError> {
        let mut slot = s.search.lock().await;
        if let Some(l) = slot.as_mut() {
            if !l.is_closed() {
                return Ok(l.clone());
            }
        }
        let mut l = self.connect(&s.url).await?;
        let r = l
            .with_timeout(self.cfg.timeout)
            .simple_bind(&self.cfg.bind_dn, self.cfg.bind_password.expose())
            .await?;
        if r.rc != 0 {
            // A wrong service account is a configuration error: every server will say so.
            return Err(ServerError(format!(
                "service account bind failed (rc={}): {}",
                r.rc, r.text
            )));
        }
        *slot = Some(l.clone());
        Ok(l)
    }

    async fn on_server(
        &self,
        s: &Server,
        name: &str,
        filter: &str,
        check: &Check<'_>,
    ) -> Result<Outcome, ServerError> {
        let mut search = self.searcher(s).await?;
        let mut attrs = vec![self.cfg.group_attribute.as_str()];
        if let Some(a) = &self.cfg.alternate_login_attribute {
            attrs.push(a);
        }
        let nt_attribute = self.cfg.nt_password_attribute.as_deref();
        if let (Check::NtHash(_), Some(a)) = (check, nt_attribute) {
            attrs.push(a);
        }
        let res = search
            .with_timeout(self.cfg.timeout)
            .search(&self.cfg.base_dn, Scope::Subtree, filter, attrs)
            .await;
        let (entries, result) = match res {
            Ok(r) => (r.0, r.1),
            Err(e) => {
                *s.search.lock().await = None;
                return Err(e.into());
            }
        };
        match result.rc {
            0 | 4 => {} // success, sizeLimitExceeded (handled as ambiguous below)
            32 => return Ok(Outcome::Reject(RejectReason::UnknownUser)), // noSuchObject
            51..=53 | 80 => {
                return Err(ServerError(format!(
                    "search rc={}: {}",
                    result.rc, result.text
                )))
            }
            rc => {
                warn!(target: "radshard::backend", rc, text = %result.text, "user search failed");
                return Err(ServerError(format!("search rc={rc}")));
            }
        }
        let entries: Vec<SearchEntry> = entries.into_iter().map(SearchEntry::construct).collect();
        let entry = match entries.len() {
            0 => return Ok(Outcome::Reject(RejectReason::UnknownUser)),
            1 => &entries[0],
            _ => return Ok(Outcome::Reject(RejectReason::AmbiguousUser)),
        };

        let nt_key = match check {
            Check::Bind(password) => match self.bind(s, &entry.dn, password).await? {
                Some(reason) => return Ok(Outcome::Reject(reason)),
                None => None,
            },
            Check::NtHash(response) => match nt_attribute.map(|a| nt_check(entry, a, response)) {
                Some(Ok(key)) => Some(key),
                Some(Err(reason)) => return Ok(Outcome::Reject(reason)),
                None => return Ok(Outcome::Reject(RejectReason::MsChapNeedsNtHash)),
            },
            Check::Verified => None,
        };

        let mut groups: Vec<String> = entry
            .attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(&self.cfg.group_attribute))
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        if self.cfg.nested_groups {
            let chain = format!("(member:{IN_CHAIN}:={})", escape_filter_value(&entry.dn));
            let (nested, _) = search
                .with_timeout(self.cfg.timeout)
                .search(&self.cfg.group_base_dn, Scope::Subtree, &chain, vec!["1.1"])
                .await?
                .success()?;
            for e in nested {
                let dn = SearchEntry::construct(e).dn;
                if !groups.iter().any(|g| g.eq_ignore_ascii_case(&dn)) {
                    groups.push(dn);
                }
            }
        }
        let presented = self
            .cfg
            .alternate_login_attribute
            .as_ref()
            .and_then(|a| {
                entry
                    .attrs
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(a))
                    .and_then(|(_, v)| v.first().cloned())
            })
            .unwrap_or_else(|| name.to_string());
        Ok(Outcome::Accept(Arc::new(Identity {
            presented,
            dn: entry.dn.clone(),
            groups,
            nt_key,
        })))
    }

    /// Binds as `dn` on a pooled connection: `None` when the password is right, the reason
    /// when the directory refused it.
    async fn bind(
        &self,
        s: &Server,
        dn: &str,
        password: &str,
    ) -> Result<Option<RejectReason>, ServerError> {
        if password.is_empty() || dn.is_empty() {
            return Ok(Some(RejectReason::EmptyPassword));
        }
        let _permit = s
            .binders
            .acquire()
            .await
            .map_err(|_| ServerError("bind pool closed".into()))?;
        let pooled = s.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut conn = match pooled {
            Some(mut c) => {
                if c.is_closed() {
                    self.connect(&s.url).await?
                } else {
                    c
                }
            }
            None => self.connect(&s.url).await?,
        };
        self.metrics.ldap_user_binds.fetch_add(1, Relaxed);
        let r = conn
            .with_timeout(self.cfg.timeout)
            .simple_bind(dn, password)
            .await?;
        let verdict = match r.rc {
            0 => Ok(None),
            49 => Ok(Some(ad::reject_reason(&r.text))),
            // inappropriateAuthentication, unwillingToPerform (disabled in some directories)
            48 | 53 => Ok(Some(RejectReason::AccountDisabled)),
            51 | 52 | 80 => Err(ServerError(format!("bind rc={}: {}", r.rc, r.text))),
            rc => {
                warn!(target: "radshard::backend", rc, text = %r.text, "unexpected bind result; rejecting");
                Ok(Some(RejectReason::BadPassword))
            }
        };
        if verdict.is_ok() {
            s.idle.lock().unwrap_or_else(|e| e.into_inner()).push(conn);
        }
        verdict
    }
}

/// How a found entry's credential is checked.
enum Check<'a> {
    /// PAP: bind as the entry with this password.
    Bind(&'a str),
    /// MS-CHAP: the response against the entry's NT hash attribute.
    NtHash(&'a NtResponse),
    /// Already checked elsewhere (winbind): the entry is wanted for its groups.
    Verified,
}

/// Checks an MS-CHAP response against the NT hash in `entry`'s `attribute`: 32 hex digits
/// (`sambaNTPassword`) or 16 raw octets. The NT key on success.
fn nt_check(
    entry: &SearchEntry,
    attribute: &str,
    response: &NtResponse,
) -> Result<NtKey, RejectReason> {
    let mut hash = NtHash([0; 16]);
    let text = entry
        .attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(attribute))
        .and_then(|(_, v)| v.first());
    let raw = entry
        .bin_attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(attribute))
        .and_then(|(_, v)| v.first());
    let decoded = match (text, raw) {
        (Some(t), _) => {
            data_encoding::HEXLOWER_PERMISSIVE.decode_mut(t.as_bytes(), &mut hash.0) == Ok(16)
                && t.len() == 32
        }
        (None, Some(r)) if r.len() == 16 => {
            hash.0.copy_from_slice(r);
            true
        }
        _ => false,
    };
    if !decoded {
        // No NT hash readable for this user (absent, or not one): MS-CHAP cannot check them.
        return Err(RejectReason::MsChapNeedsNtHash);
    }
    let expected = challenge_response(&response.challenge, &hash.0);
    if bool::from(expected.ct_eq(&response.response)) {
        Ok(hash.nt_key())
    } else {
        Err(RejectReason::BadPassword)
    }
}

fn tls_config(ca_file: &std::path::Path) -> Result<rustls::ClientConfig, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca_file)
        .map_err(|e| format!("cannot read CA file {}: {e}", ca_file.display()))?;
    for c in certs {
        let c = c.map_err(|e| format!("bad certificate in {}: {e}", ca_file.display()))?;
        roots
            .add(c)
            .map_err(|e| format!("bad certificate in {}: {e}", ca_file.display()))?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn directory(servers: &str) -> Directory {
        let text = format!(
            "[ldap]\nservers = [{servers:?}]\nbind_dn = \"cn=admin\"\nbind_password = \"x\"\n\
             base_dn = \"dc=example,dc=org\"\nuser_filter = \"(uid={{user}})\"\nrealms = [\"example.org\"]\n"
        );
        let c =
            crate::config::Config::from_str(&text, std::path::Path::new("t.toml"), None).unwrap();
        Directory::new(c.ldap.unwrap(), Arc::new(BackendMetrics::default())).unwrap()
    }

    #[test]
    fn refuses_before_any_connection() {
        // Port 1 on loopback: nothing listens, so any attempt to connect would be Unavailable.
        let d = directory("ldap://127.0.0.1:1");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            assert_eq!(
                d.authenticate("alice", b"").await,
                Outcome::Reject(RejectReason::EmptyPassword),
                "an empty password must never reach a simple bind"
            );
            assert_eq!(
                d.authenticate("alice", b"\xff\xfe").await,
                Outcome::Reject(RejectReason::MalformedPassword)
            );
            assert_eq!(
                d.authenticate("alice@other.org", b"pw").await,
                Outcome::Reject(RejectReason::UnknownRealm)
            );
            assert_eq!(
                d.authenticate("alice@example.org", b"pw").await,
                Outcome::Unavailable
            );
        });
        assert_eq!(d.metrics.ldap_user_binds.load(Relaxed), 0);
        assert_eq!(d.metrics.ldap_server_failures.load(Relaxed), 1);
    }
}
