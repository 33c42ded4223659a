//! A shard's accounting batch: the records waiting for the next group commit and the
//! Accounting-Responses to release once they are durable (see [`crate::accounting::log`]).

use std::net::SocketAddr;

use super::dedup::RequestKey;

/// An Accounting-Response waiting for its record to be durable.
#[derive(Debug, Clone, Copy)]
pub struct PendingReply {
    pub key: RequestKey,
    /// Which of the shard's listeners the request came in on (the reply leaves by it).
    pub listener: usize,
    /// The client's index in the runtime's table, for per-client counters.
    pub client: usize,
    pub to: SocketAddr,
    start: u32,
    len: u32,
}

/// Records and replies accumulated since the last commit.
#[derive(Default)]
pub struct Batch {
    pub lines: Vec<u8>,
    pub records: usize,
    pub replies: Vec<PendingReply>,
    reply_bytes: Vec<u8>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// Queues one record (written by `write_line`) and the reply to release once it is durable.
    pub fn push(
        &mut self,
        write_line: impl FnOnce(&mut Vec<u8>),
        reply: &[u8],
        key: RequestKey,
        (listener, client): (usize, usize),
        to: SocketAddr,
    ) {
        write_line(&mut self.lines);
        self.records += 1;
        let start = self.reply_bytes.len() as u32;
        self.reply_bytes.extend_from_slice(reply);
        self.replies.push(PendingReply {
            key,
            listener,
            client,
            to,
            start,
            len: reply.len() as u32,
        });
    }

    pub fn reply_bytes(&self, r: &PendingReply) -> &[u8] {
        &self.reply_bytes[r.start as usize..(r.start + r.len) as usize]
    }

    /// Empties the batch, keeping the reply buffers' capacity for reuse.
    pub fn clear(&mut self) {
        self.lines.clear();
        self.records = 0;
        self.replies.clear();
        self.reply_bytes.clear();
    }
}
