//! EAP through the pipeline with no sockets: an in-memory rustls supplicant (the load
//! generator's conversation) against `auth::start` / `auth::resume`, the handshake jobs run in
//! place of the workers. Every method on TLS 1.2 and 1.3, resumption skipping the inner login,
//! MPPE keys checked; fragments replayed, skipped or from a spent round are refused cleanly.

mod common;

use std::path::{Path, PathBuf};

use common::eap_memory::{self, login, login_with, Server};
use radshard::bench::eap::args::TlsVersion;
use radshard::bench::eap::conversation::{Conversation, Credentials};
use radshard::bench::eap::peap::NtHashes;
use radshard::bench::eap::setup::{Method, Setup};
use radshard::dataplane::runtime::Runtime;
use radshard::proto::eap::{EapPacket, MAX_EAP_LEN};
use radshard::proto::{attr, Code};

fn server() -> (Server, PathBuf) {
    server_with("[[users]]\nname = \"alice\"\npassword = \"alice-pw\"\n")
}

/// A server whose users (and policies, `[mfa]`) are `users`, offering every method in
/// 300-octet fragments; and where its test PKI is.
fn server_with(users: &str) -> (Server, PathBuf) {
    let srv = Server::build(|certs| {
        let d = certs.display();
        format!(
            "{users}[eap]\nmethods = [\"peap\", \"ttls\", \"eap-tls\"]\nfragment_size = 300\n\
             [eap.tls]\ncertificate = \"{d}/server.pem\"\nprivate_key = \"{d}/server.key\"\nca = \"{d}/ca.pem\"\n"
        )
    });
    let certs = srv.certs().to_path_buf();
    (srv, certs)
}

/// The client in 200-octet fragments.
fn setup(method: Method, certs: &Path, tls: TlsVersion, resume: bool) -> Setup {
    eap_memory::setup(method, certs, tls, resume, 200)
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
            if method == Method::EapTls {
                // Resumed from the server's cache, not a ticket carrying the client's
                // certificates: no kilobyte of ticket each way, in fragments.
                assert!(
                    2 * rounds < full_rounds,
                    "{tls:?}: resumed EAP-TLS took {rounds} rounds, a full one {full_rounds}"
                );
            }
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
        code: None,
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
    eap_memory::setup(method, certs, TlsVersion::Tls12, false, fragment)
}

/// TTLS-PAP under a policy wanting a one-time code: after the password the server sends a
/// Reply-Message AVP inside the tunnel (RFC 5281 §11.2.5) and the next User-Password is the
/// TOTP code. A wrong code, or none, is refused; the good one is accepted once only.
#[test]
fn ttls_pap_answers_a_reply_message_with_the_code() {
    use radshard::backend::mfa::totp::TotpSecret;
    const SEED: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
    let users = format!(
        "[[users]]\nname = \"alice\"\npassword = \"alice-pw\"\ntotp_secret = \"{SEED}\"\ngroups = [\"staff\"]\n\
         [[policies]]\nname = \"code\"\ngroups = [\"staff\"]\nauth_methods = [\"ttls\"]\nmfa = true\n\
         [mfa]\nprovider = \"totp\"\n"
    );
    let (srv, certs) = server_with(&users);
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let good = TotpSecret::from_base32(SEED)
        .expect("seed")
        .code_at_step(unix / 30, 6);
    let creds = |code: Option<String>| Credentials {
        name: b"alice"[..].into(),
        password: b"alice-pw"[..].into(),
        hashes: None,
        code: code.map(|c| c.into_bytes().into_boxed_slice()),
    };
    for tls in [TlsVersion::Tls12, TlsVersion::Tls13] {
        let setup = setup(Method::TtlsPap, &certs, tls, false);
        let mut conv = Conversation::new(setup.slot_config());
        let wrong = format!("{:06}", (good + 1) % 1_000_000);
        let (code, _, _) = login_with(&srv, &setup, &mut conv, &creds(Some(wrong)));
        assert_eq!(code, Code::AccessReject, "{tls:?}: a wrong code");
    }
    let setup = setup(Method::TtlsPap, &certs, TlsVersion::Tls12, false);
    let mut conv = Conversation::new(setup.slot_config());
    let (code, rounds, _) = login_with(&srv, &setup, &mut conv, &creds(Some(format!("{good:06}"))));
    assert_eq!(code, Code::AccessAccept, "the code");
    // The same code again is a replay (TOTP codes are single use).
    let mut conv = Conversation::new(setup.slot_config());
    let (again, _, _) = login_with(&srv, &setup, &mut conv, &creds(Some(format!("{good:06}"))));
    assert_eq!(again, Code::AccessReject, "the code replayed");
    println!("TTLS-PAP with a code: {rounds} rounds");
}

/// A reload (the runtime built again from the config, as `ServerHandle::reload` does) keeps
/// the TLS sessions: a session made before it resumes after it, skipping the inner login. A
/// runtime built afresh (a restart) does not know the session: a full handshake.
#[test]
fn sessions_resume_across_a_reload() {
    let (mut srv, certs) = server();
    for (method, user) in [
        (Method::Peap, "alice"),
        (Method::EapTls, "alice@example.test"),
    ] {
        let setup = setup(method, &certs, TlsVersion::Tls12, true);
        let mut conv = Conversation::new(setup.slot_config());
        let (code, _, resumed) = login(&srv, &setup, &mut conv, user, "alice-pw");
        assert_eq!((code, resumed), (Code::AccessAccept, false), "{method:?}");

        let mut reloaded = Runtime::build(&srv.config).expect("runtime");
        reloaded.continue_from(&srv.rt);
        srv.rt = reloaded;
        let mut again = Conversation::new(setup.slot_config());
        let (code, _, resumed) = login(&srv, &setup, &mut again, user, "alice-pw");
        assert_eq!(
            (code, resumed),
            (Code::AccessAccept, true),
            "{method:?} after a reload"
        );

        srv.rt = Runtime::build(&srv.config).expect("runtime");
        let mut fresh = Conversation::new(setup.slot_config());
        let (code, _, resumed) = login(&srv, &setup, &mut fresh, user, "alice-pw");
        assert_eq!(
            (code, resumed),
            (Code::AccessAccept, false),
            "{method:?} after a restart"
        );
    }
}

/// `[sql] ip_pool`: the final Accept of an EAP conversation waits for its lease (scripted
/// here: no database) and carries the address beside valid MPPE keys; the challenges and an
/// inner login never ask for one.
#[test]
fn the_final_eap_accept_gets_a_leased_address() {
    let (mut srv, certs) = server_with(
        "[[users]]\nname = \"alice\"\npassword = \"alice-pw\"\n\
         [backend]\ndeadline = \"3s\"\n\
         [sql]\nserver = \"127.0.0.1\"\ndatabase = \"radius\"\nlogin = \"radius\"\nusers = false\n\
         ip_pool = { name = \"main\" }\n",
    );
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let sql = srv.config.sql.clone().expect("[sql]");
    srv.rt.sql = Some(std::sync::Arc::new(radshard::backend::sql::SqlStore::new(
        sql,
        tokio.handle().clone(),
        16,
    )));
    for method in [Method::Peap, Method::TtlsPap] {
        let before = srv.leases.get();
        let setup = setup(method, &certs, TlsVersion::Tls12, false);
        let mut conv = Conversation::new(setup.slot_config());
        let (code, _, _) = login(&srv, &setup, &mut conv, "alice", "alice-pw");
        assert_eq!(code, Code::AccessAccept, "{method:?}");
        assert_eq!(
            srv.leases.get(),
            before + 1,
            "{method:?}: one lease, at the end"
        );
        let reply = srv.last_reply.borrow().clone();
        let p = radshard::proto::Packet::parse(&reply).expect("reply");
        assert_eq!(p.attr(attr::FRAMED_IP_ADDRESS), Some(&[10, 9, 9, 9][..]));
    }
}
