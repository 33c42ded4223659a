//! Upstream identifiers for one home server, over several source slots.
//!
//! A RADIUS client tells its outstanding requests apart by (source address, source port,
//! Identifier), so one source port carries at most 256 requests at once. Each slot stands
//! for one local source port (the caller opens the sockets, slot `n` is its `n`-th);
//! with `k` slots, `256 · k` requests can be outstanding to one home server, so the
//! Identifier octet never caps throughput.
//!
//! Allocation goes round-robin over the slots, and within a slot round-robin over the
//! identifiers, so a released (slot, id) is reused as late as possible: a late reply to a
//! request we gave up on then finds no entry, or one whose Request Authenticator it does
//! not verify against, never a wrong match.
//!
//! Bounds: at most [`MAX_SLOTS`] slots of 256 entries, and at most `max_outstanding`
//! entries in all. A full table refuses with [`AllocError`]; the caller counts the refusal
//! and drops the request (the NAS retransmits). The deadline heap holds one item per live
//! entry plus the stale items of released ones, and is rebuilt when it would pass
//! `2 · capacity + 64`.

use core::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// Identifiers per slot: the Identifier is one octet.
pub const IDS_PER_SLOT: usize = 256;
/// Bound on slots per home server (16384 outstanding requests).
pub const MAX_SLOTS: usize = 64;

/// One outstanding entry's address: which source slot, which Identifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub slot: u8,
    pub id: u8,
}

/// Why no identifier was allocated.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum AllocError {
    /// The home server's `max_outstanding` is reached.
    #[error("max_outstanding requests are outstanding to this home server")]
    MaxOutstanding,
    /// Every identifier of every slot is in use (`max_outstanding` above the slots' capacity).
    #[error("every identifier of every source slot is in use")]
    NoFreeId,
}

impl AllocError {
    /// Stable metrics label.
    pub const fn label(&self) -> &'static str {
        match self {
            AllocError::MaxOutstanding => "max_outstanding",
            AllocError::NoFreeId => "no_free_id",
        }
    }
}

/// Why an [`IdTable`] is refused.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum IdTableError {
    #[error("at least one source slot is needed")]
    NoSlots,
    #[error("at most {MAX_SLOTS} source slots")]
    TooManySlots,
    #[error("max_outstanding must be at least 1")]
    ZeroMaxOutstanding,
}

struct Entry<T> {
    value: T,
    deadline: Instant,
    /// Matches the heap item that stands for this entry's current deadline.
    generation: u64,
}

struct Slot<T> {
    entries: Vec<Option<Entry<T>>>,
    used: usize,
    /// Where the search for a free identifier starts.
    cursor: u8,
}

/// The outstanding requests to one home server, each with a caller value `T` (what is
/// needed to answer the NAS) and a deadline.
pub struct IdTable<T> {
    slots: Vec<Slot<T>>,
    max_outstanding: usize,
    outstanding: usize,
    next_slot: usize,
    /// Fill the lowest slot first instead of spreading over all (see [`IdTable::packed`]).
    packed: bool,
    heap: BinaryHeap<Reverse<(Instant, u64, Key)>>,
    generation: u64,
}

impl<T> IdTable<T> {
    /// A table over `slots` source slots holding at most `max_outstanding` entries.
    pub fn new(slots: usize, max_outstanding: usize) -> Result<Self, IdTableError> {
        if slots == 0 {
            return Err(IdTableError::NoSlots);
        }
        if slots > MAX_SLOTS {
            return Err(IdTableError::TooManySlots);
        }
        if max_outstanding == 0 {
            return Err(IdTableError::ZeroMaxOutstanding);
        }
        let slots = (0..slots)
            .map(|_| Slot {
                entries: (0..IDS_PER_SLOT).map(|_| None).collect(),
                used: 0,
                cursor: 0,
            })
            .collect();
        Ok(IdTable {
            slots,
            max_outstanding,
            outstanding: 0,
            next_slot: 0,
            packed: false,
            heap: BinaryHeap::new(),
            generation: 0,
        })
    }

    /// The same table filling the lowest slot with room first. Over UDP spreading over the
    /// source ports is free; over TCP and TLS each slot is a connection, and one connection
    /// with 256 identifiers in use beats 16 with a few each.
    pub fn packed(mut self) -> Self {
        self.packed = true;
        self
    }

    /// Entries outstanding now.
    pub fn outstanding(&self) -> usize {
        self.outstanding
    }

    /// The most entries this table holds: `max_outstanding` or the slots' capacity.
    pub fn capacity(&self) -> usize {
        self.max_outstanding.min(self.slots.len() * IDS_PER_SLOT)
    }

    /// Whether [`Self::allocate`] would succeed now.
    pub fn has_room(&self) -> bool {
        self.outstanding < self.capacity()
    }

    /// Allocates a (slot, identifier) for a request that must be answered by `deadline`.
    pub fn allocate(&mut self, deadline: Instant, value: T) -> Result<Key, AllocError> {
        if self.outstanding >= self.max_outstanding {
            return Err(AllocError::MaxOutstanding);
        }
        let n = self.slots.len();
        for k in 0..n {
            let first = if self.packed { 0 } else { self.next_slot };
            let s = (first + k) % n;
            let Some(slot) = self.slots.get_mut(s) else {
                continue;
            };
            if slot.used >= IDS_PER_SLOT {
                continue;
            }
            let start = usize::from(slot.cursor);
            let free = (0..IDS_PER_SLOT)
                .map(|i| (start + i) % IDS_PER_SLOT)
                .find(|&i| slot.entries.get(i).is_some_and(Option::is_none));
            let Some(i) = free else { continue };
            self.generation += 1;
            if let Some(e) = slot.entries.get_mut(i) {
                *e = Some(Entry {
                    value,
                    deadline,
                    generation: self.generation,
                });
            }
            slot.used += 1;
            // i < 256 and s < MAX_SLOTS = 64: both fit in u8.
            slot.cursor = ((i + 1) % IDS_PER_SLOT) as u8;
            let key = Key {
                slot: s as u8,
                id: i as u8,
            };
            self.outstanding += 1;
            self.next_slot = (s + 1) % n;
            self.push_deadline(deadline, key);
            return Ok(key);
        }
        Err(AllocError::NoFreeId)
    }

    fn entry(&self, key: Key) -> Option<&Entry<T>> {
        self.slots
            .get(usize::from(key.slot))?
            .entries
            .get(usize::from(key.id))?
            .as_ref()
    }

    fn entry_mut(&mut self, key: Key) -> Option<&mut Entry<T>> {
        self.slots
            .get_mut(usize::from(key.slot))?
            .entries
            .get_mut(usize::from(key.id))?
            .as_mut()
    }

    /// The value of an outstanding entry (a reply arrived on `key.slot` with `key.id`).
    pub fn get(&self, key: Key) -> Option<&T> {
        self.entry(key).map(|e| &e.value)
    }

    pub fn get_mut(&mut self, key: Key) -> Option<&mut T> {
        self.entry_mut(key).map(|e| &mut e.value)
    }

    /// An entry's deadline.
    pub fn deadline(&self, key: Key) -> Option<Instant> {
        self.entry(key).map(|e| e.deadline)
    }

    /// Moves an entry's deadline (the NAS retransmitted and we sent the same request
    /// again). False if the entry is gone.
    pub fn set_deadline(&mut self, key: Key, deadline: Instant) -> bool {
        self.generation += 1;
        let generation = self.generation;
        let Some(e) = self.entry_mut(key) else {
            return false;
        };
        e.deadline = deadline;
        e.generation = generation;
        self.heap.push(Reverse((deadline, generation, key)));
        self.compact_if_needed();
        true
    }

    /// Frees an entry (its reply arrived), returning its value.
    pub fn release(&mut self, key: Key) -> Option<T> {
        let slot = self.slots.get_mut(usize::from(key.slot))?;
        let e = slot.entries.get_mut(usize::from(key.id))?.take()?;
        slot.used -= 1;
        self.outstanding -= 1;
        // Its heap item goes stale and is skipped (or dropped by the next rebuild).
        Some(e.value)
    }

    /// The earliest deadline of an outstanding entry.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        self.drop_stale_top();
        self.heap.peek().map(|Reverse((d, _, _))| *d)
    }

    /// Removes and returns, earliest first, every entry whose deadline is at or before
    /// `now`, so the caller can answer (or give up on) the NAS request behind each.
    pub fn expire(&mut self, now: Instant) -> Expired<'_, T> {
        Expired { table: self, now }
    }

    fn pop_expired(&mut self, now: Instant) -> Option<(Key, T)> {
        self.drop_stale_top();
        let &Reverse((deadline, _, key)) = self.heap.peek()?;
        if deadline > now {
            return None;
        }
        self.heap.pop();
        self.release(key).map(|v| (key, v))
    }

    fn is_live(&self, generation: u64, key: Key) -> bool {
        self.entry(key).is_some_and(|e| e.generation == generation)
    }

    fn drop_stale_top(&mut self) {
        while let Some(&Reverse((_, generation, key))) = self.heap.peek() {
            if self.is_live(generation, key) {
                break;
            }
            self.heap.pop();
        }
    }

    fn push_deadline(&mut self, deadline: Instant, key: Key) {
        self.heap.push(Reverse((deadline, self.generation, key)));
        self.compact_if_needed();
    }

    fn heap_bound(&self) -> usize {
        2 * self.capacity() + 64
    }

    fn compact_if_needed(&mut self) {
        if self.heap.len() <= self.heap_bound() {
            return;
        }
        let items = core::mem::take(&mut self.heap).into_vec();
        let live: Vec<_> = items
            .into_iter()
            .filter(|Reverse((_, g, k))| self.is_live(*g, *k))
            .collect();
        self.heap = BinaryHeap::from(live);
    }
}

/// Iterator of expired entries; see [`IdTable::expire`]. Entries not yet taken when it is
/// dropped stay in the table until the next call.
pub struct Expired<'a, T> {
    table: &'a mut IdTable<T>,
    now: Instant,
}

impl<T> Iterator for Expired<'_, T> {
    type Item = (Key, T);

    fn next(&mut self) -> Option<(Key, T)> {
        self.table.pop_expired(self.now)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::time::Duration;

    use super::*;

    fn secs(t0: Instant, s: u64) -> Instant {
        t0 + Duration::from_secs(s)
    }

    #[test]
    fn one_slot_holds_256_then_refuses() {
        let t0 = Instant::now();
        let mut t = IdTable::new(1, 1000).expect("ok");
        let keys: HashSet<Key> = (0..256)
            .map(|i| t.allocate(secs(t0, 20), i).expect("room"))
            .collect();
        assert_eq!(keys.len(), 256);
        assert_eq!(t.outstanding(), 256);
        assert!(!t.has_room());
        assert_eq!(t.allocate(secs(t0, 20), 999), Err(AllocError::NoFreeId));
        assert_eq!(AllocError::NoFreeId.label(), "no_free_id");
    }

    #[test]
    fn more_than_256_outstanding_with_several_slots() {
        let t0 = Instant::now();
        let mut t = IdTable::new(3, 10_000).expect("ok");
        let keys: Vec<Key> = (0..768)
            .map(|i| t.allocate(secs(t0, 20), i).expect("room"))
            .collect();
        let distinct: HashSet<Key> = keys.iter().copied().collect();
        assert_eq!(distinct.len(), 768);
        for s in 0..3u8 {
            assert_eq!(keys.iter().filter(|k| k.slot == s).count(), 256);
        }
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(t.get(*k), Some(&i));
        }
        assert_eq!(t.allocate(secs(t0, 20), 0), Err(AllocError::NoFreeId));
        // A freed one is found again.
        assert_eq!(t.release(keys[300]), Some(300));
        assert_eq!(t.allocate(secs(t0, 20), 7), Ok(keys[300]));
    }

    #[test]
    fn a_packed_table_fills_the_first_slot_first() {
        let t0 = Instant::now();
        let mut spread: IdTable<()> = IdTable::new(2, 512).expect("ok");
        let mut packed: IdTable<()> = IdTable::new(2, 512).expect("ok").packed();
        let slots = |t: &mut IdTable<()>, n| {
            (0..n)
                .map(|_| t.allocate(t0, ()).expect("room").slot)
                .collect::<Vec<_>>()
        };
        assert_eq!(slots(&mut spread, 4), [0, 1, 0, 1]);
        let first = slots(&mut packed, 256);
        assert!(first.iter().all(|s| *s == 0));
        assert_eq!(slots(&mut packed, 2), [1, 1], "slot 0 is full");
    }

    #[test]
    fn max_outstanding_refuses_first() {
        let t0 = Instant::now();
        let mut t = IdTable::new(4, 10).expect("ok");
        assert_eq!(t.capacity(), 10);
        for i in 0..10 {
            t.allocate(secs(t0, 1), i).expect("room");
        }
        assert_eq!(t.allocate(secs(t0, 1), 10), Err(AllocError::MaxOutstanding));
        assert!(IdTable::<()>::new(0, 1).is_err());
        assert_eq!(
            IdTable::<()>::new(MAX_SLOTS + 1, 1).err(),
            Some(IdTableError::TooManySlots)
        );
        assert_eq!(
            IdTable::<()>::new(1, 0).err(),
            Some(IdTableError::ZeroMaxOutstanding)
        );
    }

    #[test]
    fn allocation_rotates_over_slots_and_identifiers() {
        let t0 = Instant::now();
        let mut t = IdTable::new(2, 100).expect("ok");
        let a = t.allocate(secs(t0, 1), 'a').expect("room");
        let b = t.allocate(secs(t0, 1), 'b').expect("room");
        assert_eq!((a.slot, b.slot), (0, 1));
        assert_eq!(t.release(a), Some('a'));
        // Released (0, 0) is not handed out again at once.
        let c = t.allocate(secs(t0, 1), 'c').expect("room");
        assert_eq!(c, Key { slot: 0, id: 1 });
        // Wrong or stale keys find nothing.
        assert_eq!(t.get(a), None);
        assert_eq!(t.release(a), None);
        assert_eq!(t.get(Key { slot: 9, id: 0 }), None);
        assert_eq!(t.release(Key { slot: 9, id: 0 }), None);
    }

    #[test]
    fn expiry_returns_due_entries_earliest_first() {
        let t0 = Instant::now();
        let mut t = IdTable::new(2, 100).expect("ok");
        let k30 = t.allocate(secs(t0, 30), 30).expect("room");
        let k10 = t.allocate(secs(t0, 10), 10).expect("room");
        let k20 = t.allocate(secs(t0, 20), 20).expect("room");
        let answered = t.allocate(secs(t0, 5), 5).expect("room");
        assert_eq!(t.poll_timeout(), Some(secs(t0, 5)));
        assert_eq!(t.release(answered), Some(5));
        assert_eq!(t.poll_timeout(), Some(secs(t0, 10)));
        assert_eq!(t.expire(secs(t0, 9)).count(), 0);
        let due: Vec<_> = t.expire(secs(t0, 20)).collect();
        assert_eq!(due, vec![(k10, 10), (k20, 20)]);
        // The NAS retransmitted: the deadline moves on.
        assert!(t.set_deadline(k30, secs(t0, 50)));
        assert_eq!(t.deadline(k30), Some(secs(t0, 50)));
        assert_eq!(t.expire(secs(t0, 40)).count(), 0);
        assert_eq!(t.poll_timeout(), Some(secs(t0, 50)));
        assert_eq!(t.expire(secs(t0, 50)).collect::<Vec<_>>(), vec![(k30, 30)]);
        assert_eq!(t.outstanding(), 0);
        assert_eq!(t.poll_timeout(), None);
        assert!(!t.set_deadline(k30, secs(t0, 60)));
    }

    #[test]
    fn the_deadline_heap_stays_bounded() {
        let t0 = Instant::now();
        let mut t = IdTable::new(1, 8).expect("ok");
        let bound = t.heap_bound();
        for i in 0..10_000u64 {
            let k = t.allocate(secs(t0, i + 20), i).expect("room");
            if i % 3 == 0 {
                assert!(t.set_deadline(k, secs(t0, i + 40)));
            }
            // Most are answered; the rest wait until the table is full, then expire.
            if i % 5 != 0 {
                assert_eq!(t.release(k), Some(i));
            }
            if !t.has_room() {
                assert!(t.expire(secs(t0, i + 40)).count() > 0);
            }
            assert!(t.heap.len() <= bound, "heap {} > {bound}", t.heap.len());
        }
    }
}
