//! Free loopback ports for the peers a test starts.
//!
//! A port the kernel hands out for `bind(0)` lies in the ephemeral range
//! (net.ipv4.ip_local_port_range, 32768–60999 by default), and releasing it before the peer
//! binds leaves a window in which any client socket of a concurrent test — radclient,
//! eapol_test, our own RadClient — may be given the same port: FreeRADIUS then exits with
//! "Address already in use". So ports come from below that range, where the kernel never
//! assigns one by itself, each handed out once per test process (a counter from an offset
//! drawn from the pid, so two test binaries seldom start at the same place), and only when
//! both UDP and TCP can bind it on 127.0.0.1 right now.

#![allow(dead_code)]

use std::net::{TcpListener, UdpSocket};
use std::sync::atomic::{AtomicU32, Ordering};

/// The range ports are drawn from: above the well-known and common service ports, below the
/// default ephemeral range.
const FIRST: u32 = 20_000;
const LAST: u32 = 32_000;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A loopback port nothing is bound to (UDP or TCP), not handed out before by this process.
pub fn free_port() -> u16 {
    let span = LAST - FIRST;
    let start = std::process::id().wrapping_mul(2_654_435_761) % span;
    for _ in 0..span {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (FIRST + (start + n) % span) as u16;
        let udp = UdpSocket::bind(("127.0.0.1", port)).is_ok();
        if udp && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {FIRST}..{LAST}");
}

/// A free loopback UDP port (see [`free_port`]).
pub fn free_udp_port() -> u16 {
    free_port()
}

/// A free loopback TCP port (see [`free_port`]); also what a test uses for "nothing listens".
pub fn free_tcp_port() -> u16 {
    free_port()
}
