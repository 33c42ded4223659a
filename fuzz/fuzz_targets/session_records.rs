//! The session table's untrusted inputs: an accounting log line replayed at start-up (a
//! torn or hand-edited file), a Class a NAS echoes (only ours, unaltered, may open), and the
//! attributes of a correctly signed Accounting-Request (so the table is reached, not just the
//! authenticator check). Nothing may panic; the table's indexes must agree with its sessions
//! after every step, and a Class sealed here must open to the identity sealed.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use radshard::proto::attr::MAX_VALUE_LEN;
use radshard::proto::{verify_request, Code, Packet, PacketBuilder, Secret};
use radshard::session::rebuild::{replay_line, RebuildReport};
use radshard::session::{SessionFilter, SessionStore, SessionsConfig, Update};

fn secret() -> &'static Secret {
    static S: OnceLock<Secret> = OnceLock::new();
    S.get_or_init(|| Secret::new("testing123").expect("secret"))
}

/// A signed Accounting-Request whose attributes are `data` read as (type, length, value).
fn request(data: &[u8], buf: &mut [u8; 4096]) -> Option<Vec<u8>> {
    let mut b = PacketBuilder::request(buf, Code::AccountingRequest, 1, &[0; 16]).ok()?;
    let mut rest = data;
    while let [typ, len, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len()).min(MAX_VALUE_LEN);
        // Message-Authenticator would need signing of its own: left to decode_verify.
        if *typ != 80 && *typ != 0 {
            b.attr(*typ, &tail[..n]).ok()?;
        }
        rest = &tail[n..];
    }
    Some(b.finish(secret()).ok()?.to_vec())
}

fuzz_target!(|data: &[u8]| {
    let config = SessionsConfig {
        max_sessions: 8,
        ..SessionsConfig::default()
    };
    let store = SessionStore::new(config);
    let (which, body) = match data.split_first() {
        Some(x) => x,
        None => return,
    };
    match which % 3 {
        0 => {
            let mut report = RebuildReport::default();
            for line in body.split(|b| *b == b'\n') {
                replay_line(&store, line, &mut report);
            }
        }
        1 => {
            let mut buf = [0u8; MAX_VALUE_LEN];
            assert!(
                store.seal.open(body, &mut buf).is_none(),
                "a Class we never sealed opened"
            );
            if let Some(class) = store.seal.seal(body) {
                assert_eq!(store.seal.open(class.as_bytes(), &mut buf), Some(body));
            }
        }
        _ => {
            let mut pbuf = [0u8; 4096];
            for chunk in body.chunks(200) {
                let Some(bytes) = request(chunk, &mut pbuf) else {
                    continue;
                };
                let Ok(packet) = Packet::parse(&bytes) else {
                    continue;
                };
                let Ok(req) = verify_request(packet, secret(), false) else {
                    continue;
                };
                let mut identity = [0u8; MAX_VALUE_LEN];
                let u = Update::from_request(
                    &req,
                    "nas",
                    "127.0.0.1".parse().expect("ip"),
                    1_000,
                    &store.seal,
                    &mut identity,
                );
                store.apply(&u);
            }
        }
    }
    // The indexes agree with the sessions: every listed session is found by its id and
    // counted under its user, and the per-client counts add up.
    let all = store.list(&SessionFilter::default());
    assert!(all.len() <= 8, "bounded");
    for v in &all {
        assert_eq!(store.get(&v.id).as_ref(), Some(v));
        let of_user = store.list(&SessionFilter {
            user: Some(v.user.clone()),
            ..SessionFilter::default()
        });
        assert!(of_user.iter().any(|s| s.id == v.id));
    }
    let counted: usize = store.open_by_client().iter().map(|(_, n)| n).sum();
    assert_eq!(counted, all.len());
    store.sweep(i64::MAX / 4);
    assert!(store.is_empty(), "everything is stale eventually");
});
