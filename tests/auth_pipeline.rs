//! The sans-IO authentication pipeline (`radshard::auth::{start, resume}`) driven directly,
//! without sockets: every case builds a signed Access-Request, feeds it to the pipeline with
//! a fake clock (fixed instants and Unix seconds, advanced by hand, never slept), answers
//! each `Step::Await` with a scripted job result as the shard's driver would (slow hash,
//! directory bind, push, privacyIDEA trigger or check) and checks the final `Step`: the
//! decision's outcome, policy, source and method, and the attributes of the reply built from
//! it. Multi-round cases (challenge, follow-up) carry the State from one round to the next.
//!
//! Every case gets fresh runtimes (so used TOTP steps and pending challenges never leak from
//! one case to another); HTTP providers point at a loopback URL that is never contacted.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use md5::{Digest, Md5};
use radshard::auth::credential::PasswordBuf;
use radshard::auth::{
    self, Context, Continuation, DirectorySettings, Job, JobResult, Method, Now, Outcome,
    RejectReason, Reply, Request, Step, Waiver,
};
use radshard::backend::mfa::totp::TotpSecret;
use radshard::backend::mfa::{Mfa, PiAnswer, PiError};
use radshard::backend::{Identity as DirIdentity, Outcome as DirOutcome};
use radshard::backend::{Proof, ShedPolicy};
use radshard::config::Config;
use radshard::dataplane::runtime::Runtime;
use radshard::policy::AuthSource;
use radshard::proto::{
    verify_request, verify_response, Code, Packet, PacketBuilder, Secret, CALLING_STATION_ID,
    CHAP_CHALLENGE, CHAP_PASSWORD, CLASS, REPLY_MESSAGE, SESSION_TIMEOUT, STATE,
    TUNNEL_PRIVATE_GROUP_ID, USER_NAME,
};

// ---------------------------------------------------------------------------------------------
// The fake clock and the requests
// ---------------------------------------------------------------------------------------------

const SECRET: &str = "testing123";
/// Unix time of round 0: a multiple of 30, so offsets below 30 s stay in one TOTP step.
const T0: u64 = 1_700_000_010;
/// The RFC 6238 seed "12345678901234567890" in base32 (alice's second factor).
const ALICE_TOTP: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
/// Erin's (a directory user's MFA-only entry).
const ERIN_TOTP: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
const STATION: &str = "02-00-00-00-00-01";
const PROMPT: &str = "Enter your one-time code";

fn secret() -> Secret {
    Secret::new(SECRET).expect("non-empty secret")
}

fn totp_code(secret_b32: &str, unix: u64) -> String {
    let s = TotpSecret::from_base32(secret_b32).expect("valid base32");
    format!("{:06}", s.code_at_step(unix / 30, 6))
}

/// A six-digit code that matches `secret_b32` at no step within ±2 of `unix`.
fn wrong_code(secret_b32: &str, unix: u64) -> String {
    let near: Vec<String> = (0..5)
        .map(|i| totp_code(secret_b32, unix + i * 30 - 60))
        .collect();
    ["000000", "111111", "222222", "333333", "444444", "555555"]
        .into_iter()
        .find(|c| !near.iter().any(|n| n == c))
        .expect("six candidates, five codes")
        .to_string()
}

#[derive(Clone, Copy, Debug)]
enum Cred {
    /// User-Password; `{code}` / `{erin}` become alice's / erin's TOTP code at the round's
    /// time, `{wrong}` a code that is not alice's.
    Pap(&'static str),
    /// CHAP-Password over CHAP-Challenge for this password.
    Chap(&'static str),
    None,
}

/// Which State a follow-up carries.
#[derive(Clone, Copy, Debug)]
enum StateSrc {
    None,
    /// The State of the n-th challenge issued in this case.
    Issued(usize),
    /// That State with one octet flipped.
    Flipped(usize),
    /// A State of the right size that was never issued.
    Forged,
}

#[derive(Clone, Copy, Debug)]
struct Req {
    user: Option<&'static str>,
    cred: Cred,
    client: &'static str,
    client_group: Option<&'static str>,
    state: StateSrc,
    station: Option<&'static str>,
}

fn pap(user: &'static str, password: &'static str) -> Req {
    Req {
        user: Some(user),
        cred: Cred::Pap(password),
        client: "nas",
        client_group: None,
        state: StateSrc::None,
        station: Some(STATION),
    }
}

fn chap(user: &'static str, password: &'static str) -> Req {
    Req {
        cred: Cred::Chap(password),
        ..pap(user, "")
    }
}

impl Req {
    fn from(self, client: &'static str) -> Req {
        Req { client, ..self }
    }
    fn state(self, state: StateSrc) -> Req {
        Req { state, ..self }
    }
    fn no_user(self) -> Req {
        Req { user: None, ..self }
    }
    fn no_credentials(self) -> Req {
        Req {
            cred: Cred::None,
            ..self
        }
    }

    /// The signed Access-Request (Message-Authenticator first) at `unix`.
    fn datagram(&self, states: &[Vec<u8>], unix: u64, id: u8) -> Vec<u8> {
        let s = secret();
        let mut authenticator = [0u8; 16];
        for (i, b) in authenticator.iter_mut().enumerate() {
            *b = id.wrapping_mul(31).wrapping_add(i as u8 * 7 + 1);
        }
        let mut buf = [0u8; 4096];
        let mut b = PacketBuilder::request(&mut buf, Code::AccessRequest, id, &authenticator)
            .expect("header fits");
        b.message_authenticator().expect("fits");
        if let Some(u) = self.user {
            b.attr(USER_NAME, u.as_bytes()).expect("fits");
        }
        match self.cred {
            Cred::Pap(pw) => {
                let pw = pw
                    .replace("{code}", &totp_code(ALICE_TOTP, unix))
                    .replace("{erin}", &totp_code(ERIN_TOTP, unix))
                    .replace("{wrong}", &wrong_code(ALICE_TOTP, unix));
                b.user_password(&s, pw.as_bytes()).expect("fits");
            }
            Cred::Chap(pw) => {
                // Computed here, not with the crate's CHAP code: RFC 1994 MD5(ident ‖ secret ‖
                // challenge), the challenge in CHAP-Challenge (RFC 2865 §5.3).
                let ident = id ^ 0x5a;
                let challenge: Vec<u8> = (0..16u8).map(|i| i.wrapping_mul(17) ^ id).collect();
                let mut h = Md5::new();
                h.update([ident]);
                h.update(pw.as_bytes());
                h.update(&challenge);
                let mut value = vec![ident];
                value.extend_from_slice(&h.finalize());
                b.attr(CHAP_PASSWORD, &value).expect("fits");
                b.attr(CHAP_CHALLENGE, &challenge).expect("fits");
            }
            Cred::None => {}
        }
        match self.state {
            StateSrc::None => {}
            StateSrc::Issued(n) => b.attr(STATE, &states[n]).expect("fits"),
            StateSrc::Flipped(n) => {
                let mut forged = states[n].clone();
                let last = forged.len() - 1;
                forged[last] ^= 0x01;
                b.attr(STATE, &forged).expect("fits")
            }
            StateSrc::Forged => b.attr(STATE, &[0x42; 40]).expect("fits"),
        }
        if let Some(st) = self.station {
            b.attr(CALLING_STATION_ID, st.as_bytes()).expect("fits");
        }
        b.finish(&s).expect("fits").to_vec()
    }
}

// ---------------------------------------------------------------------------------------------
// What a step was, owned (a `Step` borrows the request and its password buffer)
// ---------------------------------------------------------------------------------------------

/// A [`Job`] with its borrows copied out, for comparing with what a case expects.
#[derive(Debug, PartialEq, Eq)]
enum OwnedJob {
    VerifyHash {
        user: String,
        password: String,
    },
    Directory {
        user: String,
        password: String,
    },
    Push {
        client: String,
        user: String,
        station: String,
    },
    Trigger {
        client: String,
        user: String,
        station: String,
    },
    Check {
        user: String,
        code: String,
        transaction_id: Option<String>,
    },
}

impl OwnedJob {
    fn of(job: &Job<'_>) -> OwnedJob {
        let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        match job {
            Job::VerifyHash { user, password } => OwnedJob::VerifyHash {
                user: s(user),
                password: s(password),
            },
            Job::Directory { user, proof } => OwnedJob::Directory {
                user: user.to_string(),
                password: match proof {
                    Proof::Password(p) => s(p),
                    Proof::NtResponse(r) => format!("nt-response {:02x?}", r.response),
                },
            },
            Job::Push {
                client,
                user,
                station,
            } => OwnedJob::Push {
                client: client.to_string(),
                user: user.clone(),
                station: s(station),
            },
            Job::Trigger {
                client,
                user,
                station,
            } => OwnedJob::Trigger {
                client: client.to_string(),
                user: user.clone(),
                station: s(station),
            },
            Job::Check {
                user,
                code,
                transaction_id,
            } => OwnedJob::Check {
                user: user.clone(),
                code: code.clone(),
                transaction_id: transaction_id.clone(),
            },
            Job::Tls(_) => unreachable!("no EAP in these tests"),
            Job::Proxy { .. } => unreachable!("no [proxy] in these tests"),
            Job::RedeemState { .. } => unreachable!("no [sql] shared_state in these tests"),
            Job::Lease(_) => unreachable!("no [sql] ip_pool in these tests"),
            Job::CountSessions { .. } => unreachable!("no [sql] sessions in these tests"),
            Job::Sql { .. } | Job::SqlHash { .. } => unreachable!("no [sql] in these tests"),
        }
    }
}

fn verify_hash(user: &str, password: &str) -> OwnedJob {
    OwnedJob::VerifyHash {
        user: user.into(),
        password: password.into(),
    }
}

fn directory(user: &str, password: &str) -> OwnedJob {
    OwnedJob::Directory {
        user: user.into(),
        password: password.into(),
    }
}

fn push(user: &str) -> OwnedJob {
    OwnedJob::Push {
        client: "nas".into(),
        user: user.into(),
        station: STATION.into(),
    }
}

fn trigger(user: &str) -> OwnedJob {
    OwnedJob::Trigger {
        client: "nas".into(),
        user: user.into(),
        station: STATION.into(),
    }
}

fn check(user: &str, code: &str, transaction_id: Option<&str>) -> OwnedJob {
    OwnedJob::Check {
        user: user.into(),
        code: code.into(),
        transaction_id: transaction_id.map(str::to_string),
    }
}

#[derive(Debug)]
struct Replied {
    outcome: Outcome,
    code: Code,
    policy: Option<String>,
    source: Option<AuthSource>,
    method: Option<Method>,
    /// The Access-Challenge's State and prompt, as the decision carries them.
    challenge: Option<(Vec<u8>, String)>,
    /// The reply datagram built from the decision, as the shard builds it.
    packet: Vec<u8>,
}

impl Replied {
    fn attr(&self, typ: u8) -> Option<Vec<u8>> {
        Packet::parse(&self.packet)
            .expect("reply parses")
            .attr(typ)
            .map(<[u8]>::to_vec)
    }
}

#[derive(Debug)]
enum Got {
    Reply(Replied),
    Await {
        job: OwnedJob,
        deadline: Option<Instant>,
        then: Continuation,
        /// `JobResult::timed_out(&job)`, taken while the job was alive.
        timed_out: JobResult,
    },
    Drop(RejectReason),
}

fn own(step: Step<'_>, req: &radshard::proto::Verified<'_>, s: &Secret) -> Got {
    match step {
        Step::Reply(d) => {
            let mut out = [0u8; 4096];
            let mut b = PacketBuilder::reply(&mut out, d.code(), req).expect("reply header");
            d.apply(&mut b, s).expect("reply attributes fit");
            let packet = b.finish(s).expect("reply fits").to_vec();
            // The reply must verify as a response to this request, with the decision's code.
            let parsed = Packet::parse(&packet).expect("reply parses");
            verify_response(&parsed, req.authenticator(), s).expect("reply verifies");
            assert_eq!(parsed.code(), d.code());
            Got::Reply(Replied {
                outcome: d.outcome,
                code: d.code(),
                policy: d.policy.map(str::to_string),
                source: d.source,
                method: d.method,
                challenge: match d.reply {
                    Reply::Challenge { state, prompt } => {
                        Some((state.to_vec(), prompt.to_string()))
                    }
                    Reply::Attributes { .. }
                    | Reply::EapChallenge { .. }
                    | Reply::Proxied { .. } => None,
                },
                packet,
            })
        }
        Step::Await(a) => Got::Await {
            timed_out: JobResult::timed_out(&a.job),
            job: OwnedJob::of(&a.job),
            deadline: a.deadline,
            then: a.then,
        },
        Step::Drop(why) => Got::Drop(why),
    }
}

fn request<'r>(req: &Req, packet: &'r radshard::proto::Verified<'r>, now: Now) -> Request<'r> {
    Request::new(
        packet,
        req.client,
        req.client_group,
        "127.0.0.1:40000".parse().expect("socket address"),
        now.instant,
    )
}

/// `auth::start` on `datagram`, verified as the shard verifies it.
fn start_owned(ctx: &Context<'_>, req: &Req, datagram: &[u8], now: Now) -> Got {
    let s = secret();
    let packet = Packet::parse(datagram).expect("request parses");
    let verified = verify_request(packet, &s, true).expect("request verifies");
    let r = request(req, &verified, now);
    let mut buf = PasswordBuf::new();
    let step = auth::start(ctx, &r, now, &mut buf);
    own(step, &verified, &s)
}

/// `auth::resume` on the same datagram, re-verified as the driver's completion does.
fn resume_owned(
    ctx: &Context<'_>,
    req: &Req,
    datagram: &[u8],
    then: Continuation,
    result: JobResult,
    now: Now,
) -> Got {
    let s = secret();
    let packet = Packet::parse(datagram).expect("request parses");
    let verified = verify_request(packet, &s, false).expect("request verifies");
    let r = request(req, &verified, now);
    let mut buf = PasswordBuf::new();
    let step = auth::resume(ctx, &r, then, result, now, &mut buf);
    own(step, &verified, &s)
}

// ---------------------------------------------------------------------------------------------
// Runtimes and contexts
// ---------------------------------------------------------------------------------------------

/// Runtimes built from one config, and the contexts (views) cases run in.
struct Harness {
    rts: Vec<Runtime>,
    /// (runtime index, directory settings) per view.
    views: Vec<(usize, Option<DirectorySettings>)>,
    base: Instant,
}

/// A runtime for `config`; with `share`, it shares that runtime's MFA store (used TOTP
/// steps) and conversation store (open challenges), as `dataplane::start` hands them to every
/// shard and to a reloaded runtime.
fn build_runtime(config: &Config, share: Option<&Runtime>) -> Runtime {
    let mut rt = Runtime::build(config).expect("runtime builds");
    match share {
        Some(other) => {
            rt.mfa = other.mfa.clone();
            rt.conversations = other.conversations.clone();
        }
        None => {
            rt.mfa = config
                .mfa
                .clone()
                .map(|m| Mfa::new(m, None).expect("mfa store starts"));
        }
    }
    rt
}

/// What a second view (context) is.
#[derive(Clone, Copy, Debug)]
enum View {
    /// Another runtime from the same config, sharing the first one's MFA and conversation
    /// stores (as shards and reloads share them).
    SharedStore,
    /// Another runtime from the same config with stores of its own (another process).
    OwnStore,
    /// The first runtime with these directory settings.
    Directory(DirectorySettings),
}

impl Harness {
    fn new(toml: &str, extra: &[View]) -> Harness {
        let config = Config::from_str(toml, Path::new("t.toml"), None).expect("config parses");
        let first = build_runtime(&config, None);
        let directory = config.ldap.as_ref().map(|_| DirectorySettings {
            deadline: config.backend.deadline,
            on_overload: config.backend.on_overload,
            on_unavailable: config.backend.on_unavailable,
            passwords: true,
            ms_chap: config
                .ldap
                .as_ref()
                .is_some_and(|l| l.nt_password_attribute.is_some()),
        });
        let mut h = Harness {
            rts: vec![first],
            views: vec![(0, directory)],
            base: Instant::now(),
        };
        for v in extra {
            match v {
                View::SharedStore => {
                    let second = build_runtime(&config, Some(&h.rts[0]));
                    assert!(second.mfa.is_some(), "a shared store needs [mfa]");
                    h.rts.push(second);
                    h.views.push((h.rts.len() - 1, directory));
                }
                View::OwnStore => {
                    h.rts.push(build_runtime(&config, None));
                    h.views.push((h.rts.len() - 1, directory));
                }
                View::Directory(d) => h.views.push((0, Some(*d))),
            }
        }
        h
    }

    fn ctx(&self, view: usize) -> Context<'_> {
        let (rt, directory) = self.views[view];
        Context {
            directory,
            ..self.rts[rt].auth()
        }
    }

    fn now(&self, at: u64) -> Now {
        Now {
            instant: self.base + Duration::from_secs(at),
            unix: T0 + at,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Cases: rounds of request → scripted jobs → expected answer
// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
enum Feed {
    Hash(bool),
    Directory(DirOutcome),
    Factor(Option<Result<PiAnswer, PiError>>),
    /// What the driver feeds when the job's deadline passes.
    TimedOut,
}

#[derive(Debug)]
struct Expect {
    job: OwnedJob,
    /// The job's deadline, from the request's arrival.
    deadline: Option<Duration>,
    feed: Feed,
}

#[derive(Debug)]
struct Accepted {
    waiver: Option<Waiver>,
    policy: Option<&'static str>,
    source: AuthSource,
    method: Method,
    attrs: Vec<(u8, Vec<u8>)>,
}

#[derive(Debug)]
enum Want {
    Accept(Accepted),
    /// An Access-Challenge with a State and the prompt; its State is kept for later rounds.
    Challenge,
    /// An Access-Reject for this reason, with this Reply-Message (or none).
    Reject(RejectReason, Option<&'static str>),
    Drop(RejectReason),
}

fn accept(policy: Option<&'static str>, source: AuthSource, method: Method) -> Accepted {
    Accepted {
        waiver: None,
        policy,
        source,
        method,
        attrs: Vec::new(),
    }
}

impl Accepted {
    fn attr(mut self, typ: u8, value: &[u8]) -> Accepted {
        self.attrs.push((typ, value.to_vec()));
        self
    }
    fn waived(self, w: Waiver) -> Accepted {
        Accepted {
            waiver: Some(w),
            ..self
        }
    }
}

impl From<Accepted> for Want {
    fn from(a: Accepted) -> Want {
        Want::Accept(a)
    }
}

fn reject(reason: RejectReason) -> Want {
    Want::Reject(reason, None)
}

#[derive(Debug)]
struct Round {
    req: Req,
    /// Seconds after the case's start.
    at: u64,
    view: usize,
    script: Vec<Expect>,
    want: Want,
}

fn round(req: Req, want: impl Into<Want>) -> Round {
    Round {
        req,
        at: 0,
        view: 0,
        script: Vec::new(),
        want: want.into(),
    }
}

impl Round {
    fn at(self, at: u64) -> Round {
        Round { at, ..self }
    }
    fn on(self, view: usize) -> Round {
        Round { view, ..self }
    }
    /// The next job expected, its deadline from arrival, and what it answers.
    fn job(mut self, job: OwnedJob, deadline: Option<Duration>, feed: Feed) -> Round {
        self.script.push(Expect {
            job,
            deadline,
            feed,
        });
        self
    }
}

struct Case {
    name: &'static str,
    rounds: Vec<Round>,
}

fn case(name: &'static str, rounds: Vec<Round>) -> Case {
    Case { name, rounds }
}

/// Attributes a reply that grants nothing must not carry.
const GRANTS: [u8; 3] = [SESSION_TIMEOUT, CLASS, TUNNEL_PRIVATE_GROUP_ID];

fn run_case(h: &Harness, c: Case) {
    let name = c.name;
    let mut states: Vec<Vec<u8>> = Vec::new();
    for (i, r) in c.rounds.into_iter().enumerate() {
        let now = h.now(r.at);
        let datagram = r.req.datagram(&states, now.unix, i as u8 + 1);
        let ctx = h.ctx(r.view);
        let mut got = start_owned(&ctx, &r.req, &datagram, now);
        for (j, e) in r.script.into_iter().enumerate() {
            let Got::Await {
                job,
                deadline,
                then,
                timed_out,
            } = got
            else {
                panic!(
                    "{name}, round {i}: expected Await({:?}) #{j}, got {got:?}",
                    e.job
                );
            };
            assert_eq!(job, e.job, "{name}, round {i}: job #{j}");
            assert_eq!(
                deadline.map(|d| d.duration_since(now.instant)),
                e.deadline,
                "{name}, round {i}: deadline of job #{j}"
            );
            let result = match e.feed {
                Feed::Hash(ok) => JobResult::Hash(ok),
                Feed::Directory(o) => JobResult::Directory(o),
                Feed::Factor(a) => JobResult::SecondFactor(a),
                Feed::TimedOut => timed_out,
            };
            got = resume_owned(&ctx, &r.req, &datagram, then, result, now);
        }
        let at = format!("{name}, round {i}");
        match (got, r.want) {
            (Got::Reply(d), Want::Accept(a)) => {
                let outcome = a.waiver.map_or(Outcome::Accept, Outcome::AcceptWaived);
                assert_eq!(d.outcome, outcome, "{at}: {d:?}");
                assert_eq!(d.code, Code::AccessAccept, "{at}");
                assert_eq!(d.policy.as_deref(), a.policy, "{at}: policy");
                assert_eq!(d.source, Some(a.source), "{at}: source");
                assert_eq!(d.method, Some(a.method), "{at}: method");
                for (typ, value) in &a.attrs {
                    assert_eq!(d.attr(*typ).as_ref(), Some(value), "{at}: attribute {typ}");
                }
                assert_eq!(d.attr(STATE), None, "{at}: an accept carries no State");
            }
            (Got::Reply(d), Want::Challenge) => {
                assert_eq!(d.outcome, Outcome::Challenge, "{at}: {d:?}");
                assert_eq!(d.code, Code::AccessChallenge, "{at}");
                let (state, prompt) = d.challenge.clone().expect("a challenge reply");
                assert_eq!(
                    d.attr(STATE),
                    Some(state.clone()),
                    "{at}: State on the wire"
                );
                assert_eq!(prompt, PROMPT, "{at}");
                assert_eq!(
                    d.attr(REPLY_MESSAGE),
                    Some(PROMPT.as_bytes().to_vec()),
                    "{at}"
                );
                for typ in GRANTS {
                    assert_eq!(d.attr(typ), None, "{at}: a challenge grants nothing yet");
                }
                assert!(
                    !states.contains(&state),
                    "{at}: each challenge has its own State"
                );
                states.push(state);
            }
            (Got::Reply(d), Want::Reject(reason, message)) => {
                assert_eq!(d.outcome, Outcome::Reject(reason), "{at}: {d:?}");
                assert_eq!(d.code, Code::AccessReject, "{at}");
                assert_eq!(
                    d.attr(REPLY_MESSAGE)
                        .map(|m| String::from_utf8_lossy(&m).into_owned())
                        .as_deref(),
                    message,
                    "{at}: Reply-Message"
                );
                for typ in GRANTS {
                    assert_eq!(d.attr(typ), None, "{at}: a reject grants nothing");
                }
            }
            (Got::Drop(why), Want::Drop(want)) => assert_eq!(why, want, "{at}"),
            (got, want) => panic!("{at}: expected {want:?}, got {got:?}"),
        }
    }
}

/// Runs each case on fresh runtimes built from `toml` (plus `views`).
fn run_table(toml: &str, views: &[View], cases: Vec<Case>) {
    assert!(!cases.is_empty());
    for c in cases {
        let h = Harness::new(toml, views);
        run_case(&h, c);
    }
}

fn u32be(n: u32) -> [u8; 4] {
    n.to_be_bytes()
}

fn ldap_user(presented: &str, groups: &[&str]) -> Feed {
    Feed::Directory(DirOutcome::Accept(Arc::new(DirIdentity {
        presented: presented.to_string(),
        dn: format!("uid={presented},ou=people,dc=example,dc=org"),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        nt_key: None,
    })))
}

const PI_OK: Feed = Feed::Factor(Some(Ok(PiAnswer::Accept)));

fn pi_reject() -> Feed {
    Feed::Factor(Some(Ok(PiAnswer::Reject {
        message: "wrong otp value".into(),
    })))
}

// ---------------------------------------------------------------------------------------------
// Configs
// ---------------------------------------------------------------------------------------------

const CLIENTS: &str = r#"
[[clients]]
name = "nas"
addresses = ["127.0.0.1"]
secret = "testing123"

[[clients]]
name = "exempt-nas"
addresses = ["127.0.0.2"]
secret = "testing123"
"#;

/// Local users only, no policies: alice (cleartext, CHAP-capable), bob (bcrypt cost 4).
fn local_config() -> String {
    let bob = bcrypt::hash("bob-pw", 4).expect("bcrypt hash");
    format!(
        r#"{CLIENTS}
[local]
reject_reply_message = "Access denied"

[[users]]
name = "alice"
password = "alice-pw"
reply = {{ Session-Timeout = 600 }}

[[users]]
name = "bob"
password_hash = "{bob}"
reply = {{ Class = "hashed" }}
"#
    )
}

const LDAP: &str = r#"
[ldap]
servers = ["ldap://127.0.0.1:3890"]
bind_dn = "cn=admin,dc=example,dc=org"
bind_password = "pw"
base_dn = "dc=example,dc=org"
user_filter = "(uid={user})"
"#;

/// A directory behind local users; policies by group, one for directory users only.
fn ldap_config() -> String {
    format!(
        r#"{CLIENTS}
[local]
reject_reply_message = "Denied"

[[users]]
name = "alice"
password = "alice-pw"
groups = ["staff"]

[[users]]
name = "root"
password = "root-pw"
groups = ["admins"]

[backend]
deadline = "2s"
on_overload = "drop"
on_unavailable = "reject"
{LDAP}
[ldap.reject_messages]
account_locked = "Your account is locked"
bad_password = "Wrong password"

[[policies]]
name = "admins"
groups = ["admins"]
auth_sources = ["ldap"]
reply = {{ Class = "admins", Session-Timeout = 28800 }}

[[policies]]
name = "staff-vlan"
groups = ["staff"]
reply = {{ Tunnel-Type = "VLAN", Tunnel-Medium-Type = "IEEE-802", Tunnel-Private-Group-Id = "42" }}
"#
    )
}

/// Built-in TOTP, challenge mode: alice enrolled, carol not, dave in an exempt group, hank
/// with a slow hash; a directory, whose user erin has an MFA-only entry.
fn totp_config(unenrolled: &str) -> String {
    let hank = bcrypt::hash("hank-pw", 4).expect("bcrypt hash");
    format!(
        r#"{CLIENTS}
[[users]]
name = "alice"
password = "alice-pw"
totp_secret = "{ALICE_TOTP}"
groups = ["staff"]

[[users]]
name = "hank"
password_hash = "{hank}"
totp_secret = "{ALICE_TOTP}"
groups = ["staff"]

[[users]]
name = "erin"
totp_secret = "{ERIN_TOTP}"
{LDAP}
[[users]]
name = "bob"
password = "bob-pw"
totp_secret = "{ERIN_TOTP}"
groups = ["staff"]

[[users]]
name = "carol"
password = "carol-pw"
groups = ["staff"]

[[users]]
name = "dave"
password = "dave-pw"
groups = ["staff", "breakglass"]

[[policies]]
name = "staff-mfa"
groups = ["staff"]
mfa = true
reply = {{ Session-Timeout = 3600, Class = "mfa-ok" }}

[mfa]
provider = "totp"
challenge_ttl = "60s"
unenrolled = "{unenrolled}"
exempt_clients = ["exempt-nas"]
exempt_groups = ["breakglass"]
"#
    )
}

/// Built-in TOTP, `password_code` mode, local users (hank with a slow hash, carl decided by
/// a challenge-mode policy) and a directory user with an MFA-only entry.
fn combined_config() -> String {
    let hank = bcrypt::hash("hank-pw", 4).expect("bcrypt hash");
    format!(
        r#"{CLIENTS}
[[users]]
name = "alice"
password = "alice-pw"
totp_secret = "{ALICE_TOTP}"
groups = ["staff"]

[[users]]
name = "hank"
password_hash = "{hank}"
totp_secret = "{ALICE_TOTP}"
groups = ["staff"]

[[users]]
name = "carl"
password = "carl-pw"
totp_secret = "{ALICE_TOTP}"
groups = ["contractors"]

[[users]]
name = "erin"
totp_secret = "{ERIN_TOTP}"
{LDAP}
[[policies]]
name = "staff-combined"
groups = ["staff"]
mfa = true
mfa_mode = "password_code"
reply = {{ Session-Timeout = 3600 }}

# Read as password_code (the first policy's mode: groups are not known before primary
# authentication), decided by this challenge-mode one: refused as a mode mismatch.
[[policies]]
name = "contractors"
groups = ["contractors"]
mfa = true

[mfa]
provider = "totp"
exempt_clients = ["exempt-nas"]
"#
    )
}

/// A REST push service (never contacted): a CHAP policy and (unless `chap_only`) a PAP
/// policy, both with MFA.
fn push_config(chap_only: bool) -> String {
    let pap_policy = if chap_only {
        ""
    } else {
        r#"
[[policies]]
name = "pap-push"
groups = ["staff"]
auth_methods = ["pap"]
mfa = true
reply = { Class = "pap-push" }
"#
    };
    let hank = bcrypt::hash("hank-pw", 4).expect("bcrypt hash");
    format!(
        r#"{CLIENTS}
[[users]]
name = "alice"
password = "alice-pw"
groups = ["staff"]

[[users]]
name = "hank"
password_hash = "{hank}"
groups = ["staff"]
{LDAP}
[[policies]]
name = "chap-push"
groups = ["staff"]
auth_methods = ["chap"]
mfa = true
reply = {{ Class = "chap-push", Session-Timeout = 1800 }}

{pap_policy}
[mfa]
provider = "rest_push"

[mfa.rest_push]
url = "http://127.0.0.1:9/push"
wait = "5s"
poll_interval = "100ms"
"#
    )
}

/// privacyIDEA (never contacted): challenge issued here, code checked there; with
/// `service`, privacyIDEA triggers the challenge.
fn privacyidea_config(on_unreachable: &str, unenrolled: &str, service: bool, mode: &str) -> String {
    let service = if service {
        r#"service_user = "svc"
service_password = "svc-pw"
push_wait = "10s"
poll_interval = "1s"
"#
    } else {
        ""
    };
    format!(
        r#"{CLIENTS}
[[users]]
name = "alice"
password = "alice-pw"
groups = ["staff"]

[[policies]]
name = "staff-pi"
groups = ["staff"]
mfa = true
mfa_mode = "{mode}"
reply = {{ Session-Timeout = 3600 }}

[mfa]
provider = "privacyidea"
on_unreachable = "{on_unreachable}"
unenrolled = "{unenrolled}"

[mfa.privacyidea]
url = "http://127.0.0.1:9"
realm = "r"
timeout = "2s"
{service}"#
    )
}

// ---------------------------------------------------------------------------------------------
// The tables
// ---------------------------------------------------------------------------------------------

use AuthSource::{Ldap, Local};
use Method::{Chap, Pap};
use RejectReason as R;

#[test]
fn totp_helper_matches_rfc_6238() {
    // RFC 6238 Appendix B, T = 59: 94287082; six digits: 287082.
    let s = TotpSecret::from_base32(ALICE_TOTP).expect("valid base32");
    assert_eq!(s.code_at_step(59 / 30, 6), 287_082);
    assert_ne!(totp_code(ALICE_TOTP, T0), wrong_code(ALICE_TOTP, T0));
}

#[test]
fn local_users() {
    let denied = Some("Access denied");
    let s600 = u32be(600);
    run_table(
        &local_config(),
        &[],
        vec![
            case(
                "PAP, right password",
                vec![round(
                    pap("alice", "alice-pw"),
                    accept(None, Local, Pap).attr(SESSION_TIMEOUT, &s600),
                )],
            ),
            case(
                "PAP, wrong password",
                vec![round(
                    pap("alice", "alice-px"),
                    Want::Reject(R::BadPassword, denied),
                )],
            ),
            case(
                "PAP, password prefix is not the password",
                vec![round(
                    pap("alice", "alice-pw-and-more"),
                    Want::Reject(R::BadPassword, denied),
                )],
            ),
            case(
                "PAP, unknown user",
                vec![round(
                    pap("mallory", "alice-pw"),
                    Want::Reject(R::UnknownUser, denied),
                )],
            ),
            case(
                "no User-Name",
                vec![round(
                    pap("alice", "alice-pw").no_user(),
                    Want::Reject(R::NoUserName, denied),
                )],
            ),
            case(
                "neither User-Password nor CHAP-Password",
                vec![round(
                    pap("alice", "").no_credentials(),
                    Want::Reject(R::NoSupportedCredentials, denied),
                )],
            ),
            case(
                "CHAP, right password",
                vec![round(
                    chap("alice", "alice-pw"),
                    accept(None, Local, Chap).attr(SESSION_TIMEOUT, &s600),
                )],
            ),
            case(
                "CHAP, wrong password",
                vec![round(
                    chap("alice", "alice-pX"),
                    Want::Reject(R::BadPassword, denied),
                )],
            ),
            case(
                "CHAP against a hashed password",
                vec![round(
                    chap("bob", "bob-pw"),
                    Want::Reject(R::ChapNeedsCleartext, denied),
                )],
            ),
            case(
                "slow hash, verified off the shard",
                vec![round(
                    pap("bob", "bob-pw"),
                    accept(None, Local, Pap).attr(CLASS, b"hashed"),
                )
                .job(verify_hash("bob", "bob-pw"), None, Feed::Hash(true))],
            ),
            case(
                "slow hash, wrong password",
                vec![
                    round(pap("bob", "bob-px"), Want::Reject(R::BadPassword, denied)).job(
                        verify_hash("bob", "bob-px"),
                        None,
                        Feed::Hash(false),
                    ),
                ],
            ),
            case(
                "slow hash, no answer is a failure",
                vec![
                    round(pap("bob", "bob-pw"), Want::Reject(R::BadPassword, denied)).job(
                        verify_hash("bob", "bob-pw"),
                        None,
                        Feed::TimedOut,
                    ),
                ],
            ),
            case(
                "a result that does not fit the job is dropped",
                vec![round(pap("bob", "bob-pw"), Want::Drop(R::Overloaded)).job(
                    verify_hash("bob", "bob-pw"),
                    None,
                    Feed::Factor(Some(Ok(PiAnswer::Accept))),
                )],
            ),
        ],
    );
}

#[test]
fn ldap_directory() {
    const ADMINS: &str = "cn=admins,ou=groups,dc=example,dc=org";
    const STAFF: &str = "cn=staff,ou=groups,dc=example,dc=org";
    let two = Some(Duration::from_secs(2));
    // View 1: the opposite shed policies (reject when overloaded, drop when unavailable).
    let inverted = View::Directory(DirectorySettings {
        deadline: Duration::from_secs(2),
        on_overload: ShedPolicy::Reject,
        on_unavailable: ShedPolicy::Drop,
        passwords: true,
        ms_chap: false,
    });
    let ann = || pap("ann", "ann-pw");
    let bind = || directory("ann", "ann-pw");
    run_table(
        &ldap_config(),
        &[inverted],
        vec![
            case(
                "directory accept, admin group decides the attributes",
                vec![round(
                    ann(),
                    accept(Some("admins"), Ldap, Pap)
                        .attr(CLASS, b"admins")
                        .attr(SESSION_TIMEOUT, &u32be(28800)),
                )
                .job(bind(), two, ldap_user("ann", &[ADMINS, STAFF]))],
            ),
            case(
                "directory accept, staff group gets the VLAN",
                vec![round(
                    ann(),
                    accept(Some("staff-vlan"), Ldap, Pap).attr(TUNNEL_PRIVATE_GROUP_ID, b"42"),
                )
                .job(bind(), two, ldap_user("ann", &[STAFF]))],
            ),
            case(
                "directory accept, no policy for the user's groups",
                vec![
                    round(ann(), Want::Reject(R::PolicyReject, Some("Denied"))).job(
                        bind(),
                        two,
                        ldap_user("ann", &["cn=guests,ou=groups,dc=example,dc=org"]),
                    ),
                ],
            ),
            case(
                "directory reject with its configured message",
                vec![round(
                    ann(),
                    Want::Reject(R::AccountLocked, Some("Your account is locked")),
                )
                .job(
                    bind(),
                    two,
                    Feed::Directory(DirOutcome::Reject(R::AccountLocked)),
                )],
            ),
            case(
                "directory bad password with its configured message",
                vec![
                    round(ann(), Want::Reject(R::BadPassword, Some("Wrong password"))).job(
                        bind(),
                        two,
                        Feed::Directory(DirOutcome::Reject(R::BadPassword)),
                    ),
                ],
            ),
            case(
                "directory reject without a message of its own: the reject message",
                vec![
                    round(ann(), Want::Reject(R::PasswordExpired, Some("Denied"))).job(
                        bind(),
                        two,
                        Feed::Directory(DirOutcome::Reject(R::PasswordExpired)),
                    ),
                ],
            ),
            case(
                "shed, on_overload = drop",
                vec![round(ann(), Want::Drop(R::Overloaded)).job(
                    bind(),
                    two,
                    Feed::Directory(DirOutcome::Shed),
                )],
            ),
            case(
                "shed, on_overload = reject",
                vec![round(ann(), Want::Reject(R::Overloaded, Some("Denied")))
                    .on(1)
                    .job(bind(), two, Feed::Directory(DirOutcome::Shed))],
            ),
            case(
                "deadline passed, on_unavailable = reject",
                vec![
                    round(ann(), Want::Reject(R::DirectoryUnavailable, Some("Denied"))).job(
                        bind(),
                        two,
                        Feed::TimedOut,
                    ),
                ],
            ),
            case(
                "deadline passed, on_unavailable = drop",
                vec![round(ann(), Want::Drop(R::DirectoryUnavailable)).on(1).job(
                    bind(),
                    two,
                    Feed::TimedOut,
                )],
            ),
            case(
                "CHAP cannot reach the directory",
                vec![round(
                    chap("ann", "ann-pw"),
                    Want::Reject(R::UnknownUser, Some("Denied")),
                )],
            ),
            case(
                "a local user is decided locally, never bound",
                vec![round(
                    pap("alice", "alice-pw"),
                    accept(Some("staff-vlan"), Local, Pap).attr(TUNNEL_PRIVATE_GROUP_ID, b"42"),
                )],
            ),
            case(
                "a local user's wrong password does not fall through to the directory",
                vec![round(
                    pap("alice", "wrong"),
                    Want::Reject(R::BadPassword, Some("Denied")),
                )],
            ),
            case(
                "a policy for directory users only does not match a local admin",
                vec![round(
                    pap("root", "root-pw"),
                    Want::Reject(R::PolicyReject, Some("Denied")),
                )],
            ),
        ],
    );
}

#[test]
fn totp_challenge() {
    let granted = || {
        accept(Some("staff-mfa"), Local, Pap)
            .attr(SESSION_TIMEOUT, &u32be(3600))
            .attr(CLASS, b"mfa-ok")
    };
    let alice = || pap("alice", "alice-pw");
    let code = |n| pap("alice", "{code}").state(StateSrc::Issued(n));
    run_table(
        &totp_config("reject"),
        &[],
        vec![
            case(
                "challenge, then the right code",
                vec![
                    round(alice(), Want::Challenge),
                    round(code(0), granted()).at(5),
                ],
            ),
            case(
                "challenge, then a wrong code",
                vec![
                    round(alice(), Want::Challenge),
                    round(
                        pap("alice", "{wrong}").state(StateSrc::Issued(0)),
                        reject(R::MfaBadCode),
                    )
                    .at(5),
                ],
            ),
            case(
                "wrong password: no challenge",
                vec![round(pap("alice", "alice-px"), reject(R::BadPassword))],
            ),
            case(
                "a State is single use, even after a wrong code",
                vec![
                    round(alice(), Want::Challenge),
                    round(
                        pap("alice", "{wrong}").state(StateSrc::Issued(0)),
                        reject(R::MfaBadCode),
                    ),
                    round(code(0), reject(R::MfaStateReplayed)).at(1),
                ],
            ),
            case(
                "replayed State after an accept",
                vec![
                    round(alice(), Want::Challenge),
                    round(code(0), granted()).at(2),
                    round(code(0), reject(R::MfaStateReplayed)).at(3),
                ],
            ),
            case(
                "forged State (one octet flipped)",
                vec![
                    round(alice(), Want::Challenge),
                    round(
                        pap("alice", "{code}").state(StateSrc::Flipped(0)),
                        reject(R::MfaStateInvalid),
                    )
                    .at(2),
                    // The forgery did not consume the real challenge.
                    round(code(0), granted()).at(3),
                ],
            ),
            case(
                "expired State (the clock passed challenge_ttl)",
                vec![
                    round(alice(), Want::Challenge),
                    round(code(0), reject(R::MfaStateExpired)).at(61),
                ],
            ),
            case(
                "a State is bound to its user",
                vec![
                    round(alice(), Want::Challenge),
                    round(
                        pap("bob", "{code}").state(StateSrc::Issued(0)),
                        reject(R::MfaStateInvalid),
                    )
                    .at(2),
                ],
            ),
            case(
                "a State is bound to its client",
                vec![
                    round(alice(), Want::Challenge),
                    round(code(0).from("exempt-nas"), reject(R::MfaStateInvalid)).at(2),
                ],
            ),
            case(
                "a code is accepted once",
                vec![
                    round(alice(), Want::Challenge),
                    round(code(0), granted()).at(2),
                    round(alice(), Want::Challenge).at(3),
                    round(code(1), reject(R::MfaCodeReused)).at(4),
                    // The next time step's code is fine.
                    round(alice(), Want::Challenge).at(30),
                    round(code(2), granted()).at(31),
                ],
            ),
            case(
                "CHAP cannot carry a code",
                vec![round(
                    chap("alice", "alice-pw"),
                    reject(R::MfaUnsupportedMethod),
                )],
            ),
            case(
                "exempt client",
                vec![round(
                    alice().from("exempt-nas"),
                    granted().waived(Waiver::ExemptClient),
                )],
            ),
            case(
                "exempt client, CHAP: nothing to carry a code, nothing needed",
                vec![round(
                    chap("alice", "alice-pw").from("exempt-nas"),
                    accept(Some("staff-mfa"), Local, Chap)
                        .attr(CLASS, b"mfa-ok")
                        .waived(Waiver::ExemptClient),
                )],
            ),
            case(
                "exempt group",
                vec![round(
                    pap("dave", "dave-pw"),
                    granted().waived(Waiver::ExemptGroup),
                )],
            ),
            case(
                "unenrolled user, unenrolled = reject",
                vec![round(pap("carol", "carol-pw"), reject(R::MfaNotEnrolled))],
            ),
            case(
                "slow hash, then the challenge",
                vec![
                    round(pap("hank", "hank-pw"), Want::Challenge).job(
                        verify_hash("hank", "hank-pw"),
                        None,
                        Feed::Hash(true),
                    ),
                    round(
                        pap("hank", "{code}").state(StateSrc::Issued(0)),
                        accept(Some("staff-mfa"), Local, Pap).attr(CLASS, b"mfa-ok"),
                    )
                    .at(4),
                ],
            ),
            case(
                "directory user: the follow-up keeps the directory's groups and source",
                vec![
                    round(pap("erin", "erin-ldap-pw"), Want::Challenge).job(
                        directory("erin", "erin-ldap-pw"),
                        Some(Duration::from_secs(3)),
                        ldap_user("erin", &["cn=staff,ou=groups,dc=example,dc=org"]),
                    ),
                    round(
                        pap("erin", "{erin}").state(StateSrc::Issued(0)),
                        accept(Some("staff-mfa"), Ldap, Pap)
                            .attr(SESSION_TIMEOUT, &u32be(3600))
                            .attr(CLASS, b"mfa-ok"),
                    )
                    .at(4),
                ],
            ),
            case(
                "directory user in an exempt group (by DN)",
                vec![round(
                    pap("erin", "erin-ldap-pw"),
                    accept(Some("staff-mfa"), Ldap, Pap)
                        .attr(CLASS, b"mfa-ok")
                        .waived(Waiver::ExemptGroup),
                )
                .job(
                    directory("erin", "erin-ldap-pw"),
                    Some(Duration::from_secs(3)),
                    ldap_user(
                        "erin",
                        &[
                            "cn=staff,ou=groups,dc=example,dc=org",
                            "CN=BreakGlass,ou=groups,dc=example,dc=org",
                        ],
                    ),
                )],
            ),
            case(
                "directory user without a second factor",
                vec![
                    round(pap("frank", "frank-pw"), reject(R::MfaNotEnrolled)).job(
                        directory("frank", "frank-pw"),
                        Some(Duration::from_secs(3)),
                        ldap_user("frank", &["cn=staff,ou=groups,dc=example,dc=org"]),
                    ),
                ],
            ),
        ],
    );
    run_table(
        &totp_config("accept"),
        &[],
        vec![
            case(
                "unenrolled user, unenrolled = accept",
                vec![round(
                    pap("carol", "carol-pw"),
                    granted().waived(Waiver::Unenrolled),
                )],
            ),
            case(
                "directory user without a second factor, unenrolled = accept",
                vec![round(
                    pap("frank", "frank-pw"),
                    accept(Some("staff-mfa"), Ldap, Pap)
                        .attr(CLASS, b"mfa-ok")
                        .waived(Waiver::Unenrolled),
                )
                .job(
                    directory("frank", "frank-pw"),
                    Some(Duration::from_secs(3)),
                    ldap_user("frank", &["cn=staff,ou=groups,dc=example,dc=org"]),
                )],
            ),
            case(
                "an enrolled user is still challenged",
                vec![
                    round(alice(), Want::Challenge),
                    round(code(0), granted()).at(1),
                ],
            ),
        ],
    );
}

#[test]
fn totp_follow_up_on_another_runtime() {
    let granted = accept(Some("staff-mfa"), Local, Pap)
        .attr(SESSION_TIMEOUT, &u32be(3600))
        .attr(CLASS, b"mfa-ok");
    let code = pap("alice", "{code}").state(StateSrc::Issued(0));
    // View 1 shares view 0's MFA store, view 2 has one of its own.
    let views = [View::SharedStore, View::OwnStore];
    run_table(
        &totp_config("reject"),
        &views,
        vec![
            case(
                "challenged by one runtime, redeemed on another sharing the store",
                vec![
                    round(pap("alice", "alice-pw"), Want::Challenge),
                    round(code, granted).at(3).on(1),
                ],
            ),
            case(
                "the sharing runtime sees the State as used",
                vec![
                    round(pap("alice", "alice-pw"), Want::Challenge).on(1),
                    round(code, accept(Some("staff-mfa"), Local, Pap)).at(3),
                    round(code, reject(R::MfaStateReplayed)).at(4).on(1),
                ],
            ),
            case(
                "a code used on one runtime is used on the other",
                vec![
                    round(pap("alice", "alice-pw"), Want::Challenge),
                    round(code, accept(Some("staff-mfa"), Local, Pap)).at(2),
                    round(pap("alice", "alice-pw"), Want::Challenge).at(3).on(1),
                    round(
                        pap("alice", "{code}").state(StateSrc::Issued(1)),
                        reject(R::MfaCodeReused),
                    )
                    .at(4)
                    .on(1),
                ],
            ),
            case(
                "a store of its own does not know the State",
                vec![
                    round(pap("alice", "alice-pw"), Want::Challenge),
                    round(code, reject(R::MfaStateInvalid)).at(3).on(2),
                ],
            ),
        ],
    );
}

#[test]
fn totp_password_code() {
    const STAFF: &str = "cn=staff,ou=groups,dc=example,dc=org";
    let three = Some(Duration::from_secs(3));
    let granted =
        |source| accept(Some("staff-combined"), source, Pap).attr(SESSION_TIMEOUT, &u32be(3600));
    run_table(
        &combined_config(),
        &[],
        vec![
            case(
                "password and right code: one round, no challenge",
                vec![round(pap("alice", "alice-pw,{code}"), granted(Local))],
            ),
            case(
                "password and wrong code",
                vec![round(
                    pap("alice", "alice-pw,{wrong}"),
                    reject(R::MfaBadCode),
                )],
            ),
            case(
                "wrong password and right code",
                vec![round(
                    pap("alice", "alice-px,{code}"),
                    reject(R::BadPassword),
                )],
            ),
            case(
                "the same code twice",
                vec![
                    round(pap("alice", "alice-pw,{code}"), granted(Local)),
                    round(pap("alice", "alice-pw,{code}"), reject(R::MfaCodeReused)).at(1),
                ],
            ),
            case(
                "missing comma: refused before any source",
                vec![round(pap("alice", "alice-pw"), reject(R::MfaBadCode))],
            ),
            case(
                "missing comma, directory user: refused, the directory is never asked",
                vec![round(pap("erin", "erin-ldap-pw"), reject(R::MfaBadCode))],
            ),
            case(
                "empty code after the comma",
                vec![round(pap("erin", "erin-ldap-pw,"), reject(R::MfaBadCode))],
            ),
            case(
                "directory user: only the password is bound, the code checked here",
                vec![
                    round(pap("erin", "erin-ldap-pw,{erin}"), granted(Ldap)).job(
                        directory("erin", "erin-ldap-pw"),
                        three,
                        ldap_user("erin", &[STAFF]),
                    ),
                ],
            ),
            case(
                "directory user, wrong code",
                vec![
                    round(pap("erin", "erin-ldap-pw,{wrong}"), reject(R::MfaBadCode)).job(
                        directory("erin", "erin-ldap-pw"),
                        three,
                        ldap_user("erin", &[STAFF]),
                    ),
                ],
            ),
            case(
                "slow hash: only the password part is hashed",
                vec![round(pap("hank", "hank-pw,{code}"), granted(Local)).job(
                    verify_hash("hank", "hank-pw"),
                    None,
                    Feed::Hash(true),
                )],
            ),
            case(
                "slow hash, wrong password: the code is not even checked",
                vec![
                    round(pap("hank", "hank-px,{code}"), reject(R::BadPassword)).job(
                        verify_hash("hank", "hank-px"),
                        None,
                        Feed::Hash(false),
                    ),
                    // So it is still good.
                    round(pap("hank", "hank-pw,{code}"), granted(Local))
                        .at(1)
                        .job(verify_hash("hank", "hank-pw"), None, Feed::Hash(true)),
                ],
            ),
            case(
                "read in one mode, decided by a policy of another",
                vec![round(
                    pap("carl", "carl-pw,{code}"),
                    reject(R::MfaModeMismatch),
                )],
            ),
            case(
                "exempt client: the whole value is the password",
                vec![round(
                    pap("alice", "alice-pw").from("exempt-nas"),
                    granted(Local).waived(Waiver::ExemptClient),
                )],
            ),
        ],
    );
}

#[test]
fn rest_push() {
    let six = Some(Duration::from_secs(6)); // wait + 1 s
    let pap_ok = || accept(Some("pap-push"), Local, Pap).attr(CLASS, b"pap-push");
    run_table(
        &push_config(false),
        &[],
        vec![
            case(
                "PAP, push approved",
                vec![round(pap("alice", "alice-pw"), pap_ok()).job(push("alice"), six, PI_OK)],
            ),
            case(
                "PAP, push denied",
                vec![
                    round(pap("alice", "alice-pw"), reject(R::MfaPushDenied)).job(
                        push("alice"),
                        six,
                        pi_reject(),
                    ),
                ],
            ),
            case(
                "PAP, push not answered (None)",
                vec![
                    round(pap("alice", "alice-pw"), reject(R::MfaPushDenied)).job(
                        push("alice"),
                        six,
                        Feed::Factor(None),
                    ),
                ],
            ),
            case(
                "PAP, push past its deadline",
                vec![
                    round(pap("alice", "alice-pw"), reject(R::MfaPushDenied)).job(
                        push("alice"),
                        six,
                        Feed::TimedOut,
                    ),
                ],
            ),
            case(
                "PAP, push service knows no device for the user",
                vec![
                    round(pap("alice", "alice-pw"), reject(R::MfaNotEnrolled)).job(
                        push("alice"),
                        six,
                        Feed::Factor(Some(Ok(PiAnswer::NoToken))),
                    ),
                ],
            ),
            case(
                "PAP, wrong password: no push",
                vec![round(pap("alice", "alice-px"), reject(R::BadPassword))],
            ),
            // The bug that was fixed: after the push the policies ran again as PAP, so a
            // CHAP-only policy no longer matched and the approved user was rejected.
            case(
                "CHAP, push approved: the CHAP policy decides after the push",
                vec![round(
                    chap("alice", "alice-pw"),
                    accept(Some("chap-push"), Local, Chap)
                        .attr(CLASS, b"chap-push")
                        .attr(SESSION_TIMEOUT, &u32be(1800)),
                )
                .job(push("alice"), six, PI_OK)],
            ),
            case(
                "CHAP, push denied",
                vec![
                    round(chap("alice", "alice-pw"), reject(R::MfaPushDenied)).job(
                        push("alice"),
                        six,
                        pi_reject(),
                    ),
                ],
            ),
            case(
                "CHAP, wrong password: no push",
                vec![round(chap("alice", "alice-pX"), reject(R::BadPassword))],
            ),
            case(
                "slow hash, then the push: two jobs in a row",
                vec![
                    round(pap("hank", "hank-pw"), accept(Some("pap-push"), Local, Pap))
                        .job(verify_hash("hank", "hank-pw"), None, Feed::Hash(true))
                        .job(push("hank"), six, PI_OK),
                ],
            ),
            case(
                "directory bind, then the push to the directory's name for the user",
                vec![round(
                    pap("ann", "ann-pw"),
                    accept(Some("pap-push"), Ldap, Pap).attr(CLASS, b"pap-push"),
                )
                .job(
                    directory("ann", "ann-pw"),
                    Some(Duration::from_secs(3)),
                    ldap_user("ann@example.org", &["cn=staff,ou=groups,dc=example,dc=org"]),
                )
                .job(push("ann@example.org"), six, PI_OK)],
            ),
            case(
                "a State is never ours with a push provider",
                vec![
                    round(pap("alice", "alice-pw"), pap_ok()).job(push("alice"), six, PI_OK),
                    round(
                        pap("alice", "123456").state(StateSrc::Forged),
                        reject(R::MfaStateInvalid),
                    ),
                ],
            ),
        ],
    );
}

/// The fixed bug in its original setting: only a CHAP policy, so re-running the policies as
/// PAP after the push matched none and rejected the approved user.
#[test]
fn rest_push_chap_only_policy() {
    let six = Some(Duration::from_secs(6));
    run_table(
        &push_config(true),
        &[],
        vec![
            case(
                "CHAP, push approved",
                vec![round(
                    chap("alice", "alice-pw"),
                    accept(Some("chap-push"), Local, Chap)
                        .attr(CLASS, b"chap-push")
                        .attr(SESSION_TIMEOUT, &u32be(1800)),
                )
                .job(push("alice"), six, PI_OK)],
            ),
            case(
                "PAP matches no policy: rejected before any push",
                vec![round(pap("alice", "alice-pw"), reject(R::PolicyReject))],
            ),
        ],
    );
}

#[test]
fn privacyidea() {
    let three = Some(Duration::from_secs(3)); // timeout + 1 s
    let granted = || accept(Some("staff-pi"), Local, Pap).attr(SESSION_TIMEOUT, &u32be(3600));
    let code = || pap("alice", "123456").state(StateSrc::Issued(0));
    let checked = || check("alice", "123456", None);
    let challenge = || round(pap("alice", "alice-pw"), Want::Challenge);
    let unreachable = || Feed::Factor(Some(Err(PiError::Unreachable("connection refused".into()))));
    run_table(
        &privacyidea_config("reject", "reject", false, "challenge"),
        &[],
        vec![
            case(
                "challenge, code checked by privacyIDEA: accepted",
                vec![
                    challenge(),
                    round(code(), granted()).at(5).job(checked(), three, PI_OK),
                ],
            ),
            case(
                "code refused by privacyIDEA",
                vec![
                    challenge(),
                    round(code(), reject(R::MfaBadCode))
                        .at(5)
                        .job(checked(), three, pi_reject()),
                ],
            ),
            case(
                "no token, unenrolled = reject",
                vec![
                    challenge(),
                    round(code(), reject(R::MfaNotEnrolled)).at(5).job(
                        checked(),
                        three,
                        Feed::Factor(Some(Ok(PiAnswer::NoToken))),
                    ),
                ],
            ),
            case(
                "unreachable, fail-secure",
                vec![
                    challenge(),
                    round(code(), reject(R::MfaUnavailable)).at(5).job(
                        checked(),
                        three,
                        unreachable(),
                    ),
                ],
            ),
            case(
                "no answer by the deadline, fail-secure",
                vec![
                    challenge(),
                    round(code(), reject(R::MfaUnavailable)).at(5).job(
                        checked(),
                        three,
                        Feed::TimedOut,
                    ),
                ],
            ),
            case(
                "HTTP error, fail-secure",
                vec![
                    challenge(),
                    round(code(), reject(R::MfaUnavailable)).at(5).job(
                        checked(),
                        three,
                        Feed::Factor(Some(Err(PiError::Http(502)))),
                    ),
                ],
            ),
            case(
                "empty code: refused without asking privacyIDEA",
                vec![
                    challenge(),
                    round(
                        pap("alice", "").state(StateSrc::Issued(0)),
                        reject(R::MfaBadCode),
                    )
                    .at(5),
                ],
            ),
            case(
                "CHAP cannot carry a code",
                vec![round(
                    chap("alice", "alice-pw"),
                    reject(R::MfaUnsupportedMethod),
                )],
            ),
        ],
    );
    run_table(
        &privacyidea_config("accept", "accept", false, "challenge"),
        &[],
        vec![
            case(
                "unreachable, fail-safe: accepted with the policy's attributes",
                vec![
                    challenge(),
                    round(code(), granted().waived(Waiver::UnavailableFailsafe))
                        .at(5)
                        .job(checked(), three, unreachable()),
                ],
            ),
            case(
                "no answer by the deadline, fail-safe",
                vec![
                    challenge(),
                    round(code(), granted().waived(Waiver::UnavailableFailsafe))
                        .at(5)
                        .job(checked(), three, Feed::TimedOut),
                ],
            ),
            case(
                "fail-safe does not accept a refused code",
                vec![
                    challenge(),
                    round(code(), reject(R::MfaBadCode))
                        .at(5)
                        .job(checked(), three, pi_reject()),
                ],
            ),
            case(
                "no token, unenrolled = accept",
                vec![
                    challenge(),
                    round(code(), granted().waived(Waiver::NotEnrolledAccepted))
                        .at(5)
                        .job(checked(), three, Feed::Factor(Some(Ok(PiAnswer::NoToken)))),
                ],
            ),
        ],
    );
}

#[test]
fn privacyidea_password_code() {
    let three = Some(Duration::from_secs(3));
    let granted = || accept(Some("staff-pi"), Local, Pap).attr(SESSION_TIMEOUT, &u32be(3600));
    run_table(
        &privacyidea_config("reject", "reject", false, "password_code"),
        &[],
        vec![
            case(
                "password and code: the code goes to privacyIDEA, no challenge",
                vec![round(pap("alice", "alice-pw,987654"), granted()).job(
                    check("alice", "987654", None),
                    three,
                    PI_OK,
                )],
            ),
            case(
                "password and a refused code",
                vec![
                    round(pap("alice", "alice-pw,987654"), reject(R::MfaBadCode)).job(
                        check("alice", "987654", None),
                        three,
                        pi_reject(),
                    ),
                ],
            ),
            case(
                "wrong password: privacyIDEA is not asked",
                vec![round(
                    pap("alice", "alice-px,987654"),
                    reject(R::BadPassword),
                )],
            ),
            case(
                "missing comma",
                vec![round(pap("alice", "alice-pw"), reject(R::MfaBadCode))],
            ),
        ],
    );
}

#[test]
fn privacyidea_trigger() {
    // push_wait + poll_interval + 4 × timeout + 1 s.
    let hold = Some(Duration::from_secs(10 + 1 + 8 + 1));
    let granted = || accept(Some("staff-pi"), Local, Pap).attr(SESSION_TIMEOUT, &u32be(3600));
    let triggered = || {
        Feed::Factor(Some(Ok(PiAnswer::Challenge {
            transaction_id: "tx-42".into(),
            message: "enter the OTP".into(),
        })))
    };
    let alice = || pap("alice", "alice-pw");
    run_table(
        &privacyidea_config("reject", "reject", true, "challenge"),
        &[],
        vec![
            case(
                "code token: triggered challenge, code checked with its transaction id",
                vec![
                    round(alice(), Want::Challenge).job(trigger("alice"), hold, triggered()),
                    round(pap("alice", "654321").state(StateSrc::Issued(0)), granted())
                        .at(5)
                        .job(check("alice", "654321", Some("tx-42")), hold, PI_OK),
                ],
            ),
            case(
                "push token approved",
                vec![round(alice(), granted()).job(trigger("alice"), hold, PI_OK)],
            ),
            case(
                "push token denied",
                vec![round(alice(), reject(R::MfaPushDenied)).job(
                    trigger("alice"),
                    hold,
                    pi_reject(),
                )],
            ),
            case(
                "trigger unreachable, fail-secure",
                vec![round(alice(), reject(R::MfaUnavailable)).job(
                    trigger("alice"),
                    hold,
                    Feed::Factor(None),
                )],
            ),
        ],
    );
}

/// `primary = "nas"` for client `nas` (the gateway), a regular policy for `exempt-nas`;
/// alice has a TOTP secret and no password, carol a password and no second factor.
fn gateway_config(provider: &str) -> String {
    let provider = match provider {
        "totp" => "[mfa]\nprovider = \"totp\"\n".to_string(),
        _ => "[mfa]\nprovider = \"rest_push\"\n\n[mfa.rest_push]\nurl = \"http://127.0.0.1:9/push\"\n\
              wait = \"5s\"\npoll_interval = \"100ms\"\n"
            .to_string(),
    };
    format!(
        r#"{CLIENTS}
[[users]]
name = "alice"
totp_secret = "{ALICE_TOTP}"

[[users]]
name = "carol"
password = "carol-pw"

[[policies]]
name = "gateway"
clients = ["nas"]
primary = "nas"
mfa = true
reply = {{ Class = "gateway" }}

[[policies]]
name = "others"
clients = ["exempt-nas"]
reply = {{ Class = "others" }}

{provider}"#
    )
}

#[test]
fn second_factor_only_gateway() {
    let gw = || accept(Some("gateway"), AuthSource::Nas, Pap).attr(CLASS, b"gateway");
    run_table(
        &gateway_config("totp"),
        &[],
        vec![
            case(
                "the code alone: accepted, no job, no challenge",
                vec![round(pap("alice", "{code}"), gw())],
            ),
            case(
                "the same code twice: reused",
                vec![
                    round(pap("alice", "{code}"), gw()),
                    round(pap("alice", "{code}"), reject(R::MfaCodeReused)),
                ],
            ),
            case(
                "a wrong code",
                vec![round(pap("alice", "{wrong}"), reject(R::MfaBadCode))],
            ),
            case(
                "no TOTP secret: not enrolled, the gateway's word is not enough",
                vec![round(pap("carol", "123456"), reject(R::MfaNotEnrolled))],
            ),
            case(
                "CHAP cannot carry a code",
                vec![round(chap("alice", "x"), reject(R::MfaUnsupportedMethod))],
            ),
            case(
                "another client: the code is no password, alice has none",
                vec![round(
                    pap("alice", "{code}").from("exempt-nas"),
                    reject(R::NoPassword),
                )],
            ),
            case(
                "another client: carol's password, checked here",
                vec![round(
                    pap("carol", "carol-pw").from("exempt-nas"),
                    accept(Some("others"), AuthSource::Local, Pap).attr(CLASS, b"others"),
                )],
            ),
        ],
    );
    let six = Some(Duration::from_secs(6));
    run_table(
        &gateway_config("push"),
        &[],
        vec![
            case(
                "push: an empty User-Password, approved",
                vec![round(pap("carol", ""), gw()).job(push("carol"), six, PI_OK)],
            ),
            case(
                "push with CHAP, approved: the method travels with the NAS identity",
                vec![round(
                    chap("carol", "anything"),
                    accept(Some("gateway"), AuthSource::Nas, Chap).attr(CLASS, b"gateway"),
                )
                .job(push("carol"), six, PI_OK)],
            ),
            case(
                "push denied",
                vec![round(pap("carol", ""), reject(R::MfaPushDenied)).job(
                    push("carol"),
                    six,
                    pi_reject(),
                )],
            ),
        ],
    );
}
