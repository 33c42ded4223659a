//! The backend pool: slow work (directory binds and MS-CHAP checks; its runtime also runs the
//! HTTP MFA calls) off the shards.
//!
//! A tokio multi-thread runtime on its own threads runs the jobs. Shards hand jobs over one
//! **bounded** crossbeam queue with `try_send`, never blocking, and await the answer on a
//! `futures` oneshot inside their glommio task. A dispatcher task takes a job from the queue
//! only when one of `max_in_flight` slots is free, so a slow or dead directory fills the queue
//! and further requests are shed by policy instead of piling up.
//!
//! * **Deadlines**: every job carries one derived from the request's arrival; a job still queued
//!   at its deadline, or not answered by it, is answered `Unavailable`.
//! * **Single-flight**: jobs are keyed by an attempt key (client, user, keyed hash of the
//!   password or MS-CHAP response). A copy of an attempt in flight (a NAS retransmission with a new Identifier, or
//!   on another shard) joins it: one bind, several answers.
//! * **Result cache**: accepts for `positive_cache_ttl`, rejects for `negative_cache_ttl`; the
//!   negative cache stops a device repeating a bad password from locking an AD account out.

pub mod config;
pub mod crypto;
pub mod ldap;
pub mod mfa;
pub mod sql;
pub mod winbind;

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError, TrySendError};
use futures_channel::oneshot;
use hmac::{Hmac, Mac};
use md5::Md5;
use tracing::{info, warn};

use crate::metrics::BackendMetrics;
use crate::proto::crypto::mschap::NtKey;
use crate::vocab::RejectReason;
use ldap::{Directory, LdapConfig};
use winbind::{MsChapCheck, Winbind, WinbindAnswer, WinbindConfig};

pub use config::{BackendConfig, ShedPolicy};

/// Who the directory says the user is, for policies and later stages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The name presented to later stages (MFA): the alternate login ID if configured, else
    /// the name the user logged in with.
    pub presented: String,
    /// The entry's DN.
    pub dn: String,
    /// Group DNs (direct and, on AD with `nested_groups`, nested).
    pub groups: Vec<String>,
    /// For an MS-CHAP login: the user's NT key, which the reply's `S=` and MPPE keys are
    /// computed from.
    pub nt_key: Option<NtKey>,
}

/// A backend job's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Accept(Arc<Identity>),
    Reject(RejectReason),
    /// No directory answered within the deadline.
    Unavailable,
    /// The queue was full: shed by policy.
    Shed,
}

impl Outcome {
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Accept(_) => "accept",
            Outcome::Reject(r) => r.label(),
            Outcome::Unavailable => "unavailable",
            Outcome::Shed => "shed",
        }
    }
}

/// What a shard asks the pool.
pub struct AuthRequest<'a> {
    pub client: &'a str,
    pub user: &'a str,
    pub proof: Proof<'a>,
    pub deadline: Instant,
}

/// What the user proves who they are with. Its `Debug` leaves out passwords and responses.
#[derive(Clone, Copy)]
pub enum Proof<'a> {
    /// PAP: the password, checked by a bind.
    Password(&'a [u8]),
    /// MS-CHAP: an NT-Response, checked by winbind or against the directory's NT hash.
    NtResponse(NtResponse),
}

/// An MS-CHAP NT-Response and the eight octets it answers (v1: the challenge; v2: the
/// ChallengeHash, RFC 2759 §8.2), which is all a verifier of either version needs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct NtResponse {
    pub challenge: [u8; 8],
    pub response: [u8; 24],
    /// MS-CHAPv2 (winbind must be told to allow it).
    pub v2: bool,
}

impl std::fmt::Debug for Proof<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Proof::Password(_) => f.write_str("Password(<redacted>)"),
            Proof::NtResponse(r) => write!(f, "NtResponse(v2: {}, <redacted>)", r.v2),
        }
    }
}

impl std::fmt::Debug for NtResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NtResponse(v2: {}, <redacted>)", self.v2)
    }
}

/// A job's identity for single-flight and caching: HMAC-MD5 under a per-process random key of
/// client, user and password, so the password is never kept and keys cannot be precomputed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AttemptKey([u8; 16]);

/// A password that leaves no copy behind in the job and never shows in Debug output.
struct Password(Vec<u8>);

impl Drop for Password {
    fn drop(&mut self) {
        crate::proto::wipe(&mut self.0);
    }
}

/// A job's owned copy of the proof.
enum JobProof {
    Password(Password),
    NtResponse(NtResponse),
}

struct Job {
    key: AttemptKey,
    user: String,
    proof: JobProof,
    deadline: Instant,
    queued: Instant,
}

struct Inner {
    /// `[ldap]`: binds for PAP, NT hashes for MS-CHAP (when no winbind), groups.
    directory: Option<Directory>,
    /// `[winbind]`: MS-CHAP checked by Active Directory through winbindd.
    winbind: Option<Arc<Winbind>>,
    inflight: Mutex<HashMap<AttemptKey, Vec<oneshot::Sender<Outcome>>>>,
    cache: Mutex<HashMap<AttemptKey, (Instant, Outcome)>>,
    positive_ttl: Duration,
    negative_ttl: Duration,
    metrics: Arc<BackendMetrics>,
    /// Wakes the dispatcher when a job is queued.
    wake: tokio::sync::Notify,
}

/// What winbind's answer makes of an MS-CHAP attempt: the NT key, or the outcome to answer.
fn nt_key_of(answer: WinbindAnswer) -> Result<NtKey, Outcome> {
    match answer {
        WinbindAnswer::Accepted { nt_key } => Ok(NtKey(nt_key.0)),
        WinbindAnswer::Rejected { reason, status } => {
            tracing::debug!(target: "radshard::backend", %status, reason = reason.label(), "winbind refused");
            Err(Outcome::Reject(reason))
        }
        WinbindAnswer::Unavailable { status, cause } => {
            warn!(target: "radshard::backend", ?cause, status = ?status.map(|s| s.to_string()), "winbind unavailable");
            Err(Outcome::Unavailable)
        }
    }
}

/// The account and NetBIOS domain of a User-Name, split as the directory splits realms
/// ([`ldap::filter::split_realm`]): `DOMAIN\\user` names its domain; `user@realm` (a DNS realm
/// or UPN suffix, not a NetBIOS name) and a plain `user` are in `default_domain`.
fn split_login<'a>(login: &'a str, default_domain: &'a str) -> (&'a str, &'a str) {
    let parsed = ldap::filter::split_realm(login);
    match parsed.realm {
        // The backslash form's realm is the prefix before the backslash.
        Some(domain) if login.as_bytes().get(domain.len()) == Some(&b'\\') => (parsed.user, domain),
        _ => (parsed.user, default_domain),
    }
}

/// Most result-cache entries kept; past that, expired ones are dropped, then all.
const CACHE_MAX: usize = 100_000;

/// The pool. Dropping it stops its threads (jobs in flight are abandoned and their waiters
/// see `Unavailable`).
pub struct BackendPool {
    tx: Sender<Job>,
    inner: Arc<Inner>,
    hash_key: [u8; 32],
    runtime: Option<tokio::runtime::Runtime>,
    pub config: BackendConfig,
}

impl std::fmt::Debug for BackendPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendPool")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// What `submit` did.
pub enum Submitted {
    /// Await the answer (a fresh job, a joined one, or a cached result already sent).
    Pending(oneshot::Receiver<Outcome>),
    /// The queue is full.
    Shed,
}

impl BackendPool {
    /// Starts the runtime and the dispatcher for `ldap`.
    pub fn start(
        config: &BackendConfig,
        ldap: Option<&LdapConfig>,
        winbind: Option<&WinbindConfig>,
    ) -> std::io::Result<Arc<BackendPool>> {
        // ldap3 (and reqwest later) build rustls configs from the process default provider.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.threads)
            .thread_name("radshard-backend")
            .enable_all()
            .build()?;
        let metrics = Arc::new(BackendMetrics::default());
        metrics.queue_capacity.store(config.queue as u64, Relaxed);
        crate::metrics::register_backend(metrics.clone());
        let directory = ldap
            .map(|l| Directory::new(l.clone(), metrics.clone()))
            .transpose()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let winbind = winbind
            .map(|w| Winbind::open(w.clone()).map(Arc::new))
            .transpose()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
        if let Some(w) = &winbind {
            // Not fatal: winbindd may start after us; checks answer Unavailable until it does.
            match w.served_domain() {
                Ok(domain) => info!(%domain, "winbind answers"),
                Err(e) => warn!(error = %e, "winbind does not answer yet"),
            }
        }
        let inner = Arc::new(Inner {
            directory,
            winbind,
            inflight: Mutex::new(HashMap::new()),
            cache: Mutex::new(HashMap::new()),
            positive_ttl: config.positive_cache_ttl,
            negative_ttl: config.negative_cache_ttl,
            metrics,
            wake: tokio::sync::Notify::new(),
        });
        let (tx, rx) = crossbeam_channel::bounded(config.queue);
        let slots = Arc::new(tokio::sync::Semaphore::new(config.max_in_flight));
        runtime.spawn(dispatch(rx, inner.clone(), slots));
        info!(
            threads = config.threads,
            queue = config.queue,
            max_in_flight = config.max_in_flight,
            ldap_servers = ldap.map_or(0, |l| l.servers.len()),
            winbind = inner.winbind.is_some(),
            "backend pool started"
        );
        Ok(Arc::new(BackendPool {
            tx,
            inner,
            hash_key: rand::random(),
            runtime: Some(runtime),
            config: config.clone(),
        }))
    }

    /// The pool's runtime, for other slow work that belongs with it (the second factor's HTTP
    /// providers and pending pushes).
    pub fn handle(&self) -> Option<tokio::runtime::Handle> {
        self.runtime.as_ref().map(|r| r.handle().clone())
    }

    /// Whether PAP passwords can be checked here (an LDAP directory to bind to).
    pub fn checks_passwords(&self) -> bool {
        self.inner.directory.is_some()
    }

    /// Whether MS-CHAP responses can be checked here (winbind, or the directory's NT hashes).
    pub fn checks_ms_chap(&self) -> bool {
        self.inner.winbind.is_some()
            || self
                .inner
                .directory
                .as_ref()
                .is_some_and(Directory::has_nt_hashes)
    }

    pub fn metrics(&self) -> &Arc<BackendMetrics> {
        &self.inner.metrics
    }

    pub fn attempt_key(&self, client: &str, user: &str, proof: &Proof<'_>) -> AttemptKey {
        let mut mac = <Hmac<Md5> as Mac>::new_from_slice(&self.hash_key).expect("any key length");
        // The kind first (password, v1 or v2 response), so a password can never collide with
        // a response's octets.
        let mut response = [0u8; 8 + 24];
        let (kind, secret): (u8, &[u8]) = match proof {
            Proof::Password(p) => (0, p),
            Proof::NtResponse(r) => {
                response[..8].copy_from_slice(&r.challenge);
                response[8..].copy_from_slice(&r.response);
                (1 + u8::from(r.v2), &response)
            }
        };
        mac.update(&[kind]);
        for part in [client.as_bytes(), user.as_bytes(), secret] {
            mac.update(&(part.len() as u32).to_be_bytes());
            mac.update(part);
        }
        AttemptKey(mac.finalize().into_bytes().into())
    }

    /// Hands an authentication to the pool without blocking.
    pub fn submit(&self, req: AuthRequest<'_>) -> Submitted {
        let m = &self.inner.metrics;
        let key = self.attempt_key(req.client, req.user, &req.proof);
        let (tx, rx) = oneshot::channel();
        if let Some(hit) = self.inner.cached(&key) {
            match hit {
                Outcome::Accept(_) => m.cache_hits_positive.fetch_add(1, Relaxed),
                _ => m.cache_hits_negative.fetch_add(1, Relaxed),
            };
            let _ = tx.send(hit);
            return Submitted::Pending(rx);
        }
        {
            let mut inflight = self
                .inner
                .inflight
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if let Some(waiters) = inflight.get_mut(&key) {
                waiters.push(tx);
                m.joined.fetch_add(1, Relaxed);
                return Submitted::Pending(rx);
            }
            inflight.insert(key, vec![tx]);
        }
        let job = Job {
            key,
            user: req.user.to_string(),
            proof: match req.proof {
                Proof::Password(p) => JobProof::Password(Password(p.to_vec())),
                Proof::NtResponse(r) => JobProof::NtResponse(r),
            },
            deadline: req.deadline,
            queued: Instant::now(),
        };
        match self.tx.try_send(job) {
            Ok(()) => {
                // Stores a wake-up if the dispatcher is busy, so none is lost.
                self.inner.wake.notify_one();
                m.submitted.fetch_add(1, Relaxed);
                m.queue_depth.store(self.tx.len() as u64, Relaxed);
                Submitted::Pending(rx)
            }
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                m.shed.fetch_add(1, Relaxed);
                // Copies that joined meanwhile are shed with it.
                self.inner.finish(&key, Outcome::Shed, false);
                Submitted::Shed
            }
        }
    }
}

impl Drop for BackendPool {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// Takes jobs off the queue only when a slot is free, so a stuck directory leaves them queued
/// (and new ones shed) rather than piling up as tasks. Runs as a task on the pool's runtime:
/// a shard's `notify_one` wakes it, no extra thread hop per job.
async fn dispatch(rx: Receiver<Job>, inner: Arc<Inner>, slots: Arc<tokio::sync::Semaphore>) {
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let job = loop {
            match rx.try_recv() {
                Ok(job) => break job,
                Err(TryRecvError::Empty) => inner.wake.notified().await,
                Err(TryRecvError::Disconnected) => return,
            }
        };
        inner.metrics.queue_depth.store(rx.len() as u64, Relaxed);
        let inner = inner.clone();
        tokio::spawn(async move {
            inner.metrics.in_flight.fetch_add(1, Relaxed);
            let outcome = inner.run(&job).await;
            inner.metrics.in_flight.fetch_sub(1, Relaxed);
            inner
                .metrics
                .latency
                .observe_us(job.queued.elapsed().as_micros() as u64);
            inner.metrics.outcome(outcome.label());
            inner.finish(&job.key, outcome, true);
            drop(permit);
        });
    }
}

impl Inner {
    async fn run(&self, job: &Job) -> Outcome {
        if Instant::now() >= job.deadline {
            self.metrics.deadline_exceeded.fetch_add(1, Relaxed);
            return Outcome::Unavailable;
        }
        let deadline = tokio::time::Instant::from_std(job.deadline);
        match tokio::time::timeout_at(deadline, self.verify(job)).await {
            Ok(o) => o,
            Err(_) => {
                self.metrics.deadline_exceeded.fetch_add(1, Relaxed);
                warn!(target: "radshard::backend", "directory did not answer within the deadline");
                Outcome::Unavailable
            }
        }
    }

    /// Checks the job's proof with whoever can: a bind for a password; winbind, else the
    /// directory's NT hash, for an MS-CHAP response.
    async fn verify(&self, job: &Job) -> Outcome {
        match (&job.proof, &self.winbind, &self.directory) {
            (JobProof::Password(p), _, Some(d)) => d.authenticate(&job.user, &p.0).await,
            (JobProof::NtResponse(r), Some(w), d) => {
                self.winbind_check(w, d.as_ref(), &job.user, r).await
            }
            (JobProof::NtResponse(r), None, Some(d)) => d.authenticate_nt(&job.user, r).await,
            _ => Outcome::Unavailable,
        }
    }

    /// An MS-CHAP response checked by winbindd (on a winbind worker thread: libwbclient
    /// blocks), then, when a directory is configured, the user's entry for groups.
    async fn winbind_check(
        &self,
        w: &Arc<Winbind>,
        directory: Option<&Directory>,
        login: &str,
        r: &NtResponse,
    ) -> Outcome {
        let (account, domain) = split_login(login, &w.config().domain);
        self.metrics.winbind_calls.fetch_add(1, Relaxed);
        // Straight to a winbind worker and back by a oneshot: no blocking thread of ours waits.
        let submitted = w.submit(&MsChapCheck {
            account,
            domain,
            challenge: r.challenge,
            nt_response: r.response,
            v2: r.v2,
        });
        let answer = match submitted {
            Ok(rx) => match tokio::time::timeout(w.timeout(), rx).await {
                Ok(Ok(a)) => a,
                // No answer in time, or the worker dropped it (gave up at the deadline).
                _ => WinbindAnswer::Unavailable {
                    status: None,
                    cause: winbind::Outage::Timeout,
                },
            },
            Err(at_once) => at_once,
        };
        let nt_key = match nt_key_of(answer) {
            Ok(key) => key,
            Err(outcome) => return outcome,
        };
        // The domain said yes; without a directory entry there are no groups to add.
        let groupless = || {
            Outcome::Accept(Arc::new(Identity {
                presented: split_login(login, "").0.to_string(),
                dn: String::new(),
                groups: Vec::new(),
                nt_key: Some(nt_key),
            }))
        };
        let Some(directory) = directory else {
            return groupless();
        };
        match directory.lookup(login).await {
            Outcome::Accept(found) => Outcome::Accept(Arc::new(Identity {
                nt_key: Some(nt_key),
                ..(*found).clone()
            })),
            Outcome::Reject(RejectReason::UnknownUser) => {
                warn!(target: "radshard::backend", user = login, "winbind accepted a user the directory does not find: no groups");
                groupless()
            }
            other => other,
        }
    }

    fn cached(&self, key: &AttemptKey) -> Option<Outcome> {
        if self.positive_ttl.is_zero() && self.negative_ttl.is_zero() {
            return None;
        }
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        match cache.get(key) {
            Some((expires, o)) if *expires > Instant::now() => Some(o.clone()),
            _ => None,
        }
    }

    /// Answers every waiter of `key` and caches a definite outcome.
    fn finish(&self, key: &AttemptKey, outcome: Outcome, cache: bool) {
        let ttl = match &outcome {
            Outcome::Accept(_) => self.positive_ttl,
            Outcome::Reject(_) => self.negative_ttl,
            _ => Duration::ZERO,
        };
        if cache && !ttl.is_zero() {
            let now = Instant::now();
            let mut c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if c.len() >= CACHE_MAX {
                c.retain(|_, (exp, _)| *exp > now);
                if c.len() >= CACHE_MAX {
                    c.clear();
                }
            }
            c.insert(*key, (now + ttl, outcome.clone()));
        }
        let waiters = self
            .inflight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key)
            .unwrap_or_default();
        for w in waiters {
            let _ = w.send(outcome.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_split_into_account_and_domain() {
        assert_eq!(split_login("alice", "EXAMPLE"), ("alice", "EXAMPLE"));
        assert_eq!(split_login("OTHER\\bob", "EXAMPLE"), ("bob", "OTHER"));
        assert_eq!(
            split_login("carol@example.test", "EXAMPLE"),
            ("carol", "EXAMPLE")
        );
        assert_eq!(split_login("a@b@c", "D"), ("a@b", "D"));
    }

    #[test]
    fn proofs_never_share_an_attempt_key() {
        let pool = BackendPool::start(&BackendConfig::default(), None, None).unwrap();
        let r = NtResponse {
            challenge: [1; 8],
            response: [2; 24],
            v2: true,
        };
        let v1 = NtResponse { v2: false, ..r };
        let keys = [
            pool.attempt_key("c", "u", &Proof::NtResponse(r)),
            pool.attempt_key("c", "u", &Proof::NtResponse(v1)),
            pool.attempt_key("c", "u", &Proof::Password(b"x")),
            pool.attempt_key("c", "v", &Proof::NtResponse(r)),
        ];
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(keys[0], pool.attempt_key("c", "u", &Proof::NtResponse(r)));
        assert!(!pool.checks_passwords() && !pool.checks_ms_chap());
    }
}
