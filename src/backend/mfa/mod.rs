//! The second factor: challenges whose State is issued and redeemed here, shared by every
//! shard (a follow-up Access-Request may land on any shard), and the providers that check
//! the code.
//!
//! The OTP challenge flow, with the built-in TOTP provider (checked on the shard) or privacyIDEA
//! (checked over HTTP on this store's own tokio thread):
//!
//! 1. primary authentication accepted by a policy with `mfa = true` → [`Mfa::issue`] stores a
//!    pending challenge keyed by the State's nonce and the shard answers Access-Challenge with
//!    the State and a Reply-Message prompt;
//! 2. the next Access-Request carries the State and the code in User-Password →
//!    [`Mfa::redeem`] checks the State (MAC, expiry, client, user) and removes the pending
//!    challenge (single use, whatever the code's fate), then [`Mfa::check_totp`] checks the
//!    code and refuses one already used.
//!
//! With a privacyIDEA service account, step 1 is privacyIDEA's: [`Mfa::submit_trigger`] has it
//! trigger the user's challenge (the request held meanwhile); a code token's `transaction_id`
//! is stored in the pending challenge and sent with the code; a push token is waited for like
//! the REST push ([`Mfa::submit_push`]), single-flight per client, user and device.
//!
//! TOTP checks are a few HMACs, done on the shard; the store is behind short mutexes.
//! Pushes (generic REST push, Duo with `factor = "push"`) hold the request instead: see
//! [`Mfa::submit_push`]. Duo's passcode factor is held the same way only for its preauth, then
//! challenged as above (the State is issued when the preauth answers `auth`).
//!
//! HTTP providers run on the backend pool's tokio runtime, so a pending push is a task and a
//! timer there, not on a shard; without a directory (no pool) on a one-thread runtime of
//! their own.

pub mod config;
pub mod duo;
pub mod privacyidea;
pub mod rest_push;
pub mod totp;

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};

use crate::vocab::RejectReason;
pub use config::{MfaConfig, Provider, RawMfa};
pub use privacyidea::{PiAnswer, PiError};
use totp::TotpSecret;

/// The counters live with the other metrics; kept here under their old paths.
pub use crate::metrics::{mfa as metrics, MfaMetrics};

/// The challenge store and its settings; one per process, kept across reloads.
#[derive(Debug)]
pub struct Mfa {
    pub config: MfaConfig,
    /// Per user, the last TOTP step accepted: a code is accepted once.
    last_step: Mutex<HashMap<String, u64>>,
    /// Pushes pending, by (client, user), with everyone waiting for their answer.
    /// Shared with the push tasks (which must not hold the store: its runtime is in it).
    pushes: Arc<Mutex<HashMap<PushKey, PushWaiters>>>,
    pub metrics: Arc<MfaMetrics>,
    /// HTTP providers: their client, on a small tokio runtime of its own.
    remote: Option<Remote>,
}

/// An HTTP provider and the runtime its requests run on: the backend pool's when there is
/// one (pending pushes are tasks with timers there, next to the directory work), else a
/// small one of its own.
struct Remote {
    handle: tokio::runtime::Handle,
    /// Only without a backend pool; dropped (stopped) with the store.
    own_runtime: Option<tokio::runtime::Runtime>,
    kind: RemoteKind,
    /// At most this many provider requests at once; more wait for a slot.
    slots: Arc<tokio::sync::Semaphore>,
}

#[derive(Debug, Clone)]
enum RemoteKind {
    PrivacyIdea(Arc<privacyidea::PrivacyIdea>),
    Push(Arc<rest_push::RestPush>),
    Duo(Arc<duo::Duo>),
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote").field("kind", &self.kind).finish()
    }
}

type PushWaiters = Vec<futures_channel::oneshot::Sender<Result<PiAnswer, PiError>>>;

/// What makes two requests the same push attempt: client, user and the device
/// (Calling-Station-Id), so a second device logging in as the same user does not ride on the
/// first one's approval.
type PushKey = (String, String, Vec<u8>);

impl Drop for Remote {
    fn drop(&mut self) {
        if let Some(rt) = self.own_runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// Provider HTTP requests in flight at once (a pending push holds none between its polls).
const REMOTE_SLOTS: usize = 256;

impl Mfa {
    /// The store for `config`; HTTP providers run on `pool` (the backend pool's runtime) if
    /// given, else on a one-thread runtime of their own.
    pub fn new(
        config: MfaConfig,
        pool: Option<tokio::runtime::Handle>,
    ) -> std::io::Result<Arc<Mfa>> {
        let invalid = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, e);
        let kind = match &config.provider {
            Provider::Totp => None,
            Provider::PrivacyIdea(pi) => Some(RemoteKind::PrivacyIdea(Arc::new(
                privacyidea::PrivacyIdea::new(pi.clone()).map_err(invalid)?,
            ))),
            Provider::RestPush(p) => Some(RemoteKind::Push(Arc::new(
                rest_push::RestPush::new(p.clone()).map_err(invalid)?,
            ))),
            Provider::Duo(d) => Some(RemoteKind::Duo(Arc::new(
                duo::Duo::new(d.clone()).map_err(invalid)?,
            ))),
        };
        let remote = match kind {
            None => None,
            Some(kind) => {
                let (handle, own_runtime) = match pool {
                    Some(h) => (h, None),
                    None => {
                        let rt = tokio::runtime::Builder::new_multi_thread()
                            .worker_threads(1)
                            .thread_name("radshard-mfa")
                            .enable_all()
                            .build()?;
                        (rt.handle().clone(), Some(rt))
                    }
                };
                Some(Remote {
                    handle,
                    own_runtime,
                    kind,
                    slots: Arc::new(tokio::sync::Semaphore::new(REMOTE_SLOTS)),
                })
            }
        };
        let metrics = Arc::new(MfaMetrics::default());
        crate::metrics::register_mfa(metrics.clone());
        Ok(Arc::new(Mfa {
            remote,
            config,
            last_step: Mutex::new(HashMap::new()),
            pushes: Arc::new(Mutex::new(HashMap::new())),
            metrics,
        }))
    }

    /// Whether codes are checked by an HTTP provider (off the shard) rather than here.
    pub fn is_remote(&self) -> bool {
        self.remote.is_some()
    }

    /// Asks the HTTP provider to check `code` for `user`; the answer arrives on the receiver
    /// (a dropped sender: the store stopped). `None` without an HTTP provider.
    pub fn submit_check(
        &self,
        user: String,
        code: String,
        transaction_id: Option<String>,
    ) -> Option<futures_channel::oneshot::Receiver<Result<PiAnswer, PiError>>> {
        let remote = self.remote.as_ref()?;
        let runtime = &remote.handle;
        let (tx, rx) = futures_channel::oneshot::channel();
        let slots = remote.slots.clone();
        match &remote.kind {
            RemoteKind::PrivacyIdea(pi) => {
                let pi = pi.clone();
                runtime.spawn(async move {
                    let Ok(_permit) = slots.acquire_owned().await else {
                        return;
                    };
                    let answer = pi.check(&user, &code, transaction_id.as_deref()).await;
                    let _ = tx.send(answer);
                });
            }
            RemoteKind::Duo(duo) if duo.factor() == config::DuoFactor::Passcode => {
                let duo = duo.clone();
                runtime.spawn(async move {
                    // Takes its own slot per request.
                    let answer = duo.check_passcode(&user, &code, &slots).await;
                    let _ = tx.send(answer);
                });
            }
            _ => return None,
        }
        Some(rx)
    }

    /// Sends a push to `user` for `client` (from device `station`, the Calling-Station-Id), or
    /// joins the one already pending for them (single-flight: copies of an attempt, on any
    /// shard, share one push and its answer). With Duo the flight starts with the preauth, and
    /// for the passcode factor ends there (`Challenge`, `Bypass`, `Refused`, `NoToken`).
    /// `None` without a provider that holds requests.
    pub fn submit_push(
        &self,
        client: &str,
        user: &str,
        station: &[u8],
    ) -> Option<futures_channel::oneshot::Receiver<Result<PiAnswer, PiError>>> {
        let remote = self.remote.as_ref()?;
        if !matches!(remote.kind, RemoteKind::Push(_) | RemoteKind::Duo(_)) {
            return None;
        }
        Some(
            self.single_flight(&remote.handle, client, user, station, |key| {
                self.metrics.pushes_sent.fetch_add(1, Relaxed);
                let (kind, slots) = (remote.kind.clone(), remote.slots.clone());
                async move {
                    // Boxed per provider: the task is then sized for the provider in use,
                    // not for the largest of them (it lives as long as the push is pending).
                    let answer = match kind {
                        RemoteKind::Push(push) => Box::pin(push.push(&key.1, &key.0, &slots)).await,
                        RemoteKind::Duo(duo) => Box::pin(duo.start(&key.1, &slots)).await,
                        RemoteKind::PrivacyIdea(_) => {
                            Err(PiError::Protocol("not a push provider".into()))
                        }
                    };
                    (key, answer)
                }
            }),
        )
    }

    /// Whether privacyIDEA triggers the challenge (a service account is configured).
    pub fn triggers(&self) -> bool {
        matches!(&self.config.provider, Provider::PrivacyIdea(pi) if pi.service.is_some())
    }

    /// Has privacyIDEA trigger `user`'s challenge for `client` (from device `station`) and,
    /// for a push token, wait for the phone: `Challenge` (a code token: answer with an
    /// Access-Challenge), `Accept`/`Reject` (push), `NoToken`. Single-flight like
    /// [`Mfa::submit_push`]: copies of an attempt share one trigger (one push on the phone).
    /// `None` unless [`Mfa::triggers`].
    pub fn submit_trigger(
        &self,
        client: &str,
        user: &str,
        station: &[u8],
    ) -> Option<futures_channel::oneshot::Receiver<Result<PiAnswer, PiError>>> {
        let remote = self.remote.as_ref()?;
        let RemoteKind::PrivacyIdea(pi) = &remote.kind else {
            return None;
        };
        pi.config().service.as_ref()?;
        Some(
            self.single_flight(&remote.handle, client, user, station, |key| {
                let (pi, slots, metrics) = (pi.clone(), remote.slots.clone(), self.metrics.clone());
                async move {
                    let answer = pi.trigger_flow(&key.1, &slots).await;
                    // Only a push token's wait is a push; a code token's trigger is a challenge.
                    if matches!(answer, Ok(PiAnswer::Accept) | Ok(PiAnswer::Reject { .. })) {
                        metrics.pushes_sent.fetch_add(1, Relaxed);
                    }
                    (key, answer)
                }
            }),
        )
    }

    /// Single-flight for held second factors: joins the flight pending for (`client`, `user`,
    /// `station`), or starts one running the future `start` makes (called only then) on
    /// `runtime`. Every request that joined gets the flight's answer. The future owns the key
    /// and hands it back with the answer: a pending push keeps one copy of it, not two.
    fn single_flight<F, Fut>(
        &self,
        runtime: &tokio::runtime::Handle,
        client: &str,
        user: &str,
        station: &[u8],
        start: F,
    ) -> futures_channel::oneshot::Receiver<Result<PiAnswer, PiError>>
    where
        F: FnOnce(PushKey) -> Fut,
        Fut: std::future::Future<Output = (PushKey, Result<PiAnswer, PiError>)> + Send + 'static,
    {
        let (tx, rx) = futures_channel::oneshot::channel();
        let key: PushKey = (client.to_string(), user.to_string(), station.to_vec());
        {
            let mut pushes = self.pushes.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(waiters) = pushes.get_mut(&key) {
                waiters.push(tx);
                self.metrics.push_joined.fetch_add(1, Relaxed);
                return rx;
            }
            pushes.insert(key.clone(), vec![tx]);
            self.metrics
                .pushes_pending
                .store(pushes.len() as u64, Relaxed);
        }
        let flight = start(key);
        let (all, metrics) = (self.pushes.clone(), self.metrics.clone());
        runtime.spawn(async move {
            let (key, answer) = flight.await;
            let waiters = {
                let mut pushes = all.lock().unwrap_or_else(|e| e.into_inner());
                let w = pushes.remove(&key).unwrap_or_default();
                metrics.pushes_pending.store(pushes.len() as u64, Relaxed);
                w
            };
            for w in waiters {
                let _ = w.send(answer.clone());
            }
        });
        rx
    }

    /// How long a held request may wait for its push (the provider's wait and a margin).
    pub fn push_wait(&self) -> Option<std::time::Duration> {
        match &self.config.provider {
            Provider::RestPush(p) => Some(p.wait + std::time::Duration::from_secs(1)),
            Provider::Duo(_) => match self.remote.as_ref().map(|r| &r.kind) {
                Some(RemoteKind::Duo(d)) => Some(d.hold_limit()),
                _ => None,
            },
            // Service login and trigger, the polls up to push_wait (the last one may start a
            // poll interval late and take a timeout), the final check: each request bounded
            // by the timeout.
            Provider::PrivacyIdea(p) if p.service.is_some() => Some(
                p.push_wait + p.poll_interval + 4 * p.timeout + std::time::Duration::from_secs(1),
            ),
            _ => None,
        }
    }

    /// Checks a TOTP `code` for `user`; a code (its time step, or an earlier one) accepted
    /// before for this user is refused.
    pub fn check_totp(
        &self,
        user: &str,
        secret: &TotpSecret,
        code: &[u8],
        now: u64,
    ) -> Result<(), RejectReason> {
        let step = secret
            .matching_step(code, now)
            .ok_or(RejectReason::MfaBadCode)?;
        let mut last = self.last_step.lock().unwrap_or_else(|e| e.into_inner());
        match last.get(user) {
            Some(&used) if step <= used => Err(RejectReason::MfaCodeReused),
            _ => {
                last.insert(user.to_string(), step);
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn mfa(max_pending: usize) -> Arc<Mfa> {
        Mfa::new(
            MfaConfig {
                provider: Provider::Totp,
                challenge_ttl: Duration::from_secs(60),
                prompt: config::DEFAULT_PROMPT.into(),
                accept_unenrolled: false,
                max_pending,
                accept_unreachable: false,
                exempt_clients: Vec::new(),
                exempt_groups: Vec::new(),
                state_key: None,
            },
            None,
        )
        .expect("store")
    }

    #[test]
    fn totp_code_accepted_once() {
        let m = mfa(2);
        let secret = TotpSecret::from_bytes(b"12345678901234567890".to_vec());
        let now = 1_111_111_111;
        let code = format!("{:06}", secret.code_at_step(now / 30, 6));
        assert_eq!(m.check_totp("alice", &secret, b"000000", now).ok(), None);
        assert_eq!(m.check_totp("alice", &secret, code.as_bytes(), now), Ok(()));
        assert_eq!(
            m.check_totp("alice", &secret, code.as_bytes(), now + 1),
            Err(RejectReason::MfaCodeReused)
        );
        // The previous step's code, still inside the window, is older than the one used.
        let prev = format!("{:06}", secret.code_at_step(now / 30 - 1, 6));
        assert_eq!(
            m.check_totp("alice", &secret, prev.as_bytes(), now),
            Err(RejectReason::MfaCodeReused)
        );
        // Another user is independent.
        assert_eq!(m.check_totp("bob", &secret, code.as_bytes(), now), Ok(()));
    }
}
