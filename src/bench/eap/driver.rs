//! The network side of the EAP loader: one thread, any number of UDP sockets batched with
//! sendmmsg/recvmmsg, and a window of logins in flight, each a [`Conversation`].
//!
//! The window counts logins, not packets: a login holds at most one Access-Request
//! outstanding (an identifier on some socket) while it waits for the reply; the reply is fed
//! to its conversation, whose answer queues the next request (new identifier, new Request
//! Authenticator, the challenge's State) at once. A finished login makes room for the next.
//! Retransmissions resend the same bytes; a request that runs out of them fails its login
//! (`timeout`). Timeouts are found by scanning the slots, as in [`crate::bench::loadgen`].

use std::collections::VecDeque;
use std::io::IsTerminal;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use socket2::{Domain, Protocol, Socket, Type};

use super::conversation::{ConvError, Conversation, Credentials, EAP_OUT_MAX};
use super::keys::{check_mppe, KeyCheck};
use super::peap::NtHashes;
use super::radius::{read_eap, write_request, RequestFields, STATE_MAX};
use super::setup::{Method, Setup};
use super::stats::EapStats;
use crate::bench::args::BenchArgs;
use crate::bench::error::BenchError;
use crate::bench::poll::{wait_readable, Sending, Timers, MAX_SOCKETS};
use crate::bench::report::{Counters, Report};
use crate::bench::users::User;
use crate::dataplane::batch::{RecvBatch, SendBatch, DATAGRAM_MAX};
use crate::proto::eap::{EapError, MAX_EAP_LEN};
use crate::proto::{attr, verify_response, BuildError, Code, Packet, Secret};

const IDS: usize = 256;
const SOCKET_BUFFER: usize = 8 << 20;

/// One identifier of one socket.
#[derive(Clone, Copy)]
struct Slot {
    busy: bool,
    login: u32,
    authenticator: [u8; 16],
    len: u16,
    tries: u32,
    deadline: Instant,
}

struct Sock {
    _socket: UdpSocket,
    fd: RawFd,
    slots: Box<[Slot]>,
    /// Identifier `i`'s request bytes are `bufs[i * DATAGRAM_MAX..][..len]` (kept for
    /// retransmissions).
    bufs: Box<[u8]>,
    /// Least recently used first, as in the packet loader (FreeRADIUS keeps answered
    /// identifiers for duplicate detection).
    free: VecDeque<u8>,
    tx: SendBatch,
    queued: Vec<(u8, bool)>,
    rx: RecvBatch,
}

/// One place in the window.
struct Login {
    conv: Conversation,
    user: usize,
    wrong: bool,
    /// Latency origin: the login's first request (closed loop) or when it was due (open).
    origin: Instant,
    rounds: u32,
    state: [u8; STATE_MAX],
    state_len: Option<u8>,
    /// The EAP-Response waiting to be sent.
    eap: Box<[u8]>,
    eap_len: usize,
}

/// Why a login ended without an answer we accept. Described (allocated) only for the
/// report's first failure.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("{0}")]
    Conversation(#[from] ConvError),
    #[error("EAP-Message of a Challenge: {0}")]
    Eap(#[from] EapError),
    #[error("an EAP reply without Message-Authenticator (RFC 3579 §3.2)")]
    NoMessageAuthenticator,
    #[error("MPPE keys: {0:?}")]
    Keys(KeyCheck),
    #[error("a reply with code {0:?}")]
    UnexpectedCode(Code),
    #[error("no reply after the retransmissions")]
    Timeout,
    #[error("building the Access-Request: {0}")]
    Build(#[from] BuildError),
}

impl Failure {
    fn label(&self) -> &'static str {
        match self {
            Failure::Conversation(e) => e.label(),
            Failure::Eap(_) => "eap_malformed",
            Failure::NoMessageAuthenticator => "no_message_authenticator",
            Failure::Keys(_) => "bad_keys",
            Failure::UnexpectedCode(_) => "unexpected_code",
            Failure::Timeout => "timeout",
            Failure::Build(_) => "too_large",
        }
    }
}

/// A user's credentials for the login (and for a login sent with a wrong password).
struct UserCreds {
    right: Credentials,
    wrong: Option<Credentials>,
}

struct Plan {
    window: usize,
    rate: Option<f64>,
    count: Option<u64>,
    duration: Option<Duration>,
    timeout: Duration,
    retries: u32,
    server: SocketAddr,
    progress: bool,
    wrong_fraction: f64,
}

fn bind(peer: SocketAddr) -> Result<UdpSocket, BenchError> {
    let s = Socket::new(Domain::for_address(peer), Type::DGRAM, Some(Protocol::UDP))?;
    // Best effort: capped by net.core.{r,w}mem_max unless privileged.
    let _ = s.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = s.set_send_buffer_size(SOCKET_BUFFER);
    let local: SocketAddr = if peer.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    s.bind(&local.into())?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}

/// The password with its last octet flipped: same length, never equal.
fn wrong_password(password: &[u8]) -> Box<[u8]> {
    let mut w = password.to_vec().into_boxed_slice();
    if let Some(last) = w.last_mut() {
        *last ^= 0x01;
    }
    w
}

fn credentials(
    method: Method,
    name: &[u8],
    password: Box<[u8]>,
) -> Result<Credentials, BenchError> {
    let hashes = if method == Method::Peap {
        Some(NtHashes::of_password(&password).ok_or_else(|| {
            BenchError::Invalid(format!(
                "user {:?}: MS-CHAPv2 needs a UTF-8 password of at most 256 UTF-16 units",
                String::from_utf8_lossy(name)
            ))
        })?)
    } else {
        None
    };
    Ok(Credentials {
        name: name.into(),
        password,
        hashes,
        code: None,
    })
}

pub fn run(args: &BenchArgs, setup: Setup, users: Vec<User>) -> Result<Report, BenchError> {
    let sockets = args.sockets;
    if sockets == 0 || sockets > MAX_SOCKETS {
        return Err(BenchError::Invalid(format!(
            "--sockets must be 1..={MAX_SOCKETS}"
        )));
    }
    if args.window == 0 || args.window > sockets * IDS {
        return Err(BenchError::Invalid(format!(
            "--window must be 1..={} (logins in flight: 256 per socket × {sockets} socket(s))",
            sockets * IDS
        )));
    }
    if args.count.is_none() && args.duration.is_none() {
        return Err(BenchError::Invalid(
            "give --count, --duration or both: every run is bounded".into(),
        ));
    }
    if let Some(r) = args.rate {
        if !(r.is_finite() && r > 0.0) {
            return Err(BenchError::Invalid("--rate must be positive".into()));
        }
    }
    if args.timeout.is_zero() {
        return Err(BenchError::Invalid("--timeout must be positive".into()));
    }
    if !(0.0..=1.0).contains(&args.wrong_password) {
        return Err(BenchError::Invalid(
            "--wrong-password must be between 0 and 1".into(),
        ));
    }
    if args.wrong_password > 0.0 && !setup.method.uses_password() {
        return Err(BenchError::Invalid(
            "--wrong-password: eap-tls has no password".into(),
        ));
    }
    if users.is_empty() {
        return Err(BenchError::Invalid("no users".into()));
    }
    let mut creds = Vec::with_capacity(users.len());
    for u in &users {
        let right = credentials(setup.method, &u.name, u.password.clone())?;
        let wrong = if args.wrong_password > 0.0 {
            Some(credentials(
                setup.method,
                &u.name,
                wrong_password(&u.password),
            )?)
        } else {
            None
        };
        creds.push(UserCreds { right, wrong });
    }
    drop(users);

    let plan = Plan {
        window: if args.rate.is_some() {
            sockets * IDS
        } else {
            args.window
        },
        rate: args.rate,
        count: args.count,
        duration: args.duration,
        timeout: args.timeout,
        retries: args.retries,
        server: args.server,
        progress: !args.quiet,
        wrong_fraction: args.wrong_password,
    };
    let now = Instant::now();
    let empty = Slot {
        busy: false,
        login: 0,
        authenticator: [0; 16],
        len: 0,
        tries: 0,
        deadline: now,
    };
    let batch = args.batch.clamp(1, 1024);
    let mut socks = Vec::with_capacity(sockets);
    for _ in 0..sockets {
        let socket = bind(plan.server)?;
        socks.push(Sock {
            fd: socket.as_raw_fd(),
            _socket: socket,
            slots: vec![empty; IDS].into_boxed_slice(),
            bufs: vec![0u8; IDS * DATAGRAM_MAX].into_boxed_slice(),
            free: (0..=255u8).collect(),
            tx: SendBatch::new(batch),
            queued: Vec::with_capacity(batch),
            rx: RecvBatch::new(batch),
        });
    }
    let logins = (0..plan.window)
        .map(|_| Login {
            conv: Conversation::new(setup.slot_config()),
            user: 0,
            wrong: false,
            origin: now,
            rounds: 0,
            state: [0; STATE_MAX],
            state_len: None,
            eap: vec![0u8; EAP_OUT_MAX].into_boxed_slice(),
            eap_len: 0,
        })
        .collect();
    let nas_ip = match args.server.ip() {
        std::net::IpAddr::V4(v4) => v4.octets(),
        std::net::IpAddr::V6(_) => [127, 0, 0, 1],
    };
    let stats = EapStats::new(
        setup.method.label(),
        setup.tls_version.label(),
        setup.resume,
    );
    let mut d = Driver {
        secret: Secret::new(args.secret.as_bytes())?,
        setup,
        creds,
        rng: StdRng::from_entropy(),
        socks,
        logins,
        idle: (0..plan.window as u32).rev().collect(),
        ready: VecDeque::with_capacity(plan.window),
        scratch: vec![0u8; MAX_EAP_LEN]
            .into_boxed_slice()
            .try_into()
            .map_err(|_| BenchError::Invalid("scratch buffer".into()))?,
        c: Counters::default(),
        stats,
        hist: Histogram::new_with_bounds(1, 3_600_000_000, 3)
            .map_err(|e| BenchError::Invalid(format!("histogram: {e}")))?,
        scan_every: (plan.timeout / 8).clamp(Duration::from_micros(100), Duration::from_millis(10)),
        next_scan: now,
        active: 0,
        issued: 0,
        rr: 0,
        nas_ip,
        plan,
    };
    d.run(args)
}

struct Driver {
    plan: Plan,
    setup: Setup,
    secret: Secret,
    creds: Vec<UserCreds>,
    rng: StdRng,
    socks: Vec<Sock>,
    logins: Vec<Login>,
    /// Window places without a login.
    idle: Vec<u32>,
    /// Logins whose next request is written (in `Login::eap`) but not yet queued.
    ready: VecDeque<u32>,
    /// Where a reply's EAP-Message attributes are reassembled.
    scratch: Box<[u8; MAX_EAP_LEN]>,
    c: Counters,
    stats: EapStats,
    /// Per login: first request to the final Accept or Reject.
    hist: Histogram<u64>,
    scan_every: Duration,
    next_scan: Instant,
    active: usize,
    /// Logins started.
    issued: u64,
    rr: usize,
    nas_ip: [u8; 4],
}

impl Driver {
    fn run(&mut self, args: &BenchArgs) -> Result<Report, BenchError> {
        let cpu_start = thread_cpu_s();
        let start = Instant::now();
        let mut sending = true;
        let mut send_end = start;
        let mut last_reply = start;
        let mut next_progress = start + Duration::from_secs(1);
        let mut last_progress = (start, 0u64);
        let tty = std::io::stderr().is_terminal();
        let mut printed = false;

        loop {
            let now = Instant::now();
            if sending {
                let by_count = self.plan.count.is_some_and(|c| self.issued >= c);
                let by_time = self.plan.duration.is_some_and(|d| now >= start + d);
                if by_count || by_time {
                    sending = false;
                    send_end = now;
                }
            }
            if !sending && self.active == 0 {
                break;
            }
            let budget = if !sending {
                0
            } else {
                let room = self.idle.len() as u64;
                let due = match self.plan.rate {
                    None => room,
                    Some(r) => {
                        let target = ((now - start).as_secs_f64() * r) as u64 + 1;
                        target.saturating_sub(self.issued).min(room)
                    }
                };
                let left = self.plan.count.map_or(u64::MAX, |c| c - self.issued);
                due.min(left)
            };
            for _ in 0..budget {
                let origin = match self.plan.rate {
                    Some(r) => start + Duration::from_secs_f64(self.issued as f64 / r),
                    None => now,
                };
                self.start_login(origin);
            }
            let mut progressed = !self.ready.is_empty();
            self.send_ready();
            self.expire(now);
            for s in 0..self.socks.len() {
                if !self.socks[s].tx.is_empty() {
                    self.flush(s);
                    progressed = true;
                }
            }
            for s in 0..self.socks.len() {
                loop {
                    let sock = &mut self.socks[s];
                    let got = match sock.rx.recv(sock.fd) {
                        Ok(g) => g,
                        Err(_) => {
                            self.c.recv_errors += 1;
                            0
                        }
                    };
                    if got == 0 {
                        break;
                    }
                    progressed = true;
                    let t = Instant::now();
                    last_reply = t;
                    for i in 0..got {
                        self.reply(s, i, t);
                    }
                    if got < self.socks[s].rx.capacity() {
                        break;
                    }
                }
            }

            if self.plan.progress && now >= next_progress {
                let done = self.stats.logins_ok + self.stats.logins_rejected;
                let dt = (now - last_progress.0).as_secs_f64();
                let rate = (done - last_progress.1) as f64 / dt.max(1e-9);
                last_progress = (now, done);
                eprint!(
                    "{}[{:6.1}s] logins ok {} rejected {} failed {} ({:.0}/s) in flight {} requests {} timeouts {}{}",
                    if tty { "\r" } else { "" },
                    (now - start).as_secs_f64(),
                    self.stats.logins_ok,
                    self.stats.logins_rejected,
                    self.stats.logins_failed,
                    rate,
                    self.active,
                    self.c.sent,
                    self.c.timeouts,
                    if tty { "   " } else { "\n" },
                );
                printed = true;
                next_progress += Duration::from_secs(1);
            }
            if !progressed {
                self.idle_wait(sending, start, next_progress);
            }
        }
        if printed && tty {
            eprintln!();
        }
        let end = if self.c.replies > 0 {
            last_reply.max(send_end)
        } else {
            send_end
        };
        let elapsed = (end - start).as_secs_f64();
        self.stats.finish(elapsed, thread_cpu_s() - cpu_start);
        let mut report = Report::new(args, self.plan.window, elapsed, self.c.clone(), &self.hist);
        report.eap = Some(self.stats.clone());
        Ok(report)
    }

    fn wrong(&self, n: u64) -> bool {
        let f = self.plan.wrong_fraction;
        ((n + 1) as f64 * f).floor() > (n as f64 * f).floor()
    }

    /// Takes an idle window place, begins a login on it and queues its Identity.
    fn start_login(&mut self, origin: Instant) {
        let Some(k) = self.idle.pop() else {
            return;
        };
        let n = self.issued;
        self.issued += 1;
        self.active += 1;
        self.stats.logins_started += 1;
        let wrong = self.wrong(n);
        let ui = (n % self.creds.len() as u64) as usize;
        let login = &mut self.logins[k as usize];
        login.user = ui;
        login.wrong = wrong;
        login.origin = origin;
        login.rounds = 0;
        login.state_len = None;
        let identity = identity(&self.setup, &self.creds[ui].right);
        match login.conv.begin(identity, &mut login.eap) {
            Ok(len) => {
                login.eap_len = len;
                self.ready.push_back(k);
            }
            Err(e) => self.fail(k, e.into()),
        }
    }

    /// Ends login `k` as failed.
    fn fail(&mut self, k: u32, why: Failure) {
        self.stats.fail(why.label(), || why.to_string());
        self.end(k);
    }

    fn end(&mut self, k: u32) {
        self.active -= 1;
        self.idle.push(k);
    }

    /// Queues every ready login's request on a socket with a free identifier.
    fn send_ready(&mut self) {
        let n = self.socks.len();
        while let Some(&k) = self.ready.front() {
            // The window never exceeds the identifiers, so some socket has one free.
            let Some(s) = (0..n)
                .map(|i| (self.rr + i) % n)
                .find(|&s| !self.socks[s].free.is_empty())
            else {
                break;
            };
            self.rr = (s + 1) % n;
            if self.socks[s].tx.is_full() {
                self.flush(s);
            }
            self.ready.pop_front();
            let login = &self.logins[k as usize];
            let sock = &mut self.socks[s];
            let Some(id) = sock.free.pop_front() else {
                continue;
            };
            let mut ra = [0u8; 16];
            self.rng.fill_bytes(&mut ra);
            let buf = &mut sock.bufs[id as usize * DATAGRAM_MAX..][..DATAGRAM_MAX];
            let fields = RequestFields {
                identifier: id,
                authenticator: &ra,
                user_name: identity(&self.setup, &self.creds[login.user].right),
                state: login.state_len.map(|l| &login.state[..l as usize]),
                nas_ip: self.nas_ip,
                nas_port: k,
            };
            let len = match write_request(buf, &fields, &login.eap[..login.eap_len], &self.secret) {
                Ok(len) => len,
                Err(e) => {
                    sock.free.push_back(id);
                    self.fail(k, e.into());
                    continue;
                }
            };
            let slot = &mut sock.slots[id as usize];
            *slot = Slot {
                busy: true,
                login: k,
                authenticator: ra,
                len: len as u16,
                tries: 0,
                // Stamped by the flush; until then out of the timeout scan's reach.
                deadline: self.next_scan + self.plan.timeout,
            };
            sock.tx.push(&buf[..len], self.plan.server);
            sock.queued.push((id, true));
        }
    }

    fn flush(&mut self, s: usize) {
        let sock = &mut self.socks[s];
        let queued = sock.tx.len();
        let sent = sock.tx.flush(sock.fd).unwrap_or_default();
        // Refused datagrams are left to the retransmission timer, counted.
        self.c.send_errors += (queued - sent) as u64;
        let t = Instant::now();
        for &(id, first) in &sock.queued {
            if first {
                self.c.sent += 1;
            } else {
                self.c.retransmissions += 1;
            }
            sock.slots[id as usize].deadline = t + self.plan.timeout;
        }
        sock.queued.clear();
    }

    fn expire(&mut self, now: Instant) {
        if now < self.next_scan || self.active == 0 {
            return;
        }
        self.next_scan = now + self.scan_every;
        let mut timed_out = Vec::new();
        for sock in &mut self.socks {
            for id in 0..IDS {
                let slot = &mut sock.slots[id];
                if !slot.busy || slot.deadline > now {
                    continue;
                }
                if slot.tries < self.plan.retries {
                    if sock.tx.is_full() {
                        break;
                    }
                    slot.tries += 1;
                    let bytes = &sock.bufs[id * DATAGRAM_MAX..][..slot.len as usize];
                    sock.tx.push(bytes, self.plan.server);
                    sock.queued.push((id as u8, false));
                } else {
                    self.c.timeouts += 1;
                    slot.busy = false;
                    sock.free.push_back(id as u8);
                    timed_out.push(slot.login);
                }
            }
        }
        for k in timed_out {
            self.fail(k, Failure::Timeout);
        }
    }

    /// Judges datagram `i` of socket `s`'s receive batch and moves its login on.
    fn reply(&mut self, s: usize, i: usize, t: Instant) {
        let Driver {
            socks,
            logins,
            secret,
            c,
            setup,
            creds,
            rng,
            scratch,
            ready,
            stats,
            hist,
            plan,
            ..
        } = self;
        let sock = &mut socks[s];
        let Some((data, from, truncated)) = sock.rx.get(i) else {
            return;
        };
        let packet = match Packet::parse(data) {
            Ok(p) if !truncated => p,
            _ => {
                c.malformed += 1;
                return;
            }
        };
        let id = packet.identifier();
        let slot = &mut sock.slots[id as usize];
        if !slot.busy || from != plan.server {
            c.unmatched += 1;
            return;
        }
        if verify_response(&packet, &slot.authenticator, secret).is_err() {
            c.bad_authenticator += 1;
            return;
        }
        slot.busy = false;
        sock.free.push_back(id);
        let (k, ra) = (slot.login, slot.authenticator);
        let code = packet.code();
        c.count_code(code);
        let login = &mut logins[k as usize];
        login.rounds += 1;
        let user = &creds[login.user];
        let cred = match (&user.wrong, login.wrong) {
            (Some(w), true) => w,
            _ => &user.right,
        };
        // Decided here, applied after the borrows of the packet end.
        let outcome: Result<bool, Failure> = if packet.message_authenticator_offset().is_none() {
            c.missing_message_authenticator += 1;
            Err(Failure::NoMessageAuthenticator)
        } else {
            match code {
                Code::AccessChallenge => {
                    match packet.attr(attr::STATE) {
                        Some(v) if v.len() <= STATE_MAX => {
                            login.state[..v.len()].copy_from_slice(v);
                            login.state_len = Some(v.len() as u8);
                        }
                        _ => login.state_len = None,
                    }
                    match read_eap(&packet, scratch) {
                        Err(e) => Err(e.into()),
                        Ok(eap) => match login.conv.on_request(
                            setup,
                            cred,
                            identity(setup, &user.right),
                            rng,
                            &eap,
                            &mut login.eap,
                        ) {
                            Ok(len) => {
                                login.eap_len = len;
                                ready.push_back(k);
                                Ok(false)
                            }
                            Err(e) => Err(e.into()),
                        },
                    }
                }
                Code::AccessAccept => {
                    if login.wrong {
                        c.unexpected += 1;
                    }
                    let eap = read_eap(&packet, scratch).ok();
                    match login.conv.on_accept(setup.method, eap.as_ref()) {
                        Err(e) => Err(e.into()),
                        Ok(msk) => match check_mppe(&packet, &ra, secret, msk) {
                            KeyCheck::Good => {
                                stats.ok(login.rounds, login.conv.resumed(), login.conv.tls13());
                                hist.saturating_record(latency_us(t, login.origin));
                                Ok(true)
                            }
                            bad => {
                                stats.bad_keys += 1;
                                Err(Failure::Keys(bad))
                            }
                        },
                    }
                }
                Code::AccessReject => {
                    if !login.wrong {
                        c.unexpected += 1;
                    }
                    stats.logins_rejected += 1;
                    hist.saturating_record(latency_us(t, login.origin));
                    Ok(true)
                }
                _ => {
                    c.unexpected += 1;
                    Err(Failure::UnexpectedCode(code))
                }
            }
        };
        match outcome {
            Ok(false) => {}
            Ok(true) => self.end(k),
            Err(why) => self.fail(k, why),
        }
    }

    /// Nothing to do: sleep in ppoll until a socket is readable or a timer is due.
    fn idle_wait(&self, sending: bool, start: Instant, next_progress: Instant) {
        let timers = Timers {
            next_scan: (self.active > 0).then_some(self.next_scan),
            sending: sending.then_some(Sending {
                room: !self.idle.is_empty(),
                rate: self.plan.rate,
                issued: self.issued,
                start,
                duration: self.plan.duration,
            }),
            next_progress: self.plan.progress.then_some(next_progress),
        };
        if let Some(until) = timers.until(Instant::now()) {
            wait_readable(self.socks.iter().map(|s| s.fd), until);
        }
    }
}

/// The outer identity (EAP-Response/Identity and User-Name) of `cred`'s logins.
fn identity<'a>(setup: &'a Setup, cred: &'a Credentials) -> &'a [u8] {
    match (&setup.outer_identity, setup.method) {
        (Some(outer), Method::Peap | Method::TtlsPap) => outer,
        _ => &cred.name,
    }
}

/// CPU time (user + system) of the calling thread, in seconds; 0 if the kernel will not say.
fn thread_cpu_s() -> f64 {
    // SAFETY: an all-zero rusage is a valid value; getrusage only writes into it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, exclusive rusage for the call.
    if unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) } != 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn latency_us(t: Instant, origin: Instant) -> u64 {
    (t.saturating_duration_since(origin).as_micros() as u64).max(1)
}
