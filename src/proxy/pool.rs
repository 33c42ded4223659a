//! Picking a home server from a pool.
//!
//! The pool sees each member's liveness and load as a [`Member`] snapshot the caller builds
//! from its [`super::home::HomeServer`]s and [`super::ids::IdTable`]s; it keeps no state of
//! its own, so the same choice comes out on every shard for the same inputs.
//!
//! Every kind prefers alive members; zombies are used only when no member is alive (a
//! zombie may just be slow, and a reply revives it), dead ones never. A member with no
//! room for another request (its `max_outstanding` or its identifiers are used up) is
//! skipped; when every usable member is full the answer is [`Pick::Busy`], not a fallback:
//! the servers are alive, the NAS's retransmission will find room.

use super::home::HomeState;

/// How a pool spreads requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolKind {
    /// The first usable member in configuration order.
    FailOver,
    /// The usable member with the fewest outstanding requests; ties go to the earlier.
    LoadBalance,
    /// A stable hash of Calling-Station-Id and User-Name over the usable members
    /// (rendezvous hashing), so one EAP conversation, whose rounds must all reach the home
    /// server holding its TLS state, stays on one server while that server is alive, and a
    /// member going or coming moves only the keys it takes or gives.
    KeyedBalance,
}

/// What happens to a request when no member is alive or zombie.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fallback {
    /// Answer Access-Reject at once (the user learns now; the NAS does not retry).
    Reject,
    /// Answer nothing (the NAS retries or fails over to another proxy of ours).
    Drop,
}

/// One member's state as the pool sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member {
    pub state: HomeState,
    /// Requests outstanding to it now.
    pub outstanding: u32,
    /// Whether it can take another request now.
    pub has_room: bool,
}

/// The pool's choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pick {
    /// The member at this index of the pool's member list.
    Member(usize),
    /// No member is alive or zombie: the configured fallback (counted by the caller).
    Unavailable(Fallback),
    /// Members are usable but all are full (counted; the request is dropped).
    Busy,
}

/// Bound on a pool's members: every pick walks them all.
pub const MAX_MEMBERS: usize = 64;

/// Why a pool is refused.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum PoolError {
    #[error("a pool needs at least one home server")]
    Empty,
    #[error("a pool has at most {MAX_MEMBERS} home servers")]
    TooManyMembers,
}

/// A pool's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool {
    kind: PoolKind,
    fallback: Fallback,
    members: usize,
}

impl Pool {
    /// A pool of `members` home servers (the caller keeps their order and identity).
    pub fn new(kind: PoolKind, fallback: Fallback, members: usize) -> Result<Self, PoolError> {
        if members == 0 {
            return Err(PoolError::Empty);
        }
        if members > MAX_MEMBERS {
            return Err(PoolError::TooManyMembers);
        }
        Ok(Pool {
            kind,
            fallback,
            members,
        })
    }

    pub fn kind(&self) -> PoolKind {
        self.kind
    }

    pub fn fallback(&self) -> Fallback {
        self.fallback
    }

    /// Picks a member. `members` is the snapshot, in configuration order (extra entries past
    /// the pool's size are ignored, missing ones count as dead); `key` is
    /// [`balance_key`]'s hash, used by keyed-balance only.
    pub fn pick(&self, members: &[Member], key: u64) -> Pick {
        let members = members.get(..self.members).unwrap_or(members);
        let tier = if members.iter().any(|m| m.state == HomeState::Alive) {
            HomeState::Alive
        } else if members.iter().any(|m| m.state == HomeState::Zombie) {
            HomeState::Zombie
        } else {
            return Pick::Unavailable(self.fallback);
        };
        let usable = || {
            members
                .iter()
                .enumerate()
                .filter(move |(_, m)| m.state == tier && m.has_room)
        };
        let chosen = match self.kind {
            PoolKind::FailOver => usable().next().map(|(i, _)| i),
            // min_by_key keeps the first of equal minima: ties go to the earlier member.
            PoolKind::LoadBalance => usable().min_by_key(|(_, m)| m.outstanding).map(|(i, _)| i),
            // max_by_key keeps the last of equal maxima; scores tie only by a 2^-64 chance.
            PoolKind::KeyedBalance => usable()
                .max_by_key(|(i, _)| rendezvous(key, *i))
                .map(|(i, _)| i),
        };
        chosen.map_or(Pick::Busy, Pick::Member)
    }
}

/// The keyed-balance key of a request: a stable (unseeded, the same on every shard and
/// every restart) hash of Calling-Station-Id and User-Name. A separator keeps `ab`+`c`
/// apart from `a`+`bc`. Either may be absent (hashed as empty).
pub fn balance_key(calling_station_id: Option<&[u8]>, user_name: Option<&[u8]>) -> u64 {
    let mut h = Fnv::new();
    h.write(calling_station_id.unwrap_or(&[]));
    h.write(&[0]);
    h.write(user_name.unwrap_or(&[]));
    mix(h.0)
}

/// Rendezvous (highest random weight) score of `member` for `key`.
fn rendezvous(key: u64, member: usize) -> u64 {
    mix(key ^ mix(member as u64 ^ 0x9e37_79b9_7f4a_7c15))
}

/// FNV-1a, 64-bit: tiny, stable, and good enough before the finalizer below.
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// splitmix64's finalizer: spreads every input bit over the output.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::HomeState::{Alive, Dead, Zombie};
    use super::*;

    fn m(state: HomeState, outstanding: u32) -> Member {
        Member {
            state,
            outstanding,
            has_room: true,
        }
    }

    fn full(state: HomeState) -> Member {
        Member {
            state,
            outstanding: 100,
            has_room: false,
        }
    }

    #[test]
    fn fail_over_takes_the_first_alive_then_zombies() {
        let p = Pool::new(PoolKind::FailOver, Fallback::Reject, 3).expect("ok");
        let cases: &[(&[Member], Pick)] = &[
            (&[m(Alive, 9), m(Alive, 0), m(Alive, 0)], Pick::Member(0)),
            (&[m(Dead, 0), m(Zombie, 0), m(Alive, 5)], Pick::Member(2)),
            (&[m(Dead, 0), m(Zombie, 0), m(Zombie, 0)], Pick::Member(1)),
            (&[full(Alive), m(Alive, 0), m(Alive, 0)], Pick::Member(1)),
            // Alive but full: not a reason to use a zombie.
            (&[full(Alive), m(Zombie, 0), m(Dead, 0)], Pick::Busy),
            (
                &[m(Dead, 0), m(Dead, 0), m(Dead, 0)],
                Pick::Unavailable(Fallback::Reject),
            ),
            // A missing snapshot entry counts as dead; extra ones are ignored.
            (&[m(Dead, 0)], Pick::Unavailable(Fallback::Reject)),
            (
                &[m(Dead, 0), m(Dead, 0), m(Dead, 0), m(Alive, 0)],
                Pick::Unavailable(Fallback::Reject),
            ),
        ];
        for (members, want) in cases {
            assert_eq!(p.pick(members, 0), *want, "{members:?}");
        }
        let p = Pool::new(PoolKind::FailOver, Fallback::Drop, 1).expect("ok");
        assert_eq!(p.pick(&[m(Dead, 0)], 0), Pick::Unavailable(Fallback::Drop));
    }

    #[test]
    fn load_balance_takes_the_least_outstanding_alive_ties_by_order() {
        let p = Pool::new(PoolKind::LoadBalance, Fallback::Drop, 4).expect("ok");
        let cases: &[(&[Member], Pick)] = &[
            (
                &[m(Alive, 3), m(Alive, 1), m(Alive, 2), m(Alive, 1)],
                Pick::Member(1),
            ),
            (
                &[m(Alive, 0), m(Alive, 0), m(Alive, 0), m(Alive, 0)],
                Pick::Member(0),
            ),
            // A zombie with nothing outstanding loses to a loaded alive one.
            (
                &[m(Zombie, 0), m(Alive, 50), m(Dead, 0), m(Alive, 60)],
                Pick::Member(1),
            ),
            (
                &[m(Alive, 5), full(Alive), m(Alive, 7), m(Dead, 0)],
                Pick::Member(0),
            ),
            (
                &[m(Zombie, 5), m(Zombie, 2), m(Dead, 0), m(Dead, 0)],
                Pick::Member(1),
            ),
            (
                &[m(Dead, 0), m(Dead, 0), m(Dead, 0), m(Dead, 0)],
                Pick::Unavailable(Fallback::Drop),
            ),
        ];
        for (members, want) in cases {
            assert_eq!(p.pick(members, 0), *want, "{members:?}");
        }
    }

    #[test]
    fn keyed_balance_is_stable_and_moves_only_what_it_must() {
        let n = 5;
        let p = Pool::new(PoolKind::KeyedBalance, Fallback::Reject, n).expect("ok");
        let all_alive = vec![m(Alive, 0); n];
        let keys: Vec<u64> = (0..2000)
            .map(|i| {
                let mac = format!("02-00-00-00-{:02x}-{:02x}", i / 256, i % 256);
                balance_key(Some(mac.as_bytes()), Some(b"anonymous@example.org"))
            })
            .collect();
        let before: Vec<Pick> = keys.iter().map(|&k| p.pick(&all_alive, k)).collect();
        // Same inputs, same choice; the load spreads over every member.
        for (k, b) in keys.iter().zip(&before) {
            assert_eq!(p.pick(&all_alive, *k), *b);
        }
        for i in 0..n {
            let share = before.iter().filter(|&&b| b == Pick::Member(i)).count();
            assert!((250..550).contains(&share), "member {i}: {share} of 2000");
        }
        // Member 2 dies: only its keys move, and they move to the others.
        let mut one_dead = all_alive.clone();
        one_dead[2] = m(Dead, 0);
        for (k, b) in keys.iter().zip(&before) {
            let after = p.pick(&one_dead, *k);
            if *b == Pick::Member(2) {
                assert_ne!(after, Pick::Member(2));
            } else {
                assert_eq!(after, *b);
            }
        }
        // Every member dead: the fallback.
        assert_eq!(
            p.pick(&vec![m(Dead, 0); n], keys[0]),
            Pick::Unavailable(Fallback::Reject)
        );
    }

    #[test]
    fn balance_key_is_stable_and_separates_its_fields() {
        // Pinned: the key must not change between builds, shards or restarts.
        let k = balance_key(Some(b"02-00-00-00-00-01"), Some(b"bob@example.org"));
        assert_eq!(k, 0x3e38_1325_0281_2538);
        assert_ne!(
            balance_key(Some(b"ab"), Some(b"c")),
            balance_key(Some(b"a"), Some(b"bc"))
        );
        assert_ne!(balance_key(None, Some(b"x")), balance_key(Some(b"x"), None));
        assert_eq!(balance_key(None, None), balance_key(Some(b""), Some(b"")));
    }

    #[test]
    fn pool_bounds() {
        assert_eq!(
            Pool::new(PoolKind::FailOver, Fallback::Reject, 0),
            Err(PoolError::Empty)
        );
        assert_eq!(
            Pool::new(PoolKind::FailOver, Fallback::Reject, MAX_MEMBERS + 1),
            Err(PoolError::TooManyMembers)
        );
        assert!(Pool::new(PoolKind::LoadBalance, Fallback::Reject, MAX_MEMBERS).is_ok());
    }
}
