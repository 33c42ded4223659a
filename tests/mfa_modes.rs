//! Code-in-password MFA modes with the built-in TOTP provider and local users, over real UDP:
//! `password_code` (User-Password = `password,code`) accepts with the policy's attributes in
//! one round trip; a wrong code, a reused code, a missing comma are rejected; a retransmission
//! gets the cached reply (one code check); a password read in one mode but decided by a policy
//! of another is rejected as `mfa_mode_mismatch`. Once through FreeRADIUS's radclient.
//! (One test: the MFA metrics are process-wide, the latest server's.)

mod common;

use std::sync::atomic::Ordering::Relaxed;

use common::mfa::*;
use common::*;
use radshard::proto::{attr, Code};

const ERIN_TOTP: &str = "MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U";

fn body() -> String {
    format!(
        r#"{MFA_CLIENT}{alice}{dave}{erin}
[[users]]
name = "nomfa"
password = "nomfa-pw"

# Requests to the admin SSID are read whole (this policy needs no code) whatever the user:
# a staff user decided by the next policy there is a mode mismatch.
[[policies]]
name = "admin-wifi"
called_station_id = ":ADMIN$"
groups = ["admins"]
{policy}
[[policies]]
name = "others"

[mfa]
provider = "totp"
"#,
        alice = staff_user("alice", "alice,pw", Some(ALICE_TOTP)),
        dave = staff_user("dave", "dave-pw", Some(DAVE_TOTP)),
        erin = staff_user("erin", "erin-pw", Some(ERIN_TOTP)),
        policy = staff_mfa_policy(
            "staff-vpn",
            "auth_methods = [\"pap\"]\nmfa_mode = \"password_code\"\n"
        ),
    )
}

#[test]
fn password_code_mode_with_local_totp() {
    let (s, m) = start_mfa_server(2, &body());
    let mut nas = Nas::new();
    base_step();

    // Password and code in one request → Accept with the policy's attributes, no challenge.
    // Alice's password has a comma of its own: the split is at the last one.
    let (reply, code) = nas.ask(
        &s,
        "alice",
        &format!("alice,pw,{}", code_at(ALICE_TOTP, 0)),
        None,
    );
    assert_eq!(code, Code::AccessAccept);
    assert_eq!(
        reply_attr(&reply, attr::SESSION_TIMEOUT),
        session_timeout_3600()
    );
    assert_eq!(reply_attr(&reply, attr::STATE), None, "no challenge");
    assert_eq!(m.challenges_issued.load(Relaxed), 0);

    // The same code again (a new request) → Reject: a code is accepted once.
    let (_, code) = nas.ask(
        &s,
        "alice",
        &format!("alice,pw,{}", code_at(ALICE_TOTP, 0)),
        None,
    );
    assert_eq!(code, Code::AccessReject, "reused code");
    // A wrong code → Reject.
    let wrong = if code_at(ALICE_TOTP, 1) == "000000" {
        "111111"
    } else {
        "000000"
    };
    let (_, code) = nas.ask(&s, "alice", &format!("alice,pw,{wrong}"), None);
    assert_eq!(code, Code::AccessReject, "wrong code");
    // The right code with a wrong password → Reject, and the code is not spent: the
    // provider is not asked before primary authentication passed.
    let (_, code) = nas.ask(
        &s,
        "alice",
        &format!("alice,px,{}", code_at(ALICE_TOTP, 1)),
        None,
    );
    assert_eq!(code, Code::AccessReject, "wrong password");
    let (_, code) = nas.ask(
        &s,
        "alice",
        &format!("alice,pw,{}", code_at(ALICE_TOTP, 1)),
        None,
    );
    assert_eq!(
        code,
        Code::AccessAccept,
        "the code was not spent by the bad password"
    );
    // No comma at all → Reject (mfa_bad_code), even with the right password in it.
    let (_, code) = nas.ask(&s, "dave", "dave-pw", None);
    assert_eq!(code, Code::AccessReject, "missing comma");
    assert_eq!(m.outcome_count("mfa_bad_code"), 2);
    assert_eq!(m.outcome_count("mfa_code_reused"), 1);
    assert_eq!(m.outcome_count("accept"), 2);

    // A retransmission of a combined-mode request: the very same reply, one code check (a
    // second check would have been refused as a reused code, and counted).
    let (req, reply, code) = nas.ask_with(
        &s,
        "dave",
        &format!("dave-pw,{}", code_at(DAVE_TOTP, 0)),
        &[],
    );
    assert_eq!(code, Code::AccessAccept);
    for _ in 0..3 {
        nas.c.send(&req, s.auth);
        assert_eq!(
            nas.c.recv_timeout(REPLY_WAIT).as_deref(),
            Some(&reply[..]),
            "identical cached reply"
        );
    }
    assert_eq!(m.outcome_count("accept"), 3, "one check for four copies");
    assert_eq!(m.outcome_count("mfa_code_reused"), 1);

    // Mode mismatch, both ways. At the admin SSID the password is read whole; erin is staff
    // (not admin), so the MFA policy in password_code mode decides → refused, not guessed.
    let station: &[u8] = b"00-11-22-33-44-55:ADMIN";
    let (_, _, code) = nas.ask_with(&s, "erin", "erin-pw", &[(attr::CALLED_STATION_ID, station)]);
    assert_eq!(code, Code::AccessReject, "read whole, MFA policy decides");
    assert_eq!(m.outcome_count("mfa_mode_mismatch"), 1);
    // Elsewhere the MFA policy is the first that can match, so the password is split; a user
    // the policy without MFA decides then is refused too (the code went unchecked).
    let (_, code) = nas.ask(&s, "nomfa", "nomfa-pw,123456", None);
    assert_eq!(
        code,
        Code::AccessReject,
        "split, policy without MFA decides"
    );
    assert_eq!(m.outcome_count("mfa_mode_mismatch"), 2);
    // ... and erin with password and code, elsewhere → Accept.
    let (_, code) = nas.ask(
        &s,
        "erin",
        &format!("erin-pw,{}", code_at(ERIN_TOTP, 0)),
        None,
    );
    assert_eq!(code, Code::AccessAccept);

    // FreeRADIUS's radclient, as a NAS would send it (the value quoted: radclient would read
    // a bare comma as an attribute separator).
    let attrs = format!(
        "User-Name = dave\nUser-Password = \"dave-pw,{}\"\n",
        code_at(DAVE_TOTP, 1)
    );
    let out = stdout_of(&radclient(s.auth, "auth", SECRET, &attrs));
    assert!(
        out.contains("Received Access-Accept"),
        "radclient said:\n{out}"
    );
    assert!(out.contains("Session-Timeout = 3600"), "{out}");
    let out = stdout_of(&radclient(
        s.auth,
        "auth",
        SECRET,
        "User-Name = dave\nUser-Password = \"dave-pw,000000\"\n",
    ));
    assert!(
        out.contains("Received Access-Reject"),
        "radclient said:\n{out}"
    );
}

/// `radshard check-config` refuses the combinations that cannot work, naming the file and
/// the line of the `mfa_mode` (or of the user), and accepts a combined mode it can serve.
#[test]
fn check_config_refuses_combined_modes_that_cannot_work() {
    let exe = env!("CARGO_BIN_EXE_radshard");
    let dir = tempfile::tempdir().expect("temp dir");
    let head = "[[clients]]\nname = \"lo\"\naddresses = [\"127.0.0.1\"]\nsecret = \"testing123\"\n\
                [[policies]]\nname = \"vpn\"\nmfa = true\n";
    let cases = [
        (
            format!(
                "{head}mfa_mode = \"password_code\"\n[mfa]\nprovider = \"rest_push\"\n\
                 [mfa.rest_push]\nurl = \"http://127.0.0.1:9/push\"\n"
            ),
            Some((8, "cannot work with a push provider")),
        ),
        (
            format!(
                "{head}auth_methods = [\"chap\"]\nmfa_mode = \"appended_code\"\n[mfa]\nprovider = \"totp\"\n"
            ),
            Some((9, "cannot work with chap")),
        ),
        (
            format!("{head}[[users]]\nname = \"alice\"\ngroups = [\"g\"]\n"),
            Some((8, "needs password, password_hash or nt_hash (or, for a directory user's second factor only, totp_secret)")),
        ),
        (
            format!(
                "{head}auth_methods = [\"pap\"]\nmfa_mode = \"appended_code\"\n[mfa]\nprovider = \"totp\"\n\
                 [[users]]\nname = \"alice@example.org\"\ntotp_secret = \"{ALICE_TOTP}\"\n"
            ),
            None,
        ),
    ];
    for (i, (text, refused)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("c{i}.toml"));
        std::fs::write(&path, text).expect("write");
        let o = std::process::Command::new(exe)
            .args(["check-config", "--config"])
            .arg(&path)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run check-config");
        let err = String::from_utf8_lossy(&o.stderr);
        match refused {
            Some((line, what)) => {
                assert!(!o.status.success(), "refused: {text}");
                let expect = format!("{}:{line}: ", path.display());
                assert!(
                    err.contains(&expect) && err.contains(what),
                    "expected `{expect}… {what} …`, got: {err}"
                );
            }
            None => assert!(o.status.success(), "accepted: {err}"),
        }
    }
}
