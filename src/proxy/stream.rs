//! Home servers over a byte stream: RADIUS over TCP (RFC 6613) and RadSec (RFC 6614). One
//! task per (home server, slot) owns one connection, opened when the slot first has a packet
//! to send and opened again after it fails; the engine is unchanged, only the way a packet
//! leaves and arrives differs from UDP. A packet queued while no connection can be made is
//! lost like a datagram, and its request ends at its response window.
//!
//! A connection opened while its home server was alive is given up once the server is not
//! (a keepalive or a request went unanswered): the peer may be gone without a word, and the
//! Status-Server checks that can revive the server go over a new connection. One opened
//! while it was a zombie or dead is the probe, and is kept.
//!
//! Bounds: [`QUEUE`] packets waiting per slot (more fail as `send_failed`), one 4 KiB
//! framing buffer and one read buffer per connection.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::client::{on_reply, ProxyMetrics, Shared};
use super::engine::{HomeId, HomeSpec, HomeTransport};
use super::home::HomeState;
use crate::proto::stream::StreamDecoder;
use crate::proto::{Secret, MAX_PACKET_LEN};
use crate::radsec::radius11::{ClientEdge, EdgeError, Version};

/// Packets waiting for one connection at most.
pub const QUEUE: usize = 1024;
/// TCP connect and TLS handshake, each.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const READ_BUF: usize = 16 * 1024;

/// Runs one slot's connection until the proxy client stops.
pub(super) async fn slot(
    shared: Rc<Shared>,
    spec: HomeSpec,
    home: HomeId,
    slot: usize,
    mut rx: mpsc::Receiver<Box<[u8]>>,
) {
    let fail = |why: &'static str| ProxyMetrics::bump(&shared.metrics.failures, why);
    // A packet the last connection was given up for, to open the next with.
    let mut carried: Option<Box<[u8]>> = None;
    loop {
        // Lazily: nothing to send, no connection.
        let first = match carried.take() {
            Some(p) => p,
            None => match rx.recv().await {
                Some(p) => p,
                None => return,
            },
        };
        let tcp =
            match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(spec.address)).await {
                Ok(Ok(s)) => s,
                _ => {
                    fail("connect_failed");
                    continue;
                }
            };
        let _ = tcp.set_nodelay(true);
        match &spec.transport {
            HomeTransport::Udp => return,
            HomeTransport::Tcp => {
                carried = serve(&shared, home, slot, tcp, first, &mut rx, None).await;
            }
            HomeTransport::Tls {
                config,
                server_name,
                radius11,
                ..
            } => {
                let connector = tokio_rustls::TlsConnector::from(config.clone());
                let handshake = connector.connect(server_name.clone(), tcp);
                match tokio::time::timeout(CONNECT_TIMEOUT, handshake).await {
                    Ok(Ok(tls)) => {
                        let version = match radius11.settle(tls.get_ref().1) {
                            Ok(v) => v,
                            Err(e) => {
                                warn!(target: "radshard::proxy", home = %spec.name, error = %e,
                                    "RadSec connection refused");
                                fail("alpn_mismatch");
                                continue;
                            }
                        };
                        info!(target: "radshard::proxy", home = %spec.name, ?version,
                            "RadSec connection up");
                        let edge = (version == Version::V1_1)
                            .then(|| ClientEdge::new(Secret::clone(&spec.secret)));
                        carried = serve(&shared, home, slot, tls, first, &mut rx, edge).await;
                    }
                    Ok(Err(e)) => {
                        debug!(home = %spec.name, error = %e, "RadSec handshake failed");
                        fail("tls_handshake_failed");
                    }
                    Err(_) => fail("tls_handshake_failed"),
                }
            }
        }
        info!(target: "radshard::proxy", home = %spec.name, "home server connection closed");
    }
}

/// Writes queued packets and reads framed replies until either side fails, or until the home
/// server is found not alive on a connection opened while it was (then the packet that found
/// it is returned, for the next connection); on RADIUS/1.1 (`edge`), each packet translated
/// as it crosses.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    shared: &Shared,
    home: HomeId,
    slot: usize,
    stream: S,
    first: Box<[u8]>,
    rx: &mut mpsc::Receiver<Box<[u8]>>,
    edge: Option<ClientEdge>,
) -> Option<Box<[u8]>> {
    let alive = || shared.engine.borrow().state(home) == Some(HomeState::Alive);
    let opened_alive = alive();
    let edge = edge.map(RefCell::new);
    let untranslated = |e: EdgeError| {
        debug!(error = %e, "RADIUS/1.1 packet not translated");
        ProxyMetrics::bump(&shared.metrics.refused, "radius11_untranslatable");
    };
    let (mut rd, mut wr) = tokio::io::split(stream);
    let reader = async {
        let mut decoder = StreamDecoder::new();
        let mut buf = vec![0u8; READ_BUF];
        let mut reply_scratch = Box::new([0u8; MAX_PACKET_LEN]);
        loop {
            let n = match rd.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let mut input = &buf[..n];
            loop {
                let (consumed, got) = match decoder.decode(input) {
                    Ok(d) => {
                        let got = d.packet.is_some();
                        match (d.packet, &edge) {
                            (None, _) => {}
                            (Some(p), None) => on_reply(shared, home, slot, p),
                            (Some(p), Some(e)) => {
                                let translated = e.borrow_mut().reply(p, &mut reply_scratch);
                                match translated {
                                    Ok(r) => on_reply(shared, home, slot, r),
                                    Err(e) => untranslated(e),
                                }
                            }
                        }
                        (d.consumed, got)
                    }
                    Err(e) => {
                        // Framing lost: RFC 6613 §2.6.1, close.
                        ProxyMetrics::bump(&shared.metrics.refused, e.label());
                        return;
                    }
                };
                input = &input[consumed..];
                if !got {
                    break;
                }
            }
        }
    };
    // Each request as the home server takes it: the engine's bytes, or their RADIUS/1.1 form.
    let writer = async {
        let mut scratch = Box::new([0u8; MAX_PACKET_LEN]);
        let mut next = Some(first);
        loop {
            let packet = match next.take() {
                Some(p) => p,
                None => match rx.recv().await {
                    Some(p) => p,
                    None => return None,
                },
            };
            if opened_alive && !alive() {
                info!(target: "radshard::proxy", "home server not answering: connection given up");
                return Some(packet);
            }
            let wire = match &edge {
                None => Ok(&packet[..]),
                Some(e) => e
                    .borrow_mut()
                    .request(&packet, std::time::Instant::now(), &mut scratch),
            };
            match wire {
                Ok(w) if wr.write_all(w).await.is_err() => return None,
                Ok(_) => {}
                Err(e) => untranslated(e),
            }
        }
    };
    tokio::select! {
        _ = reader => None,
        carried = writer => carried,
    }
}
