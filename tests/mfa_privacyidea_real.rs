//! The privacyIDEA provider without a service account (radshard's own challenge, the code sent
//! as `pass`) against a real privacyIDEA (`pi_common`: pip-installed, sqlite, werkzeug dev
//! server, started on a free port by this test and stopped at its end).
//!
//! privacyIDEA: flat-file realm `flatrealm` with users dave (HOTP token, no PIN, RFC 4226 key
//! "12345678901234567890") and erin (no token). radshard: local users dave and erin, a policy
//! requiring MFA, `[mfa] provider = "privacyidea"`.

mod common;
mod pi_common;

use std::time::Duration;

use common::*;
use radshard::proto::{attr, Code};

/// RFC 4226 Appendix D HOTP values for the key "12345678901234567890".
const HOTP: [&str; 4] = ["755224", "287082", "359152", "969429"];

/// The flat-file realm with dave's HOTP token (no PIN).
const CONFIGURE: &str = r#"
curl -sf -X POST $PI/resolver/flat1 -H "$H" -d type=passwdresolver -d fileName=$D/users.passwd >/dev/null
curl -sf -X POST $PI/realm/flatrealm -H "$H" -d resolvers=flat1 >/dev/null
curl -sf -X POST $PI/token/init -H "$H" -d type=hotp -d serial=HOTP-DAVE \
  -d otpkey=3132333435363738393031323334353637383930 -d user=dave -d realm=flatrealm >/dev/null
"#;

fn body(url: &str) -> String {
    format!(
        r#"
[[clients]]
name = "localhost"
addresses = ["127.0.0.1"]
secret = "testing123"
require_message_authenticator = false

[[users]]
name = "dave"
password = "dave-pw"
groups = ["staff"]

[[users]]
name = "erin"
password = "erin-pw"
groups = ["staff"]

[[policies]]
name = "staff-mfa"
groups = ["staff"]
auth_methods = ["pap"]
mfa = true
reply = {{ Session-Timeout = 3600 }}

[mfa]
provider = "privacyidea"

[mfa.privacyidea]
url = "{url}"
realm = "flatrealm"
timeout = "5s"
"#
    )
}

fn ask(
    c: &RadClient,
    s: &TestServer,
    id: u8,
    user: &str,
    pw: &str,
    state: Option<&[u8]>,
) -> (Vec<u8>, Code) {
    let sec = secret(SECRET);
    let extra: Vec<(u8, &[u8])> = state.map(|st| (attr::STATE, st)).into_iter().collect();
    let req = access_request_with(&sec, id, &random_authenticator(), user, pw, false, &extra);
    // privacyIDEA's dev server can take a few hundred ms per check.
    c.send(&req, s.auth);
    let reply = c.recv_timeout(Duration::from_secs(8)).expect("a reply");
    let code = check_reply(&reply, &req, &sec);
    (reply, code)
}

fn challenge(c: &RadClient, s: &TestServer, id: u8, user: &str, pw: &str) -> Vec<u8> {
    let (reply, code) = ask(c, s, id, user, pw, None);
    assert_eq!(code, Code::AccessChallenge, "{user}");
    reply_attr(&reply, attr::STATE).expect("a State")
}

#[test]
fn real_privacyidea_hotp() {
    let pi = pi_common::start(CONFIGURE);
    let s = TestServer::start(1, &body(&pi.url));
    let c = RadClient::new();

    // First HOTP value → Accept with the policy's attributes.
    let st = challenge(&c, &s, 1, "dave", "dave-pw");
    let (reply, code) = ask(&c, &s, 2, "dave", HOTP[0], Some(&st));
    assert_eq!(code, Code::AccessAccept);
    assert!(reply_attr(&reply, attr::SESSION_TIMEOUT).is_some());

    // The same code again, after a new challenge → privacyIDEA refuses it (already used).
    let st = challenge(&c, &s, 3, "dave", "dave-pw");
    let (_, code) = ask(&c, &s, 4, "dave", HOTP[0], Some(&st));
    assert_eq!(code, Code::AccessReject, "reused HOTP value");

    // A wrong code → Reject; the next counter value → Accept.
    let st = challenge(&c, &s, 5, "dave", "dave-pw");
    let (_, code) = ask(&c, &s, 6, "dave", "000000", Some(&st));
    assert_eq!(code, Code::AccessReject, "wrong code");
    let st = challenge(&c, &s, 7, "dave", "dave-pw");
    let (_, code) = ask(&c, &s, 8, "dave", HOTP[1], Some(&st));
    assert_eq!(code, Code::AccessAccept, "next HOTP value");

    // erin has no token at privacyIDEA → Reject (unenrolled = "reject").
    let st = challenge(&c, &s, 9, "erin", "erin-pw");
    let (_, code) = ask(&c, &s, 10, "erin", HOTP[2], Some(&st));
    assert_eq!(code, Code::AccessReject, "no token");

    let m = radshard::backend::mfa::metrics().expect("mfa metrics");
    assert_eq!(m.outcome_count("accept"), 2);
    assert_eq!(m.outcome_count("mfa_bad_code"), 2);
    assert_eq!(m.outcome_count("mfa_not_enrolled"), 1);
    drop(s);
    drop(pi);
}
