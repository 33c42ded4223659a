//! A fast fake NAS-side DAS (RFC 5176) for the Disconnect/CoA fan-out benchmark: answers every
//! correctly signed Disconnect-Request with a Disconnect-ACK and every CoA-Request with a
//! CoA-ACK; anything that does not verify with the secret is counted and not answered.
//!
//! ```sh
//! cargo run --release --example fake_das -- 127.0.0.1:3799 dassecret [N]
//! ```
//!
//! Prints its counts when it receives SIGTERM or SIGINT, or after N verified requests.

use std::collections::HashSet;
use std::io::ErrorKind;
use std::net::UdpSocket;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use radshard::proto::{verify_request, Code, Packet, PacketBuilder, Secret};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    // Only an atomic store: all a signal handler may safely do here.
    STOP.store(true, Ordering::Relaxed);
}

#[derive(Default)]
struct Counts {
    received: u64,
    acked: u64,
    /// Requests seen more than once (the sender's retransmissions).
    duplicates: u64,
    bad_authenticator: u64,
    malformed: u64,
    not_a_request: u64,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(addr), Some(secret)) = (args.first(), args.get(1)) else {
        eprintln!("usage: fake_das ADDRESS:PORT SECRET [N]");
        return ExitCode::FAILURE;
    };
    let limit: Option<u64> = match args.get(2).map(|n| n.parse()) {
        None => None,
        Some(Ok(n)) => Some(n),
        Some(Err(e)) => {
            eprintln!("N must be a number: {e}");
            return ExitCode::FAILURE;
        }
    };
    let secret = match Secret::new(secret.as_bytes()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("secret: {e}");
            return ExitCode::FAILURE;
        }
    };
    let sock = match bind(addr) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot bind {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    // SAFETY: installs a handler that only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
    }
    // Wakes the loop now and then to notice a signal.
    let _ = sock.set_read_timeout(Some(Duration::from_millis(200)));
    eprintln!(
        "fake_das: listening on {}",
        sock.local_addr().map(|a| a.to_string()).unwrap_or_default()
    );
    let counts = serve(&sock, &secret, limit);
    print_counts(&counts.0, counts.1);
    ExitCode::SUCCESS
}

/// A socket with a large receive buffer: a fan-out arrives as a burst of up to
/// `max_outstanding` requests, which the default buffer would partly drop.
fn bind(addr: &str) -> std::io::Result<UdpSocket> {
    let addr: std::net::SocketAddr = addr
        .parse()
        .map_err(|e| std::io::Error::new(ErrorKind::InvalidInput, format!("{e}")))?;
    let s = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::DGRAM,
        None,
    )?;
    let _ = s.set_recv_buffer_size(8 << 20);
    s.bind(&addr.into())?;
    Ok(s.into())
}

fn serve(sock: &UdpSocket, secret: &Secret, limit: Option<u64>) -> (Counts, Duration) {
    let mut c = Counts::default();
    let mut seen: HashSet<[u8; 16]> = HashSet::new();
    let mut buf = [0u8; 4097];
    let mut out = [0u8; 4096];
    let mut first: Option<Instant> = None;
    while !STOP.load(Ordering::Relaxed) && limit.map_or(true, |n| c.acked < n) {
        let (n, from) = match sock.recv_from(&mut buf) {
            Ok(r) => r,
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) =>
            {
                continue
            }
            Err(e) => {
                eprintln!("receive: {e}");
                continue;
            }
        };
        c.received += 1;
        first.get_or_insert_with(Instant::now);
        let Ok(p) = Packet::parse(&buf[..n]) else {
            c.malformed += 1;
            continue;
        };
        let ack = match p.code() {
            Code::DisconnectRequest => Code::DisconnectAck,
            Code::CoaRequest => Code::CoaAck,
            _ => {
                c.not_a_request += 1;
                continue;
            }
        };
        let Ok(v) = verify_request(p, secret, false) else {
            c.bad_authenticator += 1;
            continue;
        };
        if !seen.insert(*p.authenticator()) {
            c.duplicates += 1;
        }
        let Ok(b) = PacketBuilder::reply(&mut out, ack, &v) else {
            continue;
        };
        if let Ok(reply) = b.finish(secret) {
            if sock.send_to(reply, from).is_ok() {
                c.acked += 1;
            }
        }
    }
    let busy = first.map_or(Duration::ZERO, |t| t.elapsed());
    (c, busy)
}

fn print_counts(c: &Counts, busy: Duration) {
    println!(
        "received {} acked {} duplicates {} bad_authenticator {} malformed {} not_a_request {} in {:.3}s",
        c.received,
        c.acked,
        c.duplicates,
        c.bad_authenticator,
        c.malformed,
        c.not_a_request,
        busy.as_secs_f64()
    );
}
