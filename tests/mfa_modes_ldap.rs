//! Second factor for directory users (real slapd) in one request or by challenge: TOTP
//! secrets from MFA-only `[[users]]` entries (no password), found by the directory's
//! alternate login name or by the User-Name; `appended_code` with exactly one LDAP bind per
//! attempt and only the password part sent to the directory; `password_code` with the
//! privacyIDEA provider (a wire-format double), which receives only the code.

mod common;
mod ldap_common;

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use common::mfa::{
    code_at, privacyidea_check_answer, radclient_state, recording_double,
    send_with_retransmissions, wrong_code, Bodies, ALICE_TOTP, DAVE_TOTP as BOB_TOTP,
};
use common::{access_request, check_reply, random_authenticator, secret, RadClient, SECRET};
use ldap_common::*;
use radshard::proto::Code;

/// MFA-only entries (no password, only the TOTP secret of a directory user: alice's filed
/// under the directory's alternate login name (mail), bob's under his User-Name), and two
/// policies: VPN concentrators (NAS-Port-Type Virtual) get password and code in one
/// User-Password, others are challenged.
fn totp_config() -> String {
    format!(
        "\n[[users]]\nname = \"alice@example.org\"\ntotp_secret = \"{ALICE_TOTP}\"\n\
         \n[[users]]\nname = \"bob\"\ntotp_secret = \"{BOB_TOTP}\"\n{appended}{challenge}\
         \n[mfa]\nprovider = \"totp\"\n",
        appended = ldap_mfa_policy(
            "vpn-appended",
            "nas_port_type = [\"Virtual\"]\nmfa_mode = \"appended_code\"\n",
            "appended"
        ),
        challenge = ldap_mfa_policy("others-challenge", "", "challenge"),
    )
}

#[test]
fn directory_users_with_local_totp_secrets() {
    let slapd = Slapd::start();
    let rs = Radshard::start(&format!(
        "{}{}",
        ldap_section(&[slapd.url()], ""),
        totp_config()
    ));
    let binds = || rs.backend().ldap_user_binds.load(Relaxed);

    // Challenge mode: LDAP alice → Access-Challenge → her code → Accept.
    let (code, out) = ask(rs.port, "User-Name = alice\nUser-Password = \"alicepw\"\n");
    assert_eq!(code.as_deref(), Some("Access-Challenge"), "{out}");
    let state = radclient_state(&out);
    let (code, out) = ask(
        rs.port,
        &format!(
            "User-Name = alice\nUser-Password = \"{}\"\nState = {state}\n",
            code_at(ALICE_TOTP, 0)
        ),
    );
    assert_eq!(code.as_deref(), Some("Access-Accept"), "{out}");
    assert!(out.contains(&radclient_class("challenge")), "{out}");
    assert_eq!(binds(), 1);

    // appended_code: password and the next code in one request → Accept, one bind.
    let vpn = "NAS-Port-Type = Virtual\n";
    let (code, out) = ask(
        rs.port,
        &format!(
            "User-Name = alice\nUser-Password = \"alicepw{}\"\n{vpn}",
            code_at(ALICE_TOTP, 1)
        ),
    );
    assert_eq!(code.as_deref(), Some("Access-Accept"), "{out}");
    assert!(out.contains(&radclient_class("appended")), "{out}");
    assert_eq!(binds(), 2, "one bind, with the password part only");

    // bob (secret under his User-Name): a wrong code → Reject after exactly one bind.
    let (code, out) = ask(
        rs.port,
        &format!(
            "User-Name = bob\nUser-Password = \"bobpw{}\"\n{vpn}",
            wrong_code(BOB_TOTP)
        ),
    );
    assert_eq!(code.as_deref(), Some("Access-Reject"), "{out}");
    assert_eq!(binds(), 3, "a wrong code is one bind");
    // A wrong password part with the right code → Reject, and the code is not checked (so
    // not spent): the same code with the right password is then accepted.
    let bob_code = code_at(BOB_TOTP, 0);
    let (code, out) = ask(
        rs.port,
        &format!("User-Name = bob\nUser-Password = \"bobpx{bob_code}\"\n{vpn}"),
    );
    assert_eq!(code.as_deref(), Some("Access-Reject"), "{out}");
    assert_eq!(binds(), 4);
    let (code, out) = ask(
        rs.port,
        &format!("User-Name = bob\nUser-Password = \"bobpw{bob_code}\"\n{vpn}"),
    );
    assert_eq!(
        code.as_deref(),
        Some("Access-Accept"),
        "code unspent: {out}"
    );
    assert_eq!(binds(), 5);
    // Too short to hold a password and six digits, or a tail that is not digits → Reject
    // without asking the directory.
    for pw in ["12345", "bobpw12345x"] {
        let (code, out) = ask(
            rs.port,
            &format!("User-Name = bob\nUser-Password = \"{pw}\"\n{vpn}"),
        );
        assert_eq!(code.as_deref(), Some("Access-Reject"), "{out}");
    }
    assert_eq!(binds(), 5, "no bind for a value without a code");
    // An MFA-only entry is no primary credential: without its code bob's TOTP secret is not
    // a password (and a name with only an MFA entry still authenticates at the directory).
    let (code, _) = ask(
        rs.port,
        &format!("User-Name = bob\nUser-Password = \"{BOB_TOTP}\"\n"),
    );
    assert_eq!(code.as_deref(), Some("Access-Reject"));
}

/// privacyIDEA `/validate/check` double: accepts 755224 for alice@example.org, answering after
/// `delay`; records each form body.
fn privacyidea_double(delay: Duration) -> (String, Bodies) {
    recording_double(move |body| {
        std::thread::sleep(delay);
        privacyidea_check_answer(
            body.split('&').any(|kv| kv == "pass=755224")
                && body.contains("user=alice%40example.org"),
        )
    })
}

/// Directory users in radius-users, `password_code` with privacyIDEA at `url`, reply
/// `Class = "vpn"`.
fn password_code_config(slapd: &Slapd, url: &str) -> String {
    format!(
        "{}\n[[policies]]\nname = \"vpn\"\ngroups = [\"radius-users\"]\nauth_methods = [\"pap\"]\nmfa = true\n\
         mfa_mode = \"password_code\"\nreply = {{ Class = \"vpn\" }}\n\
         [mfa]\nprovider = \"privacyidea\"\n[mfa.privacyidea]\nurl = \"{url}\"\n",
        ldap_section(&[slapd.url()], "")
    )
}

#[test]
fn password_code_with_privacyidea_sends_only_the_code() {
    let slapd = Slapd::start();
    let (url, seen) = privacyidea_double(Duration::ZERO);
    let rs = Radshard::start(&password_code_config(&slapd, &url));
    let binds = || rs.backend().ldap_user_binds.load(Relaxed);
    let (code, out) = ask(
        rs.port,
        "User-Name = alice\nUser-Password = \"alicepw,755224\"\n",
    );
    assert_eq!(code.as_deref(), Some("Access-Accept"), "{out}");
    assert!(out.contains(&radclient_class("vpn")), "{out}");
    assert_eq!(binds(), 1);
    {
        let seen = seen.lock().expect("lock");
        assert_eq!(seen.len(), 1, "{seen:?}");
        let pass: Vec<&str> = seen[0]
            .split('&')
            .filter_map(|kv| kv.strip_prefix("pass="))
            .collect();
        assert_eq!(pass, ["755224"], "only the code: {}", seen[0]);
        assert!(!seen[0].contains("alicepw"), "{}", seen[0]);
    }
    // A wrong code: one bind, one check, Reject.
    let (code, out) = ask(
        rs.port,
        "User-Name = alice\nUser-Password = \"alicepw,123123\"\n",
    );
    assert_eq!(code.as_deref(), Some("Access-Reject"), "{out}");
    assert_eq!(binds(), 2);
    assert_eq!(seen.lock().expect("lock").len(), 2);
    // A wrong password: rejected by the directory, privacyIDEA not asked.
    let (code, _) = ask(
        rs.port,
        "User-Name = alice\nUser-Password = \"alicepx,755224\"\n",
    );
    assert_eq!(code.as_deref(), Some("Access-Reject"));
    assert_eq!(seen.lock().expect("lock").len(), 2);
    // No comma: neither the directory nor privacyIDEA is asked.
    let (code, _) = ask(rs.port, "User-Name = alice\nUser-Password = \"alicepw\"\n");
    assert_eq!(code.as_deref(), Some("Access-Reject"));
    assert_eq!(binds(), 3);
    assert_eq!(seen.lock().expect("lock").len(), 2);
}

/// Copies of one combined-mode Access-Request (retransmissions, same Identifier and
/// authenticator) while privacyIDEA is slow: one bind, one check, and every reply the same
/// bytes (the later ones from the reply cache).
#[test]
fn password_code_retransmissions_share_one_bind_and_one_check() {
    let slapd = Slapd::start();
    let (url, seen) = privacyidea_double(Duration::from_millis(500));
    let rs = Radshard::start(&password_code_config(&slapd, &url));
    let sec = secret(SECRET);
    let request = access_request(
        &sec,
        7,
        &random_authenticator(),
        "alice",
        "alicepw,755224",
        true,
    );
    let nas = RadClient::new();
    let to = SocketAddr::from(([127, 0, 0, 1], rs.port));
    // Three copies while the check is pending, then one after the answer.
    let mut replies = send_with_retransmissions(&nas, to, &request, 2, Duration::from_millis(100));
    replies.extend(nas.recv_timeout(Duration::from_secs(5)));
    assert!(!replies.is_empty(), "answered");
    nas.send(&request, to);
    replies.extend(nas.recv_timeout(common::REPLY_WAIT));
    // Collect any late reply.
    replies.extend(nas.drain(Duration::from_millis(100), Duration::from_secs(1)));
    assert!(replies.len() >= 2, "{} replies", replies.len());
    assert_eq!(check_reply(&replies[0], &request, &sec), Code::AccessAccept);
    assert!(
        replies.iter().all(|r| r == &replies[0]),
        "identical replies"
    );
    assert_eq!(seen.lock().expect("lock").len(), 1, "one check");
    assert_eq!(rs.backend().ldap_user_binds.load(Relaxed), 1, "one bind");
}
