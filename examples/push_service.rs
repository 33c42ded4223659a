//! A local HTTP push service speaking radshard's generic REST push protocol, for load runs
//! (`perf/mfa_push_scale.sh`): `POST /push` answers `{"id": "…"}` at once; `GET /push/{id}`
//! answers `{"status": "pending"}` until `--approve-after` has passed since the POST, then
//! `{"status": "approved"}`. `GET /stats` answers `{"posts": N, "polls": N, "open": N}`.
//!
//! One tokio thread, HTTP/1.1 keep-alive, no allocation per request beyond the reply line:
//! the service should cost little next to the server it is measuring.
//!
//! `cargo run --release --example push_service -- 127.0.0.1:8400 30`

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Default)]
struct Service {
    approve_after: Duration,
    started: Mutex<HashMap<u64, Instant>>,
    next: AtomicU64,
    posts: AtomicU64,
    polls: AtomicU64,
}

impl Service {
    fn answer(&self, method: &str, path: &str) -> (u16, String) {
        match (method, path) {
            ("POST", "/push") => {
                let id = self.next.fetch_add(1, Relaxed);
                self.posts.fetch_add(1, Relaxed);
                let mut s = self.started.lock().unwrap_or_else(|e| e.into_inner());
                s.insert(id, Instant::now());
                (200, format!("{{\"id\":\"p{id}\"}}"))
            }
            ("GET", "/stats") => {
                let open = self.started.lock().map(|s| s.len()).unwrap_or(0);
                (
                    200,
                    format!(
                        "{{\"posts\":{},\"polls\":{},\"open\":{open}}}",
                        self.posts.load(Relaxed),
                        self.polls.load(Relaxed)
                    ),
                )
            }
            ("GET", p) => {
                let Some(id) = p
                    .strip_prefix("/push/p")
                    .and_then(|n| n.parse::<u64>().ok())
                else {
                    return (404, "{}".into());
                };
                self.polls.fetch_add(1, Relaxed);
                let mut s = self.started.lock().unwrap_or_else(|e| e.into_inner());
                match s.get(&id) {
                    Some(t) if t.elapsed() >= self.approve_after => {
                        s.remove(&id);
                        (200, "{\"status\":\"approved\"}".into())
                    }
                    Some(_) => (200, "{\"status\":\"pending\"}".into()),
                    None => (404, "{}".into()),
                }
            }
            _ => (404, "{}".into()),
        }
    }
}

/// Serves one keep-alive connection: requests are small (headers plus a short JSON body).
async fn serve(mut conn: TcpStream, svc: Arc<Service>) {
    let mut buf = vec![0u8; 8192];
    let mut have = 0usize;
    loop {
        // A whole request: headers, then Content-Length bytes of body.
        let (head_end, body_len) = loop {
            if let Some(end) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                break (end + 4, len);
            }
            if have == buf.len() {
                return;
            }
            match conn.read(&mut buf[have..]).await {
                Ok(0) | Err(_) => return,
                Ok(n) => have += n,
            }
        };
        if head_end + body_len > buf.len() {
            return;
        }
        while have < head_end + body_len {
            match conn.read(&mut buf[have..]).await {
                Ok(0) | Err(_) => return,
                Ok(n) => have += n,
            }
        }
        let line = String::from_utf8_lossy(&buf[..head_end]);
        let mut words = line.split_whitespace();
        let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
        let (status, body) = svc.answer(method, path);
        let reply = format!(
            "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            if status == 200 { "OK" } else { "Not Found" },
            body.len()
        );
        if conn.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
        buf.copy_within(head_end + body_len..have, 0);
        have -= head_end + body_len;
    }
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:8400".into());
    let approve_after = args
        .next()
        .and_then(|s| s.parse::<f64>().ok())
        .map(Duration::from_secs_f64)
        .unwrap_or(Duration::from_secs(30));
    let svc = Arc::new(Service {
        approve_after,
        ..Service::default()
    });
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async move {
            let l = TcpListener::bind(&listen).await?;
            eprintln!(
                "push service on {listen}, approving {:?} after each push",
                approve_after
            );
            loop {
                let (conn, _) = l.accept().await?;
                let _ = conn.set_nodelay(true);
                tokio::spawn(serve(conn, svc.clone()));
            }
        })
}
