//! RadSec and RADIUS/TCP connections on a shard: the accept loop of one stream listener and,
//! per connection,
//! a reader task and a writer task around one [`Connection`] (the sans-IO TLS and framing).
//!
//! A connection belongs to the shard that accepted it (the kernel spreads connections over
//! the shards' `SO_REUSEPORT` listeners). Each packet read goes through [`Shard::handle`],
//! the path UDP datagrams take, with the connection's peer address as the "source": the
//! reply cache, the pipeline and the accounting log work unchanged. A reply decided at once
//! goes straight back into the connection; one decided later (a directory, a home server, an
//! fsync) is flushed by the shard to [`Streams::deliver`], which queues it for the peer's
//! writer. Neither task ever blocks the shard: reads and writes are glommio's, handshake
//! steps run on the handshake workers, and every wait is bounded by the connection's
//! deadline.
//!
//! Bounds: `max_connections` per shard (more are closed at once, counted); per connection a
//! queue of [`MAX_QUEUED`] replies (more are dropped, counted as send errors: the peer is
//! not reading) and rustls's own buffer limit.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use tracing::debug;

use super::batch::SendBatch;
use super::notify::Notify;
use super::runtime::{RuntimeCell, StreamRuntime};
use super::shard::{ListenerIo, ShardRef};
use crate::auth::Now;
use crate::backend::crypto::CryptoPool;
use crate::metrics::DropReason;
use crate::metrics::{ShardMetrics, StreamClose};
use crate::proto::Secret;
use crate::proto::MAX_PACKET_LEN;
use crate::radsec::conn::{ConnError, Connection, Inbound};
use crate::radsec::radius11::{EdgeError, MaNeeds, Radius11};

/// Replies waiting for one connection's writer at most.
const MAX_QUEUED: usize = 1024;
/// Bytes read from the socket at once.
const READ_BUF: usize = 16 * 1024;
/// How long a closing connection's writer may take to send what is left.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// What the shard and a connection's writer share.
#[derive(Default)]
pub(super) struct Outbox {
    replies: RefCell<VecDeque<Box<[u8]>>>,
    notify: Notify,
    closing: Cell<bool>,
}

impl Outbox {
    fn push(&self, reply: &[u8]) -> bool {
        let mut q = self.replies.borrow_mut();
        if q.len() >= MAX_QUEUED {
            return false;
        }
        q.push_back(reply.into());
        self.notify.notify();
        true
    }
}

/// The shard's open stream connections, by listener and peer: a client may reach two of
/// our listeners from the same source port (one port per destination is all TCP needs), so
/// the peer alone does not name a connection.
#[derive(Default)]
pub(super) struct Streams {
    open: RefCell<HashMap<(usize, SocketAddr), Rc<Outbox>>>,
}

impl Streams {
    pub fn len(&self) -> usize {
        self.open.borrow().len()
    }

    /// Queues every reply in `tx` for its connection on listener `li` (one that closed
    /// meanwhile loses it, as a UDP reply to a vanished NAS would be lost).
    pub fn deliver(&self, li: usize, tx: &mut SendBatch, metrics: &ShardMetrics) {
        let open = self.open.borrow();
        tx.drain(|bytes, to| {
            if !open.get(&(li, to)).is_some_and(|o| o.push(bytes)) {
                metrics.send_errors.inc();
            }
        });
    }

    /// Asks every connection's writer to close (the shard is stopping).
    pub fn stop_all(&self) {
        for o in self.open.borrow().values() {
            o.closing.set(true);
            o.notify.notify();
        }
    }
}

/// Accepts RadSec connections on listener `li` until the shard stops.
pub(super) async fn serve(me: ShardRef, cell: Arc<RuntimeCell>, li: usize) {
    let (listener, tls) = match &me.borrow().listeners[li].io {
        ListenerIo::Tls(l) => (l.clone(), true),
        ListenerIo::Tcp(l) => (l.clone(), false),
        ListenerIo::Udp { .. } => return,
    };
    loop {
        let stream = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                debug!(error = %e, "RadSec accept failed");
                glommio::timer::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let Ok(peer) = stream.peer_addr() else {
            continue;
        };
        let admitted = {
            let mut s = me.borrow_mut();
            s.refresh(&cell);
            s.metrics.radsec_accepted.inc();
            let (runtime, client) = if tls {
                (&s.rt.radsec, s.rt.clients.lookup_tls(peer.ip()))
            } else {
                (&s.rt.tcp, s.rt.clients.lookup_tcp(peer.ip()))
            };
            admit(runtime, s.streams.len(), client)
        };
        match admitted {
            Ok((runtime, rules)) => {
                glommio::spawn_local(connection(
                    me.clone(),
                    cell.clone(),
                    li,
                    stream,
                    peer,
                    runtime,
                    rules,
                ))
                .detach();
            }
            Err(why) => {
                me.borrow().metrics.radsec_closed[why as usize].inc();
                debug!(%peer, reason = why.label(), "RadSec connection refused");
                drop(stream);
            }
        }
    }
}

/// What a connection keeps of its client entry (as it was when the connection opened).
struct PeerRules {
    /// Certificates accepted (SHA-256); empty: any the CA signed.
    fingerprints: Vec<[u8; 32]>,
    /// What a RADIUS/1.1 edge signs the translated packets with.
    secret: Secret,
    /// When its Access-Requests must carry a Message-Authenticator (the edge adds one).
    ma: MaNeeds,
}

/// Whether a new connection is served: the limits (open connections of both kinds count),
/// and a client of the listener's transport for its address.
fn admit(
    runtime: &Option<Arc<StreamRuntime>>,
    open: usize,
    client: Option<&crate::clients::Client>,
) -> Result<(Arc<StreamRuntime>, PeerRules), StreamClose> {
    let runtime = runtime.clone().ok_or(StreamClose::Stopped)?;
    if open >= runtime.max_connections {
        return Err(StreamClose::ConnectionLimit);
    }
    let client = client.ok_or(StreamClose::UnknownClient)?;
    let rules = PeerRules {
        fingerprints: client.fingerprints.clone(),
        secret: client.secret.clone(),
        ma: MaNeeds {
            always: client.require_message_authenticator,
            with_proxy_state: client.limit_proxy_state,
        },
    };
    Ok((runtime, rules))
}

/// Serves one connection until it closes; its outbox is registered meanwhile.
async fn connection(
    me: ShardRef,
    cell: Arc<RuntimeCell>,
    li: usize,
    stream: TcpStream,
    peer: SocketAddr,
    runtime: Arc<StreamRuntime>,
    rules: PeerRules,
) {
    let now = Instant::now();
    let made = match &runtime.tls {
        Some(tls) => Connection::new(
            tls.clone(),
            now,
            runtime.handshake_timeout,
            runtime.idle_timeout,
        ),
        None => Ok(Connection::plain(now, runtime.idle_timeout)),
    };
    let conn = match made {
        Ok(c) => Rc::new(RefCell::new(Some(Box::new(c)))),
        Err(_) => {
            me.borrow().metrics.radsec_closed[StreamClose::TlsError as usize].inc();
            return;
        }
    };
    let _ = stream.set_nodelay(true);
    let outbox = Rc::new(Outbox::default());
    {
        let s = me.borrow();
        let mut open = s.streams.open.borrow_mut();
        open.insert((li, peer), outbox.clone());
        s.metrics.radsec_open.set(open.len() as u64);
    }
    let (mut reader, writer) = futures_lite::io::split(stream);
    let writing = glommio::spawn_local(write_loop(conn.clone(), outbox.clone(), writer));
    let crypto = me.borrow().rt.crypto.clone();
    let why = read_loop(
        &me,
        &cell,
        li,
        peer,
        &conn,
        &outbox,
        &mut reader,
        &rules,
        runtime.radius11,
        crypto.as_deref(),
    )
    .await;
    debug!(%peer, reason = why.label(), "RadSec connection closed");
    // A TLS failure may have queued an alert; a clean end sends close_notify.
    if why != StreamClose::PeerClosed {
        if let Some(c) = conn.borrow_mut().as_mut() {
            c.close();
        }
    }
    outbox.closing.set(true);
    outbox.notify.notify();
    let _ = glommio::timer::timeout(CLOSE_GRACE, async {
        writing.await;
        Ok(())
    })
    .await;
    let s = me.borrow();
    let mut open = s.streams.open.borrow_mut();
    open.remove(&(li, peer));
    s.metrics.radsec_open.set(open.len() as u64);
    drop(open);
    s.metrics.radsec_closed[why as usize].inc();
}

/// Reads, decrypts, frames and hands each packet to the shard; returns why it stopped.
#[allow(clippy::too_many_arguments)]
async fn read_loop(
    me: &ShardRef,
    cell: &RuntimeCell,
    li: usize,
    peer: SocketAddr,
    conn: &Shared,
    outbox: &Outbox,
    reader: &mut (impl futures_lite::AsyncRead + Unpin),
    rules: &PeerRules,
    radius11: Radius11,
    crypto: Option<&CryptoPool>,
) -> StreamClose {
    let mut buf = vec![0u8; READ_BUF];
    let mut packet = [0u8; MAX_PACKET_LEN];
    // Replies decided at once, taken straight back into this connection.
    let mut tx = SendBatch::new(8);
    let mut verified = false;
    loop {
        let (deadline, handshaking) = match conn.borrow().as_deref() {
            Some(c) => (c.deadline(), c.is_handshaking()),
            None => return StreamClose::TlsError,
        };
        let left = deadline.saturating_duration_since(Instant::now());
        let timed_out = if handshaking {
            StreamClose::HandshakeTimeout
        } else {
            StreamClose::IdleTimeout
        };
        if left.is_zero() {
            return timed_out;
        }
        let read = glommio::timer::timeout(left, async {
            reader
                .read(&mut buf)
                .await
                .map_err(glommio::GlommioError::from)
        })
        .await;
        let n = match read {
            Ok(0) => return StreamClose::PeerClosed,
            Ok(n) => n,
            Err(glommio::GlommioError::TimedOut(_)) => return timed_out,
            Err(_) => return StreamClose::PeerClosed,
        };
        if let Err(e) = receive(conn, &buf[..n], handshaking, crypto).await {
            outbox.notify.notify();
            return e.reason();
        }
        if !verified {
            let checked = match conn.borrow_mut().as_deref_mut() {
                Some(c) if c.is_handshaking() => None,
                Some(c) => {
                    Some(c.established(&rules.fingerprints, &rules.secret, rules.ma, radius11))
                }
                None => Some(Err(ConnError::Closed)),
            };
            match checked {
                None => {}
                Some(Ok(version)) => {
                    verified = true;
                    if version == crate::radsec::radius11::Version::V1_1 {
                        me.borrow().metrics.radsec_radius11.inc();
                    }
                    debug!(%peer, ?version, "RadSec connection established");
                }
                Some(Err(e)) => {
                    // An ALPN refusal: tell the peer before closing (RFC 7301 §3.2 has the
                    // alert for a TLS library's own refusal; here the handshake is over).
                    outbox.notify.notify();
                    return e.reason();
                }
            }
        }
        // One reading of the clocks and of the runtime cell per read, as per UDP batch.
        let now = Now::system();
        me.borrow_mut().refresh(cell);
        loop {
            let next = match conn.borrow_mut().as_deref_mut() {
                Some(c) => c.next_packet(&mut packet, now.instant).map(|p| {
                    p.map(|i| match i {
                        Inbound::Packet(p) => Ok(p.len()),
                        Inbound::Dropped(e) => Err(e),
                    })
                }),
                None => Err(ConnError::Closed),
            };
            let len = match next {
                Ok(Some(Ok(len))) => len,
                Ok(Some(Err(e))) => {
                    let s = me.borrow();
                    s.metrics.drops[edge_drop_reason(&e) as usize].inc();
                    debug!(%peer, error = %e, "RADIUS/1.1 packet dropped");
                    continue;
                }
                Ok(None) => break,
                Err(e) => {
                    outbox.notify.notify();
                    return e.reason();
                }
            };
            me.borrow_mut()
                .handle(li, &packet[..len], peer, false, now, &mut tx);
            let mut c = conn.borrow_mut();
            let Some(c) = c.as_deref_mut() else {
                return StreamClose::TlsError;
            };
            let mut backlog = false;
            tx.drain(|reply, _| backlog |= c.send(reply).is_err());
            if backlog {
                return StreamClose::Backlog;
            }
        }
        me.borrow().publish_gauges();
        // Handshake messages or replies to write.
        outbox.notify.notify();
        glommio::yield_if_needed().await;
    }
}

/// How a RADIUS/1.1 packet that could not be translated is counted: as the RADIUS/1.0
/// datagram it would have been.
fn edge_drop_reason(e: &EdgeError) -> DropReason {
    match e {
        EdgeError::Decode(d) => super::shard::decode_drop(*d),
        EdgeError::WrongDirection(_) | EdgeError::Unmatched => DropReason::NotARequest,
        EdgeError::Outstanding => DropReason::Overloaded,
        EdgeError::Transcribe(_) => DropReason::MalformedAttribute,
    }
}

/// Sends what the connection wants written: queued replies first into TLS, then TLS bytes
/// to the socket; ends after closing, or when the socket fails.
async fn write_loop(
    conn: Rc<Shared>,
    outbox: Rc<Outbox>,
    mut writer: impl futures_lite::AsyncWrite + Unpin,
) {
    let mut out = Vec::with_capacity(READ_BUF);
    loop {
        outbox.notify.wait().await;
        // Away on a handshake worker: the reader wakes us again when it is back.
        if let Some(c) = conn.borrow_mut().as_deref_mut() {
            let mut q = outbox.replies.borrow_mut();
            while let Some(r) = q.pop_front() {
                if c.send(&r).is_err() {
                    break;
                }
            }
            c.write_tls(&mut out);
        }
        if !out.is_empty() {
            if writer.write_all(&out).await.is_err() || writer.flush().await.is_err() {
                return;
            }
            out.clear();
        }
        if outbox.closing.get() {
            let _ = writer.close().await;
            return;
        }
    }
}

/// A connection the reader and the writer share; `None` while a handshake step runs on a
/// handshake worker.
type Shared = RefCell<Option<Box<Connection>>>;

/// Feeds `bytes` to the connection. A handshake step (certificate checks, the server's
/// signature: public-key crypto) runs on the handshake workers when there are any, so a burst
/// of new connections takes no time from the shard; after the handshake, records are only
/// symmetric crypto and are decrypted here.
async fn receive(
    conn: &Shared,
    bytes: &[u8],
    handshaking: bool,
    crypto: Option<&CryptoPool>,
) -> Result<(), ConnError> {
    let Some(pool) = crypto.filter(|_| handshaking) else {
        let mut c = conn.borrow_mut();
        return c.as_deref_mut().ok_or(ConnError::Closed)?.receive(bytes);
    };
    let mut c = conn.borrow_mut().take().ok_or(ConnError::Closed)?;
    let data = bytes.to_vec();
    let rx = pool
        .submit(move || {
            let r = c.receive(&data);
            (c, r)
        })
        .ok_or(ConnError::Overloaded)?;
    let (c, r) = rx.await.map_err(|_| ConnError::Closed)?;
    *conn.borrow_mut() = Some(c);
    r
}
