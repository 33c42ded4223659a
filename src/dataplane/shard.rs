//! One shard: a glommio executor pinned to a core, owning one socket per listen address, its
//! duplicate cache, its accounting queue and its counters. Nothing here is shared with another
//! shard except the read-only [`Runtime`], so the hot path takes no lock.
//!
//! Per readable socket the loop is: drain a batch with `recvmmsg`, decide every datagram, send
//! the replies with one `sendmmsg`. Work that cannot be answered at once (a slow password hash,
//! an accounting record waiting for its fsync) is marked in progress in the duplicate cache and
//! answered later by its own task (see `deferred.rs`), so the loop never waits for it.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use glommio::net::UdpSocket;
use tracing::{debug, error, warn};

use super::acct_batch::Batch;
use super::batch::{RecvBatch, SendBatch};
use super::clients::{Client, RateLimiter};
use super::dedup::{Lookup, ReplyCache, RequestKey};
use super::inflight::{Completions, Entry, InFlight};
use super::jobs;
use super::notify::Notify;
use super::runtime::{Runtime, RuntimeCell};
use super::socket::Role;
use super::StopSignal;
use crate::accounting::record::{write_record, Origin, Scratch};
use crate::accounting::time::now_unix;
use crate::accounting::AccountingLog;
use crate::auth::credential::PasswordBuf;
use crate::auth::decision::{self, Logged};
use crate::auth::{self, Await, Job, JobResult, Now, RejectReason, Request, Step};
use crate::metrics::{ClientCounters, DropReason, DuplicateKind, ShardMetrics};
use crate::proto::attr::MAX_VALUE_LEN;
use crate::proto::{
    verify_request, BuildError, Code, DecodeError, Packet, PacketBuilder, Secret, Verified,
    VerifyError, MAX_PACKET_LEN, PROXY_STATE,
};
use crate::proxy::engine::NasRequest;
use crate::session::Update;

/// Datagrams drained per `recvmmsg`. Large enough to amortise the syscall, small enough that
/// one socket's burst does not starve the shard's other sockets.
const BATCH: usize = 64;

pub struct Listener {
    pub role: Role,
    pub io: ListenerIo,
}

pub enum ListenerIo {
    Udp {
        socket: Rc<UdpSocket>,
        fd: RawFd,
    },
    /// RadSec: connections are accepted here and served by [`super::stream`]; replies
    /// decided later (a directory, a home server) reach them through [`Shard::streams`].
    Tls(Rc<glommio::net::TcpListener>),
    /// RADIUS over TCP (RFC 6613): as `Tls`, without TLS.
    Tcp(Rc<glommio::net::TcpListener>),
}

pub struct Shard {
    pub id: usize,
    pub(super) rt: Arc<Runtime>,
    pub(super) cache: ReplyCache,
    pub(super) metrics: Arc<ShardMetrics>,
    /// Per-client counters, indexed like `rt.clients`.
    pub(super) client_metrics: Vec<Arc<ClientCounters>>,
    pub(super) limiters: Vec<Option<RateLimiter>>,
    /// The runtime generation this shard runs on; see [`RuntimeCell`].
    pub(super) generation: u64,
    pub(super) shards: usize,
    pub(super) listeners: Vec<Listener>,
    pub(super) acct: Batch,
    pub(super) acct_scratch: Scratch,
    pub(super) acct_notify: Rc<Notify>,
    /// Requests waiting for slow work, and the results coming back for them.
    inflight: InFlight,
    completions: Rc<Completions>,
    /// The RadSec and RADIUS/TCP connections this shard serves, by (listener, peer).
    pub(super) streams: super::stream::Streams,
}

pub type ShardRef = Rc<RefCell<Shard>>;

impl Shard {
    pub fn new(
        id: usize,
        shards: usize,
        cell: &RuntimeCell,
        listeners: Vec<Listener>,
        metrics: Arc<ShardMetrics>,
    ) -> Shard {
        let (generation, rt) = cell.load();
        let per_shard = rt.reply_cache_entries;
        let mut shard = Shard {
            id,
            cache: ReplyCache::new(rt.reply_cache_ttl, per_shard, per_shard),
            rt: rt.clone(),
            metrics,
            client_metrics: Vec::new(),
            limiters: Vec::new(),
            generation,
            shards,
            listeners,
            acct: Batch::default(),
            acct_scratch: Scratch::default(),
            acct_notify: Rc::new(Notify::default()),
            inflight: InFlight::default(),
            completions: Rc::new(Completions::default()),
            streams: super::stream::Streams::default(),
        };
        shard.install(generation, rt);
        shard
    }

    /// Switches to a new runtime (start-up or reload). Per-client state is rebuilt for the
    /// new client table; counters of clients that remain carry on. Work in flight keeps the
    /// runtime it started with.
    fn install(&mut self, generation: u64, rt: Arc<Runtime>) {
        let names: Vec<&str> = rt.clients.iter().map(|c| c.name.as_str()).collect();
        self.client_metrics = self.metrics.client_counters(&names);
        let shards = self.shards as f64;
        self.limiters = rt
            .clients
            .iter()
            .map(|c| {
                c.rate_limit
                    .map(|r| RateLimiter::new(f64::from(r) / shards))
            })
            .collect();
        self.rt = rt;
        self.generation = generation;
    }

    /// Picks up a reloaded runtime, if any: one read of a shared, rarely written cache line
    /// per batch.
    pub(super) fn refresh(&mut self, cell: &RuntimeCell) {
        if cell.generation() != self.generation {
            let (generation, rt) = cell.load();
            self.install(generation, rt);
        }
    }

    /// Decides one datagram. A reply decided now is built straight into `tx`.
    pub(super) fn handle(
        &mut self,
        li: usize,
        data: &[u8],
        from: SocketAddr,
        truncated: bool,
        now: Now,
        tx: &mut SendBatch,
    ) {
        // Disjoint borrows of the shard's parts: the runtime (read-only) and the mutable state.
        let Shard {
            id,
            rt,
            cache,
            metrics: m,
            client_metrics,
            limiters,
            listeners,
            acct,
            acct_scratch,
            acct_notify,
            inflight,
            completions,
            ..
        } = self;
        m.received.inc();
        if truncated {
            return m.count_drop(DropReason::TooLong);
        }
        let packet = match Packet::parse(data) {
            Ok(p) => p,
            Err(e) => return m.count_drop(decode_drop(e)),
        };
        let client = match listeners[li].io {
            ListenerIo::Udp { .. } => rt.clients.lookup(from.ip()),
            ListenerIo::Tls(_) => rt.clients.lookup_tls(from.ip()),
            ListenerIo::Tcp(_) => rt.clients.lookup_tcp(from.ip()),
        };
        let Some(client) = client else {
            return m.count_drop(DropReason::UnknownClient);
        };
        // From here on every count is also booked to the client.
        let m = Counts {
            shard: m,
            client: &client_metrics[client.index],
        };
        if let Some(Some(limiter)) = limiters.get_mut(client.index) {
            if !limiter.allow(now.instant) {
                return m.count_drop(DropReason::RateLimited);
            }
        }
        let req = match verify_request(packet, &client.secret, client.require_message_authenticator)
        {
            Ok(v) => v,
            Err(e) => return m.count_drop(verify_drop(e)),
        };
        let code = req.code();
        if code == Code::AccessRequest
            && client.limit_proxy_state
            && !req.has_message_authenticator()
            && req.attr(PROXY_STATE).is_some()
        {
            return m.count_drop(DropReason::ProxyStateWithoutMessageAuthenticator);
        }
        let role = listeners[li].role;
        match (role, code) {
            (_, Code::StatusServer) => {
                m.request(code.as_u8());
                // RFC 5997 §3: answered from the server's state, never from the duplicate cache.
                let reply = if role == Role::Acct {
                    Code::AccountingResponse
                } else {
                    Code::AccessAccept
                };
                // The builder signs every reply to Status-Server with a Message-Authenticator.
                let fill = |_: &mut PacketBuilder<'_, '_>, _: &Secret| Ok(());
                return send_reply(tx, from, &req, reply, fill, &m, None);
            }
            (Role::Auth | Role::Both, Code::AccessRequest)
            | (Role::Acct | Role::Both, Code::AccountingRequest) => {}
            _ => return m.count_drop(DropReason::WrongPort),
        }
        m.request(code.as_u8());

        let key = RequestKey {
            peer: from,
            identifier: req.identifier(),
            authenticator: *req.authenticator(),
        };
        match cache.lookup(&key, now.instant) {
            Lookup::New => {}
            Lookup::InProgress => {
                // A proxied request goes up once more per NAS attempt (a no-op for one that
                // is not proxied, or answered meanwhile).
                if let Some(client) = rt.proxy_client.as_ref() {
                    client.resend(NasRequest {
                        identifier: key.identifier,
                        authenticator: key.authenticator,
                    });
                }
                return m.shard.duplicate(DuplicateKind::InProgress);
            }
            Lookup::Answered(bytes) => {
                m.shard.duplicate(DuplicateKind::Replayed);
                m.reply(bytes[0]);
                tx.push(bytes, from);
                return;
            }
        }

        let r = request(&req, client, from, now.instant);
        let mut buf = PasswordBuf::new();
        let ctx = rt.auth();
        let proxied_accounting = match (code, rt.proxy.as_deref()) {
            (Code::AccountingRequest, Some(p)) => {
                auth::proxied::route_accounting(p, &req, now.instant)
            }
            _ => None,
        };
        let wait = match proxied_accounting {
            // Acknowledged when the home server acknowledges.
            Some(wait) => wait,
            None if code == Code::AccountingRequest => {
                // The record is queued for the next group commit; the response waits for
                // the fsync.
                if cache.begin(key).is_err() {
                    return m.count_drop(DropReason::Overloaded);
                }
                let mut buf = [0u8; 64];
                let len = match build_reply(&mut buf, &req, Code::AccountingResponse, |_, _| Ok(()))
                {
                    Ok(len) => len,
                    Err(e) => {
                        cache.abandon(&key);
                        return warn!(error = %e, "cannot build Accounting-Response");
                    }
                };
                let when = now_unix();
                let mut identity = [0u8; MAX_VALUE_LEN];
                let session = rt.sessions.as_deref().map(|store| {
                    let u = Update::from_request(
                        &req,
                        &client.name,
                        from.ip(),
                        when.0,
                        &store.seal,
                        &mut identity,
                    );
                    (store, u)
                });
                let origin = Origin {
                    client: &client.name,
                    nas: from,
                    shard: *id,
                    when,
                    session: session
                        .as_ref()
                        .and_then(|(_, u)| Some((u.id.as_ref()?, u.user.as_ref()))),
                };
                acct.push(
                    |out| write_record(out, acct_scratch, &req, origin, &rt.dict),
                    &buf[..len],
                    key,
                    (li, client.index),
                    from,
                );
                // The table follows what is recorded; a record whose commit fails is
                // retried by the NAS and applies again, to the same effect.
                if let Some((store, u)) = &session {
                    store.apply(u);
                }
                // `[sql] ip_pool`: Start / Interim-Update extend the lease, Stop and
                // Accounting-On / -Off release, off the shard and without waiting.
                if let Some((sql, pool)) = rt
                    .sql
                    .as_ref()
                    .and_then(|s| Some((s, s.config().ip_pool.as_ref()?)))
                {
                    if let Some(u) =
                        crate::backend::sql::ippool::LeaseUpdate::of(req.packet(), from.ip())
                    {
                        sql.update_lease(pool, u);
                    }
                }
                acct_notify.notify();
                return;
            }
            None => {
                let step = auth::start(&ctx, &r, now, &mut buf);
                match carry_out(rt, step, &r, &m, cache, key, now.instant, tx) {
                    Some(wait) => wait,
                    None => return,
                }
            }
        };
        // Retransmissions are absorbed as in-progress duplicates until it is answered.
        if cache.begin(key).is_err() {
            return m.count_drop(DropReason::Overloaded);
        }
        let waiting = jobs::submit(rt, &client.name, wait.job, wait.deadline);
        let slot = inflight.insert(Entry {
            rt: rt.clone(),
            li,
            key,
            client_index: client.index,
            arrived: now.instant,
            datagram: req.packet().as_bytes().into(),
            then: wait.then,
        });
        completions.wait_for(slot, waiting);
    }

    /// A job finished for the request in `slot`: the pipeline picks up where it left off and
    /// its next step is carried out (a reply into `tx`, a drop, or the next job).
    fn complete(&mut self, slot: usize, result: JobResult, now: Now, tx: &mut SendBatch) {
        let Some(entry) = self.inflight.take(slot) else {
            return;
        };
        let Entry {
            rt,
            li,
            key,
            client_index,
            arrived,
            datagram,
            then,
        } = entry;
        // The shard verified these same bytes with this same runtime, so a failure is not
        // expected; the Message-Authenticator requirement was enforced then, hence not again.
        let verified = rt.clients.get(client_index).and_then(|client| {
            let packet = Packet::parse(&datagram).ok()?;
            Some((client, verify_request(packet, &client.secret, false).ok()?))
        });
        let Some((client, req)) = verified else {
            return self.cache.abandon(&key);
        };
        let m = Counts {
            shard: &self.metrics,
            client: match self.client_metrics.get(client_index) {
                Some(c) => c,
                None => return self.cache.abandon(&key),
            },
        };
        let r = request(&req, client, key.peer, arrived);
        let mut buf = PasswordBuf::new();
        let ctx = rt.auth();
        let step = auth::resume(&ctx, &r, then, result, now, &mut buf);
        let cache = &mut self.cache;
        let Some(Await {
            job,
            deadline,
            then,
        }) = carry_out(&rt, step, &r, &m, cache, key, now.instant, tx)
        else {
            return;
        };
        // The next job of the same request: it keeps its entry (and its datagram copy).
        let waiting = jobs::submit(&rt, &client.name, job, deadline);
        let slot = self.inflight.insert(Entry {
            rt,
            li,
            key,
            client_index,
            arrived,
            datagram,
            then,
        });
        self.completions.wait_for(slot, waiting);
    }

    pub(super) fn publish_gauges(&self) {
        self.metrics
            .reply_cache_entries
            .set(self.cache.answered() as u64);
        self.metrics
            .in_progress
            .set(self.cache.in_progress() as u64);
        self.metrics
            .reply_cache_evicted_early
            .set(self.cache.stats().evicted_early);
    }

    fn idle(&self) -> bool {
        self.acct.is_empty() && self.cache.in_progress() == 0 && self.inflight.len() == 0
    }
}

/// The shard's and one client's counters, bumped together.
struct Counts<'a> {
    shard: &'a ShardMetrics,
    client: &'a ClientCounters,
}

impl Counts<'_> {
    fn count_drop(&self, reason: DropReason) {
        self.shard.count_drop(reason);
        self.client.dropped.inc();
    }

    fn request(&self, code: u8) {
        self.shard.request(code);
        self.client.request(code);
    }

    fn reply(&self, code: u8) {
        self.shard.reply(code);
        self.client.reply(code);
    }
}

pub(super) fn build_reply(
    buf: &mut [u8],
    req: &Verified<'_>,
    code: Code,
    fill: impl FnOnce(&mut PacketBuilder<'_, '_>, &Secret) -> Result<(), BuildError>,
) -> Result<usize, BuildError> {
    let end = MAX_PACKET_LEN.min(buf.len());
    let buf = &mut buf[..end];
    let mut b = PacketBuilder::reply(buf, code, req)?;
    fill(&mut b, req.secret())?;
    Ok(b.finish(req.secret())?.len())
}

/// Simultaneous-Use `disconnect_oldest`: the session an Access-Accept displaced is sent a
/// Disconnect-Request, from the control thread (the shard only hands it over).
fn displace(rt: &Runtime, id: &crate::session::UniqueId) {
    let (Some(store), Some(dynauth)) = (rt.sessions.as_deref(), rt.dynauth.as_ref()) else {
        return;
    };
    if let Some(view) = store.get_id(id) {
        store
            .counters
            .limit_displaced
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        dynauth.disconnect_detached(view);
    }
}

/// Builds a reply into the next slot of `tx`; with `cache`, also remembers it for
/// retransmissions (everything but Status-Server, RFC 5997 §3).
fn send_reply(
    tx: &mut SendBatch,
    to: SocketAddr,
    req: &Verified<'_>,
    code: Code,
    fill: impl FnOnce(&mut PacketBuilder<'_, '_>, &Secret) -> Result<(), BuildError>,
    metrics: &Counts<'_>,
    cache: Option<(&mut ReplyCache, RequestKey, Instant)>,
) {
    let Some(slot) = tx.slot() else { return };
    match build_reply(&mut slot[..], req, code, fill) {
        Ok(len) => {
            if let Some((cache, key, now)) = cache {
                cache.answer(key, &slot[..len], now);
            }
            metrics.reply(code.as_u8());
            tx.commit(len, to);
        }
        Err(e) => warn!(error = %e, "cannot build {}", code.name()),
    }
}

pub(super) fn decode_drop(e: DecodeError) -> DropReason {
    match e {
        DecodeError::TooShort => DropReason::TooShort,
        DecodeError::TooLong { .. } => DropReason::TooLong,
        DecodeError::BadLength { .. } => DropReason::BadLength,
        DecodeError::UnknownCode(_) => DropReason::UnknownCode,
        DecodeError::AttributeTooShort { .. } | DecodeError::AttributeOverrun { .. } => {
            DropReason::MalformedAttribute
        }
        DecodeError::DuplicateMessageAuthenticator | DecodeError::BadMessageAuthenticatorLength => {
            DropReason::BadMessageAuthenticatorFormat
        }
    }
}

fn verify_drop(e: VerifyError) -> DropReason {
    match e {
        VerifyError::NotARequest | VerifyError::NotAResponse => DropReason::NotARequest,
        VerifyError::MissingMessageAuthenticator => DropReason::MissingMessageAuthenticator,
        VerifyError::BadMessageAuthenticator => DropReason::BadMessageAuthenticator,
        VerifyError::BadRequestAuthenticator | VerifyError::BadResponseAuthenticator => {
            DropReason::BadRequestAuthenticator
        }
    }
}

/// The pipeline's view of a verified request from `client`.
fn request<'a>(
    packet: &'a Verified<'a>,
    client: &'a Client,
    nas: SocketAddr,
    arrived: Instant,
) -> Request<'a> {
    Request::new(packet, &client.name, client.group.as_deref(), nas, arrived)
}

/// Carries out a pipeline step for `r` (from `key.peer`): a reply into `tx` (remembered by
/// the reply cache), or a drop (counted; the cache forgets the request so a retransmission is
/// processed afresh). A job to wait for is handed back to the caller, who records it.
#[allow(clippy::too_many_arguments)]
fn carry_out<'a>(
    rt: &Runtime,
    step: Step<'a>,
    r: &Request<'_>,
    m: &Counts<'_>,
    cache: &mut ReplyCache,
    key: RequestKey,
    now: Instant,
    tx: &mut SendBatch,
) -> Option<Await<'a>> {
    match step {
        Step::Reply(d) => {
            decision::log(r, Logged::Decided(&d));
            let fill = |b: &mut PacketBuilder<'_, '_>, s: &Secret| d.apply(b, s);
            send_reply(
                tx,
                key.peer,
                r.packet,
                d.code(),
                fill,
                m,
                Some((cache, key, now)),
            );
            if let Some(id) = d.granted().and_then(|g| g.displace) {
                displace(rt, &id);
            }
            None
        }
        Step::Drop(why) => {
            decision::log(r, Logged::Dropped(why));
            m.count_drop(drop_reason(why));
            cache.abandon(&key);
            None
        }
        Step::Await(wait) => {
            if let Some(stage) = held_stage(&wait.job) {
                decision::log(r, Logged::Held(stage));
            }
            Some(wait)
        }
    }
}

/// Where a request held for a job waits, for the decision log (slow hashes and directory
/// binds are the ordinary path and are logged when decided).
fn held_stage(job: &Job<'_>) -> Option<&'static str> {
    match job {
        Job::VerifyHash { .. } | Job::Directory { .. } => None,
        Job::Sql { .. }
        | Job::SqlHash { .. }
        | Job::RedeemState { .. }
        | Job::Lease(_)
        | Job::CountSessions { .. } => None,
        Job::Push { .. } => Some("push"),
        Job::Trigger { .. } => Some("trigger"),
        Job::Check { .. } => Some("mfa_check"),
        Job::Tls(_) => None,
        // Logged when answered, like a directory's.
        Job::Proxy { .. } => None,
    }
}

/// The drop counter a pipeline drop is booked under.
fn drop_reason(why: RejectReason) -> DropReason {
    match why {
        RejectReason::Overloaded => DropReason::BackendOverloaded,
        RejectReason::NoHomeServer | RejectReason::HomeServerTimeout => {
            DropReason::HomeServerUnavailable
        }
        _ => DropReason::BackendUnavailable,
    }
}

/// Receives, decides and replies on one listener until the shard stops.
pub async fn serve_listener(me: ShardRef, cell: Arc<RuntimeCell>, li: usize) {
    let (socket, fd) = {
        let s = me.borrow();
        match &s.listeners[li].io {
            ListenerIo::Udp { socket, fd } => (socket.clone(), *fd),
            ListenerIo::Tls(_) | ListenerIo::Tcp(_) => return,
        }
    };
    let mut rx = RecvBatch::new(BATCH);
    // Every datagram yields at most one reply, so the send batch can never overflow.
    let mut tx = SendBatch::new(rx.capacity());
    let mut probe = [0u8; 1];
    loop {
        let n = match rx.recv(fd) {
            Ok(0) => {
                // Nothing queued: let glommio tell us when a datagram arrives (MSG_PEEK, so it
                // stays queued for the next recvmmsg). `peek_from`: the socket is not
                // connected, and `peek` fails at once on it (getpeername: ENOTCONN), which
                // turned this wait into a 1 ms polling loop.
                if let Err(e) = socket.peek_from(&mut probe).await {
                    debug!(error = %e, "peek failed");
                    glommio::timer::sleep(Duration::from_millis(1)).await;
                }
                continue;
            }
            Ok(n) => n,
            Err(e) => {
                warn!(error = %e, "recvmmsg failed");
                glommio::timer::sleep(Duration::from_millis(1)).await;
                continue;
            }
        };
        // One reading of the clocks per batch.
        let now = Now::system();
        {
            let mut s = me.borrow_mut();
            s.metrics.batches.inc();
            s.refresh(&cell);
            for i in 0..n {
                if let Some((data, from, truncated)) = rx.get(i) {
                    s.handle(li, data, from, truncated, now, &mut tx);
                }
            }
            s.publish_gauges();
        }
        let queued = tx.len();
        match tx.flush(fd) {
            Ok(sent) if sent < queued => {
                me.borrow().metrics.send_errors.add((queued - sent) as u64)
            }
            Ok(_) => {}
            Err(e) => {
                me.borrow().metrics.send_errors.add(queued as u64);
                debug!(error = %e, "sendmmsg failed");
            }
        }
        glommio::yield_if_needed().await;
    }
}

/// Commits accounting batches: write + fdatasync, then release their replies.
pub async fn accounting_flusher(me: ShardRef) {
    let (notify, dir) = {
        let s = me.borrow();
        (s.acct_notify.clone(), s.rt.accounting_dir.clone())
    };
    let mut log = AccountingLog::new(&dir);
    let mut spare = Batch::default();
    let mut tx = SendBatch::new(BATCH);
    loop {
        notify.wait().await;
        loop {
            let mut batch = {
                let mut s = me.borrow_mut();
                if s.acct.is_empty() {
                    break;
                }
                std::mem::replace(&mut s.acct, std::mem::take(&mut spare))
            };
            let capacity = batch.lines.len();
            let lines = std::mem::replace(&mut batch.lines, Vec::with_capacity(capacity));
            let started = Instant::now();
            let result = log.append_durably(lines, now_unix().0).await;
            let mut s = me.borrow_mut();
            match result {
                Ok(()) => {
                    s.metrics.accounting_fsyncs.inc();
                    s.metrics
                        .accounting_fsync_latency
                        .observe_us(started.elapsed().as_micros() as u64);
                    s.metrics.accounting_records.add(batch.records as u64);
                    debug!(
                        records = batch.records,
                        elapsed_us = started.elapsed().as_micros() as u64,
                        "accounting batch durable"
                    );
                    let now = Instant::now();
                    let mut current: Option<usize> = None;
                    for r in &batch.replies {
                        let bytes = batch.reply_bytes(r);
                        s.cache.answer(r.key, bytes, now);
                        if current.is_some_and(|l| l != r.listener) || tx.is_full() {
                            flush_to(&s, &mut tx, current);
                        }
                        current = Some(r.listener);
                        s.metrics.reply(bytes[0]);
                        if let Some(c) = s.client_metrics.get(r.client) {
                            c.reply(bytes[0]);
                        }
                        tx.push(bytes, r.to);
                    }
                    flush_to(&s, &mut tx, current);
                }
                Err(e) => {
                    error!(error = %e, dir = %dir.display(), records = batch.records, "accounting log write failed; requests left unanswered so NASes retry");
                    for r in &batch.replies {
                        s.cache.abandon(&r.key);
                        s.metrics.count_drop(DropReason::AccountingWriteFailed);
                    }
                }
            }
            // The batch's requests were still in progress when the receive loop last published.
            s.publish_gauges();
            drop(s);
            batch.clear();
            spare = batch;
        }
    }
}

/// Feeds job results back to the pipeline and sends what it decides, batched per listener.
pub async fn completion_loop(me: ShardRef) {
    let completions = me.borrow().completions.clone();
    let mut tx = SendBatch::new(BATCH);
    loop {
        completions.notify.wait().await;
        let mut s = me.borrow_mut();
        let now = Now::system();
        let mut current: Option<usize> = None;
        while let Some((slot, result)) = completions.pop() {
            let Some(li) = s.inflight.listener_of(slot) else {
                continue;
            };
            if current.is_some_and(|l| l != li) || tx.is_full() {
                flush_to(&s, &mut tx, current);
            }
            current = Some(li);
            s.complete(slot, result, now, &mut tx);
        }
        flush_to(&s, &mut tx, current);
        // These requests were in progress when the receive loop last published.
        s.publish_gauges();
    }
}

fn flush_to(s: &Shard, tx: &mut SendBatch, listener: Option<usize>) {
    let Some(l) = listener else { return };
    let fd = match s.listeners.get(l).map(|l| &l.io) {
        Some(ListenerIo::Udp { fd, .. }) => *fd,
        Some(ListenerIo::Tls(_) | ListenerIo::Tcp(_)) => {
            return s.streams.deliver(l, tx, &s.metrics)
        }
        None => return,
    };
    let queued = tx.len();
    if let Ok(sent) = tx.flush(fd) {
        if sent < queued {
            s.metrics.send_errors.add((queued - sent) as u64);
        }
    } else {
        s.metrics.send_errors.add(queued as u64);
    }
}

/// Runs a shard until `stop` is raised, then drains: in-flight work gets up to `grace` to
/// finish and the accounting queue is committed before the shard returns.
pub async fn run(me: ShardRef, cell: Arc<RuntimeCell>, stop: Arc<StopSignal>, grace: Duration) {
    let listeners = me.borrow().listeners.len();
    let tasks: Vec<_> = (0..listeners)
        .map(|li| {
            let stream = matches!(
                me.borrow().listeners[li].io,
                ListenerIo::Tls(_) | ListenerIo::Tcp(_)
            );
            if stream {
                glommio::spawn_local(super::stream::serve(me.clone(), cell.clone(), li))
            } else {
                glommio::spawn_local(serve_listener(me.clone(), cell.clone(), li))
            }
        })
        .collect();
    let flusher = glommio::spawn_local(accounting_flusher(me.clone()));
    let completer = glommio::spawn_local(completion_loop(me.clone()));
    while !stop.is_raised() {
        glommio::timer::sleep(Duration::from_millis(50)).await;
    }
    for t in tasks {
        t.cancel().await;
    }
    // Open RadSec connections end: their peers reconnect to whoever serves next.
    me.borrow().streams.stop_all();
    let deadline = Instant::now() + grace;
    while !me.borrow().idle() && Instant::now() < deadline {
        me.borrow().acct_notify.notify();
        glommio::timer::sleep(Duration::from_millis(5)).await;
    }
    flusher.cancel().await;
    completer.cancel().await;
    let s = me.borrow();
    if !s.idle() {
        warn!(
            shard = s.id,
            in_progress = s.cache.in_progress(),
            "stopping with work still in progress"
        );
    }
}
