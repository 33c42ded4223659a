//! The binary as an operator runs it: the shipped default config, `check-config`, and a
//! graceful SIGTERM.

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

fn default_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config/radshard.toml")
}

#[test]
fn default_config_serves_radtest_and_sigterm_flushes_and_exits_zero() {
    let dir = tempfile::tempdir().expect("temp dir");
    let acct_dir = dir.path().join("acct");
    let log_path = dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let mut server = ChildServer::spawn_logging(&default_config(), &acct_dir, &[], log.into());

    let out = run_tool(
        "radtest",
        &["alice", "alice-pw", &server.auth.to_string(), "0", SECRET],
        "",
        Duration::from_secs(20),
    );
    let out = stdout_of(&out);
    assert!(out.contains("Received Access-Accept Id"), "{out}");
    assert!(out.contains("Reply-Message = \"Welcome, alice\""), "{out}");

    // An accounting flood, and SIGTERM in the middle of it.
    let stop = Arc::new(AtomicBool::new(false));
    let flooder = {
        let (stop, to) = (stop.clone(), server.acct);
        std::thread::spawn(move || flood_accounting(to, "term", stop))
    };
    // Let the flood get going: wait (bounded) until records are landing, however slow the
    // disk's fsyncs are on a busy machine.
    let going = wait_until(Duration::from_secs(15), || {
        read_accounting(&acct_dir).records.len() >= 200
    });
    assert!(going, "accounting flood never got going");
    server.signal(libc::SIGTERM);
    let t = Instant::now();
    let status = server
        .wait_exit(Duration::from_secs(15))
        .expect("serve exits after SIGTERM");
    let took = t.elapsed();
    stop.store(true, Ordering::Release);
    let r = flooder.join().expect("flood thread");
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(status.success(), "exit status {status}; log:\n{log}");
    assert!(
        took < Duration::from_secs(5),
        "SIGTERM to exit took {took:?}"
    );
    assert!(
        !log.contains("still in progress"),
        "stopped with work in progress:\n{log}"
    );

    let records = read_accounting(&acct_dir);
    assert!(records.torn_tail.is_none() && records.bad_lines.is_empty());
    let written: HashSet<&str> = records
        .records
        .iter()
        .filter_map(|r| rec_attr(r, "Acct-Session-Id"))
        .collect();
    println!(
        "SIGTERM mid-flood: exit 0 after {took:?}; sent {}, acked {}, written {}",
        r.sent,
        r.acked.len(),
        written.len()
    );
    assert!(
        r.acked.len() >= 100,
        "the flood got going (acked {})",
        r.acked.len()
    );
    assert_eq!(r.bad_replies, 0);
    for a in &r.acked {
        assert!(written.contains(a.as_str()), "{a} acked but not written");
    }
    // Whatever the server had taken in when it stopped, it finished: written *and* answered.
    assert_eq!(
        written.len(),
        r.acked.len(),
        "every record written was also answered before the exit"
    );
    assert_eq!(
        written.len(),
        records.records.len(),
        "no record written twice"
    );
}

#[test]
fn check_config_accepts_the_default_and_reports_file_line_for_an_unknown_key() {
    let exe = env!("CARGO_BIN_EXE_radshard");
    let ok = Command::new(exe)
        .args(["check-config", "--config"])
        .arg(default_config())
        .stdin(Stdio::null())
        .output()
        .expect("run check-config");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("OK"));

    let dir = tempfile::tempdir().expect("temp dir");
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[server]\nshards = 1\nlisten_auht = [\"127.0.0.1:1812\"]\n",
    )
    .unwrap();
    let o = Command::new(exe)
        .args(["check-config", "--config"])
        .arg(&bad)
        .stdin(Stdio::null())
        .output()
        .expect("run check-config");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "a bad config fails: {err}");
    let expect = format!("{}:3: ", bad.display());
    assert!(
        err.contains(&expect) && err.contains("listen_auht"),
        "expected `{expect}… listen_auht …`, got: {err}"
    );
}

#[test]
fn check_config_refuses_a_password_hash_that_can_never_verify() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bad = dir.path().join("hash.toml");
    std::fs::write(
        &bad,
        "[[users]]\nname = \"dave\"\npassword_hash = \"$argon2id$garbage\"\n",
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_radshard"))
        .args(["check-config", "--config"])
        .arg(&bad)
        .stdin(Stdio::null())
        .output()
        .expect("run check-config");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "accepted an unusable hash: {err}");
    assert!(err.contains(&format!("{}:3: ", bad.display())), "{err}");
}
