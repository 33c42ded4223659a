//! The session table at scale: memory per open session and the rebuild from the accounting
//! log at 1 M sessions (measured once, printed), then criterion's timing of one accounting
//! record through the table (Start, Interim-Update, Stop; the packet read included) against
//! a table holding 1 M sessions.
//!
//!   cargo bench --bench sessions

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::sync::atomic::{AtomicI64, Ordering::Relaxed};
use std::time::Instant;

use criterion::{black_box, criterion_group, Criterion};
use radshard::accounting::record::{write_record, Origin, Scratch};
use radshard::dict::Dictionary;
use radshard::proto::attr::MAX_VALUE_LEN;
use radshard::proto::{attr, verify_request, Code, Packet, PacketBuilder, Secret};
use radshard::session::{SessionStore, SessionsConfig, Update};

/// Live heap bytes, to weigh the table.
struct Counting;
static LIVE: AtomicI64 = AtomicI64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as i64, Relaxed);
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as i64, Relaxed);
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        LIVE.fetch_add(n as i64 - l.size() as i64, Relaxed);
        System.realloc(p, l, n)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const SESSIONS: u64 = 1_000_000;

/// A NAS's record for session `n` (as `radshard bench --mode acct` sends them, plus a
/// Calling-Station-Id and NAS-Identifier).
fn record(secret: &Secret, n: u64, status: u32) -> Vec<u8> {
    let mut buf = [0u8; 512];
    let mut b =
        PacketBuilder::request(&mut buf, Code::AccountingRequest, 1, &[0; 16]).expect("fits");
    b.attr(attr::ACCT_STATUS_TYPE, &status.to_be_bytes())
        .expect("fits");
    b.attr(attr::ACCT_SESSION_ID, format!("{n:016x}").as_bytes())
        .expect("fits");
    b.attr(attr::USER_NAME, format!("user{:05}", n % 50_000).as_bytes())
        .expect("fits");
    b.attr(attr::NAS_IP_ADDRESS, &[10, 0, 0, 1]).expect("fits");
    b.attr(attr::NAS_IDENTIFIER, b"ap-hall-3").expect("fits");
    b.attr(attr::NAS_PORT, &((n % 65536) as u32).to_be_bytes())
        .expect("fits");
    b.attr(
        attr::FRAMED_IP_ADDRESS,
        &((n as u32) | 0x0a00_0000).to_be_bytes(),
    )
    .expect("fits");
    b.attr(
        attr::CALLING_STATION_ID,
        format!(
            "02-00-{:02X}-{:02X}-{:02X}-{:02X}",
            n >> 24 & 255,
            n >> 16 & 255,
            n >> 8 & 255,
            n & 255
        )
        .as_bytes(),
    )
    .expect("fits");
    if status != 1 {
        b.attr(46, &60u32.to_be_bytes()).expect("fits");
        b.attr(42, &((n as u32) << 10).to_be_bytes()).expect("fits");
    }
    b.finish(secret).expect("signs").to_vec()
}

fn apply(store: &SessionStore, secret: &Secret, bytes: &[u8], time: i64) {
    let req = verify_request(Packet::parse(bytes).expect("parses"), secret, false).expect("ok");
    let mut identity = [0u8; MAX_VALUE_LEN];
    let u = Update::from_request(
        &req,
        "nas",
        "10.0.0.1".parse().expect("ip"),
        time,
        &store.seal,
        &mut identity,
    );
    black_box(store.apply(&u));
}

/// Fills a table with 1 M sessions and reports what it weighs and how long the rebuild of
/// the same sessions from their log lines takes.
fn at_scale(secret: &Secret) -> SessionStore {
    let dir = tempfile::tempdir().expect("dir");
    let dict = Dictionary::builtin();
    let config = SessionsConfig {
        max_sessions: 2_000_000,
        ..SessionsConfig::default()
    };
    let store = SessionStore::new(config.clone());
    let now = radshard::accounting::time::now_unix().0;
    let mut lines = Vec::with_capacity(600 << 20);
    let mut scratch = Scratch::default();
    let before = LIVE.load(Relaxed);
    let mut fill = std::time::Duration::ZERO;
    for n in 0..SESSIONS {
        let bytes = record(secret, n, 1);
        let req =
            verify_request(Packet::parse(&bytes).expect("parses"), secret, false).expect("ok");
        let mut identity = [0u8; MAX_VALUE_LEN];
        let began = Instant::now();
        let u = Update::from_request(
            &req,
            "nas",
            "10.0.0.1".parse().expect("ip"),
            now,
            &store.seal,
            &mut identity,
        );
        store.apply(&u);
        fill += began.elapsed();
        // The log line is written outside the weighed table.
        let live = LIVE.load(Relaxed);
        let origin = Origin {
            client: "nas",
            nas: "10.0.0.1:4000".parse().expect("addr"),
            shard: 0,
            when: (now, 0),
            session: u.id.as_ref().map(|id| (id, u.user.as_ref())),
        };
        write_record(&mut lines, &mut scratch, &req, origin, &dict);
        LIVE.store(live, Relaxed);
    }
    let weight = LIVE.load(Relaxed) - before;
    let path = radshard::accounting::AccountingLog::path_for(
        dir.path(),
        radshard::accounting::time::date_of(now),
    );
    std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(&lines))
        .expect("write the log");
    let log_mb = lines.len() as f64 / 1e6;
    drop(lines);
    let rebuilt = SessionStore::new(config);
    let began = Instant::now();
    let report = radshard::session::rebuild::rebuild(&rebuilt, dir.path(), now).expect("rebuild");
    let took = began.elapsed();
    assert_eq!(report.open as u64, SESSIONS);
    println!(
        "sessions at scale: {SESSIONS} open sessions weigh {:.1} MB of heap, {:.0} bytes per session; \
         filled in {:.2} s ({:.0} Starts/s through the table, packet read included); \
         rebuilt from a {log_mb:.0} MB log in {:.2} s ({:.0} records/s)",
        weight as f64 / 1e6,
        weight as f64 / SESSIONS as f64,
        fill.as_secs_f64(),
        SESSIONS as f64 / fill.as_secs_f64(),
        took.as_secs_f64(),
        SESSIONS as f64 / took.as_secs_f64(),
    );
    store
}

fn bench(c: &mut Criterion) {
    let secret = Secret::new("testing123").expect("secret");
    let store = at_scale(&secret);
    let now = radshard::accounting::time::now_unix().0;
    // Sessions beyond the million already open, each started then stopped; more of them
    // than the table remembers stopped ids (65,536), so a recurring one starts afresh.
    const POOL: u64 = 100_000;
    let start: Vec<Vec<u8>> = (0..POOL)
        .map(|i| record(&secret, SESSIONS + i, 1))
        .collect();
    let stop: Vec<Vec<u8>> = (0..POOL)
        .map(|i| record(&secret, SESSIONS + i, 2))
        .collect();
    let interim: Vec<Vec<u8>> = (0..1024).map(|i| record(&secret, i, 3)).collect();
    c.bench_function("session_interim_update_at_1M", |b| {
        let mut i = 0;
        b.iter(|| {
            apply(&store, &secret, &interim[i & 1023], now);
            i += 1;
        })
    });
    c.bench_function("session_start_then_stop_at_1M", |b| {
        let mut i = 0;
        b.iter(|| {
            let k = i % POOL as usize;
            apply(&store, &secret, &start[k], now);
            apply(&store, &secret, &stop[k], now);
            i += 1;
        })
    });
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
