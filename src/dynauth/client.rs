//! The sender's sans-IO core: which requests are in flight on which socket under which
//! Identifier, when each is retransmitted or given up, and which answer completes which.
//!
//! Nothing here touches a socket or reads a clock: the driver feeds it submissions, datagrams
//! and the time, and drains what it wants sent ([`Core::poll_transmit`]) and what is finished
//! ([`Core::poll_done`]). Every table is bounded: `max_outstanding` in flight (at most 256 per
//! socket: one Identifier octet), `max_queued` waiting, the rest refused as overloaded.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::outcome::{DasOutcome, DasResult};
use super::packet::{read_answer, Draft, Kind, ReplyError};

/// The timing and bounds the core works with (from `[dynauth]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub sockets: usize,
    pub timeout: Duration,
    pub retries: u32,
    pub max_outstanding: usize,
    pub max_queued: usize,
}

/// One datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub socket: usize,
    pub to: SocketAddr,
    pub bytes: Vec<u8>,
    /// 1 for the first try, then 2, 3, ...: the driver counts retransmissions by it.
    pub attempt: u32,
    pub kind: Kind,
    /// Which request this is, for [`Core::send_failed`].
    pub key: Key,
}

/// Names one request in flight: its slot (socket × 256 + Identifier) and a generation that
/// tells it from an earlier request in the same slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    slot: u32,
    generation: u64,
}

/// What [`Core::submit`] did with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Submitted {
    Sent,
    Queued,
    /// Refused; its outcome (overloaded) is in [`Core::poll_done`].
    Refused,
}

/// Why a datagram completed nothing.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    #[error("shorter than a RADIUS header")]
    Short,
    #[error("no request is in flight with its socket and Identifier")]
    Unmatched,
    #[error("not from the address the request went to")]
    WrongSource,
    #[error("{0}")]
    Reply(#[from] ReplyError),
}

impl Dropped {
    pub const ALL_LABELS: [&'static str; 5] = [
        "malformed",
        "unmatched",
        "wrong_source",
        "wrong_code",
        "bad_authenticator",
    ];

    pub const fn label(&self) -> &'static str {
        match self {
            Dropped::Short => "malformed",
            Dropped::Unmatched => "unmatched",
            Dropped::WrongSource => "wrong_source",
            Dropped::Reply(e) => e.label(),
        }
    }
}

struct Entry<T> {
    token: T,
    draft: Draft,
    bytes: Vec<u8>,
    attempts: u32,
    generation: u64,
}

/// The in-flight table, the queue and the retransmission timers.
pub struct Core<T> {
    limits: Limits,
    /// Indexed by slot; `None` when free.
    slots: Vec<Option<Entry<T>>>,
    /// Free slots, least recently used first, so a late answer to a finished request rarely
    /// lands on a new one under the same Identifier (and would not verify if it did).
    free: VecDeque<u32>,
    in_flight: usize,
    queue: VecDeque<(Draft, T)>,
    /// Deadlines; an entry whose generation no longer holds its slot is stale and skipped.
    timers: BinaryHeap<Reverse<(Instant, Key)>>,
    transmits: VecDeque<Transmit>,
    done: VecDeque<(T, Kind, DasOutcome)>,
    next_generation: u64,
}

impl<T> Core<T> {
    pub fn new(limits: Limits) -> Core<T> {
        let sockets = limits.sockets.max(1);
        let slots = sockets * 256;
        // Identifier-major order spreads consecutive requests over the sockets.
        let free = (0..256u32)
            .flat_map(|id| (0..sockets as u32).map(move |s| s * 256 + id))
            .collect();
        Core {
            limits: Limits { sockets, ..limits },
            slots: (0..slots).map(|_| None).collect(),
            free,
            in_flight: 0,
            queue: VecDeque::new(),
            timers: BinaryHeap::new(),
            transmits: VecDeque::new(),
            done: VecDeque::new(),
            next_generation: 0,
        }
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Sends `draft` now if a slot is free, else queues it, else refuses it.
    pub fn submit(&mut self, draft: Draft, token: T, now: Instant) -> Submitted {
        if self.queue.is_empty() && self.can_start() {
            self.start(draft, token, now);
            return Submitted::Sent;
        }
        if self.queue.len() < self.limits.max_queued {
            self.queue.push_back((draft, token));
            return Submitted::Queued;
        }
        let das = Some(draft.to);
        self.done.push_back((
            token,
            draft.kind,
            DasOutcome::unsent(DasResult::Overloaded, das),
        ));
        Submitted::Refused
    }

    fn can_start(&self) -> bool {
        self.in_flight < self.limits.max_outstanding && !self.free.is_empty()
    }

    fn start(&mut self, draft: Draft, token: T, now: Instant) {
        let Some(slot) = self.free.pop_front() else {
            // can_start was checked; keep the request rather than lose it.
            self.queue.push_front((draft, token));
            return;
        };
        let id = (slot % 256) as u8;
        let bytes = match draft.sign(id) {
            Ok(b) => b,
            Err(_) => {
                // Drafts are test-signed when made, so this is not expected; report it.
                self.free.push_back(slot);
                let das = Some(draft.to);
                self.done.push_back((
                    token,
                    draft.kind,
                    DasOutcome::unsent(DasResult::Invalid, das),
                ));
                return;
            }
        };
        let generation = self.next_generation;
        self.next_generation += 1;
        let key = Key { slot, generation };
        self.transmits.push_back(Transmit {
            socket: (slot / 256) as usize,
            to: draft.to,
            bytes: bytes.clone(),
            attempt: 1,
            kind: draft.kind,
            key,
        });
        self.timers.push(Reverse((now + self.limits.timeout, key)));
        if let Some(s) = self.slots.get_mut(slot as usize) {
            *s = Some(Entry {
                token,
                draft,
                bytes,
                attempts: 1,
                generation,
            });
        }
        self.in_flight += 1;
    }

    /// How long try `attempt` (1-based) waits: `timeout * 2^(attempt-1)`.
    pub fn wait_for(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(16);
        self.limits.timeout.saturating_mul(1 << doublings)
    }

    /// The next moment [`Core::on_timer`] has work (possibly a stale timer: harmless).
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((t, _))| *t)
    }

    /// Retransmits what waited long enough and gives up on what has no tries left.
    pub fn on_timer(&mut self, now: Instant) {
        while let Some(&Reverse((deadline, key))) = self.timers.peek() {
            if deadline > now {
                break;
            }
            self.timers.pop();
            let retries = self.limits.retries;
            let Some(entry) = self.entry_mut(key) else {
                continue;
            };
            if entry.attempts <= retries {
                entry.attempts += 1;
                let attempt = entry.attempts;
                let t = Transmit {
                    socket: (key.slot / 256) as usize,
                    to: entry.draft.to,
                    bytes: entry.bytes.clone(),
                    attempt,
                    kind: entry.draft.kind,
                    key,
                };
                self.transmits.push_back(t);
                let wait = self.wait_for(attempt);
                self.timers.push(Reverse((now + wait, key)));
            } else {
                self.finish(key, DasResult::Timeout, None, now);
            }
        }
    }

    fn entry_mut(&mut self, key: Key) -> Option<&mut Entry<T>> {
        self.slots
            .get_mut(key.slot as usize)?
            .as_mut()
            .filter(|e| e.generation == key.generation)
    }

    /// Frees the slot of `key`, reports its outcome and starts the next queued request.
    fn finish(
        &mut self,
        key: Key,
        result: DasResult,
        error_cause: Option<super::ErrorCause>,
        now: Instant,
    ) {
        let Some(cell) = self.slots.get_mut(key.slot as usize) else {
            return;
        };
        if cell.as_ref().map(|e| e.generation) != Some(key.generation) {
            return;
        }
        let Some(entry) = cell.take() else {
            return;
        };
        self.in_flight -= 1;
        self.free.push_back(key.slot);
        let outcome = DasOutcome {
            result,
            error_cause,
            das: Some(entry.draft.to),
            attempts: entry.attempts,
        };
        self.done
            .push_back((entry.token, entry.draft.kind, outcome));
        self.start_queued(now);
    }

    fn start_queued(&mut self, now: Instant) {
        while self.can_start() {
            let Some((draft, token)) = self.queue.pop_front() else {
                break;
            };
            self.start(draft, token, now);
        }
    }

    /// A datagram from `from` on `socket`: completes the request it answers if it verifies.
    /// Anything else is dropped (and the request keeps waiting for a real answer).
    pub fn on_datagram(
        &mut self,
        socket: usize,
        from: SocketAddr,
        datagram: &[u8],
        now: Instant,
    ) -> Result<(Kind, DasResult), Dropped> {
        let id = *datagram.get(1).ok_or(Dropped::Short)?;
        if datagram.len() < crate::proto::HEADER_LEN {
            return Err(Dropped::Short);
        }
        let slot = socket
            .checked_mul(256)
            .and_then(|s| s.checked_add(usize::from(id)))
            .ok_or(Dropped::Unmatched)?;
        let entry = self
            .slots
            .get(slot)
            .and_then(Option::as_ref)
            .ok_or(Dropped::Unmatched)?;
        if from != entry.draft.to {
            return Err(Dropped::WrongSource);
        }
        let kind = entry.draft.kind;
        let answer = read_answer(kind, &entry.bytes, datagram, &entry.draft.secret)?;
        let key = Key {
            slot: slot as u32,
            generation: entry.generation,
        };
        let result = if answer.ack {
            DasResult::Ack
        } else {
            DasResult::Nak
        };
        self.finish(key, result, answer.error_cause, now);
        Ok((kind, result))
    }

    /// The socket refused to send `key`'s datagram (no route, wrong address family): the
    /// request ends now rather than waiting for answers that cannot come.
    pub fn send_failed(&mut self, key: Key, now: Instant) {
        self.finish(key, DasResult::Unroutable, None, now);
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_done(&mut self) -> Option<(T, Kind, DasOutcome)> {
        self.done.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dynauth::packet::tests::{answer, draft, secret};
    use crate::dynauth::ErrorCause;
    use crate::proto::Code;

    fn limits(sockets: usize, max_outstanding: usize, max_queued: usize) -> Limits {
        Limits {
            sockets,
            timeout: Duration::from_secs(2),
            retries: 3,
            max_outstanding,
            max_queued,
        }
    }

    fn das() -> SocketAddr {
        "127.0.0.1:3799".parse().unwrap()
    }

    #[test]
    fn retransmits_with_doubling_backoff_then_times_out() {
        let mut c: Core<u32> = Core::new(limits(1, 10, 10));
        let t0 = Instant::now();
        assert_eq!(c.submit(draft(Kind::Disconnect), 1, t0), Submitted::Sent);
        let first = c.poll_transmit().expect("sent at once");
        assert_eq!((first.attempt, first.to), (1, das()));
        assert!(c.poll_transmit().is_none());
        // Each try waits twice as long as the one before: 2, 4, 8, 16 s.
        let mut at = t0;
        for (attempt, wait) in [(2, 2), (3, 4), (4, 8)] {
            at += Duration::from_secs(wait);
            c.on_timer(at - Duration::from_millis(1));
            assert!(c.poll_transmit().is_none(), "not before its deadline");
            c.on_timer(at);
            let t = c.poll_transmit().expect("retransmitted");
            assert_eq!(t.attempt, attempt);
            assert_eq!(t.bytes, first.bytes, "a retransmission is the same packet");
        }
        assert_eq!(c.next_deadline(), Some(at + Duration::from_secs(16)));
        c.on_timer(at + Duration::from_secs(16));
        assert!(c.poll_transmit().is_none(), "retries exhausted");
        let (token, kind, o) = c.poll_done().expect("finished");
        assert_eq!(
            (token, kind, o.result, o.attempts),
            (1, Kind::Disconnect, DasResult::Timeout, 4)
        );
        assert_eq!(c.in_flight(), 0);
    }

    #[test]
    fn a_verified_nak_completes_and_a_forged_ack_is_ignored() {
        let s = secret("das-secret");
        let mut c: Core<u32> = Core::new(limits(2, 10, 10));
        let t0 = Instant::now();
        c.submit(draft(Kind::Disconnect), 7, t0);
        let t = c.poll_transmit().unwrap();
        let forged = answer(&t.bytes, Code::DisconnectAck, None, &secret("nope"));
        assert_eq!(
            c.on_datagram(t.socket, das(), &forged, t0)
                .map_err(|e| e.label()),
            Err("bad_authenticator")
        );
        let nak = answer(&t.bytes, Code::DisconnectNak, Some(503), &s);
        let elsewhere: SocketAddr = "127.0.0.2:3799".parse().unwrap();
        assert_eq!(
            c.on_datagram(t.socket, elsewhere, &nak, t0),
            Err(Dropped::WrongSource)
        );
        assert_eq!(
            c.on_datagram(t.socket ^ 1, das(), &nak, t0),
            Err(Dropped::Unmatched)
        );
        assert!(c.poll_done().is_none(), "still waiting for a real answer");
        assert_eq!(
            c.on_datagram(t.socket, das(), &nak, t0),
            Ok((Kind::Disconnect, DasResult::Nak))
        );
        let (token, _, o) = c.poll_done().unwrap();
        assert_eq!(token, 7);
        assert_eq!(o.error_cause, Some(ErrorCause::SESSION_CONTEXT_NOT_FOUND));
        assert_eq!(o.attempts, 1);
        // Answered: a duplicate of the answer matches nothing, the timer is stale.
        assert_eq!(
            c.on_datagram(t.socket, das(), &nak, t0),
            Err(Dropped::Unmatched)
        );
        c.on_timer(t0 + Duration::from_secs(60));
        assert!(c.poll_transmit().is_none() && c.poll_done().is_none());
    }

    #[test]
    fn identifiers_are_bounded_per_socket_then_queued_then_refused() {
        let s = secret("das-secret");
        // One socket: 256 Identifiers, although max_outstanding would allow more.
        let mut c: Core<u32> = Core::new(limits(1, 1000, 40));
        let t0 = Instant::now();
        let results: Vec<Submitted> = (0..300)
            .map(|i| c.submit(draft(Kind::Coa), i, t0))
            .collect();
        assert_eq!(
            results.iter().filter(|r| **r == Submitted::Sent).count(),
            256
        );
        assert_eq!(
            results.iter().filter(|r| **r == Submitted::Queued).count(),
            40
        );
        assert_eq!(
            results.iter().filter(|r| **r == Submitted::Refused).count(),
            4
        );
        let sent: Vec<Transmit> = std::iter::from_fn(|| c.poll_transmit()).collect();
        let mut ids: Vec<u8> = sent.iter().map(|t| t.bytes[1]).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 256, "every Identifier used once");
        let refused: Vec<_> = std::iter::from_fn(|| c.poll_done()).collect();
        assert_eq!(refused.len(), 4);
        assert!(refused
            .iter()
            .all(|(_, _, o)| o.result == DasResult::Overloaded && o.attempts == 0));
        // One answer frees one Identifier: the first queued request takes it.
        let ack = answer(&sent[0].bytes, Code::CoaAck, None, &s);
        c.on_datagram(0, das(), &ack, t0).expect("matches");
        let next = c.poll_transmit().expect("a queued request starts");
        assert_eq!(next.bytes[1], sent[0].bytes[1], "the freed Identifier");
        assert_ne!(next.key, sent[0].key, "a new generation in the slot");
        assert_eq!((c.in_flight(), c.queued()), (256, 39));
    }

    #[test]
    fn max_outstanding_caps_below_the_identifier_space() {
        let mut c: Core<u32> = Core::new(limits(4, 3, 1));
        let t0 = Instant::now();
        let r: Vec<_> = (0..5)
            .map(|i| c.submit(draft(Kind::Disconnect), i, t0))
            .collect();
        assert_eq!(
            r,
            [
                Submitted::Sent,
                Submitted::Sent,
                Submitted::Sent,
                Submitted::Queued,
                Submitted::Refused
            ]
        );
        let sent: Vec<Transmit> = std::iter::from_fn(|| c.poll_transmit()).collect();
        let sockets: Vec<usize> = sent.iter().map(|t| t.socket).collect();
        assert_eq!(sockets, [0, 1, 2], "spread over the sockets");
        // A send error ends its request and lets the queued one go.
        c.send_failed(sent[1].key, t0);
        let (tok, _, o) = std::iter::from_fn(|| c.poll_done())
            .find(|(_, _, o)| o.result == DasResult::Unroutable)
            .expect("unroutable");
        assert_eq!((tok, o.attempts), (1, 1));
        assert!(c.poll_transmit().is_some());
        assert_eq!(c.queued(), 0);
    }
}
