//! Duo (`[mfa] provider = "duo"`), end to end over real UDP on loopback, against a local test
//! double of Duo's Auth API v2 that checks every request's signature on its own (canonical
//! string and HMAC-SHA512 computed here, not with radshard's code) and refuses bad ones with
//! Duo's 401 `40103`.
//!
//! Users at the double: alice and dave approve a push after 500 ms, bob denies after 200 ms,
//! carol never answers; erin has no device (`enroll`), frank is bypassed (`allow`), gina is
//! refused (`deny`), ivan meets a Duo outage (503). Passcode `123456` is right for everyone.

mod common;

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::mfa::*;
use common::*;
use hmac::{Hmac, Mac};
use radshard::proto::{attr, Code};

const IKEY: &str = "DIXXXXXXXXXXXXXXXXXX";
const SKEY: &str = "test-secret-key-0123456789abcdefghijklmn";

/// What the double saw: requests by "path user" (e.g. `/auth/v2/preauth alice`), pushes and
/// passcode checks per user, and requests refused for their signature.
#[derive(Default)]
struct Seen {
    calls: HashMap<String, usize>,
    bad_signatures: usize,
}

type Shared = Arc<Mutex<Seen>>;

impl Seen {
    fn count(&self, what: &str) -> usize {
        self.calls.get(what).copied().unwrap_or(0)
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn form(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// Duo's canonical parameter encoding, written here independently: RFC 3986 unreserved
/// characters as is, every other byte `%XX`; pairs sorted.
fn duo_params(params: &[(String, String)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect::<String>()
    };
    let mut pairs: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect();
    pairs.sort();
    pairs.join("&")
}

fn signature_ok(
    skey: &str,
    auth: &str,
    date: &str,
    method: &str,
    host: &str,
    path: &str,
    params: &[(String, String)],
) -> bool {
    let Some(b64) = auth.strip_prefix("Basic ") else {
        return false;
    };
    let Ok(pair) = data_encoding::BASE64.decode(b64.trim().as_bytes()) else {
        return false;
    };
    let pair = String::from_utf8_lossy(&pair).into_owned();
    let Some((ikey, sig)) = pair.split_once(':') else {
        return false;
    };
    if ikey != IKEY || date.is_empty() {
        return false;
    }
    let canon = format!(
        "{date}\n{}\n{}\n{path}\n{}",
        method.to_uppercase(),
        host.to_lowercase(),
        duo_params(params)
    );
    let mut mac = Hmac::<sha2::Sha512>::new_from_slice(skey.as_bytes()).expect("any key length");
    mac.update(canon.as_bytes());
    let Ok(sig) = data_encoding::HEXLOWER.decode(sig.as_bytes()) else {
        return false;
    };
    mac.verify_slice(&sig).is_ok()
}

fn ok(response: serde_json::Value) -> (u16, String) {
    (
        200,
        serde_json::json!({"stat": "OK", "response": response}).to_string(),
    )
}

/// Starts the double; its base URL (`http://127.0.0.1:PORT`) and what it saw.
fn duo_double() -> (String, Shared) {
    let seen: Shared = Arc::default();
    let log = seen.clone();
    let started: Arc<Mutex<HashMap<String, (String, Instant)>>> = Arc::default();
    let base = http_double(move |req| {
        let HttpRequest {
            method,
            target,
            headers,
            body,
        } = req;
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let params = if method == "POST" {
            form(&String::from_utf8_lossy(&body))
        } else {
            form(query)
        };
        let get = |k: &str| {
            params
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let h = |k: &str| headers.get(k).cloned().unwrap_or_default();
        if !signature_ok(
            SKEY,
            &h("authorization"),
            &h("date"),
            &method,
            &h("host"),
            path,
            &params,
        ) {
            log.lock().expect("lock").bad_signatures += 1;
            (
                        401,
                        r#"{"stat":"FAIL","code":40103,"message":"Invalid signature in request credentials"}"#
                            .to_string(),
                    )
        } else {
            let user = get("username");
            let mut seen = log.lock().expect("lock");
            match (method.as_str(), path) {
                ("POST", "/auth/v2/preauth") => {
                    *seen.calls.entry(format!("{path} {user}")).or_insert(0) += 1;
                    match user.as_str() {
                        "erin" => ok(
                            serde_json::json!({"result": "enroll", "status_msg": "Enroll first", "enroll_portal_url": "https://example.invalid/"}),
                        ),
                        "frank" => {
                            ok(serde_json::json!({"result": "allow", "status_msg": "Bypass"}))
                        }
                        "gina" => {
                            ok(serde_json::json!({"result": "deny", "status_msg": "Locked out"}))
                        }
                        "ivan" => (
                            503,
                            r#"{"stat":"FAIL","code":50003,"message":"Service unavailable"}"#
                                .to_string(),
                        ),
                        _ => ok(
                            serde_json::json!({"result": "auth", "status_msg": "Account is active", "devices": [{"device": "DPFZRS9FB0D46QFTM891", "capabilities": ["push", "mobile_otp"]}]}),
                        ),
                    }
                }
                ("POST", "/auth/v2/auth") if get("factor") == "push" => {
                    assert_eq!(get("device"), "auto");
                    assert_eq!(get("async"), "1");
                    let n = seen.calls.entry(format!("push {user}")).or_insert(0);
                    *n += 1;
                    let txid = format!("tx-{user}-{n}");
                    started
                        .lock()
                        .expect("lock")
                        .insert(txid.clone(), (user, Instant::now()));
                    ok(serde_json::json!({"txid": txid}))
                }
                ("POST", "/auth/v2/auth") if get("factor") == "passcode" => {
                    *seen.calls.entry(format!("passcode {user}")).or_insert(0) += 1;
                    let result = if get("passcode") == "123456" {
                        "allow"
                    } else {
                        "deny"
                    };
                    ok(
                        serde_json::json!({"result": result, "status": result, "status_msg": "checked"}),
                    )
                }
                ("GET", "/auth/v2/auth_status") => {
                    let known = started.lock().expect("lock").get(&get("txid")).cloned();
                    match known {
                                None => (400, r#"{"stat":"FAIL","code":40002,"message":"Invalid request parameters","message_detail":"txid"}"#.to_string()),
                                Some((user, at)) => {
                                    let age = at.elapsed();
                                    let result = match user.as_str() {
                                        "alice" | "dave" if age >= Duration::from_millis(500) => "allow",
                                        "bob" if age >= Duration::from_millis(200) => "deny",
                                        _ => "waiting",
                                    };
                                    ok(serde_json::json!({"result": result, "status": "pushed", "status_msg": "Pushed a login request"}))
                                }
                            }
                }
                _ => (
                    404,
                    r#"{"stat":"FAIL","code":40401,"message":"Resource not found"}"#.to_string(),
                ),
            }
        }
    });
    (base, seen)
}

fn body(base: &str, skey: &str, duo_extra: &str, mfa_extra: &str) -> String {
    let users = staff_users(&[
        "alice", "bob", "carol", "dave", "erin", "frank", "gina", "ivan",
    ]);
    let policy = staff_mfa_policy("staff-duo", "");
    let mfa = mfa_section(
        "duo",
        mfa_extra,
        &format!(
            "api_host = \"{base}\"\nintegration_key = \"{IKEY}\"\nsecret_key = \"{skey}\"\n\
             wait = \"2s\"\npoll_interval = \"100ms\"\ntimeout = \"2s\"\n{duo_extra}"
        ),
    );
    format!("{MFA_CLIENT}{users}{policy}{mfa}")
}

fn pap(sec: &radshard::proto::Secret, id: u8, user: &str, pw: &str) -> Vec<u8> {
    access_request(sec, id, &random_authenticator(), user, pw, false)
}

fn seen_count(seen: &Shared, what: &str) -> usize {
    seen.lock().expect("lock").count(what)
}

#[test]
fn duo_push() {
    let (base, seen) = duo_double();
    let s = TestServer::start(2, &body(&base, SKEY, "factor = \"push\"", ""));
    let c = RadClient::new();
    let sec = secret(SECRET);

    // Approved, with five retransmissions while the push is pending and a copy with a new
    // Identifier: one preauth, one push at Duo, identical reply bytes for every copy.
    approved_push_with_copies(&s, "alice");
    assert_eq!(seen_count(&seen, "push alice"), 1, "exactly one push");
    assert_eq!(seen_count(&seen, "/auth/v2/preauth alice"), 1);

    // Approved, with FreeRADIUS's radclient, CHAP (push serves any method) and PAP.
    for attrs in [
        "User-Name = dave\nCHAP-Password = dave-pw\n",
        "User-Name = dave\nUser-Password = dave-pw\nMessage-Authenticator = 0x00\n",
    ] {
        let out = stdout_of(&radclient(s.auth, "auth", SECRET, attrs));
        assert!(out.contains("Received Access-Accept"), "radclient:\n{out}");
        assert!(out.contains("Session-Timeout = 3600"), "radclient:\n{out}");
    }
    assert_eq!(seen_count(&seen, "push dave"), 2);

    // Denied → Reject.
    let req = pap(&sec, 3, "bob", "bob-pw");
    let reply = c.exchange(&req, s.auth).expect("a reply");
    assert_eq!(check_reply(&reply, &req, &sec), Code::AccessReject);

    // Not answered → Reject once the wait (2 s) has passed, not before.
    let started = Instant::now();
    let req = pap(&sec, 4, "carol", "carol-pw");
    c.send(&req, s.auth);
    let reply = c
        .recv_timeout(Duration::from_secs(6))
        .expect("a reply after the wait");
    assert_eq!(check_reply(&reply, &req, &sec), Code::AccessReject);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(5),
        "{took:?}"
    );

    // Preauth allow → Accept (bypass) with the policy's attributes, no push.
    let req = pap(&sec, 5, "frank", "frank-pw");
    let reply = c.exchange(&req, s.auth).expect("a reply");
    assert_eq!(check_reply(&reply, &req, &sec), Code::AccessAccept);
    assert!(reply_attr(&reply, attr::SESSION_TIMEOUT).is_some());
    assert_eq!(seen_count(&seen, "push frank"), 0);

    // Preauth enroll → the unenrolled policy (reject by default); deny → Reject; no push.
    for (id, user) in [(6u8, "erin"), (7, "gina")] {
        let req = pap(&sec, id, user, &format!("{user}-pw"));
        let reply = c.exchange(&req, s.auth).expect("a reply");
        assert_eq!(
            check_reply(&reply, &req, &sec),
            Code::AccessReject,
            "{user}"
        );
        assert_eq!(seen_count(&seen, &format!("push {user}")), 0);
    }

    // Wrong primary password: Duo is not asked at all.
    let req = pap(&sec, 8, "alice", "wrong");
    let reply = c.exchange(&req, s.auth).expect("a reply");
    assert_eq!(check_reply(&reply, &req, &sec), Code::AccessReject);
    assert_eq!(seen_count(&seen, "/auth/v2/preauth alice"), 1);

    // Duo answering 503 → on_unreachable, fail-secure by default.
    let req = pap(&sec, 9, "ivan", "ivan-pw");
    let reply = c.exchange(&req, s.auth).expect("a reply");
    assert_eq!(check_reply(&reply, &req, &sec), Code::AccessReject);
    assert_eq!(seen.lock().expect("lock").bad_signatures, 0);
    drop(s);

    // Preauth enroll with unenrolled = "accept" → Accept.
    let s = TestServer::start(1, &body(&base, SKEY, "", "unenrolled = \"accept\""));
    let req = pap(&sec, 10, "erin", "erin-pw");
    let reply = c.exchange(&req, s.auth).expect("a reply");
    assert_eq!(check_reply(&reply, &req, &sec), Code::AccessAccept);
    assert_eq!(seen.lock().expect("lock").bad_signatures, 0);
}

#[test]
fn duo_passcode() {
    let (base, seen) = duo_double();
    let s = TestServer::start(2, &body(&base, SKEY, "factor = \"passcode\"", ""));
    let pw = |user: &str, pw: &str, state: Option<&str>| {
        let state = state.map_or(String::new(), |s| format!("State = {s}\n"));
        stdout_of(&radclient(
            s.auth,
            "auth",
            SECRET,
            &format!(
                "User-Name = {user}\nUser-Password = {pw}\n{state}Message-Authenticator = 0x00\n"
            ),
        ))
    };

    // Primary accept → preauth → Access-Challenge with a State; the right code → Accept.
    let out = pw("alice", "alice-pw", None);
    assert!(out.contains("Received Access-Challenge"), "{out}");
    let state = radclient_state(&out);
    assert_eq!(seen_count(&seen, "passcode alice"), 0, "no code yet");
    let out = pw("alice", "123456", Some(&state));
    assert!(out.contains("Received Access-Accept"), "{out}");
    assert!(out.contains("Session-Timeout = 3600"), "{out}");
    assert_eq!(seen_count(&seen, "passcode alice"), 1);
    assert_eq!(seen_count(&seen, "push alice"), 0, "no push with passcode");

    // The same State again → Reject, Duo not asked.
    let out = pw("alice", "123456", Some(&state));
    assert!(out.contains("Received Access-Reject"), "{out}");
    assert_eq!(seen_count(&seen, "passcode alice"), 1);

    // Wrong code → Reject.
    let out = pw("alice", "alice-pw", None);
    let state = radclient_state(&out);
    let out = pw("alice", "654321", Some(&state));
    assert!(out.contains("Received Access-Reject"), "{out}");
    assert_eq!(seen_count(&seen, "passcode alice"), 2);

    // Bypass → Accept without a challenge; enroll and deny → Reject without one.
    let out = pw("frank", "frank-pw", None);
    assert!(out.contains("Received Access-Accept"), "{out}");
    for user in ["erin", "gina"] {
        let out = pw(user, &format!("{user}-pw"), None);
        assert!(out.contains("Received Access-Reject"), "{user}: {out}");
    }

    // CHAP cannot carry a code: Reject before Duo is asked.
    let before = seen_count(&seen, "/auth/v2/preauth bob");
    let out = stdout_of(&radclient(
        s.auth,
        "auth",
        SECRET,
        "User-Name = bob\nCHAP-Password = bob-pw\n",
    ));
    assert!(out.contains("Received Access-Reject"), "{out}");
    assert_eq!(seen_count(&seen, "/auth/v2/preauth bob"), before);
    assert_eq!(seen.lock().expect("lock").bad_signatures, 0);
}

#[test]
fn duo_unreachable_and_wrong_key() {
    let c = RadClient::new();
    let sec = secret(SECRET);
    let dead = format!("http://127.0.0.1:{}", free_tcp_port());

    // Duo down: fail-secure by default…
    let s = TestServer::start(1, &body(&dead, SKEY, "", ""));
    let req = pap(&sec, 1, "alice", "alice-pw");
    let reply = c.exchange(&req, s.auth).expect("a reply");
    assert_eq!(
        check_reply(&reply, &req, &sec),
        Code::AccessReject,
        "fail-secure"
    );
    drop(s);
    // …fail-safe when configured: the primary result (and the policy's attributes) stands.
    let s = TestServer::start(1, &body(&dead, SKEY, "", "on_unreachable = \"accept\""));
    let req = pap(&sec, 2, "alice", "alice-pw");
    let reply = c.exchange(&req, s.auth).expect("a reply");
    assert_eq!(
        check_reply(&reply, &req, &sec),
        Code::AccessAccept,
        "fail-safe"
    );
    assert!(reply_attr(&reply, attr::SESSION_TIMEOUT).is_some());
    drop(s);

    // A wrong secret_key: the double refuses every request (401 40103); radshard rejects
    // (fail-secure), logs an error and keeps serving. Run as the real binary to see its log.
    let (base, seen) = duo_double();
    let wrong = "not-the-secret-key-0123456789abcdefghij";
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("radshard.toml");
    std::fs::write(
        &config,
        config_text(1, "", dir.path(), &body(&base, wrong, "", "")),
    )
    .expect("write config");
    let log_path = dir.path().join("stderr.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let server = ChildServer::spawn_logging(&config, dir.path(), &[], Stdio::from(log));
    for id in 3..5u8 {
        let req = pap(&sec, id, "alice", "alice-pw");
        let reply = c.exchange(&req, server.auth).expect("a reply, not a crash");
        assert_eq!(check_reply(&reply, &req, &sec), Code::AccessReject);
    }
    assert_eq!(
        seen.lock().expect("lock").bad_signatures,
        2,
        "refused at Duo"
    );
    assert_eq!(seen_count(&seen, "push alice"), 0);
    drop(server);
    let text = std::fs::read_to_string(&log_path).expect("log");
    assert!(text.contains("Duo refused the request"), "log:\n{text}");
    assert!(text.contains("40103"), "log:\n{text}");
    assert!(!text.contains(wrong), "the secret key is never logged");
}

/// Second factor only (`primary = "nas"`): the gateway checked the password; the Duo passcode
/// in User-Password is all radshard checks (one `/auth/v2/auth factor=passcode`, no preauth, no
/// challenge).
#[test]
fn duo_passcode_as_the_only_credential_of_a_trusted_gateway() {
    let (base, seen) = duo_double();
    let gateway =
        "\n[[policies]]\nname = \"gateway\"\nclients = [\"localhost\"]\nprimary = \"nas\"\n\
                   mfa = true\nreply = { Session-Timeout = 3600 }\n";
    // First: User-Password is read as the first policy whose request conditions match says
    // (the staff policy after it would read it as a password).
    let text = body(&base, SKEY, "factor = \"passcode\"", "").replacen(
        "\n[[policies]]",
        &format!("{gateway}\n[[policies]]"),
        1,
    );
    let s = TestServer::start(1, &text);
    let ask = |user: &str, code: &str| {
        stdout_of(&radclient(
            s.auth,
            "auth",
            SECRET,
            &format!("User-Name = {user}\nUser-Password = {code}\nMessage-Authenticator = 0x00\n"),
        ))
    };
    let out = ask("alice", "123456");
    assert!(out.contains("Received Access-Accept"), "{out}");
    assert!(out.contains("Session-Timeout = 3600"), "{out}");
    assert_eq!(seen_count(&seen, "passcode alice"), 1);
    assert_eq!(seen_count(&seen, "/auth/v2/preauth alice"), 0);
    let out = ask("alice", "654321");
    assert!(out.contains("Received Access-Reject"), "{out}");
    assert_eq!(seen_count(&seen, "passcode alice"), 2);
    assert_eq!(seen.lock().expect("lock").bad_signatures, 0);
}
