//! Dynamic authorization's untrusted inputs: a DAS's answer to requests in flight, as raw
//! bytes and as attributes inside a correctly signed answer (so the matching and Error-Cause
//! decoding are reached, not just the authenticator check), and an upstream's request to the
//! CoA listener, raw and correctly signed. Nothing may panic; an answer that verifies must
//! have completed exactly one request in flight, the one its Identifier names, with the
//! result its code says.

#![no_main]

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use radshard::dynauth::client::{Core, Limits};
use radshard::dynauth::listener::{build_answer, forwarded_attributes, Identification};
use radshard::dynauth::packet::{Draft, Kind};
use radshard::dynauth::{DasResult, ErrorCause, Identify};
use radshard::proto::{verify_request, Code, Packet, PacketBuilder, Secret, MAX_PACKET_LEN};
use radshard::session::SessionView;

const SOCKETS: usize = 2;
const IN_FLIGHT: usize = 4;

struct Fixture {
    das: SocketAddr,
    das_secret: Secret,
    upstream_secret: Secret,
    drafts: Vec<Draft>,
}

fn session(i: usize) -> SessionView {
    SessionView {
        id: format!("{i:032x}"),
        user: "alice".into(),
        accounted_user: Some("anonymous".into()),
        acct_session_id: format!("S-{i}"),
        client: "nas".into(),
        nas_address: "127.0.0.1".parse().expect("literal"),
        nas_ip_address: Some("192.0.2.1".parse().expect("literal")),
        nas_identifier: Some("nas".into()),
        nas_port: Some(1),
        nas_port_id: None,
        framed_ip_address: None,
        calling_station_id: None,
        called_station_id: None,
        acct_multi_session_id: None,
        chargeable_user_identity: None,
        started: 0,
        last_update: 0,
        session_time: None,
        input_octets: 0,
        output_octets: 0,
    }
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let das: SocketAddr = "127.0.0.1:3799".parse().expect("literal");
        let das_secret = Secret::new("das-secret").expect("non-empty");
        let drafts = (0..IN_FLIGHT)
            .map(|i| {
                let kind = if i % 2 == 0 {
                    Kind::Disconnect
                } else {
                    Kind::Coa
                };
                Draft::new(
                    kind,
                    das,
                    das_secret.clone(),
                    &session(i),
                    Identify::default(),
                    &[],
                    0,
                )
                .expect("fits")
            })
            .collect();
        Fixture {
            das,
            das_secret,
            upstream_secret: Secret::new("upstream-secret").expect("non-empty"),
            drafts,
        }
    })
}

/// A core with the fixture's requests in flight, and their signed bytes.
fn core() -> (Core<usize>, Vec<Vec<u8>>, Instant) {
    let f = fixture();
    let now = Instant::now();
    let mut c = Core::new(Limits {
        sockets: SOCKETS,
        timeout: Duration::from_secs(1),
        retries: 1,
        max_outstanding: 16,
        max_queued: 4,
    });
    for (i, d) in f.drafts.iter().enumerate() {
        c.submit(d.clone(), i, now);
    }
    let mut sent = vec![Vec::new(); SOCKETS * 256];
    while let Some(t) = c.poll_transmit() {
        let slot = t.socket * 256 + usize::from(t.bytes[1]);
        sent[slot] = t.bytes;
    }
    (c, sent, now)
}

/// Feeds one datagram and checks the invariant on whatever it completed; whether it did.
fn feed(
    c: &mut Core<usize>,
    sent: &[Vec<u8>],
    socket: usize,
    datagram: &[u8],
    now: Instant,
) -> bool {
    let before = c.in_flight();
    match c.on_datagram(socket, fixture().das, datagram, now) {
        Ok((kind, result)) => {
            assert_eq!(
                c.in_flight(),
                before - 1,
                "a verified answer completes one request"
            );
            let (token, done_kind, outcome) = c.poll_done().expect("its outcome");
            assert_eq!((done_kind, outcome.result), (kind, result));
            let request = &sent[socket * 256 + usize::from(datagram[1])];
            assert!(
                !request.is_empty(),
                "it answered a request that was in flight"
            );
            assert_eq!(fixture().drafts[token].kind, kind);
            let code = Code::from_u8(datagram[0]).expect("parsed");
            let ack = code == kind.ack();
            assert!(ack || code == kind.nak());
            assert_eq!(result, if ack { DasResult::Ack } else { DasResult::Nak });
            if let Some(c) = outcome.error_cause {
                std::hint::black_box(ErrorCause::from_code(c.code).index());
            }
            true
        }
        Err(e) => {
            std::hint::black_box(e.label());
            assert_eq!(
                c.in_flight(),
                before,
                "a dropped datagram completes nothing"
            );
            false
        }
    }
}

/// A correctly signed answer to the request in flight at `pick`, carrying `attrs` (when they
/// are well-formed TLVs).
fn signed_answer(sent: &[Vec<u8>], pick: u8, nak: bool, attrs: &[u8]) -> Option<(usize, Vec<u8>)> {
    let live: Vec<usize> = (0..sent.len()).filter(|i| !sent[*i].is_empty()).collect();
    let slot = *live.get(usize::from(pick) % live.len().max(1))?;
    let req = Packet::parse(&sent[slot]).ok()?;
    let kind = Kind::of_request(req.code())?;
    let code = if nak { kind.nak() } else { kind.ack() };
    let mut buf = [0u8; MAX_PACKET_LEN];
    let mut b = PacketBuilder::answer(
        &mut buf,
        code,
        req.code(),
        req.identifier(),
        req.authenticator(),
    )
    .ok()?;
    b.raw(attrs).ok()?;
    Some((slot / 256, b.finish(&fixture().das_secret).ok()?.to_vec()))
}

fn listener_request(data: &[u8]) {
    let f = fixture();
    if let Ok(p) = Packet::parse(data) {
        if let Ok(v) = verify_request(p, &f.upstream_secret, false) {
            listener_steps(&v);
        }
        std::hint::black_box(Identification::read(&p));
    }
    // The same bytes as the attributes of a correctly signed request, so the listener's
    // reading of them is reached.
    for code in [Code::DisconnectRequest, Code::CoaRequest] {
        let mut buf = [0u8; MAX_PACKET_LEN];
        let Ok(mut b) = PacketBuilder::request(&mut buf, code, 1, &[0; 16]) else {
            return;
        };
        if b.raw(data).is_err() {
            return;
        }
        let Ok(bytes) = b.finish(&f.upstream_secret) else {
            return;
        };
        let bytes = bytes.to_vec();
        let p = Packet::parse(&bytes).expect("we built it");
        let v = verify_request(p, &f.upstream_secret, false).expect("we signed it");
        listener_steps(&v);
    }
}

fn listener_steps(v: &radshard::proto::Verified<'_>) {
    let p = v.packet();
    let id = Identification::read(p);
    std::hint::black_box(id.names_a_session());
    std::hint::black_box(id.matches(&session(0)));
    let kept = forwarded_attributes(p);
    // What is forwarded must itself be well-formed attributes a request can carry.
    let mut buf = [0u8; MAX_PACKET_LEN];
    if let Ok(mut b) = PacketBuilder::request(&mut buf, Code::CoaRequest, 2, &[0; 16]) {
        assert!(
            b.raw(&kept).is_ok(),
            "forwarded attributes are well-formed TLVs"
        );
    }
    let Some(kind) = Kind::of_request(p.code()) else {
        return;
    };
    for ack in [true, false] {
        if let Some(answer) =
            build_answer(v, kind, ack, Some(ErrorCause::SESSION_CONTEXT_NOT_FOUND))
        {
            let r = Packet::parse(&answer).expect("our answer parses");
            radshard::proto::verify_response(&r, p.authenticator(), &fixture().upstream_secret)
                .expect("our answer verifies");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => {
            let (c, sent, now) = &mut core();
            let socket = usize::from(rest.first().copied().unwrap_or(0)) % SOCKETS;
            // Forging the Response Authenticator is out of reach: this exercises the drops.
            feed(c, sent, socket, rest.get(1..).unwrap_or_default(), *now);
        }
        1 => {
            let (c, sent, now) = &mut core();
            let pick = rest.first().copied().unwrap_or(0);
            let attrs = rest.get(1..).unwrap_or_default();
            if let Some((socket, answer)) = signed_answer(sent, pick, pick & 0x80 != 0, attrs) {
                assert!(
                    feed(c, sent, socket, &answer, *now),
                    "a correctly signed answer completes"
                );
                // The same answer again matches nothing: its request is finished.
                let before = c.in_flight();
                assert!(c.on_datagram(socket, fixture().das, &answer, *now).is_err());
                assert_eq!(c.in_flight(), before);
            }
        }
        _ => listener_request(rest),
    }
});
