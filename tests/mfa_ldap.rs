//! The second factor after LDAP primary authentication (real slapd), through radclient:
//! the privacyIDEA provider (a local test double of `/validate/check`, as in
//! `mfa_privacyidea.rs`) gets the directory's alternate login ID (here `mail`); and the REST
//! push provider holds the request until the (double's) user approves.

mod common;
mod ldap_common;

use std::time::Duration;

use common::mfa::{privacyidea_check_answer, radclient_state, recording_double};
use ldap_common::*;

#[test]
fn ldap_then_privacyidea_code() {
    let slapd = Slapd::start();
    let (url, seen) = recording_double(|body| {
        privacyidea_check_answer(
            body.contains("user=alice%40example.org") && body.contains("pass=755224"),
        )
    });
    let rs = Radshard::start(&format!(
        "{}{}\n[mfa]\nprovider = \"privacyidea\"\n[mfa.privacyidea]\nurl = \"{url}\"\nrealm = \"ldaprealm\"\n",
        ldap_section(&[slapd.url()], ""),
        radius_users_mfa_policy()
    ));
    let (code, out) = ask(rs.port, "User-Name = alice\nUser-Password = alicepw\n");
    assert_eq!(code.as_deref(), Some("Access-Challenge"), "{out}");
    let state = radclient_state(&out);
    let (code, out) = ask(
        rs.port,
        &format!("User-Name = alice\nUser-Password = 755224\nState = {state}\n"),
    );
    assert_eq!(code.as_deref(), Some("Access-Accept"), "{out}");
    assert!(
        out.contains(&radclient_class("radius-users")),
        "policy reply: {out}"
    );
    let seen = seen.lock().expect("lock");
    assert_eq!(seen.len(), 1);
    assert!(seen[0].contains("realm=ldaprealm"), "{}", seen[0]);
    // Wrong LDAP password: no challenge, privacyIDEA not asked.
    drop(seen);
    let (code, _) = ask(rs.port, "User-Name = alice\nUser-Password = wrong\n");
    assert_eq!(code.as_deref(), Some("Access-Reject"));
}

#[test]
fn ldap_then_push() {
    let slapd = Slapd::start();
    let (url, seen) = recording_double(|body| {
        std::thread::sleep(Duration::from_millis(300));
        format!("{{\"approved\":{}}}", body.contains("alice@example.org"))
    });
    let rs = Radshard::start(&format!(
        "{}{}\n[mfa]\nprovider = \"rest_push\"\n[mfa.rest_push]\nurl = \"{url}/push\"\nwait = \"3s\"\n",
        ldap_section(&[slapd.url()], ""),
        radius_users_mfa_policy()
    ));
    let (code, out) = ask(rs.port, "User-Name = alice\nUser-Password = alicepw\n");
    assert_eq!(code.as_deref(), Some("Access-Accept"), "{out}");
    let (code, out) = ask(rs.port, "User-Name = bob\nUser-Password = bobpw\n");
    assert_eq!(code.as_deref(), Some("Access-Reject"), "{out}");
    let seen = seen.lock().expect("lock");
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(
        seen[0].contains("\"user\":\"alice@example.org\""),
        "{}",
        seen[0]
    );
}
