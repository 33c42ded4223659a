//! The OTP challenge flow with the built-in TOTP provider, end to end against an in-process
//! server: PAP → Access-Challenge (State, Reply-Message) → Access-Request with the State and
//! the current code → Access-Accept with the policy's attributes; wrong code, replayed State,
//! forged State, another user's State, unenrolled user → Access-Reject. Also once with
//! FreeRADIUS's radclient, as a NAS would do it.

mod common;

use common::mfa::*;
use common::*;
use radshard::proto::{attr, Code};

const PROMPT: &str = "Code from your authenticator app";

fn body() -> String {
    format!(
        r#"{MFA_CLIENT}{alice}{dave}{carol}
[[users]]
name = "nomfa"
password = "nomfa-pw"

[[users]]
name = "oncall"
password = "oncall-pw"
groups = ["staff", "break-glass"]
{policy}
[[policies]]
name = "others"

[mfa]
provider = "totp"
prompt = "{PROMPT}"
exempt_groups = ["break-glass"]
"#,
        alice = staff_user("alice", "alice-pw", Some(ALICE_TOTP)),
        dave = staff_user("dave", "dave-pw", Some(DAVE_TOTP)),
        carol = staff_user("carol", "carol-pw", None),
        policy = staff_mfa_policy("staff-vpn", ""),
    )
}

/// Primary authentication that must be challenged, with the prompt and no attributes yet;
/// a retransmission gets the very same bytes (and no second challenge). Returns the State.
fn challenge(nas: &mut Nas, s: &TestServer, user: &str, pw: &str) -> Vec<u8> {
    let (req, reply, state) = nas.challenge(s, user, pw);
    assert_eq!(
        reply_attr(&reply, attr::REPLY_MESSAGE).as_deref(),
        Some(PROMPT.as_bytes())
    );
    assert_eq!(
        reply_attr(&reply, attr::SESSION_TIMEOUT),
        None,
        "no attributes yet"
    );
    assert_eq!(state.len(), 56, "16 random + 8 expiry + 32 MAC");
    nas.c.send(&req, s.auth);
    assert_eq!(nas.c.recv_timeout(REPLY_WAIT).as_deref(), Some(&reply[..]));
    state
}

#[test]
fn totp_challenge_flow() {
    let (s, m) = start_mfa_server(2, &body());
    let mut nas = Nas::new();
    base_step();

    // Right code → Accept, with the policy's reply attributes.
    let state = challenge(&mut nas, &s, "alice", "alice-pw");
    let (reply, code) = nas.ask(&s, "alice", &code_at(ALICE_TOTP, 0), Some(&state));
    assert_eq!(code, Code::AccessAccept);
    assert_eq!(
        reply_attr(&reply, attr::SESSION_TIMEOUT),
        session_timeout_3600()
    );

    // The same State again (even with a fresh, valid code) → Reject: single use.
    let (_, code) = nas.ask(&s, "alice", &code_at(ALICE_TOTP, 1), Some(&state));
    assert_eq!(code, Code::AccessReject, "replayed State");

    // The code already used, with a new State → Reject (a code is accepted once).
    let state = challenge(&mut nas, &s, "alice", "alice-pw");
    let (_, code) = nas.ask(&s, "alice", &code_at(ALICE_TOTP, 0), Some(&state));
    assert_eq!(code, Code::AccessReject, "reused code");

    // Wrong code → Reject, and the State is spent.
    let state = challenge(&mut nas, &s, "alice", "alice-pw");
    let (_, code) = nas.ask(&s, "alice", "000000x", Some(&state));
    assert_eq!(code, Code::AccessReject, "wrong code");
    let (_, code) = nas.ask(&s, "alice", &code_at(ALICE_TOTP, 1), Some(&state));
    assert_eq!(code, Code::AccessReject, "State spent by the wrong code");

    // Forged State: one bit flipped, or random bytes → Reject; neither spends the real one.
    let state = challenge(&mut nas, &s, "alice", "alice-pw");
    let mut forged = state.clone();
    forged[3] ^= 0x01;
    let (_, code) = nas.ask(&s, "alice", &code_at(ALICE_TOTP, 1), Some(&forged));
    assert_eq!(code, Code::AccessReject, "forged State");
    let random: Vec<u8> = (0..56).map(|_| rand::random::<u8>()).collect();
    let (_, code) = nas.ask(&s, "alice", &code_at(ALICE_TOTP, 1), Some(&random));
    assert_eq!(code, Code::AccessReject, "random State");
    // Alice's State presented for dave, with dave's right code → Reject (bound to the user).
    let (_, code) = nas.ask(&s, "dave", &code_at(DAVE_TOTP, 0), Some(&state));
    assert_eq!(code, Code::AccessReject, "another user's State");
    // The real one still works, with the next step's code (inside the ±1 window).
    let (_, code) = nas.ask(&s, "alice", &code_at(ALICE_TOTP, 1), Some(&state));
    assert_eq!(code, Code::AccessAccept, "genuine State after forgeries");

    // Not enrolled under an MFA policy → Reject (the default); no MFA policy → Accept.
    let (_, code) = nas.ask(&s, "carol", "carol-pw", None);
    assert_eq!(code, Code::AccessReject, "unenrolled");
    let (_, code) = nas.ask(&s, "nomfa", "nomfa-pw", None);
    assert_eq!(code, Code::AccessAccept, "policy without mfa");
    // An exempt group: the MFA policy's accept, attributes included, without a challenge.
    let (reply, code) = nas.ask(&s, "oncall", "oncall-pw", None);
    assert_eq!(code, Code::AccessAccept, "exempt group");
    assert_eq!(
        reply_attr(&reply, attr::SESSION_TIMEOUT),
        session_timeout_3600()
    );
    // Wrong primary password → Reject, no challenge.
    let (_, code) = nas.ask(&s, "dave", "wrong", None);
    assert_eq!(code, Code::AccessReject, "bad password");

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
    let state = radclient_state(&out);
    let state = state.strip_prefix("0x").expect("octets in hex");
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
