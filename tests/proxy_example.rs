//! `config/proxy.toml` as shipped, in front of two FreeRADIUS 3.2 home servers: copied next
//! to a PKI made by `radshard certs` (the file's `certs/` paths), its listen ports and its
//! home servers' ports moved to free ones (tests run side by side; 1812 and 18120.. are the
//! file's), and nothing else changed. Local users, the proxied realm (stripped, Operator-Name
//! and a CUI request added), a refused realm, accounting forwarded, RadSec with the PKI's
//! client certificate, and the "proxied login" log line.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::freeradius_home::{field, FreeRadiusHome};
use common::radsec_client::{client_config, connect, read_packet};
use common::*;
use radshard::proto::{attr, Code};

const SHIPPED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/proxy.toml");

fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "config/proxy.toml names {from} once"
    );
    text.replace(from, to)
}

#[test]
fn the_shipped_proxy_config_runs_as_written() {
    let users = "bob Cleartext-Password := \"bob-pw\"\n\tReply-Message = \"hello from A\",\n\
                 \tChargeable-User-Identity = \"cui-of-bob\"\n";
    let a = FreeRadiusHome::start(users);
    let b = FreeRadiusHome::start(&users.replace("from A", "from B"));
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_radshard"))
        .args(["certs", "--out"])
        .arg(dir.path().join("certs"))
        .output()
        .expect("radshard certs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let radsec_port = free_tcp_port();
    let mut text = std::fs::read_to_string(SHIPPED).expect("config/proxy.toml");
    for (from, to) in [
        ("\"127.0.0.1:18120\"", a.auth),
        ("\"127.0.0.1:18130\"", a.acct),
        ("\"127.0.0.1:18140\"", b.auth),
        ("\"127.0.0.1:18150\"", b.acct),
    ] {
        text = replace_once(&text, from, &format!("\"{to}\""));
    }
    text = replace_once(
        &text,
        "\"127.0.0.1:2083\"",
        &format!("\"127.0.0.1:{radsec_port}\""),
    );
    let config = dir.path().join("proxy.toml");
    std::fs::write(&config, text).expect("write");
    let acct_dir = dir.path().join("acct");
    let log_path = dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).expect("log");
    let server = ChildServer::spawn_logging(
        &config,
        &acct_dir,
        &["--log-level", "info"],
        Stdio::from(log),
    );

    let sec = secret(SECRET);
    let client = RadClient::new();
    let mut id = 0u8;
    let mut login = |user: &str, pw: &str| {
        id += 1;
        let req = access_request(&sec, id, &random_authenticator(), user, pw, true);
        let reply = client
            .exchange(&req, server.auth)
            .unwrap_or_else(|| panic!("no reply for {user}"));
        (check_reply(&reply, &req, &sec), reply)
    };
    assert_eq!(login("alice", "alice-pw").0, Code::AccessAccept);
    assert_eq!(
        login("alice@example.test", "alice-pw").0,
        Code::AccessAccept
    );
    let (code, reply) = login("bob@remote.test", "bob-pw");
    assert_eq!(code, Code::AccessAccept);
    assert_eq!(
        reply_attr(&reply, attr::REPLY_MESSAGE).as_deref(),
        Some(&b"hello from A"[..])
    );
    assert_eq!(
        reply_attr(&reply, attr::CHARGEABLE_USER_IDENTITY).as_deref(),
        Some(&b"cui-of-bob"[..]),
        "the home server's CUI passed back"
    );
    assert_eq!(login("bob@remote.test", "wrong").0, Code::AccessReject);
    assert_eq!(login("bob@elsewhere.test", "bob-pw").0, Code::AccessReject);
    let seen = a.auth_requests();
    assert_eq!(
        seen.len(),
        2,
        "only the remote.test logins reached A: {seen:?}"
    );
    assert!(seen.iter().all(|r| field(r, "User-Name") == Some("bob")));
    assert_eq!(field(&seen[0], "Operator-Name"), Some("1example.test"));
    assert!(field(&seen[0], "Chargeable-User-Identity").is_some());
    assert!(b.auth_requests().is_empty());

    let acct = accounting_for(&sec, 50, 1, "bob@remote.test", "shipped-1");
    let reply = client
        .exchange(&acct, server.acct)
        .expect("accounting reply");
    assert_eq!(check_reply(&reply, &acct, &sec), Code::AccountingResponse);
    let forwarded = a.acct_requests();
    assert_eq!(forwarded.len(), 1);
    assert_eq!(field(&forwarded[0], "Acct-Session-Id"), Some("shipped-1"));

    // RadSec with the PKI's client certificate: answered like UDP, secret "radsec".
    let certs = dir.path().join("certs");
    let mut tls = connect(
        ([127, 0, 0, 1], radsec_port).into(),
        client_config(&certs, Path::new(&certs)),
    );
    let rs = secret("radsec");
    let req = access_request(
        &rs,
        1,
        &random_authenticator(),
        "bob@remote.test",
        "bob-pw",
        false,
    );
    tls.write_all(&req).expect("write");
    let reply = read_packet(&mut tls).expect("reply over TLS");
    assert_eq!(check_reply(&reply, &req, &rs), Code::AccessAccept);
    drop(tls);

    assert!(wait_until(Duration::from_secs(3), || {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        text.lines()
            .filter(|l| {
                l.contains("proxied login")
                    && l.contains("outer=bob@remote.test")
                    && l.contains("home=\"remote-a\"")
            })
            .count()
            == 3
    }));
    let text = std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(text.contains("cui=cui-of-bob"), "{text}");
    assert!(!text.contains("bob-pw"), "no password in the log");
    drop(server);
}
