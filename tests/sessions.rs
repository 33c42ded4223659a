//! The session table, end to end through the UDP data plane: the Class an Access-Accept
//! carries ties the NAS's accounting to the identity radshard authenticated; Start,
//! Interim-Update, Stop and Accounting-On move sessions; Simultaneous-Use caps logins; and
//! the table rebuilt from the accounting log matches what was open, also after a kill -9
//! in the middle of an accounting flood.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use radshard::proto::{attr, Code};
use radshard::session::{SessionFilter, SessionStore, SessionsConfig};

const BODY: &str = r#"
[[clients]]
name = "nas1"
addresses = ["127.0.0.1"]
secret = "testing123"
require_message_authenticator = true

[[users]]
name = "alice"
password = "alice-pw"

[[users]]
name = "bob"
password = "bob-pw"
simultaneous_use = 2
"#;

/// Where a server listens: in this process or a child.
trait Ports {
    fn auth(&self) -> std::net::SocketAddr;
    fn acct(&self) -> std::net::SocketAddr;
}

impl Ports for TestServer {
    fn auth(&self) -> std::net::SocketAddr {
        self.auth
    }
    fn acct(&self) -> std::net::SocketAddr {
        self.acct
    }
}

impl Ports for ChildServer {
    fn auth(&self) -> std::net::SocketAddr {
        self.auth
    }
    fn acct(&self) -> std::net::SocketAddr {
        self.acct
    }
}

/// Logs `user` in with PAP; the reply's code and its Class, if any.
fn login(s: &impl Ports, id: u8, user: &str, password: &str) -> (Code, Option<Vec<u8>>) {
    let c = RadClient::new();
    let sec = secret(SECRET);
    let req = access_request(&sec, id, &random_authenticator(), user, password, true);
    let reply = c.exchange(&req, s.auth()).expect("an answer");
    (
        check_reply(&reply, &req, &sec),
        reply_attr(&reply, attr::CLASS),
    )
}

/// Sends one Accounting-Request and waits for its (durable) response.
fn account(s: &impl Ports, id: u8, attrs: &[(u8, &[u8])]) {
    let c = RadClient::new();
    let sec = secret(SECRET);
    let req = accounting_request(&sec, id, attrs);
    let reply = c.exchange(&req, s.acct()).expect("an Accounting-Response");
    assert_eq!(check_reply(&reply, &req, &sec), Code::AccountingResponse);
}

fn start(s: &impl Ports, id: u8, user: &str, session: &str, class: Option<&[u8]>) {
    let mut attrs: Vec<(u8, &[u8])> = vec![
        (attr::ACCT_STATUS_TYPE, &[0, 0, 0, 1]),
        (attr::USER_NAME, user.as_bytes()),
        (attr::ACCT_SESSION_ID, session.as_bytes()),
        (attr::NAS_IP_ADDRESS, &[10, 0, 0, 1]),
        (attr::CALLING_STATION_ID, b"02-00-00-00-00-01"),
    ];
    if let Some(c) = class {
        attrs.push((attr::CLASS, c));
    }
    account(s, id, &attrs);
}

fn stop(s: &impl Ports, id: u8, user: &str, session: &str, class: Option<&[u8]>) {
    let mut attrs: Vec<(u8, &[u8])> = vec![
        (attr::ACCT_STATUS_TYPE, &[0, 0, 0, 2]),
        (attr::USER_NAME, user.as_bytes()),
        (attr::ACCT_SESSION_ID, session.as_bytes()),
        (attr::NAS_IP_ADDRESS, &[10, 0, 0, 1]),
        (attr::CALLING_STATION_ID, b"02-00-00-00-00-01"),
    ];
    if let Some(c) = class {
        attrs.push((attr::CLASS, c));
    }
    account(s, id, &attrs);
}

fn of_user(store: &SessionStore, user: &str) -> Vec<radshard::session::SessionView> {
    store.list(&SessionFilter {
        user: Some(user.into()),
        ..SessionFilter::default()
    })
}

#[test]
fn class_ties_anonymous_accounting_to_the_login() {
    let s = TestServer::start(2, BODY);
    let store = s.sessions().expect("sessions are on by default");
    let (code, class) = login(&s, 1, "alice", "alice-pw");
    assert_eq!(code, Code::AccessAccept);
    let class = class.expect("the Accept carries our Class");
    assert!(
        class.starts_with(b"ai:"),
        "FreeRADIUS's insert_acct_class form"
    );
    assert!(
        !class.windows(5).any(|w| w == b"alice"),
        "the identity is sealed"
    );

    // The NAS accounts as `anonymous` (a PEAP outer identity) and echoes the Class.
    start(&s, 2, "anonymous", "S-1", Some(&class));
    let sessions = of_user(&store, "alice");
    assert_eq!(
        sessions.len(),
        1,
        "{:?}",
        store.list(&SessionFilter::default())
    );
    let v = &sessions[0];
    assert_eq!(v.accounted_user.as_deref(), Some("anonymous"));
    assert_eq!(v.acct_session_id, "S-1");
    assert_eq!(v.client, "nas1");
    // Acct-Unique-Session-Id as FreeRADIUS's acct_unique computes it from our Class.
    let digits = std::str::from_utf8(&class[3..35]).unwrap();
    let expect = md5_hex(&format!("{digits},S-1"));
    assert_eq!(v.id, expect);
    // The accounting log carries what the table resolved.
    let log = read_accounting(s.dir.path());
    let rec = log.records.last().expect("a record");
    assert_eq!(rec["session"]["id"], expect);
    assert_eq!(rec["session"]["user"], "alice");

    // A Class altered by the NAS (or forged) names nobody: the session is the accounted name's.
    let mut forged = class.clone();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    start(&s, 3, "anonymous", "S-2", Some(&forged));
    assert_eq!(of_user(&store, "anonymous").len(), 1);
    assert_eq!(of_user(&store, "alice").len(), 1);

    stop(&s, 4, "anonymous", "S-1", Some(&class));
    assert!(of_user(&store, "alice").is_empty());
}

fn md5_hex(s: &str) -> String {
    use md5::Digest;
    data_encoding::HEXLOWER.encode(&md5::Md5::digest(s.as_bytes()))
}

#[test]
fn accounting_on_closes_the_nas_sessions() {
    let s = TestServer::start(1, BODY);
    let store = s.sessions().unwrap();
    start(&s, 1, "carol", "C-1", None);
    start(&s, 2, "dave", "D-1", None);
    assert_eq!(store.len(), 2);
    account(
        &s,
        3,
        &[
            (attr::ACCT_STATUS_TYPE, &[0, 0, 0, 7]),
            (attr::NAS_IP_ADDRESS, &[10, 0, 0, 1]),
        ],
    );
    assert_eq!(store.len(), 0, "Accounting-On: the NAS rebooted");
}

#[test]
fn simultaneous_use_caps_logins_per_user_and_policy() {
    let body = format!(
        "{BODY}\n[[policies]]\nname = \"one-session\"\nclients = [\"nas1\"]\nsimultaneous_use = 1\n"
    );
    let s = TestServer::start(1, &body);
    let store = s.sessions().unwrap();
    let (code, class) = login(&s, 1, "alice", "alice-pw");
    assert_eq!(code, Code::AccessAccept);
    // Not counted until the NAS says the session started.
    assert_eq!(login(&s, 2, "alice", "alice-pw").0, Code::AccessAccept);
    start(&s, 3, "alice", "A-1", class.as_deref());
    assert_eq!(of_user(&store, "alice").len(), 1);
    assert_eq!(
        login(&s, 4, "alice", "alice-pw").0,
        Code::AccessReject,
        "at the cap"
    );
    assert_eq!(
        store.counters.limit_rejects.load(Ordering::Relaxed),
        1,
        "counted"
    );
    // A wrong password is still a wrong password, not a cap.
    assert_eq!(login(&s, 5, "alice", "nope").0, Code::AccessReject);
    assert_eq!(store.counters.limit_rejects.load(Ordering::Relaxed), 1);
    stop(&s, 6, "alice", "A-1", class.as_deref());
    assert_eq!(login(&s, 7, "alice", "alice-pw").0, Code::AccessAccept);
}

#[test]
fn a_users_own_cap_applies_without_a_policy() {
    let s = TestServer::start(1, BODY);
    let store = s.sessions().unwrap();
    for (i, sess) in ["B-1", "B-2"].iter().enumerate() {
        let (code, class) = login(&s, 10 + i as u8, "bob", "bob-pw");
        assert_eq!(code, Code::AccessAccept);
        start(&s, 20 + i as u8, "bob", sess, class.as_deref());
    }
    assert_eq!(of_user(&store, "bob").len(), 2);
    assert_eq!(login(&s, 30, "bob", "bob-pw").0, Code::AccessReject);
    // alice has no cap.
    for i in 0..3 {
        let (code, class) = login(&s, 40 + i, "alice", "alice-pw");
        assert_eq!(code, Code::AccessAccept);
        start(&s, 50 + i, "alice", &format!("A-{i}"), class.as_deref());
    }
    assert_eq!(of_user(&store, "alice").len(), 3);
}

#[test]
fn rebuilt_table_matches_the_live_one() {
    let s = TestServer::start(2, BODY);
    let live = s.sessions().unwrap();
    let (_, class) = login(&s, 1, "alice", "alice-pw");
    start(&s, 2, "anonymous", "R-1", class.as_deref());
    for i in 0..40u8 {
        start(
            &s,
            10 + i,
            &format!("user{}", i % 7),
            &format!("R-{i}x"),
            None,
        );
    }
    for i in (0..40u8).step_by(3) {
        stop(
            &s,
            60 + i,
            &format!("user{}", i % 7),
            &format!("R-{i}x"),
            None,
        );
    }
    account(
        &s,
        120,
        &[
            (attr::ACCT_STATUS_TYPE, &[0, 0, 0, 3]),
            (attr::USER_NAME, b"user1"),
            (attr::ACCT_SESSION_ID, b"R-1x"),
            (attr::NAS_IP_ADDRESS, &[10, 0, 0, 1]),
            (attr::CALLING_STATION_ID, b"02-00-00-00-00-01"),
            (42, &1234u32.to_be_bytes()),
            (52, &2u32.to_be_bytes()),
        ],
    );
    let before = live.list(&SessionFilter::default());
    assert_eq!(before.len(), 1 + 40 - 14);
    let dir = s.dir.path().to_path_buf();
    let rebuilt = SessionStore::new(SessionsConfig::default());
    let report = radshard::session::rebuild::rebuild(
        &rebuilt,
        &dir,
        radshard::accounting::time::now_unix().0,
    )
    .expect("rebuild");
    assert_eq!(report.unreadable, 0);
    let after = rebuilt.list(&SessionFilter::default());
    assert_eq!(after, before, "the same sessions, identities and counters");
    let alice = of_user(&rebuilt, "alice");
    assert_eq!(
        alice.len(),
        1,
        "the sealed identity survives through the log"
    );
    let u1 = after.iter().find(|v| v.acct_session_id == "R-1x").unwrap();
    assert_eq!(u1.input_octets, (2 << 32) + 1234);
}

#[test]
fn kill_9_during_an_accounting_flood_keeps_every_acknowledged_session() {
    let dir = tempfile::tempdir().unwrap();
    let acct = dir.path().join("acct");
    let config = dir.path().join("radshard.toml");
    std::fs::write(&config, BODY).unwrap();
    let mut server = ChildServer::spawn(&config, &acct, &[]);
    let stop = Arc::new(AtomicBool::new(false));
    let flood = {
        let (to, stop) = (server.acct, stop.clone());
        std::thread::spawn(move || flood_accounting(to, "K", stop))
    };
    // Let the flood get going, then kill the server mid-commit.
    assert!(wait_until(Duration::from_secs(10), || {
        read_accounting(&acct).records.len() > 2000
    }));
    server.signal(libc::SIGKILL);
    let _ = server.wait_exit(Duration::from_secs(5));
    stop.store(true, Ordering::Release);
    let result = flood.join().unwrap();
    assert!(result.acked.len() > 1000, "acked {}", result.acked.len());

    let rebuilt = SessionStore::new(SessionsConfig::default());
    let report = radshard::session::rebuild::rebuild(
        &rebuilt,
        &acct,
        radshard::accounting::time::now_unix().0,
    )
    .unwrap();
    let open: std::collections::HashSet<String> = rebuilt
        .list(&SessionFilter::default())
        .into_iter()
        .map(|v| v.acct_session_id)
        .collect();
    let missing: Vec<&String> = result.acked.iter().filter(|s| !open.contains(*s)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged Starts are not open after the crash (first {:?}); {report:?}",
        missing.len(),
        missing.first()
    );
    assert!(
        report.unreadable <= 1,
        "at most the torn last line: {report:?}"
    );

    // And the server itself starts on that log (its rebuild skips a torn line).
    let server = ChildServer::spawn(&config, &acct, &[]);
    drop(server);
}

const TOKEN: &str = "sessions-test-token-0f8e2c4a9b7d";

/// A config for a child server: [`BODY`], the admin API on a free port, and `extra`.
fn child_config(dir: &std::path::Path, extra: &str) -> std::path::PathBuf {
    let tokens = dir.join("tokens");
    std::fs::write(&tokens, format!("{TOKEN}\n")).unwrap();
    std::fs::set_permissions(&tokens, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let config = dir.join("radshard.toml");
    std::fs::write(
        &config,
        format!(
            "{BODY}\n{extra}\n[admin]\nlisten = \"127.0.0.1:{}\"\ntoken_file = \"tokens\"\n",
            free_tcp_port()
        ),
    )
    .unwrap();
    config
}

/// `radshard sessions --json` of the server `config` describes.
fn listed(config: &std::path::Path) -> Vec<serde_json::Value> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_radshard"))
        .args(["sessions", "--json", "--config"])
        .arg(config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["sessions"].as_array().cloned().unwrap_or_default()
}

#[test]
fn a_restarted_server_shows_the_sessions_it_showed_before() {
    let dir = tempfile::tempdir().unwrap();
    let acct = dir.path().join("acct");
    let config = child_config(dir.path(), "");
    let mut server = ChildServer::spawn(&config, &acct, &[]);
    let (_, class) = login(&server, 1, "alice", "alice-pw");
    start(&server, 2, "anonymous", "P-1", class.as_deref());
    for i in 0..20u8 {
        start(
            &server,
            10 + i,
            &format!("user{}", i % 4),
            &format!("P-{i}x"),
            None,
        );
    }
    for i in (0..20u8).step_by(4) {
        stop(
            &server,
            40 + i,
            &format!("user{}", i % 4),
            &format!("P-{i}x"),
            None,
        );
    }
    let before = listed(&config);
    assert_eq!(before.len(), 1 + 20 - 5);
    assert!(before
        .iter()
        .any(|v| v["user"] == "alice" && v["accounted_user"] == "anonymous"));
    server.signal(libc::SIGTERM);
    assert!(server.wait_exit(Duration::from_secs(10)).is_some());
    drop(server);
    let server = ChildServer::spawn(&config, &acct, &[]);
    assert_eq!(listed(&config), before, "count, identities and counters");
    drop(server);
}

#[test]
fn disconnect_oldest_sends_the_oldest_session_a_disconnect_request() {
    let das = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    das.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let body = BODY.replace(
        "require_message_authenticator = true",
        &format!(
            "require_message_authenticator = true\ndas = {{ address = \"{}\", secret = \"dassecret\" }}",
            das.local_addr().unwrap()
        ),
    );
    let body = format!(
        "{body}\n[[policies]]\nname = \"two\"\nclients = [\"nas1\"]\nsimultaneous_use = 2\non_simultaneous_use = \"disconnect_oldest\"\n"
    );
    let s = TestServer::start(1, &body);
    let store = s.sessions().unwrap();
    for (i, sess) in ["O-old", "O-new"].iter().enumerate() {
        let (code, class) = login(&s, 1 + i as u8, "alice", "alice-pw");
        assert_eq!(code, Code::AccessAccept);
        start(&s, 10 + i as u8, "alice", sess, class.as_deref());
        std::thread::sleep(Duration::from_millis(1100)); // distinct start seconds
    }
    // At the cap: accepted, and the oldest session is disconnected.
    assert_eq!(login(&s, 3, "alice", "alice-pw").0, Code::AccessAccept);
    let mut buf = [0u8; 4096];
    let (n, _) = das
        .recv_from(&mut buf)
        .expect("a Disconnect-Request reaches the DAS");
    let p = radshard::proto::Packet::parse(&buf[..n]).expect("parses");
    assert_eq!(p.code().as_u8(), 40, "Disconnect-Request");
    assert_eq!(p.attr(attr::ACCT_SESSION_ID), Some(&b"O-old"[..]));
    assert_eq!(p.attr(attr::USER_NAME), Some(&b"alice"[..]));
    assert_eq!(store.counters.limit_displaced.load(Ordering::Relaxed), 1);
}
