//! Our own client against an in-process server: Message-Authenticator checks, replayed
//! retransmissions, and absorption of retransmissions while a slow hash is being checked.

mod common;

use std::time::{Duration, Instant};

use common::*;
use radshard::metrics::{DropReason, DuplicateKind};
use radshard::proto::{attr, Code, Packet};

#[test]
fn wrong_message_authenticator_gets_no_reply() {
    let s = TestServer::start(2, STANDARD_BODY);
    let c = RadClient::new();
    let sec = secret(SECRET);

    // A flipped bit in the Message-Authenticator value.
    let mut req = access_request(&sec, 1, &random_authenticator(), "alice", "alice-pw", true);
    let off = Packet::parse(&req)
        .unwrap()
        .message_authenticator_offset()
        .expect("has MA");
    req[off + 2 + 7] ^= 0x01;
    c.send(&req, s.auth);
    // Signed with another secret: the MA does not verify either.
    let other = secret("some-other-secret");
    let req2 = access_request(
        &other,
        2,
        &random_authenticator(),
        "alice",
        "alice-pw",
        true,
    );
    c.send(&req2, s.auth);

    assert_eq!(c.recv_timeout(SILENCE), None, "no reply to a bad MA");
    assert!(s.wait_received(2, Duration::from_secs(2)));
    assert_eq!(s.dropped(DropReason::BadMessageAuthenticator), 2);
    assert_eq!(s.total_drops(), 2, "{:?}", s.drop_breakdown());

    // The same user with a correct packet is answered: the drops were about the packets.
    let ok = access_request(&sec, 3, &random_authenticator(), "alice", "alice-pw", true);
    let reply = c.exchange(&ok, s.auth).expect("a reply");
    assert_eq!(check_reply(&reply, &ok, &sec), Code::AccessAccept);
}

#[test]
fn retransmission_gets_byte_identical_cached_reply() {
    let s = TestServer::start(2, STANDARD_BODY);
    let c = RadClient::new();
    let sec = secret(SECRET);
    let req = access_request(&sec, 77, &random_authenticator(), "alice", "alice-pw", true);

    let first = c.exchange(&req, s.auth).expect("first reply");
    assert_eq!(check_reply(&first, &req, &sec), Code::AccessAccept);
    assert_eq!(
        reply_attr(&first, attr::REPLY_MESSAGE).as_deref(),
        Some(&b"Welcome, alice"[..])
    );
    // Same bytes, same source port: a retransmission.
    let second = c.exchange(&req, s.auth).expect("replayed reply");
    assert_eq!(first, second, "the cached reply is sent verbatim");

    assert_eq!(s.duplicates(DuplicateKind::Replayed), 1);
    assert_eq!(s.duplicates(DuplicateKind::InProgress), 0);
    assert_eq!(s.requests(Code::AccessRequest), 2);
    let accepts = s.replies(Code::AccessAccept);
    assert_eq!(accepts, 2, "two Access-Accepts sent");
    assert_eq!(
        accepts - s.duplicates(DuplicateKind::Replayed),
        1,
        "only one accept decision"
    );

    // Same identifier but a new authenticator is a new request: decided afresh, new bytes.
    let mut fresh = access_request(&sec, 77, &random_authenticator(), "alice", "alice-pw", true);
    let third = c.exchange(&fresh, s.auth).expect("reply to a new request");
    assert_eq!(check_reply(&third, &fresh, &sec), Code::AccessAccept);
    assert_ne!(third, first);
    assert_eq!(s.duplicates(DuplicateKind::Replayed), 1);

    // The same bytes from another source port are another NAS socket: not a duplicate.
    fresh.clear();
    let other = RadClient::new();
    let again = other.exchange(&req, s.auth).expect("reply");
    assert_eq!(check_reply(&again, &req, &sec), Code::AccessAccept);
    assert_eq!(s.duplicates(DuplicateKind::Replayed), 1);
    assert_eq!(s.replies(Code::AccessAccept), 4);
}

#[test]
fn retransmissions_in_progress_are_absorbed() {
    let started = Instant::now();
    let hash = bcrypt::hash("slow-pw", 10).expect("bcrypt");
    let hashing = started.elapsed();
    let body = format!(
        "{STANDARD_BODY}\n[[users]]\nname = \"carol\"\npassword_hash = {hash:?}\nreply = {{ Reply-Message = \"slow hello\" }}\n"
    );
    let s = TestServer::start(2, &body);
    let c = RadClient::new();
    let sec = secret(SECRET);
    let req = access_request(&sec, 9, &random_authenticator(), "carol", "slow-pw", true);

    let t0 = Instant::now();
    c.send(&req, s.auth);
    for _ in 0..3 {
        c.send(&req, s.auth);
    }
    let sent_copies = t0.elapsed();
    let first = c
        .recv_timeout(Duration::from_secs(10))
        .expect("the slow request is answered");
    let answer_after = t0.elapsed();
    assert_eq!(check_reply(&first, &req, &sec), Code::AccessAccept);
    assert_eq!(
        reply_attr(&first, attr::REPLY_MESSAGE).as_deref(),
        Some(&b"slow hello"[..])
    );
    let rest = c.drain(SILENCE, Duration::from_secs(5));
    println!(
        "bcrypt cost 10: test-side hash {hashing:?}; copies sent within {sent_copies:?}; \
         answered after {answer_after:?}; {} more datagram(s)",
        rest.len()
    );
    for r in &rest {
        assert_eq!(r, &first, "every reply is byte-identical");
    }
    let in_progress = s.duplicates(DuplicateKind::InProgress);
    let replayed = s.duplicates(DuplicateKind::Replayed);
    assert!(
        in_progress >= 1,
        "copies sent while the hash was computed are absorbed (in_progress={in_progress}, \
         replayed={replayed}, answer after {answer_after:?})"
    );
    assert_eq!(in_progress + replayed, 3, "each copy is a duplicate");
    assert_eq!(
        rest.len() as u64,
        replayed,
        "one reply for the original, one per copy that came after the answer"
    );
    assert_eq!(
        s.replies(Code::AccessAccept) - replayed,
        1,
        "exactly one decision"
    );

    // A wrong password for the slow user is rejected (on the slow path as well).
    let bad = access_request(&sec, 10, &random_authenticator(), "carol", "nope", true);
    let r = c.exchange(&bad, s.auth).expect("reply");
    assert_eq!(check_reply(&r, &bad, &sec), Code::AccessReject);
}

/// The `in_progress` and `reply_cache_entries` gauges describe the cache once the server is
/// idle again: after a slow-path answer nothing is in progress any more.
#[test]
fn gauges_settle_after_a_slow_path_answer() {
    let hash = bcrypt::hash("slow-pw", 4).expect("bcrypt");
    let body = format!("{STANDARD_BODY}\n[[users]]\nname = \"carol\"\npassword_hash = {hash:?}\n");
    let s = TestServer::start(1, &body);
    let c = RadClient::new();
    let sec = secret(SECRET);
    let req = access_request(&sec, 1, &random_authenticator(), "carol", "slow-pw", true);
    let r = c.exchange(&req, s.auth).expect("reply");
    assert_eq!(check_reply(&r, &req, &sec), Code::AccessAccept);
    let settled = wait_until(Duration::from_secs(2), || {
        s.sum(|m| m.in_progress.get()) == 0 && s.sum(|m| m.reply_cache_entries.get()) == 1
    });
    assert!(
        settled,
        "gauges after the answer: in_progress={} reply_cache_entries={} (expected 0 and 1)",
        s.sum(|m| m.in_progress.get()),
        s.sum(|m| m.reply_cache_entries.get())
    );
}
