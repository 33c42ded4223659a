//! The OTP challenge flow with the privacyIDEA provider, end to end through the shards and the
//! MFA store's HTTP client, against a local test double of privacyIDEA's `/validate/check`.
//!
//! The double speaks privacyIDEA 3.x's wire format: a form-encoded POST (`user`, `realm`,
//! `pass`[, `transaction_id`]) answered with JSON `{"result": {"status", "value",
//! "authentication"}, "detail": {"message", …}}` (errors: `result.status = false`,
//! `result.error.{code,message}`), as privacyIDEA 3.14 sends it. It is not the real server:
//! a test against a pip-installed privacyIDEA is still to be written.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::mfa::*;
use common::*;
use radshard::proto::{attr, Code};

const ACCEPT: &str = r#"{"detail":{"message":"matching 1 tokens","otplen":6,"serial":"HOTP-ALICE","threadid":1,"type":"hotp"},"id":2,"jsonrpc":"2.0","result":{"authentication":"ACCEPT","status":true,"value":true},"version":"privacyIDEA 3.14"}"#;
const REJECT: &str = r#"{"detail":{"message":"wrong otp value","threadid":1},"id":2,"jsonrpc":"2.0","result":{"authentication":"REJECT","status":true,"value":false},"version":"privacyIDEA 3.14"}"#;
const NO_TOKEN: &str = r#"{"detail":{"message":"The user has no tokens assigned","threadid":1},"id":2,"jsonrpc":"2.0","result":{"authentication":"REJECT","status":true,"value":false},"version":"privacyIDEA 3.14"}"#;

type Seen = Arc<Mutex<Vec<HashMap<String, String>>>>;

fn form(body: &str) -> HashMap<String, String> {
    // The values in this test are plain ASCII without escapes.
    body.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// privacyIDEA double: alice's token accepts 755224 (bob's too, after 600 ms), erin has no
/// token; every request's form is recorded.
fn privacyidea_double() -> (String, Seen) {
    let seen: Seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let url = http_double(move |req| {
        let f = form(&req.body_text());
        let user = f.get("user").cloned().unwrap_or_default();
        let pass = f.get("pass").cloned().unwrap_or_default();
        log.lock().expect("lock").push(f);
        let answer = match (user.as_str(), pass.as_str()) {
            ("alice", "755224") => ACCEPT,
            ("bob", "755224") => {
                std::thread::sleep(Duration::from_millis(600));
                ACCEPT
            }
            ("erin", _) => NO_TOKEN,
            _ => REJECT,
        };
        (200, answer.to_string())
    });
    (url, seen)
}

fn body(url: &str, extra: &str) -> String {
    let users = staff_users(&["alice", "bob", "erin"]);
    let policy = staff_mfa_policy("staff-vpn", "auth_methods = [\"pap\"]\n");
    let mfa = mfa_section(
        "privacyidea",
        extra,
        &format!("url = \"{url}\"\nrealm = \"ldaprealm\"\ntimeout = \"2s\""),
    );
    format!("{MFA_CLIENT}{users}{policy}{mfa}")
}

/// Primary authentication that must be challenged, with a prompt; returns the State.
fn challenge(nas: &mut Nas, s: &TestServer, user: &str, pw: &str) -> Vec<u8> {
    let (_, reply, state) = nas.challenge(s, user, pw);
    assert!(reply_attr(&reply, attr::REPLY_MESSAGE).is_some());
    state
}

#[test]
fn privacyidea_code_after_challenge() {
    let (url, seen) = privacyidea_double();
    let (s, m) = start_mfa_server(2, &body(&url, ""));
    let mut nas = Nas::new();

    // Right code → Accept with the policy's attributes; privacyIDEA saw user, realm, pass.
    let state = challenge(&mut nas, &s, "alice", "alice-pw");
    let (reply, code) = nas.ask(&s, "alice", "755224", Some(&state));
    assert_eq!(code, Code::AccessAccept);
    assert_eq!(
        reply_attr(&reply, attr::SESSION_TIMEOUT),
        session_timeout_3600()
    );
    {
        let seen = seen.lock().expect("lock");
        assert_eq!(
            seen.len(),
            1,
            "the primary authentication does not call privacyIDEA"
        );
        assert_eq!(seen[0].get("user").map(String::as_str), Some("alice"));
        assert_eq!(seen[0].get("realm").map(String::as_str), Some("ldaprealm"));
        assert_eq!(seen[0].get("pass").map(String::as_str), Some("755224"));
    }
    // Replayed State → Reject without asking privacyIDEA.
    let (_, code) = nas.ask(&s, "alice", "755224", Some(&state));
    assert_eq!(code, Code::AccessReject);
    assert_eq!(seen.lock().expect("lock").len(), 1);

    // Wrong code → Reject.
    let state = challenge(&mut nas, &s, "alice", "alice-pw");
    let (_, code) = nas.ask(&s, "alice", "111111", Some(&state));
    assert_eq!(code, Code::AccessReject);

    // No token at privacyIDEA → Reject (unenrolled = "reject", the default).
    let state = challenge(&mut nas, &s, "erin", "erin-pw");
    let (_, code) = nas.ask(&s, "erin", "123456", Some(&state));
    assert_eq!(code, Code::AccessReject);

    // A slow check: five retransmissions while privacyIDEA thinks → one HTTP request, and
    // every copy gets the same bytes.
    let before = seen.lock().expect("lock").len();
    let state = challenge(&mut nas, &s, "bob", "bob-pw");
    let req = nas.request("bob", "755224", Some(&state));
    nas.c.send(&req, s.auth);
    for _ in 0..5 {
        std::thread::sleep(Duration::from_millis(60));
        nas.c.send(&req, s.auth);
    }
    let first = nas.c.recv_timeout(REPLY_WAIT).expect("a reply");
    assert_eq!(check_reply(&first, &req, &nas.sec), Code::AccessAccept);
    // Copies that arrived after the answer get it verbatim; ones absorbed meanwhile get none.
    for _ in 0..2 {
        nas.c.send(&req, s.auth);
        assert_eq!(nas.c.recv_timeout(REPLY_WAIT).as_deref(), Some(&first[..]));
    }
    assert_eq!(
        seen.lock().expect("lock").len(),
        before + 1,
        "one check for all copies"
    );

    assert_eq!(m.outcome_count("accept"), 2);
    assert_eq!(m.outcome_count("mfa_bad_code"), 1);
    assert_eq!(m.outcome_count("mfa_not_enrolled"), 1);
    assert_eq!(m.outcome_count("mfa_state_replayed"), 1);
    drop(s);

    // privacyIDEA unreachable: fail-secure by default…
    let dead = format!("http://127.0.0.1:{}", free_tcp_port());
    let s = TestServer::start(1, &body(&dead, ""));
    let state = challenge(&mut nas, &s, "alice", "alice-pw");
    let (_, code) = nas.ask(&s, "alice", "755224", Some(&state));
    assert_eq!(code, Code::AccessReject, "fail-secure");
    drop(s);
    // …fail-safe when configured: the primary result stands.
    let (s, m) = start_mfa_server(1, &body(&dead, "on_unreachable = \"accept\""));
    let state = challenge(&mut nas, &s, "alice", "alice-pw");
    let (reply, code) = nas.ask(&s, "alice", "755224", Some(&state));
    assert_eq!(code, Code::AccessAccept, "fail-safe");
    assert!(reply_attr(&reply, attr::SESSION_TIMEOUT).is_some());
    assert_eq!(m.outcome_count("mfa_unavailable_failsafe"), 1);
}
