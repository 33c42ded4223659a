//! The data plane allocates nothing per packet. A counting global allocator watches the whole
//! process (server shards and this test's client) while a bounded load of distinct requests is
//! answered; what remains is per-batch or per-wake-up work (io_uring completions, accounting
//! group commits), which must stay far below one allocation per request.

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use radshard::config::Config;
use radshard::dataplane::batch::SendBatch;
use radshard::proto::{attr, verify_response, Code, Packet, PacketBuilder, Secret};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: defers to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        System.realloc(p, l, n)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const WINDOW: usize = 256;

/// Sends `total` distinct requests in windows of `WINDOW`, waiting for every reply of a window
/// before the next. Returns how many replies verified. Allocation-free: fixed buffers only.
/// What `drive` sends.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Pap,
    Accounting,
    /// MS-CHAPv2 (one precomputed exchange: the server's work per request is the same).
    MsChapV2,
}

/// An MS-CHAP-Challenge and MS-CHAP2-Response for alice/alice-pw.
fn ms_chap_v2() -> ([u8; 16], [u8; 50]) {
    use radshard::proto::crypto::mschap::{generate_nt_response, nt_password_hash};
    let (ac, pc) = ([7u8; 16], [9u8; 16]);
    let nt = generate_nt_response(&ac, &pc, b"alice", &nt_password_hash(b"alice-pw").unwrap());
    let mut v = [0u8; 50];
    v[0] = 1;
    v[2..18].copy_from_slice(&pc);
    v[26..].copy_from_slice(&nt);
    (ac, v)
}

fn drive(sock: &UdpSocket, secret: &Secret, kind: Kind, total: usize, seq: &mut u32) -> usize {
    let acct = kind == Kind::Accounting;
    let (challenge, response) = ms_chap_v2();
    let mut bufs = [[0u8; 256]; WINDOW];
    // (MS-CHAPv2 requests are ~130 octets: they fit.)
    let mut auths = [[0u8; 16]; WINDOW];
    let mut rx = [0u8; 4096];
    let mut tx = SendBatch::new(WINDOW);
    let to = sock.peer_addr().unwrap();
    let mut ok = 0;
    let mut sent = 0;
    while sent < total {
        let n = WINDOW.min(total - sent);
        for i in 0..n {
            *seq = seq.wrapping_add(1);
            let mut auth = [0u8; 16];
            auth[..4].copy_from_slice(&seq.wrapping_mul(2_654_435_761).to_be_bytes());
            auth[4..8].copy_from_slice(&seq.to_be_bytes());
            let id = i as u8;
            let len = if acct {
                let mut b =
                    PacketBuilder::request(&mut bufs[i], Code::AccountingRequest, id, &auth)
                        .unwrap();
                // Interim-Updates of a thousand sessions, which the warm-up opens in the
                // session table: an open session's updates are the steady state. (A Start
                // allocates the session it opens, once, bounded by `max_sessions`.)
                b.attr(attr::ACCT_STATUS_TYPE, &3u32.to_be_bytes()).unwrap();
                b.attr(attr::USER_NAME, b"alice").unwrap();
                b.attr(attr::ACCT_SESSION_ID, &(*seq % 1000).to_be_bytes())
                    .unwrap();
                b.finish(secret).unwrap().len()
            } else {
                let mut b =
                    PacketBuilder::request(&mut bufs[i], Code::AccessRequest, id, &auth).unwrap();
                b.message_authenticator().unwrap();
                b.attr(attr::USER_NAME, b"alice").unwrap();
                if kind == Kind::MsChapV2 {
                    b.vsa(attr::MICROSOFT, attr::MS_CHAP_CHALLENGE, &challenge)
                        .unwrap();
                    b.vsa(attr::MICROSOFT, attr::MS_CHAP2_RESPONSE, &response)
                        .unwrap();
                } else {
                    b.user_password(secret, b"alice-pw").unwrap();
                }
                b.finish(secret).unwrap().len()
            };
            auths[i].copy_from_slice(&bufs[i][4..20]);
            tx.push(&bufs[i][..len], to);
        }
        // One sendmmsg per window, as a busy NAS or proxy would burst: the server then sees
        // the window in few wake-ups, whatever the scheduler does with this test's thread.
        while !tx.is_empty() {
            let _ = tx.flush(sock.as_raw_fd());
        }
        let mut got = 0;
        while got < n {
            let len = match sock.recv(&mut rx) {
                Ok(l) => l,
                // glommio signals its threads; a blocking recv here may see EINTR.
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            let Ok(reply) = Packet::parse(&rx[..len]) else {
                continue;
            };
            let i = reply.identifier() as usize;
            if i < n && verify_response(&reply, &auths[i], secret).is_ok() {
                let want = if acct {
                    Code::AccountingResponse
                } else {
                    Code::AccessAccept
                };
                if reply.code() == want {
                    ok += 1;
                }
            }
            got += 1;
        }
        sent += n;
    }
    ok
}

#[test]
fn answering_requests_allocates_nothing_per_packet() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[server]\nshards = 1\nlisten_auth = [\"127.0.0.1:0\"]\nlisten_acct = [\"127.0.0.1:0\"]\n\
         [accounting]\ndirectory = {:?}\n\
         [[clients]]\nname = \"lo\"\naddresses = [\"127.0.0.1\"]\nsecret = \"testing123\"\n\
         [[users]]\nname = \"alice\"\npassword = \"alice-pw\"\nreply = {{ Session-Timeout = 3600, Class = \"staff\" }}\n",
        dir.path().display().to_string()
    );
    let config = Config::from_str(&text, Path::new("alloc.toml"), None).unwrap();
    let server = radshard::dataplane::start(&config).unwrap();
    let secret = Secret::new("testing123").unwrap();
    let mut seq = 0u32;

    let mut results = Vec::new();
    for (name, acct, addr) in [
        ("PAP", Kind::Pap, server.auth_addrs[0]),
        ("MS-CHAPv2", Kind::MsChapV2, server.auth_addrs[0]),
        ("accounting", Kind::Accounting, server.acct_addrs[0]),
    ] {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.connect(addr).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        // Warm up: caches, buffers, files and io_uring structures reach their steady size.
        assert_eq!(
            drive(&sock, &secret, acct, 2_000, &mut seq),
            2_000,
            "{name} warm-up answered"
        );
        // Three measured rounds; the least is kept. Other threads of this process (glommio's
        // blocking pool, the kernel's timing) can only add allocations to a round, while an
        // allocation per packet would put every round at ≥ 1.0 per request.
        let total = 20_000;
        let mut best: Option<(f64, f64)> = None;
        for round in 1..=3 {
            let started = Instant::now();
            let before = ALLOCS.load(Relaxed);
            let batches_before =
                server.metrics[0].batches.get() + server.metrics[0].accounting_fsyncs.get();
            let ok = drive(&sock, &secret, acct, total, &mut seq);
            let allocs = ALLOCS.load(Relaxed) - before;
            let batches = server.metrics[0].batches.get()
                + server.metrics[0].accounting_fsyncs.get()
                - batches_before;
            let elapsed = started.elapsed();
            assert_eq!(ok, total, "{name}: every request answered and verified");
            let per_request = allocs as f64 / total as f64;
            let per_batch = allocs as f64 / batches.max(1) as f64;
            println!(
                "{name} round {round}: {allocs} allocations for {total} requests ({per_request:.4}/request, {per_batch:.2}/batch over {batches} receive batches and commits) in {elapsed:?}"
            );
            if best.is_none_or(|(p, _)| per_request < p) {
                best = Some((per_request, per_batch));
            }
        }
        let (per_request, per_batch) = best.unwrap_or_default();
        results.push((name, per_request, per_batch));
    }
    server.stop();
    // Per-packet allocation would show as ≥ 1.0 per request. What remains is per wake-up or
    // per group commit (io_uring sources, the commit's buffer): measured 0.05–0.36 per request
    // and 3–22 per batch for PAP (MS-CHAPv2: 0.23 and 14), 0.16–0.38 per request and 7–17 per
    // batch for accounting
    // (release and debug builds, with other work on the machine).
    // The per-batch figure is printed above; it varies with how often the shard parks.
    for (name, per_request, _per_batch) in results {
        assert!(
            per_request < 0.5,
            "{name}: {per_request} allocations per request"
        );
    }
}
