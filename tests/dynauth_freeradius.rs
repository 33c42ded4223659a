//! RFC 5176 against a real peer: FreeRADIUS 3.2 as a NAS's DAS (`listen { type = coa }`,
//! scripted to ACK one session and NAK others with an Error-Cause), driven by our
//! `dynauth::Dispatcher`; and `radclient` as an upstream (a billing system) sending
//! Disconnect/CoA requests to our CoA listener, which finds the session in the session table
//! and relays to the NAS.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::freeradius_das::{FreeRadiusDas, DAS_SECRET, KNOWN_SESSION};
use common::freeradius_home::field;
use radshard::control::ControlRuntime;
use radshard::dict::Dictionary;
use radshard::dynauth::{
    DasOutcome, DasResult, DasTarget, Dispatcher, DynAuthConfig, ErrorCause, Identify, Kind,
    Listener, Upstream,
};
use radshard::proto::Secret;
use radshard::session::{SessionStore, SessionView, SessionsConfig, Status, UniqueId, Update};

fn session(acct_session_id: &str) -> SessionView {
    SessionView {
        id: "0123456789abcdef0123456789abcdef".into(),
        user: "alice@example.org".into(),
        accounted_user: Some("anonymous@example.org".into()),
        acct_session_id: acct_session_id.into(),
        client: "nas1".into(),
        nas_address: "127.0.0.1".parse().unwrap(),
        nas_ip_address: Some("192.0.2.1".parse().unwrap()),
        nas_identifier: Some("nas-one".into()),
        nas_port: Some(7),
        nas_port_id: None,
        framed_ip_address: Some("10.0.0.9".parse().unwrap()),
        calling_station_id: Some("aa-bb-cc-dd-ee-ff".into()),
        called_station_id: None,
        acct_multi_session_id: None,
        chargeable_user_identity: None,
        started: 1,
        last_update: 1,
        session_time: None,
        input_octets: 0,
        output_octets: 0,
    }
}

fn target(addr: SocketAddr) -> DasTarget {
    DasTarget {
        addr,
        secret: Secret::new(DAS_SECRET).unwrap(),
        identify: Identify::default(),
    }
}

/// A dispatcher whose client "nas1" has its DAS at `das`; other clients have none.
fn dispatcher(rt: &ControlRuntime, das: SocketAddr, settings: DynAuthConfig) -> Arc<Dispatcher> {
    Dispatcher::new(
        rt.handle().clone(),
        settings,
        Arc::new(move |client: &str| (client == "nas1").then(|| target(das))),
    )
    .expect("dispatcher starts")
}

fn run<T>(rt: &ControlRuntime, f: impl std::future::Future<Output = T>) -> T {
    rt.handle().block_on(f)
}

#[test]
fn disconnect_and_coa_against_freeradius_ack_nak_and_error_causes() {
    let das = FreeRadiusDas::start();
    let rt = ControlRuntime::start().expect("runtime");
    let d = dispatcher(&rt, das.addr, DynAuthConfig::default());

    let ack = run(&rt, d.disconnect(&session(KNOWN_SESSION)));
    assert_eq!(
        ack,
        DasOutcome {
            result: DasResult::Ack,
            error_cause: None,
            das: Some(das.addr),
            attempts: 1
        },
        "FreeRADIUS log:\n{}",
        das.log()
    );
    // What reached the NAS: the session as the NAS knows it, freshly timestamped (and a
    // Message-Authenticator, which this DAS requires: the ACK proves it verified).
    let got = das.requests();
    let first = got.first().expect("the DAS recorded the request");
    assert_eq!(field(first, "Acct-Session-Id"), Some(KNOWN_SESSION));
    assert_eq!(field(first, "User-Name"), Some("anonymous@example.org"));
    assert_eq!(field(first, "NAS-IP-Address"), Some("192.0.2.1"));
    assert_eq!(field(first, "NAS-Identifier"), Some("nas-one"));
    assert_eq!(field(first, "Framed-IP-Address"), Some("10.0.0.9"));
    assert_eq!(
        field(first, "Calling-Station-Id"),
        Some("aa-bb-cc-dd-ee-ff")
    );
    assert!(field(first, "Event-Timestamp").is_some(), "{first:?}");
    assert_eq!(
        field(first, "NAS-Port"),
        None,
        "not in the default identify set"
    );

    let nak = run(&rt, d.disconnect(&session("someone-else")));
    assert_eq!(nak.result, DasResult::Nak);
    assert_eq!(nak.error_cause, Some(ErrorCause::SESSION_CONTEXT_NOT_FOUND));
    assert_eq!(
        serde_json::to_value(&nak).unwrap()["error_cause"],
        serde_json::json!({"code": 503, "name": "Session-Context-Not-Found"})
    );

    let dict = Dictionary::builtin();
    let timeout = dict.encode("Session-Timeout", "3600").unwrap();
    let coa = run(&rt, d.coa(&session(KNOWN_SESSION), &[timeout]));
    assert_eq!(coa.result, DasResult::Ack);
    let coa_got = das.requests();
    let last = coa_got.last().unwrap();
    assert_eq!(field(last, "Session-Timeout"), Some("3600"), "{last:?}");
    let unsupported = dict.encode("Filter-Id", "unsupported").unwrap();
    let refused = run(&rt, d.coa(&session(KNOWN_SESSION), &[unsupported]));
    assert_eq!(
        (refused.result, refused.error_cause),
        (DasResult::Nak, Some(ErrorCause::UNSUPPORTED_ATTRIBUTE))
    );

    let no_das = run(
        &rt,
        d.disconnect(&SessionView {
            client: "nas-without-das".into(),
            ..session(KNOWN_SESSION)
        }),
    );
    assert_eq!((no_das.result, no_das.attempts), (DasResult::NoDas, 0));

    let m = d.metrics();
    assert_eq!(m.requests(Kind::Disconnect), 3);
    assert_eq!(m.requests(Kind::Coa), 2);
    assert_eq!(m.answers(Kind::Coa, DasResult::Nak), 1);
    let mut text = String::new();
    m.render(&mut text);
    assert!(
        text.contains("radshard_dynauth_answers_total{kind=\"disconnect\",result=\"nak\",error_cause=\"Session-Context-Not-Found\"} 1"),
        "{text}"
    );
    assert!(text.contains(
        "radshard_dynauth_answers_total{kind=\"coa\",result=\"nak\",error_cause=\"Unsupported-Attribute\"} 1"
    ));
}

#[test]
fn an_unanswering_das_times_out_after_doubling_retransmissions() {
    let rt = ControlRuntime::start().expect("runtime");
    // Bound and silent: nobody answers, and no ICMP error ends the wait early.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let settings = DynAuthConfig {
        timeout: Duration::from_millis(100),
        retries: 2,
        ..DynAuthConfig::default()
    };
    let d = dispatcher(&rt, silent.local_addr().unwrap(), settings);
    let t0 = Instant::now();
    let o = run(&rt, d.disconnect(&session(KNOWN_SESSION)));
    let took = t0.elapsed();
    assert_eq!((o.result, o.attempts), (DasResult::Timeout, 3));
    // 100 + 200 + 400 ms.
    assert!(
        took >= Duration::from_millis(690) && took < Duration::from_secs(3),
        "{took:?}"
    );
    let mut buf = [0u8; 4096];
    silent
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut copies = Vec::new();
    while let Ok((n, _)) = silent.recv_from(&mut buf) {
        copies.push(buf[..n].to_vec());
    }
    assert_eq!(copies.len(), 3, "the first try and two retransmissions");
    assert!(
        copies.windows(2).all(|w| w[0] == w[1]),
        "retransmissions are identical"
    );
    let mut text = String::new();
    d.metrics().render(&mut text);
    assert!(
        text.contains("radshard_dynauth_retransmissions_total{kind=\"disconnect\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("result=\"timeout\",error_cause=\"none\"} 1"),
        "{text}"
    );
}

const UPSTREAM_SECRET: &str = "billing-secret-0123";

fn store_with(sessions: &[(&str, &str)]) -> Arc<SessionStore> {
    let store = Arc::new(SessionStore::new(SessionsConfig::default()));
    for (i, (user, acct_session_id)) in sessions.iter().enumerate() {
        let mut id = [0u8; 16];
        id[0] = i as u8 + 1;
        store.apply(&Update {
            status: Status::Start,
            id: Some(UniqueId(id)),
            user: (*user).into(),
            accounted_user: Some((*user).into()),
            acct_session_id: (*acct_session_id).into(),
            client: "nas1".into(),
            nas_address: "127.0.0.1".parse().unwrap(),
            nas_ip_address: Some("192.0.2.1".parse().unwrap()),
            nas_identifier: None,
            nas_port: None,
            nas_port_id: None,
            framed_ip_address: None,
            calling_station_id: None,
            called_station_id: None,
            acct_multi_session_id: None,
            chargeable_user_identity: None,
            session_time: None,
            input_octets: 0,
            output_octets: 0,
            interim_interval: None,
            time: 1_700_000_000,
        });
    }
    store
}

#[test]
fn radclient_to_our_coa_listener_is_relayed_to_the_nas_owning_the_session() {
    let das = FreeRadiusDas::start();
    let rt = ControlRuntime::start().expect("runtime");
    let d = dispatcher(&rt, das.addr, DynAuthConfig::default());
    let store = store_with(&[
        ("bob", KNOWN_SESSION),
        ("carol", "gone-from-the-nas"),
        ("dave", "d-1"),
        ("dave", "d-2"),
    ]);
    let upstream_of = Arc::new(|ip: IpAddr| {
        (ip == IpAddr::from([127, 0, 0, 1])).then(|| Upstream {
            name: "billing".into(),
            secret: Secret::new(UPSTREAM_SECRET).unwrap(),
        })
    });
    let listener = Listener::bind(
        &["127.0.0.1:0".parse().unwrap()],
        store.clone(),
        d.clone(),
        upstream_of,
    )
    .expect("listener binds");
    let at = listener.local_addrs()[0];
    let ask = |command: &str, attrs: &str, secret: &str| {
        common::stdout_of(&common::radclient(at, command, secret, attrs))
    };

    // In the table and known to the NAS: ACK, relayed.
    let out = ask(
        "disconnect",
        "User-Name = \"bob\"\nAcct-Session-Id = \"known-session-1\"\n",
        UPSTREAM_SECRET,
    );
    assert!(
        out.contains("Received Disconnect-ACK"),
        "{out}\nDAS log:\n{}",
        das.log()
    );
    let relayed = das.requests();
    let r = relayed.last().expect("forwarded");
    assert_eq!(field(r, "Acct-Session-Id"), Some(KNOWN_SESSION));
    assert_eq!(field(r, "NAS-IP-Address"), Some("192.0.2.1"));

    // In the table, but the NAS no longer has it: the NAS's NAK and Error-Cause, relayed.
    let out = ask(
        "disconnect",
        "Acct-Session-Id = \"gone-from-the-nas\"\n",
        UPSTREAM_SECRET,
    );
    assert!(
        out.contains("Received Disconnect-NAK") && out.contains("Session-Context-Not-Found"),
        "{out}"
    );
    assert_eq!(das.requests().len(), 2, "that one was forwarded too");

    // Not in the table: our own NAK 503, nothing forwarded.
    let out = ask("disconnect", "User-Name = \"nobody\"\n", UPSTREAM_SECRET);
    assert!(
        out.contains("Received Disconnect-NAK") && out.contains("Session-Context-Not-Found"),
        "{out}"
    );
    assert_eq!(das.requests().len(), 2);

    // A CoA naming two sessions: NAK 508. One session: forwarded with the upstream's
    // attributes, the NAS's NAK 401 relayed.
    let out = ask(
        "coa",
        "User-Name = \"dave\"\nSession-Timeout = 60\n",
        UPSTREAM_SECRET,
    );
    assert!(
        out.contains("Received CoA-NAK") && out.contains("Multiple-Session-Selection-Unsupported"),
        "{out}"
    );
    let out = ask(
        "coa",
        "Acct-Session-Id = \"known-session-1\"\nFilter-Id = \"unsupported\"\n",
        UPSTREAM_SECRET,
    );
    assert!(
        out.contains("Received CoA-NAK") && out.contains("Unsupported-Attribute"),
        "{out}"
    );
    let r = das.requests();
    assert_eq!(field(r.last().unwrap(), "Filter-Id"), Some("unsupported"));

    // A wrong secret: dropped and counted, never answered or forwarded.
    let out = ask(
        "disconnect",
        "Acct-Session-Id = \"known-session-1\"\n",
        "not-the-secret",
    );
    assert!(!out.contains("Received"), "{out}");
    assert_eq!(das.requests().len(), 3);
    assert!(
        d.metrics()
            .listener_dropped_total(radshard::dynauth::metrics::ListenerDrop::BadAuthenticator)
            >= 1
    );
    drop(listener);
}

/// An in-process DAS that ACKs every verified Disconnect-Request (the `fake_das` example's
/// loop), until `n` have been answered or it is quiet for a while.
fn ack_everything(sock: std::net::UdpSocket, n: usize) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        let secret = Secret::new(DAS_SECRET).unwrap();
        let mut buf = [0u8; 4096];
        let mut out = [0u8; 4096];
        let mut acked = 0;
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        while acked < n {
            let Ok((len, from)) = sock.recv_from(&mut buf) else {
                break;
            };
            let p = radshard::proto::Packet::parse(&buf[..len]).unwrap();
            let v = radshard::proto::verify_request(p, &secret, true).expect("signed right");
            let b = radshard::proto::PacketBuilder::reply(
                &mut out,
                radshard::proto::Code::DisconnectAck,
                &v,
            )
            .unwrap();
            sock.send_to(b.finish(&secret).unwrap(), from).unwrap();
            acked += 1;
        }
        acked
    })
}

#[test]
fn ten_thousand_disconnects_to_one_nas_use_several_sockets_and_all_ack() {
    const N: usize = 10_000;
    let rt = ControlRuntime::start().expect("runtime");
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
    // A NAS with room for a burst: the default buffer drops some of 1024 requests at once,
    // which only the (2 s) retransmissions would then recover.
    sock.set_recv_buffer_size(4 << 20).unwrap();
    sock.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    let sock: std::net::UdpSocket = sock.into();
    let addr = sock.local_addr().unwrap();
    let das = ack_everything(sock, N);
    let d = dispatcher(&rt, addr, DynAuthConfig::default());
    let t0 = Instant::now();
    let outcomes = run(&rt, async {
        let mut set = tokio::task::JoinSet::new();
        for i in 0..N {
            let d = d.clone();
            set.spawn(async move { d.disconnect(&session(&format!("s-{i}"))).await });
        }
        let mut v = Vec::new();
        while let Some(o) = set.join_next().await {
            v.push(o.expect("task"));
        }
        v
    });
    let took = t0.elapsed();
    let acks = outcomes
        .iter()
        .filter(|o| o.result == DasResult::Ack)
        .count();
    assert_eq!(acks, N, "{:?}", outcomes.iter().find(|o| !o.is_ack()));
    assert_eq!(das.join().unwrap(), N);
    let mut text = String::new();
    d.metrics().render(&mut text);
    let retransmitted = text
        .lines()
        .find(|l| l.starts_with("radshard_dynauth_retransmissions_total{kind=\"disconnect\"}"))
        .unwrap_or_default()
        .to_string();
    eprintln!("{N} disconnects acknowledged in {took:?} ({retransmitted})");
    assert!(took < Duration::from_secs(30), "{took:?}");
}

/// A Disconnect-Request from the billing upstream, signed with its secret.
fn upstream_disconnect(id: u8, acct_session_id: &str) -> Vec<u8> {
    use radshard::proto::{Code, PacketBuilder, ACCT_SESSION_ID};
    let mut buf = [0u8; 4096];
    let mut b = PacketBuilder::request(&mut buf, Code::DisconnectRequest, id, &[0; 16]).unwrap();
    b.attr(ACCT_SESSION_ID, acct_session_id.as_bytes()).unwrap();
    b.finish(&Secret::new(UPSTREAM_SECRET).unwrap())
        .unwrap()
        .to_vec()
}

fn recv(sock: &std::net::UdpSocket, wait: Duration) -> Option<(Vec<u8>, SocketAddr)> {
    let mut buf = [0u8; 4096];
    sock.set_read_timeout(Some(wait)).unwrap();
    sock.recv_from(&mut buf)
        .ok()
        .map(|(n, from)| (buf[..n].to_vec(), from))
}

#[test]
fn upstream_retransmissions_are_absorbed_then_answered_from_the_cache() {
    use radshard::proto::{verify_request, verify_response, Code, Packet, PacketBuilder};
    let rt = ControlRuntime::start().expect("runtime");
    let nas = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let d = dispatcher(&rt, nas.local_addr().unwrap(), DynAuthConfig::default());
    let store = store_with(&[("bob", "b-1")]);
    let listener = Listener::bind(
        &["127.0.0.1:0".parse().unwrap()],
        store,
        d.clone(),
        Arc::new(|_ip: IpAddr| {
            Some(Upstream {
                name: "billing".into(),
                secret: Secret::new(UPSTREAM_SECRET).unwrap(),
            })
        }),
    )
    .unwrap();
    let at = listener.local_addrs()[0];
    let upstream = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let request = upstream_disconnect(77, "b-1");
    upstream.send_to(&request, at).unwrap();
    let (forwarded, from) = recv(&nas, Duration::from_secs(3)).expect("forwarded to the NAS");
    let das_secret = Secret::new(DAS_SECRET).unwrap();
    let f = Packet::parse(&forwarded).unwrap();
    let fv = verify_request(f, &das_secret, true).expect("signed with the DAS secret");
    // A retransmission while the NAS has not answered: absorbed, not forwarded again.
    upstream.send_to(&request, at).unwrap();
    assert!(
        recv(&nas, Duration::from_millis(300)).is_none(),
        "forwarded once"
    );
    assert!(recv(&upstream, Duration::from_millis(50)).is_none());
    let mut buf = [0u8; 4096];
    let ack = PacketBuilder::reply(&mut buf, Code::DisconnectAck, &fv)
        .unwrap()
        .finish(&das_secret)
        .unwrap()
        .to_vec();
    nas.send_to(&ack, from).unwrap();
    let (answer, _) = recv(&upstream, Duration::from_secs(3)).expect("the ACK, relayed");
    let a = Packet::parse(&answer).unwrap();
    assert_eq!(a.code(), Code::DisconnectAck);
    verify_response(
        &a,
        Packet::parse(&request).unwrap().authenticator(),
        &Secret::new(UPSTREAM_SECRET).unwrap(),
    )
    .expect("signed with the upstream's secret");
    // Answered: a late retransmission gets the same answer, and the NAS hears nothing.
    upstream.send_to(&request, at).unwrap();
    let (again, _) = recv(&upstream, Duration::from_secs(3)).expect("replayed");
    assert_eq!(again, answer);
    assert!(recv(&nas, Duration::from_millis(200)).is_none());
    let mut text = String::new();
    d.metrics().render(&mut text);
    assert!(
        text.contains("radshard_dynauth_listener_replayed_total 1"),
        "{text}"
    );
    assert!(
        text.contains("radshard_dynauth_listener_dropped_total{reason=\"in_progress\"} 1"),
        "{text}"
    );

    // Detached: returns at once; the request still reaches the NAS.
    d.disconnect_detached(session("detached-1"));
    let (bytes, _) = recv(&nas, Duration::from_secs(3)).expect("sent in the background");
    let p = Packet::parse(&bytes).unwrap();
    assert_eq!(
        p.attr(radshard::proto::ACCT_SESSION_ID),
        Some(&b"detached-1"[..])
    );
}
