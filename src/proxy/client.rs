//! The proxy client's runtime: one thread running the [`Engine`] on a single-threaded tokio
//! runtime, one connected UDP socket per (home server, source slot), and the timer.
//!
//! Shards hand requests over a bounded queue ([`QUEUE`]; full: the request fails at once as
//! [`Failure::Overloaded`]) and await each answer on a oneshot. Everything the engine
//! touches lives on this one thread, so it needs no lock; a shard never waits for it.
//! The thread ends when the last [`ProxyClient`] handle is dropped (a reload that changed
//! the home servers) and every outstanding request has ended.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket as StdUdpSocket};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_channel::oneshot;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, Notify};
use tracing::warn;

use super::config::ProxyConfig;
use super::engine::{
    Answer, Done, Engine, Failure, HomeId, HomeTransport, NasRequest, Received, Request, Transmit,
};
use crate::proto::MAX_PACKET_LEN;

/// Requests queued for the proxy thread at most; one more fails as overloaded.
pub const QUEUE: usize = 16_384;
/// How often the proxy thread publishes its gauges and counters for the scrape.
const PUBLISH_EVERY: Duration = Duration::from_millis(500);

/// What a shard awaits for a forwarded request.
pub type Outcome = Result<Answer, Failure>;
pub(super) type Waiter = oneshot::Sender<Outcome>;

/// What a shard hands the proxy thread. Not boxed: the queue's slots are as large as a
/// request either way, and a box would be one more allocation per forwarded request.
#[allow(clippy::large_enum_variant)]
enum Message {
    Submit(Request<Waiter>),
    /// The NAS retransmitted a request the shard holds in progress.
    Resend(NasRequest),
}

/// One home server as the scrape sees it.
#[derive(Debug, Clone, Default)]
pub struct HomeSnapshot {
    pub name: String,
    pub state: &'static str,
    pub outstanding: u64,
    pub requests: u64,
    pub answers: u64,
    pub timeouts: u64,
    pub status_sent: u64,
    pub status_answered: u64,
    pub retransmits: u64,
}

/// The proxy client's counters: per home server, refused replies by reason, failures by
/// reason (bounded sets: the reasons are enums, the servers are configured).
#[derive(Debug, Default)]
pub struct ProxyMetrics {
    pub homes: Mutex<Vec<HomeSnapshot>>,
    pub refused: Mutex<BTreeMap<&'static str, u64>>,
    pub failures: Mutex<BTreeMap<&'static str, u64>>,
    pub unmatched: std::sync::atomic::AtomicU64,
}

impl ProxyMetrics {
    pub(super) fn bump(map: &Mutex<BTreeMap<&'static str, u64>>, label: &'static str) {
        let mut m = map.lock().unwrap_or_else(|e| e.into_inner());
        *m.entry(label).or_insert(0) += 1;
    }

    pub fn failure(&self, why: &Failure) {
        Self::bump(&self.failures, why.label());
    }

    pub fn count(map: &Mutex<BTreeMap<&'static str, u64>>, label: &str) -> u64 {
        let m = map.lock().unwrap_or_else(|e| e.into_inner());
        m.get(label).copied().unwrap_or(0)
    }
}

/// A handle on the running proxy client.
pub struct ProxyClient {
    tx: mpsc::Sender<Message>,
    pub metrics: Arc<ProxyMetrics>,
}

impl std::fmt::Debug for ProxyClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyClient").finish_non_exhaustive()
    }
}

impl ProxyClient {
    /// Binds the sockets and starts the thread. Binding happens here, so a failure is a
    /// start-up error, not a silent thread exit.
    pub fn start(config: &ProxyConfig) -> std::io::Result<Arc<ProxyClient>> {
        let mut sockets = Vec::with_capacity(config.homes.len());
        for h in &config.homes {
            let mut slots = Vec::with_capacity(h.slots());
            for _ in 0..h.slots() {
                slots.push(match h.transport {
                    HomeTransport::Udp => Some(connected(h.address)?),
                    // Connected by the slot's task when it first has something to send.
                    HomeTransport::Tcp | HomeTransport::Tls { .. } => None,
                });
            }
            sockets.push(slots);
        }
        let engine = Engine::new(
            config.homes.clone(),
            config.pools.clone(),
            config.forward.clone(),
            Instant::now(),
        )
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let metrics = Arc::new(ProxyMetrics::default());
        let m = metrics.clone();
        std::thread::Builder::new()
            .name("radshard-proxy".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => return warn!(error = %e, "cannot start the proxy runtime"),
                };
                let local = tokio::task::LocalSet::new();
                local.block_on(&rt, run(engine, sockets, rx, m));
            })?;
        crate::metrics::register_proxy(metrics.clone());
        Ok(Arc::new(ProxyClient { tx, metrics }))
    }

    /// Hands `req` (without its waiter) to the proxy thread; the receiver answers it.
    pub fn submit(&self, req: Request<()>) -> oneshot::Receiver<Outcome> {
        let (waiter, rx) = oneshot::channel();
        if let Err(e) = self.tx.try_send(Message::Submit(req.with_waiter(waiter))) {
            let msg = match e {
                mpsc::error::TrySendError::Full(m) | mpsc::error::TrySendError::Closed(m) => m,
            };
            self.metrics.failure(&Failure::Overloaded);
            if let Message::Submit(req) = msg {
                let _ = req.waiter.send(Err(Failure::Overloaded));
            }
        }
        rx
    }

    /// The NAS retransmitted `nas` while the shard waits for its answer: the forwarded
    /// request, if it is still outstanding, is sent once more. A full queue loses the hint
    /// (the NAS retransmits again).
    pub fn resend(&self, nas: NasRequest) {
        let _ = self.tx.try_send(Message::Resend(nas));
    }
}

/// A non-blocking UDP socket connected to `home`, from an ephemeral port of its family:
/// only the home server's datagrams reach it.
fn connected(home: SocketAddr) -> std::io::Result<StdUdpSocket> {
    let local: SocketAddr = if home.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let s = StdUdpSocket::bind(local)?;
    s.connect(home)?;
    s.set_nonblocking(true)?;
    Ok(s)
}

/// One (home server, slot)'s way out: a connected UDP socket, or the queue of a TCP/TLS
/// connection's task ([`super::stream`]).
enum Link {
    Udp(UdpSocket),
    Stream(mpsc::Sender<Box<[u8]>>),
}

pub(super) struct Shared {
    pub(super) engine: RefCell<Engine<Waiter>>,
    links: Vec<Vec<Link>>,
    wake: Notify,
    pub(super) metrics: Arc<ProxyMetrics>,
}

async fn run(
    engine: Engine<Waiter>,
    sockets: Vec<Vec<Option<StdUdpSocket>>>,
    mut rx: mpsc::Receiver<Message>,
    metrics: Arc<ProxyMetrics>,
) {
    let mut links = Vec::with_capacity(sockets.len());
    let mut streams = Vec::new();
    for (h, slots) in sockets.into_iter().enumerate() {
        let mut v = Vec::with_capacity(slots.len());
        for (slot, s) in slots.into_iter().enumerate() {
            match s {
                Some(s) => match UdpSocket::from_std(s) {
                    Ok(s) => v.push(Link::Udp(s)),
                    Err(e) => return warn!(error = %e, "proxy socket"),
                },
                None => {
                    let (tx, rx) = mpsc::channel(super::stream::QUEUE);
                    v.push(Link::Stream(tx));
                    streams.push((HomeId(h), slot, rx));
                }
            }
        }
        links.push(v);
    }
    let shared = Rc::new(Shared {
        engine: RefCell::new(engine),
        links,
        wake: Notify::new(),
        metrics,
    });
    for (h, slots) in shared.links.iter().enumerate() {
        for (slot, link) in slots.iter().enumerate() {
            if matches!(link, Link::Udp(_)) {
                tokio::task::spawn_local(receive(shared.clone(), HomeId(h), slot));
            }
        }
    }
    for (home, slot, rx) in streams {
        let spec = shared
            .engine
            .borrow()
            .homes()
            .nth(home.0)
            .map(|(_, s)| s.clone());
        if let Some(spec) = spec {
            tokio::task::spawn_local(super::stream::slot(shared.clone(), spec, home, slot, rx));
        }
    }
    let timers = tokio::task::spawn_local(timers(shared.clone()));
    while let Some(msg) = rx.recv().await {
        let req = match msg {
            Message::Submit(req) => req,
            Message::Resend(nas) => {
                let again = shared.engine.borrow_mut().resend(&nas);
                if let Some(t) = again {
                    transmit(&shared, &t);
                }
                continue;
            }
        };
        let now = Instant::now();
        let sent = shared.engine.borrow_mut().submit(req, now);
        match sent {
            Ok(t) => {
                transmit(&shared, &t);
                // The new entry's deadline may be the earliest.
                shared.wake.notify_one();
            }
            Err((waiter, why)) => {
                shared.metrics.failure(&why);
                let _ = waiter.send(Err(why));
            }
        }
    }
    // Every handle is gone: finish what is outstanding, then stop.
    while shared.engine.borrow_mut().poll_timeout().is_some() {
        tokio::time::sleep(Duration::from_millis(100)).await;
        tick(&shared);
    }
    timers.abort();
}

fn transmit(shared: &Shared, t: &Transmit) {
    let link = shared
        .links
        .get(t.home.0)
        .and_then(|s| s.get(usize::from(t.slot)));
    // A full send buffer or queue loses the request; it then times out like a loss on the
    // wire, and the NAS's retransmission tries again.
    let sent = match link {
        Some(Link::Udp(sock)) => sock.try_send(&t.bytes).is_ok(),
        Some(Link::Stream(q)) => q.try_send(t.bytes.clone()).is_ok(),
        None => false,
    };
    if !sent {
        ProxyMetrics::bump(&shared.metrics.failures, "send_failed");
    }
}

async fn receive(shared: Rc<Shared>, home: HomeId, slot: usize) {
    let mut buf = vec![0u8; MAX_PACKET_LEN + 1];
    loop {
        let Some(Link::Udp(sock)) = shared.links.get(home.0).and_then(|s| s.get(slot)) else {
            return;
        };
        let n = match sock.recv(&mut buf).await {
            Ok(n) => n,
            // ICMP port unreachable surfaces as ECONNREFUSED on a connected socket: the
            // home server is down, which its silence tells the engine anyway.
            Err(_) => continue,
        };
        let Some(data) = buf.get(..n).filter(|_| n <= MAX_PACKET_LEN) else {
            ProxyMetrics::bump(&shared.metrics.refused, "too_long");
            continue;
        };
        on_reply(&shared, home, slot, data);
    }
}

/// A packet from (home, slot), by datagram or off a stream: to the engine, and whatever it
/// ends to its waiter.
pub(super) fn on_reply(shared: &Shared, home: HomeId, slot: usize, data: &[u8]) {
    let got = shared
        .engine
        .borrow_mut()
        .on_datagram(home, slot as u8, data, Instant::now());
    match got {
        Received::Answered(done) => finish(shared, done),
        Received::StatusAnswered => {}
        Received::Unmatched => {
            shared
                .metrics
                .unmatched
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        Received::Refused(e) => ProxyMetrics::bump(&shared.metrics.refused, e.label()),
    }
}

fn finish(shared: &Shared, done: Done<Waiter>) {
    match done {
        Done::Answered { waiter, answer } => {
            let _ = waiter.send(Ok(answer));
        }
        Done::Failed { waiter, why } => {
            shared.metrics.failure(&why);
            let _ = waiter.send(Err(why));
        }
    }
}

/// Runs the engine's timers (expiry, liveness, Status-Server) and publishes the gauges.
async fn timers(shared: Rc<Shared>) {
    let mut published = Instant::now();
    loop {
        let next = shared.engine.borrow_mut().poll_timeout();
        let wait = next
            .map_or(PUBLISH_EVERY, |t| {
                t.saturating_duration_since(Instant::now())
            })
            .min(PUBLISH_EVERY);
        let _ = tokio::time::timeout(wait, shared.wake.notified()).await;
        tick(&shared);
        if published.elapsed() >= PUBLISH_EVERY {
            publish(&shared);
            published = Instant::now();
        }
    }
}

fn tick(shared: &Shared) {
    let (mut done, mut tx) = (Vec::new(), Vec::new());
    shared
        .engine
        .borrow_mut()
        .handle_timeout(Instant::now(), &mut done, &mut tx);
    for t in &tx {
        transmit(shared, t);
    }
    for d in done {
        finish(shared, d);
    }
}

fn publish(shared: &Shared) {
    let engine = shared.engine.borrow();
    let snapshot: Vec<HomeSnapshot> = engine
        .homes()
        .map(|(id, spec)| {
            let c = engine.counters(id).cloned().unwrap_or_default();
            HomeSnapshot {
                name: spec.name.to_string(),
                state: engine.state(id).map_or("dead", |s| s.label()),
                outstanding: engine.outstanding(id) as u64,
                requests: c.requests,
                answers: c.answers,
                timeouts: c.timeouts,
                status_sent: c.status_sent,
                status_answered: c.status_answered,
                retransmits: c.retransmits,
            }
        })
        .collect();
    *shared
        .metrics
        .homes
        .lock()
        .unwrap_or_else(|e| e.into_inner()) = snapshot;
}
