//! Duplicate detection and the reply cache (RFC 5080 §2.2.2).
//!
//! A request is identified by (client address and port, Identifier, Request Authenticator).
//! While it is being processed it is *in progress*: copies are absorbed, never processed twice.
//! Once answered, its reply bytes are kept for the TTL so that a retransmission is answered with
//! the identical bytes.
//!
//! Memory is bounded and allocated once: answered entries live in a FIFO of fixed capacity and
//! their bytes in a ring buffer. Because every entry has the same TTL, answer order is expiry
//! order, so expiry and eviction are both "pop the oldest". Under a load heavier than the cache
//! can hold for a whole TTL, the oldest answers are evicted early and counted.

use std::collections::hash_map::Entry as MapEntry;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Looked up for every request: foldhash (randomly keyed per process) instead of SipHash, which
/// profiled at ~10% of the accounting path. Keys come only from clients that passed
/// authenticator checks.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// What identifies one request from one NAS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestKey {
    pub peer: SocketAddr,
    pub identifier: u8,
    pub authenticator: [u8; 16],
}

/// What the cache knows about a request.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup<'a> {
    /// Never seen (or forgotten): process it.
    New,
    /// Being processed: absorb this copy.
    InProgress,
    /// Already answered: send these bytes again.
    Answered(&'a [u8]),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    InProgress,
    Answered(u64),
}

#[derive(Debug)]
struct Answer {
    key: RequestKey,
    start: u32,
    len: u32,
    expires: Instant,
}

/// Why `begin` refused to track a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyInProgress;

/// Counters the cache keeps about itself.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    /// Answered entries evicted before their TTL to make room.
    pub evicted_early: u64,
    pub expired: u64,
}

pub struct ReplyCache {
    ttl: Duration,
    index: HashMap<RequestKey, Slot>,
    answers: VecDeque<Answer>,
    max_answers: usize,
    max_in_progress: usize,
    in_progress: usize,
    /// Sequence number of `answers[0]`.
    head_seq: u64,
    ring: Box<[u8]>,
    /// Where the next reply's bytes go.
    pos: usize,
    stats: CacheStats,
}

/// Ring bytes reserved per answered entry; Access-Accepts with a few attributes and Accounting-
/// Responses are well under this, and a run of larger replies just evicts earlier.
const RING_BYTES_PER_ENTRY: usize = 128;

impl ReplyCache {
    /// A cache remembering up to `max_answers` answered requests for `ttl`, and tracking up to
    /// `max_in_progress` requests in flight.
    pub fn new(ttl: Duration, max_answers: usize, max_in_progress: usize) -> ReplyCache {
        let max_answers = max_answers.max(1);
        let ring_len = (max_answers * RING_BYTES_PER_ENTRY).clamp(2 * 4096, u32::MAX as usize);
        ReplyCache {
            ttl,
            index: HashMap::with_capacity_and_hasher(
                max_answers + max_in_progress,
                Default::default(),
            ),
            answers: VecDeque::with_capacity(max_answers),
            max_answers,
            max_in_progress,
            in_progress: 0,
            head_seq: 0,
            ring: vec![0u8; ring_len].into_boxed_slice(),
            pos: 0,
            stats: CacheStats::default(),
        }
    }

    pub fn stats(&self) -> CacheStats {
        self.stats
    }

    /// Answered entries currently held.
    pub fn answered(&self) -> usize {
        self.answers.len()
    }

    pub fn in_progress(&self) -> usize {
        self.in_progress
    }

    /// What to do with a request that has `key`.
    pub fn lookup(&mut self, key: &RequestKey, now: Instant) -> Lookup<'_> {
        self.expire(now);
        match self.index.get(key) {
            None => Lookup::New,
            Some(Slot::InProgress) => Lookup::InProgress,
            Some(Slot::Answered(seq)) => {
                let a = &self.answers[(seq - self.head_seq) as usize];
                Lookup::Answered(&self.ring[a.start as usize..(a.start + a.len) as usize])
            }
        }
    }

    /// Marks `key` in progress. Call after `lookup` returned `New`.
    pub fn begin(&mut self, key: RequestKey) -> Result<(), TooManyInProgress> {
        if self.in_progress >= self.max_in_progress {
            return Err(TooManyInProgress);
        }
        match self.index.entry(key) {
            MapEntry::Occupied(_) => Ok(()),
            MapEntry::Vacant(v) => {
                v.insert(Slot::InProgress);
                self.in_progress += 1;
                Ok(())
            }
        }
    }

    /// Forgets an in-progress request that will not be answered (dropped), so that a
    /// retransmission is processed afresh.
    pub fn abandon(&mut self, key: &RequestKey) {
        if let Some(Slot::InProgress) = self.index.get(key) {
            self.index.remove(key);
            self.in_progress -= 1;
        }
    }

    /// Records the reply to `key` (in progress or not) and keeps it for the TTL.
    pub fn answer(&mut self, key: RequestKey, reply: &[u8], now: Instant) {
        if reply.len() > self.ring.len() / 2 {
            // Cannot happen for RADIUS (≤ 4096 octets, ring ≥ 8 KiB); if it did, not caching
            // only means a retransmission is processed again.
            self.abandon(&key);
            return;
        }
        if self.answers.len() == self.max_answers {
            self.evict_oldest(true);
        }
        let start = loop {
            match self.free_region(reply.len()) {
                Some(s) => break s,
                None => self.evict_oldest(true),
            }
        };
        self.ring[start..start + reply.len()].copy_from_slice(reply);
        self.pos = start + reply.len();
        let seq = self.head_seq + self.answers.len() as u64;
        self.answers.push_back(Answer {
            key,
            start: start as u32,
            len: reply.len() as u32,
            expires: now + self.ttl,
        });
        if let Some(Slot::InProgress) = self.index.insert(key, Slot::Answered(seq)) {
            self.in_progress -= 1;
        }
    }

    /// Drops answers whose TTL has passed.
    pub fn expire(&mut self, now: Instant) {
        while self.answers.front().is_some_and(|a| a.expires <= now) {
            self.evict_oldest(false);
        }
    }

    fn evict_oldest(&mut self, early: bool) {
        let Some(a) = self.answers.pop_front() else {
            self.pos = 0;
            return;
        };
        let seq = self.head_seq;
        self.head_seq += 1;
        if self.index.get(&a.key) == Some(&Slot::Answered(seq)) {
            self.index.remove(&a.key);
        }
        if early {
            self.stats.evicted_early += 1;
        } else {
            self.stats.expired += 1;
        }
        if self.answers.is_empty() {
            self.pos = 0;
        }
    }

    /// Where `len` bytes can go without overwriting a live answer, or None if the oldest must
    /// go first. Live bytes run circularly from the oldest answer's start to `pos`.
    fn free_region(&self, len: usize) -> Option<usize> {
        let cap = self.ring.len();
        let p = self.pos;
        let Some(front) = self.answers.front() else {
            return Some(if p + len <= cap { p } else { 0 });
        };
        let f = front.start as usize;
        if f < p {
            if p + len <= cap {
                Some(p)
            } else if len <= f {
                Some(0)
            } else {
                None
            }
        } else if f > p && p + len <= f {
            Some(p)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u32) -> RequestKey {
        let mut authenticator = [0u8; 16];
        authenticator[..4].copy_from_slice(&n.to_be_bytes());
        RequestKey {
            peer: "127.0.0.1:5000".parse().unwrap(),
            identifier: n as u8,
            authenticator,
        }
    }

    #[test]
    fn in_progress_then_answered_then_expired() {
        let t0 = Instant::now();
        let mut c = ReplyCache::new(Duration::from_secs(30), 16, 16);
        assert_eq!(c.lookup(&key(1), t0), Lookup::New);
        c.begin(key(1)).unwrap();
        assert_eq!(c.lookup(&key(1), t0), Lookup::InProgress);
        assert_eq!(c.in_progress(), 1);
        c.answer(key(1), b"reply-one", t0);
        assert_eq!(c.in_progress(), 0);
        assert_eq!(
            c.lookup(&key(1), t0 + Duration::from_secs(29)),
            Lookup::Answered(b"reply-one")
        );
        assert_eq!(c.lookup(&key(1), t0 + Duration::from_secs(30)), Lookup::New);
        assert_eq!(c.stats().expired, 1);
    }

    #[test]
    fn a_different_authenticator_is_a_different_request() {
        let t0 = Instant::now();
        let mut c = ReplyCache::new(Duration::from_secs(30), 16, 16);
        c.answer(key(1), b"x", t0);
        let mut other = key(1);
        other.authenticator[15] = 9;
        assert_eq!(c.lookup(&other, t0), Lookup::New);
        let mut other_port = key(1);
        other_port.peer.set_port(5001);
        assert_eq!(c.lookup(&other_port, t0), Lookup::New);
    }

    #[test]
    fn abandon_forgets() {
        let t0 = Instant::now();
        let mut c = ReplyCache::new(Duration::from_secs(30), 16, 16);
        c.begin(key(1)).unwrap();
        c.abandon(&key(1));
        assert_eq!(c.lookup(&key(1), t0), Lookup::New);
        assert_eq!(c.in_progress(), 0);
    }

    #[test]
    fn in_progress_is_bounded() {
        let mut c = ReplyCache::new(Duration::from_secs(30), 16, 2);
        c.begin(key(1)).unwrap();
        c.begin(key(2)).unwrap();
        assert_eq!(c.begin(key(3)), Err(TooManyInProgress));
    }

    #[test]
    fn capacity_evicts_oldest_first() {
        let t0 = Instant::now();
        let mut c = ReplyCache::new(Duration::from_secs(30), 4, 4);
        for i in 0..6 {
            c.answer(key(i), &[i as u8; 20], t0);
        }
        assert_eq!(c.answered(), 4);
        assert_eq!(c.stats().evicted_early, 2);
        assert_eq!(c.lookup(&key(0), t0), Lookup::New);
        assert_eq!(c.lookup(&key(1), t0), Lookup::New);
        for i in 2..6 {
            assert_eq!(c.lookup(&key(i), t0), Lookup::Answered(&[i as u8; 20][..]));
        }
    }

    /// Many replies of varying sizes through a small ring: every answer still held reads back
    /// exactly the bytes stored, across wrap-arounds.
    #[test]
    fn ring_wraps_without_corrupting_live_answers() {
        let t0 = Instant::now();
        let mut c = ReplyCache::new(Duration::from_secs(30), 64, 4);
        let ring = c.ring.len();
        let mut stored = Vec::new();
        for i in 0..2000u32 {
            let len = 20 + (i as usize * 37) % 600;
            let body: Vec<u8> = (0..len).map(|j| (i as usize + j) as u8).collect();
            c.answer(key(i), &body, t0);
            stored.push((i, body));
        }
        let mut live = 0;
        let mut live_bytes = 0;
        for (i, body) in &stored {
            match c.lookup(&key(*i), t0) {
                Lookup::Answered(b) => {
                    assert_eq!(b, &body[..], "answer {i}");
                    live += 1;
                    live_bytes += body.len();
                }
                Lookup::New => {}
                Lookup::InProgress => panic!("never begun"),
            }
        }
        assert_eq!(live, c.answered());
        assert!(live_bytes <= ring);
        // The newest answer is always kept.
        assert!(matches!(c.lookup(&key(1999), t0), Lookup::Answered(_)));
    }

    #[test]
    fn reanswered_key_survives_eviction_of_its_old_entry() {
        let t0 = Instant::now();
        let mut c = ReplyCache::new(Duration::from_secs(1), 8, 4);
        c.answer(key(1), b"old", t0);
        // Expired, then the same request arrives and is answered again later.
        let t1 = t0 + Duration::from_secs(2);
        assert_eq!(c.lookup(&key(1), t1), Lookup::New);
        c.answer(key(1), b"new", t1);
        assert_eq!(c.lookup(&key(1), t1), Lookup::Answered(b"new"));
    }
}
