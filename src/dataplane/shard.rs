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
use tracing::{debug, error, info, warn};

use super::batch::{RecvBatch, SendBatch};
use super::clients::{Client, RateLimiter};
use super::dedup::{Lookup, ReplyCache, RequestKey};
use super::deferred::{ask_provider, decide_after_second, decide_local, mfa_reject, Answer, Asked};
use super::held::Held;
use super::mfa::{self, Redeemed};
use super::notify::Notify;
use super::runtime::{Runtime, RuntimeCell};
use super::socket::Role;
use super::StopSignal;
use crate::accounting::log::Batch;
use crate::accounting::record::{write_record, Origin, Scratch};
use crate::accounting::time::now_unix;
use crate::accounting::AccountingLog;
use crate::auth::local::Decision;
use crate::auth::{Method, RejectReason};
use crate::backend::{AuthRequest, Submitted};
use crate::config::ShedPolicy;
use crate::metrics::{ClientCounters, DropReason, DuplicateKind, ShardMetrics};
use crate::policy::AuthSource;
use crate::proto::{
    verify_request, BuildError, Code, DecodeError, Packet, PacketBuilder, Secret, Verified,
    VerifyError, MAX_PACKET_LEN, PROXY_STATE, REPLY_MESSAGE, STATE,
};

/// Datagrams drained per `recvmmsg`. Large enough to amortise the syscall, small enough that
/// one socket's burst does not starve the shard's other sockets.
const BATCH: usize = 64;

pub struct Listener {
    pub role: Role,
    pub socket: Rc<UdpSocket>,
    pub fd: RawFd,
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
    /// Slow-path tasks (hashed passwords) not yet answered.
    pub(super) slow_in_flight: usize,
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
            slow_in_flight: 0,
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
    fn refresh(&mut self, cell: &RuntimeCell) {
        if cell.generation() != self.generation {
            let (generation, rt) = cell.load();
            self.install(generation, rt);
        }
    }

    /// Decides one datagram. A reply decided now is built straight into `tx`.
    #[allow(clippy::too_many_arguments)]
    fn handle(
        &mut self,
        me: &ShardRef,
        li: usize,
        data: &[u8],
        from: SocketAddr,
        truncated: bool,
        now: Instant,
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
            slow_in_flight,
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
        let Some(client) = rt.clients.lookup(from.ip()) else {
            return m.count_drop(DropReason::UnknownClient);
        };
        // From here on every count is also booked to the client.
        let m = Counts {
            shard: m,
            client: &client_metrics[client.index],
        };
        if let Some(Some(limiter)) = limiters.get_mut(client.index) {
            if !limiter.allow(now) {
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
                let reply = if role == Role::Auth {
                    Code::AccessAccept
                } else {
                    Code::AccountingResponse
                };
                // The builder signs every reply to Status-Server with a Message-Authenticator.
                let fill = |_: &mut PacketBuilder<'_, '_>, _: &Secret| Ok(());
                return send_reply(tx, from, &req, reply, fill, &m, None);
            }
            (Role::Auth, Code::AccessRequest) | (Role::Acct, Code::AccountingRequest) => {}
            _ => return m.count_drop(DropReason::WrongPort),
        }
        m.request(code.as_u8());

        let key = RequestKey {
            peer: from,
            identifier: req.identifier(),
            authenticator: *req.authenticator(),
        };
        // What a task answering this request later needs (see `deferred.rs`).
        let held = || Held::new(me, rt, li, key, req.packet().as_bytes(), client.index, now);
        match cache.lookup(&key, now) {
            Lookup::New => {}
            Lookup::InProgress => return m.shard.duplicate(DuplicateKind::InProgress),
            Lookup::Answered(bytes) => {
                m.shard.duplicate(DuplicateKind::Replayed);
                m.reply(bytes[0]);
                tx.push(bytes, from);
                return;
            }
        }

        if code == Code::AccountingRequest {
            // The record is queued for the next group commit; the response waits for the fsync.
            if cache.begin(key).is_err() {
                return m.count_drop(DropReason::Overloaded);
            }
            let mut buf = [0u8; 64];
            let len = match build_reply(&mut buf, &req, Code::AccountingResponse, |_, _| Ok(())) {
                Ok(len) => len,
                Err(e) => {
                    cache.abandon(&key);
                    return warn!(error = %e, "cannot build Accounting-Response");
                }
            };
            let origin = Origin {
                client: &client.name,
                nas: from,
                shard: *id,
                when: now_unix(),
            };
            acct.push(
                |out| write_record(out, acct_scratch, &req, origin, &rt.dict),
                &buf[..len],
                key,
                (li, client.index),
                from,
            );
            acct_notify.notify();
            return;
        }

        // Without [mfa] the State is not even looked for.
        let follow_up = rt
            .mfa
            .as_deref()
            .and_then(|store| Some((store, req.attr(STATE)?)));
        if let Some((store, state)) = follow_up {
            // The answer to one of our challenges: State and code, then the policies again
            // with what the primary authentication found (the password is not sent twice).
            let (code, fill, reason, policy) = match mfa::redeem(rt, store, &req, client, state) {
                Ok(Redeemed::Done(pending)) => decide_after_second(rt, &req, client, &pending, ""),
                Ok(Redeemed::Remote(pending, otp)) => {
                    // Checked by the HTTP provider off the shard; retransmissions meanwhile
                    // are absorbed as in-progress duplicates.
                    if cache.begin(key).is_err() {
                        return m.count_drop(DropReason::Overloaded);
                    }
                    let Some(rx) = store.submit_check(
                        pending.mfa_user.clone(),
                        otp,
                        pending.transaction_id.clone(),
                    ) else {
                        cache.abandon(&key);
                        return m.count_drop(DropReason::BackendUnavailable);
                    };
                    *slow_in_flight += 1;
                    return held().spawn_mfa_check(Asked {
                        pending,
                        rx,
                        trigger: false,
                    });
                }
                Err(r) => mfa_reject(rt, r),
            };
            let outcome = if code == Code::AccessAccept {
                "accept"
            } else {
                "reject"
            };
            store
                .metrics
                .outcome(if reason.is_empty() { outcome } else { reason });
            mfa::log(&req, client, from, outcome, reason, &policy, now);
            return send_reply(
                tx,
                from,
                &req,
                code,
                |b, s| fill.apply(b, s),
                &m,
                Some((cache, key, now)),
            );
        }

        let method = Method::of(&req);
        // Read once: in a combined mfa_mode only the password part goes to primary
        // authentication (local check or directory bind); the code waits for the provider.
        let mut pw = [0u8; 128];
        let (password, read) = mfa::read_password(rt, &req, client, method, &mut pw);
        let decision = match password {
            // Cannot hold a password and a code: refused before any directory is asked.
            Err(RejectReason::MfaBadCode) => {
                if let Some(store) = rt.mfa.as_deref() {
                    store.metrics.outcome(RejectReason::MfaBadCode.label());
                }
                Decision::Reject(RejectReason::MfaBadCode)
            }
            password => rt.users.decide_password(&req, method, password),
        };
        // Every branch that ends in a plain Access-Reject breaks out with its reason; the reject
        // is logged and answered once, below.
        let reject = 'decide: {
            match decision {
                Decision::Accept(user) => {
                    let (code, answer, outcome, reason) =
                        decide_local(rt, &req, client, user, method, read);
                    log_decision(&req, client, from, method, outcome, reason, now);
                    if let Answer::Hold(hold) = answer {
                        if cache.begin(key).is_err() {
                            return m.count_drop(DropReason::Overloaded);
                        }
                        let asked = ask_provider(
                            rt,
                            &req,
                            client,
                            &user.name,
                            &user.groups,
                            AuthSource::Local,
                            hold,
                        );
                        let Some(asked) = asked else {
                            cache.abandon(&key);
                            return m.count_drop(DropReason::BackendUnavailable);
                        };
                        *slow_in_flight += 1;
                        return held().spawn_mfa_check(asked);
                    }
                    send_reply(
                        tx,
                        from,
                        &req,
                        code,
                        |b, s| answer.apply(b, s),
                        &m,
                        Some((cache, key, now)),
                    );
                }
                // Not a local user, or an MFA-only entry (a directory user's TOTP secret).
                Decision::Reject(RejectReason::UnknownUser | RejectReason::NoPassword)
                    if method == Some(Method::Pap) && rt.backend.is_some() =>
                {
                    let Some(backend) = rt.backend.clone() else {
                        return;
                    };
                    let (Ok(password), Ok(user)) = (
                        password,
                        std::str::from_utf8(req.user_name().unwrap_or_default()),
                    ) else {
                        break 'decide Some(RejectReason::MalformedPassword);
                    };
                    if cache.begin(key).is_err() {
                        return m.count_drop(DropReason::Overloaded);
                    }
                    let deadline = now + backend.config.deadline;
                    let submitted = backend.submit(AuthRequest {
                        client: &client.name,
                        user,
                        password,
                        deadline,
                    });
                    match submitted {
                        Submitted::Pending(rx) => {
                            *slow_in_flight += 1;
                            held().spawn_backend(deadline, rx);
                        }
                        Submitted::Shed => match backend.config.on_overload {
                            ShedPolicy::Drop => {
                                cache.abandon(&key);
                                debug!(user, client = %client.name, "backend queue full: dropped");
                                m.count_drop(DropReason::BackendOverloaded);
                            }
                            ShedPolicy::Reject => {
                                // The request was marked in progress; answering it replaces that.
                                break 'decide Some(RejectReason::Overloaded);
                            }
                        },
                    }
                }
                Decision::Reject(reason) => break 'decide Some(reason),
                Decision::VerifySlowly(_) => {
                    if cache.begin(key).is_err() {
                        return m.count_drop(DropReason::Overloaded);
                    }
                    *slow_in_flight += 1;
                    held().spawn_slow_pap();
                }
            }
            None
        };
        if let Some(reason) = reject {
            log_decision(&req, client, from, method, "reject", Some(reason), now);
            let msg = rt.reject_reply_message.as_deref();
            let fill = |b: &mut PacketBuilder<'_, '_>, _: &Secret| {
                msg.map_or(Ok(()), |m| b.attr(REPLY_MESSAGE, m))
            };
            send_reply(
                tx,
                from,
                &req,
                Code::AccessReject,
                fill,
                &m,
                Some((cache, key, now)),
            );
        }
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
        self.acct.is_empty() && self.cache.in_progress() == 0 && self.slow_in_flight == 0
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

fn decode_drop(e: DecodeError) -> DropReason {
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

/// One line per authentication decision. Never a password: only who, from where, how, and why.
pub(super) fn log_decision(
    req: &Verified<'_>,
    client: &Client,
    from: SocketAddr,
    method: Option<Method>,
    outcome: &'static str,
    reason: Option<RejectReason>,
    started: Instant,
) {
    info!(
        target: "radshard::auth",
        user = %String::from_utf8_lossy(req.user_name().unwrap_or_default()),
        client = %client.name,
        nas = %from,
        method = method.map_or("none", Method::label),
        outcome,
        reason = reason.map_or("", RejectReason::label),
        latency_us = started.elapsed().as_micros() as u64,
        "decision"
    );
}

/// Receives, decides and replies on one listener until the shard stops.
pub async fn serve_listener(me: ShardRef, cell: Arc<RuntimeCell>, li: usize) {
    let (socket, fd) = {
        let s = me.borrow();
        (s.listeners[li].socket.clone(), s.listeners[li].fd)
    };
    let mut rx = RecvBatch::new(BATCH);
    // Every datagram yields at most one reply, so the send batch can never overflow.
    let mut tx = SendBatch::new(rx.capacity());
    let mut probe = [0u8; 1];
    loop {
        let n = match rx.recv(fd) {
            Ok(0) => {
                // Nothing queued: let glommio tell us when a datagram arrives (MSG_PEEK, so it
                // stays queued for the next recvmmsg).
                if let Err(e) = socket.peek(&mut probe).await {
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
        let now = Instant::now();
        {
            let mut s = me.borrow_mut();
            s.metrics.batches.inc();
            s.refresh(&cell);
            for i in 0..n {
                if let Some((data, from, truncated)) = rx.get(i) {
                    s.handle(&me, li, data, from, truncated, now, &mut tx);
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

fn flush_to(s: &Shard, tx: &mut SendBatch, listener: Option<usize>) {
    let Some(l) = listener else { return };
    let queued = tx.len();
    if let Ok(sent) = tx.flush(s.listeners[l].fd) {
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
        .map(|li| glommio::spawn_local(serve_listener(me.clone(), cell.clone(), li)))
        .collect();
    let flusher = glommio::spawn_local(accounting_flusher(me.clone()));
    while !stop.is_raised() {
        glommio::timer::sleep(Duration::from_millis(50)).await;
    }
    for t in tasks {
        t.cancel().await;
    }
    let deadline = Instant::now() + grace;
    while !me.borrow().idle() && Instant::now() < deadline {
        me.borrow().acct_notify.notify();
        glommio::timer::sleep(Duration::from_millis(5)).await;
    }
    flusher.cancel().await;
    let s = me.borrow();
    if !s.idle() {
        warn!(
            shard = s.id,
            in_progress = s.cache.in_progress(),
            "stopping with work still in progress"
        );
    }
}
