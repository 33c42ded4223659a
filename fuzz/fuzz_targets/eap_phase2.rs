//! The tunnels' phase 2: a real rustls client (trusting the test CA) takes a PEAP or TTLS
//! conversation through its handshake — over TLS 1.2 or 1.3, acknowledging the server's
//! fragments and sending its own flights in fragments the input sizes — and then sends what the
//! input says inside the tunnel: PEAPv0 inner EAP (Identity, Nak, EAP-MSCHAPv2 Response and
//! Success acknowledgement, EAP-GTC, Result TLV, raw octets), TTLS AVPs (User-Name,
//! User-Password, MS-CHAP-Challenge + MS-CHAP2-Response with the real implicit challenge,
//! EAP-Message, an unknown mandatory AVP, raw octets). Each inner login the session asks for is
//! answered as the input says: accepted (with and without an NT key), refused, or a one-time
//! code to ask for, which brings the conversation to its code round. What the server sends
//! back is decrypted, so the MS-CHAPv2 identifiers and the inner identifiers follow it; the
//! input may also replay a record, acknowledge instead of answering, or split a record.
//!
//! Input: octet 0 picks the method, the TLS version and our fragment size; then chunks, each
//! an operation octet, a length octet and that many octets; an inner login's answer takes the
//! next octet.
//!
//! Asserted: no panic; every request the session writes parses as an EAP-Request of the
//! conversation's method with its identifier; no more than `MAX_ROUNDS` requests, and a round
//! past them is a reject; a one-time code is only asked for in the code stage; an Accept only
//! after an inner login this conversation accepted (nothing is cached here, and nothing
//! resumes).

#![no_main]

use std::io::{Read, Write};
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use radshard::auth::conversation::state::STATE_LEN;
use radshard::auth::eap::session::{
    EapSession, InnerCredential, InnerResult, Round, Stage, MAX_ROUNDS,
};
use radshard::auth::eap::EapService;
use radshard::auth::mschap::NtKey;
use radshard::auth::second_factor::Pending;
use radshard::config::Config;
use radshard::proto::eap::mschapv2::{self, Message};
use radshard::proto::eap::peap::{self, TlvResult};
use radshard::proto::eap::tls::{flags, write_fragment, TlsFragment};
use radshard::proto::eap::ttls::{self, code, VENDOR_MICROSOFT};
use radshard::proto::eap::{write_packet, EapCode, EapPacket, EapType};
use radshard::vocab::{AuthSource, Method, RejectReason};
use rustls::{ClientConfig, ClientConnection};
use rustls_pki_types::pem::PemObject;

const NOW: u64 = 1_000_000;

struct Fixture {
    svc: EapService,
    /// Our client configurations: TLS 1.2 and TLS 1.3, resumption off (every input a full
    /// handshake, independent of the ones before it).
    tls12: Arc<ClientConfig>,
    tls13: Arc<ClientConfig>,
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
            "[eap]\nmethods = [\"peap\", \"ttls\"]\ninner_methods = [\"mschapv2\", \"gtc\"]\n\
             [eap.tls]\ncertificate = \"{d}/server.pem\"\nprivate_key = \"{d}/server.key\"\n\
             ca = \"{d}/ca.pem\"\n"
        );
        let config = Config::from_str(&text, &dir.path().join("fuzz.toml"), None).expect("config");
        let svc = EapService::build(config.eap.as_ref().expect("[eap]")).expect("service");
        let mut roots = rustls::RootCertStore::empty();
        let ca = std::fs::read(dir.path().join("ca.pem")).expect("ca");
        for c in rustls_pki_types::CertificateDer::pem_slice_iter(&ca) {
            roots.add(c.expect("pem")).expect("root");
        }
        let client = |v: &'static rustls::SupportedProtocolVersion| {
            let mut c = ClientConfig::builder_with_protocol_versions(&[v])
                .with_root_certificates(roots.clone())
                .with_no_client_auth();
            c.resumption = rustls::client::Resumption::disabled();
            Arc::new(c)
        };
        Fixture {
            svc,
            tls12: client(&rustls::version::TLS12),
            tls13: client(&rustls::version::TLS13),
            _dir: dir,
        }
    })
}

/// The input, read from the front.
struct Input<'d>(&'d [u8]);

impl<'d> Input<'d> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn take(&mut self, k: usize) -> &'d [u8] {
        let (a, b) = self.0.split_at(k.min(self.0.len()));
        self.0 = b;
        a
    }
}

/// The peer: its TLS connection over memory and what it learnt of the server's inner messages.
struct Peer {
    conn: ClientConnection,
    /// The server's fragments of the message being reassembled.
    inbound: Vec<u8>,
    /// Our TLS output; `sent` octets of it are out.
    outbound: Vec<u8>,
    sent: usize,
    /// Our fragment size.
    fragment: usize,
    /// The last application-data records we sent (for a replay).
    last_records: Vec<u8>,
    /// The server's inner messages seen so far.
    inner_seen: usize,
    /// The identifier of the server's last inner EAP packet (TTLS; PEAP's is the outer one).
    inner_id: u8,
    /// The MS-CHAP-ID of the server's last EAP-MSCHAPv2 Challenge or Success.
    ms_id: u8,
}

impl Peer {
    /// Feeds the server's reassembled TLS data to the client and reads what it decrypts.
    /// `false` when the client fails (the server's data did not fit the TLS session).
    fn absorb(&mut self, method: Method) -> bool {
        let data = std::mem::take(&mut self.inbound);
        let mut rd = &data[..];
        while !rd.is_empty() {
            match self.conn.read_tls(&mut rd) {
                Ok(0) => break,
                Ok(_) => {}
                Err(_) => return false,
            }
            if self.conn.process_new_packets().is_err() {
                return false;
            }
        }
        let mut plain = Vec::new();
        let mut buf = [0u8; 2048];
        loop {
            match self.conn.reader().read(&mut buf) {
                Ok(0) => break,
                Ok(n) => plain.extend_from_slice(&buf[..n]),
                Err(_) => break,
            }
        }
        if !plain.is_empty() {
            self.learn(method, &plain);
        }
        self.flush();
        true
    }

    /// Reads the server's inner message(s) for the identifiers the next answers carry.
    fn learn(&mut self, method: Method, plain: &[u8]) {
        self.inner_seen += 1;
        match method {
            // Header-less inner EAP, or a whole Type-33 packet (the Result TLV's request).
            Method::Peap => {
                if let (false, Some((&t, data))) =
                    (peap::is_extensions_packet(plain), plain.split_first())
                {
                    self.inner_eap(t, data);
                }
            }
            _ => {
                for avp in ttls::avps(plain) {
                    let Ok(avp) = avp else { break };
                    if avp.vendor.is_some() || avp.code != code::EAP_MESSAGE {
                        continue;
                    }
                    if let Ok(p) = EapPacket::parse(avp.data) {
                        self.inner_id = p.identifier();
                        if let Some(t) = p.eap_type() {
                            self.inner_eap(t.to_u8(), p.type_data());
                        }
                    }
                }
            }
        }
    }

    fn inner_eap(&mut self, t: u8, data: &[u8]) {
        if t == EapType::MsChapV2.to_u8() {
            match mschapv2::parse(EapCode::Request, data) {
                Ok(Message::Challenge(c)) => self.ms_id = c.ms_id,
                Ok(Message::Success { ms_id, .. }) => self.ms_id = ms_id,
                _ => {}
            }
        }
    }

    /// Moves the client's pending TLS output into our fragment queue.
    fn flush(&mut self) {
        if self.sent >= self.outbound.len() {
            self.outbound.clear();
            self.sent = 0;
        }
        while self.conn.wants_write() {
            if self.conn.write_tls(&mut self.outbound).is_err() {
                break;
            }
        }
    }

    fn has_output(&self) -> bool {
        self.sent < self.outbound.len()
    }

    /// Encrypts `data` as application data and queues the record(s).
    fn send(&mut self, data: &[u8]) {
        if !self.has_output() {
            self.outbound.clear();
            self.sent = 0;
        }
        let before = self.outbound.len();
        if self.conn.writer().write_all(data).is_err() {
            return;
        }
        self.flush();
        self.last_records = self.outbound[before..].to_vec();
    }

    /// The next fragment of our output: flags, TLS Message Length, data.
    fn next_fragment(&mut self, max: usize) -> (u8, Option<u32>, &[u8]) {
        let (start, total) = (self.sent, self.outbound.len());
        let end = (start + max.max(1)).min(total);
        let more = end < total;
        let (f, length) = match (more, start == 0) {
            (true, true) => (flags::LENGTH | flags::MORE, u32::try_from(total).ok()),
            (true, false) => (flags::MORE, None),
            (false, _) => (0, None),
        };
        self.sent = end;
        (f, length, &self.outbound[start..end])
    }
}

/// A whole EAP-MSCHAPv2 Response (the EAP header included): identifier `id`, MS-CHAP-ID
/// `ms_id`, the challenge and NT-Response from `bytes`, the rest as the name.
fn mschapv2_response(out: &mut [u8], id: u8, ms_id: u8, bytes: &[u8]) -> usize {
    let mut pc = [0u8; 16];
    let mut nt = [0u8; 24];
    let n = bytes.len().min(16);
    pc[..n].copy_from_slice(&bytes[..n]);
    let rest = &bytes[n..];
    let m = rest.len().min(24);
    nt[..m].copy_from_slice(&rest[..m]);
    let name: &[u8] = if rest.len() > m { &rest[m..] } else { b"alice" };
    mschapv2::write_response(out, id, ms_id, &pc, &nt, name).unwrap_or(0)
}

/// The inner EAP packet (whole, with its header) operation `op` builds from `bytes`.
fn inner_packet(peer: &Peer, id: u8, op: u8, bytes: &[u8]) -> Vec<u8> {
    let mut out = [0u8; 1024];
    let user: &[u8] = if bytes.is_empty() { b"alice" } else { bytes };
    let n = match op % 8 {
        0 => write_packet(&mut out, EapCode::Response, id, EapType::Identity, user),
        1 => {
            let list: &[u8] = if bytes.is_empty() { &[6, 26] } else { bytes };
            write_packet(&mut out, EapCode::Response, id, EapType::Nak, list)
        }
        2 => Some(mschapv2_response(&mut out, id, peer.ms_id, bytes)),
        // A wrong MS-CHAP-ID.
        3 => Some(mschapv2_response(
            &mut out,
            id,
            peer.ms_id.wrapping_add(1),
            bytes,
        )),
        4 => write_packet(&mut out, EapCode::Response, id, EapType::Gtc, bytes),
        5 => mschapv2::write_ack(&mut out, id, mschapv2::OP_SUCCESS),
        6 => mschapv2::write_ack(&mut out, id, mschapv2::OP_FAILURE),
        _ => {
            let result = if bytes.first().is_some_and(|b| b & 1 == 1) {
                TlvResult::Failure
            } else {
                TlvResult::Success
            };
            peap::write_result(&mut out, EapCode::Response, id, result)
        }
    };
    out[..n.unwrap_or(0)].to_vec()
}

/// The plaintext operation `op` puts in the tunnel, from `bytes`.
fn plaintext(peer: &Peer, method: Method, outer_id: u8, op: u8, bytes: &[u8]) -> Vec<u8> {
    // Raw octets, whatever they are.
    if op & 0x0f == 0x0f {
        return bytes.to_vec();
    }
    match method {
        Method::Peap => {
            let packet = inner_packet(peer, outer_id, op, bytes);
            // PEAPv0: header-less, except the Type-33 packets (`without_header` knows).
            peap::without_header(&packet).to_vec()
        }
        _ => {
            let mut out = vec![0u8; 2048];
            let mut at = 0;
            let mut avp = |out: &mut Vec<u8>, c: u32, v: Option<u32>, m: bool, d: &[u8]| {
                at += ttls::write_avp(&mut out[at..], c, v, m, d).unwrap_or(0);
            };
            let user: &[u8] = if bytes.is_empty() { b"alice" } else { bytes };
            match op % 8 {
                // PAP.
                0 => {
                    avp(&mut out, code::USER_NAME, None, true, b"alice");
                    avp(&mut out, code::USER_PASSWORD, None, true, bytes);
                }
                // A User-Password alone (the answer to a Reply-Message).
                1 => avp(&mut out, code::USER_PASSWORD, None, true, user),
                // MS-CHAPv2 AVPs with the implicit challenge the TLS keys give.
                2 | 3 => {
                    let mut ch = [0u8; 17];
                    if peer
                        .conn
                        .export_keying_material(&mut ch, b"ttls challenge", None)
                        .is_err()
                    {
                        return Vec::new();
                    }
                    if op % 8 == 3 {
                        ch[bytes.first().map_or(0, |&b| usize::from(b % 17))] ^= 1;
                    }
                    let mut resp = [0u8; 50];
                    resp[0] = ch[16];
                    let n = bytes.len().min(49);
                    resp[1..=n].copy_from_slice(&bytes[..n]);
                    avp(&mut out, code::USER_NAME, None, true, b"alice");
                    avp(
                        &mut out,
                        code::MS_CHAP_CHALLENGE,
                        Some(VENDOR_MICROSOFT),
                        true,
                        &ch[..16],
                    );
                    avp(
                        &mut out,
                        code::MS_CHAP2_RESPONSE,
                        Some(VENDOR_MICROSOFT),
                        true,
                        &resp,
                    );
                }
                // An unknown mandatory AVP, or a non-mandatory one before a User-Name alone.
                4 => {
                    let c = u32::from(bytes.first().copied().unwrap_or(200)) + 100;
                    avp(&mut out, c, None, op & 0x10 != 0, bytes);
                    avp(&mut out, code::USER_NAME, None, true, user);
                }
                // EAP-Message: the inner packet the next operation bits pick.
                _ => {
                    let packet = inner_packet(peer, peer.inner_id, op >> 4, bytes);
                    avp(&mut out, code::EAP_MESSAGE, None, true, &packet);
                }
            }
            out.truncate(at);
            out
        }
    }
}

/// The inner login's answer the input picks.
fn inner_result(choice: u8, cred: &InnerCredential) -> InnerResult<'static> {
    let pending = |nt_key: Option<NtKey>| Pending {
        mfa_user: "alice".to_string(),
        groups: vec!["staff".to_string()],
        source: AuthSource::Local,
        method: Some(match cred {
            InnerCredential::MsChapV2(_) => Method::MsChapV2,
            _ => Method::Pap,
        }),
        transaction_id: None,
        nt_key,
        certificate: None,
    };
    match choice % 4 {
        0 => InnerResult::Accepted(pending(Some(NtKey([0x41; 16])))),
        1 => InnerResult::Accepted(pending(None)),
        2 => InnerResult::Code {
            state: [0; STATE_LEN],
            prompt: "code",
        },
        _ => InnerResult::Refused(RejectReason::BadPassword),
    }
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let mut input = Input(data);
    let Some(first) = input.byte() else {
        return;
    };
    let method = if first & 1 == 0 {
        Method::Peap
    } else {
        Method::Ttls
    };
    let ty = if method == Method::Peap {
        EapType::Peap
    } else {
        EapType::Ttls
    };
    let config = if first & 2 == 0 { &f.tls13 } else { &f.tls12 };
    // Our fragments: 1400 octets mostly, smaller ones sometimes; the server's are 1024.
    let fragment = [1400, 1400, 1400, 300, 600, 1024, 100, 2000][usize::from(first >> 2 & 7)];
    let conn = ClientConnection::new(config.clone(), "radius.test".try_into().expect("name"))
        .expect("client");
    let mut peer = Peer {
        conn,
        inbound: Vec::new(),
        outbound: Vec::new(),
        sent: 0,
        fragment,
        last_records: Vec::new(),
        inner_seen: 0,
        inner_id: 0,
        ms_id: 0,
    };
    peer.flush(); // the ClientHello
    let mut s = EapSession::new(method, b"anonymous", 1, 1024);
    let mut out = [0u8; 4096];
    let mut resp = [0u8; 4096];
    let mut requests = 0usize;
    let mut inner_accepted = false;
    // A record split by the input: the fragment size for it.
    let mut split: Option<usize> = None;
    loop {
        // Our request.
        let n = s.write_request(&mut out);
        requests += 1;
        assert!(requests <= usize::from(MAX_ROUNDS), "past the round bound");
        assert!(n > 0, "our request did not fit");
        let p = EapPacket::parse(&out[..n]).expect("our request parses");
        assert_eq!(p.code(), EapCode::Request);
        assert_eq!(p.identifier(), s.id);
        assert_eq!(p.eap_type(), Some(ty), "a request of another method");
        let frag = TlsFragment::parse(p.type_data()).expect("our request's TLS header");
        let id = s.id;

        // The peer's answer.
        let len = if !frag.data.is_empty() {
            peer.inbound.extend_from_slice(frag.data);
            if frag.more() {
                write_fragment(&mut resp, EapCode::Response, id, ty, 0, None, &[])
            } else if !peer.absorb(method) {
                return;
            } else {
                None
            }
        } else {
            None
        };
        let len = match len {
            Some(l) => Some(l),
            None if peer.has_output() => {
                let max = split.take().unwrap_or(peer.fragment);
                let (fl, total, d) = peer.next_fragment(max);
                write_fragment(&mut resp, EapCode::Response, id, ty, fl, total, d)
            }
            // Handshaking, or PEAP before the inner Identity request: acknowledge.
            None if peer.conn.is_handshaking()
                || (method == Method::Peap && peer.inner_seen == 0) =>
            {
                write_fragment(&mut resp, EapCode::Response, id, ty, 0, None, &[])
            }
            // Phase 2: the input's next chunk.
            None => {
                let Some(op) = input.byte() else { return };
                let k = usize::from(input.byte().unwrap_or(0));
                let bytes = input.take(k);
                match op >> 6 {
                    // Acknowledge instead of answering.
                    3 if op & 0x20 != 0 => {
                        write_fragment(&mut resp, EapCode::Response, id, ty, 0, None, &[])
                    }
                    // Replay our last records (or, with nothing sent yet, the raw octets
                    // as TLS data).
                    3 => {
                        let d = if peer.last_records.is_empty() {
                            bytes.to_vec()
                        } else {
                            peer.last_records.clone()
                        };
                        write_fragment(&mut resp, EapCode::Response, id, ty, 0, None, &d)
                    }
                    mode => {
                        let plain = plaintext(&peer, method, id, op, bytes);
                        peer.send(&plain);
                        // Two messages in one flight: the next chunk's too.
                        if mode == 2 && op & 0x20 != 0 {
                            if let Some(op2) = input.byte() {
                                let k2 = usize::from(input.byte().unwrap_or(0));
                                let b2 = input.take(k2);
                                let plain = plaintext(&peer, method, id, op2 & 0x3f, b2);
                                peer.send(&plain);
                            }
                        }
                        let total = peer.outbound.len() - peer.sent;
                        // Split in two fragments.
                        let max = if mode == 1 {
                            (total / 2).max(1)
                        } else {
                            peer.fragment
                        };
                        if mode == 1 {
                            split = Some(max);
                        }
                        let (fl, tl, d) = peer.next_fragment(max);
                        write_fragment(&mut resp, EapCode::Response, id, ty, fl, tl, d)
                    }
                }
            }
        };
        let Some(len) = len else { return };
        let pkt = EapPacket::parse(&resp[..len]).expect("our response parses");
        let mut round = s.respond(&pkt, &f.svc, NOW);
        if requests >= usize::from(MAX_ROUNDS) {
            assert!(
                matches!(round, Round::Reject(_)),
                "a round past the bound was not rejected"
            );
        }
        loop {
            match round {
                Round::Handshake => {
                    s.handshake();
                    round = s.after_tls(&f.svc, NOW);
                }
                Round::Inner(cred) => {
                    if matches!(cred, InnerCredential::Code(_)) {
                        assert_eq!(s.stage, Stage::InnerCode, "a code outside the code round");
                    }
                    let result = inner_result(input.byte().unwrap_or(0), &cred);
                    // The last inner login's answer is what an Accept rests on.
                    inner_accepted = matches!(result, InnerResult::Accepted(_));
                    round = s.inner_done(result);
                }
                Round::Send => break,
                Round::Accept => {
                    assert!(inner_accepted, "an Accept without an accepted inner login");
                    assert!(s.authorized.is_some(), "an Accept without who");
                    assert!(s.msk().is_some(), "an Accept without keys");
                    return;
                }
                Round::Reject(_) => return,
            }
        }
    }
});
