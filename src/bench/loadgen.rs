//! The send/receive loop: one thread, any number of UDP sockets, batched with sendmmsg/recvmmsg.
//!
//! Each socket owns identifiers 0..=255. A request occupies its identifier's slot until a reply
//! verifies against the slot's Request Authenticator, or it times out after its retransmissions
//! (which resend the same bytes: same identifier, same authenticator, as RFC 2865 §2.5 asks).
//! Timeouts are found by scanning the slots every `timeout / 8` (at most every 10 ms, at least
//! every 100 µs): a few hundred comparisons per scan, no per-request bookkeeping and no queue
//! that would grow with the request rate. A deadline is therefore honoured to within one scan
//! interval.

use std::collections::VecDeque;
use std::io::IsTerminal;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use socket2::{Domain, Protocol, Socket, Type};

use super::args::BenchArgs;
use super::error::BenchError;
use super::mschap::{check_accept, ReplyCheck};
use super::poll::{wait_readable, Sending, Timers, MAX_SOCKETS};
use super::report::{Counters, Report};
use super::request::{Kind, RequestFactory, REQUEST_MAX};
use crate::dataplane::batch::{RecvBatch, SendBatch};
use crate::proto::{verify_response, Code, Packet};

const IDS: usize = 256;
/// Socket buffers large enough that a full window of replies never overflows them.
const SOCKET_BUFFER: usize = 8 << 20;

#[derive(Clone, Copy)]
struct Slot {
    busy: bool,
    kind: Kind,
    expect: Code,
    authenticator: [u8; 16],
    /// What an Access-Accept must carry besides its code (MS-CHAP2-Success for v2).
    check: ReplyCheck,
    len: u16,
    to: SocketAddr,
    /// Latency origin: the first transmission, or (open loop) the time it was due, so that a
    /// loader falling behind shows up as latency instead of being hidden (coordinated omission).
    origin: Instant,
    /// Retransmissions done.
    tries: u32,
    /// When to retransmit or give up.
    deadline: Instant,
    buf: [u8; REQUEST_MAX],
}

struct Sock {
    /// Owns the descriptor `fd` refers to.
    _socket: UdpSocket,
    fd: RawFd,
    slots: Box<[Slot]>,
    /// Free identifiers, least recently used first: reusing an identifier the moment its reply
    /// arrives makes some servers (FreeRADIUS) see a "conflicting packet" against the entry they
    /// keep for duplicate detection; cycling through all 256 is what a NAS does.
    free: VecDeque<u8>,
    tx: SendBatch,
    /// Identifiers queued in `tx`, in order, to stamp their send time after the flush.
    queued: Vec<(u8, bool)>,
    rx: RecvBatch,
}

/// Validated run parameters.
struct Plan {
    window: usize,
    rate: Option<f64>,
    count: Option<u64>,
    duration: Option<Duration>,
    timeout: Duration,
    retries: u32,
    batch: usize,
    auth: SocketAddr,
    acct: SocketAddr,
    progress: bool,
}

fn bind(peer: SocketAddr) -> Result<UdpSocket, BenchError> {
    let domain = Domain::for_address(peer);
    let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    // Best effort: the kernel caps these at net.core.{r,w}mem_max unless we are privileged.
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

pub fn run(args: &BenchArgs, mut factory: RequestFactory) -> Result<Report, BenchError> {
    let sockets = args.sockets;
    if sockets == 0 || sockets > MAX_SOCKETS {
        return Err(BenchError::Invalid(format!(
            "--sockets must be 1..={MAX_SOCKETS}"
        )));
    }
    if args.window == 0 || args.window > sockets * IDS {
        return Err(BenchError::Invalid(format!(
            "--window must be 1..={} (256 identifiers per socket × {sockets} socket(s))",
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
        batch: args.batch.clamp(1, 1024),
        auth: args.server,
        acct: args.acct_addr(),
        progress: !args.quiet,
    };

    let now = Instant::now();
    let empty = Slot {
        busy: false,
        kind: Kind::Pap,
        expect: Code::AccessAccept,
        authenticator: [0; 16],
        check: ReplyCheck::None,
        len: 0,
        to: plan.auth,
        origin: now,
        tries: 0,
        deadline: now,
        buf: [0; REQUEST_MAX],
    };
    let mut socks = Vec::with_capacity(sockets);
    for _ in 0..sockets {
        let socket = bind(plan.auth)?;
        socks.push(Sock {
            fd: socket.as_raw_fd(),
            _socket: socket,
            slots: vec![empty; IDS].into_boxed_slice(),
            free: (0..=255u8).collect(),
            tx: SendBatch::new(plan.batch),
            queued: Vec::with_capacity(plan.batch),
            rx: RecvBatch::new(plan.batch),
        });
    }
    let mut lg = Loadgen {
        scan_every: (plan.timeout / 8).clamp(Duration::from_micros(100), Duration::from_millis(10)),
        next_scan: now,
        hist: Histogram::new_with_bounds(1, 3_600_000_000, 3)
            .map_err(|e| BenchError::Invalid(format!("histogram: {e}")))?,
        c: Counters::default(),
        outstanding: 0,
        issued: 0,
        plan,
        socks,
        rr: 0,
    };
    lg.run(&mut factory, args)
}

struct Loadgen {
    plan: Plan,
    socks: Vec<Sock>,
    /// Timeout scan interval and the next scan's time.
    scan_every: Duration,
    next_scan: Instant,
    hist: Histogram<u64>,
    c: Counters,
    outstanding: usize,
    /// New requests started (first transmissions).
    issued: u64,
    /// Round-robin position for new requests.
    rr: usize,
}

impl Loadgen {
    fn run(
        &mut self,
        factory: &mut RequestFactory,
        args: &BenchArgs,
    ) -> Result<Report, BenchError> {
        let start = Instant::now();
        let mut sending = true;
        let mut send_end = start;
        let mut last_reply = start;
        let mut next_progress = start + Duration::from_secs(1);
        let mut last_progress = (start, 0u64);
        let tty = std::io::stderr().is_terminal();
        let mut printed_progress = false;

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
            if !sending && self.outstanding == 0 {
                break;
            }

            // How many new requests may start now.
            let mut budget = if !sending {
                0
            } else {
                let room = self.plan.window.saturating_sub(self.outstanding) as u64;
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
            let mut progressed = false;
            // Fill one socket's batch before moving to the next: spreading a small budget thinly
            // over every socket would mean more, smaller sendmmsg calls for the same work.
            let n = self.socks.len();
            let mut blocked = 0;
            while budget > 0 && blocked < n {
                if self.start_one(self.rr, factory, start)? {
                    budget -= 1;
                    blocked = 0;
                } else {
                    self.rr = (self.rr + 1) % n;
                    blocked += 1;
                }
            }
            self.expire(now);
            for s in 0..n {
                if !self.socks[s].tx.is_empty() {
                    self.flush(s);
                    progressed = true;
                }
            }

            for s in 0..n {
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
                        self.reply(s, i, t, factory);
                    }
                    if got < self.socks[s].rx.capacity() {
                        break;
                    }
                }
            }

            if self.plan.progress && now >= next_progress {
                let dt = (now - last_progress.0).as_secs_f64();
                let rate = (self.c.replies - last_progress.1) as f64 / dt.max(1e-9);
                last_progress = (now, self.c.replies);
                eprint!(
                    "{}[{:6.1}s] sent {} replies {} ({:.0}/s) outstanding {} timeouts {} bad {}{}",
                    if tty { "\r" } else { "" },
                    (now - start).as_secs_f64(),
                    self.c.sent,
                    self.c.replies,
                    rate,
                    self.outstanding,
                    self.c.timeouts,
                    self.c.bad(),
                    if tty { "   " } else { "\n" },
                );
                printed_progress = true;
                next_progress += Duration::from_secs(1);
            }

            if !progressed {
                self.idle_wait(sending, start, next_progress);
            }
        }
        if printed_progress && tty {
            eprintln!();
        }
        let end = if self.c.replies > 0 {
            last_reply.max(send_end)
        } else {
            send_end
        };
        Ok(Report::new(
            args,
            self.plan.window,
            (end - start).as_secs_f64(),
            self.c.clone(),
            &self.hist,
        ))
    }

    /// Builds and queues one new request on socket `s`; false if it has no free identifier or
    /// its batch is full.
    fn start_one(
        &mut self,
        s: usize,
        factory: &mut RequestFactory,
        start: Instant,
    ) -> Result<bool, BenchError> {
        let sock = &mut self.socks[s];
        if sock.tx.is_full() {
            return Ok(false);
        }
        let Some(id) = sock.free.pop_front() else {
            return Ok(false);
        };
        let slot = &mut sock.slots[id as usize];
        let built = match factory.build(id, &mut slot.buf) {
            Ok(b) => b,
            Err(e) => {
                sock.free.push_back(id);
                return Err(e);
            }
        };
        slot.busy = true;
        slot.kind = built.kind;
        slot.expect = built.expect;
        slot.authenticator = built.authenticator;
        slot.check = built.check;
        slot.len = built.len as u16;
        slot.to = if built.kind.is_acct() {
            self.plan.acct
        } else {
            self.plan.auth
        };
        slot.tries = 0;
        // The flush stamps the real deadline; until then keep the timeout scan off this slot.
        slot.deadline = self.next_scan + self.plan.timeout;
        if let Some(r) = self.plan.rate {
            slot.origin = start + Duration::from_secs_f64(self.issued as f64 / r);
        }
        sock.tx.push(&slot.buf[..built.len], slot.to);
        sock.queued.push((id, true));
        self.issued += 1;
        self.outstanding += 1;
        Ok(true)
    }

    /// Sends socket `s`'s batch and stamps what went out.
    fn flush(&mut self, s: usize) {
        let sock = &mut self.socks[s];
        let queued = sock.tx.len();
        let sent = sock.tx.flush(sock.fd).unwrap_or_default();
        // Datagrams the kernel refused (buffer full) are left for the retransmission timer,
        // counted, rather than retried in a tight loop.
        self.c.send_errors += (queued - sent) as u64;
        let t = Instant::now();
        let open = self.plan.rate.is_some();
        for &(id, first) in &sock.queued {
            let slot = &mut sock.slots[id as usize];
            if first {
                self.c.sent += 1;
                if !open {
                    slot.origin = t;
                }
            } else {
                self.c.retransmissions += 1;
            }
            slot.deadline = t + self.plan.timeout;
        }
        sock.queued.clear();
    }

    /// Retransmits or times out requests whose deadline passed (at most once per scan interval).
    fn expire(&mut self, now: Instant) {
        if now < self.next_scan || self.outstanding == 0 {
            return;
        }
        self.next_scan = now + self.scan_every;
        for sock in &mut self.socks {
            for id in 0..IDS {
                let slot = &mut sock.slots[id];
                if !slot.busy || slot.deadline > now {
                    continue;
                }
                if slot.tries < self.plan.retries {
                    if sock.tx.is_full() {
                        // The rest of this socket waits for the next scan.
                        break;
                    }
                    slot.tries += 1;
                    // Not re-armed until the flush stamps it; until then it cannot expire twice
                    // because the next scan is after the flush.
                    sock.tx.push(&slot.buf[..slot.len as usize], slot.to);
                    sock.queued.push((id as u8, false));
                } else {
                    self.c.timeouts += 1;
                    slot.busy = false;
                    sock.free.push_back(id as u8);
                    self.outstanding -= 1;
                }
            }
        }
    }

    /// Judges datagram `i` of socket `s`'s receive batch.
    fn reply(&mut self, s: usize, i: usize, t: Instant, factory: &RequestFactory) {
        let sock = &mut self.socks[s];
        let Some((data, from, truncated)) = sock.rx.get(i) else {
            return;
        };
        let packet = match Packet::parse(data) {
            Ok(p) if !truncated => p,
            _ => {
                self.c.malformed += 1;
                return;
            }
        };
        let slot = &mut sock.slots[packet.identifier() as usize];
        if !slot.busy || from != slot.to {
            // A reply after its request timed out, a duplicate, or someone else's packet.
            self.c.unmatched += 1;
            return;
        }
        if verify_response(&packet, &slot.authenticator, factory.secret()).is_err() {
            // Not completed: a forged or corrupted reply must not count as an answer.
            self.c.bad_authenticator += 1;
            return;
        }
        let code = packet.code();
        self.c.count_code(code);
        if matches!(code, Code::AccessAccept | Code::AccessReject)
            && packet.message_authenticator_offset().is_none()
        {
            self.c.missing_message_authenticator += 1;
        }
        if code != slot.expect {
            self.c.unexpected += 1;
        }
        if code == Code::AccessAccept {
            let judged = check_accept(slot.check, &packet);
            self.c.bad_auth_response += u64::from(judged.bad_auth_response);
            self.c.no_mppe_keys += u64::from(judged.no_mppe_keys);
        }
        let us = t.saturating_duration_since(slot.origin).as_micros() as u64;
        self.hist.saturating_record(us.max(1));
        slot.busy = false;
        sock.free.push_back(packet.identifier());
        self.outstanding -= 1;
    }

    /// Nothing to do: sleep in ppoll until a socket is readable or the next timer is due, so a
    /// waiting loader leaves the CPU to the server when they share cores.
    fn idle_wait(&self, sending: bool, start: Instant, next_progress: Instant) {
        let timers = Timers {
            next_scan: (self.outstanding > 0).then_some(self.next_scan),
            sending: sending.then_some(Sending {
                room: self.outstanding < self.plan.window,
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
