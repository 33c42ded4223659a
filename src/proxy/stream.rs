//! Home servers over a byte stream: RADIUS over TCP (RFC 6613) and RadSec (RFC 6614). One
//! task per (home server, slot) owns one connection, opened when the slot first has a packet
//! to send and opened again after it fails; the engine is unchanged, only the way a packet
//! leaves and arrives differs from UDP. A packet queued while no connection can be made is
//! lost like a datagram, and its request ends at its response window.
//!
//! Bounds: [`QUEUE`] packets waiting per slot (more fail as `send_failed`), one 4 KiB
//! framing buffer and one read buffer per connection.

use std::rc::Rc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tracing::{debug, info};

use super::client::{on_reply, ProxyMetrics, Shared};
use super::engine::{HomeId, HomeSpec, HomeTransport};
use crate::proto::stream::StreamDecoder;

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
    loop {
        // Lazily: nothing to send, no connection.
        let Some(first) = rx.recv().await else {
            return;
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
            HomeTransport::Tcp => serve(&shared, home, slot, tcp, first, &mut rx).await,
            HomeTransport::Tls {
                config,
                server_name,
                ..
            } => {
                let connector = tokio_rustls::TlsConnector::from(config.clone());
                let handshake = connector.connect(server_name.clone(), tcp);
                match tokio::time::timeout(CONNECT_TIMEOUT, handshake).await {
                    Ok(Ok(tls)) => {
                        info!(target: "radshard::proxy", home = %spec.name, "RadSec connection up");
                        serve(&shared, home, slot, tls, first, &mut rx).await;
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

/// Writes queued packets and reads framed replies until either side fails.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    shared: &Shared,
    home: HomeId,
    slot: usize,
    stream: S,
    first: Box<[u8]>,
    rx: &mut mpsc::Receiver<Box<[u8]>>,
) {
    let (mut rd, mut wr) = tokio::io::split(stream);
    if wr.write_all(&first).await.is_err() {
        return;
    }
    let reader = async {
        let mut decoder = StreamDecoder::new();
        let mut buf = vec![0u8; READ_BUF];
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
                        if let Some(p) = d.packet {
                            on_reply(shared, home, slot, p);
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
    let writer = async {
        while let Some(b) = rx.recv().await {
            if wr.write_all(&b).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        _ = reader => {}
        _ = writer => {}
    }
}
