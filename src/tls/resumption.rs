//! Which earlier conversation a resumed TLS session came from, on TLS 1.2 as well as 1.3.
//!
//! EAP gives every new server connection a random token (`set_resumption_data`). When a
//! session is resumed, it needs the token of the conversation that made the session, so that
//! conversation's authorization applies. rustls 0.23 hands that token back
//! (`received_resumption_data`) for TLS 1.3 only. For TLS 1.2 (session IDs and tickets) the
//! session store and ticketer wrapped here carry it instead.
//!
//! While [`processing`] runs one connection's `process_new_packets`, the token it was given is
//! this thread's current token. rustls calls the store and the ticketer synchronously inside
//! `process_new_packets`, on that thread. A session stored (`put`) or a ticket made
//! (`encrypt`) gets the current token as a tag. A session found (`get`, `take`) or a ticket
//! opened (`decrypt`) reports its tag as this thread's resumed token, and `processing` returns
//! that token.
//!
//! The tag goes in front of what rustls already keeps, not into a table of our own. In the
//! session cache it prefixes the cached value, so the cache's own limits bound it:
//! `session_cache` entries, `session_lifetime` old, evicted with the session. In a ticket it
//! prefixes the plaintext, so the ticket keys encrypt and authenticate it (a client can
//! neither read nor change it), and it costs no server memory. No separate map has to be
//! bounded or locked across shards, and none can lose a tag while the session lives. TLS 1.3
//! tickets get the tag too, which is harmless: the caller prefers `received_resumption_data`.

use std::cell::Cell;
use std::sync::Arc;

use rustls::server::{ProducesTickets, StoresServerSessions};

/// The token the core code gives each server connection.
type Token = [u8; 16];

thread_local! {
    /// The token of the connection [`processing`] is running on this thread.
    static CURRENT: Cell<Option<Token>> = const { Cell::new(None) };
    /// The tag of the session or ticket rustls last looked up during this `processing`.
    static RESUMED: Cell<Option<Token>> = const { Cell::new(None) };
}

/// Runs `f` (the caller's rustls `process_new_packets` for one connection) with `token` as the
/// token of the connection being processed on this thread. Returns f's result and, if during
/// `f` rustls looked up a session that was stored or ticketed while some earlier
/// connection's token was current, that earlier token.
///
/// A lookup is not yet a resumption. rustls can still refuse the session it found (another
/// cipher suite or server name, a bad binder, no PSK-DHE) and fall back to a full handshake.
/// So use the token only if the connection's `handshake_kind()` is
/// `Some(HandshakeKind::Resumed)`. rustls decides that during the same `process_new_packets`
/// call, the one that reads the ClientHello. If rustls looked up more than one session, the
/// last one wins; for TLS 1.3 that is the one it resumed.
///
/// Calls may nest (the outer call's tokens are restored afterwards), and the thread's state
/// is restored even if `f` panics.
pub fn processing<T>(token: &[u8; 16], f: impl FnOnce() -> T) -> (T, Option<[u8; 16]>) {
    let _restore = Restore {
        current: CURRENT.replace(Some(*token)),
        resumed: RESUMED.take(),
    };
    let out = f();
    (out, RESUMED.take())
}

/// Puts back the enclosing `processing`'s state (none, outside one) when the inner one ends.
struct Restore {
    current: Option<Token>,
    resumed: Option<Token>,
}

impl Drop for Restore {
    fn drop(&mut self) {
        CURRENT.set(self.current);
        RESUMED.set(self.resumed);
    }
}

/// The first octet of a tagged value: whether a token follows. The session cache and the
/// ticket keys belong to one process, so no value written in another format ever reaches us.
const UNTAGGED: u8 = 0;
const TAGGED: u8 = 1;

/// `value` behind this thread's current token (none outside [`processing`]).
fn tag(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + 16 + value.len());
    match CURRENT.get() {
        Some(token) => {
            out.push(TAGGED);
            out.extend_from_slice(&token);
        }
        None => out.push(UNTAGGED),
    }
    out.extend_from_slice(value);
    out
}

/// Records `stored`'s tag as this thread's resumed token and returns the value behind it, or
/// `None` if it is malformed. rustls then treats the session as unknown: a full handshake.
fn untag(mut stored: Vec<u8>) -> Option<Vec<u8>> {
    let (token, header) = match *stored.first()? {
        UNTAGGED => (None, 1),
        TAGGED => {
            let token: Token = stored.get(1..17)?.try_into().ok()?;
            (Some(token), 17)
        }
        _ => return None,
    };
    RESUMED.set(token);
    stored.drain(..header);
    Some(stored)
}

/// A session store whose values carry the token current when they were stored.
#[derive(Debug)]
pub(super) struct TaggedSessions(pub(super) Arc<dyn StoresServerSessions>);

impl StoresServerSessions for TaggedSessions {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        self.0.put(key, tag(&value))
    }
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        untag(self.0.get(key)?)
    }
    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        untag(self.0.take(key)?)
    }
    fn can_cache(&self) -> bool {
        self.0.can_cache()
    }
}

/// A ticketer whose tickets carry, encrypted with the rest, the token current when they were
/// made. It wraps the inner ticketer (the key rotator) without changing it.
#[derive(Debug)]
pub(super) struct TaggedTickets(pub(super) Arc<dyn ProducesTickets>);

impl ProducesTickets for TaggedTickets {
    fn enabled(&self) -> bool {
        self.0.enabled()
    }
    fn lifetime(&self) -> u32 {
        self.0.lifetime()
    }
    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        self.0.encrypt(&tag(plain))
    }
    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        untag(self.0.decrypt(cipher)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::server::ServerSessionMemoryCache;

    const A: Token = [0xa; 16];
    const B: Token = [0xb; 16];

    fn store() -> TaggedSessions {
        TaggedSessions(ServerSessionMemoryCache::new(4))
    }

    #[test]
    fn a_stored_session_reports_the_token_it_was_stored_under() {
        let s = store();
        let ((), none) = processing(&A, || assert!(s.put(b"id".to_vec(), b"v".to_vec())));
        assert_eq!(none, None, "storing is not resuming");
        let (got, resumed) = processing(&B, || s.get(b"id"));
        assert_eq!(got.as_deref(), Some(&b"v"[..]));
        assert_eq!(resumed, Some(A));
        let (got, resumed) = processing(&B, || s.take(b"id"));
        assert_eq!((got.as_deref(), resumed), (Some(&b"v"[..]), Some(A)));
        let (got, resumed) = processing(&B, || s.get(b"id"));
        assert_eq!((got, resumed), (None, None));
    }

    #[test]
    fn outside_processing_a_value_is_stored_untagged() {
        let s = store();
        assert!(s.put(b"id".to_vec(), b"v".to_vec()));
        let (got, resumed) = processing(&B, || s.get(b"id"));
        assert_eq!((got.as_deref(), resumed), (Some(&b"v"[..]), None));
    }

    #[test]
    fn malformed_values_are_unknown_sessions() {
        for bad in [&b""[..], &[TAGGED, 1, 2][..], &[7, 0][..]] {
            let (got, resumed) = processing(&B, || untag(bad.to_vec()));
            assert_eq!((got, resumed), (None, None), "{bad:?}");
        }
    }

    #[test]
    fn nested_processing_restores_the_outer_token() {
        let s = store();
        processing(&A, || s.put(b"a".to_vec(), b"1".to_vec()));
        let (inner, outer) = processing(&B, || {
            let ((), inner) = processing(&[0xc; 16], || {
                s.put(b"c".to_vec(), b"3".to_vec());
            });
            // Back under B: this put is tagged B, and this lookup is the outer call's.
            s.put(b"b".to_vec(), b"2".to_vec());
            s.get(b"a");
            inner
        });
        assert_eq!((inner, outer), (None, Some(A)));
        assert_eq!(processing(&A, || s.get(b"b")).1, Some(B));
        assert_eq!(processing(&A, || s.get(b"c")).1, Some([0xc; 16]));
    }

    #[test]
    fn a_panic_inside_processing_leaves_no_token_behind() {
        let s = store();
        let r = std::panic::catch_unwind(|| processing(&A, || panic!("inside")));
        assert!(r.is_err());
        assert!(s.put(b"id".to_vec(), b"v".to_vec()));
        assert_eq!(processing(&B, || s.get(b"id")).1, None);
    }
}
