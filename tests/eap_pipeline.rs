//! EAP through the pipeline with no sockets: an in-memory rustls supplicant (the load
//! generator's conversation) against `auth::start` / `auth::resume`, the handshake jobs run in
//! place of the workers. Every method on TLS 1.2 and 1.3, resumption skipping the inner login,
//! MPPE keys checked; fragments replayed, skipped or from a spent round are refused cleanly.

use std::path::Path;
use std::time::Instant;

use radshard::auth::credential::PasswordBuf;
use radshard::auth::{self, Job, JobResult, Now, Request, Step};
use radshard::bench::eap::args::{EapArgs, TlsVersion};
use radshard::bench::eap::conversation::{Conversation, Credentials};
use radshard::bench::eap::keys::{check_mppe, KeyCheck};
use radshard::bench::eap::peap::NtHashes;
use radshard::bench::eap::setup::{Method, Setup};
use radshard::config::Config;
use radshard::dataplane::runtime::Runtime;
use radshard::proto::eap::{EapPacket, MAX_EAP_LEN};
use radshard::proto::{attr, verify_request, Code, Packet, PacketBuilder, Secret};

const SECRET: &str = "testing123";

struct Server {
    rt: Runtime,
    secret: Secret,
    _dir: tempfile::TempDir,
}

fn server() -> (Server, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("dir");
    radshard::tls::pki::write_test_pki(dir.path(), Default::default(), false).expect("PKI");
    let d = dir.path().display();
    let text = format!(
        "[[clients]]\nname = \"ap\"\naddresses = [\"127.0.0.1\"]\nsecret = \"{SECRET}\"\n\
         [[users]]\nname = \"alice\"\npassword = \"alice-pw\"\n\
         [eap]\nmethods = [\"peap\", \"ttls\", \"eap-tls\"]\nfragment_size = 300\n\
         [eap.tls]\ncertificate = \"{d}/server.pem\"\nprivate_key = \"{d}/server.key\"\nca = \"{d}/ca.pem\"\n"
    );
    let config = Config::from_str(&text, &dir.path().join("t.toml"), None).expect("config");
    let rt = Runtime::build(&config).expect("runtime");
    let path = dir.path().to_path_buf();
    (
        Server {
            rt,
            secret: Secret::new(SECRET).expect("secret"),
            _dir: dir,
        },
        path,
    )
}

fn setup(method: Method, certs: &Path, tls: TlsVersion, resume: bool) -> Setup {
    let args = EapArgs {
        ca: Some(certs.join("ca.pem")),
        server_name: "radius.test".into(),
        client_cert: Some(certs.join("client.pem")),
        client_key: Some(certs.join("client.key")),
        tls_version: tls,
        resume: false,
        // One client session cache for every login of the test: the next login resumes.
        resume_shared: resume,
        eap_fragment: 200,
        outer_identity: None,
    };
    Setup::new(method, &args).expect("client setup")
}

/// The server's reply to one request, and the request's authenticator (the MPPE keys are
/// hidden with it).
struct Answer {
    code: Code,
    reply: Vec<u8>,
    authenticator: [u8; 16],
}

impl Answer {
    fn packet(&self) -> Packet<'_> {
        Packet::parse(&self.reply).expect("reply parses")
    }

    fn attr(&self, typ: u8) -> Option<Vec<u8>> {
        let p = self.packet();
        let v = p
            .attributes()
            .find(|a| a.typ == typ)
            .map(|a| a.value.to_vec());
        v
    }

    fn eap(&self) -> Vec<u8> {
        let p = self.packet();
        let mut eap = Vec::new();
        for a in p.attributes().filter(|a| a.typ == attr::EAP_MESSAGE) {
            eap.extend_from_slice(a.value);
        }
        eap
    }
}

impl Server {
    /// One Access-Request carrying `eap` (and `state`), decided to its reply, jobs done in
    /// place (the handshake step as a worker would run it).
    fn round(&self, user: &[u8], eap: &[u8], state: Option<&[u8]>) -> Answer {
        let mut buf = [0u8; 4096];
        let authenticator: [u8; 16] = rand::random();
        let mut b = PacketBuilder::request(&mut buf, Code::AccessRequest, 7, &authenticator)
            .expect("header");
        b.message_authenticator().expect("fits");
        b.attr(attr::USER_NAME, user).expect("fits");
        b.eap_message(eap).expect("fits");
        if let Some(s) = state {
            b.attr(attr::STATE, s).expect("fits");
        }
        let datagram = b.finish(&self.secret).expect("signs").to_vec();
        let packet = Packet::parse(&datagram).expect("parses");
        let verified = verify_request(packet, &self.secret, true).expect("verifies");
        let nas = "127.0.0.1:1".parse().expect("addr");
        let r = Request::new(&verified, "ap", None, nas, Instant::now());
        let ctx = self.rt.auth();
        // One buffer per pipeline call: each step borrows its own.
        let mut bufs: Vec<PasswordBuf> = (0..8).map(|_| PasswordBuf::new()).collect();
        let mut bufs = bufs.iter_mut();
        let mut step = auth::start(&ctx, &r, Now::system(), bufs.next().expect("buffer"));
        let decision = loop {
            match step {
                Step::Reply(d) => break d,
                Step::Drop(why) => panic!("dropped: {why:?}"),
                Step::Await(a) => {
                    let result = match a.job {
                        Job::Tls(mut session) => {
                            session.handshake();
                            JobResult::Tls(Some(session))
                        }
                        other => panic!("unexpected job {other:?}"),
                    };
                    let buf = bufs.next().expect("at most one job per round");
                    step = auth::resume(&ctx, &r, a.then, result, Now::system(), buf);
                }
            }
        };
        let mut out = [0u8; 4096];
        let mut rb = PacketBuilder::reply(&mut out, decision.code(), &verified).expect("reply");
        decision.apply(&mut rb, &self.secret).expect("attributes");
        let reply = rb.finish(&self.secret).expect("signs").to_vec();
        Answer {
            code: decision.code(),
            reply,
            authenticator,
        }
    }
}

/// A whole login: the answers until Accept or Reject, and the rounds it took.
fn login(
    srv: &Server,
    setup: &Setup,
    conv: &mut Conversation,
    user: &str,
    password: &str,
) -> (Code, u32, bool) {
    let creds = Credentials {
        name: user.as_bytes().into(),
        password: password.as_bytes().into(),
        hashes: NtHashes::of_password(password.as_bytes()),
    };
    let mut rng = rand::thread_rng();
    let mut out = [0u8; MAX_EAP_LEN];
    let n = conv.begin(user.as_bytes(), &mut out).expect("identity");
    let mut eap = out[..n].to_vec();
    let mut state: Option<Vec<u8>> = None;
    for rounds in 1..=40 {
        let a = srv.round(user.as_bytes(), &eap, state.as_deref());
        match a.code {
            Code::AccessChallenge => {
                let bytes = a.eap();
                let req = EapPacket::parse(&bytes).expect("an EAP-Request");
                let n = conv
                    .on_request(setup, &creds, user.as_bytes(), &mut rng, &req, &mut out)
                    .unwrap_or_else(|e| panic!("client: {e}"));
                eap = out[..n].to_vec();
                state = a.attr(attr::STATE);
            }
            Code::AccessAccept => {
                let bytes = a.eap();
                let success = EapPacket::parse(&bytes).ok();
                let msk = conv
                    .on_accept(setup.method, success.as_ref())
                    .expect("a finished login");
                let keys = check_mppe(&a.packet(), &a.authenticator, &srv.secret, msk);
                assert!(matches!(keys, KeyCheck::Good), "MPPE keys: {keys:?}");
                return (Code::AccessAccept, rounds, conv.resumed());
            }
            other => return (other, rounds, conv.resumed()),
        }
    }
    panic!("no end after 40 rounds");
}

#[test]
fn every_method_on_tls12_and_tls13_with_resumption() {
    let (srv, certs) = server();
    for method in [Method::Peap, Method::TtlsPap, Method::EapTls] {
        for tls in [TlsVersion::Tls12, TlsVersion::Tls13] {
            let setup = setup(method, &certs, tls, true);
            let user = if method == Method::EapTls {
                "alice@example.test"
            } else {
                "alice"
            };
            let mut conv = Conversation::new(setup.slot_config());
            let (code, full_rounds, resumed) = login(&srv, &setup, &mut conv, user, "alice-pw");
            assert_eq!(code, Code::AccessAccept, "{method:?} {tls:?}");
            assert!(!resumed);
            // The client's session cache offers the session again: resumed, fewer rounds
            // (the inner login skipped).
            let mut again = Conversation::new(setup.slot_config());
            let (code, rounds, resumed) = login(&srv, &setup, &mut again, user, "alice-pw");
            assert_eq!(code, Code::AccessAccept, "{method:?} {tls:?} resumed");
            assert!(resumed, "{method:?} {tls:?} resumed");
            assert!(
                rounds < full_rounds,
                "{method:?} {tls:?}: {rounds} vs {full_rounds}"
            );
            println!("{method:?} {tls:?}: {full_rounds} rounds, resumed {rounds}");
        }
    }
    // A wrong inner password is refused.
    let setup = setup(Method::Peap, &certs, TlsVersion::Tls12, false);
    let (code, _, _) = login(
        &srv,
        &setup,
        &mut Conversation::new(setup.slot_config()),
        "alice",
        "nope",
    );
    assert_eq!(code, Code::AccessReject);
}

#[test]
fn replayed_skipped_and_spent_fragments_are_refused() {
    let (srv, certs) = server();
    let setup = setup(Method::Peap, &certs, TlsVersion::Tls12, false);
    let creds = Credentials {
        name: b"alice"[..].into(),
        password: b"alice-pw"[..].into(),
        hashes: NtHashes::of_password(b"alice-pw"),
    };
    let mut rng = rand::thread_rng();
    let mut out = [0u8; MAX_EAP_LEN];
    // Walk a login to its fourth round, keeping every request.
    let mut conv = Conversation::new(setup.slot_config());
    let n = conv.begin(b"alice", &mut out).expect("identity");
    let mut sent: Vec<(Vec<u8>, Option<Vec<u8>>)> = vec![(out[..n].to_vec(), None)];
    for _ in 0..4 {
        let (eap, state) = sent.last().expect("a request").clone();
        let a = srv.round(b"alice", &eap, state.as_deref());
        assert_eq!(a.code, Code::AccessChallenge);
        let bytes = a.eap();
        let req = EapPacket::parse(&bytes).expect("request");
        let n = conv
            .on_request(&setup, &creds, b"alice", &mut rng, &req, &mut out)
            .expect("client");
        sent.push((out[..n].to_vec(), a.attr(attr::STATE)));
    }
    // A spent round (its State used): refused, not replayed into the conversation.
    let (eap, state) = sent[2].clone();
    let a = srv.round(b"alice", &eap, state.as_deref());
    assert_eq!(a.code, Code::AccessReject, "a State is single use");
    // The current round but an earlier fragment (its identifier is stale): refused.
    let (_, state) = sent[4].clone();
    let a = srv.round(b"alice", &sent[3].0, state.as_deref());
    assert_eq!(
        a.code,
        Code::AccessReject,
        "an old fragment under a fresh State"
    );
    let eap_failure = a.eap();
    assert_eq!(eap_failure.first(), Some(&4), "with EAP-Failure");
    // That conversation is over; a new one still logs in.
    let (code, _, _) = login(
        &srv,
        &setup,
        &mut Conversation::new(setup.slot_config()),
        "alice",
        "alice-pw",
    );
    assert_eq!(code, Code::AccessAccept);
    // A fragment skipped (the ClientHello's second part never sent, the third one instead)
    // breaks the TLS message: refused, no panic.
    let setup_small = setup_with_fragment(Method::Peap, &certs, 64);
    let mut conv = Conversation::new(setup_small.slot_config());
    let n = conv.begin(b"alice", &mut out).expect("identity");
    let a = srv.round(b"alice", &out[..n], None);
    let bytes = a.eap();
    let start = EapPacket::parse(&bytes).expect("start");
    let n = conv
        .on_request(&setup_small, &creds, b"alice", &mut rng, &start, &mut out)
        .expect("hello, first fragment");
    let first = out[..n].to_vec();
    let a = srv.round(b"alice", &first, a.attr(attr::STATE).as_deref());
    assert_eq!(a.code, Code::AccessChallenge, "an acknowledgement");
    // Send the first fragment again in place of the second: reassembled, it is no longer a
    // ClientHello of its stated length.
    let mut dup = first.clone();
    dup[1] = EapPacket::parse(&a.eap()).expect("ack").identifier();
    let mut n_rounds = 0;
    let mut state = a.attr(attr::STATE);
    let mut code = Code::AccessChallenge;
    while code == Code::AccessChallenge && n_rounds < 20 {
        let a = srv.round(b"alice", &dup, state.as_deref());
        code = a.code;
        if code == Code::AccessChallenge {
            dup[1] = EapPacket::parse(&a.eap()).expect("ack").identifier();
            state = a.attr(attr::STATE);
        }
        n_rounds += 1;
    }
    assert_eq!(
        code,
        Code::AccessReject,
        "a corrupted hello ends the conversation"
    );
}

fn setup_with_fragment(method: Method, certs: &Path, fragment: usize) -> Setup {
    let args = EapArgs {
        ca: Some(certs.join("ca.pem")),
        server_name: "radius.test".into(),
        client_cert: None,
        client_key: None,
        tls_version: TlsVersion::Tls12,
        resume: false,
        resume_shared: false,
        eap_fragment: fragment,
        outer_identity: None,
    };
    Setup::new(method, &args).expect("client setup")
}
