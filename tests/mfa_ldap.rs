//! The second factor after LDAP primary authentication (real slapd), through radclient:
//! the privacyIDEA provider (a local test double of `/validate/check`, as in
//! `mfa_privacyidea.rs`) gets the directory's alternate login ID (here `mail`); and the REST
//! push provider holds the request until the (double's) user approves.

mod ldap_common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ldap_common::*;

type Seen = Arc<Mutex<Vec<String>>>;

/// A one-route HTTP double: records each request body and answers with `answer(body)`.
fn http_double(answer: fn(&str) -> String) -> (String, Seen) {
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
                let a = answer(&body);
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

/// radclient with arbitrary attributes: (reply code, output).
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

const POLICY: &str = r#"
[[policies]]
name = "radius-users-mfa"
groups = ["radius-users"]
auth_sources = ["ldap"]
mfa = true
reply = { Class = "radius-users" }
"#;

#[test]
fn ldap_then_privacyidea_code() {
    let slapd = Slapd::start();
    let (url, seen) = http_double(|body| {
        let ok = body.contains("user=alice%40example.org") && body.contains("pass=755224");
        format!(
            r#"{{"detail":{{"message":"x"}},"result":{{"authentication":"{}","status":true,"value":{ok}}},"version":"privacyIDEA 3.14"}}"#,
            if ok { "ACCEPT" } else { "REJECT" }
        )
    });
    let rs = Radshard::start(&format!(
        "{}{POLICY}\n[mfa]\nprovider = \"privacyidea\"\n[mfa.privacyidea]\nurl = \"{url}\"\nrealm = \"ldaprealm\"\n",
        ldap_section(&[slapd.url()], "")
    ));
    let (code, out) = ask(rs.port, "User-Name = alice\nUser-Password = alicepw\n");
    assert_eq!(code.as_deref(), Some("Access-Challenge"), "{out}");
    let state = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("State = "))
        .unwrap_or_else(|| panic!("no State in:\n{out}"))
        .trim()
        .to_string();
    let (code, out) = ask(
        rs.port,
        &format!("User-Name = alice\nUser-Password = 755224\nState = {state}\n"),
    );
    assert_eq!(code.as_deref(), Some("Access-Accept"), "{out}");
    assert!(
        out.contains("Class = 0x7261646975732d7573657273"),
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
    let (url, seen) = http_double(|body| {
        std::thread::sleep(Duration::from_millis(300));
        format!("{{\"approved\":{}}}", body.contains("alice@example.org"))
    });
    let rs = Radshard::start(&format!(
        "{}{POLICY}\n[mfa]\nprovider = \"rest_push\"\n[mfa.rest_push]\nurl = \"{url}/push\"\nwait = \"3s\"\n",
        ldap_section(&[slapd.url()], "")
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
