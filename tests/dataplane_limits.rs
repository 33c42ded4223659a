//! Per-client rate limits and Proxy-State limits.

mod common;

use std::time::Duration;

use common::*;
use radshard::metrics::DropReason;
use radshard::proto::{attr, Code};

#[test]
fn rate_limited_client_is_throttled_and_counted() {
    // 20 requests/s over one shard: a burst of 60 gets about 20 through (the bucket holds one
    // second's worth), the rest are dropped as rate_limited; another client is unaffected.
    let body = STANDARD_BODY.replacen(
        "limit_proxy_state = true",
        "limit_proxy_state = true\nrate_limit = 20",
        1,
    );
    let s = TestServer::start(1, &body);
    let c = RadClient::new();
    let sec = secret(SECRET);
    let mut sent = Vec::new();
    for i in 0..60u8 {
        let req = access_request(&sec, i, &random_authenticator(), "alice", "alice-pw", true);
        c.send(&req, s.auth);
        sent.push(req);
    }
    let replies = c.drain(SILENCE, Duration::from_secs(5));
    assert!(
        (18..=24).contains(&replies.len()),
        "{} answered of 60",
        replies.len()
    );
    assert_eq!(
        s.dropped(DropReason::RateLimited) as usize,
        60 - replies.len()
    );
    for r in &replies {
        let req = sent
            .iter()
            .find(|q| q[1] == r[1])
            .expect("matching request");
        assert_eq!(check_reply(r, req, &sec), Code::AccessAccept);
    }
}

#[test]
fn proxy_state_without_message_authenticator_is_dropped_when_limited() {
    // The client does not require Message-Authenticator, but limit_proxy_state still drops an
    // Access-Request that carries Proxy-State without one (FreeRADIUS 3.2.5 semantics).
    let body = STANDARD_BODY.replacen(
        "require_message_authenticator = true",
        "require_message_authenticator = false",
        1,
    );
    let s = TestServer::start(1, &body);
    let c = RadClient::new();
    let sec = secret(SECRET);
    let with_ps = access_request_with(
        &sec,
        1,
        &random_authenticator(),
        "alice",
        "alice-pw",
        false,
        &[(attr::PROXY_STATE, b"ps1")],
    );
    c.send(&with_ps, s.auth);
    assert!(c.recv_timeout(SILENCE).is_none(), "dropped");
    assert_eq!(
        s.dropped(DropReason::ProxyStateWithoutMessageAuthenticator),
        1
    );

    // With a Message-Authenticator it is answered, and the Proxy-State comes back.
    let signed = access_request_with(
        &sec,
        2,
        &random_authenticator(),
        "alice",
        "alice-pw",
        true,
        &[(attr::PROXY_STATE, b"ps1")],
    );
    let reply = c.exchange(&signed, s.auth).expect("reply");
    assert_eq!(check_reply(&reply, &signed, &sec), Code::AccessAccept);
    assert_eq!(
        reply_attr(&reply, attr::PROXY_STATE).as_deref(),
        Some(&b"ps1"[..])
    );

    // Without Proxy-State and without MA: accepted (the client does not require MA).
    let plain = access_request(&sec, 3, &random_authenticator(), "alice", "alice-pw", false);
    let reply = c.exchange(&plain, s.auth).expect("reply");
    assert_eq!(check_reply(&reply, &plain, &sec), Code::AccessAccept);
}
