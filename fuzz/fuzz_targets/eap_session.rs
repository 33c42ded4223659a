//! The server's EAP conversation fed hostile rounds: a real TLS ClientHello (from rustls, made
//! once) cut into fragments at sizes the input picks, with lengths, flags and identifiers the
//! input may falsify, then arbitrary fragments, acknowledgements and Naks. Every round must
//! answer a `Round` — a request that fits, a handshake step, a reject — and never panic; a
//! request the session writes must parse as an EAP-Request of its method.

#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use radshard::auth::eap::session::{EapSession, InnerResult, Round};
use radshard::auth::eap::EapService;
use radshard::config::Config;
use radshard::proto::eap::tls::{flags, write_fragment};
use radshard::proto::eap::{EapCode, EapPacket, EapType};
use radshard::vocab::{Method, RejectReason};
use rustls_pki_types::pem::PemObject;

struct Fixture {
    svc: EapService,
    hello: Vec<u8>,
    _dir: tempfile::TempDir,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        radshard::tls::pki::write_test_pki(dir.path(), Default::default(), false)
            .expect("test PKI");
        let d = dir.path().display();
        let text = format!(
            "[eap]\nmethods = [\"peap\", \"ttls\", \"eap-tls\"]\n[eap.tls]\ncertificate = \"{d}/server.pem\"\n\
             private_key = \"{d}/server.key\"\nca = \"{d}/ca.pem\"\n"
        );
        let config = Config::from_str(&text, &dir.path().join("fuzz.toml"), None).expect("config");
        let svc = EapService::build(config.eap.as_ref().expect("[eap]")).expect("service");
        // One real ClientHello.
        let mut roots = rustls::RootCertStore::empty();
        let ca = std::fs::read(dir.path().join("ca.pem")).expect("ca");
        for c in rustls_pki_types::CertificateDer::pem_slice_iter(&ca) {
            roots.add(c.expect("pem")).expect("root");
        }
        let client = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut conn = rustls::ClientConnection::new(
            Arc::new(client),
            "radius.test".try_into().expect("name"),
        )
        .expect("client");
        let mut hello = Vec::new();
        while conn.wants_write() {
            conn.write_tls(&mut hello).expect("hello");
        }
        Fixture {
            svc,
            hello,
            _dir: dir,
        }
    })
}

fn type_of(m: Method) -> EapType {
    match m {
        Method::Ttls => EapType::Ttls,
        Method::EapTls => EapType::Tls,
        _ => EapType::Peap,
    }
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let Some((&first, mut rest)) = data.split_first() else {
        return;
    };
    let method = [Method::Peap, Method::Ttls, Method::EapTls][usize::from(first % 3)];
    let mut s = EapSession::new(method, b"anonymous", 1, 1024);
    let mut hello_sent = 0usize;
    let mut out = [0u8; 4096];
    let mut req = [0u8; 4096];
    for _ in 0..64 {
        // Our request first (the Start, a fragment, an acknowledgement).
        let n = s.write_request(&mut out);
        if n > 0 {
            let p = EapPacket::parse(&out[..n]).expect("our request parses");
            assert_eq!(p.code(), EapCode::Request);
        }
        let Some((&op, tail)) = rest.split_first() else {
            return;
        };
        rest = tail;
        let id = if op & 0x80 != 0 { s.id } else { s.id ^ op };
        let ty = if op & 0x40 != 0 {
            type_of(s.method)
        } else {
            EapType::from_u8(op & 0x3f)
        };
        fn take<'d>(rest: &mut &'d [u8], k: usize) -> &'d [u8] {
            let k = k.min(rest.len());
            let (a, b) = rest.split_at(k);
            *rest = b;
            a
        }
        let len = match op & 0x07 {
            // The real ClientHello, in a fragment of the next octet's size.
            0 | 1 | 2 => {
                let size = usize::from(take(&mut rest, 1).first().copied().unwrap_or(0)) * 8 + 1;
                let end = (hello_sent + size).min(f.hello.len());
                let more = end < f.hello.len();
                let (fl, total) = if hello_sent == 0 && more {
                    (flags::LENGTH | flags::MORE, Some(f.hello.len() as u32))
                } else if more {
                    (flags::MORE, None)
                } else {
                    (0, None)
                };
                let chunk = &f.hello[hello_sent..end];
                hello_sent = end;
                write_fragment(&mut req, EapCode::Response, id, ty, fl, total, chunk)
            }
            // An acknowledgement.
            3 => write_fragment(&mut req, EapCode::Response, id, ty, 0, None, &[]),
            // A Nak naming the next octets.
            4 => {
                let list = take(&mut rest, 3).to_vec();
                radshard::proto::eap::write_packet(
                    &mut req,
                    EapCode::Response,
                    id,
                    EapType::Nak,
                    &list,
                )
            }
            // Arbitrary type data.
            _ => {
                let k = usize::from(take(&mut rest, 1).first().copied().unwrap_or(0));
                let body = take(&mut rest, k).to_vec();
                radshard::proto::eap::write_packet(&mut req, EapCode::Response, id, ty, &body)
            }
        };
        let Some(len) = len else { continue };
        let Ok(pkt) = EapPacket::parse(&req[..len]) else {
            continue;
        };
        let mut round = s.respond(&pkt, &f.svc, 1_000_000);
        loop {
            match round {
                Round::Handshake => {
                    s.handshake();
                    round = s.after_tls(&f.svc, 1_000_000);
                }
                Round::Inner(_) => {
                    round = s.inner_done(InnerResult::Refused(RejectReason::BadPassword))
                }
                Round::Send => break,
                Round::Accept | Round::Reject(_) => return,
            }
        }
    }
});
