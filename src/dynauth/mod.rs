//! Dynamic authorization (RFC 5176): Disconnect-Request and CoA-Request sent to the NAS that
//! owns a session, and a CoA listener that relays an upstream's requests to it.
//!
//! * [`config`]: `[dynauth]` and a client's `das = {...}`.
//! * [`packet`]: requests drafted from a session, signed per RFC 5176; answers verified.
//! * [`client`]: the sans-IO core (Identifiers, retransmission with doubling backoff,
//!   matching, bounds).
//! * `driver`: the sockets and tasks around the core, on the control runtime.
//! * [`listener`]: the CoA listener (upstream → session table → NAS → upstream).
//! * [`metrics`]: counters for `/metrics`.
//!
//! The [`Dispatcher`] is the entry point: `disconnect`/`coa` await the NAS's answer;
//! `disconnect_detached` can be called from a shard and returns at once.

pub mod client;
pub mod config;
mod driver;
pub mod error_cause;
pub mod listener;
pub mod metrics;
mod outcome;
pub mod packet;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::oneshot;

use crate::dict::EncodedAttribute;
use crate::proto::Secret;
use crate::session::SessionView;

pub use config::{DasConfig, DynAuthConfig, Identify, IdentifyAttr, RawDas, RawDynAuth};
pub use error_cause::ErrorCause;
pub use listener::{Listener, Upstream};
pub use metrics::DynAuthMetrics;
pub use outcome::{DasOutcome, DasResult};
pub use packet::Kind;

use client::{Core, Limits, Submitted};
use driver::Shared;
use packet::Draft;

/// Where a client's Disconnect and CoA requests go, with what secret, naming sessions how.
#[derive(Debug, Clone)]
pub struct DasTarget {
    pub addr: SocketAddr,
    pub secret: Secret,
    pub identify: Identify,
}

impl DasTarget {
    /// The runtime form of a validated `das = {...}`.
    pub fn from_config(c: &DasConfig) -> Result<DasTarget, crate::proto::SecretError> {
        Ok(DasTarget {
            addr: c.address,
            secret: Secret::new(c.secret.expose().as_bytes())?,
            identify: c.identify,
        })
    }
}

/// Looks up a client's DAS by the client's name.
pub type DasOf = Arc<dyn Fn(&str) -> Option<DasTarget> + Send + Sync>;

/// Sends Disconnect-Requests and CoA-Requests and waits for their answers. Shared behind an
/// `Arc`; every method can be called from any thread.
pub struct Dispatcher {
    shared: Arc<Shared>,
    handle: tokio::runtime::Handle,
    das_of: DasOf,
    settings: DynAuthConfig,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Dispatcher {
    /// Binds the sender's sockets (`settings.sockets()` of them, so `max_outstanding` requests
    /// can be in flight even to one DAS) and starts its tasks on `handle` (the control
    /// runtime). `das_of` maps a client's name to its DAS.
    pub fn new(
        handle: tokio::runtime::Handle,
        settings: DynAuthConfig,
        das_of: DasOf,
    ) -> std::io::Result<Arc<Dispatcher>> {
        let sockets = {
            let _context = handle.enter();
            Arc::new(driver::bind(settings.sockets(), settings.source)?)
        };
        let core = Core::new(Limits {
            sockets: sockets.len(),
            timeout: settings.timeout,
            retries: settings.retries,
            max_outstanding: settings.max_outstanding,
            max_queued: settings.max_queued,
        });
        let shared = Arc::new(Shared::new(core));
        let mut tasks = vec![handle.spawn(driver::drive(shared.clone(), sockets.clone()))];
        for i in 0..sockets.len() {
            tasks.push(handle.spawn(driver::receive(shared.clone(), sockets.clone(), i)));
        }
        Ok(Arc::new(Dispatcher {
            shared,
            handle,
            das_of,
            settings,
            tasks,
        }))
    }

    /// Sends a Disconnect-Request for `s` to its client's DAS and waits for the answer (or
    /// the last retransmission's timeout).
    pub async fn disconnect(&self, s: &SessionView) -> DasOutcome {
        self.send(Kind::Disconnect, s, &[]).await
    }

    /// Sends a CoA-Request for `s` carrying `attributes` (the changes) and waits.
    pub async fn coa(&self, s: &SessionView, attributes: &[EncodedAttribute]) -> DasOutcome {
        let mut wire = Vec::new();
        for a in attributes {
            if let Err(e) = a.to_wire(&mut wire) {
                tracing::warn!(session = %s.id, error = %e, "dynauth: CoA attribute cannot be sent");
                self.shared.metrics.request(Kind::Coa);
                let o = DasOutcome::unsent(DasResult::Invalid, None);
                self.shared.metrics.outcome(Kind::Coa, &o);
                return o;
            }
        }
        self.send(Kind::Coa, s, &wire).await
    }

    /// Spawns a Disconnect on the control runtime and logs its outcome. Returns at once: it
    /// can be called from a shard.
    pub fn disconnect_detached(self: &Arc<Self>, s: SessionView) {
        let me = self.clone();
        self.handle.spawn(async move {
            let o = me.disconnect(&s).await;
            log_outcome(Kind::Disconnect, &s, &o);
        });
    }

    pub fn metrics(&self) -> &DynAuthMetrics {
        &self.shared.metrics
    }

    pub fn settings(&self) -> &DynAuthConfig {
        &self.settings
    }

    /// The runtime the dispatcher's tasks run on.
    pub fn handle(&self) -> &tokio::runtime::Handle {
        &self.handle
    }

    /// A request of `kind` for `s` with `extra` attributes (pre-encoded TLVs) after the
    /// session's identification.
    pub(crate) async fn send(&self, kind: Kind, s: &SessionView, extra: &[u8]) -> DasOutcome {
        self.shared.metrics.request(kind);
        let rx = match self.submit(kind, s, extra) {
            Ok(rx) => rx,
            Err(o) => {
                self.shared.metrics.outcome(kind, &o);
                return o;
            }
        };
        // The sender gone (the dispatcher dropped mid-request): nothing more will be sent.
        rx.await
            .unwrap_or_else(|_| DasOutcome::unsent(DasResult::Unroutable, None))
    }

    /// Drafts and submits; an outcome right away when there is nothing to wait for.
    fn submit(
        &self,
        kind: Kind,
        s: &SessionView,
        extra: &[u8],
    ) -> Result<oneshot::Receiver<DasOutcome>, DasOutcome> {
        let Some(target) = (self.das_of)(&s.client) else {
            return Err(DasOutcome::unsent(DasResult::NoDas, None));
        };
        let draft = Draft::new(
            kind,
            target.addr,
            target.secret,
            s,
            target.identify,
            extra,
            unix_now(),
        )
        .map_err(|e| {
            tracing::warn!(session = %s.id, error = %e, "dynauth: request cannot be built");
            DasOutcome::unsent(DasResult::Invalid, Some(target.addr))
        })?;
        let (tx, rx) = oneshot::channel();
        let submitted = self.shared.core().submit(draft, tx, Instant::now());
        // Sent or refused: the driver has a datagram to send or an outcome to deliver. A
        // queued request is started by the answer that frees its slot.
        if submitted != Submitted::Queued {
            self.shared.wake.notify_one();
        }
        Ok(rx)
    }
}

impl Drop for Dispatcher {
    fn drop(&mut self) {
        self.shared.stop();
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Seconds since the epoch for Event-Timestamp, saturating (a clock before 1970 or past 2106
/// yields a bound, not a panic).
fn unix_now() -> u32 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    u32::try_from(secs).unwrap_or(u32::MAX)
}

/// One line per finished request: whom it was for, where it went and how it ended.
pub(crate) fn log_outcome(kind: Kind, s: &SessionView, o: &DasOutcome) {
    let das = o.das.map(|d| d.to_string()).unwrap_or_default();
    let cause = o.error_cause.map(|c| c.to_string()).unwrap_or_default();
    if o.is_ack() {
        tracing::info!(kind = kind.label(), session = %s.id, user = %s.user, client = %s.client, das = %das, attempts = o.attempts, "dynauth: acknowledged");
    } else {
        tracing::warn!(kind = kind.label(), session = %s.id, user = %s.user, client = %s.client, das = %das, attempts = o.attempts, result = o.result.label(), error_cause = %cause, "dynauth: not acknowledged");
    }
}
