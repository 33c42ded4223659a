//! privacyIDEA triggers the challenge (`[mfa.privacyidea] service_user`), end to end with the
//! real peers: OpenLDAP slapd for the primary authentication, a real privacyIDEA 3.14 (LDAP
//! realm `ldaprealm` on that slapd, HOTP token with PIN 1234 for alice, none for bob), radshard
//! in-process and FreeRADIUS's radclient. The user types only the code: the PIN is not needed
//! because privacyIDEA checks it against the challenge it triggered (transaction id).
//! Push tokens: real privacyIDEA push tokens in poll-only mode (no Firebase), the smartphone
//! simulated by `pi_common/phone.py` (enrollment and signed answers, as the app does).

mod common;
mod ldap_common;
mod pi_common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::mfa::{radclient_state, send_with_retransmissions};
use common::{access_request, check_reply, random_authenticator, secret, RadClient, SECRET};
use ldap_common::*;

/// One test at a time: the MFA metrics read below are those of the latest store started
/// (process-wide), and two privacyIDEAs at once are heavy for a small machine.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

const PROMPT: &str = "Code from your token, please";

/// radclient with arbitrary attributes, waiting up to 8 s: (reply code, output).
fn ask(port: u16, attrs: &str) -> (Option<String>, String) {
    ask_within(port, 8, attrs)
}

/// PAP alice/alicepw → Access-Challenge with the prompt; its State (radclient's hex).
fn challenge(port: u16) -> String {
    let (code, out) = ask(port, "User-Name = alice\nUser-Password = alicepw\n");
    assert_eq!(code.as_deref(), Some("Access-Challenge"), "{out}");
    assert!(
        out.contains(&format!("Reply-Message = \"{PROMPT}\"")),
        "prompt: {out}"
    );
    radclient_state(&out)
}

fn answer(port: u16, state: &str, code: &str) -> (Option<String>, String) {
    ask(
        port,
        &format!("User-Name = alice\nUser-Password = {code}\nState = {state}\n"),
    )
}

/// radshard's config: slapd primary, the MFA policy, privacyIDEA at `url` with the service
/// account, `on_unreachable` as given.
fn radshard_config(ldap_port: u16, url: &str, on_unreachable: &str) -> String {
    radshard_config_with(ldap_port, url, on_unreachable, "")
}

fn radshard_config_with(ldap_port: u16, url: &str, on_unreachable: &str, pi_extra: &str) -> String {
    format!(
        r#"
[ldap]
servers = ["ldap://127.0.0.1:{ldap_port}"]
bind_dn = "{ADMIN}"
bind_password = "adminpw"
base_dn = "{SUFFIX}"
user_filter = "(&(objectClass=inetOrgPerson)(uid={{user}}))"
connect_timeout = "3s"

{policy}
[mfa]
provider = "privacyidea"
prompt = "{PROMPT}"
on_unreachable = "{on_unreachable}"

[mfa.privacyidea]
url = "{url}"
realm = "ldaprealm"
timeout = "3s"
service_user = "admin"
service_password = "adminpw"
{pi_extra}
"#,
        policy = radius_users_mfa_policy()
    )
}

/// "Class = radius-users" as radclient prints it.
fn class() -> String {
    radclient_class("radius-users")
}

/// A real privacyIDEA with the realm `ldaprealm` on `slapd` and alice's HOTP token (RFC 4226
/// key, PIN 1234).
fn privacyidea_with_alice_hotp(slapd: &Slapd) -> pi_common::PrivacyIdea {
    pi_common::start(&format!(
        "{}\ncurl -sf -X POST $PI/token/init -H \"$H\" -d type=hotp -d serial=HOTP-ALICE \
         -d otpkey=3132333435363738393031323334353637383930 -d user=alice -d realm=ldaprealm \
         -d pin=1234 >/dev/null\n",
        pi_common::ldap_realm(slapd.port)
    ))
}

#[test]
fn ldap_then_privacyidea_triggered_hotp() {
    let _one = serial();
    let slapd = Slapd::start();
    let pi = privacyidea_with_alice_hotp(&slapd);
    let rs = Radshard::start(&radshard_config(slapd.port, &pi.url, "reject"));

    // The first request triggers exactly one challenge at privacyIDEA.
    assert_eq!(pi.challenges("HOTP-ALICE"), 0);
    let state = challenge(rs.port);
    assert_eq!(pi.challenges("HOTP-ALICE"), 1);
    // The State on the wire is radshard's own (nonce, expiry, MAC), whatever privacyIDEA's
    // transaction id.
    assert_eq!(
        state.len(),
        2 + 2 * radshard::auth::conversation::state::STATE_LEN,
        "{state}"
    );

    // The first RFC 4226 value, without the PIN → Accept with the policy's attributes.
    let (code, out) = answer(rs.port, &state, "755224");
    assert_eq!(code.as_deref(), Some("Access-Accept"), "{out}");
    assert!(out.contains(&class()), "policy reply: {out}");

    // The same State again, with the next valid code → Reject (single use).
    let (code, out) = answer(rs.port, &state, "287082");
    assert_eq!(
        code.as_deref(),
        Some("Access-Reject"),
        "replayed State: {out}"
    );

    // A wrong code → Reject.
    let state = challenge(rs.port);
    let (code, out) = answer(rs.port, &state, "000000");
    assert_eq!(code.as_deref(), Some("Access-Reject"), "wrong code: {out}");

    // A forged State (last octet changed) with a valid code → Reject; the genuine State is
    // untouched by the forgery and takes the same code.
    let state = challenge(rs.port);
    let last = u8::from_str_radix(&state[state.len() - 2..], 16).expect("hex State");
    let forged = format!("{}{:02x}", &state[..state.len() - 2], last ^ 1);
    let (code, out) = answer(rs.port, &forged, "287082");
    assert_eq!(
        code.as_deref(),
        Some("Access-Reject"),
        "forged State: {out}"
    );
    let (code, out) = answer(rs.port, &state, "287082");
    assert_eq!(
        code.as_deref(),
        Some("Access-Accept"),
        "genuine State: {out}"
    );

    // bob is in radius-users but has no token at privacyIDEA → Reject at once
    // (unenrolled = "reject"), no challenge.
    let (code, out) = ask(rs.port, "User-Name = bob\nUser-Password = bobpw\n");
    assert_eq!(code.as_deref(), Some("Access-Reject"), "no token: {out}");

    // A wrong LDAP password: no trigger at privacyIDEA.
    let before = pi.challenges("HOTP-ALICE");
    let (code, _) = ask(rs.port, "User-Name = alice\nUser-Password = wrong\n");
    assert_eq!(code.as_deref(), Some("Access-Reject"));
    assert_eq!(pi.challenges("HOTP-ALICE"), before);

    let m = radshard::backend::mfa::metrics().expect("mfa metrics");
    assert_eq!(m.outcome_count("accept"), 2);
    assert_eq!(m.outcome_count("mfa_bad_code"), 1);
    assert_eq!(m.outcome_count("mfa_state_replayed"), 1);
    assert_eq!(m.outcome_count("mfa_state_invalid"), 1);
    assert_eq!(m.outcome_count("mfa_not_enrolled"), 1);
    drop(rs);

    // A service account privacyIDEA refuses is privacyIDEA not answering (on_unreachable =
    // "reject"), not a user without a token: even with unenrolled = "accept", Reject.
    let bad = radshard_config(slapd.port, &pi.url, "reject")
        .replace(
            "service_password = \"adminpw\"",
            "service_password = \"wrong\"",
        )
        .replace("[mfa]\n", "[mfa]\nunenrolled = \"accept\"\n");
    let rs = Radshard::start(&bad);
    let (code, out) = ask(rs.port, "User-Name = alice\nUser-Password = alicepw\n");
    assert_eq!(
        code.as_deref(),
        Some("Access-Reject"),
        "bad service account: {out}"
    );
    let (code, out) = ask(rs.port, "User-Name = bob\nUser-Password = bobpw\n");
    assert_eq!(
        code.as_deref(),
        Some("Access-Reject"),
        "bad service account: {out}"
    );
    let m = radshard::backend::mfa::metrics().expect("mfa metrics");
    assert_eq!(m.outcome_count("mfa_unavailable"), 2);
    assert_eq!(m.outcome_count("mfa_not_enrolled_accepted"), 0);
    drop(rs);
}

#[test]
fn privacyidea_unreachable_fail_secure_and_fail_safe() {
    let _one = serial();
    let slapd = Slapd::start();
    // A port nobody listens on.
    let dead = format!("http://127.0.0.1:{}", free_tcp_port());

    let rs = Radshard::start(&radshard_config(slapd.port, &dead, "reject"));
    let (code, out) = ask(rs.port, "User-Name = alice\nUser-Password = alicepw\n");
    assert_eq!(code.as_deref(), Some("Access-Reject"), "fail-secure: {out}");
    let m = radshard::backend::mfa::metrics().expect("mfa metrics");
    assert_eq!(m.outcome_count("mfa_unavailable"), 1);
    drop(rs);

    let rs = Radshard::start(&radshard_config(slapd.port, &dead, "accept"));
    let (code, out) = ask(rs.port, "User-Name = alice\nUser-Password = alicepw\n");
    assert_eq!(code.as_deref(), Some("Access-Accept"), "fail-safe: {out}");
    assert!(out.contains(&class()), "policy reply: {out}");
    let m = radshard::backend::mfa::metrics().expect("mfa metrics");
    assert_eq!(m.outcome_count("mfa_unavailable_failsafe"), 1);
    // The primary authentication still counts: a wrong password is refused.
    let (code, _) = ask(rs.port, "User-Name = alice\nUser-Password = wrong\n");
    assert_eq!(code.as_deref(), Some("Access-Reject"));
    drop(rs);
}

#[test]
fn ldap_then_privacyidea_push() {
    let _one = serial();
    let slapd = Slapd::start();
    let pi = privacyidea_with_alice_hotp(&slapd);
    // bob: a push token only; alice: HOTP and push (prefer_push, the default, holds for push).
    pi.enroll_push("PUSH-BOB", "bob", "ldaprealm");
    pi.enroll_push("PUSH-ALICE", "alice", "ldaprealm");
    let rs = Radshard::start(&radshard_config_with(
        slapd.port,
        &pi.url,
        "reject",
        "push_wait = \"5s\"\npoll_interval = \"200ms\"",
    ));
    let pap = |user: &str, pw: &str| {
        let t = Instant::now();
        let (code, out) = ask(
            rs.port,
            &format!("User-Name = {user}\nUser-Password = {pw}\n"),
        );
        (code, out, t.elapsed())
    };

    // Approved on the phone → Accept with the policy's attributes.
    let mut phone = pi.phone("PUSH-BOB", true, 10, 0.0);
    let (code, out, _) = pap("bob", "bobpw");
    assert_eq!(code.as_deref(), Some("Access-Accept"), "approved: {out}");
    assert!(out.contains(&class()), "policy reply: {out}");
    assert!(phone.wait().expect("phone").success(), "the phone answered");

    // Declined → Reject, before the wait is over.
    let mut phone = pi.phone("PUSH-BOB", false, 10, 0.0);
    let (code, out, took) = pap("bob", "bobpw");
    assert_eq!(code.as_deref(), Some("Access-Reject"), "declined: {out}");
    assert!(
        took < Duration::from_secs(5),
        "declined at once, took {took:?}"
    );
    assert!(phone.wait().expect("phone").success(), "the phone answered");

    // Nobody answers → Reject once push_wait (5 s) is over.
    let (code, out, took) = pap("bob", "bobpw");
    assert_eq!(code.as_deref(), Some("Access-Reject"), "unanswered: {out}");
    assert!(
        took >= Duration::from_secs(5),
        "held for the wait, took {took:?}"
    );

    // alice has both tokens: the request is held for the push, not challenged for a code.
    let mut phone = pi.phone("PUSH-ALICE", true, 10, 0.0);
    let (code, out, _) = pap("alice", "alicepw");
    assert_eq!(code.as_deref(), Some("Access-Accept"), "both tokens: {out}");
    assert!(phone.wait().expect("phone").success(), "the phone answered");

    // Five retransmissions while the push is pending: one trigger at privacyIDEA, and the
    // one reply (and the cached one for a later copy) byte for byte the same.
    let before = pi.triggers("bob");
    let mut phone = pi.phone("PUSH-BOB", true, 10, 2.0);
    let sec = secret(SECRET);
    let req = access_request(&sec, 7, &random_authenticator(), "bob", "bobpw", true);
    let to: SocketAddr = format!("127.0.0.1:{}", rs.port).parse().expect("addr");
    let nas = RadClient::new();
    let mut replies = send_with_retransmissions(&nas, to, &req, 5, Duration::from_millis(300));
    replies.extend(nas.recv_timeout(Duration::from_secs(10)));
    let first = replies.first().expect("a reply once approved").clone();
    assert_eq!(
        check_reply(&first, &req, &sec),
        radshard::proto::Code::AccessAccept
    );
    let more: Vec<Vec<u8>> = replies[1..]
        .iter()
        .cloned()
        .chain(nas.drain(Duration::from_millis(500), Duration::from_secs(2)))
        .collect();
    nas.send(&req, to);
    let again = nas
        .recv_timeout(Duration::from_secs(2))
        .expect("the cached reply");
    for r in more.iter().chain(std::iter::once(&again)) {
        assert_eq!(r, &first, "identical reply bytes");
    }
    assert!(phone.wait().expect("phone").success(), "the phone answered");
    assert_eq!(pi.triggers("bob") - before, 1, "one push for all copies");
    drop(rs);
}
