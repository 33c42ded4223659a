//! Benchmarks (ignored by default; run with the command in perf/RESULTS.md):
//!
//! * `ldap_pap_throughput`: PAP through radshard to a local slapd, against slapd driven
//!   directly with the same work (service-account search + user bind) at the same concurrency.
//! * `isolation_from_a_frozen_directory`: local-user PAP and accounting throughput with the
//!   directory frozen and LDAP requests flooding in, against the same without them.

mod common;
mod ldap_common;

use std::net::UdpSocket;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ldap_common::*;
use radshard::proto::{Code, PacketBuilder, Secret};

const USERS: usize = 2000;
const WINDOW: usize = 32;
const RUN: Duration = Duration::from_secs(8);

fn users_ldif() -> String {
    let mut s = String::new();
    for i in 0..USERS {
        s += &format!(
            "dn: uid=bench{i},ou=people,{SUFFIX}\nobjectClass: inetOrgPerson\nuid: bench{i}\ncn: bench{i}\nsn: b\nuserPassword: pw{i}\n\n"
        );
    }
    s
}

struct Stats {
    done: u64,
    answered: u64,
    elapsed: Duration,
    lat_us: Vec<u64>,
}

impl Stats {
    fn rate(&self) -> f64 {
        self.done as f64 / self.elapsed.as_secs_f64()
    }
    fn pct(&mut self, p: f64) -> f64 {
        self.lat_us.sort_unstable();
        let i = ((self.lat_us.len() as f64 * p) as usize).min(self.lat_us.len().saturating_sub(1));
        self.lat_us.get(i).copied().unwrap_or(0) as f64 / 1000.0
    }
    fn line(&mut self, what: &str) -> String {
        let (p50, p99) = (self.pct(0.50), self.pct(0.99));
        format!(
            "{what}: {} requests in {:.1}s = {:.0}/s, p50 {p50:.2} ms, p99 {p99:.2} ms",
            self.done,
            self.elapsed.as_secs_f64(),
            self.rate(),
        )
    }
}

/// A closed-loop RADIUS load generator: `window` requests outstanding, each answered request
/// replaced by a new one, for `run`. `make(i, id, buf)` builds request number `i`.
fn radius_load(
    port: u16,
    window: usize,
    run: Duration,
    want: u8,
    make: impl Fn(u64, u8, &mut [u8]) -> usize,
) -> Stats {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.connect(("127.0.0.1", port)).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut sent_at: Vec<Option<Instant>> = vec![None; 256];
    let mut buf = [0u8; 4096];
    let mut next: u64 = 0;
    let send = |sent_at: &mut Vec<Option<Instant>>, next: &mut u64, buf: &mut [u8]| {
        let id = (*next % 256) as u8;
        let len = make(*next, id, buf);
        sent_at[id as usize] = Some(Instant::now());
        sock.send(&buf[..len]).unwrap();
        *next += 1;
    };
    let start = Instant::now();
    for _ in 0..window {
        send(&mut sent_at, &mut next, &mut buf);
    }
    let mut st = Stats {
        done: 0,
        answered: 0,
        elapsed: Duration::ZERO,
        lat_us: Vec::new(),
    };
    let mut rbuf = [0u8; 4096];
    while start.elapsed() < run {
        match sock.recv(&mut rbuf) {
            Ok(n) if n >= 20 => {
                if let Some(t) = sent_at[rbuf[1] as usize].take() {
                    st.lat_us.push(t.elapsed().as_micros() as u64);
                    st.done += 1;
                    if rbuf[0] == want {
                        st.answered += 1;
                    }
                    send(&mut sent_at, &mut next, &mut buf);
                }
            }
            Ok(_) => {}
            Err(_) => {
                // Lost or shed: refill the window.
                for slot in sent_at.iter_mut() {
                    if slot.is_some_and(|t| t.elapsed() > Duration::from_millis(400)) {
                        *slot = None;
                    }
                }
                let outstanding = sent_at.iter().filter(|s| s.is_some()).count();
                for _ in outstanding..window {
                    send(&mut sent_at, &mut next, &mut buf);
                }
            }
        }
    }
    st.elapsed = start.elapsed();
    st
}

fn access_request(secret: &Secret, user: &str, password: &str, id: u8, buf: &mut [u8]) -> usize {
    let auth: [u8; 16] = rand::random();
    let mut b = PacketBuilder::request(buf, Code::AccessRequest, id, &auth).unwrap();
    b.message_authenticator().unwrap();
    b.attr(1, user.as_bytes()).unwrap();
    b.user_password(secret, password.as_bytes()).unwrap();
    b.finish(secret).unwrap().len()
}

fn accounting_request(secret: &Secret, i: u64, id: u8, buf: &mut [u8]) -> usize {
    let mut b = PacketBuilder::request(buf, Code::AccountingRequest, id, &[0; 16]).unwrap();
    b.attr(40, &1u32.to_be_bytes()).unwrap();
    b.attr(44, format!("s{i}").as_bytes()).unwrap();
    b.attr(1, b"bench").unwrap();
    b.finish(secret).unwrap().len()
}

/// slapd driven directly with the work radshard does per PAP request: a search on a shared
/// service-account connection and a simple bind on one of `window` user connections.
fn slapd_direct(url: &str, window: usize, run: Duration) -> Stats {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let connect = || async {
            let (conn, ldap) = ldap3::LdapConnAsync::new(url).await.unwrap();
            ldap3::drive!(conn);
            ldap
        };
        let mut service = connect().await;
        service
            .simple_bind(ADMIN, "adminpw")
            .await
            .unwrap()
            .success()
            .unwrap();
        let start = Instant::now();
        let mut tasks = Vec::new();
        for w in 0..window {
            let mut search = service.clone();
            let mut user = connect().await;
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut i = w;
                while start.elapsed() < run {
                    let t = Instant::now();
                    let u = i % USERS;
                    let (rs, _) = search
                        .search(
                            SUFFIX,
                            ldap3::Scope::Subtree,
                            &format!("(&(objectClass=inetOrgPerson)(uid=bench{u}))"),
                            vec!["memberOf", "mail"],
                        )
                        .await
                        .unwrap()
                        .success()
                        .unwrap();
                    let dn = ldap3::SearchEntry::construct(rs.into_iter().next().unwrap()).dn;
                    let r = user.simple_bind(&dn, &format!("pw{u}")).await.unwrap();
                    assert_eq!(r.rc, 0);
                    lat.push(t.elapsed().as_micros() as u64);
                    i += window;
                }
                lat
            }));
        }
        let mut lat_us = Vec::new();
        for t in tasks {
            lat_us.extend(t.await.unwrap());
        }
        Stats {
            done: lat_us.len() as u64,
            answered: lat_us.len() as u64,
            elapsed: start.elapsed(),
            lat_us,
        }
    })
}

#[test]
#[ignore = "benchmark: run explicitly, see perf/RESULTS.md"]
fn ldap_pap_throughput() {
    let slapd = Slapd::start();
    slapd.ldapadd(&users_ldif());
    let mut direct = slapd_direct(&slapd.url(), WINDOW, RUN);
    println!("{}", direct.line("slapd direct (search+bind)"));

    let shards: usize = std::env::var("BENCH_SHARDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let threads: usize = std::env::var("BENCH_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    println!("radshard: {shards} shard(s), {threads} backend thread(s)");
    let rs = Radshard::start_with_shards(
        shards,
        &format!(
            "[backend]\nthreads = {threads}\nnegative_cache_ttl = \"0s\"\n{}",
            ldap_section(&[slapd.url()], &format!("pool_size = {WINDOW}"))
        ),
    );
    let secret = Secret::new(b"testing123".to_vec()).unwrap();
    let mut st = radius_load(rs.port, WINDOW, RUN, 2, |i, id, buf| {
        let u = i as usize % USERS;
        access_request(&secret, &format!("bench{u}"), &format!("pw{u}"), id, buf)
    });
    println!("{}", st.line("radshard PAP via LDAP"));
    println!(
        "accepted {} of {}; user binds {}; joined {}; ratio radshard/slapd = {:.1}%",
        st.answered,
        st.done,
        rs.backend().ldap_user_binds.load(Relaxed),
        rs.backend().joined.load(Relaxed),
        100.0 * st.rate() / direct.rate()
    );
    assert_eq!(st.answered, st.done, "every request accepted");
}

#[test]
#[ignore = "benchmark: run explicitly, see perf/RESULTS.md"]
fn isolation_from_a_frozen_directory() {
    let slapd = Arc::new(Slapd::start());
    let rs = Radshard::start(&format!(
        "[backend]\nqueue = 64\nmax_in_flight = 16\ndeadline = \"2s\"\non_overload = \"drop\"\n{}\n\
         [[users]]\nname = \"local\"\npassword = \"local-pw\"\n",
        ldap_section(&[slapd.url()], "")
    ));
    let secret = Secret::new(b"testing123".to_vec()).unwrap();
    let acct_port = {
        // The accounting port is the auth port's config neighbour: ask the handle.
        rs.handle.as_ref().unwrap().acct_addrs[0].port()
    };
    fn local(secret: &Secret) -> impl Fn(u64, u8, &mut [u8]) -> usize + '_ {
        move |_, id, buf| access_request(secret, "local", "local-pw", id, buf)
    }
    let run = Duration::from_secs(4);
    let mut base_local = radius_load(rs.port, WINDOW, run, 2, local(&secret));
    let mut base_acct = radius_load(acct_port, WINDOW, run, 5, |i, id, buf| {
        accounting_request(&secret, i, id, buf)
    });
    println!("{}", base_local.line("baseline local PAP"));
    println!("{}", base_acct.line("baseline accounting"));

    // Freeze the directory and flood LDAP users from another thread.
    slapd.pause();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flood = std::thread::spawn({
        let (port, stop) = (rs.port, stop.clone());
        move || {
            let secret = Secret::new(b"testing123".to_vec()).unwrap();
            let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
            let mut buf = [0u8; 4096];
            let mut n = 0u64;
            while !stop.load(Relaxed) {
                let len = access_request(
                    &secret,
                    &format!("user{}", n % 32),
                    &format!("x{n}"),
                    n as u8,
                    &mut buf,
                );
                let _ = sock.send_to(&buf[..len], ("127.0.0.1", port));
                n += 1;
                if n % 64 == 0 {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            n
        }
    });
    std::thread::sleep(Duration::from_millis(200));
    let mut flood_local = radius_load(rs.port, WINDOW, run, 2, local(&secret));
    let mut flood_acct = radius_load(acct_port, WINDOW, run, 5, |i, id, buf| {
        accounting_request(&secret, i, id, buf)
    });
    stop.store(true, Relaxed);
    let sent = flood.join().unwrap();
    slapd.resume();
    println!(
        "{}",
        flood_local.line("local PAP, directory frozen + LDAP flood")
    );
    println!(
        "{}",
        flood_acct.line("accounting, directory frozen + LDAP flood")
    );
    let b = rs.backend();
    println!(
        "LDAP flood: {sent} requests sent; shed {}; deadline exceeded {}; queue capacity {}",
        b.shed.load(Relaxed),
        b.deadline_exceeded.load(Relaxed),
        b.queue_capacity.load(Relaxed)
    );
    assert!(b.shed.load(Relaxed) > 0);
    assert_eq!(flood_local.answered, flood_local.done);
}
