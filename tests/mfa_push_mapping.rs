//! Generic REST push with the JSON field mapping of `[mfa.rest_push]`: an "Entra-style" service
//! with other field names, nested answers, a status URL of its own and a static Authorization
//! header; and a long-polling service that holds the status request open until the user
//! decides.

mod common;

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::mfa::*;
use common::*;
use radshard::proto::Code;

const TOKEN: &str = "Bearer never-log-this-3f9a";

/// What a double saw: POST bodies, and GETs per push id.
#[derive(Default)]
struct Seen {
    posts: Vec<serde_json::Value>,
    gets: HashMap<String, usize>,
    unauthorized: usize,
}

type Shared = Arc<Mutex<Seen>>;

/// An "Entra-style" service: `POST /v1/push` with `{"upn", "nas", "app": "vpn"}` and the
/// Authorization header → `{"data": {"requestId": "<user>/<n>"}}` (a `/` the status URL must
/// encode), then `GET /v1/requests/<user>%2F<n>` → `{"data": {"state": "Pending" | "Approved" |
/// "Denied"}}`: alice approves after 300 ms, bob denies after 200 ms. carol's push is denied
/// at once (`{"data": {"decision": "Denied"}}`), dave's approved at once (`true`). A request
/// without the header gets 401.
fn entra_double() -> (String, Shared) {
    let seen: Shared = Arc::default();
    let log = seen.clone();
    let started: Arc<Mutex<HashMap<String, (String, Instant)>>> = Arc::default();
    let base = http_double(move |req| {
        let mut seen = log.lock().expect("lock");
        if req.header("authorization") != TOKEN {
            seen.unauthorized += 1;
            return (401, "{\"error\":\"unauthorized\"}".into());
        }
        if req.method == "POST" && req.target == "/v1/push" {
            let v: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
            let user = v["upn"].as_str().unwrap_or("").to_string();
            seen.posts.push(v);
            let answer = match user.as_str() {
                "carol" => "{\"data\":{\"decision\":\"Denied\"}}".to_string(),
                "dave" => "{\"data\":{\"decision\":true}}".to_string(),
                _ => {
                    let n = seen.posts.len();
                    let id = format!("{user}/{n}");
                    started
                        .lock()
                        .expect("lock")
                        .insert(format!("{user}%2F{n}"), (user, Instant::now()));
                    format!("{{\"data\":{{\"requestId\":\"{id}\"}}}}")
                }
            };
            return (200, answer);
        }
        let Some(id) = req.target.strip_prefix("/v1/requests/") else {
            return (404, "{}".into());
        };
        *seen.gets.entry(id.to_string()).or_insert(0) += 1;
        let Some((user, at)) = started.lock().expect("lock").get(id).cloned() else {
            return (404, "{}".into());
        };
        let state = match user.as_str() {
            "alice" if at.elapsed() >= Duration::from_millis(300) => "Approved",
            "bob" if at.elapsed() >= Duration::from_millis(200) => "Denied",
            _ => "Pending",
        };
        (200, format!("{{\"data\":{{\"state\":\"{state}\"}}}}"))
    });
    (base, seen)
}

fn entra_settings(base: &str) -> String {
    format!(
        "url = \"{base}/v1/push\"\nwait = \"5s\"\npoll_interval = \"100ms\"\n\
         user_field = \"upn\"\nclient_field = \"nas\"\nextra = {{ app = \"vpn\" }}\n\
         headers = {{ Authorization = \"{TOKEN}\" }}\n\
         id_pointer = \"/data/requestId\"\ndecision_pointer = \"/data/decision\"\n\
         status_url = \"{base}/v1/requests/{{id}}\"\nstatus_pointer = \"/data/state\"\n\
         approved = [\"Approved\"]\ndenied = [\"Denied\"]\npending = [\"Pending\"]\n"
    )
}

fn body(settings: &str) -> String {
    let users = staff_users(&["alice", "bob", "carol", "dave"]);
    let policy = staff_mfa_policy("staff-push", "");
    let mfa = mfa_section("rest_push", "", settings);
    format!("{MFA_CLIENT}{users}{policy}{mfa}")
}

#[test]
fn entra_style_mapping_accepts_and_rejects() {
    let (base, seen) = entra_double();
    let (s, _m) = start_mfa_server(1, &body(&entra_settings(&base)));
    let mut nas = Nas::waiting(Duration::from_secs(8));

    let started = Instant::now();
    let (reply, code) = nas.ask(&s, "alice", "alice-pw", None);
    assert_eq!(code, Code::AccessAccept, "approved");
    assert!(started.elapsed() >= Duration::from_millis(300), "held");
    assert_eq!(
        radshard_reply_session_timeout(&reply),
        session_timeout_3600()
    );
    assert_eq!(nas.ask(&s, "bob", "bob-pw", None).1, Code::AccessReject);
    // Immediate decisions in the POST answer: a listed value, and a boolean.
    assert_eq!(nas.ask(&s, "carol", "carol-pw", None).1, Code::AccessReject);
    assert_eq!(nas.ask(&s, "dave", "dave-pw", None).1, Code::AccessAccept);

    let seen = seen.lock().expect("lock");
    assert_eq!(seen.unauthorized, 0, "every request carried the header");
    assert_eq!(seen.posts.len(), 4);
    assert_eq!(
        seen.posts[0],
        serde_json::json!({ "upn": "alice", "nas": "localhost", "app": "vpn" }),
        "mapped field names and the extra field"
    );
    assert!(
        seen.gets.get("alice%2F1").copied().unwrap_or(0) >= 1,
        "status asked at the encoded id: {:?}",
        seen.gets
    );
    assert!(
        !seen
            .gets
            .keys()
            .any(|k| k.starts_with("carol") || k.starts_with("dave")),
        "no status asked after an immediate decision: {:?}",
        seen.gets
    );
}

fn radshard_reply_session_timeout(reply: &[u8]) -> Option<Vec<u8>> {
    reply_attr(reply, radshard::proto::attr::SESSION_TIMEOUT)
}

/// The header value is sent, but never reaches the server's log, not even when the service
/// refuses it (the binary, to read its log).
#[test]
fn header_value_stays_out_of_the_log() {
    let (base, seen) = entra_double();
    // A different token: the double answers 401, which radshard logs.
    let settings = entra_settings(&base).replace(TOKEN, "Bearer wrong-but-secret-77c1");
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("radshard.toml");
    std::fs::write(&config, config_text(1, "", dir.path(), &body(&settings))).expect("write");
    let log_path = dir.path().join("stderr.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let server = ChildServer::spawn_logging(&config, dir.path(), &[], Stdio::from(log));
    let c = RadClient::new();
    let sec = secret(SECRET);
    let req = access_request(&sec, 1, &random_authenticator(), "alice", "alice-pw", false);
    let reply = c.exchange(&req, server.auth).expect("a reply");
    assert_eq!(check_reply(&reply, &req, &sec), Code::AccessReject);
    drop(server);
    assert_eq!(
        seen.lock().expect("lock").unauthorized,
        1,
        "the header was sent"
    );
    let text = std::fs::read_to_string(&log_path).expect("log");
    assert!(text.contains("401"), "the refusal is logged:\n{text}");
    assert!(
        !text.contains("wrong-but-secret"),
        "header value in the log:\n{text}"
    );
}

/// A long-polling service: `GET /lp/<id>` answers as soon as the user decided, else after
/// holding the request (1 s; 3 s for carol) with "pending" (for bob: 204 without a body).
/// alice approves after 2.5 s, bob denies after 1.5 s, carol approves after 2.5 s.
fn long_poll_double() -> (String, Shared) {
    let seen: Shared = Arc::default();
    let log = seen.clone();
    let started: Arc<Mutex<HashMap<String, (String, Instant)>>> = Arc::default();
    let base = http_double(move |req| {
        if req.method == "POST" {
            let v: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
            let user = v["user"].as_str().unwrap_or("").to_string();
            let id = format!("{user}-lp");
            started
                .lock()
                .expect("lock")
                .insert(id.clone(), (user, Instant::now()));
            log.lock().expect("lock").posts.push(v);
            return (200, format!("{{\"id\":\"{id}\"}}"));
        }
        let id = req.target.strip_prefix("/lp/").unwrap_or("").to_string();
        *log.lock()
            .expect("lock")
            .gets
            .entry(id.clone())
            .or_insert(0) += 1;
        let Some((user, at)) = started.lock().expect("lock").get(&id).cloned() else {
            return (404, "{}".into());
        };
        let decided = |age: Duration| match user.as_str() {
            "alice" | "carol" if age >= Duration::from_millis(2500) => Some(true),
            "bob" if age >= Duration::from_millis(1500) => Some(false),
            _ => None,
        };
        let hold = if user == "carol" {
            Duration::from_secs(3)
        } else {
            Duration::from_secs(1)
        };
        let asked = Instant::now();
        // Held open (bounded) until the user decides.
        let status = loop {
            match decided(at.elapsed()) {
                Some(true) => break "approved",
                Some(false) => break "denied",
                None if asked.elapsed() >= hold => break "pending",
                None => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        if status == "pending" && user == "bob" {
            // The service's own long-poll timeout, without a body: still pending.
            return (204, String::new());
        }
        (200, format!("{{\"status\":\"{status}\"}}"))
    });
    (format!("{base}/lp"), seen)
}

#[test]
fn long_poll_asks_again_at_once_and_rarely() {
    let (url, seen) = long_poll_double();
    let settings = format!(
        "url = \"{url}\"\nwait = \"8s\"\npoll_interval = \"100ms\"\nlong_poll = true\n\
         long_poll_timeout = \"1500ms\"\n"
    );
    let (s, _m) = start_mfa_server(1, &body(&settings));
    let mut nas = Nas::waiting(Duration::from_secs(10));

    let started = Instant::now();
    assert_eq!(nas.ask(&s, "alice", "alice-pw", None).1, Code::AccessAccept);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(2400) && took < Duration::from_millis(4000),
        "answered when the user decided, not a poll later: {took:?}"
    );
    assert_eq!(nas.ask(&s, "bob", "bob-pw", None).1, Code::AccessReject);
    // carol's service holds longer than long_poll_timeout: each timeout is "still pending".
    assert_eq!(nas.ask(&s, "carol", "carol-pw", None).1, Code::AccessAccept);

    let seen = seen.lock().expect("lock");
    let gets = |id: &str| seen.gets.get(id).copied().unwrap_or(0);
    // Polling every 100 ms would have asked about 25 times in 2.5 s.
    assert!(
        (2..=4).contains(&gets("alice-lp")),
        "alice: {} GETs",
        gets("alice-lp")
    );
    assert!((2..=3).contains(&gets("bob-lp")), "bob: {}", gets("bob-lp"));
    assert!(
        (2..=4).contains(&gets("carol-lp")),
        "carol: {}",
        gets("carol-lp")
    );
}
