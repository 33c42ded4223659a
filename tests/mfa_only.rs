//! Second factor only (`[[policies]] primary = "nas"`): the NAS checked the password itself and
//! sends only the one-time code in User-Password (or nothing, with a push). End to end through
//! the shards with the built-in TOTP, a privacyIDEA double, a REST push double, and the shipped
//! example `config/mfa-only.toml` run as-is by the binary with FreeRADIUS's radclient. Duo's
//! passcode is in tests/mfa_duo.rs, a real privacyIDEA in tests/mfa_privacyidea_real.rs.

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};

use common::mfa::*;
use common::*;
use radshard::proto::{attr, Code};

/// The trusted gateway is 127.0.0.1 (the tests' NAS); `other` (127.0.0.9) is an ordinary
/// client. alice has a TOTP secret and no password; carol has a password, no TOTP secret.
fn body(policy_extra: &str, mfa: &str) -> String {
    format!(
        r#"{MFA_CLIENT}
[[clients]]
name = "other"
addresses = ["127.0.0.9"]
secret = "testing123"

[[users]]
name = "alice"
totp_secret = "{ALICE_TOTP}"

[[users]]
name = "carol"
password = "carol-pw"

[[policies]]
name = "gateway-mfa"
clients = ["localhost"]
primary = "nas"
mfa = true
{policy_extra}reply = {{ Session-Timeout = 3600 }}
{mfa}"#
    )
}

#[test]
fn totp_code_alone_is_the_credential_of_a_trusted_gateway() {
    let (s, m) = start_mfa_server(2, &body("", "\n[mfa]\nprovider = \"totp\"\n"));
    let mut nas = Nas::new();
    let code = code_at(ALICE_TOTP, 0);
    let (reply, c) = nas.ask(&s, "alice", &code, None);
    assert_eq!(c, Code::AccessAccept);
    assert_eq!(
        reply_attr(&reply, attr::SESSION_TIMEOUT),
        session_timeout_3600()
    );
    // The same code again: reused. A wrong code: refused.
    assert_eq!(nas.ask(&s, "alice", &code, None).1, Code::AccessReject);
    assert_eq!(
        nas.ask(&s, "alice", wrong_code(ALICE_TOTP), None).1,
        Code::AccessReject
    );
    // No code at all (an empty User-Password) is a bad code, never an accept.
    assert_eq!(nas.ask(&s, "alice", "", None).1, Code::AccessReject);
    // carol has no second factor: the gateway's word is not enough (unenrolled = reject).
    assert_eq!(nas.ask(&s, "carol", "123456", None).1, Code::AccessReject);
    // A user nobody knows: not enrolled either.
    assert_eq!(nas.ask(&s, "mallory", "123456", None).1, Code::AccessReject);
    assert_eq!(m.outcome_count("accept"), 1);
    assert_eq!(m.outcome_count("mfa_code_reused"), 1);
    assert_eq!(m.outcome_count("mfa_bad_code"), 2);
    assert_eq!(m.outcome_count("mfa_not_enrolled"), 2);
}

#[test]
fn unenrolled_users_of_the_gateway_follow_the_unenrolled_rule() {
    // With unenrolled = "accept" an unenrolled user of the trusted gateway is let in (the
    // operator said so).
    let mfa = "\n[mfa]\nprovider = \"totp\"\nunenrolled = \"accept\"\n";
    let (s, m) = start_mfa_server(1, &body("", mfa));
    let mut nas = Nas::new();
    let (reply, c) = nas.ask(&s, "carol", "whatever", None);
    assert_eq!(c, Code::AccessAccept);
    assert_eq!(
        reply_attr(&reply, attr::SESSION_TIMEOUT),
        session_timeout_3600()
    );
    assert_eq!(m.outcome_count("accept_unenrolled"), 1);
    // alice is enrolled: her code is still checked.
    assert_eq!(
        nas.ask(&s, "alice", wrong_code(ALICE_TOTP), None).1,
        Code::AccessReject
    );
}

#[test]
fn a_client_the_policy_does_not_name_still_needs_the_password() {
    // Only 127.0.0.9 ("other") is trusted here; the tests' NAS (localhost) is not.
    let text = body("", "\n[mfa]\nprovider = \"totp\"\n")
        .replace("clients = [\"localhost\"]", "clients = [\"other\"]");
    let (s, m) = start_mfa_server(1, &text);
    let mut nas = Nas::new();
    // alice's code as her "password": no password is stored for her, so rejected.
    let code = code_at(ALICE_TOTP, 0);
    assert_eq!(nas.ask(&s, "alice", &code, None).1, Code::AccessReject);
    // carol with her password: no policy matches localhost → rejected by the policies.
    assert_eq!(nas.ask(&s, "carol", "carol-pw", None).1, Code::AccessReject);
    assert_eq!(m.outcome_count("accept"), 0);
}

#[test]
fn privacyidea_checks_the_code_alone() {
    type Seen = Arc<Mutex<Vec<String>>>;
    let seen: Seen = Arc::default();
    let log = seen.clone();
    let url = http_double(move |req| {
        let body = req.body_text();
        log.lock().expect("lock").push(body.clone());
        (200, privacyidea_check_answer(body.contains("pass=755224")))
    });
    let mfa = mfa_section(
        "privacyidea",
        "",
        &format!("url = \"{url}\"\nrealm = \"ldaprealm\"\ntimeout = \"2s\""),
    );
    let (s, m) = start_mfa_server(1, &body("", &mfa));
    let mut nas = Nas::new();
    assert_eq!(nas.ask(&s, "bob", "755224", None).1, Code::AccessAccept);
    assert_eq!(nas.ask(&s, "bob", "111111", None).1, Code::AccessReject);
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(
        seen[0].contains("user=bob") && seen[0].contains("pass=755224"),
        "{}",
        seen[0]
    );
    assert_eq!(m.outcome_count("accept"), 1);
    assert_eq!(m.outcome_count("mfa_bad_code"), 1);
}

#[test]
fn push_needs_no_code() {
    let pushes: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = pushes.clone();
    // POST → an immediate decision: dave approves, erin denies.
    let base = http_double(move |req| {
        let v: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
        let user = v["user"].as_str().unwrap_or("").to_string();
        log.lock().expect("lock").push(user.clone());
        (200, format!("{{\"approved\":{}}}", user == "dave"))
    });
    let mfa = mfa_section(
        "rest_push",
        "",
        &format!("url = \"{base}/push\"\nwait = \"3s\"\npoll_interval = \"100ms\""),
    );
    let (s, m) = start_mfa_server(1, &body("", &mfa));
    let mut nas = Nas::new();
    let (reply, c) = nas.ask(&s, "dave", "", None);
    assert_eq!(c, Code::AccessAccept);
    assert_eq!(
        reply_attr(&reply, attr::SESSION_TIMEOUT),
        session_timeout_3600()
    );
    assert_eq!(nas.ask(&s, "erin", "", None).1, Code::AccessReject);
    assert_eq!(*pushes.lock().expect("lock"), vec!["dave", "erin"]);
    assert_eq!(m.outcome_count("accept"), 1);
    assert_eq!(m.outcome_count("mfa_push_denied"), 1);
}

/// `config/mfa-only.toml` exactly as shipped (only the listen addresses and the accounting
/// directory are overridden, so tests can run side by side), driven by radclient.
#[test]
fn shipped_example_accepts_the_current_code_once() {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/mfa-only.toml");
    let dir = tempfile::tempdir().expect("temp dir");
    let server = ChildServer::spawn(&config, dir.path(), &[]);
    let ask = |code: &str| {
        stdout_of(&radclient(
            server.auth,
            "auth",
            SECRET,
            &format!("User-Name = alice\nUser-Password = {code}\nMessage-Authenticator = 0x00\n"),
        ))
    };
    // A step may turn over between reading the code and the check: the server accepts ±1.
    let code = code_at(ALICE_TOTP, 0);
    let out = ask(&code);
    assert!(out.contains("Received Access-Accept"), "{out}");
    assert!(out.contains("second factor accepted"), "{out}");
    let out = ask(&code);
    assert!(
        out.contains("Received Access-Reject"),
        "reused code:\n{out}"
    );
    let out = ask(wrong_code(ALICE_TOTP));
    assert!(out.contains("Received Access-Reject"), "wrong code:\n{out}");
}
