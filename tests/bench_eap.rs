//! `radshard bench --mode peap|ttls-pap|eap-tls` against a real peer: FreeRADIUS 3.2 set up as
//! the eapol_test recipe does (tests/common/freeradius_eap.rs). Bounded runs whose outcome is
//! known exactly: every login accepted with its MPPE keys equal to our MSK, the round trips a
//! real supplicant needs (eapol_test's count for PEAP), sessions resumed with `--resume`, TLS
//! 1.3 when asked, rejects (not key failures) for a wrong password, and a server whose keys are
//! wrong caught as `bad_keys` and a failed run.

mod common;

use std::sync::Mutex;

use common::freeradius_eap::{EapOptions, FreeRadiusEap, PASSWORD, TLS_IDENTITY};
use radshard::bench::eap::EapStats;
use radshard::bench::{self, BenchArgs, Report};
use radshard::cli::{Cli, Command};

/// One FreeRADIUS at a time: the machine is small and shared.
static SERIAL: Mutex<()> = Mutex::new(());

const COUNT: u64 = 200;

/// Parses `radshard bench --server <fr> <mode flags> <extra>` through the real CLI.
fn args(fr: &FreeRadiusEap, mode: &str, user: &str, password: &str, extra: &[&str]) -> BenchArgs {
    let c = fr.certs();
    let (server, ca) = (fr.addr.to_string(), c.join("ca.pem").display().to_string());
    let (cert, key) = (
        c.join("client.pem").display().to_string(),
        c.join("client.key").display().to_string(),
    );
    let mut argv = vec![
        "radshard",
        "bench",
        "--server",
        &server,
        "--mode",
        mode,
        "--ca",
        &ca,
        "--user-pattern",
        user,
        "--password-pattern",
        password,
        "--users",
        "1",
        "--quiet",
        "--duration",
        "20s",
        // FreeRADIUS delays rejects by 1 s (reject_delay).
        "--timeout",
        "3s",
    ];
    if !extra.contains(&"--window") {
        argv.extend_from_slice(&["--window", "16"]);
    }
    if mode == "eap-tls" {
        argv.extend_from_slice(&["--client-cert", &cert, "--client-key", &key]);
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

/// `count` logins of alice (EAP-TLS: her certificate).
fn run(fr: &FreeRadiusEap, mode: &str, count: u64, extra: &[&str]) -> (Report, EapStats) {
    let (user, password) = if mode == "eap-tls" {
        (TLS_IDENTITY, "unused")
    } else {
        ("alice", PASSWORD)
    };
    run_as(fr, mode, user, password, count, extra)
}

fn run_as(
    fr: &FreeRadiusEap,
    mode: &str,
    user: &str,
    password: &str,
    count: u64,
    extra: &[&str],
) -> (Report, EapStats) {
    let count = count.to_string();
    let mut all = vec!["--count", &count];
    all.extend_from_slice(extra);
    let report = bench::run(&args(fr, mode, user, password, &all)).expect("bench runs");
    let eap = report.eap.clone().expect("EAP stats");
    (report, eap)
}

/// Every login accepted, keys verified, nothing lost or odd at the RADIUS level, and the
/// round trips per login within `rounds`.
fn assert_all_ok(
    what: &str,
    fr: &FreeRadiusEap,
    (report, e): &(Report, EapStats),
    rounds: std::ops::RangeInclusive<u32>,
) {
    let c = &report.counts;
    let ctx = || format!("{what}:\n{}\n{}", report.to_table(), fr.log());
    assert_eq!(e.logins_started, COUNT, "{}", ctx());
    assert_eq!(e.logins_ok, COUNT, "{}", ctx());
    assert_eq!(
        (e.logins_rejected, e.logins_failed, e.bad_keys),
        (0, 0, 0),
        "{}",
        ctx()
    );
    assert_eq!(c.access_accept, COUNT, "{}", ctx());
    assert_eq!(
        (
            c.timeouts,
            c.bad(),
            c.unexpected,
            c.missing_message_authenticator
        ),
        (0, 0, 0, 0),
        "{}",
        ctx()
    );
    assert!(
        rounds.contains(&e.rounds_min) && rounds.contains(&e.rounds_max),
        "rounds {}..={} not in {rounds:?}: {}",
        e.rounds_min,
        e.rounds_max,
        ctx()
    );
    assert_eq!(c.replies, e.rounds, "{}", ctx());
    assert!(!report.failed(), "{}", ctx());
    assert!(e.logins_per_s > 0.0, "{}", ctx());
}

#[test]
fn tls12_full_handshakes_peap_ttls_eap_tls() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let fr = FreeRadiusEap::start(&EapOptions::default());

    // The reference supplicant first: if it fails, the setup is wrong, not the loader.
    let (ok, eapol_rounds, text) = fr.eapol_test_peap();
    assert!(
        ok,
        "eapol_test against this FreeRADIUS:\n{text}\n{}",
        fr.log()
    );

    let peap = run(&fr, "peap", COUNT, &[]);
    assert_all_ok("peap", &fr, &peap, 9..=12);
    // One login is the same conversation eapol_test has (Identity, Nak of md5, handshake in
    // fragments, inner Identity, MS-CHAPv2, Success ack, Result TLV).
    assert_eq!(peap.1.rounds_min as usize, eapol_rounds, "vs eapol_test");
    assert_eq!(peap.1.rounds_max as usize, eapol_rounds, "vs eapol_test");
    let ttls = run(&fr, "ttls-pap", COUNT, &[]);
    assert_all_ok("ttls-pap", &fr, &ttls, 6..=8);
    let tls = run(&fr, "eap-tls", COUNT, &[]);
    assert_all_ok("eap-tls", &fr, &tls, 7..=9);
    for (_, e) in [&peap, &ttls, &tls] {
        assert_eq!((e.resumed, e.full_handshakes, e.tls13), (0, COUNT, 0));
    }
    // Our own flight in small fragments: more round trips, the same result.
    let small = run(&fr, "eap-tls", 20, &["--eap-fragment", "300"]);
    assert_eq!(small.1.logins_ok, 20, "{}", small.0.to_table());
    assert!(
        small.1.rounds_min > tls.1.rounds_max,
        "{}",
        small.0.to_table()
    );
}

#[test]
fn wrong_password_is_rejected_not_a_key_failure() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let fr = FreeRadiusEap::start(&EapOptions::default());
    for mode in ["peap", "ttls-pap"] {
        let (report, e) = run(&fr, mode, 32, &["--wrong-password", "1"]);
        let ctx = || format!("{mode}:\n{}\n{}", report.to_table(), fr.log());
        assert_eq!(e.logins_rejected, 32, "{}", ctx());
        assert_eq!(
            (e.logins_ok, e.logins_failed, e.bad_keys),
            (0, 0, 0),
            "{}",
            ctx()
        );
        let c = &report.counts;
        assert_eq!(
            (c.access_reject, c.unexpected, c.timeouts),
            (32, 0, 0),
            "{}",
            ctx()
        );
        assert!(!report.failed(), "{}", ctx());
    }
}

#[test]
fn tls12_resumption() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let fr = FreeRadiusEap::start(&EapOptions {
        resume: true,
        ..EapOptions::default()
    });
    // Resumed: FreeRADIUS skips phase 2 (PEAP 5 round trips, TTLS and EAP-TLS 4).
    for (mode, full, resumed) in [("peap", 11, 5), ("ttls-pap", 7, 4), ("eap-tls", 8, 4)] {
        let r = run(&fr, mode, COUNT, &["--resume"]);
        assert_all_ok(mode, &fr, &r, resumed..=full);
        let e = &r.1;
        // Each window place's first login finds no session; every later one resumes.
        assert_eq!(e.resumed, COUNT - 16, "{mode}: {}", r.0.to_table());
        assert_eq!(e.resume, "per-slot");
        assert_eq!(e.resumed + e.full_handshakes, COUNT);
        assert_eq!((e.rounds_min, e.rounds_max), (resumed, full), "{mode}");
    }
    // One cache for the whole loader, one login at a time: each resumes the session the
    // login before it left (concurrent resumption of one session crashes FreeRADIUS 3.2.1).
    let r = run(&fr, "peap", 20, &["--resume-shared", "--window", "1"]);
    assert_eq!((r.1.logins_ok, r.1.resumed), (20, 19), "{}", r.0.to_table());
    assert_eq!(r.1.resume, "shared");
    // Without --resume the same server does full handshakes only.
    let r = run(&fr, "peap", 20, &[]);
    assert_eq!((r.1.logins_ok, r.1.resumed), (20, 0), "{}", r.0.to_table());
}

#[test]
fn tls13() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let fr = FreeRadiusEap::start(&EapOptions {
        tls13: true,
        ..EapOptions::default()
    });
    for (mode, rounds) in [("peap", 9..=11), ("ttls-pap", 6..=7), ("eap-tls", 7..=9)] {
        let r = run(&fr, mode, COUNT, &["--tls-version", "1.3"]);
        assert_all_ok(mode, &fr, &r, rounds);
        assert_eq!(r.1.tls13, COUNT, "{mode}");
    }
}

#[test]
fn wrong_mppe_keys_fail_the_run() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // A server that authenticates mallory but replaces the Recv-Key its EAP module derived.
    let fr = FreeRadiusEap::start(&EapOptions {
        users: vec![("mallory".into(), "mallorypw".into())],
        post_auth: Some(
            "\tif (&User-Name == \"mallory\") {\n\t\tupdate reply {\n\
             \t\t\t&MS-MPPE-Recv-Key := 0x0101010101010101010101010101010101010101010101010101010101010101\n\
             \t\t}\n\t}\n"
                .into(),
        ),
        ..EapOptions::default()
    });
    let (report, e) = run_as(&fr, "peap", "mallory", "mallorypw", 10, &[]);
    let ctx = || format!("{}\n{}", report.to_table(), fr.log());
    assert_eq!(report.counts.access_accept, 10, "{}", ctx());
    assert_eq!(
        (e.bad_keys, e.logins_ok, e.logins_failed),
        (10, 0, 10),
        "{}",
        ctx()
    );
    assert_eq!(e.failures.get("bad_keys"), Some(&10), "{}", ctx());
    assert!(report.failed(), "{}", ctx());
    // alice on the same server is fine.
    let (report, e) = run(&fr, "peap", 10, &[]);
    assert_eq!((e.logins_ok, e.bad_keys), (10, 0), "{}", report.to_table());
}
