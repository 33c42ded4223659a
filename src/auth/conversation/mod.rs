//! The conversation store: what a multi-round authentication remembers between its rounds
//! (an MFA challenge today; EAP sessions next), keyed by the signed, single-use State the
//! Access-Challenge carries. One per process, shared by every shard (a follow-up may land on
//! any of them) and kept across reloads.
//!
//! A State ([`state`]) is 16 random octets, an expiry and an HMAC binding both to the client
//! and user it was issued to; the store keeps the conversation under the nonce. Taking a
//! conversation removes it (single use, whatever the follow-up's fate); the nonces taken are
//! remembered until their State expires, to tell a replay from a forgery in the log.
//!
//! Bound: at most `capacity` open conversations; when full, expired ones are swept and, if
//! none expired, a new one is refused ([`Full`]: the request is rejected as overloaded).
//! Nonces taken are kept up to twice that, then swept, then forgotten (a replay of a
//! forgotten one reads as invalid instead of replayed: still refused).

pub mod state;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use state::{Nonce, StateBuf, StateError, StateKey, STATE_LEN};

/// What a conversation of this server remembers between rounds.
pub enum Conversation {
    /// An MFA challenge waiting for its code.
    SecondFactor(crate::auth::second_factor::Pending),
    /// An EAP conversation between two rounds.
    Eap(Box<crate::auth::eap::EapSession>),
}

impl Conversation {
    /// Counts an abandoned conversation (the store's expiry hook).
    pub fn expired(&self) {
        if let Conversation::Eap(_) = self {
            crate::metrics::EapMetrics::bump(&crate::metrics::eap().conversations_expired);
        }
    }
}

impl std::fmt::Debug for Conversation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Conversation::SecondFactor(p) => f.debug_tuple("SecondFactor").field(p).finish(),
            Conversation::Eap(s) => f.debug_tuple("Eap").field(&s.method).finish(),
        }
    }
}

/// Why a State was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ConversationError {
    /// Not one we issued for this client and user (forged, altered, another process's).
    #[error("invalid State")]
    Invalid,
    #[error("expired State")]
    Expired,
    /// Issued by us and taken before: single use.
    #[error("State already used")]
    Replayed,
}

/// A conversation taken by its State ([`Conversations::take_any`]).
#[derive(Debug)]
pub enum Taken<T> {
    /// Opened on this node: what it remembers, and the State's nonce and expiry.
    Here(T, Nonce, u64),
    /// Opened on another node sharing the key: the payload its sealed State carries.
    Sealed(Vec<u8>, Nonce, u64),
}

/// The store is full of live conversations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many conversations open")]
pub struct Full;

/// How often, at most, expired conversations are swept (seconds).
const SWEEP_SECONDS: u64 = 5;

/// Open conversations of type `T`.
#[derive(Debug)]
pub struct Conversations<T> {
    key: StateKey,
    /// By nonce: expiry, the client's share key, the conversation.
    open: Mutex<Open<T>>,
    /// Nonces taken, with their State's expiry.
    taken: Mutex<HashMap<Nonce, u64>>,
    capacity: usize,
    /// When (Unix seconds) expired conversations are next swept.
    next_sweep: AtomicU64,
    /// Told of each conversation swept because it expired (to count them by kind).
    on_expired: fn(&T),
}

/// The open conversations and how many each client has.
#[derive(Debug)]
struct Open<T> {
    by_nonce: HashMap<Nonce, (u64, u64, T)>,
    per_client: HashMap<u64, usize>,
}

impl<T> Open<T> {
    fn len(&self) -> usize {
        self.by_nonce.len()
    }

    /// Drops the conversations expired at `now`, telling `on_expired` of each.
    fn sweep(&mut self, now: u64, on_expired: fn(&T)) {
        let per_client = &mut self.per_client;
        self.by_nonce.retain(|_, (exp, client, value)| {
            let keep = *exp > now;
            if !keep {
                release(per_client, *client);
                on_expired(value);
            }
            keep
        });
    }

    fn remove(&mut self, nonce: &Nonce) -> Option<T> {
        let (_, client, value) = self.by_nonce.remove(nonce)?;
        release(&mut self.per_client, client);
        Some(value)
    }
}

fn release(per_client: &mut HashMap<u64, usize>, client: u64) {
    if let Some(n) = per_client.get_mut(&client) {
        *n -= 1;
        if *n == 0 {
            per_client.remove(&client);
        }
    }
}

/// A client's key in the per-client counts.
fn client_key(client: &str) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = foldhash::quality::FixedState::with_seed(0x5eed).build_hasher();
    h.write(client.as_bytes());
    h.finish()
}

impl<T> Conversations<T> {
    /// An empty store for at most `capacity` open conversations, under a fresh random key.
    pub fn new(capacity: usize) -> Conversations<T> {
        Conversations::with_key(capacity, StateKey::random())
    }

    /// An empty store whose States are signed with `key` (a shared key: several nodes verify
    /// each other's).
    pub fn with_key(capacity: usize, key: StateKey) -> Conversations<T> {
        Conversations {
            key,
            open: Mutex::new(Open {
                by_nonce: HashMap::new(),
                per_client: HashMap::new(),
            }),
            taken: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
            next_sweep: AtomicU64::new(0),
            on_expired: |_| {},
        }
    }

    /// The store, telling `hook` of each conversation it sweeps because it expired.
    pub fn on_expired(self, hook: fn(&T)) -> Conversations<T> {
        Conversations {
            on_expired: hook,
            ..self
        }
    }

    /// Opens a conversation for `client`/`user` that lives `ttl_secs` from `now` (Unix
    /// seconds) and returns its State.
    pub fn open(
        &self,
        client: &str,
        user: &[u8],
        value: T,
        ttl_secs: u64,
        now: u64,
    ) -> Result<[u8; STATE_LEN], Full> {
        self.open_within(client, user, value, ttl_secs, now, usize::MAX)
    }

    /// [`Conversations::open`], refused also when `client` already has `per_client` open
    /// (one NAS's flood cannot take every other NAS's room).
    pub fn open_within(
        &self,
        client: &str,
        user: &[u8],
        value: T,
        ttl_secs: u64,
        now: u64,
        per_client: usize,
    ) -> Result<[u8; STATE_LEN], Full> {
        let expiry = now.saturating_add(ttl_secs);
        let (state, nonce) = self.key.issue(client, user, expiry);
        let who = client_key(client);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        // Abandoned conversations (nobody answered) are swept every few seconds, so memory
        // follows the live ones.
        if now >= self.next_sweep.load(Relaxed) {
            self.next_sweep.store(now + SWEEP_SECONDS, Relaxed);
            open.sweep(now, self.on_expired);
        }
        let mine = |o: &Open<T>| o.per_client.get(&who).copied().unwrap_or(0);
        if open.len() >= self.capacity || mine(&open) >= per_client {
            open.sweep(now, self.on_expired);
            if open.len() >= self.capacity || mine(&open) >= per_client {
                return Err(Full);
            }
        }
        open.by_nonce.insert(nonce, (expiry, who, value));
        *open.per_client.entry(who).or_insert(0) += 1;
        Ok(state)
    }

    /// [`Conversations::open`] with a State that also carries `payload` sealed, so that
    /// another node sharing the key can finish the conversation; a payload too long for one
    /// attribute gives a node-local State. The conversation is kept here too (answered here,
    /// it is taken whole).
    pub fn open_sealed(
        &self,
        client: &str,
        user: &[u8],
        value: T,
        payload: Option<&[u8]>,
        ttl_secs: u64,
        now: u64,
    ) -> Result<StateBuf, Full> {
        let expiry = now.saturating_add(ttl_secs);
        let Some((state, nonce)) =
            payload.and_then(|p| self.key.issue_sealed(client, user, expiry, p))
        else {
            return self
                .open(client, user, value, ttl_secs, now)
                .map(StateBuf::from);
        };
        let who = client_key(client);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if now >= self.next_sweep.load(Relaxed) {
            self.next_sweep.store(now + SWEEP_SECONDS, Relaxed);
            open.sweep(now, self.on_expired);
        }
        if open.len() >= self.capacity {
            open.sweep(now, self.on_expired);
            if open.len() >= self.capacity {
                return Err(Full);
            }
        }
        open.by_nonce.insert(nonce, (expiry, who, value));
        *open.per_client.entry(who).or_insert(0) += 1;
        Ok(state)
    }

    /// Checks `state` for `client`/`user` at `now` and takes its conversation (single use).
    /// A sealed State is refused here: see [`Conversations::take_any`].
    pub fn take(
        &self,
        state: &[u8],
        client: &str,
        user: &[u8],
        now: u64,
    ) -> Result<T, ConversationError> {
        if state.len() != STATE_LEN {
            return Err(ConversationError::Invalid);
        }
        match self.take_any(state, client, user, now)? {
            Taken::Here(v, _, _) => Ok(v),
            Taken::Sealed(..) => Err(ConversationError::Invalid),
        }
    }

    /// [`Conversations::take`], and for a sealed State opened elsewhere (not open here, not
    /// taken here before) its payload. Single use across nodes is the caller's to enforce
    /// (the database), with the nonce and expiry returned.
    pub fn take_any(
        &self,
        state: &[u8],
        client: &str,
        user: &[u8],
        now: u64,
    ) -> Result<Taken<T>, ConversationError> {
        let (nonce, expiry, payload) =
            self.key
                .verify_any(state, client, user, now)
                .map_err(|e| match e {
                    StateError::Invalid => ConversationError::Invalid,
                    StateError::Expired => ConversationError::Expired,
                })?;
        let value = self
            .open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&nonce);
        let mut taken = self.taken.lock().unwrap_or_else(|e| e.into_inner());
        let remember = |taken: &mut HashMap<Nonce, u64>| {
            if taken.len() >= 2 * self.capacity {
                taken.retain(|_, exp| *exp > now);
                if taken.len() >= 2 * self.capacity {
                    taken.clear();
                }
            }
            taken.insert(nonce, expiry);
        };
        match (value, payload) {
            (Some(v), _) => {
                remember(&mut taken);
                Ok(Taken::Here(v, nonce, expiry))
            }
            // A valid MAC but no open conversation: taken before, or swept. Either way refused.
            (None, _) if taken.contains_key(&nonce) => Err(ConversationError::Replayed),
            (None, Some(p)) => {
                remember(&mut taken);
                Ok(Taken::Sealed(p, nonce, expiry))
            }
            (None, None) => Err(ConversationError::Invalid),
        }
    }

    /// Open conversations (expired ones not yet swept included).
    pub fn len(&self) -> usize {
        self.open.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_use() {
        let c = Conversations::new(10);
        let s = c.open("nas", b"alice", 7u32, 60, 1000).expect("opened");
        assert_eq!(c.len(), 1);
        assert_eq!(c.take(&s, "nas", b"alice", 1001), Ok(7));
        assert_eq!(c.len(), 0);
        assert_eq!(
            c.take(&s, "nas", b"alice", 1002),
            Err(ConversationError::Replayed)
        );
    }

    #[test]
    fn wrong_user_client_expired_forged_leave_it_open() {
        let c = Conversations::new(10);
        let s = c.open("nas", b"alice", (), 60, 1000).expect("opened");
        assert_eq!(
            c.take(&s, "nas", b"bob", 1001),
            Err(ConversationError::Invalid)
        );
        assert_eq!(
            c.take(&s, "other", b"alice", 1001),
            Err(ConversationError::Invalid)
        );
        assert_eq!(
            c.take(&s, "nas", b"alice", 1060),
            Err(ConversationError::Expired)
        );
        let mut forged = s;
        forged[0] ^= 0x80;
        assert_eq!(
            c.take(&forged, "nas", b"alice", 1001),
            Err(ConversationError::Invalid)
        );
        // None of these took the conversation.
        assert_eq!(c.take(&s, "nas", b"alice", 1001), Ok(()));
    }

    #[test]
    fn full_store_refuses_then_frees_expired() {
        let c = Conversations::new(2);
        for _ in 0..2 {
            c.open("nas", b"a", (), 60, 1000).expect("room");
        }
        assert_eq!(c.open("nas", b"a", (), 60, 1001).map(|_| ()), Err(Full));
        // Once the first two expired they make room.
        assert!(c.open("nas", b"a", (), 60, 1061).is_ok());
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn one_client_cannot_take_every_room() {
        let c = Conversations::new(10);
        for _ in 0..3 {
            c.open_within("flood", b"a", (), 60, 1000, 3).expect("room");
        }
        assert_eq!(
            c.open_within("flood", b"a", (), 60, 1000, 3).map(|_| ()),
            Err(Full)
        );
        let s = c.open_within("other", b"b", (), 60, 1000, 3).expect("room");
        // Taking one of the flood's frees its share.
        assert_eq!(c.take(&s, "other", b"b", 1001), Ok(()));
        let f = c.open_within("flood", b"x", (), 60, 1000, 4).expect("room");
        assert_eq!(c.take(&f, "flood", b"x", 1001), Ok(()));
        assert!(c.open_within("flood", b"a", (), 60, 1000, 4).is_ok());
        // Expired ones free it too.
        assert!(c.open_within("flood", b"a", (), 60, 1061, 1).is_ok());
    }

    #[test]
    fn expired_conversations_are_swept() {
        static SWEPT: AtomicU64 = AtomicU64::new(0);
        let c = Conversations::new(100).on_expired(|n: &u64| {
            SWEPT.fetch_add(*n, Relaxed);
        });
        for _ in 0..10 {
            c.open("nas", b"a", 1, 60, 1000).expect("room");
        }
        assert_eq!(c.len(), 10);
        // 60 s later they have expired; the next open sweeps them, each told to the hook once.
        c.open("nas", b"a", 100, 60, 1060).expect("room");
        assert_eq!(c.len(), 1);
        assert_eq!(SWEPT.load(Relaxed), 10);
        c.open("nas", b"a", 100, 60, 1070).expect("room");
        assert_eq!(SWEPT.load(Relaxed), 10, "a live one is not counted");
    }

    #[test]
    fn sealed_state_is_taken_on_another_node_once() {
        let material = [3u8; 32];
        let a = Conversations::with_key(4, StateKey::from_material(&material));
        let b = Conversations::<u32>::with_key(4, StateKey::from_material(&material));
        let s = a
            .open_sealed("nas", b"alice", 1u32, Some(b"facts"), 60, 1000)
            .expect("opened");
        // Node B: not open here, the payload instead.
        match b.take_any(s.as_slice(), "nas", b"alice", 1001) {
            Ok(Taken::Sealed(p, _, 1060)) => assert_eq!(p, b"facts"),
            other => panic!("{other:?}"),
        }
        // Again on B: replayed (B remembers); the plain take refuses sealed States.
        assert_eq!(
            b.take_any(s.as_slice(), "nas", b"alice", 1002).err(),
            Some(ConversationError::Replayed)
        );
        assert_eq!(
            a.take(s.as_slice(), "nas", b"alice", 1002),
            Err(ConversationError::Invalid)
        );
        // Node A still has it whole (only the database knows B took it).
        assert!(matches!(
            a.take_any(s.as_slice(), "nas", b"alice", 1002),
            Ok(Taken::Here(1, _, _))
        ));
        // No payload (or one too long): a node-local State.
        let local = a
            .open_sealed("nas", b"alice", 2u32, None, 60, 1000)
            .expect("opened");
        assert_eq!(local.as_slice().len(), STATE_LEN);
        assert_eq!(
            b.take_any(local.as_slice(), "nas", b"alice", 1001).err(),
            Some(ConversationError::Invalid)
        );
    }

    #[test]
    fn another_store_does_not_know_the_state() {
        let (a, b) = (Conversations::new(4), Conversations::<()>::new(4));
        let s = a.open("nas", b"alice", (), 60, 1000).expect("opened");
        assert_eq!(
            b.take(&s, "nas", b"alice", 1001),
            Err(ConversationError::Invalid)
        );
    }
}
