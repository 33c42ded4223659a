//! `radshard bench` against an in-process radshard on loopback, and (MS-CHAP, which radshard
//! does not answer yet) against a private FreeRADIUS 3.2 and a deliberately wrong responder:
//! small bounded runs whose outcome is known exactly.

#[path = "common/freeradius.rs"]
mod freeradius;
#[path = "common/freeradius_home.rs"]
#[allow(dead_code)]
mod freeradius_home;
#[path = "common/ports.rs"]
mod ports;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::OnceLock;

use freeradius_home::FreeRadiusHome;
use radshard::bench::{self, BenchArgs};
use radshard::cli::{Cli, Command};
use radshard::config::Config;
use radshard::dataplane;
use radshard::proto::crypto::mschap::{
    authenticator_response, nt_password_hash, nt_password_hash_hash, strip_domain,
    verify_nt_response, MsChap2Response, MsChap2Success,
};
use radshard::proto::{attr, verify_request, Code, Packet, PacketBuilder, Secret, MAX_PACKET_LEN};

struct Server {
    auth: SocketAddr,
    acct: SocketAddr,
    _dir: tempfile::TempDir,
}

/// One server for every test in this file (started once; it lives until the process exits).
fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut text = format!(
            r#"
[server]
shards = 1
listen_auth = ["127.0.0.1:0"]
listen_acct = ["127.0.0.1:0"]
[log]
level = "warn"
[accounting]
directory = "{}"
[[clients]]
name = "lo"
addresses = ["127.0.0.1"]
secret = "testing123"
"#,
            dir.path().display()
        );
        for i in 0..20 {
            text.push_str(&format!(
                "[[users]]\nname = \"user{i:04}\"\npassword = \"pass{i:04}\"\n"
            ));
        }
        let config = Config::from_str(&text, Path::new("bench-test.toml"), None).expect("config");
        let handle = dataplane::start(&config).expect("server starts");
        let s = Server {
            auth: handle.auth_addrs[0],
            acct: handle.acct_addrs[0],
            _dir: dir,
        };
        // Leaked on purpose: shared by all tests, torn down with the process.
        std::mem::forget(handle);
        s
    })
}

/// Parses `radshard bench <extra>` aimed at the test server, through the real CLI.
fn args(extra: &[&str]) -> BenchArgs {
    let s = server();
    let (auth, acct) = (s.auth.to_string(), s.acct.to_string());
    let mut argv = vec![
        "radshard",
        "bench",
        "--server",
        &auth,
        "--acct-server",
        &acct,
        "--users",
        "20",
        "--quiet",
        "--duration",
        "5s",
    ];
    if !extra.contains(&"--timeout") {
        argv.extend_from_slice(&["--timeout", "2s"]);
    }
    // A modest window: these runs check answers, not the peer's burst capacity (FreeRADIUS
    // drops part of a 256-deep burst on a loaded machine, its socket buffer full).
    if !extra.contains(&"--window") {
        argv.extend_from_slice(&["--window", "32"]);
    }
    argv.extend_from_slice(extra);
    match <Cli as clap::Parser>::try_parse_from(argv)
        .expect("parses")
        .command
    {
        Command::Bench(a) => a,
        other => panic!("not bench: {other:?}"),
    }
}

#[test]
fn pap_accepts_all_verified() {
    let r = bench::run(&args(&["--count", "500", "--window", "32"])).expect("runs");
    let c = &r.counts;
    assert_eq!(c.sent, 500);
    assert_eq!(c.replies, 500);
    assert_eq!(c.access_accept, 500);
    assert_eq!((c.timeouts, c.bad(), c.unexpected), (0, 0, 0));
    assert_eq!(c.missing_message_authenticator, 0);
    assert!(r.requests_per_s > 0.0);
    assert!(r.latency_us.p50 > 0 && r.latency_us.p50 <= r.latency_us.max);
}

#[test]
fn wrong_password_fraction_gives_that_many_rejects() {
    let r = bench::run(&args(&[
        "--count",
        "400",
        "--wrong-password",
        "0.25",
        "--sockets",
        "2",
    ]))
    .expect("runs");
    let c = &r.counts;
    assert_eq!(c.access_reject, 100);
    assert_eq!(c.access_accept, 300);
    assert_eq!((c.timeouts, c.bad(), c.unexpected), (0, 0, 0));
}

#[test]
fn chap_and_status_server() {
    let r = bench::run(&args(&["--count", "200", "--mode", "chap"])).expect("runs");
    assert_eq!(r.counts.access_accept, 200);
    assert_eq!(r.counts.unexpected, 0);
    let r = bench::run(&args(&["--count", "50", "--mode", "status"])).expect("runs");
    assert_eq!(r.counts.access_accept, 50);
}

#[test]
fn accounting_gets_responses() {
    let r = bench::run(&args(&["--count", "300", "--mode", "acct"])).expect("runs");
    let c = &r.counts;
    assert_eq!(c.accounting_response, 300);
    assert_eq!((c.timeouts, c.bad(), c.unexpected), (0, 0, 0));
}

#[test]
fn mixed_open_loop() {
    let r = bench::run(&args(&[
        "--mode",
        "mixed",
        "--mix",
        "pap=3,acct=1",
        "--rate",
        "2000",
        "--count",
        "400",
    ]))
    .expect("runs");
    let c = &r.counts;
    assert_eq!(c.access_accept, 300);
    assert_eq!(c.accounting_response, 100);
    assert_eq!(r.load, "open");
    // 400 requests at 2000/s take about 0.2 s.
    assert!(r.elapsed_s > 0.15, "elapsed {}", r.elapsed_s);
}

#[test]
fn no_message_authenticator_is_dropped_and_timed_out() {
    // The server requires Message-Authenticator (BlastRADIUS): requests without one are
    // silently discarded, so each one is retransmitted once and then counted as a timeout.
    let r = bench::run(&args(&[
        "--count",
        "5",
        "--no-message-authenticator",
        "--timeout",
        "100ms",
        "--retries",
        "1",
    ]))
    .expect("runs");
    let c = &r.counts;
    assert_eq!(c.timeouts, 5);
    assert_eq!(c.retransmissions, 5);
    assert_eq!(c.replies, 0);
}

#[test]
fn json_report_has_the_fields() {
    let r = bench::run(&args(&["--count", "100"])).expect("runs");
    let v: serde_json::Value = serde_json::from_str(&r.to_json()).expect("valid JSON");
    for k in ["requests_per_s", "elapsed_s", "mode", "load", "window"] {
        assert!(v.get(k).is_some(), "missing {k}");
    }
    for k in ["p50", "p90", "p99", "p999", "max"] {
        assert!(v["latency_us"][k].is_u64(), "missing latency_us.{k}");
    }
    assert_eq!(v["counts"]["access_accept"], 100);
    assert_eq!(v["counts"]["timeouts"], 0);
    assert!(r.to_table().contains("p99.9"));
}

#[test]
fn unbounded_run_is_refused() {
    let s = server();
    let auth = s.auth.to_string();
    let a = match <Cli as clap::Parser>::try_parse_from(["radshard", "bench", "--server", &auth])
        .expect("parses")
        .command
    {
        Command::Bench(a) => a,
        other => panic!("not bench: {other:?}"),
    };
    assert!(bench::run(&a).is_err());
}

// ---------------------------------------------------------------------------------------------
// MS-CHAP: against FreeRADIUS 3.2 (radshard does not answer MS-CHAP yet), and against a
// responder that returns wrong MS-CHAP2-Success values on purpose.
// ---------------------------------------------------------------------------------------------

/// The users both sides know: user0000..user0019 / pass0000..pass0019 (the loader's default
/// patterns with `--users 20`).
fn pattern_users() -> Vec<(String, String)> {
    (0..20)
        .map(|i| (format!("user{i:04}"), format!("pass{i:04}")))
        .collect()
}

/// A private FreeRADIUS 3.2 (no reject delay, MS-CHAP v1 and v2 with MPPE keys) that knows
/// [`pattern_users`].
fn freeradius_with_pattern_users() -> FreeRadiusHome {
    let users: String = pattern_users()
        .iter()
        .map(|(n, p)| format!("{n} Cleartext-Password := \"{p}\"\n"))
        .collect();
    FreeRadiusHome::start(&users)
}

/// Parses `radshard bench --server <to> <extra>` through the real CLI.
fn args_to(to: SocketAddr, extra: &[&str]) -> BenchArgs {
    let to = to.to_string();
    let mut argv = vec![
        "radshard",
        "bench",
        "--server",
        &to,
        "--quiet",
        "--duration",
        "10s",
        "--timeout",
        "2s",
    ];
    argv.extend_from_slice(extra);
    match <Cli as clap::Parser>::try_parse_from(argv)
        .expect("parses")
        .command
    {
        Command::Bench(a) => a,
        other => panic!("not bench: {other:?}"),
    }
}

/// The MS-CHAP v2 checks every server must pass: all accepted, every S= right, MPPE keys sent.
fn assert_mschapv2_all_verified(r: &bench::Report, n: u64) {
    let c = &r.counts;
    assert_eq!(c.sent, n, "{}", r.to_table());
    assert_eq!(c.access_accept, n, "{}", r.to_table());
    assert_eq!(
        (c.timeouts, c.bad(), c.unexpected, c.bad_auth_response),
        (0, 0, 0, 0),
        "{}",
        r.to_table()
    );
    assert_eq!(c.no_mppe_keys, 0, "{}", r.to_table());
}

#[test]
fn mschapv2_against_freeradius_all_accepted_and_success_verified() {
    let fr = freeradius_with_pattern_users();
    for pool in ["16", "0"] {
        let r = bench::run(&args_to(
            fr.auth,
            &[
                "--mode",
                "mschapv2",
                "--users",
                "20",
                "--count",
                "400",
                "--window",
                "32",
                "--mschap-pool",
                pool,
            ],
        ))
        .expect("runs");
        assert_mschapv2_all_verified(&r, 400);
        assert_eq!(r.mode, "mschapv2");
    }
}

#[test]
fn mschapv2_against_freeradius_wrong_passwords_are_rejects() {
    let fr = freeradius_with_pattern_users();
    // A quarter of the requests carry an NT-Response for another password: rejects the loader
    // expects, with no MS-CHAP2-Success to check.
    let r = bench::run(&args_to(
        fr.auth,
        &[
            "--mode",
            "mschapv2",
            "--users",
            "20",
            "--count",
            "400",
            "--wrong-password",
            "0.25",
        ],
    ))
    .expect("runs");
    let c = &r.counts;
    assert_eq!(
        (c.access_accept, c.access_reject),
        (300, 100),
        "{}",
        r.to_table()
    );
    assert_eq!(
        (c.timeouts, c.bad(), c.unexpected, c.bad_auth_response),
        (0, 0, 0, 0),
        "{}",
        r.to_table()
    );

    // A user whose password the loader has wrong: FreeRADIUS rejects, the loader expected an
    // accept, so those are rejects *and* unexpected.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("users");
    std::fs::write(&file, "user0000 pass0000\nuser0001 not-pass0001\n").expect("write");
    let file = file.display().to_string();
    let r = bench::run(&args_to(
        fr.auth,
        &[
            "--mode",
            "mschapv2",
            "--users-file",
            &file,
            "--count",
            "100",
        ],
    ))
    .expect("runs");
    let c = &r.counts;
    assert_eq!(
        (c.access_accept, c.access_reject),
        (50, 50),
        "{}",
        r.to_table()
    );
    assert_eq!(c.unexpected, 50);
    assert_eq!((c.timeouts, c.bad(), c.bad_auth_response), (0, 0, 0));
}

#[test]
fn mschap_v1_against_freeradius_accepts_with_mppe_keys() {
    let fr = freeradius_with_pattern_users();
    let r = bench::run(&args_to(
        fr.auth,
        &[
            "--mode",
            "mschap",
            "--users",
            "20",
            "--count",
            "300",
            "--wrong-password",
            "0.1",
        ],
    ))
    .expect("runs");
    let c = &r.counts;
    assert_eq!(
        (c.access_accept, c.access_reject),
        (270, 30),
        "{}",
        r.to_table()
    );
    assert_eq!((c.timeouts, c.bad(), c.unexpected), (0, 0, 0));
    assert_eq!((c.bad_auth_response, c.no_mppe_keys), (0, 0));
    assert_eq!(r.mode, "mschap");
}

/// The same check against radshard itself: every S= it answers verifies.
#[test]
fn mschapv2_against_radshard() {
    let r = bench::run(&args(&["--mode", "mschapv2", "--count", "400"])).expect("runs");
    assert_mschapv2_all_verified(&r, 400);
}

/// What the tampering responder does to the MS-CHAP2-Success of a request, by identifier.
fn tamper(identifier: u8, good: [u8; MsChap2Success::LEN]) -> Option<Vec<u8>> {
    match identifier % 5 {
        0 => Some(good.to_vec()),
        1 => {
            // One hex digit of S= off by one.
            let mut v = good.to_vec();
            v[7] = if v[7] == b'0' { b'1' } else { b'0' };
            Some(v)
        }
        2 => None,
        3 => Some(good[..20].to_vec()),
        _ => {
            // Right S= for another PPP Ident.
            let mut v = good.to_vec();
            v[0] = v[0].wrapping_add(1);
            Some(v)
        }
    }
}

/// A one-thread server that checks MS-CHAP v2 NT-Responses for user%04d/pass%04d and accepts
/// with a correct, corrupted, truncated or missing MS-CHAP2-Success ([`tamper`]). Answers
/// `n` requests, then returns.
fn tampering_responder(socket: std::net::UdpSocket, n: usize) {
    let secret = Secret::new(b"testing123").expect("secret");
    let mut buf = [0u8; MAX_PACKET_LEN];
    let mut out = [0u8; MAX_PACKET_LEN];
    for _ in 0..n {
        let Ok((len, from)) = socket.recv_from(&mut buf) else {
            return;
        };
        let Ok(p) = Packet::parse(&buf[..len]) else {
            continue;
        };
        let Ok(req) = verify_request(p, &secret, true) else {
            continue;
        };
        let name = p.attr(attr::USER_NAME).expect("User-Name");
        let password = format!("pass{}", String::from_utf8_lossy(&name[4..]));
        let challenge: &[u8; 16] = p
            .vendor_attr(attr::MICROSOFT, attr::MS_CHAP_CHALLENGE)
            .and_then(|c| c.try_into().ok())
            .expect("16-octet MS-CHAP-Challenge");
        let resp = MsChap2Response::parse(
            p.vendor_attr(attr::MICROSOFT, attr::MS_CHAP2_RESPONSE)
                .expect("MS-CHAP2-Response"),
        )
        .expect("well-formed MS-CHAP2-Response");
        let nt = nt_password_hash(password.as_bytes()).expect("hash");
        let account = strip_domain(name);
        assert!(
            verify_nt_response(
                challenge,
                resp.peer_challenge,
                account,
                &nt,
                resp.nt_response
            ),
            "the loader sent a wrong NT-Response"
        );
        let good = MsChap2Success {
            ident: resp.ident,
            authenticator_response: authenticator_response(
                &nt_password_hash_hash(&nt),
                resp.nt_response,
                resp.peer_challenge,
                challenge,
                account,
            ),
        }
        .to_bytes();
        let mut b = PacketBuilder::reply(&mut out, Code::AccessAccept, &req).expect("reply");
        if let Some(v) = tamper(p.identifier(), good) {
            b.vsa(attr::MICROSOFT, attr::MS_CHAP2_SUCCESS, &v)
                .expect("vsa");
        }
        b.vsa(attr::MICROSOFT, attr::MS_MPPE_SEND_KEY, &[0; 34])
            .expect("vsa");
        b.vsa(attr::MICROSOFT, attr::MS_MPPE_RECV_KEY, &[0; 34])
            .expect("vsa");
        let reply = b.finish(&secret).expect("finish");
        let _ = socket.send_to(reply, from);
    }
}

#[test]
fn tampered_ms_chap2_success_is_counted_as_bad() {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let to = socket.local_addr().expect("addr");
    // 250 requests on one socket use identifiers 0..249 once each (least recently used
    // first), so each of the five kinds of reply is given exactly 50 times.
    let responder = std::thread::spawn(move || tampering_responder(socket, 250));
    let r = bench::run(&args_to(
        to,
        &[
            "--mode", "mschapv2", "--users", "20", "--count", "250", "--window", "16",
        ],
    ))
    .expect("runs");
    responder.join().expect("responder");
    let c = &r.counts;
    // Every reply is a verified Access-Accept; four in five carry no valid S= for the request.
    assert_eq!(c.access_accept, 250, "{}", r.to_table());
    assert_eq!(c.bad_auth_response, 200, "{}", r.to_table());
    assert_eq!(
        (c.timeouts, c.bad(), c.unexpected, c.no_mppe_keys),
        (0, 0, 0, 0)
    );
    assert!(r.to_table().contains("bad MS-CHAP2-Success   200"));
    let v: serde_json::Value = serde_json::from_str(&r.to_json()).expect("JSON");
    assert_eq!(v["counts"]["bad_auth_response"], 200);
}
