//! Proxying by realm, against two FreeRADIUS 3.2 home servers on loopback: what reaches the
//! home server (stripped or kept names, Message-Authenticator, our Proxy-State), what comes
//! back to the NAS (the home server's attributes, passed or filtered by the pool, overridden
//! by a policy), what never leaves (unknown realms, junk NAIs, local realms), retransmissions,
//! fail-over and return, accounting forwarded or kept per realm, and a home server that
//! answers garbage or nothing at all.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use common::freeradius_home::{field, FreeRadiusHome, Record};
use common::*;
use radshard::proto::crypto::authenticator::md5_authenticator;
use radshard::proto::{attr, Code, Packet};
use radshard::proxy::client::HomeSnapshot;

/// Both home servers know carol (answering with their own name in Reply-Message and VLAN 42)
/// and `carol@keep.test` (the name as the NAS sent it).
fn users(home: &str) -> String {
    format!(
        "carol Cleartext-Password := \"carol-pw\"\n\
         \tReply-Message = \"hello from {home}\",\n\
         \tTunnel-Type = VLAN,\n\
         \tTunnel-Medium-Type = IEEE-802,\n\
         \tTunnel-Private-Group-Id = \"42\"\n\
         carol@keep.test Cleartext-Password := \"keep-pw\"\n\
         \tReply-Message = \"kept by {home}\"\n"
    )
}

/// Liveness timers short enough for a test: zombie after 1 s of silence, dead 2 s later,
/// checked every second, back after two good checks.
const FAST: &str = r#"response_window = "1s"
zombie_period = "2s"
revive_interval = "10s"
check_interval = "1s"
check_timeout = "500ms"
num_answers_to_alive = 2"#;

fn home(name: &str, addr: SocketAddr, timers: &str) -> String {
    format!(
        "[[proxy.home_servers]]\nname = \"{name}\"\naddress = \"{addr}\"\nsecret = \"testing123\"\n{timers}\n\n"
    )
}

/// radshard in front of A and B: `remote.test` (stripped) fails over A → B for auth and
/// accounting; `keep.test` keeps the realm; `filtered.test` drops the home server's Tunnel-*;
/// `localacct.test` proxies auth but records accounting here; `example.test` and no realm are
/// answered here; anything else is refused. A visitor on a `:guest` SSID gets VLAN 999.
fn proxy_body(a: &FreeRadiusHome, b: &FreeRadiusHome, extra: &str) -> String {
    let mut s = String::from(STANDARD_BODY);
    s.push_str(
        r#"
[[policies]]
name = "visitors-on-guest"
auth_sources = ["proxy"]
called_station_id = ":guest$"
reply = { Tunnel-Type = "VLAN", Tunnel-Medium-Type = "IEEE-802", Tunnel-Private-Group-Id = "999" }

[[policies]]
name = "everyone"

[proxy]
"#,
    );
    s.push_str(&home("a", a.auth, FAST));
    s.push_str(&home("b", b.auth, FAST));
    s.push_str(&home("a-acct", a.acct, FAST));
    s.push_str(&home("b-acct", b.acct, FAST));
    s.push_str(extra);
    s.push_str(
        r#"
[[proxy.pools]]
name = "remote"
type = "fail-over"
home_servers = ["a", "b"]

[[proxy.pools]]
name = "remote-acct"
home_servers = ["a-acct", "b-acct"]

[[proxy.pools]]
name = "filtered"
home_servers = ["a", "b"]
drop_reply_attributes = ["Tunnel-Type", "Tunnel-Medium-Type", "Tunnel-Private-Group-Id"]

[[proxy.realms]]
name = "remote.test"
auth_pool = "remote"
acct_pool = "remote-acct"
user_name = "strip"

[[proxy.realms]]
name = "keep.test"
auth_pool = "remote"
user_name = "keep"

[[proxy.realms]]
name = "filtered.test"
auth_pool = "filtered"

[[proxy.realms]]
name = "localacct.test"
auth_pool = "remote"

[[proxy.realms]]
name = "example.test"
"#,
    );
    s
}

struct Setup {
    a: FreeRadiusHome,
    b: FreeRadiusHome,
    server: TestServer,
}

fn setup(extra: &str) -> Setup {
    let a = FreeRadiusHome::start(&users("A"));
    let b = FreeRadiusHome::start(&users("B"));
    let server = TestServer::start(1, &proxy_body(&a, &b, extra));
    Setup { a, b, server }
}

fn text(v: Option<Vec<u8>>) -> Option<String> {
    v.map(|v| String::from_utf8_lossy(&v).into_owned())
}

/// Tunnel-Private-Group-Id without its tag byte, if it has one.
fn vlan(reply: &[u8]) -> Option<String> {
    let v = reply_attr(reply, attr::TUNNEL_PRIVATE_GROUP_ID)?;
    let v = match v.first() {
        Some(t) if *t < 0x20 => &v[1..],
        _ => &v[..],
    };
    Some(String::from_utf8_lossy(v).into_owned())
}

/// Sends a PAP request as a NAS (with `extra` attributes) and returns the verified reply.
fn login(to: SocketAddr, user: &str, password: &str, extra: &[(u8, &[u8])]) -> (Code, Vec<u8>) {
    let sec = secret(SECRET);
    let client = RadClient::new();
    let req = access_request_with(
        &sec,
        7,
        &random_authenticator(),
        user,
        password,
        true,
        extra,
    );
    let reply = client
        .exchange(&req, to)
        .unwrap_or_else(|| panic!("no reply for {user}"));
    (check_reply(&reply, &req, &sec), reply)
}

/// Waits (bounded: 5 s; the client publishes its gauges every second) until home server
/// `name`'s published counters satisfy `cond`; returns them either way.
fn wait_home(
    server: &TestServer,
    name: &str,
    cond: impl Fn(&HomeSnapshot) -> bool,
) -> Option<HomeSnapshot> {
    let m = server.proxy().expect("[proxy] is configured");
    let get = || {
        let homes = m.homes.lock().expect("lock");
        homes.iter().find(|h| h.name == name).cloned()
    };
    wait_until(Duration::from_secs(5), || get().is_some_and(|h| cond(&h)));
    get()
}

fn names(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .filter_map(|r| field(r, "User-Name").map(str::to_string))
        .collect()
}

fn count_of(records: &[Record], name: &str) -> usize {
    names(records).iter().filter(|n| *n == name).count()
}

#[test]
fn routes_strips_filters_and_lets_policy_override_the_home_server() {
    let s = setup("");
    let auth = s.server.auth;

    // Stripped, forwarded to A (first of the fail-over pool), A's attributes passed back and
    // the NAS's Proxy-State returned exactly as sent.
    let (code, reply) = login(
        auth,
        "carol@remote.test",
        "carol-pw",
        &[(attr::PROXY_STATE, b"nas-state")],
    );
    assert_eq!(code, Code::AccessAccept);
    assert_eq!(
        text(reply_attr(&reply, attr::REPLY_MESSAGE)).as_deref(),
        Some("hello from A")
    );
    assert_eq!(vlan(&reply).as_deref(), Some("42"));
    let states: Vec<_> = Packet::parse(&reply)
        .expect("parses")
        .attributes()
        .filter(|a| a.typ == attr::PROXY_STATE)
        .map(|a| a.value.to_vec())
        .collect();
    assert_eq!(
        states,
        vec![b"nas-state".to_vec()],
        "only the NAS's Proxy-State"
    );
    let got = s.a.auth_requests();
    let carol = got
        .iter()
        .find(|r| field(r, "User-Name") == Some("carol"))
        .expect("A saw carol, stripped");
    assert!(field(carol, "Message-Authenticator").is_some());
    let proxy_states = carol.iter().filter(|(n, _)| n == "Proxy-State").count();
    assert_eq!(proxy_states, 2, "the NAS's Proxy-State and ours: {carol:?}");

    // A wrong password: the home server's reject, relayed.
    let (code, _) = login(auth, "carol@remote.test", "wrong", &[]);
    assert_eq!(code, Code::AccessReject);

    // A visitor on the guest SSID: the policy's VLAN replaces the home server's.
    let (code, reply) = login(
        auth,
        "carol@remote.test",
        "carol-pw",
        &[(attr::CALLED_STATION_ID, b"02-00-00-00-00-01:guest")],
    );
    assert_eq!(code, Code::AccessAccept);
    assert_eq!(vlan(&reply).as_deref(), Some("999"));
    assert_eq!(
        text(reply_attr(&reply, attr::REPLY_MESSAGE)).as_deref(),
        Some("hello from A")
    );

    // The filtered pool drops the home server's Tunnel-* and keeps the rest.
    let (code, reply) = login(auth, "carol@filtered.test", "carol-pw", &[]);
    assert_eq!(code, Code::AccessAccept);
    assert_eq!(reply_attr(&reply, attr::TUNNEL_TYPE), None);
    assert_eq!(reply_attr(&reply, attr::TUNNEL_PRIVATE_GROUP_ID), None);
    assert_eq!(
        text(reply_attr(&reply, attr::REPLY_MESSAGE)).as_deref(),
        Some("hello from A")
    );

    // `keep`: the home server sees the name as the NAS sent it.
    let (code, reply) = login(auth, "carol@keep.test", "keep-pw", &[]);
    assert_eq!(code, Code::AccessAccept);
    assert_eq!(
        text(reply_attr(&reply, attr::REPLY_MESSAGE)).as_deref(),
        Some("kept by A")
    );
    assert_eq!(count_of(&s.a.auth_requests(), "carol@keep.test"), 1);

    // Answered here, never forwarded: the local realm and no realm; refused here: an unknown
    // realm and NAIs that are not NAIs.
    let (code, reply) = login(auth, "alice@example.test", "alice-pw", &[]);
    assert_eq!(code, Code::AccessAccept);
    assert_eq!(
        text(reply_attr(&reply, attr::REPLY_MESSAGE)).as_deref(),
        Some("Welcome, alice")
    );
    assert_eq!(login(auth, "alice", "alice-pw", &[]).0, Code::AccessAccept);
    for junk in [
        "carol@unknown.test",
        "@gmail.com",
        "carol@nodot",
        "carol@.remote.test",
    ] {
        assert_eq!(
            login(auth, junk, "carol-pw", &[]).0,
            Code::AccessReject,
            "{junk}"
        );
    }
    let seen = names(&s.a.auth_requests());
    assert_eq!(
        seen,
        ["carol", "carol", "carol", "carol", "carol@keep.test"],
        "only the forwarded logins reached A"
    );
    assert!(
        s.b.auth_requests().is_empty(),
        "B is the fail-over: A was alive"
    );
    let a = wait_home(&s.server, "a", |a| a.answers == 5).expect("a");
    assert_eq!((a.requests, a.answers, a.outstanding), (5, 5, 0), "{a:?}");
}

#[test]
fn a_retransmission_is_answered_identically_with_one_upstream_request() {
    let s = setup("");
    let sec = secret(SECRET);
    let client = RadClient::new();
    let req = access_request(
        &sec,
        42,
        &random_authenticator(),
        "carol@remote.test",
        "carol-pw",
        true,
    );
    let first = client.exchange(&req, s.server.auth).expect("reply");
    let second = client.exchange(&req, s.server.auth).expect("cached reply");
    assert_eq!(check_reply(&first, &req, &sec), Code::AccessAccept);
    assert_eq!(first, second, "the same reply, byte for byte");
    assert_eq!(count_of(&s.a.auth_requests(), "carol"), 1);
}

#[test]
fn accounting_is_forwarded_or_recorded_here_per_realm() {
    let s = setup("");
    let sec = secret(SECRET);
    let client = RadClient::new();
    for (id, user, session) in [
        (1, "carol@remote.test", "fwd-1"),
        (2, "carol@localacct.test", "here-1"),
        (3, "alice", "here-2"),
    ] {
        let req = accounting_for(&sec, id, 1, user, session);
        let reply = client
            .exchange(&req, s.server.acct)
            .unwrap_or_else(|| panic!("no Accounting-Response for {user}"));
        assert_eq!(check_reply(&reply, &req, &sec), Code::AccountingResponse);
    }
    let forwarded = s.a.acct_requests();
    assert_eq!(forwarded.len(), 1, "{forwarded:?}");
    assert_eq!(field(&forwarded[0], "Acct-Session-Id"), Some("fwd-1"));
    assert_eq!(field(&forwarded[0], "User-Name"), Some("carol"));
    assert!(field(&forwarded[0], "Proxy-State").is_some());
    assert!(s.b.acct_requests().is_empty());
    let here: Vec<String> = s
        .server
        .accounting_records()
        .iter()
        .filter_map(|r| rec_attr(r, "Acct-Session-Id").map(str::to_string))
        .collect();
    assert_eq!(here, ["here-1", "here-2"], "recorded here, not forwarded");
}

#[test]
fn fails_over_when_the_first_home_server_dies_and_returns_when_it_is_back() {
    let mut s = setup("");
    let auth = s.server.auth;
    let answered_by = |reply: &[u8]| text(reply_attr(reply, attr::REPLY_MESSAGE));
    let (_, reply) = login(auth, "carol@remote.test", "carol-pw", &[]);
    assert_eq!(answered_by(&reply).as_deref(), Some("hello from A"));

    s.a.kill();
    // Requests sent to A now go unanswered (dropped for the NAS, which retries) until A is a
    // zombie, one response window later; then B answers. Bounded: 30 attempts of ≤ 1.5 s.
    let sec = secret(SECRET);
    let client = RadClient::new();
    let started = Instant::now();
    let mut from_b = None;
    for n in 0..30u8 {
        let req = access_request(
            &sec,
            n,
            &random_authenticator(),
            "carol@remote.test",
            "carol-pw",
            true,
        );
        client.send(&req, auth);
        if let Some(reply) = client.recv_timeout(Duration::from_millis(1500)) {
            assert_eq!(check_reply(&reply, &req, &sec), Code::AccessAccept);
            if answered_by(&reply).as_deref() == Some("hello from B") {
                from_b = Some(started.elapsed());
                break;
            }
        }
    }
    let from_b = from_b.expect("B took over");
    assert!(from_b < Duration::from_secs(6), "took {from_b:?}");

    // A zombie that stays silent for zombie_period (2 s) is dead; its Status-Server checks
    // go unanswered meanwhile.
    let dead = wait_home(&s.server, "a", |a| a.state == "dead").expect("a");
    assert_eq!((dead.state, dead.status_answered), ("dead", 0), "{dead:?}");

    // A comes back: Status-Server checks (every second, two good ones in a row for a dead
    // server) bring it back, and the fail-over pool prefers it again.
    s.a.restart();
    let back = Instant::now();
    let mut from_a = None;
    for n in 0..40u8 {
        let (code, reply) = login(auth, "carol@remote.test", "carol-pw", &[]);
        assert_eq!(code, Code::AccessAccept, "attempt {n}");
        if answered_by(&reply).as_deref() == Some("hello from A") {
            from_a = Some(back.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let from_a = from_a.expect("A is used again");
    assert!(from_a < Duration::from_secs(8), "took {from_a:?}");
    assert!(
        from_a >= Duration::from_secs(1),
        "two checks a second apart: {from_a:?}"
    );
    let a = wait_home(&s.server, "a", |a| a.state == "alive").expect("a");
    assert_eq!(a.state, "alive");
    assert!(a.status_answered >= 2, "{a:?}");
    assert!(a.timeouts >= 1, "{a:?}");
}

/// One datagram to the fake home server (a signal interrupting the wait is not an answer).
fn recv_from(sock: &UdpSocket, buf: &mut [u8], what: &str) -> (usize, SocketAddr) {
    loop {
        match sock.recv_from(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            r => return r.expect(what),
        }
    }
}

/// A home server the test plays itself: it sees a NAS retransmission once more, answers
/// garbage, a forged reply, a reply with a broken Message-Authenticator and one without any
/// (each dropped and counted), then nothing (the request ends at its deadline and leaves
/// nothing outstanding).
#[test]
fn a_home_server_answering_garbage_or_nothing_is_contained() {
    let fake = UdpSocket::bind("127.0.0.1:0").expect("bind");
    fake.set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    let extra = format!(
        "{}\n[[proxy.pools]]\nname = \"fake\"\nhome_servers = [\"fake\"]\n\n\
         [[proxy.realms]]\nname = \"fake.test\"\nauth_pool = \"fake\"\n",
        home(
            "fake",
            fake.local_addr().expect("addr"),
            "response_window = \"1s\"\nstatus_checks = false\nrequire_message_authenticator = true"
        )
    );
    let s = setup(&extra);
    let sec = secret(SECRET);
    let client = RadClient::new();
    let req = access_request(
        &sec,
        9,
        &random_authenticator(),
        "carol@fake.test",
        "carol-pw",
        true,
    );
    client.send(&req, s.server.auth);
    let mut buf = [0u8; 4096];
    let (n, from) = recv_from(&fake, &mut buf, "the request reaches the fake home");
    let upstream = buf[..n].to_vec();
    // The NAS retransmits while the request is outstanding: the same datagram goes up once
    // more (and only then: radshard has no retransmission timer of its own).
    client.send(&req, s.server.auth);
    let (n, _) = recv_from(&fake, &mut buf, "the retransmission reaches the fake home");
    assert_eq!(&buf[..n], &upstream[..], "sent again byte for byte");
    let home_sec = secret(SECRET);
    let verified =
        radshard::proto::verify_request(Packet::parse(&upstream).expect("parses"), &home_sec, true)
            .expect("our forwarded request verifies with the home secret");
    assert_eq!(verified.user_name(), Some(&b"carol"[..]));

    // Garbage; a reply signed with the wrong secret; one whose Message-Authenticator is
    // broken (and its Response Authenticator right); one with no Message-Authenticator at all
    // (this home server must sign: `require_message_authenticator = true`).
    let reply_with = |sec: &radshard::proto::Secret| {
        let mut rb = [0u8; 4096];
        radshard::proto::PacketBuilder::reply(&mut rb, Code::AccessAccept, &verified)
            .expect("ok")
            .finish(sec)
            .expect("ok")
            .to_vec()
    };
    let good = reply_with(&home_sec);
    let forged = reply_with(&secret("not-the-secret"));
    let resign = |p: &mut Vec<u8>| {
        let len = p.len() as u16;
        p[2..4].copy_from_slice(&len.to_be_bytes());
        let auth = md5_authenticator(&home_sec, p, verified.authenticator()).expect("fits");
        p[4..20].copy_from_slice(&auth);
    };
    let off = Packet::parse(&good)
        .expect("ok")
        .message_authenticator_offset()
        .expect("ma");
    let mut bad_ma = good.clone();
    bad_ma[off + 2] ^= 1;
    resign(&mut bad_ma);
    let mut no_ma = good.clone();
    no_ma.drain(off..off + 18);
    resign(&mut no_ma);
    for d in [&[2, upstream[1], 0][..], &forged, &bad_ma, &no_ma] {
        fake.send_to(d, from).expect("send");
    }
    // None of them answers the NAS; then the home server falls silent.
    assert_eq!(client.recv_timeout(Duration::from_millis(2000)), None);
    let m = s.server.proxy().expect("proxy metrics");
    let refused = |r: &str| radshard::proxy::client::ProxyMetrics::count(&m.refused, r);
    let labels = [
        "too_short",
        "bad_response_authenticator",
        "bad_message_authenticator",
        "missing_message_authenticator",
    ];
    assert!(
        wait_until(Duration::from_secs(3), || labels
            .iter()
            .all(|l| refused(l) == 1)),
        "{:?}",
        m.refused.lock().expect("lock")
    );
    let h = wait_home(&s.server, "fake", |h| h.timeouts == 1).expect("fake");
    assert_eq!(
        (h.requests, h.retransmits, h.timeouts, h.outstanding),
        (1, 1, 1, 0),
        "{h:?}"
    );
    // The real answer, too late: unmatched, counted, never relayed.
    fake.send_to(&good, from).expect("send");
    assert!(wait_until(Duration::from_secs(3), || m
        .unmatched
        .load(std::sync::atomic::Ordering::Relaxed)
        == 1));
    assert_eq!(client.recv_timeout(SILENCE), None);
}

/// keyed-balance: every round of one EAP conversation goes to the same home server (another
/// would not know its State), and different stations spread over both. Two FreeRADIUS EAP
/// servers behind radshard; eapol_test as the station, PEAP-MSCHAPv2 with an outer identity
/// in the proxied realm (kept whole, as EAP needs); the MPPE keys checked after relaying.
#[test]
fn keyed_balance_keeps_each_eap_conversation_on_one_home_server() {
    use common::eapol::run_eapol_test;
    use common::freeradius_eap::{EapOptions, FreeRadiusEap, PASSWORD};
    use radshard::proxy::home::HomeState;
    use radshard::proxy::pool::{balance_key, Fallback, Member, Pick, Pool, PoolKind};

    let e1 = FreeRadiusEap::start(&EapOptions::default());
    let e2 = FreeRadiusEap::start(&EapOptions::default());
    let mut body = String::from(STANDARD_BODY);
    body.push_str("\n[proxy]\n");
    body.push_str(&home("e1", e1.addr, ""));
    body.push_str(&home("e2", e2.addr, ""));
    body.push_str(
        r#"
[[proxy.pools]]
name = "eap"
type = "keyed-balance"
home_servers = ["e1", "e2"]

[[proxy.realms]]
name = "eap.test"
auth_pool = "eap"
user_name = "keep_for_eap"
"#,
    );
    let server = TestServer::start(1, &body);

    // Two stations for each home server, by the pool's own choice with both alive.
    let outer = "anonymous@eap.test";
    let pool = Pool::new(PoolKind::KeyedBalance, Fallback::Reject, 2).expect("pool");
    let alive = Member {
        state: HomeState::Alive,
        outstanding: 0,
        has_room: true,
    };
    let mut stations: [Vec<String>; 2] = [Vec::new(), Vec::new()];
    for n in 1..=64u8 {
        let mac = format!("02:00:00:00:00:{n:02x}");
        // eapol_test's Calling-Station-Id: the MAC in upper-case hex, dash-separated.
        let csid = mac.replace(':', "-").to_uppercase();
        let key = balance_key(Some(csid.as_bytes()), Some(outer.as_bytes()));
        if let Pick::Member(i) = pool.pick(&[alive, alive], key) {
            if stations[i].len() < 2 {
                stations[i].push(mac);
            }
        }
    }
    assert!(stations.iter().all(|s| s.len() == 2), "{stations:?}");

    let dir = tempfile::tempdir().expect("tempdir");
    let conf = dir.path().join("peap.conf");
    // No ca_cert: the two servers have their own CAs, and which one answers is the point.
    std::fs::write(
        &conf,
        format!(
            "network={{\n\tkey_mgmt=WPA-EAP\n\teap=PEAP\n\tidentity=\"alice\"\n\
             \tanonymous_identity=\"{outer}\"\n\tpassword=\"{PASSWORD}\"\n\
             \tphase1=\"peaplabel=0\"\n\tphase2=\"auth=MSCHAPV2\"\n}}\n"
        ),
    )
    .expect("network block");
    let mut rounds = [0u64; 2];
    for (home, macs) in stations.iter().enumerate() {
        for mac in macs {
            let log = dir.path().join(format!("{}.log", mac.replace(':', "")));
            let r = run_eapol_test(
                vec![
                    format!("-c{}", conf.display()),
                    "-a127.0.0.1".into(),
                    format!("-p{}", server.auth.port()),
                    format!("-s{SECRET}"),
                    format!("-M{mac}"),
                ],
                20,
                &log,
            );
            assert!(r.success, "{mac} via e{}: {}", home + 1, r.log);
            assert_eq!(r.mppe_ok, 1, "{mac}: the keys survive the relay");
            rounds[home] += u64::from(r.rounds);
        }
    }
    // Every round of a station's conversation went to that station's home server.
    for (i, name) in ["e1", "e2"].iter().enumerate() {
        let h = wait_home(&server, name, |h| h.answers == rounds[i]).expect(name);
        assert_eq!((h.requests, h.answers), (rounds[i], rounds[i]), "{h:?}");
    }
}
