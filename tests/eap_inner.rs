//! EAP inner logins through the same sources, policies and second factor as an outer request,
//! with real peers: eapol_test as the supplicant, slapd as the directory (TTLS-PAP by a bind,
//! PEAP-MSCHAPv2 against the directory's NT hash), a push double of the generic REST protocol
//! holding the round that completes a PEAP login. The inner policy's attributes (the VLAN, a
//! Session-Timeout) come back in the outer Access-Accept.

mod common;
mod ldap_common;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::eapol::{Case, Eapol, Method, PasswordMethod};
use common::mfa::{http_double, mfa_section};
use ldap_common::{ldap_section, Radshard, Slapd, SUFFIX};

const SECRET: &str = "testing123";

fn pki(dir: &Path) {
    radshard::tls::pki::write_test_pki(dir, radshard::tls::pki::KeyKind::Rsa, false)
        .expect("test PKI");
}

fn eap_section(certs: &Path) -> String {
    let d = certs.display();
    format!(
        "\n[eap]\nmethods = [\"peap\", \"ttls\"]\n\n[eap.tls]\ncertificate = \"{d}/server.pem\"\nprivate_key = \"{d}/server.key\"\n"
    )
}

/// Whether eapol_test printed the attribute `typ` in a received Access-Accept.
fn accept_has_attribute(log: &str, typ: u8) -> bool {
    let mut in_accept = false;
    for line in log.lines() {
        if line.contains("RADIUS message: code=") {
            in_accept = line.contains("Access-Accept");
        } else if in_accept && line.trim_start().starts_with(&format!("Attribute {typ} ")) {
            return true;
        }
    }
    false
}

#[test]
fn inner_logins_against_slapd_carry_the_directory_policy() {
    use radshard::proto::crypto::mschap::nt_password_hash;
    let slapd = Slapd::start();
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02X}")).collect::<String>();
    slapd.ldapadd(&format!(
        "dn: uid=alice,ou=people,{SUFFIX}\nchangetype: modify\nadd: objectClass\nobjectClass: sambaSamAccount\n-\n\
         add: sambaSID\nsambaSID: S-1-5-21-1-2-3-1001\n-\nadd: sambaNTPassword\nsambaNTPassword: {}\n",
        hex(&nt_password_hash(b"alicepw").expect("hash"))
    ));
    let certs = tempfile::tempdir().expect("dir");
    pki(certs.path());
    let policy = "\n[[policies]]\nname = \"wifi-staff\"\ngroups = [\"radius-users\"]\nauth_methods = [\"peap\", \"ttls\"]\n\
                  reply = { Tunnel-Type = \"VLAN\", Tunnel-Medium-Type = \"IEEE-802\", Tunnel-Private-Group-Id = \"42\" }\n";
    let rs = Radshard::start(&format!(
        "{}{}{policy}",
        ldap_section(
            &[slapd.url()],
            "nt_password_attribute = \"sambaNTPassword\""
        ),
        eap_section(certs.path())
    ));
    let eapol = Eapol::new(certs.path(), "alicepw");
    for case in [
        Case::Good(Method::TtlsPap),
        Case::Good(Method::PeapMschapv2),
        Case::Good(Method::TtlsMschapv2),
    ] {
        let r = eapol.run(case, rs.port, SECRET, &[]);
        assert!(r.success && r.keys_ok(1), "{case:?}: {}", r.explain());
        assert!(
            accept_has_attribute(&r.log, 81),
            "{case:?}: the directory policy's VLAN in the Accept:\n{}",
            r.explain()
        );
    }
    let r = eapol.run(
        Case::WrongPassword(PasswordMethod::TtlsPap),
        rs.port,
        SECRET,
        &[],
    );
    assert!(r.rejected(), "{}", r.explain());
}

#[test]
fn a_push_holds_the_round_that_completes_a_peap_login() {
    let pushes: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let started: Arc<Mutex<HashMap<String, (String, Instant)>>> = Arc::default();
    let log = pushes.clone();
    let base = http_double(move |req| {
        let body = if req.method == "POST" {
            let v: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
            let user = v["user"].as_str().unwrap_or("").to_string();
            let mut log = log.lock().expect("lock");
            let n = log.entry(user.clone()).or_insert(0);
            *n += 1;
            let id = format!("{user}-{n}");
            started
                .lock()
                .expect("lock")
                .insert(id.clone(), (user, Instant::now()));
            format!("{{\"id\":\"{id}\"}}")
        } else {
            let id = req.target.strip_prefix("/push/").unwrap_or("");
            let (user, at) = started.lock().expect("lock").get(id).cloned().expect("id");
            let status = match user.as_str() {
                "alice" if at.elapsed() >= Duration::from_millis(700) => "approved",
                "bob" if at.elapsed() >= Duration::from_millis(200) => "denied",
                _ => "pending",
            };
            format!("{{\"status\":\"{status}\"}}")
        };
        (200, body)
    });
    let certs = tempfile::tempdir().expect("dir");
    pki(certs.path());
    let users = "\n[[users]]\nname = \"alice\"\npassword = \"alicepw\"\ngroups = [\"staff\"]\n\
                 \n[[users]]\nname = \"bob\"\npassword = \"alicepw\"\ngroups = [\"staff\"]\n";
    let policy = "\n[[policies]]\nname = \"staff-wifi-push\"\ngroups = [\"staff\"]\nauth_methods = [\"peap\"]\nmfa = true\n\
                  reply = { Session-Timeout = 3600 }\n";
    let mfa = mfa_section(
        "rest_push",
        "",
        &format!("url = \"{base}/push\"\nwait = \"5s\"\npoll_interval = \"100ms\""),
    );
    let rs = Radshard::start(&format!(
        "{users}{policy}{mfa}{}",
        eap_section(certs.path())
    ));
    let eapol = Eapol::new(certs.path(), "alicepw");
    let t = Instant::now();
    let r = eapol.run(Case::Good(Method::PeapMschapv2), rs.port, SECRET, &[]);
    assert!(r.success && r.keys_ok(1), "{}", r.explain());
    assert!(
        t.elapsed() >= Duration::from_millis(600),
        "held for the push"
    );
    assert!(
        accept_has_attribute(&r.log, 27),
        "Session-Timeout: {}",
        r.explain()
    );
    assert_eq!(
        pushes.lock().expect("lock").get("alice"),
        Some(&1),
        "one push"
    );

    // bob denies: an Access-Reject after the push.
    let bob = Eapol::new(certs.path(), "alicepw");
    let conf = std::fs::read_to_string(bob.conf(&Case::Good(Method::PeapMschapv2).into()))
        .expect("conf")
        .replace("identity=\"alice\"", "identity=\"bob\"");
    let path = bob.dir().join("bob.conf");
    std::fs::write(&path, conf).expect("write");
    let out = std::process::Command::new("eapol_test")
        .args(["-c", path.to_str().expect("utf-8"), "-a", "127.0.0.1"])
        .args(["-p", &rs.port.to_string(), "-s", SECRET, "-t", "15"])
        .output()
        .expect("eapol_test");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "bob denied the push:\n{text}");
    assert!(text.contains("Access-Reject"), "{text}");
    assert_eq!(pushes.lock().expect("lock").get("bob"), Some(&1));
}

#[test]
fn policies_see_the_eap_method_and_the_certificate() {
    let certs = tempfile::tempdir().expect("dir");
    pki(certs.path());
    let d = certs.path().display();
    let config = format!(
        "\n[[users]]\nname = \"alice\"\npassword = \"alicepw\"\n\
         \n[[policies]]\nname = \"devices\"\nauth_methods = [\"eap-tls\"]\ncertificate_issuer = \"^radshard test CA$\"\n\
         certificate_subject = \"^alice@example\\\\.test$\"\n\
         reply = {{ Tunnel-Type = \"VLAN\", Tunnel-Medium-Type = \"IEEE-802\", Tunnel-Private-Group-Id = \"7\" }}\n\
         \n[[policies]]\nname = \"peap-only\"\nauth_methods = [\"peap\"]\nreply = {{ Session-Timeout = 600 }}\n\
         \n[eap]\nmethods = [\"peap\", \"ttls\", \"eap-tls\"]\n\n[eap.tls]\ncertificate = \"{d}/server.pem\"\n\
         private_key = \"{d}/server.key\"\nca = \"{d}/ca.pem\"\n"
    );
    let rs = Radshard::start(&config);
    let eapol = Eapol::new(certs.path(), "alicepw");
    let r = eapol.run(Case::Good(Method::Tls), rs.port, SECRET, &[]);
    assert!(r.success && r.keys_ok(1), "{}", r.explain());
    assert!(
        accept_has_attribute(&r.log, 81),
        "the certificate policy's VLAN: {}",
        r.explain()
    );
    let r = eapol.run(Case::Good(Method::PeapMschapv2), rs.port, SECRET, &[]);
    assert!(
        r.success && accept_has_attribute(&r.log, 27),
        "{}",
        r.explain()
    );
    // No policy allows TTLS: the inner login passes, the policies refuse it.
    let r = eapol.run(Case::Good(Method::TtlsPap), rs.port, SECRET, &[]);
    assert!(r.rejected(), "{}", r.explain());
}

/// Hex of `b`, lower case.
fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The hexdump eapol_test prints after `label`, as bytes.
fn hexdump_after(log: &str, label: &str) -> Option<Vec<u8>> {
    let line = log.lines().find(|l| l.contains(label))?;
    let dump = line.split("):").nth(1)?;
    dump.split_whitespace()
        .map(|h| u8::from_str_radix(h, 16).ok())
        .collect()
}

#[test]
fn the_debug_log_shows_no_key_or_password() {
    use std::process::Stdio;
    let certs = tempfile::tempdir().expect("dir");
    pki(certs.path());
    let config = certs.path().join("r.toml");
    std::fs::write(
        &config,
        common::config_text(
            1,
            "",
            certs.path(),
            &format!(
                "[[clients]]\nname = \"localhost\"\naddresses = [\"127.0.0.1\"]\nsecret = \"{SECRET}\"\n\
                 [[users]]\nname = \"alice\"\npassword = \"alicepw\"\n{}",
                eap_section(certs.path())
            ),
        ),
    )
    .expect("config");
    let log_path = certs.path().join("log");
    let server = common::ChildServer::spawn_logging(
        &config,
        certs.path(),
        &["--log-level", "debug"],
        Stdio::from(std::fs::File::create(&log_path).expect("log")),
    );
    let eapol = Eapol::new(certs.path(), "alicepw");
    let mut secrets: Vec<(String, String)> = vec![("password".into(), "alicepw".into())];
    for case in [
        Case::Good(Method::PeapMschapv2),
        Case::Good(Method::TtlsPap),
        Case::WrongPassword(PasswordMethod::TtlsPap),
    ] {
        let r = eapol.run(case, server.auth.port(), SECRET, &[]);
        for label in [
            "Derived key",
            "Derived EMSK",
            "MS-MPPE-Recv-Key",
            "MS-MPPE-Send-Key",
        ] {
            if let Some(k) = hexdump_after(&r.log, label) {
                secrets.push((format!("{case:?} {label}"), hex(&k)));
            }
        }
    }
    assert!(
        secrets.len() > 4,
        "eapol_test printed the keys: {secrets:?}"
    );
    drop(server);
    let log = std::fs::read_to_string(&log_path).expect("log");
    assert!(
        log.contains("eap login"),
        "the EAP log line is there:\n{log}"
    );
    assert!(log.contains("inner=alice"), "{log}");
    let lower = log.to_lowercase();
    for (what, s) in &secrets {
        // A key: any 16 octets of it; the password: itself.
        let needle = &s[..s.len().min(32)];
        assert!(!lower.contains(needle), "{what} in the log");
    }
}
