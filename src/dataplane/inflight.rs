//! Requests waiting for slow work (a slow hash, a directory bind, a second factor): one entry
//! per request in a per-shard table, and the channel their jobs' results come back on.
//!
//! A request is recorded once, when the pipeline first answers `Await`; the job runs on its
//! worker (glommio's blocking pool, the backend pool, the MFA provider's runtime) and a small
//! waiter task on the shard only awaits its result and queues it in [`Completions`]. The
//! shard's completion task then takes the entry out and feeds the result to the pipeline
//! (`shard::complete`). Waiters never touch the shard.
//!
//! A held push may wait a minute and there can be tens of thousands of them, so an entry is
//! kept small: the datagram copy and a few indices; the request is parsed again from the copy
//! when the result arrives rather than kept parsed.
//!
//! Bound: an entry exists only for a request marked in progress in the reply cache, whose
//! in-progress set is bounded (`server.reply_cache_entries` per shard); past it requests are
//! dropped as `overloaded` before they get here.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use super::dedup::RequestKey;
use super::notify::Notify;
use super::runtime::Runtime;
use crate::auth::{Continuation, JobResult};

/// A job's result, on its way.
pub(super) type Waiting = Pin<Box<dyn Future<Output = JobResult>>>;

/// One waiting request.
pub(super) struct Entry {
    /// The runtime it started with (a reload does not change a decision under way).
    pub rt: Arc<Runtime>,
    /// The listener it came in on: the reply leaves from the same socket.
    pub li: usize,
    /// Also the peer (`key.peer`) the reply goes to.
    pub key: RequestKey,
    pub client_index: usize,
    pub arrived: Instant,
    /// The request as received; a boxed slice, not a `Vec`: no capacity word while it waits.
    pub datagram: Box<[u8]>,
    /// Where the pipeline picks up.
    pub then: Continuation,
}

/// The shard's waiting requests, by slot.
#[derive(Default)]
pub(super) struct InFlight {
    slots: Vec<Option<Entry>>,
    free: Vec<usize>,
    len: usize,
}

impl InFlight {
    pub fn insert(&mut self, entry: Entry) -> usize {
        self.len += 1;
        match self.free.pop() {
            Some(slot) => {
                self.slots[slot] = Some(entry);
                slot
            }
            None => {
                self.slots.push(Some(entry));
                self.slots.len() - 1
            }
        }
    }

    pub fn take(&mut self, slot: usize) -> Option<Entry> {
        let entry = self.slots.get_mut(slot)?.take()?;
        self.free.push(slot);
        self.len -= 1;
        Some(entry)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// The listener the request in `slot` came in on.
    pub fn listener_of(&self, slot: usize) -> Option<usize> {
        Some(self.slots.get(slot)?.as_ref()?.li)
    }
}

/// Results of jobs, queued by their waiters for the shard's completion task.
#[derive(Default)]
pub(super) struct Completions {
    queue: RefCell<VecDeque<(usize, JobResult)>>,
    pub notify: Notify,
}

impl Completions {
    /// Runs `waiting` to its end on this shard and queues its result for `slot`.
    pub fn wait_for(self: &Rc<Self>, slot: usize, waiting: Waiting) {
        let me = self.clone();
        glommio::spawn_local(async move {
            let result = waiting.await;
            me.queue.borrow_mut().push_back((slot, result));
            me.notify.notify();
        })
        .detach();
    }

    /// The next queued result.
    pub fn pop(&self) -> Option<(usize, JobResult)> {
        self.queue.borrow_mut().pop_front()
    }
}
