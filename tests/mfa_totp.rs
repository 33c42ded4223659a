//! The OTP challenge flow with the built-in TOTP provider, end to end against an in-process
//! server: PAP → Access-Challenge (State, Reply-Message) → Access-Request with the State and
//! the current code → Access-Accept with the policy's attributes; wrong code, replayed State,
//! forged State, another user's State, unenrolled user → Access-Reject. Also once with
//! FreeRADIUS's radclient, as a NAS would do it.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::*;
use radshard::backend::mfa::totp::TotpSecret;
use radshard::proto::{attr, Code};

/// "12345678901234567890" (the RFC 6238 seed) in base32.
const ALICE_TOTP: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
const DAVE_TOTP: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
const PROMPT: &str = "Code from your authenticator app";

fn body() -> String {
    format!(
        r#"
[[clients]]
name = "localhost"
addresses = ["127.0.0.1"]
secret = "testing123"
require_message_authenticator = false

[[users]]
name = "alice"
password = "alice-pw"
totp_secret = "{ALICE_TOTP}"
groups = ["staff"]

[[users]]
name = "dave"
password = "dave-pw"
totp_secret = "{DAVE_TOTP}"
groups = ["staff"]

[[users]]
name = "carol"
password = "carol-pw"
groups = ["staff"]

[[users]]
name = "nomfa"
password = "nomfa-pw"

[[users]]
name = "oncall"
password = "oncall-pw"
groups = ["staff", "break-glass"]

[[policies]]
name = "staff-vpn"
groups = ["staff"]
mfa = true
reply = {{ Session-Timeout = 3600 }}

[[policies]]
name = "others"

[mfa]
provider = "totp"
prompt = "{PROMPT}"
exempt_groups = ["break-glass"]
"#
    )
}

/// The time step when the test process first asked: codes are computed relative to it, so a
/// step boundary passing mid-test changes nothing (the server accepts ±1 step).
fn base_step() -> u64 {
    static BASE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *BASE.get_or_init(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_secs()
            / 30
    })
}

fn code_at(secret_b32: &str, offset_steps: u64) -> String {
    let s = TotpSecret::from_base32(secret_b32).expect("valid secret");
    format!("{:06}", s.code_at_step(base_step() + offset_steps, 6))
}

struct Nas {
    c: RadClient,
    sec: radshard::proto::Secret,
    id: u8,
}

impl Nas {
    fn new() -> Nas {
        Nas {
            c: RadClient::new(),
            sec: secret(SECRET),
            id: 0,
        }
    }

    /// Sends a PAP request (with a State if given) and returns (request, reply, code).
    fn ask(
        &mut self,
        s: &TestServer,
        user: &str,
        pw: &str,
        state: Option<&[u8]>,
    ) -> (Vec<u8>, Vec<u8>, Code) {
        self.id = self.id.wrapping_add(1);
        let extra: Vec<(u8, &[u8])> = state.map(|st| (attr::STATE, st)).into_iter().collect();
        let req = access_request_with(
            &self.sec,
            self.id,
            &random_authenticator(),
            user,
            pw,
            false,
            &extra,
        );
        let reply = self.c.exchange(&req, s.auth).expect("a reply");
        let code = check_reply(&reply, &req, &self.sec);
        (req, reply, code)
    }

    /// Primary authentication that must be challenged; returns the State.
    fn challenge(&mut self, s: &TestServer, user: &str, pw: &str) -> Vec<u8> {
        let (req, reply, code) = self.ask(s, user, pw, None);
        assert_eq!(code, Code::AccessChallenge, "{user}: challenged");
        assert_eq!(
            reply_attr(&reply, attr::REPLY_MESSAGE).as_deref(),
            Some(PROMPT.as_bytes())
        );
        assert_eq!(
            reply_attr(&reply, attr::SESSION_TIMEOUT),
            None,
            "no attributes yet"
        );
        let state = reply_attr(&reply, attr::STATE).expect("a State");
        assert_eq!(state.len(), 56, "16 random + 8 expiry + 32 MAC");
        // A retransmission gets the very same bytes (and no second challenge).
        self.c.send(&req, s.auth);
        assert_eq!(self.c.recv_timeout(REPLY_WAIT).as_deref(), Some(&reply[..]));
        state
    }
}

#[test]
fn totp_challenge_flow() {
    let s = TestServer::start(2, &body());
    let mut nas = Nas::new();
    base_step();

    // Right code → Accept, with the policy's reply attributes.
    let state = nas.challenge(&s, "alice", "alice-pw");
    let (_, reply, code) = nas.ask(&s, "alice", &code_at(ALICE_TOTP, 0), Some(&state));
    assert_eq!(code, Code::AccessAccept);
    assert_eq!(
        reply_attr(&reply, attr::SESSION_TIMEOUT),
        Some(3600u32.to_be_bytes().to_vec())
    );

    // The same State again (even with a fresh, valid code) → Reject: single use.
    let (_, _, code) = nas.ask(&s, "alice", &code_at(ALICE_TOTP, 1), Some(&state));
    assert_eq!(code, Code::AccessReject, "replayed State");

    // The code already used, with a new State → Reject (a code is accepted once).
    let state = nas.challenge(&s, "alice", "alice-pw");
    let (_, _, code) = nas.ask(&s, "alice", &code_at(ALICE_TOTP, 0), Some(&state));
    assert_eq!(code, Code::AccessReject, "reused code");

    // Wrong code → Reject, and the State is spent.
    let state = nas.challenge(&s, "alice", "alice-pw");
    let (_, _, code) = nas.ask(&s, "alice", "000000x", Some(&state));
    assert_eq!(code, Code::AccessReject, "wrong code");
    let (_, _, code) = nas.ask(&s, "alice", &code_at(ALICE_TOTP, 1), Some(&state));
    assert_eq!(code, Code::AccessReject, "State spent by the wrong code");

    // Forged State: one bit flipped, or random bytes → Reject; neither spends the real one.
    let state = nas.challenge(&s, "alice", "alice-pw");
    let mut forged = state.clone();
    forged[3] ^= 0x01;
    let (_, _, code) = nas.ask(&s, "alice", &code_at(ALICE_TOTP, 1), Some(&forged));
    assert_eq!(code, Code::AccessReject, "forged State");
    let random: Vec<u8> = (0..56).map(|_| rand::random::<u8>()).collect();
    let (_, _, code) = nas.ask(&s, "alice", &code_at(ALICE_TOTP, 1), Some(&random));
    assert_eq!(code, Code::AccessReject, "random State");
    // Alice's State presented for dave, with dave's right code → Reject (bound to the user).
    let (_, _, code) = nas.ask(&s, "dave", &code_at(DAVE_TOTP, 0), Some(&state));
    assert_eq!(code, Code::AccessReject, "another user's State");
    // The real one still works, with the next step's code (inside the ±1 window).
    let (_, _, code) = nas.ask(&s, "alice", &code_at(ALICE_TOTP, 1), Some(&state));
    assert_eq!(code, Code::AccessAccept, "genuine State after forgeries");

    // Not enrolled under an MFA policy → Reject (the default); no MFA policy → Accept.
    let (_, _, code) = nas.ask(&s, "carol", "carol-pw", None);
    assert_eq!(code, Code::AccessReject, "unenrolled");
    let (_, _, code) = nas.ask(&s, "nomfa", "nomfa-pw", None);
    assert_eq!(code, Code::AccessAccept, "policy without mfa");
    // An exempt group: the MFA policy's accept, attributes included, without a challenge.
    let (_, reply, code) = nas.ask(&s, "oncall", "oncall-pw", None);
    assert_eq!(code, Code::AccessAccept, "exempt group");
    assert_eq!(
        reply_attr(&reply, attr::SESSION_TIMEOUT),
        Some(3600u32.to_be_bytes().to_vec())
    );
    // Wrong primary password → Reject, no challenge.
    let (_, _, code) = nas.ask(&s, "dave", "wrong", None);
    assert_eq!(code, Code::AccessReject, "bad password");

    let m = radshard::backend::mfa::metrics().expect("mfa metrics registered");
    assert_eq!(
        m.challenges_issued
            .load(std::sync::atomic::Ordering::Relaxed),
        4
    );
    assert_eq!(m.outcome_count("accept"), 2);
    assert_eq!(m.outcome_count("mfa_state_replayed"), 2);
    assert_eq!(m.outcome_count("mfa_code_reused"), 1);
    assert_eq!(m.outcome_count("mfa_bad_code"), 1);
    assert_eq!(m.outcome_count("mfa_state_invalid"), 3);
    assert_eq!(m.outcome_count("mfa_not_enrolled"), 1);
    assert_eq!(m.outcome_count("accept_mfa_exempt_group"), 1);
    assert_eq!(m.pending.load(std::sync::atomic::Ordering::Relaxed), 0);

    // The same flow driven by FreeRADIUS's radclient, as a NAS sends it. (One test: the MFA
    // metrics are process-wide, the latest server's.)
    radclient_flow(&s);
}

fn radclient_flow(s: &TestServer) {
    let o = radclient(
        s.auth,
        "auth",
        SECRET,
        "User-Name = dave\nUser-Password = dave-pw\n",
    );
    let out = stdout_of(&o);
    assert!(
        out.contains("Received Access-Challenge"),
        "radclient said:\n{out}"
    );
    assert!(out.contains(PROMPT), "prompt in Reply-Message:\n{out}");
    let state = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("State = 0x"))
        .unwrap_or_else(|| panic!("no State in:\n{out}"))
        .trim()
        .to_string();
    assert_eq!(state.len(), 112, "56 octets in hex");

    let code = code_at(DAVE_TOTP, 0);
    let attrs = format!("User-Name = dave\nUser-Password = {code}\nState = 0x{state}\n");
    let out = stdout_of(&radclient(s.auth, "auth", SECRET, &attrs));
    assert!(
        out.contains("Received Access-Accept"),
        "radclient said:\n{out}"
    );
    assert!(
        out.contains("Session-Timeout = 3600"),
        "policy attributes:\n{out}"
    );

    // The State once more (with the next code): refused.
    let code = code_at(DAVE_TOTP, 1);
    let attrs = format!("User-Name = dave\nUser-Password = {code}\nState = 0x{state}\n");
    let out = stdout_of(&radclient(s.auth, "auth", SECRET, &attrs));
    assert!(
        out.contains("Received Access-Reject"),
        "radclient said:\n{out}"
    );
}
