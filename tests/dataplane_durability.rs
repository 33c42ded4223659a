//! Durability: every Accounting-Response the server sent is backed by a record on disk, even
//! when the server is SIGKILLed in the middle of a flood.

mod common;

use std::collections::HashSet;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use radshard::proto::{attr, verify_response, Code, Packet, PacketBuilder};

const WINDOW: usize = 64;
const MAX_REQUESTS: u64 = 200_000;
const MAX_FLOOD: Duration = Duration::from_secs(10);
/// An unanswered request frees its identifier after this long.
const GIVE_UP: Duration = Duration::from_secs(2);

struct FloodResult {
    sent: u64,
    acked: Vec<String>,
    bad_replies: u64,
    gave_up: u64,
}

/// Sends Accounting-Requests with unique Acct-Session-Ids, at most `WINDOW` outstanding, until
/// `stop` is raised (then drains late replies), `MAX_REQUESTS` are sent or `MAX_FLOOD` passes.
fn flood(to: SocketAddr, stop: Arc<AtomicBool>) -> FloodResult {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.set_read_timeout(Some(Duration::from_millis(5)))
        .expect("timeout");
    let sec = secret(SECRET);
    // Outstanding requests by identifier: (sequence number, request authenticator, sent at).
    let mut slots: Vec<Option<(u64, [u8; 16], Instant)>> = vec![None; 256];
    let mut outstanding = 0usize;
    let mut next_id = 0u8;
    let mut r = FloodResult {
        sent: 0,
        acked: Vec::new(),
        bad_replies: 0,
        gave_up: 0,
    };
    let started = Instant::now();
    let mut stopped_at: Option<Instant> = None;
    let mut rbuf = [0u8; 4096];
    let mut pbuf = [0u8; 4096];
    loop {
        let now = Instant::now();
        if stopped_at.is_none()
            && (stop.load(Ordering::Acquire) || now - started > MAX_FLOOD || r.sent >= MAX_REQUESTS)
        {
            stopped_at = Some(now);
        }
        match stopped_at {
            // After the stop, collect replies already on their way, then finish.
            Some(t) if now - t > Duration::from_millis(300) || outstanding == 0 => break,
            Some(_) => {}
            None => {
                while outstanding < WINDOW {
                    while slots[next_id as usize].is_some() {
                        next_id = next_id.wrapping_add(1);
                    }
                    let id = next_id;
                    next_id = next_id.wrapping_add(1);
                    let session = format!("kill9-{}", r.sent);
                    let mut b =
                        PacketBuilder::request(&mut pbuf, Code::AccountingRequest, id, &[0; 16])
                            .expect("fits");
                    b.attr(attr::ACCT_STATUS_TYPE, &1u32.to_be_bytes()).unwrap();
                    b.attr(attr::USER_NAME, b"alice").unwrap();
                    b.attr(attr::ACCT_SESSION_ID, session.as_bytes()).unwrap();
                    let pkt = b.finish(&sec).expect("signs");
                    let auth = authenticator_of(pkt);
                    if sock.send_to(pkt, to).is_err() {
                        break;
                    }
                    slots[id as usize] = Some((r.sent, auth, Instant::now()));
                    outstanding += 1;
                    r.sent += 1;
                }
            }
        }
        match sock.recv_from(&mut rbuf) {
            Ok((n, _)) => {
                let Ok(p) = Packet::parse(&rbuf[..n]) else {
                    r.bad_replies += 1;
                    continue;
                };
                let id = p.identifier() as usize;
                match slots[id] {
                    Some((seq, auth, _))
                        if p.code() == Code::AccountingResponse
                            && verify_response(&p, &auth, &sec).is_ok() =>
                    {
                        r.acked.push(format!("kill9-{seq}"));
                        slots[id] = None;
                        outstanding -= 1;
                    }
                    _ => r.bad_replies += 1,
                }
            }
            Err(_) => {
                // Timeout (or an ICMP error after the kill): expire requests that will never
                // be answered so the window keeps moving.
                let now = Instant::now();
                for s in slots.iter_mut() {
                    if s.is_some_and(|(_, _, at)| now - at > GIVE_UP) {
                        *s = None;
                        outstanding -= 1;
                        r.gave_up += 1;
                    }
                }
            }
        }
    }
    r
}

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
        std::thread::spawn(move || flood(to, stop))
    };
    std::thread::sleep(Duration::from_secs(1));
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
