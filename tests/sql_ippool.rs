//! `[sql] ip_pool` against a real PostgreSQL 15 (started by the test, FreeRADIUS 3.2's
//! schema.sql and its ippool schema.sql loaded unchanged): two radshard nodes on one
//! database each send 5,000 concurrent Access-Requests (64 in flight, each its own
//! Calling-Station-Id) drawing on one pool of 4,000 addresses → every address leased once,
//! each Accept's Framed-IP-Address the one `radippool` holds for its key, the rest rejected;
//! then stickiness, Interim-Update extending, Stop and Accounting-On releasing, the
//! exhausted pool with `on_exhausted = "accept"`, and IPv6 prefixes from an `inet` column.

mod common;

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use common::postgres::Postgres;
use common::*;
use radshard::proto::{attr, verify_response, Code, Packet};

const IPPOOL_SCHEMA: &str = "/etc/freeradius/3.0/mods-config/sql/ippool/postgresql/schema.sql";

fn node_body(pg_port: u16, pool: &str, on_exhausted: &str) -> String {
    format!(
        r#"{STANDARD_BODY}
[backend]
deadline = "5s"

[sql]
server = "127.0.0.1"
port = {pg_port}
database = "radius"
login = "radius"
password = "radpass"
users = false
ip_pool = {{ name = "{pool}", lease = "1h", on_exhausted = "{on_exhausted}" }}
"#
    )
}

/// The database with both schemas and `n` IPv4 addresses 10.20.x.y in pool `name`, all
/// expired long ago (free).
fn pool_db(name: &str, n: u32) -> Postgres {
    let pg = Postgres::start();
    pg.load(IPPOOL_SCHEMA);
    pg.sql(&format!(
        "INSERT INTO radippool (pool_name, framedipaddress, expiry_time) \
         SELECT '{name}', ('10.20.0.0'::inet + g), '2000-01-01' FROM generate_series(1, {n}) g"
    ));
    pg
}

/// An answer: its code and Framed-IP-Address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Answer {
    code: Code,
    framed: Option<Ipv4Addr>,
}

fn framed_of(reply: &[u8]) -> Option<Ipv4Addr> {
    let v = reply_attr(reply, attr::FRAMED_IP_ADDRESS)?;
    Some(Ipv4Addr::from(<[u8; 4]>::try_from(v.as_slice()).ok()?))
}

/// A request in flight: its index, bytes, when last sent, sends.
type Sent = (usize, Vec<u8>, Instant, u32);

/// Sends alice's Access-Requests with Calling-Station-Ids `{prefix}-0` … `{prefix}-{n-1}`
/// to `to`, at most [`FLOOD_WINDOW`] in flight (retransmitted after 3 s, 5 times at most),
/// within `limit`. Every request's answer (`None`: none).
fn burst(to: SocketAddr, prefix: &str, n: usize, limit: Duration) -> Vec<Option<Answer>> {
    let c = RadClient::new();
    let s = secret(SECRET);
    let mut answers = vec![None; n];
    // Per identifier.
    let mut slots: Vec<Option<Sent>> = vec![None; 256];
    let (mut next, mut in_flight, mut done) = (0usize, 0usize, 0usize);
    let end = Instant::now() + limit;
    let mut buf = vec![0u8; 4096];
    c.sock
        .set_read_timeout(Some(Duration::from_millis(20)))
        .expect("timeout");
    while done < n && Instant::now() < end {
        while in_flight < FLOOD_WINDOW && next < n {
            let id = (0..256)
                .find(|i| slots[*i].is_none())
                .expect("a free identifier");
            let station = format!("{prefix}-{next}");
            let req = access_request_with(
                &s,
                id as u8,
                &random_authenticator(),
                "alice",
                "alice-pw",
                true,
                &[(attr::CALLING_STATION_ID, station.as_bytes())],
            );
            c.send(&req, to);
            slots[id] = Some((next, req, Instant::now(), 1));
            next += 1;
            in_flight += 1;
        }
        match c.sock.recv_from(&mut buf) {
            Ok((len, _)) => {
                let reply = &buf[..len];
                let Ok(p) = Packet::parse(reply) else {
                    continue;
                };
                let id = usize::from(p.identifier());
                let Some((i, req, ..)) = &slots[id] else {
                    continue;
                };
                if verify_response(&p, &authenticator_of(req), &s).is_err() {
                    continue;
                }
                answers[*i] = Some(Answer {
                    code: p.code(),
                    framed: framed_of(reply),
                });
                slots[id] = None;
                in_flight -= 1;
                done += 1;
            }
            Err(_) => {
                // Retransmit the ones unanswered for 3 s; give up on one after 5 sends.
                for slot in slots.iter_mut() {
                    if let Some((_, req, at, sends)) = slot {
                        if at.elapsed() >= Duration::from_secs(3) {
                            if *sends >= 5 {
                                *slot = None;
                                in_flight -= 1;
                                done += 1;
                            } else {
                                c.send(req, to);
                                *at = Instant::now();
                                *sends += 1;
                            }
                        }
                    }
                }
            }
        }
    }
    answers
}

/// One request for `station`, answered.
fn ask(to: SocketAddr, station: &str) -> Answer {
    let c = RadClient::new();
    let s = secret(SECRET);
    let req = access_request_with(
        &s,
        7,
        &random_authenticator(),
        "alice",
        "alice-pw",
        true,
        &[(attr::CALLING_STATION_ID, station.as_bytes())],
    );
    let reply = c.exchange(&req, to).expect("an answer");
    Answer {
        code: check_reply(&reply, &req, &s),
        framed: framed_of(&reply),
    }
}

/// An Accounting-Request (`status`) for `framed`, acknowledged.
fn account(to: SocketAddr, status: u32, framed: Option<Ipv4Addr>) {
    let c = RadClient::new();
    let s = secret(SECRET);
    let octets = framed.map(|a| a.octets());
    let status = status.to_be_bytes();
    let mut attrs: Vec<(u8, &[u8])> = vec![(attr::ACCT_STATUS_TYPE, &status)];
    attrs.push((attr::USER_NAME, b"alice"));
    attrs.push((attr::ACCT_SESSION_ID, b"s-1"));
    attrs.push((attr::NAS_IDENTIFIER, b"itest-nas"));
    if let Some(o) = &octets {
        attrs.push((attr::FRAMED_IP_ADDRESS, o));
    }
    let req = accounting_request(&s, 9, &attrs);
    let reply = c.exchange(&req, to).expect("an Accounting-Response");
    assert_eq!(check_reply(&reply, &req, &s), Code::AccountingResponse);
}

/// `radippool`'s rows that are leased now: pool key → address.
fn leased_rows(pg: &Postgres) -> HashMap<String, Ipv4Addr> {
    pg.sql("SELECT pool_key, host(framedipaddress) FROM radippool WHERE expiry_time > now()::timestamp(0)")
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (k, a) = l.split_once('|').expect("two columns");
            (k.to_string(), a.parse().expect("an address"))
        })
        .collect()
}

#[test]
fn two_nodes_never_lease_one_address_twice() {
    const ADDRESSES: usize = 4_000;
    const PER_NODE: usize = 5_000;
    let pg = pool_db("main", ADDRESSES as u32);
    let a = TestServer::start(1, &node_body(pg.port, "main", "reject"));
    let b = TestServer::start(1, &node_body(pg.port, "main", "reject"));
    let (to_a, to_b) = (a.auth, b.auth);
    let limit = Duration::from_secs(240);
    let ta = std::thread::spawn(move || burst(to_a, "A", PER_NODE, limit));
    let tb = std::thread::spawn(move || burst(to_b, "B", PER_NODE, limit));
    let (ra, rb) = (ta.join().expect("A"), tb.join().expect("B"));

    let mut given: HashMap<String, Ipv4Addr> = HashMap::new();
    let (mut accepts, mut rejects) = (0, 0);
    for (prefix, answers) in [("A", &ra), ("B", &rb)] {
        for (i, a) in answers.iter().enumerate() {
            let a = a.unwrap_or_else(|| panic!("{prefix}-{i} was not answered"));
            match a.code {
                Code::AccessAccept => {
                    accepts += 1;
                    let framed = a.framed.expect("an Accept carries its address");
                    given.insert(format!("{prefix}-{i}"), framed);
                }
                Code::AccessReject => {
                    assert_eq!(a.framed, None);
                    rejects += 1;
                }
                other => panic!("{prefix}-{i}: {other:?}"),
            }
        }
    }
    let distinct: HashSet<_> = given.values().collect();
    assert_eq!(distinct.len(), given.len(), "an address was leased twice");
    assert_eq!(
        accepts, ADDRESSES,
        "every address leased (exhaustion exercised)"
    );
    assert_eq!(rejects, 2 * PER_NODE - ADDRESSES);
    // Each Accept's address is the one the database holds for its key.
    assert_eq!(leased_rows(&pg), given);
    // Both nodes leased some.
    assert!(given.keys().any(|k| k.starts_with("A-")) && given.keys().any(|k| k.starts_with("B-")));
}

#[test]
fn sticky_extended_released() {
    let pg = pool_db("small", 3);
    let node = TestServer::start(1, &node_body(pg.port, "small", "accept"));
    let to = node.auth;

    // Sticky: the same station gets its address again, another station another one.
    let x = ask(to, "st-a").framed.expect("an address");
    assert_eq!(
        ask(to, "st-a").framed,
        Some(x),
        "sticky by Calling-Station-Id"
    );
    let y = ask(to, "st-b").framed.expect("an address");
    assert_ne!(x, y);
    let row = |a: Ipv4Addr| {
        pg.sql(&format!(
            "SELECT pool_key, nasipaddress, callingstationid, username, \
             (expiry_time > now()::timestamp(0) + interval '50 minutes') \
             FROM radippool WHERE framedipaddress = '{a}'"
        ))
    };
    assert_eq!(row(x), "st-a|127.0.0.1|st-a|alice|t");

    // Interim-Update extends the lease (shortened here first).
    pg.sql(&format!(
        "UPDATE radippool SET expiry_time = now()::timestamp(0) + interval '1 minute' WHERE framedipaddress = '{x}'"
    ));
    assert!(row(x).ends_with("|f"));
    account(node.acct, 3, Some(x));
    assert!(
        wait_until(Duration::from_secs(10), || row(x).ends_with("|t")),
        "Interim-Update extended the lease: {}",
        row(x)
    );

    // Stop releases it; the next new station gets the free address expired longest ago,
    // then the released one.
    account(node.acct, 2, Some(x));
    let released = || {
        pg.sql(&format!(
            "SELECT expiry_time <= now()::timestamp(0) FROM radippool WHERE framedipaddress = '{x}'"
        )) == "t"
    };
    assert!(
        wait_until(Duration::from_secs(10), released),
        "Stop released"
    );
    let z = ask(to, "st-c").framed.expect("the third address");
    assert!(z != x && z != y);
    assert_eq!(
        ask(to, "st-d").framed,
        Some(x),
        "the released address to another key"
    );

    // The pool is exhausted: st-a's address went to st-d; on_exhausted = "accept".
    let e = ask(to, "st-a");
    assert_eq!((e.code, e.framed), (Code::AccessAccept, None));

    // Accounting-On releases every lease of the NAS.
    account(node.acct, 7, None);
    assert!(
        wait_until(Duration::from_secs(10), || leased_rows(&pg).is_empty()),
        "Accounting-On released the NAS's leases: {:?}",
        leased_rows(&pg)
    );
    // And st-a is given an address again.
    assert!(ask(to, "st-a").framed.is_some());
}

#[test]
fn ipv6_prefixes_from_an_inet_column() {
    let pg = Postgres::start();
    pg.load(IPPOOL_SCHEMA);
    pg.sql(
        "INSERT INTO radippool (pool_name, framedipaddress, expiry_time) VALUES \
         ('v6', '2001:db8:1::/64', '2000-01-01'), ('v6', '2001:db8:2::/64', '2000-01-02')",
    );
    let node = TestServer::start(1, &node_body(pg.port, "v6", "reject"));
    let c = RadClient::new();
    let s = secret(SECRET);
    let req = access_request_with(
        &s,
        1,
        &random_authenticator(),
        "alice",
        "alice-pw",
        true,
        &[(attr::CALLING_STATION_ID, b"v6-station")],
    );
    let reply = c
        .exchange(&req, node.auth)
        .unwrap_or_else(|| panic!("no answer; pg log:\n{}", pg.log()));
    assert_eq!(check_reply(&reply, &req, &s), Code::AccessAccept);
    assert_eq!(reply_attr(&reply, attr::FRAMED_IP_ADDRESS), None);
    // Framed-IPv6-Prefix: reserved, length 64, the prefix's 8 octets.
    assert_eq!(
        reply_attr(&reply, 97),
        Some(vec![0, 64, 0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0])
    );
    assert_eq!(
        pg.sql("SELECT pool_key FROM radippool WHERE framedipaddress = '2001:db8:1::/64'"),
        "v6-station"
    );
}

#[test]
fn pool_name_from_the_users_rows_or_the_policy() {
    let pg = pool_db("small", 2);
    pg.sql(
        "INSERT INTO radippool (pool_name, framedipaddress, expiry_time) \
         VALUES ('carols', '10.30.0.1', '2000-01-01')",
    );
    pg.sql(
        "INSERT INTO radcheck (username, attribute, op, value) VALUES \
         ('carol', 'Cleartext-Password', ':=', 'carol-pw'), ('carol', 'Pool-Name', ':=', 'carols')",
    );
    pg.sql(
        "INSERT INTO radippool (pool_name, framedipaddress, expiry_time) \
         VALUES ('staff', '10.40.0.1', '2000-01-01')",
    );
    // The policy names a pool; a user's Pool-Name wins over it.
    let body = node_body(pg.port, "small", "reject").replace("users = false\n", "")
        + "\n[[policies]]\nname = \"staff\"\nclients = [\"localhost\"]\nip_pool = \"staff\"\n";
    let node = TestServer::start(1, &body);
    let c = RadClient::new();
    let s = secret(SECRET);
    let req = access_request_with(
        &s,
        3,
        &random_authenticator(),
        "carol",
        "carol-pw",
        true,
        &[(attr::CALLING_STATION_ID, b"carol-phone")],
    );
    let reply = c.exchange(&req, node.auth).expect("an answer");
    assert_eq!(check_reply(&reply, &req, &s), Code::AccessAccept);
    assert_eq!(framed_of(&reply), Some(Ipv4Addr::new(10, 30, 0, 1)));
    // alice (no Pool-Name) draws from the policy's pool.
    let a = ask(node.auth, "alice-phone").framed;
    assert_eq!(a, Some(Ipv4Addr::new(10, 40, 0, 1)));
}

#[test]
fn a_bad_pool_is_refused_with_its_line() {
    let body = node_body(5432, "main", "maybe");
    let dir = tempfile::tempdir().expect("tempdir");
    let text = config_text(1, "", dir.path(), &body);
    let line = text
        .lines()
        .position(|l| l.starts_with("ip_pool"))
        .expect("the line")
        + 1;
    let e = radshard::config::Config::from_str(&text, std::path::Path::new("test.toml"), None)
        .expect_err("refused")
        .to_string();
    assert!(
        e.starts_with(&format!("test.toml:{line}:")) && e.contains("on_exhausted"),
        "{e}"
    );
}
