//! Durability: every Accounting-Response the server sent is backed by a record on disk, even
//! when the server is SIGKILLed in the middle of a flood.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

#[test]
fn sigkill_mid_flood_loses_no_acknowledged_record() {
    let dir = tempfile::tempdir().expect("temp dir");
    let acct_dir = dir.path().join("acct");
    let config = dir.path().join("radshard.toml");
    std::fs::write(&config, config_text(2, "", &acct_dir, STANDARD_BODY)).expect("write config");
    let mut server = ChildServer::spawn(&config, &acct_dir, &[]);

    let stop = Arc::new(AtomicBool::new(false));
    let to = server.acct;
    let flooder = {
        let stop = stop.clone();
        std::thread::spawn(move || flood_accounting(to, "kill9", stop))
    };
    // Kill once the flood is well under way (bounded wait: fsyncs can be slow on a busy disk).
    std::thread::sleep(Duration::from_millis(500));
    let going = wait_until(Duration::from_secs(15), || {
        read_accounting(&acct_dir).records.len() >= 1000
    });
    assert!(going, "accounting flood never got going");
    server.signal(libc::SIGKILL);
    let killed_at = Instant::now();
    let status = server
        .wait_exit(Duration::from_secs(10))
        .expect("the server dies on SIGKILL");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}");
    stop.store(true, Ordering::Release);
    let r = flooder.join().expect("flood thread");

    let log = read_accounting(&acct_dir);
    let written: HashSet<&str> = log
        .records
        .iter()
        .filter_map(|rec| rec_attr(rec, "Acct-Session-Id"))
        .collect();
    let missing: Vec<&String> = r
        .acked
        .iter()
        .filter(|s| !written.contains(s.as_str()))
        .collect();
    println!(
        "kill -9 after ~1 s: sent {}, acked {}, written {} ({} lines, {} files), \
         acked-but-missing {}, unanswered {}, bad replies {}, torn tail {:?}, bad lines {} \
         (killed {:?} ago)",
        r.sent,
        r.acked.len(),
        written.len(),
        log.records.len(),
        log.files.len(),
        missing.len(),
        r.gave_up,
        r.bad_replies,
        log.torn_tail,
        log.bad_lines.len(),
        killed_at.elapsed(),
    );
    assert!(
        r.acked.len() >= 100,
        "the flood got going before the kill (acked {})",
        r.acked.len()
    );
    assert_eq!(r.bad_replies, 0, "every reply matched and verified");
    assert!(
        missing.is_empty(),
        "{} acknowledged records are not in the log, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert!(log.bad_lines.is_empty(), "{:?}", &log.bad_lines[..1]);
    assert_eq!(
        written.len(),
        log.records.len(),
        "no session was written twice"
    );
    assert!(written.len() >= r.acked.len());
}
