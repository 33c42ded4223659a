//! How much memory pending pushes cost: N Access-Requests held at once, each waiting for its
//! own push (distinct Calling-Station-Id), against a push service that keeps them all
//! pending (polled every second). Reports the RSS growth per pending push. `#[ignore]`d (it
//! is a measurement, with a few thousand short-lived connections):
//! `cargo test --test mfa_push_scale -- --ignored --nocapture`.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use radshard::proto::attr;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

#[test]
#[ignore]
fn pending_pushes_memory() {
    let n: usize = std::env::var("PUSHES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4000);
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/push", l.local_addr().expect("addr"));
    let posts = Arc::new(AtomicUsize::new(0));
    let p = posts.clone();
    std::thread::spawn(move || {
        for conn in l.incoming().flatten() {
            let p = p.clone();
            std::thread::spawn(move || serve(conn, &p));
        }
    });
    let s = TestServer::start(
        2,
        &format!(
            r#"
[[clients]]
name = "localhost"
addresses = ["127.0.0.1"]
secret = "testing123"
require_message_authenticator = false

[[users]]
name = "alice"
password = "alice-pw"
groups = ["staff"]

[[policies]]
name = "push"
groups = ["staff"]
mfa = true

[mfa]
provider = "rest_push"

[mfa.rest_push]
url = "{url}"
wait = "120s"
poll_interval = "10s"
"#
        ),
    );
    let c = RadClient::new();
    let sec = secret(SECRET);
    // Warm up allocator arenas and the HTTP client with a few, then measure.
    std::thread::sleep(Duration::from_millis(200));
    let before = rss_kib();
    for i in 0..n {
        let station = format!("st-{i}");
        let req = access_request_with(
            &sec,
            (i % 256) as u8,
            &random_authenticator(),
            "alice",
            "alice-pw",
            false,
            &[(attr::CALLING_STATION_ID, station.as_bytes())],
        );
        c.send(&req, s.auth);
        if i % 200 == 199 {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let m = radshard::backend::mfa::metrics().expect("metrics");
    let pending = || m.pushes_pending.load(Relaxed) as usize;
    assert!(
        wait_until(Duration::from_secs(60), || pending() == n
            && posts.load(Relaxed) == n),
        "pending {} pushes sent {}",
        pending(),
        posts.load(Relaxed)
    );
    // Let the service's connection threads finish (the first poll is 10 s away).
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(pending(), n, "still pending after polls");
    let after = rss_kib();
    let per = (after.saturating_sub(before) * 1024) / n as u64;
    println!(
        "{n} pending pushes: RSS {before} KiB -> {after} KiB (+{} KiB, {per} bytes each)",
        after.saturating_sub(before)
    );
}

/// The push service: POST → a new id, GET → always pending.
fn serve(mut conn: TcpStream, posts: &AtomicUsize) {
    let mut r = BufReader::new(conn.try_clone().expect("clone"));
    let (mut line, mut len, mut post) = (String::new(), 0usize, None);
    loop {
        line.clear();
        if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        post.get_or_insert(line.starts_with("POST"));
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; len];
    let _ = r.read_exact(&mut body);
    let answer = if post == Some(true) {
        let n = posts.fetch_add(1, Relaxed);
        format!("{{\"id\":\"p{n}\"}}")
    } else {
        "{\"status\":\"pending\"}".to_string()
    };
    let _ = write!(
        conn,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
        answer.len()
    );
}
