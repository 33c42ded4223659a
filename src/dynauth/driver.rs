//! The thin I/O around [`Core`]: a few UDP sockets on the control runtime, one receive task
//! per socket and one task that sends what the core wants sent, fires its timers and hands
//! outcomes to the waiting callers. Nothing here runs on a shard.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::{oneshot, Notify};

use super::client::{Core, Transmit};
use super::metrics::DynAuthMetrics;
use super::outcome::DasOutcome;
use super::packet::Kind;
use crate::proto::MAX_PACKET_LEN;

/// What a finished request hands back to its caller.
pub(crate) type Waiter = oneshot::Sender<DasOutcome>;
type Done = (Waiter, Kind, DasOutcome);

/// Shared by the dispatcher's callers (who submit) and its tasks (who drive).
pub(crate) struct Shared {
    core: Mutex<Core<Waiter>>,
    /// Wakes the driver: something was submitted or answered.
    pub(crate) wake: Notify,
    pub(crate) metrics: DynAuthMetrics,
    stopped: AtomicBool,
}

impl Shared {
    pub(crate) fn new(core: Core<Waiter>) -> Shared {
        Shared {
            core: Mutex::new(core),
            wake: Notify::new(),
            metrics: DynAuthMetrics::default(),
            stopped: AtomicBool::new(false),
        }
    }

    /// The core, held only for a table operation (never across an await).
    pub(crate) fn core(&self) -> MutexGuard<'_, Core<Waiter>> {
        // A panic under the lock leaves a table whose entries are each still consistent.
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
        self.wake.notify_one();
    }

    /// What the core has ready, taken under one lock; the gauges are refreshed with it.
    fn drain(&self) -> (Vec<Transmit>, Vec<Done>) {
        let mut core = self.core();
        core.on_timer(Instant::now());
        let transmits: Vec<Transmit> = std::iter::from_fn(|| core.poll_transmit()).collect();
        let done: Vec<Done> = std::iter::from_fn(|| core.poll_done()).collect();
        self.metrics
            .in_flight
            .store(core.in_flight() as u64, Ordering::Relaxed);
        self.metrics
            .queued
            .store(core.queued() as u64, Ordering::Relaxed);
        (transmits, done)
    }
}

/// One of the sender's sockets: dual-stack where the host allows, so a DAS may be IPv4 or
/// IPv6.
pub(crate) struct Sock {
    udp: UdpSocket,
    v6: bool,
}

impl Sock {
    /// `addr` as this socket's family writes it (IPv4 as v4-mapped on a dual-stack socket).
    fn wire(&self, addr: SocketAddr) -> SocketAddr {
        match addr {
            SocketAddr::V4(v4) if self.v6 => {
                SocketAddrV6::new(v4.ip().to_ipv6_mapped(), v4.port(), 0, 0).into()
            }
            a => a,
        }
    }
}

/// A v4-mapped source is the IPv4 address it maps, as the core knows the DAS.
fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => addr,
        },
        a => a,
    }
}

/// Binds `n` sockets on ephemeral ports, from `source` if given. Must run inside the
/// runtime's context (tokio registers the sockets with its reactor).
pub(crate) fn bind(n: usize, source: Option<IpAddr>) -> io::Result<Vec<Sock>> {
    (0..n).map(|_| bind_one(source)).collect()
}

fn bind_one(source: Option<IpAddr>) -> io::Result<Sock> {
    let (socket, v6) = match source {
        Some(ip) => (open(SocketAddr::new(ip, 0), false)?, ip.is_ipv6()),
        None => match open(SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0), true) {
            Ok(s) => (s, true),
            // No IPv6 on this host: IPv4 DASes only.
            Err(_) => (
                open(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0), false)?,
                false,
            ),
        },
    };
    let udp = UdpSocket::from_std(socket.into())?;
    Ok(Sock { udp, v6 })
}

fn open(addr: SocketAddr, dual_stack: bool) -> io::Result<Socket> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if dual_stack {
        s.set_only_v6(false)?;
    }
    // A fan-out's answers arrive together: room for a socket's 256 of them at once.
    let _ = s.set_recv_buffer_size(1 << 20);
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    Ok(s)
}

/// Sends, retransmits, times out and completes, until the dispatcher stops.
pub(crate) async fn drive(shared: Arc<Shared>, sockets: Arc<Vec<Sock>>) {
    loop {
        if shared.stopped.load(Ordering::Relaxed) {
            return;
        }
        loop {
            let (transmits, done) = shared.drain();
            if transmits.is_empty() && done.is_empty() {
                break;
            }
            for t in transmits {
                send(&shared, &sockets, t).await;
            }
            for (waiter, kind, outcome) in done {
                shared.metrics.outcome(kind, &outcome);
                // The caller may have given up waiting (an API client that went away).
                let _ = waiter.send(outcome);
            }
        }
        let deadline = shared.core().next_deadline();
        match deadline {
            Some(d) => {
                tokio::select! {
                    _ = shared.wake.notified() => {}
                    _ = tokio::time::sleep_until(tokio::time::Instant::from_std(d)) => {}
                }
            }
            None => shared.wake.notified().await,
        }
    }
}

async fn send(shared: &Shared, sockets: &[Sock], t: Transmit) {
    let Some(sock) = sockets.get(t.socket) else {
        shared.core().send_failed(t.key, Instant::now());
        return;
    };
    if t.attempt > 1 {
        shared.metrics.retransmission(t.kind);
    }
    if let Err(e) = sock.udp.send_to(&t.bytes, sock.wire(t.to)).await {
        if unroutable(&e) {
            tracing::warn!(das = %t.to, error = %e, "dynauth: cannot send to the DAS");
            shared.core().send_failed(t.key, Instant::now());
        } else {
            // Transient (no buffer space): the retransmission timer tries again.
            tracing::debug!(das = %t.to, error = %e, "dynauth: send failed; will retransmit");
        }
    }
}

/// Errors that no retransmission will cure.
fn unroutable(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(
            libc::ENETUNREACH
                | libc::EHOSTUNREACH
                | libc::EADDRNOTAVAIL
                | libc::EAFNOSUPPORT
                | libc::EINVAL
        )
    )
}

/// Reads answers on socket `index` and gives them to the core.
pub(crate) async fn receive(shared: Arc<Shared>, sockets: Arc<Vec<Sock>>, index: usize) {
    let Some(sock) = sockets.get(index) else {
        return;
    };
    // One octet more than a packet may have, so an oversized datagram is seen as one.
    let mut buf = vec![0u8; MAX_PACKET_LEN + 1];
    loop {
        let (n, from) = match sock.udp.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(e) => {
                // ICMP errors surface here on some systems; they say nothing about a request.
                tracing::debug!(error = %e, "dynauth: receive error");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let datagram = buf.get(..n).unwrap_or_default();
        let result = shared
            .core()
            .on_datagram(index, canonical(from), datagram, Instant::now());
        match result {
            Ok(_) => shared.wake.notify_one(),
            Err(why) => {
                shared.metrics.dropped(&why);
                tracing::debug!(from = %from, reason = why.label(), "dynauth: answer dropped");
            }
        }
    }
}
