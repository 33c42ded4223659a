//! `radshard bench` against an in-process radshard on loopback: small bounded runs whose
//! outcome is known exactly.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::OnceLock;

use radshard::bench::{self, BenchArgs};
use radshard::cli::{Cli, Command};
use radshard::config::Config;
use radshard::dataplane;

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
