//! Generic REST push: the Access-Request is held while the push is pending; retransmissions
//! and copies of the attempt are absorbed — exactly one push reaches the provider and every
//! retransmission gets the same reply bytes. Approve → Accept (with the policy's attributes),
//! deny → Reject, no answer within `wait` → Reject. CHAP works with push.
//!
//! The provider is a local HTTP test double of the generic protocol: `POST /push` with
//! `{"user": …, "client": …}` answered `{"id": …}`, then `GET /push/{id}` polled until it
//! answers `{"status": "approved"}` or `"denied"`.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use radshard::proto::{attr, Code};

type Pushes = Arc<Mutex<HashMap<String, usize>>>;

/// The push service: `POST /push` → `{"id"}` at once; `GET /push/<id>` → pending until the
/// "user" decides: alice and dave approve after 500 ms, bob denies after 200 ms, carol never
/// answers. Counts the pushes (POSTs) per user.
fn push_double() -> (String, Pushes) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/push", l.local_addr().expect("addr"));
    let pushes: Pushes = Arc::new(Mutex::new(HashMap::new()));
    let log = pushes.clone();
    let started: Arc<Mutex<HashMap<String, (String, Instant)>>> = Arc::default();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut conn) = conn else { return };
            let (log, started) = (log.clone(), started.clone());
            std::thread::spawn(move || {
                let mut r = BufReader::new(conn.try_clone().expect("clone"));
                let (mut line, mut len, mut target) = (String::new(), 0usize, String::new());
                loop {
                    line.clear();
                    if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if target.is_empty() {
                        target = line
                            .split_whitespace()
                            .take(2)
                            .collect::<Vec<_>>()
                            .join(" ");
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0u8; len];
                let _ = r.read_exact(&mut body);
                let answer = if target == "POST /push" {
                    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                    let user = v["user"].as_str().unwrap_or("").to_string();
                    assert_eq!(v["client"].as_str(), Some("localhost"));
                    let mut log = log.lock().expect("lock");
                    let n = log.entry(user.clone()).or_insert(0);
                    *n += 1;
                    let id = format!("{user}-{n}");
                    started
                        .lock()
                        .expect("lock")
                        .insert(id.clone(), (user, Instant::now()));
                    format!("{{\"id\":\"{id}\"}}")
                } else {
                    let id = target.strip_prefix("GET /push/").unwrap_or("");
                    let (user, at) = started
                        .lock()
                        .expect("lock")
                        .get(id)
                        .cloned()
                        .expect("a known push id");
                    let age = at.elapsed();
                    let status = match user.as_str() {
                        "alice" | "dave" if age >= Duration::from_millis(500) => "approved",
                        "bob" if age >= Duration::from_millis(200) => "denied",
                        _ => "pending",
                    };
                    format!("{{\"status\":\"{status}\"}}")
                };
                let _ = write!(
                    conn,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                    answer.len()
                );
            });
        }
    });
    (url, pushes)
}

fn body(url: &str) -> String {
    let users: String = ["alice", "bob", "carol", "dave"]
        .iter()
        .map(|u| {
            format!("[[users]]\nname = \"{u}\"\npassword = \"{u}-pw\"\ngroups = [\"staff\"]\n\n")
        })
        .collect();
    format!(
        r#"
[[clients]]
name = "localhost"
addresses = ["127.0.0.1"]
secret = "testing123"
require_message_authenticator = false

{users}
[[policies]]
name = "staff-push"
groups = ["staff"]
mfa = true
reply = {{ Session-Timeout = 3600 }}

[mfa]
provider = "rest_push"

[mfa.rest_push]
url = "{url}"
wait = "1s"
poll_interval = "100ms"
"#
    )
}

#[test]
fn push_holds_the_request_and_sends_once() {
    let (url, pushes) = push_double();
    let s = TestServer::start(2, &body(&url));
    let c = RadClient::new();
    let sec = secret(SECRET);

    // One request, five retransmissions while the push is pending, and a copy with a new
    // Identifier (as a NAS that gave up on the first id): one push, one reply per packet.
    let req = access_request(&sec, 1, &random_authenticator(), "alice", "alice-pw", false);
    let copy = access_request(&sec, 2, &random_authenticator(), "alice", "alice-pw", false);
    let started = Instant::now();
    c.send(&req, s.auth);
    for _ in 0..5 {
        std::thread::sleep(Duration::from_millis(50));
        c.send(&req, s.auth);
    }
    c.send(&copy, s.auth);
    let mut replies = vec![c.recv_timeout(REPLY_WAIT).expect("a reply")];
    replies.extend(c.drain(Duration::from_millis(400), Duration::from_secs(5)));
    assert!(
        started.elapsed() >= Duration::from_millis(450),
        "held for the push"
    );
    assert_eq!(
        replies.len(),
        2,
        "one reply per distinct request: {replies:?}"
    );
    let first = replies
        .iter()
        .find(|r| r[1] == 1)
        .expect("a reply to the first request")
        .clone();
    assert_eq!(check_reply(&first, &req, &sec), Code::AccessAccept);
    assert_eq!(
        reply_attr(&first, attr::SESSION_TIMEOUT),
        Some(3600u32.to_be_bytes().to_vec())
    );
    let second = replies
        .iter()
        .find(|r| r[1] == 2)
        .expect("a reply to the copy");
    assert_eq!(check_reply(second, &copy, &sec), Code::AccessAccept);
    // Later retransmissions get the very same bytes.
    for _ in 0..2 {
        c.send(&req, s.auth);
        assert_eq!(c.recv_timeout(REPLY_WAIT).as_deref(), Some(&first[..]));
    }
    assert_eq!(
        pushes.lock().expect("lock").get("alice"),
        Some(&1),
        "exactly one push"
    );

    // Two devices (Calling-Station-Id) logging in as alice at once: one push each.
    let station = |id: u8, mac: &[u8]| {
        access_request_with(
            &sec,
            id,
            &random_authenticator(),
            "alice",
            "alice-pw",
            false,
            &[(attr::CALLING_STATION_ID, mac)],
        )
    };
    c.send(&station(6, b"aa-aa"), s.auth);
    c.send(&station(7, b"bb-bb"), s.auth);
    assert!(c.recv_timeout(REPLY_WAIT).is_some());
    assert!(c.recv_timeout(REPLY_WAIT).is_some());
    assert_eq!(
        pushes.lock().expect("lock").get("alice"),
        Some(&3),
        "one push per device"
    );

    // Denied → Reject.
    let req = access_request(&sec, 3, &random_authenticator(), "bob", "bob-pw", false);
    let reply = c.exchange(&req, s.auth).expect("a reply");
    assert_eq!(check_reply(&reply, &req, &sec), Code::AccessReject);

    // Not answered within wait (1 s) → Reject, after about the wait.
    let started = Instant::now();
    let req = access_request(&sec, 4, &random_authenticator(), "carol", "carol-pw", false);
    let reply = c.exchange(&req, s.auth).expect("a reply");
    assert_eq!(check_reply(&reply, &req, &sec), Code::AccessReject);
    assert!(
        started.elapsed() < Duration::from_millis(2900),
        "{:?}",
        started.elapsed()
    );

    // Wrong primary password: no push at all.
    let req = access_request(&sec, 5, &random_authenticator(), "dave", "wrong", false);
    let reply = c.exchange(&req, s.auth).expect("a reply");
    assert_eq!(check_reply(&reply, &req, &sec), Code::AccessReject);
    assert_eq!(pushes.lock().expect("lock").get("dave"), None);

    // CHAP works with push (radclient computes CHAP-Password from the cleartext).
    let out = stdout_of(&radclient(
        s.auth,
        "auth",
        SECRET,
        "User-Name = dave\nCHAP-Password = dave-pw\n",
    ));
    assert!(
        out.contains("Received Access-Accept"),
        "radclient said:\n{out}"
    );

    let m = radshard::backend::mfa::metrics().expect("mfa metrics");
    use std::sync::atomic::Ordering::Relaxed;
    assert_eq!(
        m.pushes_sent.load(Relaxed),
        6,
        "alice (3 devices), bob, carol, dave"
    );
    assert!(m.push_joined.load(Relaxed) >= 1, "the copy joined");
    assert_eq!(
        m.outcome_count("accept"),
        5,
        "alice: request, copy, 2 devices; dave"
    );
    assert_eq!(m.outcome_count("mfa_push_denied"), 2, "bob, carol");
    assert_eq!(m.pushes_pending.load(Relaxed), 0);
}
