//! A request the shard answers later (see `deferred.rs`): what its task needs to answer it,
//! built once when the request is deferred. A held push may wait a minute and there can be
//! tens of thousands of them, so this is kept small: the datagram copy and a few indices; the
//! request is re-parsed from the copy when the answer arrives rather than kept parsed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use super::clients::Client;
use super::dedup::RequestKey;
use super::runtime::Runtime;
use super::shard::ShardRef;
use crate::proto::{verify_request, Packet, Verified};

/// One deferred request. Its task must end in [`Held::deliver`] (or hand the request on to
/// another task that does): the request is in progress in the duplicate cache and counted in
/// the shard's `slow_in_flight` until then.
pub(super) struct Held {
    pub(super) me: ShardRef,
    pub(super) rt: Arc<Runtime>,
    /// The listener the request came in on: the reply leaves from the same socket.
    li: usize,
    /// Also the peer (`key.peer`) the reply goes to.
    key: RequestKey,
    client_index: usize,
    /// When the request arrived (decision latency is logged from there).
    pub(super) started: Instant,
    /// The request as received; a boxed slice, not a `Vec`: no capacity word while it waits.
    datagram: Box<[u8]>,
}

impl Held {
    /// Holds a request that `me` verified with `rt` and marked in progress under `key`.
    pub(super) fn new(
        me: &ShardRef,
        rt: &Arc<Runtime>,
        li: usize,
        key: RequestKey,
        datagram: &[u8],
        client_index: usize,
        started: Instant,
    ) -> Held {
        Held {
            me: me.clone(),
            rt: rt.clone(),
            li,
            key,
            client_index,
            started,
            datagram: datagram.into(),
        }
    }

    /// The NAS the request came from.
    pub(super) fn from(&self) -> SocketAddr {
        self.key.peer
    }

    pub(super) fn client_index(&self) -> usize {
        self.client_index
    }

    /// The request re-parsed from the copy, and its client. The shard verified these same
    /// bytes with this same runtime, so `None` is not expected; the Message-Authenticator
    /// requirement was already enforced then, hence not again.
    pub(super) fn verified(&self) -> Option<(&Client, Verified<'_>)> {
        let client = self.rt.clients.get(self.client_index)?;
        let req =
            verify_request(Packet::parse(&self.datagram).ok()?, &client.secret, false).ok()?;
        Some((client, req))
    }

    /// Waits until the receive loop no longer borrows the shard. An answer that is ready at
    /// once (a cached directory result, a closed channel) lets glommio run the task right
    /// away, inside the loop that spawned it.
    pub(super) async fn shard_free(&self) {
        while self.me.try_borrow_mut().is_err() {
            YieldNow(false).await;
        }
    }

    /// Answers the request: remembers the reply for retransmissions and sends it; `None`
    /// abandons the request (no reply, so the NAS retries).
    pub(super) async fn deliver(&self, reply: Option<&[u8]>) {
        let socket = {
            let mut s = self.me.borrow_mut();
            s.slow_in_flight -= 1;
            let socket = match reply {
                Some(bytes) => {
                    s.cache.answer(self.key, bytes, Instant::now());
                    s.metrics.reply(bytes[0]);
                    if let Some(c) = s.client_metrics.get(self.client_index) {
                        c.reply(bytes[0]);
                    }
                    Some(s.listeners[self.li].socket.clone())
                }
                None => {
                    s.cache.abandon(&self.key);
                    None
                }
            };
            // The receive loop publishes the gauges after each batch; this answer came later.
            s.publish_gauges();
            socket
        };
        if let (Some(socket), Some(bytes)) = (socket, reply) {
            if socket.send_to(bytes, self.from()).await.is_err() {
                self.me.borrow().metrics.send_errors.inc();
            }
        }
    }
}

/// Yields to the executor once.
struct YieldNow(bool);

impl std::future::Future for YieldNow {
    type Output = ();
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.0 {
            return std::task::Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}
