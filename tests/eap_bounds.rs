//! EAP under bad input and floods, against a server in this process on loopback: malformed
//! EAP-Message answered with Access-Reject + EAP-Failure (never a panic), 10k half-open
//! conversations from one NAS bounded by its share of the store (refusals counted), while
//! another NAS still opens conversations and completes a real PEAP login (eapol_test).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{check_reply, random_authenticator, reply_attr, secret, RadClient, TestServer};
use radshard::proto::{attr, Code, PacketBuilder, Secret};

const SECRET: &str = "testing123";

/// An Access-Request carrying `eap` (split into 253-octet EAP-Message attributes) with a
/// Message-Authenticator, and `state` if given.
fn eap_request(s: &Secret, id: u8, user: &str, eap: &[u8], state: Option<&[u8]>) -> Vec<u8> {
    let mut buf = [0u8; 4096];
    let mut b = PacketBuilder::request(&mut buf, Code::AccessRequest, id, &random_authenticator())
        .expect("header");
    b.message_authenticator().expect("fits");
    b.attr(attr::USER_NAME, user.as_bytes()).expect("fits");
    for chunk in eap.chunks(253) {
        b.attr(attr::EAP_MESSAGE, chunk).expect("fits");
    }
    if let Some(st) = state {
        b.attr(attr::STATE, st).expect("fits");
    }
    b.finish(s).expect("signs").to_vec()
}

fn identity(id: u8, name: &str) -> Vec<u8> {
    let mut p = vec![2, id, 0, 0, 1];
    p.extend_from_slice(name.as_bytes());
    let len = p.len() as u16;
    p[2..4].copy_from_slice(&len.to_be_bytes());
    p
}

fn server(dir: &Path, limits: &str) -> TestServer {
    radshard::tls::pki::write_test_pki(dir, radshard::tls::pki::KeyKind::Rsa, false)
        .expect("test PKI");
    let d = dir.display();
    TestServer::start(
        2,
        &format!(
            r#"
[[clients]]
name = "flood"
addresses = ["127.0.0.1"]
secret = "{SECRET}"

[[clients]]
name = "other"
addresses = ["127.0.0.2"]
secret = "{SECRET}"

[[users]]
name = "alice"
password = "alice-pw"

[eap]
methods = ["peap", "ttls"]
{limits}

[eap.tls]
certificate = "{d}/server.pem"
private_key = "{d}/server.key"
"#
        ),
    )
}

fn eap_of(reply: &[u8]) -> Vec<u8> {
    reply_attr(reply, attr::EAP_MESSAGE).expect("an EAP-Message")
}

#[test]
fn malformed_eap_is_rejected_with_eap_failure() {
    let dir = tempfile::tempdir().expect("temp dir");
    let srv = server(dir.path(), "");
    let s = secret(SECRET);
    let client = RadClient::new();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("length longer than the octets", vec![2, 7, 0, 40, 1, b'a']),
        ("length shorter than the header", vec![2, 7, 0, 3, 1]),
        ("truncated header", vec![2, 7]),
        ("a Request from the peer", vec![1, 7, 0, 6, 1, b'a']),
        ("unknown code", vec![9, 7, 0, 5, 1]),
        ("first round is not an Identity", vec![2, 7, 0, 6, 25, 0]),
        ("oversized: 4000 octets declared 5", {
            let mut v = vec![2, 7, 0, 5, 1];
            v.resize(3000, b'x');
            v
        }),
    ];
    for (what, eap) in &cases {
        let req = eap_request(&s, 1, "mallory", eap, None);
        let reply = client
            .exchange(&req, srv.auth)
            .unwrap_or_else(|| panic!("{what}: no reply"));
        assert_eq!(check_reply(&reply, &req, &s), Code::AccessReject, "{what}");
        assert_eq!(eap_of(&reply)[0], 4, "{what}: EAP-Failure");
    }
    // An unknown State is refused, not taken for a new conversation.
    let req = eap_request(&s, 2, "mallory", &identity(3, "mallory"), Some(&[0x41; 40]));
    let reply = client.exchange(&req, srv.auth).expect("reply");
    assert_eq!(check_reply(&reply, &req, &s), Code::AccessReject);
    let m = radshard::metrics::eap();
    let rejects = m.rejects.lock().expect("counts").clone();
    assert!(rejects.get("eap_malformed").copied().unwrap_or(0) >= cases.len() as u64 - 1);
    assert!(
        rejects
            .get("eap_unknown_conversation")
            .copied()
            .unwrap_or(0)
            >= 1
    );
    // Still serving.
    let req = eap_request(&s, 3, "anonymous", &identity(1, "anonymous"), None);
    let reply = client.exchange(&req, srv.auth).expect("reply");
    assert_eq!(check_reply(&reply, &req, &s), Code::AccessChallenge);
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS")
}

#[test]
fn half_open_flood_is_bounded_and_other_nas_logs_in() {
    let dir = tempfile::tempdir().expect("temp dir");
    let srv = server(
        dir.path(),
        "max_conversations = 10000\nmax_per_client = 5000\nidle_timeout = \"60s\"",
    );
    let s = secret(SECRET);
    let flood = RadClient::new();
    let before = rss_kib();
    let refused_before = radshard::metrics::eap()
        .conversations_refused
        .load(std::sync::atomic::Ordering::Relaxed);
    let wave = |from: u32| {
        let (mut challenges, mut rejects) = (0u32, 0u32);
        for i in from..from + 10_000 {
            let req = eap_request(
                &s,
                (i % 256) as u8,
                &format!("u{i}"),
                &identity(1, "x"),
                None,
            );
            let reply = flood
                .exchange(&req, srv.auth)
                .unwrap_or_else(|| panic!("request {i}: no reply"));
            match check_reply(&reply, &req, &s) {
                Code::AccessChallenge => challenges += 1,
                Code::AccessReject => rejects += 1,
                other => panic!("request {i}: {other:?}"),
            }
        }
        (challenges, rejects)
    };
    let (challenges, rejects) = wave(0);
    let grown = rss_kib().saturating_sub(before);
    let refused = radshard::metrics::eap()
        .conversations_refused
        .load(std::sync::atomic::Ordering::Relaxed)
        - refused_before;
    assert_eq!(challenges, 5000, "the flooding NAS gets its share");
    assert_eq!(rejects, 5000);
    assert_eq!(refused, 5000, "every refusal counted");
    // A second wave of 10k finds the share full: all refused, and memory stays where it was.
    let middle = rss_kib();
    let (again, refused_again) = wave(10_000);
    let grown_again = rss_kib().saturating_sub(middle);
    println!(
        "flood: {challenges} conversations opened, {rejects} refused (counted {refused}); RSS +{grown} KiB \
         (replies cached included); second wave: {again} opened, {refused_again} refused, RSS +{grown_again} KiB"
    );
    assert_eq!((again, refused_again), (0, 10_000));
    // The whole test process is measured (the other test of this file runs beside it), so
    // the first figure is loose; the bound is that a full store stops growing.
    assert!(grown < 256 * 1024, "RSS grew {grown} KiB");
    assert!(
        grown_again < grown / 2 + 4096,
        "a full store kept growing: +{grown_again} KiB after +{grown} KiB"
    );

    // Another NAS still gets its conversations, and a real supplicant logs in through it.
    let other = RadClient::bind("127.0.0.2:0");
    let req = eap_request(&s, 9, "anonymous", &identity(1, "anonymous"), None);
    let reply = other.exchange(&req, srv.auth).expect("reply");
    assert_eq!(check_reply(&reply, &req, &s), Code::AccessChallenge);
    let conf = dir.path().join("peap.conf");
    std::fs::write(
        &conf,
        format!(
            "network={{\n key_mgmt=WPA-EAP\n eap=PEAP\n identity=\"alice\"\n anonymous_identity=\"anonymous\"\n password=\"alice-pw\"\n ca_cert=\"{}/ca.pem\"\n domain_match=\"radius.test\"\n phase1=\"peaplabel=0\"\n phase2=\"auth=MSCHAPV2\"\n}}\n",
            dir.path().display()
        ),
    )
    .expect("write conf");
    let out = Command::new("eapol_test")
        .args(["-c", conf.to_str().expect("utf-8")])
        .args(["-a", "127.0.0.1", "-A", "127.0.0.2"])
        .args(["-p", &srv.auth.port().to_string(), "-s", SECRET, "-t", "15"])
        .output()
        .expect("eapol_test runs (package eapoltest)");
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && log.contains("MPPE keys OK: 1  mismatch: 0"),
        "PEAP login through the other NAS failed:\n{}",
        log.lines().rev().take(30).collect::<Vec<_>>().join("\n")
    );
    std::thread::sleep(Duration::from_millis(10));
}
