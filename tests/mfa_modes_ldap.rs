//! Second factor for directory users (real slapd) in one request or by challenge: TOTP
//! secrets from MFA-only `[[users]]` entries (no password), found by the directory's
//! alternate login name or by the User-Name; `appended_code` with exactly one LDAP bind per
//! attempt and only the password part sent to the directory; `password_code` with the
//! privacyIDEA provider (a wire-format double), which receives only the code.

mod ldap_common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ldap_common::*;
use radshard::backend::mfa::totp::TotpSecret;
use radshard::proto::{Code, PacketBuilder, Secret};

const ALICE_TOTP: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
const BOB_TOTP: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

fn code_at(secret_b32: &str, offset_steps: u64) -> String {
    static BASE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let base = *BASE.get_or_init(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_secs()
            / 30
    });
    let s = TotpSecret::from_base32(secret_b32).expect("valid secret");
    format!("{:06}", s.code_at_step(base + offset_steps, 6))
}

/// A six-digit code that is not `secret`'s around now.
fn wrong_code(secret_b32: &str) -> &'static str {
    let near: Vec<String> = (0..3).map(|o| code_at(secret_b32, o)).collect();
    ["000000", "111111", "222222", "333333"]
        .into_iter()
        .find(|c| !near.iter().any(|n| n == c))
        .expect("four candidates, three codes")
}

/// radclient with arbitrary attributes (values quoted by the caller): (reply code, output).
fn ask(port: u16, attrs: &str) -> (Option<String>, String) {
    let mut c = Command::new("radclient")
        .args(["-x", "-t", "5", "-r", "1"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["auth", "testing123"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("radclient must be installed");
    c.stdin
        .take()
        .expect("stdin")
        .write_all(format!("{attrs}Message-Authenticator = 0x00\n").as_bytes())
        .expect("write");
    let out = c.wait_with_output().expect("radclient");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let code = text.lines().find_map(|l| {
        l.strip_prefix("Received ")
            .map(|r| r.split(' ').next().unwrap_or("").to_string())
    });
    (code, text)
}

/// `Class = "<text>"` as radclient prints it (octets in hex).
fn class(text: &str) -> String {
    let hex: String = text.bytes().map(|b| format!("{b:02x}")).collect();
    format!("Class = 0x{hex}")
}

const TOTP_CONFIG: &str = r#"
# MFA-only entries: no password, only the TOTP secret of a directory user. Alice's is filed
# under the directory's alternate login name (mail), bob's under his User-Name.
[[users]]
name = "alice@example.org"
totp_secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"

[[users]]
name = "bob"
totp_secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"

# VPN concentrators (NAS-Port-Type Virtual) get password and code in one User-Password.
[[policies]]
name = "vpn-appended"
nas_port_type = ["Virtual"]
groups = ["radius-users"]
auth_sources = ["ldap"]
mfa = true
mfa_mode = "appended_code"
reply = { Class = "appended" }

[[policies]]
name = "others-challenge"
groups = ["radius-users"]
auth_sources = ["ldap"]
mfa = true
reply = { Class = "challenge" }

[mfa]
provider = "totp"
"#;

#[test]
fn directory_users_with_local_totp_secrets() {
    let slapd = Slapd::start();
    let rs = Radshard::start(&format!(
        "{}{TOTP_CONFIG}",
        ldap_section(&[slapd.url()], "")
    ));
    let binds = || rs.backend().ldap_user_binds.load(Relaxed);

    // Challenge mode: LDAP alice → Access-Challenge → her code → Accept.
    let (code, out) = ask(rs.port, "User-Name = alice\nUser-Password = \"alicepw\"\n");
    assert_eq!(code.as_deref(), Some("Access-Challenge"), "{out}");
    let state = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("State = "))
        .unwrap_or_else(|| panic!("no State in:\n{out}"))
        .trim()
        .to_string();
    let (code, out) = ask(
        rs.port,
        &format!(
            "User-Name = alice\nUser-Password = \"{}\"\nState = {state}\n",
            code_at(ALICE_TOTP, 0)
        ),
    );
    assert_eq!(code.as_deref(), Some("Access-Accept"), "{out}");
    assert!(out.contains(&class("challenge")), "{out}");
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
    assert!(out.contains(&class("appended")), "{out}");
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

type Seen = Arc<Mutex<Vec<String>>>;

/// privacyIDEA `/validate/check` double: accepts 755224 for alice@example.org, answering after
/// `delay`; records each form body.
fn privacyidea_double(delay: Duration) -> (String, Seen) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", l.local_addr().expect("addr"));
    let seen: Seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut conn) = conn else { return };
            let log = log.clone();
            std::thread::spawn(move || {
                let mut r = BufReader::new(conn.try_clone().expect("clone"));
                let (mut line, mut len) = (String::new(), 0usize);
                loop {
                    line.clear();
                    if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0u8; len];
                let _ = r.read_exact(&mut body);
                let body = String::from_utf8_lossy(&body).into_owned();
                std::thread::sleep(delay);
                let ok = body.split('&').any(|kv| kv == "pass=755224")
                    && body.contains("user=alice%40example.org");
                let a = format!(
                    r#"{{"detail":{{"message":"x"}},"result":{{"authentication":"{}","status":true,"value":{ok}}},"version":"privacyIDEA 3.14"}}"#,
                    if ok { "ACCEPT" } else { "REJECT" }
                );
                log.lock().expect("lock").push(body);
                let _ = write!(
                    conn,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{a}",
                    a.len()
                );
            });
        }
    });
    (url, seen)
}

#[test]
fn password_code_with_privacyidea_sends_only_the_code() {
    let slapd = Slapd::start();
    let (url, seen) = privacyidea_double(Duration::ZERO);
    let rs = Radshard::start(&format!(
        "{}\n[[policies]]\nname = \"vpn\"\ngroups = [\"radius-users\"]\nauth_methods = [\"pap\"]\nmfa = true\n\
         mfa_mode = \"password_code\"\nreply = {{ Class = \"vpn\" }}\n\
         [mfa]\nprovider = \"privacyidea\"\n[mfa.privacyidea]\nurl = \"{url}\"\n",
        ldap_section(&[slapd.url()], "")
    ));
    let binds = || rs.backend().ldap_user_binds.load(Relaxed);
    let (code, out) = ask(
        rs.port,
        "User-Name = alice\nUser-Password = \"alicepw,755224\"\n",
    );
    assert_eq!(code.as_deref(), Some("Access-Accept"), "{out}");
    assert!(out.contains(&class("vpn")), "{out}");
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
    let rs = Radshard::start(&format!(
        "{}\n[[policies]]\nname = \"vpn\"\ngroups = [\"radius-users\"]\nauth_methods = [\"pap\"]\nmfa = true\n\
         mfa_mode = \"password_code\"\nreply = {{ Class = \"vpn\" }}\n\
         [mfa]\nprovider = \"privacyidea\"\n[mfa.privacyidea]\nurl = \"{url}\"\n",
        ldap_section(&[slapd.url()], "")
    ));
    let secret = Secret::new(&b"testing123"[..]).expect("secret");
    let mut buf = [0u8; 4096];
    let mut b =
        PacketBuilder::request(&mut buf, Code::AccessRequest, 7, &rand::random()).expect("header");
    b.message_authenticator().expect("fits");
    b.attr(radshard::proto::attr::USER_NAME, b"alice")
        .expect("fits");
    b.user_password(&secret, b"alicepw,755224").expect("fits");
    let request = b.finish(&secret).expect("signs").to_vec();

    let sock = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let to = ("127.0.0.1", rs.port);
    let mut replies: Vec<Vec<u8>> = Vec::new();
    let mut rx = [0u8; 4096];
    // Three copies while the check is pending, then one after the answer.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut sent = 0;
    while Instant::now() < deadline && (replies.is_empty() || sent < 4) {
        if sent < 3 || !replies.is_empty() {
            sock.send_to(&request, to).expect("send");
            sent += 1;
        }
        if let Ok((n, _)) = sock.recv_from(&mut rx) {
            replies.push(rx[..n].to_vec());
        }
    }
    // Collect any late reply.
    while let Ok((n, _)) = sock.recv_from(&mut rx) {
        replies.push(rx[..n].to_vec());
    }
    assert_eq!(sent, 4);
    assert!(replies.len() >= 2, "{} replies", replies.len());
    assert_eq!(replies[0][0], 2, "Access-Accept");
    assert!(
        replies.iter().all(|r| r == &replies[0]),
        "identical replies"
    );
    assert_eq!(seen.lock().expect("lock").len(), 1, "one check");
    assert_eq!(rs.backend().ldap_user_binds.load(Relaxed), 1, "one bind");
}
