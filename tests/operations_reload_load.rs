//! SIGHUP under load: reloads while requests stream in lose none of them.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use radshard::proto::Code;

#[test]
fn reloads_under_load_drop_no_request() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("radshard.toml");
    std::fs::write(&cfg, format!("[log]\nlevel = \"warn\"\n{STANDARD_BODY}")).unwrap();
    let server = ChildServer::spawn(&cfg, &dir.path().join("acct"), &["--shards", "2"]);
    let auth = server.auth;

    let done = Arc::new(AtomicBool::new(false));
    let client = {
        let done = done.clone();
        std::thread::spawn(move || {
            // Windows of 32 distinct requests; every one must be answered while the server
            // reloads. A resend (as a NAS would after 2 s of silence) is counted: a reload that
            // lost a packet would show up as one.
            let c = RadClient::new();
            let sec = secret(SECRET);
            let (mut answered, mut total, mut resends) = (0usize, 0usize, 0usize);
            let deadline = Instant::now() + Duration::from_secs(20);
            while total < 4000 && Instant::now() < deadline {
                let mut pending: HashMap<u8, Vec<u8>> = HashMap::new();
                for id in 0..32u8 {
                    let req = access_request(
                        &sec,
                        id,
                        &random_authenticator(),
                        "alice",
                        "alice-pw",
                        true,
                    );
                    c.send(&req, auth);
                    pending.insert(id, req);
                }
                total += 32;
                let mut resent = false;
                while !pending.is_empty() {
                    match c.recv_timeout(Duration::from_secs(2)) {
                        Some(r) => {
                            if let Some(req) = pending.remove(&r[1]) {
                                assert_eq!(check_reply(&r, &req, &sec), Code::AccessAccept);
                                answered += 1;
                            }
                        }
                        None if !resent => {
                            for req in pending.values() {
                                c.send(req, auth);
                                resends += 1;
                            }
                            resent = true;
                        }
                        None => break,
                    }
                }
            }
            done.store(true, Ordering::Release);
            (answered, total, resends)
        })
    };
    // Reload every 50 ms while the client runs.
    let mut reloads = 0;
    while !done.load(Ordering::Acquire) && reloads < 40 {
        std::thread::sleep(Duration::from_millis(50));
        server.signal(libc::SIGHUP);
        reloads += 1;
    }
    let (answered, total, resends) = client.join().expect("client thread");
    println!("{answered}/{total} answered, {resends} resends, across {reloads} reloads");
    assert!(
        reloads >= 5,
        "the load outlasted several reloads ({reloads})"
    );
    assert_eq!(
        answered, total,
        "every request answered across {reloads} reloads"
    );
    assert_eq!(resends, 0, "no request needed a retransmission");
}
