//! MS-CHAPv2 through radshard against a real Samba AD DC: winbind checks the credential, LDAP
//! (LDAPS to the same DC) supplies the groups the policies match. Accepts carry the right
//! `S=` and MPPE keys (from the NT key winbind returns); rejects carry the MS-CHAP-Error the
//! DC's NT status calls for; a bad response retransmitted or repeated is one winbind call; a
//! stopped winbindd is answered by the deadline as `on_unavailable` says while local users go
//! on. PEAP-MSCHAPv2 and TTLS-MSCHAPv2 from eapol_test (the supplicant) log in through the same
//! winbind and LDAP groups: the Accept carries the MPPE keys and the group policy's VLAN, a
//! wrong password and a disabled account are rejected. One test: the DC binds fixed AD ports.
//! Skipped without Samba or root (scripts/test.sh installs Samba; CI runs as root).

mod common;
mod samba_common;

use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use common::eapol::{Case, Eapol, EapolResult, Login, Method, PasswordMethod};
use common::mschap::*;
use common::*;
use radshard::proto::{Code, MS_CHAP_ERROR};
use samba_common::Samba;

fn body(smb_conf: &str, certs: &Path) -> String {
    let certs = certs.display();
    format!(
        r#"
[backend]
deadline = "3s"
on_unavailable = "reject"
negative_cache_ttl = "30s"

[winbind]
smb_conf = {smb_conf:?}
threads = 4
timeout = "2s"

[ldap]
servers = ["ldaps://127.0.0.1:636"]
tls_insecure_skip_verify = true
bind_dn = "Administrator@example.test"
bind_password = "Adm1n-Passw0rd"
base_dn = "DC=example,DC=test"
user_filter = "(&(objectCategory=person)(objectClass=user)(sAMAccountName={{user}}))"
realm = "strip"
realms = ["EXAMPLE", "example.test"]

[[clients]]
name = "localhost"
addresses = ["127.0.0.1"]
secret = "testing123"

[[users]]
name = "local"
password = "local-pw"

[[policies]]
name = "radius-users-vlan"
groups = ["radius-users"]
reply = {{ Tunnel-Type = "VLAN", Tunnel-Medium-Type = "IEEE-802", Tunnel-Private-Group-Id = "42" }}

[[policies]]
name = "local-users"
auth_sources = ["local"]

[eap]
methods = ["peap", "ttls"]

[eap.tls]
certificate = "{certs}/server.pem"
private_key = "{certs}/server.key"
"#
    )
}

/// Sends one MS-CHAPv2 login and returns (code, reply).
fn login(s: &TestServer, c: &RadClient, l: &V2, user: &str) -> (Code, Vec<u8>) {
    let sec = secret(SECRET);
    let req = l.request(&sec, rand::random(), user);
    let reply = c.exchange(&req, s.auth).expect("a reply");
    (check_reply(&reply, &req, &sec), reply)
}

/// The EAP methods with an MS-CHAPv2 inner login, which is what winbind can check.
const EAP_MSCHAPV2: [PasswordMethod; 2] =
    [PasswordMethod::PeapMschapv2, PasswordMethod::TtlsMschapv2];

/// eapol_test for `user` (the harness's blocks say alice): the blocks of the MS-CHAPv2 cases
/// are rewritten with the other identity before their first run, which then uses them as they
/// are.
fn eapol_for(certs: &Path, user: &str, password: &str) -> Eapol {
    let e = Eapol::new(certs, password);
    if user != common::eapol::USER {
        for m in EAP_MSCHAPV2 {
            for case in [Case::Good(m.into()), Case::WrongPassword(m)] {
                let path = e.conf(&Login::new(case));
                let block = std::fs::read_to_string(&path).expect("network block");
                let from = format!("\tidentity=\"{}\"\n", common::eapol::USER);
                assert!(block.contains(&from), "the harness's identity line");
                let to = format!("\tidentity=\"{user}\"\n");
                std::fs::write(&path, block.replace(&from, &to)).expect("network block");
            }
        }
    }
    e
}

/// Runs one eapol_test login against the server and says how long it took.
fn eap_login(e: &Eapol, case: Case, s: &TestServer, who: &str) -> EapolResult {
    let t = Instant::now();
    let r = e.run(case, s.auth.port(), SECRET, &[]);
    eprintln!("eapol_test {who}: {r} in {:?}", t.elapsed());
    r
}

/// How many EAP logins the server rejected for `reason` (a label of `RejectReason`): the
/// client sees only EAP-Failure, the server's counters say why.
fn eap_rejects(reason: &str) -> u64 {
    let m = radshard::metrics::eap();
    let rejects = m.rejects.lock().unwrap_or_else(|e| e.into_inner());
    rejects.get(reason).copied().unwrap_or(0)
}

/// Runs `case` for `e`'s user, which the server must reject for `reason`.
fn eap_rejected(e: &Eapol, case: Case, s: &TestServer, who: &str, reason: &str) {
    let before = eap_rejects(reason);
    let r = eap_login(e, case, s, who);
    assert!(r.rejected(), "{who} {case:?}: {}", r.explain());
    assert_eq!(eap_rejects(reason) - before, 1, "{who} {case:?}: {reason}");
}

/// The value (hex, as eapol_test prints it on the line after) of the attribute `typ` in a
/// received Access-Accept.
fn accept_attribute(log: &str, typ: u8) -> Option<String> {
    let want = format!("Attribute {typ} ");
    let mut in_accept = false;
    let mut lines = log.lines();
    while let Some(line) = lines.next() {
        if line.contains("RADIUS message: code=") {
            in_accept = line.contains("Access-Accept");
        } else if in_accept && line.trim_start().starts_with(&want) {
            let value = lines.next()?.trim_start().strip_prefix("Value: ")?;
            return Some(value.trim().to_string());
        }
    }
    None
}

fn error_code(reply: &[u8]) -> String {
    let e = vsa(reply, MS_CHAP_ERROR).expect("MS-CHAP-Error");
    String::from_utf8_lossy(&e[1..e.len().min(6)]).into_owned()
}

#[test]
fn mschapv2_through_winbind_with_ldap_groups() {
    if !samba_common::installed() {
        eprintln!("SKIPPED: samba is not installed (scripts/test.sh installs it)");
        return;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIPPED: winbind's privileged pipe needs root");
        return;
    }
    let mut samba = Samba::start();
    samba.tool(&[
        "domain",
        "passwordsettings",
        "set",
        "--account-lockout-threshold=3",
        "--account-lockout-duration=30",
        "--reset-account-lockout-after=30",
    ]);
    for u in ["alice", "bob", "carol", "dave", "erin", "frank", "gina"] {
        let extra: &[&str] = if u == "frank" {
            &["--must-change-at-next-login"]
        } else {
            &[]
        };
        samba.create_user(u, &format!("{u}-Pw1"), extra);
    }
    samba.tool(&["group", "add", "radius-users"]);
    samba.tool(&[
        "group",
        "addmembers",
        "radius-users",
        "alice,bob,dave,erin,frank,gina",
    ]);
    samba.tool(&["user", "disable", "dave"]);
    samba.tool(&["user", "setexpiry", "erin", "--days=0"]);
    samba.wait_mschapv2("alice", "alice-Pw1");

    let certs = tempfile::tempdir().expect("certs dir");
    radshard::tls::pki::write_test_pki(certs.path(), radshard::tls::pki::KeyKind::Rsa, false)
        .expect("test PKI");
    let conf = samba.conf().display().to_string();
    let s = TestServer::start(2, &body(&conf, certs.path()));
    let calls = || s.backend().expect("backend").winbind_calls.load(Relaxed);
    let c = RadClient::new();
    let sec = secret(SECRET);

    // alice and EXAMPLE\bob: accepted with the VLAN of their LDAP group, S= and MPPE keys
    // from the NT key winbind returned.
    for (user, password, hashed) in [
        ("alice", "alice-Pw1", "alice"),
        ("EXAMPLE\\bob", "bob-Pw1", "bob"),
    ] {
        let l = V2::new(user, password);
        let req = l.request(&sec, 3, user);
        let reply = c.exchange(&req, s.auth).expect("reply");
        assert_eq!(
            check_reply(&reply, &req, &sec),
            Code::AccessAccept,
            "{user}"
        );
        l.assert_accepted(&reply, &req, &sec, password, hashed);
        // Tunnel-Private-Group-Id (81), tagged or not: "42" from the radius-users policy.
        assert!(
            reply_attr(&reply, 81).is_some_and(|v| v.ends_with(b"42")),
            "VLAN from the radius-users policy"
        );
    }
    assert_eq!(calls(), 2);

    // carol is not in radius-users: winbind says yes, no policy does: E=649.
    let (code, reply) = login(&s, &c, &V2::new("carol", "carol-Pw1"), "carol");
    assert_eq!(code, Code::AccessReject);
    assert_eq!(error_code(&reply), "E=649");

    // A wrong password: 691. Five copies of the same attempt (retransmissions, new
    // Identifiers, any shard) are one winbind call: the single-flight and the negative cache.
    let before = calls();
    let bad = V2::new("alice", "wrong");
    for _ in 0..5 {
        let (code, reply) = login(&s, &c, &bad, "alice");
        assert_eq!(code, Code::AccessReject);
        assert_eq!(error_code(&reply), "E=691");
    }
    assert_eq!(calls() - before, 1, "one winbind call for five copies");

    // The DC's reasons.
    for (user, want) in [("dave", "E=647"), ("erin", "E=647"), ("frank", "E=648")] {
        let (code, reply) = login(&s, &c, &V2::new(user, &format!("{user}-Pw1")), user);
        assert_eq!(code, Code::AccessReject, "{user}");
        assert_eq!(error_code(&reply), want, "{user}");
    }
    // Three different bad attempts lock gina out; then even her password is refused, 647.
    for _ in 0..3 {
        let (_, reply) = login(&s, &c, &V2::new("gina", "nope"), "gina");
        assert_eq!(error_code(&reply), "E=691");
    }
    let (code, reply) = login(&s, &c, &V2::new("gina", "gina-Pw1"), "gina");
    assert_eq!(code, Code::AccessReject);
    assert_eq!(error_code(&reply), "E=647", "locked out");

    // PEAP-MSCHAPv2 and TTLS-MSCHAPv2 from a real supplicant: the inner MS-CHAPv2 goes to
    // winbind like an outer one, and the outer Accept carries the MPPE keys and the VLAN of the
    // LDAP group's policy. alice first, with her password, so that her count of bad attempts
    // is reset before the wrong ones (the lockout threshold is 3); bob through network blocks
    // rewritten for him, as dave's and carol's are, in the DOMAIN\user form Windows
    // supplicants send (the challenge hash is over the name without it, the DC gets both).
    let alice = eapol_for(certs.path(), "alice", "alice-Pw1");
    let bob = eapol_for(certs.path(), "EXAMPLE\\bob", "bob-Pw1");
    let before = calls();
    for (who, e) in [("alice", &alice), ("bob", &bob)] {
        for m in EAP_MSCHAPV2 {
            let case = Case::Good(m.into());
            let r = eap_login(e, case, &s, who);
            assert!(r.success && r.keys_ok(1), "{who} {case:?}: {}", r.explain());
            // Tunnel-Private-Group-Id (81), tagged or not: "42" from the radius-users policy.
            assert!(
                accept_attribute(&r.log, 81).is_some_and(|v| v.ends_with("3432")),
                "{who} {case:?}: the radius-users policy's VLAN in the Accept:\n{}",
                r.explain()
            );
        }
    }
    assert_eq!(calls() - before, 4, "each inner login is one winbind call");
    for m in EAP_MSCHAPV2 {
        eap_rejected(&alice, Case::WrongPassword(m), &s, "alice", "bad_password");
    }
    // dave is disabled: his right password is refused for the DC's ACCOUNT_DISABLED; carol is
    // not in radius-users: winbind says yes, no policy does.
    let dave = eapol_for(certs.path(), "dave", "dave-Pw1");
    for m in EAP_MSCHAPV2 {
        eap_rejected(&dave, Case::Good(m.into()), &s, "dave", "account_disabled");
    }
    let carol = eapol_for(certs.path(), "carol", "carol-Pw1");
    eap_rejected(
        &carol,
        Case::Good(Method::PeapMschapv2),
        &s,
        "carol",
        "policy_reject",
    );

    // winbindd frozen: the deadline answers (on_unavailable = "reject") while a local user is
    // answered at once, from the same shards.
    let master = samba.pid().expect("samba runs");
    let winbindd = samba_common::descendants_named(master, "winbindd");
    assert!(!winbindd.is_empty());
    for &p in &winbindd {
        // SAFETY: kill(2) on a process of the DC this test started.
        unsafe { libc::kill(p as libc::pid_t, libc::SIGSTOP) };
    }
    let waiting = std::thread::spawn({
        let auth = s.auth;
        move || {
            let c = RadClient::new();
            let sec = secret(SECRET);
            let req = V2::new("bob", "bob-Pw1").request(&sec, 9, "bob");
            let t = Instant::now();
            c.send(&req, auth);
            let reply = c.recv_timeout(Duration::from_secs(6));
            (t.elapsed(), reply.map(|r| check_reply(&r, &req, &sec)))
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    let req = access_request(&sec, 10, &random_authenticator(), "local", "local-pw", true);
    let reply = c.exchange(&req, s.auth).expect("local reply");
    assert_eq!(check_reply(&reply, &req, &sec), Code::AccessAccept);
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );
    let (took, code) = waiting.join().unwrap();
    for &p in &winbindd {
        // SAFETY: as above.
        unsafe { libc::kill(p as libc::pid_t, libc::SIGCONT) };
    }
    assert_eq!(code, Some(Code::AccessReject), "rejected by on_unavailable");
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_millis(3500),
        "answered at winbind's timeout / the deadline: {took:?}"
    );
    samba.stop();
}
