//! Shard steering end to end: one client socket (one 4-tuple) sending valid Access-Requests
//! with random authenticators is spread evenly over every shard.

mod common;

use std::time::{Duration, Instant};

use common::*;
use radshard::proto::{Code, Packet};

const REQUESTS: usize = 8000;
const WINDOW: usize = 200;

#[test]
fn one_client_socket_spreads_over_four_shards() {
    // More shards than this machine's cores is allowed: they run unpinned.
    let s = TestServer::start(4, STANDARD_BODY);
    assert_eq!(s.shards, 4);
    let c = RadClient::new();
    let sec = secret(SECRET);
    let started = Instant::now();
    let mut accepted = 0usize;
    let mut sent = 0usize;
    while sent < REQUESTS {
        let n = WINDOW.min(REQUESTS - sent);
        let mut pending = std::collections::HashMap::new();
        for i in 0..n {
            // Identifiers are unique within a window, so each reply finds its request.
            let id = i as u8;
            let req = access_request(&sec, id, &random_authenticator(), "alice", "alice-pw", true);
            c.send(&req, s.auth);
            pending.insert(id, req);
        }
        sent += n;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !pending.is_empty() && Instant::now() < deadline {
            let Some(reply) = c.recv_timeout(Duration::from_secs(2)) else {
                break;
            };
            let id = Packet::parse(&reply).expect("reply parses").identifier();
            let req = pending.remove(&id).expect("a reply to a pending request");
            assert_eq!(check_reply(&reply, &req, &sec), Code::AccessAccept);
            accepted += 1;
        }
        assert!(
            pending.is_empty(),
            "{} requests of a window unanswered",
            pending.len()
        );
    }
    let elapsed = started.elapsed();
    assert_eq!(accepted, REQUESTS);

    let per_shard: Vec<u64> = s.metrics.iter().map(|m| m.received.get()).collect();
    let total: u64 = per_shard.iter().sum();
    assert_eq!(total, REQUESTS as u64);
    let mean = total as f64 / per_shard.len() as f64;
    let deviations: Vec<String> = per_shard
        .iter()
        .map(|&n| format!("{:+.1}%", (n as f64 - mean) / mean * 100.0))
        .collect();
    println!(
        "{REQUESTS} Access-Requests from one socket in {elapsed:?}: per shard {per_shard:?} \
         (mean {mean}, deviations {deviations:?})"
    );
    for (k, &n) in per_shard.iter().enumerate() {
        let dev = (n as f64 - mean).abs() / mean;
        assert!(
            dev <= 0.15,
            "shard {k} received {n}, {:.1}% from the mean {mean} ({per_shard:?})",
            dev * 100.0
        );
        // Every shard decided its own share.
        assert_eq!(s.metrics[k].replies_with(Code::AccessAccept.as_u8()), n);
    }
}
