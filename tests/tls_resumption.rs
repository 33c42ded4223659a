//! `tls::resumption::processing` on in-memory handshakes (rustls client ↔ server over a byte
//! buffer, no sockets): a resumed session reports the token of the connection that made it,
//! on TLS 1.2 by ticket and by session ID and on TLS 1.3; a full handshake reports none; and
//! connections processed at the same time on two threads keep their tokens apart.

use std::path::Path;
use std::sync::{Arc, Barrier};

use radshard::tls::pki::{self, KeyKind};
use radshard::tls::resumption::processing;
use radshard::tls::{ServerTls, TlsSettings, TlsVersion};
use rustls::client::{Resumption, Tls12Resumption};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, HandshakeKind, RootCertStore, ServerConnection};

const A: [u8; 16] = [0xa; 16];
const B: [u8; 16] = [0xb; 16];

fn pki_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    pki::write_test_pki(dir.path(), KeyKind::Ecdsa, false).expect("write_test_pki");
    dir
}

fn server(dir: &Path) -> Arc<rustls::ServerConfig> {
    let s = TlsSettings::new(dir.join("server.pem"), dir.join("server.key"));
    ServerTls::build(&s).expect("build").tunnel
}

/// A client with its own session store, so each resumes only its own sessions.
fn client(dir: &Path, v: TlsVersion, tickets: bool) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(dir.join("ca.pem")).expect("ca.pem") {
        roots.add(c.expect("ca cert")).expect("root");
    }
    let version = match v {
        TlsVersion::V1_2 => &rustls::version::TLS12,
        TlsVersion::V1_3 => &rustls::version::TLS13,
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut c = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[version])
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    if !tickets {
        c.resumption = Resumption::default().tls12_resumption(Tls12Resumption::SessionIdOnly);
    }
    Arc::new(c)
}

/// One handshake in progress, the server side under `token`, as the EAP core will drive it.
struct Pair {
    c: ClientConnection,
    s: ServerConnection,
    token: [u8; 16],
    /// What `processing` reported, from the call that reported something.
    resumed: Option<[u8; 16]>,
    buf: Vec<u8>,
}

impl Pair {
    fn new(
        client: &Arc<ClientConfig>,
        server: &Arc<rustls::ServerConfig>,
        token: [u8; 16],
    ) -> Pair {
        let name = ServerName::try_from(pki::SERVER_NAME).expect("name");
        let mut s = ServerConnection::new(server.clone()).expect("server");
        s.set_resumption_data(&token);
        Pair {
            c: ClientConnection::new(client.clone(), name).expect("client"),
            s,
            token,
            resumed: None,
            buf: Vec::new(),
        }
    }

    /// Moves what each side has to say once each way; false once both are done and quiet.
    fn step(&mut self) -> bool {
        let mut moved = false;
        while self.c.wants_write() {
            self.buf.clear();
            self.c.write_tls(&mut self.buf).expect("client write");
            self.s.read_tls(&mut &self.buf[..]).expect("server read");
            let s = &mut self.s;
            let (r, resumed) = processing(&self.token, || s.process_new_packets().map(|_| ()));
            r.expect("server process");
            if resumed.is_some() {
                assert_eq!(self.resumed, None, "reported twice");
                self.resumed = resumed;
            }
            moved = true;
        }
        while self.s.wants_write() {
            self.buf.clear();
            self.s.write_tls(&mut self.buf).expect("server write");
            self.c.read_tls(&mut &self.buf[..]).expect("client read");
            self.c.process_new_packets().expect("client process");
            moved = true;
        }
        moved || self.c.is_handshaking() || self.s.is_handshaking()
    }

    /// Runs the handshake to its end (tickets included); 20 rounds is plenty.
    fn finish(mut self) -> Pair {
        for _ in 0..20 {
            if !self.step() {
                return self;
            }
        }
        panic!("handshake did not finish in 20 rounds");
    }
}

fn full_then_resumed(v: TlsVersion, tickets: bool) {
    let dir = pki_dir();
    let server = server(dir.path());
    let client = client(dir.path(), v, tickets);
    let first = Pair::new(&client, &server, A).finish();
    assert_eq!(first.s.handshake_kind(), Some(HandshakeKind::Full));
    assert_eq!(first.resumed, None, "a full handshake resumes nothing");

    let second = Pair::new(&client, &server, B).finish();
    assert_eq!(second.s.handshake_kind(), Some(HandshakeKind::Resumed));
    assert_eq!(second.resumed, Some(A));
    if v == TlsVersion::V1_3 {
        assert_eq!(second.s.received_resumption_data(), Some(&A[..]));
    }
}

#[test]
fn tls12_ticket_resumption_reports_the_first_token() {
    full_then_resumed(TlsVersion::V1_2, true);
}

#[test]
fn tls12_session_id_resumption_reports_the_first_token() {
    full_then_resumed(TlsVersion::V1_2, false);
}

#[test]
fn tls13_resumption_reports_the_first_token() {
    full_then_resumed(TlsVersion::V1_3, true);
}

#[test]
fn a_chain_of_resumptions_reports_the_previous_token() {
    // A ticket issued on a resumed TLS 1.2 connection carries that connection's token, as
    // rustls does on TLS 1.3: the caller maps B to A's authorization, then C to B's.
    let dir = pki_dir();
    let server = server(dir.path());
    let client = client(dir.path(), TlsVersion::V1_2, true);
    Pair::new(&client, &server, A).finish();
    assert_eq!(Pair::new(&client, &server, B).finish().resumed, Some(A));
    let third = Pair::new(&client, &server, [0xc; 16]).finish();
    assert_eq!(third.s.handshake_kind(), Some(HandshakeKind::Resumed));
    assert_eq!(third.resumed, Some(B));
}

#[test]
fn another_servers_session_is_not_resumed_and_reports_nothing() {
    // A second ServerTls: its own cache and ticket keys, so the client's session is unknown.
    let dir = pki_dir();
    let first = server(dir.path());
    let other = server(dir.path());
    for (v, tickets) in [
        (TlsVersion::V1_2, true),
        (TlsVersion::V1_2, false),
        (TlsVersion::V1_3, true),
    ] {
        let client = client(dir.path(), v, tickets);
        Pair::new(&client, &first, A).finish();
        let p = Pair::new(&client, &other, B).finish();
        assert_eq!(p.s.handshake_kind(), Some(HandshakeKind::Full), "TLS {v}");
        assert_eq!(p.resumed, None, "TLS {v} tickets {tickets}");
    }
}

#[test]
fn two_threads_keep_their_tokens_apart() {
    let dir = pki_dir();
    let server = server(dir.path());
    let cases = [
        (TlsVersion::V1_2, true),
        (TlsVersion::V1_2, false),
        (TlsVersion::V1_3, true),
    ];
    for (v, tickets) in cases {
        // Two clients, each with a session of its own under its own token.
        let clients = [
            client(dir.path(), v, tickets),
            client(dir.path(), v, tickets),
        ];
        let made = [[1u8; 16], [2u8; 16]];
        for (c, t) in clients.iter().zip(made) {
            Pair::new(c, &server, t).finish();
        }
        // Both resume at once, stepping in lockstep so their server calls interleave.
        let barrier = Arc::new(Barrier::new(2));
        let threads: Vec<_> = clients
            .into_iter()
            .zip([[3u8; 16], [4u8; 16]])
            .map(|(c, t)| {
                let (server, barrier) = (server.clone(), barrier.clone());
                std::thread::spawn(move || {
                    let mut p = Pair::new(&c, &server, t);
                    // Every thread runs the same number of rounds, so the barrier never
                    // waits for one that has finished.
                    for _ in 0..20 {
                        barrier.wait();
                        p.step();
                    }
                    assert!(!p.s.is_handshaking());
                    (p.s.handshake_kind(), p.resumed)
                })
            })
            .collect();
        let got: Vec<_> = threads
            .into_iter()
            .map(|t| t.join().expect("thread"))
            .collect();
        let resumed = Some(HandshakeKind::Resumed);
        assert_eq!(
            got,
            [(resumed, Some(made[0])), (resumed, Some(made[1]))],
            "TLS {v} tickets {tickets}"
        );
    }
}

#[test]
fn interleaved_connections_on_one_thread_keep_their_tokens_apart() {
    let dir = pki_dir();
    let server = server(dir.path());
    let clients = [
        client(dir.path(), TlsVersion::V1_2, false),
        client(dir.path(), TlsVersion::V1_2, true),
    ];
    Pair::new(&clients[0], &server, [1; 16]).finish();
    Pair::new(&clients[1], &server, [2; 16]).finish();
    let mut x = Pair::new(&clients[0], &server, [3; 16]);
    let mut y = Pair::new(&clients[1], &server, [4; 16]);
    for _ in 0..20 {
        x.step();
        y.step();
    }
    assert_eq!((x.resumed, y.resumed), (Some([1; 16]), Some([2; 16])));
}
