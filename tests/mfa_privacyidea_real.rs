//! The privacyIDEA provider without a service account (radshard's own challenge, the code sent
//! as `pass`) against a real privacyIDEA (`pi_common`: pip-installed, sqlite, werkzeug dev
//! server, started on a free port by this test and stopped at its end).
//!
//! The same privacyIDEA as the second factor alone (`primary = "nas"`): the code in the one
//! Access-Request is all that is checked.
//!
//! privacyIDEA: flat-file realm `flatrealm` with users dave (HOTP token, no PIN, RFC 4226 key
//! "12345678901234567890") and erin (no token). radshard: local users dave and erin, a policy
//! requiring MFA, `[mfa] provider = "privacyidea"`.

mod common;
mod pi_common;

use std::time::Duration;

use common::mfa::*;
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
    let users = staff_users(&["dave", "erin"]);
    let policy = staff_mfa_policy("staff-mfa", "auth_methods = [\"pap\"]\n");
    let mfa = mfa_section(
        "privacyidea",
        "",
        &format!("url = \"{url}\"\nrealm = \"flatrealm\"\ntimeout = \"5s\""),
    );
    format!("{MFA_CLIENT}{users}{policy}{mfa}")
}

#[test]
fn real_privacyidea_hotp() {
    let pi = pi_common::start(CONFIGURE);
    let (s, m) = start_mfa_server(1, &body(&pi.url));
    // privacyIDEA's dev server can take a few hundred ms per check.
    let mut nas = Nas::waiting(Duration::from_secs(8));

    // First HOTP value → Accept with the policy's attributes.
    let (_, _, st) = nas.challenge(&s, "dave", "dave-pw");
    let (reply, code) = nas.ask(&s, "dave", HOTP[0], Some(&st));
    assert_eq!(code, Code::AccessAccept);
    assert!(reply_attr(&reply, attr::SESSION_TIMEOUT).is_some());

    // The same code again, after a new challenge → privacyIDEA refuses it (already used).
    let (_, _, st) = nas.challenge(&s, "dave", "dave-pw");
    let (_, code) = nas.ask(&s, "dave", HOTP[0], Some(&st));
    assert_eq!(code, Code::AccessReject, "reused HOTP value");

    // A wrong code → Reject; the next counter value → Accept.
    let (_, _, st) = nas.challenge(&s, "dave", "dave-pw");
    let (_, code) = nas.ask(&s, "dave", "000000", Some(&st));
    assert_eq!(code, Code::AccessReject, "wrong code");
    let (_, _, st) = nas.challenge(&s, "dave", "dave-pw");
    let (_, code) = nas.ask(&s, "dave", HOTP[1], Some(&st));
    assert_eq!(code, Code::AccessAccept, "next HOTP value");

    // erin has no token at privacyIDEA → Reject (unenrolled = "reject").
    let (_, _, st) = nas.challenge(&s, "erin", "erin-pw");
    let (_, code) = nas.ask(&s, "erin", HOTP[2], Some(&st));
    assert_eq!(code, Code::AccessReject, "no token");

    assert_eq!(m.outcome_count("accept"), 2);
    assert_eq!(m.outcome_count("mfa_bad_code"), 2);
    assert_eq!(m.outcome_count("mfa_not_enrolled"), 1);
    drop(s);

    // Second factor only (`primary = "nas"`): the gateway checked dave's password; the HOTP
    // value alone goes to privacyIDEA, in one request, no challenge.
    let gateway = "\n[[policies]]\nname = \"gateway\"\nclients = [\"localhost\"]\n\
                   primary = \"nas\"\nmfa = true\nreply = { Session-Timeout = 3600 }\n";
    let text = body(&pi.url).replacen("\n[[policies]]", &format!("{gateway}\n[[policies]]"), 1);
    let (s, m) = start_mfa_server(1, &text);
    let (reply, code) = nas.ask(&s, "dave", HOTP[2], None);
    assert_eq!(code, Code::AccessAccept, "code alone");
    assert!(reply_attr(&reply, attr::SESSION_TIMEOUT).is_some());
    let (_, code) = nas.ask(&s, "dave", HOTP[2], None);
    assert_eq!(code, Code::AccessReject, "reused HOTP value");
    let (_, code) = nas.ask(&s, "dave", "000000", None);
    assert_eq!(code, Code::AccessReject, "wrong code");
    let (_, code) = nas.ask(&s, "erin", HOTP[3], None);
    assert_eq!(code, Code::AccessReject, "no token");
    assert_eq!(m.outcome_count("accept"), 1);
    assert_eq!(m.outcome_count("mfa_bad_code"), 2);
    assert_eq!(m.outcome_count("mfa_not_enrolled"), 1);
    drop(s);
    drop(pi);
}
