//! Accounting shipped to PostgreSQL 15 (FreeRADIUS's schema.sql, unchanged) without loss:
//! the durable log stays the point of acknowledgement, and after catch-up every
//! acknowledged record's session is in radacct exactly once (one row per acctuniqueid) with
//! its final state — through a database stopped and restarted mid-flood, and through a
//! kill -9 of radshard mid-shipping. Also: Accounting-On closes the NAS's open rows, and the
//! lag gauges rise while the database is down and fall back to 0.

mod common;

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use common::postgres::Postgres;
use common::*;
use radshard::proto::{attr, verify_response, Code, Packet, PacketBuilder};

const ACCT_SESSION_TIME: u8 = 46;
const ACCT_INPUT_OCTETS: u8 = 42;
const ACCT_OUTPUT_OCTETS: u8 = 43;
const ACCT_INPUT_GIGAWORDS: u8 = 52;
const ACCT_TERMINATE_CAUSE: u8 = 49;

fn sql_section(pg: &Postgres, batch: usize) -> String {
    format!(
        "[sql]\nserver = \"127.0.0.1\"\nport = {}\ndatabase = \"radius\"\nlogin = \"radius\"\n\
         password = \"radpass\"\nusers = false\naccounting = true\nship_batch = {batch}\n\
         ship_interval = \"100ms\"\nconnect_timeout = \"1s\"\n",
        pg.port
    )
}

/// One accounting record of session `n`: 1 Start, 3 Interim-Update, 2 Stop. Interims carry
/// octets 10·n, Stops 100·n (input with one gigaword) and session time 100 + n.
fn record(status: u32, prefix: &str, n: u32, nas: [u8; 4]) -> Vec<(u8, Vec<u8>)> {
    let mut a = vec![
        (attr::ACCT_STATUS_TYPE, status.to_be_bytes().to_vec()),
        (attr::USER_NAME, format!("user{}", n % 50).into_bytes()),
        (attr::ACCT_SESSION_ID, format!("{prefix}-{n}").into_bytes()),
        (attr::NAS_IP_ADDRESS, nas.to_vec()),
        (attr::NAS_PORT, n.to_be_bytes().to_vec()),
    ];
    match status {
        3 => {
            a.push((ACCT_SESSION_TIME, 50u32.to_be_bytes().to_vec()));
            a.push((ACCT_INPUT_OCTETS, (10 * n).to_be_bytes().to_vec()));
            a.push((ACCT_OUTPUT_OCTETS, (10 * n).to_be_bytes().to_vec()));
        }
        2 => {
            a.push((ACCT_SESSION_TIME, (100 + n).to_be_bytes().to_vec()));
            a.push((ACCT_INPUT_OCTETS, (100 * n).to_be_bytes().to_vec()));
            a.push((ACCT_INPUT_GIGAWORDS, 1u32.to_be_bytes().to_vec()));
            a.push((ACCT_OUTPUT_OCTETS, (100 * n).to_be_bytes().to_vec()));
            a.push((ACCT_TERMINATE_CAUSE, 1u32.to_be_bytes().to_vec()));
        }
        _ => {}
    }
    a
}

/// By identifier: (record index, packet, last sent, tries).
type Outstanding = (usize, Vec<u8>, Instant, u32);

/// Sends every record (up to 32 outstanding, each retransmitted after 1 s, 5 tries) and
/// returns which were acknowledged.
fn send_all(to: SocketAddr, records: &[Vec<(u8, Vec<u8>)>]) -> Vec<bool> {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.set_read_timeout(Some(Duration::from_millis(5)))
        .expect("timeout");
    let sec = secret(SECRET);
    let mut acked = vec![false; records.len()];
    let mut slots: Vec<Option<Outstanding>> = vec![None; 256];
    let (mut next, mut outstanding) = (0usize, 0usize);
    let mut rbuf = [0u8; 4096];
    while next < records.len() || outstanding > 0 {
        while outstanding < 32 && next < records.len() {
            let Some(id) = slots.iter().position(Option::is_none) else {
                break;
            };
            let mut buf = [0u8; 4096];
            let mut b =
                PacketBuilder::request(&mut buf, Code::AccountingRequest, id as u8, &[0; 16])
                    .expect("fits");
            for (t, v) in &records[next] {
                b.attr(*t, v).expect("fits");
            }
            let pkt = b.finish(&sec).expect("signs").to_vec();
            sock.send_to(&pkt, to).expect("send");
            slots[id] = Some((next, pkt, Instant::now(), 1));
            next += 1;
            outstanding += 1;
        }
        if let Ok((n, _)) = sock.recv_from(&mut rbuf) {
            if let Ok(p) = Packet::parse(&rbuf[..n]) {
                let id = p.identifier() as usize;
                if let Some((i, pkt, _, _)) = &slots[id] {
                    if p.code() == Code::AccountingResponse
                        && verify_response(&p, &authenticator_of(pkt), &sec).is_ok()
                    {
                        acked[*i] = true;
                        slots[id] = None;
                        outstanding -= 1;
                    }
                }
            }
        }
        let now = Instant::now();
        for s in slots.iter_mut() {
            if let Some((_, pkt, at, tries)) = s {
                if now - *at > Duration::from_secs(1) {
                    if *tries >= 5 {
                        *s = None;
                        outstanding -= 1;
                    } else {
                        let _ = sock.send_to(pkt, to);
                        *at = now;
                        *tries += 1;
                    }
                }
            }
        }
    }
    acked
}

/// radacct by acctsessionid: (rows, stopped, input octets, output octets, session time, cause).
type Row = (u64, bool, i64, i64, Option<i64>, String);

fn radacct(pg: &Postgres, prefix: &str) -> HashMap<String, Row> {
    let out = pg.sql(&format!(
        "SELECT acctsessionid, count(*) OVER (PARTITION BY acctsessionid), acctstoptime IS NOT NULL, \
         acctinputoctets, acctoutputoctets, acctsessiontime, coalesce(acctterminatecause, '') \
         FROM radacct WHERE acctsessionid LIKE '{prefix}-%'"
    ));
    let mut m = HashMap::new();
    for line in out.lines().filter(|l| !l.is_empty()) {
        let f: Vec<&str> = line.split('|').collect();
        m.insert(
            f[0].to_string(),
            (
                f[1].parse().unwrap(),
                f[2] == "t",
                f[3].parse().unwrap(),
                f[4].parse().unwrap(),
                f[5].parse().ok(),
                f[6].to_string(),
            ),
        );
    }
    m
}

/// Every acknowledged record's session is in radacct once, with the last acknowledged
/// record's state.
fn check_exactly_once(pg: &Postgres, prefix: &str, n: u32, acked: &[Vec<bool>; 3]) {
    let rows = radacct(pg, prefix);
    let total: u64 = pg
        .sql(&format!(
            "SELECT count(*) FROM radacct WHERE acctsessionid LIKE '{prefix}-%'"
        ))
        .parse()
        .unwrap();
    assert_eq!(total as usize, rows.len(), "one row per session");
    for i in 0..n {
        let sid = format!("{prefix}-{i}");
        let [start, interim, stop] = [&acked[0], &acked[1], &acked[2]].map(|a| a[i as usize]);
        if !(start || interim || stop) {
            continue;
        }
        let row = rows
            .get(&sid)
            .unwrap_or_else(|| panic!("{sid}: acknowledged, not in radacct"));
        assert_eq!(row.0, 1, "{sid}: exactly once");
        let i = i64::from(i);
        if stop {
            assert!(row.1, "{sid}: stopped");
            assert_eq!(
                (row.2, row.3, row.4, row.5.as_str()),
                ((1 << 32) + 100 * i, 100 * i, Some(100 + i), "User-Request"),
                "{sid}: the Stop's state"
            );
        } else if interim {
            assert!(!row.1, "{sid}: open");
            assert_eq!(
                (row.2, row.3),
                (10 * i, 10 * i),
                "{sid}: the Interim's octets"
            );
        }
    }
}

fn wait_caught_up(pg: &Postgres, prefix: &str, n: usize, limit: Duration) {
    let ok = wait_until(limit, || {
        let c: usize = pg
            .sql(&format!(
                "SELECT count(*) FROM radacct WHERE acctsessionid LIKE '{prefix}-%' AND acctstoptime IS NOT NULL"
            ))
            .parse()
            .unwrap_or(0);
        c >= n
    });
    assert!(ok, "radacct did not catch up within {limit:?}");
}

fn phase(acct: SocketAddr, status: u32, prefix: &str, n: u32) -> Vec<bool> {
    let recs: Vec<_> = (0..n)
        .map(|i| record(status, prefix, i, [10, 0, 0, 1]))
        .collect();
    send_all(acct, &recs)
}

#[test]
fn flood_through_a_database_outage_lands_exactly_once_and_lag_returns_to_zero() {
    let pg = Postgres::start();
    let body = format!("{}\n{}", STANDARD_BODY, sql_section(&pg, 500));
    let server = TestServer::start(2, &body);
    const N: u32 = 1000;
    let starts = phase(server.acct, 1, "flood", N);
    // PostgreSQL stops for the middle part: acknowledgements go on, the lag grows.
    pg.stop();
    let began = Instant::now();
    let interims = phase(server.acct, 3, "flood", N);
    let ship = radshard::metrics::ship().expect("the shipper's metrics");
    use std::sync::atomic::Ordering::Relaxed;
    assert!(
        wait_until(Duration::from_secs(10), || ship.lag_bytes.load(Relaxed) > 0
            && ship.lag_seconds.load(Relaxed) >= 1),
        "lag gauges rise while the database is down (bytes {}, seconds {})",
        ship.lag_bytes.load(Relaxed),
        ship.lag_seconds.load(Relaxed)
    );
    assert!(ship.errors_connect.load(Relaxed) + ship.errors_write.load(Relaxed) > 0);
    let acked_while_down = interims.iter().filter(|a| **a).count();
    assert_eq!(
        acked_while_down, N as usize,
        "acknowledgements are unaffected by the outage"
    );
    eprintln!(
        "interims acknowledged with the database down in {:?}",
        began.elapsed()
    );
    pg.restart();
    let stops = phase(server.acct, 2, "flood", N);
    wait_caught_up(&pg, "flood", N as usize, Duration::from_secs(60));
    check_exactly_once(&pg, "flood", N, &[starts, interims, stops]);
    assert!(
        wait_until(Duration::from_secs(10), || ship.lag_bytes.load(Relaxed)
            == 0
            && ship.lag_seconds.load(Relaxed) == 0),
        "lag back to 0"
    );
    assert_eq!(ship.records.load(Relaxed), 3 * u64::from(N));
}

fn child_config(dir: &Path, pg: &Postgres, batch: usize) -> std::path::PathBuf {
    let path = dir.join("radshard.toml");
    let text = format!(
        "[server]\nshards = 2\n\n{}\n{}",
        STANDARD_BODY,
        sql_section(pg, batch)
    );
    std::fs::write(&path, text).expect("write config");
    path
}

#[test]
fn kill_9_mid_shipping_then_restart_ships_every_acknowledged_record_once() {
    let pg = Postgres::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let acct_dir = dir.path().join("acct");
    // Small batches: many transactions, so the kill lands between and inside them.
    let config = child_config(dir.path(), &pg, 20);
    let mut server = ChildServer::spawn(&config, &acct_dir, &[]);
    const N: u32 = 1000;
    let starts = phase(server.acct, 1, "kill", N);
    let interims = phase(server.acct, 3, "kill", N);
    let shipped = || -> u64 {
        pg.sql("SELECT count(*) FROM radacct WHERE acctsessionid LIKE 'kill-%'")
            .parse()
            .unwrap_or(0)
    };
    assert!(
        wait_until(Duration::from_secs(30), || shipped() > 0),
        "shipping started"
    );
    server.signal(libc::SIGKILL);
    server.wait_exit(Duration::from_secs(5)).expect("killed");
    let at_kill = shipped();
    let checkpoint = pg.sql("SELECT file || ':' || \"offset\" FROM radshard_ship_checkpoint");
    eprintln!("killed with {at_kill} sessions in radacct, checkpoint {checkpoint}");
    let server = ChildServer::spawn(&config, &acct_dir, &[]);
    let stops = phase(server.acct, 2, "kill", N);
    wait_caught_up(&pg, "kill", N as usize, Duration::from_secs(90));
    check_exactly_once(&pg, "kill", N, &[starts, interims, stops]);
    drop(server);
}

#[test]
fn accounting_on_closes_the_nas_rows() {
    let pg = Postgres::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let acct_dir = dir.path().join("acct");
    let config = child_config(dir.path(), &pg, 100);
    let server = ChildServer::spawn(&config, &acct_dir, &[]);
    let mut recs: Vec<_> = (0..3).map(|i| record(1, "on", i, [10, 9, 9, 9])).collect();
    recs.push(record(1, "on", 3, [10, 9, 9, 8]));
    assert!(send_all(server.acct, &recs).iter().all(|a| *a));
    let open = |nas: &str| -> usize {
        pg.sql(&format!(
            "SELECT count(*) FROM radacct WHERE nasipaddress = '{nas}' AND acctstoptime IS NULL"
        ))
        .parse()
        .unwrap_or(0)
    };
    assert!(wait_until(Duration::from_secs(20), || open("10.9.9.9") == 3));
    let on = vec![vec![
        (attr::ACCT_STATUS_TYPE, 7u32.to_be_bytes().to_vec()),
        (attr::NAS_IP_ADDRESS, vec![10, 9, 9, 9]),
        (attr::ACCT_SESSION_ID, b"0".to_vec()),
    ]];
    assert!(send_all(server.acct, &on)[0]);
    assert!(
        wait_until(Duration::from_secs(20), || open("10.9.9.9") == 0),
        "Accounting-On closes the NAS's rows"
    );
    assert_eq!(
        pg.sql("SELECT DISTINCT acctterminatecause FROM radacct WHERE nasipaddress = '10.9.9.9'"),
        "NAS-Reboot"
    );
    assert_eq!(open("10.9.9.8"), 1, "another NAS's session stays open");
}
