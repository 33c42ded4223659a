//! The proxy client as one sans-IO state machine: the home servers, their pools, the
//! outstanding requests and the Status-Server checks, fed requests, datagrams and time, and
//! answering datagrams to send and finished requests.
//!
//! ```text
//!  submit(request, now) ──▶ pool pick ──▶ IdTable slot+id ──▶ forward_request ──▶ Transmit
//!  on_datagram(home, slot, bytes, now) ──▶ IdTable lookup ──▶ verify_reply ──▶ Done::Answered
//!  handle_timeout(now) ──▶ expired entries ──▶ Done::Failed(NoAnswer)
//!                     └─▶ liveness timers ──▶ Status-Server checks ──▶ Transmit
//! ```
//!
//! The caller ([`super::client`]) owns one socket per (home server, slot), the clock and the
//! waiters; a waiter `W` is whatever it answers a finished request on (a oneshot sender).
//! Every outstanding request is in exactly one [`IdTable`], so it is bounded by the home
//! server's `max_outstanding` and always ends: answered, or failed at its deadline.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tracing::{info, warn};

use super::forward::{
    forward_request, status_check, verify_reply, ForwardError, ForwardRules, ReplyError,
    ReplyMaRule, Sent, Upstream, PROXY_STATE_LEN,
};
use super::home::{HomeServer, HomeSettings, HomeState, Transition};
use super::ids::{IdTable, IdTableError, Key, IDS_PER_SLOT, MAX_SLOTS};
use super::pool::{Fallback, Member, Pick, Pool, MAX_MEMBERS};
use crate::proto::{Code, Secret, VerifiedBuf, MAX_PACKET_LEN};

/// A home server's place in the engine's table (configuration order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HomeId(pub usize);

/// A pool's place in the engine's table (configuration order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PoolId(pub usize);

/// One home server, as configured.
#[derive(Debug, Clone)]
pub struct HomeSpec {
    pub name: Arc<str>,
    pub address: SocketAddr,
    pub secret: Arc<Secret>,
    pub settings: HomeSettings,
    /// Requests outstanding to it at most; more are refused ([`Failure::Busy`]).
    pub max_outstanding: usize,
    /// Whether its Access replies must be signed.
    pub reply_ma: ReplyMaRule,
    pub transport: HomeTransport,
}

/// How a home server is reached.
#[derive(Debug, Clone)]
pub enum HomeTransport {
    Udp,
    /// RADIUS over TCP (RFC 6613).
    Tcp,
    /// RadSec (RFC 6614): `tls` verifies the server as `server_name` and presents ours.
    Tls {
        config: Arc<rustls::ClientConfig>,
        server_name: rustls::pki_types::ServerName<'static>,
        /// What it was built from (for comparing configurations).
        settings: crate::tls::client::ClientTlsSettings,
        /// Whether RADIUS/1.1 may, must or must not be spoken (its ALPN is in `settings`).
        radius11: crate::radsec::radius11::Radius11,
    },
}

impl HomeTransport {
    /// A byte stream (TCP, TLS): RFC 6613 §2.6.1 forbids retransmitting on it.
    pub fn is_stream(&self) -> bool {
        !matches!(self, HomeTransport::Udp)
    }

    pub fn label(&self) -> &'static str {
        match self {
            HomeTransport::Udp => "udp",
            HomeTransport::Tcp => "tcp",
            HomeTransport::Tls { .. } => "tls",
        }
    }
}

impl PartialEq for HomeTransport {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (HomeTransport::Udp, HomeTransport::Udp) | (HomeTransport::Tcp, HomeTransport::Tcp) => {
                true
            }
            (
                HomeTransport::Tls {
                    server_name: a,
                    settings: sa,
                    ..
                },
                HomeTransport::Tls {
                    server_name: b,
                    settings: sb,
                    ..
                },
            ) => a == b && sa == sb,
            _ => false,
        }
    }
}

impl HomeSpec {
    /// Source slots (one socket each): enough 256-identifier slots for `max_outstanding`.
    pub fn slots(&self) -> usize {
        self.max_outstanding
            .div_ceil(IDS_PER_SLOT)
            .clamp(1, MAX_SLOTS)
    }
}

/// One pool, as configured: its members are home server indices, in order.
#[derive(Debug, Clone)]
pub struct PoolSpec {
    pub name: Box<str>,
    pub pool: Pool,
    pub members: Vec<HomeId>,
}

/// A NAS request to forward.
pub struct Request<W> {
    pub pool: PoolId,
    /// The NAS's request, as the shard verified it (not checked again here).
    pub nas: VerifiedBuf,
    /// The User-Name to send (the route's, stripped of the realm); `None` keeps the NAS's.
    pub user_name: Option<Box<[u8]>>,
    /// [`super::pool::balance_key`] of the request (keyed-balance pools).
    pub key: u64,
    /// The NAS side's deadline: the request fails by then whatever the home server's
    /// response window.
    pub deadline: Instant,
    pub waiter: W,
}

impl<W> Request<W> {
    /// The same request, answered on `waiter`.
    pub fn with_waiter<V>(self, waiter: V) -> Request<V> {
        Request {
            pool: self.pool,
            nas: self.nas,
            user_name: self.user_name,
            key: self.key,
            deadline: self.deadline,
            waiter,
        }
    }
}

/// A datagram to send on (home server, slot)'s socket.
#[derive(Debug)]
pub struct Transmit {
    pub home: HomeId,
    pub slot: u8,
    pub to: SocketAddr,
    pub bytes: Box<[u8]>,
}

/// Which NAS request a forwarded one carries: its Identifier and Request Authenticator. A
/// NAS retransmission has both unchanged (RFC 5080 §2.2.1), so this finds the forwarded
/// request to send again. Random authenticators make collisions between NASes negligible,
/// and the shard asks only for a request it holds in progress from that very NAS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NasRequest {
    pub identifier: u8,
    pub authenticator: [u8; 16],
}

impl NasRequest {
    /// The NAS request in `datagram` (`None` if it is shorter than a header).
    pub fn of(datagram: &[u8]) -> Option<NasRequest> {
        Some(NasRequest {
            identifier: *datagram.get(1)?,
            authenticator: datagram.get(4..20)?.try_into().ok()?,
        })
    }
}

/// A home server's verified answer to a forwarded request.
#[derive(Debug, Clone)]
pub struct Answer {
    pub home: HomeId,
    /// Its name, for the proxied-login log line.
    pub home_name: Arc<str>,
    /// The reply as it arrived (verified; re-parse with [`super::forward::trusted_reply`]).
    pub reply: Box<[u8]>,
    pub sent: Sent,
    /// The home server's secret: hidden reply attributes are re-encrypted with it.
    pub secret: Arc<Secret>,
}

impl Answer {
    /// The reply's code (Access-Accept, -Reject, -Challenge or Accounting-Response).
    pub fn code(&self) -> Code {
        self.reply
            .first()
            .and_then(|&c| Code::from_u8(c))
            .unwrap_or(Code::AccessReject)
    }
}

/// Why a forwarded request has no answer.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// No member of the pool is alive or zombie: the pool's fallback says what to do.
    #[error("no home server of the pool is alive")]
    NoHomeServer(Fallback),
    /// Every usable member is full.
    #[error("every usable home server has max_outstanding requests")]
    Busy,
    /// The home server did not answer by the deadline.
    #[error("the home server did not answer in time")]
    NoAnswer,
    /// The request cannot be forwarded (a loop, a bad User-Password, too long).
    #[error("{0}")]
    Forward(ForwardError),
    /// The NAS's datagram no longer verifies with the secret handed in (a caller's bug).
    #[error("the NAS request does not verify")]
    Unverified,
    /// The engine's queue was full or the engine is gone.
    #[error("the proxy client is overloaded or stopped")]
    Overloaded,
}

impl Failure {
    /// Stable metrics label.
    pub const fn label(&self) -> &'static str {
        match self {
            Failure::NoHomeServer(_) => "no_home_server",
            Failure::Busy => "home_servers_busy",
            Failure::NoAnswer => "no_answer",
            Failure::Forward(e) => e.label(),
            Failure::Unverified => "unverified",
            Failure::Overloaded => "proxy_overloaded",
        }
    }
}

/// A request that has ended.
#[derive(Debug)]
pub enum Done<W> {
    Answered { waiter: W, answer: Answer },
    Failed { waiter: W, why: Failure },
}

/// What became of a datagram from a home server.
#[derive(Debug)]
pub enum Received<W> {
    /// The answer to a forwarded request.
    Answered(Done<W>),
    /// A good Status-Server answer.
    StatusAnswered,
    /// Dropped: it answers nothing outstanding (late, duplicate or stray).
    Unmatched,
    /// Dropped: it does not verify.
    Refused(ReplyError),
}

/// What the engine counts; the shell exports it.
#[derive(Debug, Default, Clone)]
pub struct HomeCounters {
    pub requests: u64,
    pub answers: u64,
    pub timeouts: u64,
    pub status_sent: u64,
    pub status_answered: u64,
    /// Forwarded requests sent again because the NAS retransmitted.
    pub retransmits: u64,
}

enum Pending<W> {
    /// An identifier taken for a packet being built (its Identifier is chosen first).
    Reserved,
    Request {
        sent: Sent,
        waiter: W,
        /// What was sent, to send again when the NAS retransmits.
        bytes: Box<[u8]>,
        nas: NasRequest,
    },
    /// Our Status-Server check.
    Status { sent: Sent },
}

struct Home<W> {
    spec: HomeSpec,
    live: HomeServer,
    ids: IdTable<Pending<W>>,
    counters: HomeCounters,
    /// It has sent a verified Message-Authenticator: under [`ReplyMaRule::Auto`], every
    /// later Access reply must carry one.
    signs: bool,
}

impl<W> Home<W> {
    fn ma_required(&self) -> bool {
        match self.spec.reply_ma {
            ReplyMaRule::Require => true,
            ReplyMaRule::Auto => self.signs,
            ReplyMaRule::Optional => false,
        }
    }
}

/// The proxy client's whole state.
pub struct Engine<W> {
    homes: Vec<Home<W>>,
    pools: Vec<PoolSpec>,
    rules: ForwardRules,
    /// Our Proxy-State values: the engine's number, then a counter never reused in its life.
    proxy_state_prefix: u16,
    counter: u64,
    /// Scratch for the packet being built (no allocation but the datagram handed out).
    buf: Box<[u8; MAX_PACKET_LEN]>,
    /// Every outstanding forwarded request by the NAS request it carries. Bounded like the
    /// identifier tables it indexes (their capacities together, reserved up front).
    by_nas: HashMap<NasRequest, (HomeId, Key)>,
}

/// Why the engine cannot be built from its specs.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum EngineError {
    #[error("home server {0:?}: {1}")]
    Ids(String, IdTableError),
    #[error("pool {0:?} names home server #{1}, which does not exist")]
    NoSuchHome(String, usize),
    #[error("pool {0:?} has more than {MAX_MEMBERS} members")]
    TooManyMembers(String),
}

impl<W> Engine<W> {
    pub fn new(
        homes: Vec<HomeSpec>,
        pools: Vec<PoolSpec>,
        rules: ForwardRules,
        now: Instant,
    ) -> Result<Self, EngineError> {
        let homes = homes
            .into_iter()
            .map(|spec| {
                let ids = IdTable::new(spec.slots(), spec.max_outstanding)
                    .map(|t| {
                        if spec.transport.is_stream() {
                            t.packed()
                        } else {
                            t
                        }
                    })
                    .map_err(|e| EngineError::Ids(spec.name.to_string(), e))?;
                Ok(Home {
                    live: HomeServer::new(spec.settings, now),
                    ids,
                    spec,
                    counters: HomeCounters::default(),
                    signs: false,
                })
            })
            .collect::<Result<Vec<_>, EngineError>>()?;
        for p in &pools {
            if p.members.len() > MAX_MEMBERS {
                return Err(EngineError::TooManyMembers(p.name.to_string()));
            }
            if let Some(bad) = p.members.iter().find(|m| m.0 >= homes.len()) {
                return Err(EngineError::NoSuchHome(p.name.to_string(), bad.0));
            }
        }
        let outstanding = homes.iter().map(|h| h.ids.capacity()).sum();
        Ok(Engine {
            homes,
            pools,
            rules,
            proxy_state_prefix: rand::random(),
            counter: 0,
            buf: Box::new([0u8; MAX_PACKET_LEN]),
            by_nas: HashMap::with_capacity(outstanding),
        })
    }

    pub fn homes(&self) -> impl Iterator<Item = (HomeId, &HomeSpec)> {
        self.homes
            .iter()
            .enumerate()
            .map(|(i, h)| (HomeId(i), &h.spec))
    }

    pub fn state(&self, home: HomeId) -> Option<HomeState> {
        self.homes.get(home.0).map(|h| h.live.state())
    }

    pub fn outstanding(&self, home: HomeId) -> usize {
        self.homes.get(home.0).map_or(0, |h| h.ids.outstanding())
    }

    pub fn counters(&self, home: HomeId) -> Option<&HomeCounters> {
        self.homes.get(home.0).map(|h| &h.counters)
    }

    /// Forwards `req`: the datagram to send, or at once why not (with the waiter back).
    pub fn submit(&mut self, req: Request<W>, now: Instant) -> Result<Transmit, (W, Failure)> {
        let Some(nas) = NasRequest::of(req.nas.as_bytes()) else {
            return Err((req.waiter, Failure::Unverified));
        };
        let Some(home) = self.pick(req.pool, req.key) else {
            return Err((req.waiter, Failure::Busy));
        };
        let home = match home {
            Ok(h) => h,
            Err(why) => return Err((req.waiter, why)),
        };
        let proxy_state = self.next_proxy_state();
        let h = &mut self.homes[home.0];
        let window = h.spec.settings.response_window;
        let deadline = req.deadline.min(now + window);
        // The identifier is chosen first, so the packet carries it; the entry's value is
        // filled in once the packet is built.
        let key = match h.ids.allocate(deadline, Pending::Reserved) {
            Ok(k) => k,
            Err(_) => return Err((req.waiter, Failure::Busy)),
        };
        let built = req.nas.view().ok_or(Failure::Unverified).and_then(|nas| {
            let upstream = Upstream {
                secret: &h.spec.secret,
                identifier: key.id,
                authenticator: rand::random(),
                proxy_state,
            };
            forward_request(
                &nas,
                req.user_name.as_deref(),
                &upstream,
                &self.rules,
                &mut self.buf[..],
            )
            .map(|(bytes, sent)| (Box::<[u8]>::from(bytes), sent))
            .map_err(Failure::Forward)
        });
        let (bytes, sent) = match built {
            Ok(b) => b,
            Err(why) => {
                h.ids.release(key);
                return Err((req.waiter, why));
            }
        };
        if let Some(p) = h.ids.get_mut(key) {
            *p = Pending::Request {
                sent,
                waiter: req.waiter,
                bytes: bytes.clone(),
                nas,
            };
        }
        // A second request carrying the same NAS request (a collision) is not indexed: the
        // first keeps its entry, and the second is simply never sent again.
        self.by_nas.entry(nas).or_insert((home, key));
        h.live.on_sent(now);
        h.counters.requests += 1;
        Ok(Transmit {
            home,
            slot: key.slot,
            to: h.spec.address,
            bytes,
        })
    }

    /// The NAS retransmitted `nas`, which is still outstanding upstream: the very same
    /// datagram (Identifier, authenticator, Proxy-State) goes to the same home server once
    /// more, so a request lost on the way up is recovered at the NAS's pace and never
    /// faster (the proxy has no retransmission timer of its own). `None` if it is not
    /// outstanding (answered meanwhile, or never forwarded).
    pub fn resend(&mut self, nas: &NasRequest) -> Option<Transmit> {
        let &(home, key) = self.by_nas.get(nas)?;
        let h = self.homes.get_mut(home.0)?;
        if h.spec.transport.is_stream() {
            // RFC 6613 §2.6.1: TCP delivers it, or the connection fails.
            return None;
        }
        let Some(Pending::Request { bytes, .. }) = h.ids.get(key) else {
            return None;
        };
        let bytes = bytes.clone();
        h.counters.retransmits += 1;
        Some(Transmit {
            home,
            slot: key.slot,
            to: h.spec.address,
            bytes,
        })
    }

    /// The pool's member for a request, or why none; `None` for an unknown pool.
    fn pick(&self, pool: PoolId, key: u64) -> Option<Result<HomeId, Failure>> {
        let p = self.pools.get(pool.0)?;
        let mut snapshot = [Member {
            state: HomeState::Dead,
            outstanding: 0,
            has_room: false,
        }; MAX_MEMBERS];
        for (slot, m) in snapshot.iter_mut().zip(&p.members) {
            if let Some(h) = self.homes.get(m.0) {
                *slot = Member {
                    state: h.live.state(),
                    outstanding: u32::try_from(h.ids.outstanding()).unwrap_or(u32::MAX),
                    has_room: h.ids.has_room(),
                };
            }
        }
        let members = snapshot.get(..p.members.len()).unwrap_or(&snapshot);
        Some(match p.pool.pick(members, key) {
            Pick::Member(i) => p.members.get(i).copied().ok_or(Failure::Busy),
            Pick::Unavailable(fallback) => Err(Failure::NoHomeServer(fallback)),
            Pick::Busy => Err(Failure::Busy),
        })
    }

    fn next_proxy_state(&mut self) -> [u8; PROXY_STATE_LEN] {
        self.counter = self.counter.wrapping_add(1);
        let mut v = [0u8; PROXY_STATE_LEN];
        v[..2].copy_from_slice(&self.proxy_state_prefix.to_be_bytes());
        v[2..].copy_from_slice(&self.counter.to_be_bytes()[2..]);
        v
    }

    /// A datagram arrived on (home, slot)'s socket. The socket is connected to the home
    /// server, so only its address reaches here.
    pub fn on_datagram(
        &mut self,
        home: HomeId,
        slot: u8,
        data: &[u8],
        now: Instant,
    ) -> Received<W> {
        let Some(h) = self.homes.get_mut(home.0) else {
            return Received::Unmatched;
        };
        let Some(&id) = data.get(1) else {
            return Received::Refused(ReplyError::Decode(crate::proto::DecodeError::TooShort));
        };
        let key = Key { slot, id };
        let sent = match h.ids.get(key) {
            Some(Pending::Request { sent, .. } | Pending::Status { sent }) => *sent,
            Some(Pending::Reserved) | None => return Received::Unmatched,
        };
        match verify_reply(data, &sent, &h.spec.secret, h.ma_required()) {
            // A forgery must not end the entry: the real answer may still come.
            Err(e) => return Received::Refused(e),
            Ok(reply) => h.signs |= reply.signed(),
        }
        let transition = match h.ids.release(key) {
            Some(Pending::Request {
                sent, waiter, nas, ..
            }) => {
                unindex(&mut self.by_nas, nas, (home, key));
                h.counters.answers += 1;
                let t = h.live.on_reply(now);
                log_transition(&h.spec.name, t);
                return Received::Answered(Done::Answered {
                    waiter,
                    answer: Answer {
                        home,
                        home_name: h.spec.name.clone(),
                        reply: data.into(),
                        sent,
                        secret: h.spec.secret.clone(),
                    },
                });
            }
            Some(Pending::Status { .. }) => {
                h.counters.status_answered += 1;
                h.live.on_status_reply(now)
            }
            Some(Pending::Reserved) | None => return Received::Unmatched,
        };
        log_transition(&h.spec.name, transition);
        Received::StatusAnswered
    }

    /// The next instant [`Self::handle_timeout`] has something to do.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        self.homes
            .iter_mut()
            .filter_map(|h| match (h.ids.poll_timeout(), h.live.poll_timeout()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            })
            .min()
    }

    /// Advances every timer to `now`: requests past their deadline fail into `done`,
    /// liveness moves on, and due Status-Server checks go into `tx`.
    pub fn handle_timeout(
        &mut self,
        now: Instant,
        done: &mut Vec<Done<W>>,
        tx: &mut Vec<Transmit>,
    ) {
        for i in 0..self.homes.len() {
            let h = &mut self.homes[i];
            for (key, p) in h.ids.expire(now) {
                if let Pending::Request { waiter, nas, .. } = p {
                    unindex(&mut self.by_nas, nas, (HomeId(i), key));
                    h.counters.timeouts += 1;
                    done.push(Done::Failed {
                        waiter,
                        why: Failure::NoAnswer,
                    });
                }
            }
            let t = h.live.handle_timeout(now);
            log_transition(&h.spec.name, t);
            if h.live.wants_status_check(now) {
                if let Some(t) = self.status_check(HomeId(i), now) {
                    tx.push(t);
                }
            }
        }
    }

    fn status_check(&mut self, home: HomeId, now: Instant) -> Option<Transmit> {
        let h = self.homes.get_mut(home.0)?;
        let timeout = h.spec.settings.check_timeout;
        // Checks share the identifiers of requests, so an answer can never be confused.
        let Ok(key) = h.ids.allocate(now + timeout, Pending::Reserved) else {
            // Full of requests: they are the check.
            h.live.on_status_sent(now);
            return None;
        };
        let upstream = Upstream {
            secret: &h.spec.secret,
            identifier: key.id,
            authenticator: rand::random(),
            proxy_state: [0; PROXY_STATE_LEN],
        };
        let (bytes, sent) = match status_check(&upstream, &mut self.buf[..]) {
            Ok((b, s)) => (Box::<[u8]>::from(b), s),
            Err(e) => {
                h.ids.release(key);
                warn!(home = %h.spec.name, error = %e, "cannot build Status-Server");
                return None;
            }
        };
        if let Some(p) = h.ids.get_mut(key) {
            *p = Pending::Status { sent };
        }
        h.live.on_status_sent(now);
        h.counters.status_sent += 1;
        Some(Transmit {
            home,
            slot: key.slot,
            to: h.spec.address,
            bytes,
        })
    }
}

/// Forgets `nas`'s index entry if it points at `at` (a colliding request never had one).
fn unindex(by_nas: &mut HashMap<NasRequest, (HomeId, Key)>, nas: NasRequest, at: (HomeId, Key)) {
    if by_nas.get(&nas) == Some(&at) {
        by_nas.remove(&nas);
    }
}

fn log_transition(home: &str, t: Option<Transition>) {
    if let Some(t) = t {
        info!(
            target: "radshard::proxy",
            home,
            from = t.from.label(),
            to = t.to.label(),
            cause = ?t.cause,
            "home server state"
        );
    }
}
