//! EAP through the pipeline with no sockets, for the tests that need it: a server built from
//! a config text (its runtime, secret and test PKI), one Access-Request decided to its reply with
//! the handshake jobs run in place of the workers, and a whole login by the load generator's
//! in-memory supplicant, its MPPE keys checked.

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

use super::SECRET;

pub struct Server {
    pub rt: Runtime,
    pub secret: Secret,
    /// The configuration it was built from (a reload builds it again).
    pub config: Config,
    /// The test PKI (`radshard certs`), beside the config.
    pub dir: tempfile::TempDir,
    /// `[sql] ip_pool`: leases asked for (each answered 10.9.9.9) and the last reply.
    pub leases: std::cell::Cell<u32>,
    pub last_reply: std::cell::RefCell<Vec<u8>>,
}

impl Server {
    /// A server for the client `ap` (127.0.0.1, [`SECRET`]) and what `body` writes for the
    /// directory holding the test PKI: users, `[eap]`, `[mfa]`, … The built-in TOTP's store is
    /// started (it needs no provider).
    pub fn build(body: impl FnOnce(&Path) -> String) -> Server {
        let dir = tempfile::tempdir().expect("dir");
        radshard::tls::pki::write_test_pki(dir.path(), Default::default(), false).expect("PKI");
        let text = format!(
            "[[clients]]\nname = \"ap\"\naddresses = [\"127.0.0.1\"]\nsecret = \"{SECRET}\"\n{}",
            body(dir.path())
        );
        let config = Config::from_str(&text, &dir.path().join("t.toml"), None).expect("config");
        let mut rt = Runtime::build(&config).expect("runtime");
        rt.mfa = config
            .mfa
            .clone()
            .map(|m| radshard::backend::mfa::Mfa::new(m, None).expect("mfa"));
        Server {
            rt,
            secret: Secret::new(SECRET).expect("secret"),
            config,
            dir,
            leases: Default::default(),
            last_reply: Default::default(),
        }
    }

    /// Where the test PKI is.
    pub fn certs(&self) -> &Path {
        self.dir.path()
    }
}

/// The load generator's client set-up for `method` against the test PKI in `certs`.
/// `resume_shared`: one client session cache for every login, so the next login resumes.
pub fn setup(
    method: Method,
    certs: &Path,
    tls: TlsVersion,
    resume_shared: bool,
    fragment: usize,
) -> Setup {
    let args = EapArgs {
        ca: Some(certs.join("ca.pem")),
        server_name: "radius.test".into(),
        client_cert: Some(certs.join("client.pem")),
        client_key: Some(certs.join("client.key")),
        tls_version: tls,
        resume: false,
        resume_shared,
        eap_fragment: fragment,
        outer_identity: None,
    };
    Setup::new(method, &args).expect("client setup")
}

/// The server's reply to one request, and the request's authenticator (the MPPE keys are
/// hidden with it).
pub struct Answer {
    pub code: Code,
    pub reply: Vec<u8>,
    pub authenticator: [u8; 16],
}

impl Answer {
    pub fn packet(&self) -> Packet<'_> {
        Packet::parse(&self.reply).expect("reply parses")
    }

    pub fn attr(&self, typ: u8) -> Option<Vec<u8>> {
        let p = self.packet();
        let v = p
            .attributes()
            .find(|a| a.typ == typ)
            .map(|a| a.value.to_vec());
        v
    }

    pub fn eap(&self) -> Vec<u8> {
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
    pub fn round(&self, user: &[u8], eap: &[u8], state: Option<&[u8]>) -> Answer {
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
                        Job::Lease(_) => {
                            use radshard::backend::sql::ippool::{Framed, Lease};
                            self.leases.set(self.leases.get() + 1);
                            JobResult::Leased(Lease::Leased(Framed::V4([10, 9, 9, 9].into())))
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
        *self.last_reply.borrow_mut() = reply.clone();
        Answer {
            code: decision.code(),
            reply,
            authenticator,
        }
    }
}

/// A whole login: the answers until Accept or Reject, and the rounds it took.
pub fn login(
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
        code: None,
    };
    login_with(srv, setup, conv, &creds)
}

/// [`login`] with `creds` as they are (a one-time code, say).
pub fn login_with(
    srv: &Server,
    setup: &Setup,
    conv: &mut Conversation,
    creds: &Credentials,
) -> (Code, u32, bool) {
    let user = std::str::from_utf8(&creds.name).expect("utf-8 name");
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
                    .on_request(setup, creds, user.as_bytes(), &mut rng, &req, &mut out)
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
