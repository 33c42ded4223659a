//! The admin API against the real binary: bearer tokens (401 and nothing done without a valid
//! one, never in the log), the loopback-only rule, HTTPS with the `radshard certs` test PKI,
//! `/metrics` on its own listener, and the CLI (`radshard sessions`, `disconnect`, `coa`) and
//! its exit codes. Sessions are opened with FreeRADIUS's radclient (an Accounting-Request
//! Start).
//!
//! A fake DAS in the test answers Disconnect-Requests and CoA-Requests (ACK, or NAK with an
//! Error-Cause) for the tests of the dynamic-authorization endpoints.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{free_tcp_port, free_udp_port, radclient};

const TOKEN: &str = "adm1n-t0ken-for-the-tests-0123456789";
const WRONG: &str = "wr0ng-t0ken-nobody-has-9876543210";

/// A `radshard serve` child with its log in a file; killed on drop.
struct Server {
    child: Child,
    log: PathBuf,
    acct: SocketAddr,
    admin: SocketAddr,
    metrics: SocketAddr,
    config: PathBuf,
    dir: tempfile::TempDir,
}

#[derive(Default)]
struct Setup {
    /// Extra lines of `[admin]` (after listen and token_file).
    admin_extra: String,
    /// Extra lines of client `lo` (127.0.0.1, where radclient's accounting comes from).
    client_extra: String,
    /// Whole sections appended to the config.
    tail: String,
}

fn write_tokens(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join("admin-tokens");
    std::fs::write(&p, format!("# the tests' token\n{TOKEN}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}

fn config_text(
    dir: &Path,
    auth: u16,
    acct: u16,
    admin: SocketAddr,
    metrics: SocketAddr,
    s: &Setup,
) -> String {
    format!(
        "[server]\nshards = 2\nlisten_auth = [\"127.0.0.1:{auth}\"]\nlisten_acct = [\"127.0.0.1:{acct}\"]\n\
         [metrics]\nlisten = \"{metrics}\"\n\
         [accounting]\ndirectory = {:?}\n\
         [[clients]]\nname = \"lo\"\naddresses = [\"127.0.0.1\"]\nsecret = \"testing123\"\n{client}\n\
         [[users]]\nname = \"alice\"\npassword = \"alice-pw\"\n\
         {tail}\n\
         [admin]\nlisten = \"{admin}\"\ntoken_file = \"admin-tokens\"\n{extra}\n",
        dir.join("acct").display().to_string(),
        tail = s.tail,
        client = s.client_extra,
        extra = s.admin_extra,
    )
}

impl Server {
    fn start(setup: Setup) -> Server {
        let dir = tempfile::tempdir().unwrap();
        write_tokens(dir.path());
        let (auth, acct) = (free_udp_port(), free_udp_port());
        let admin: SocketAddr = format!("127.0.0.1:{}", free_tcp_port()).parse().unwrap();
        let metrics: SocketAddr = format!("127.0.0.1:{}", free_tcp_port()).parse().unwrap();
        let config = dir.path().join("radshard.toml");
        std::fs::write(
            &config,
            config_text(dir.path(), auth, acct, admin, metrics, &setup),
        )
        .unwrap();
        let log = dir.path().join("log");
        let child = Command::new(env!("CARGO_BIN_EXE_radshard"))
            .args(["serve", "--config"])
            .arg(&config)
            // Everything radshard logs, so that a token logged anywhere would be seen.
            .args(["--log-level", "debug"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start radshard");
        let s = Server {
            child,
            log,
            acct: format!("127.0.0.1:{acct}").parse().unwrap(),
            admin,
            metrics,
            config,
            dir,
        };
        s.wait_for_log("radshard listening", Duration::from_secs(15));
        s
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_for_log(&self, needle: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.log().contains(needle) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("server log never said {needle:?}:\n{}", self.log());
    }

    /// Opens a session: an Accounting-Request Start from radclient.
    fn start_session(&self, user: &str, acct_session_id: &str, framed_ip: &str) {
        let out = radclient(
            self.acct,
            "acct",
            "testing123",
            &format!(
                "Acct-Status-Type = Start, User-Name = \"{user}\", Acct-Session-Id = \"{acct_session_id}\", \
                 NAS-IP-Address = 127.0.0.1, NAS-Port = 7, Framed-IP-Address = {framed_ip}, \
                 Calling-Station-Id = \"02-00-00-00-00-01\"\n"
            ),
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("Accounting-Response"),
            "radclient: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn api(&self, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> Reply {
        http(self.admin, method, path, token, body)
    }

    /// The sessions the API lists (with the right token).
    fn sessions(&self, query: &str) -> Vec<serde_json::Value> {
        let r = self.api(
            "GET",
            &format!("/api/v1/sessions{query}"),
            Some(TOKEN),
            None,
        );
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()["sessions"].as_array().unwrap().clone()
    }

    /// Runs the CLI against this server's config.
    fn cli(&self, args: &[&str]) -> Output {
        cli(&self.config, args, &[])
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn cli(config: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let (cmd, rest) = args.split_first().unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_radshard"));
    c.arg(cmd).arg("--config").arg(config).args(rest);
    c.env_remove("RADSHARD_ADMIN_TOKEN");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run the radshard CLI")
}

struct Reply {
    status: u16,
    head: String,
    body: String,
}

impl Reply {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// One HTTP/1.1 request on its own connection (the server closes it after the answer).
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> Reply {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    let body = body.unwrap_or("");
    if !body.is_empty() || method == "POST" {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {out:?}"));
    Reply {
        status,
        head: head.to_string(),
        body: body.to_string(),
    }
}

fn metric(text: &str, line_prefix: &str) -> u64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(line_prefix)
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or_else(|| panic!("no {line_prefix} in\n{text}"))
}

fn scrape(server: &Server) -> String {
    let r = http(server.metrics, "GET", "/metrics", None, None);
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

/// Waits (bounded) until the API lists `n` sessions for `query`.
fn wait_sessions(server: &Server, query: &str, n: usize) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let s = server.sessions(query);
        if s.len() == n || Instant::now() > deadline {
            assert_eq!(s.len(), n, "sessions{query}: {s:?}");
            return s;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn without_a_valid_token_the_answer_is_401_and_nothing_is_done() {
    let server = Server::start(Setup::default());
    server.start_session("alice", "s-401", "10.0.0.7");
    let before = wait_sessions(&server, "", 1);
    let id = before[0]["id"].as_str().unwrap().to_string();

    let attempts = [
        ("GET", "/api/v1/sessions".to_string(), None),
        ("GET", "/api/v1/sessions".to_string(), Some(WRONG)),
        ("POST", format!("/api/v1/sessions/{id}/disconnect"), None),
        (
            "POST",
            format!("/api/v1/sessions/{id}/disconnect"),
            Some(WRONG),
        ),
        (
            "POST",
            "/api/v1/users/alice/disconnect".to_string(),
            Some(WRONG),
        ),
        ("POST", format!("/api/v1/sessions/{id}/coa"), Some("")),
        // Not even the 404 of an unknown endpoint is given away.
        ("GET", "/api/v1/nothing-here".to_string(), None),
    ];
    for (method, path, token) in &attempts {
        let body =
            (path.ends_with("/coa")).then_some(r#"{"attributes": [["Session-Timeout", "10"]]}"#);
        let r = server.api(method, path, *token, body);
        assert_eq!(r.status, 401, "{method} {path} with {token:?}: {}", r.body);
        assert!(
            r.head
                .to_ascii_lowercase()
                .contains("www-authenticate: bearer"),
            "{}",
            r.head
        );
        assert!(r.json()["error"].as_str().unwrap().contains("bearer token"));
    }
    // Other schemes and a token in the query string are no tokens.
    let mut s = TcpStream::connect(server.admin).unwrap();
    write!(
        s,
        "GET /api/v1/sessions?token={TOKEN} HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {TOKEN}\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 401"), "{out}");

    // Nothing was done: the session is still there, unchanged, and no Disconnect or CoA was
    // asked of the dispatcher.
    assert_eq!(server.sessions(""), before);
    let m = scrape(&server);
    assert_eq!(
        metric(
            &m,
            "radshard_admin_requests_total{outcome=\"unauthorized\"}"
        ),
        attempts.len() as u64 + 1
    );
    assert_eq!(
        metric(
            &m,
            "radshard_admin_dynauth_requested_total{kind=\"disconnect\"}"
        ),
        0
    );
    assert_eq!(
        metric(&m, "radshard_admin_dynauth_requested_total{kind=\"coa\"}"),
        0
    );

    // The description is public.
    let r = server.api("GET", "/api/v1/openapi.yaml", None, None);
    assert_eq!(r.status, 200);
    assert!(r.body.starts_with("openapi: 3"), "{}", r.body);
}

#[test]
fn tokens_and_the_authorization_header_never_reach_the_log() {
    let server = Server::start(Setup::default());
    server.start_session("alice", "s-log", "10.0.0.8");
    wait_sessions(&server, "", 1);
    let id = server.sessions("")[0]["id"].as_str().unwrap().to_string();
    server.api("GET", "/api/v1/sessions?user=alice", Some(TOKEN), None);
    server.api("GET", "/api/v1/sessions", Some(WRONG), None);
    server.api(
        "POST",
        &format!("/api/v1/sessions/{id}/disconnect"),
        Some(WRONG),
        None,
    );
    server.api("POST", "/api/v1/users/alice/disconnect", Some(TOKEN), None);
    server.api(
        "POST",
        &format!("/api/v1/sessions/{id}/coa"),
        Some(TOKEN),
        Some(r#"{"attributes": [["Reply-Message", "not-in-the-log-either"]]}"#),
    );
    assert!(server.cli(&["sessions"]).status.success());
    // The refusal is logged (without the token), the served requests at debug.
    server.wait_for_log("missing or invalid bearer token", Duration::from_secs(5));
    server.wait_for_log("admin API request", Duration::from_secs(5));

    let log = server.log();
    let hash = {
        use sha2::Digest;
        data_encoding::HEXLOWER.encode(&sha2::Sha256::digest(TOKEN.as_bytes()))
    };
    for secret in [TOKEN, WRONG, &hash, "not-in-the-log-either"] {
        assert!(!log.contains(secret), "{secret:?} is in the log:\n{log}");
    }
    // Nor the header, by name, in any form a header map would print it.
    let lower = log.to_ascii_lowercase();
    for header in [
        "authorization:",
        "\"authorization\"",
        "bearer adm",
        "bearer wr0",
    ] {
        assert!(!lower.contains(header), "{header} in the log:\n{log}");
    }
}

#[test]
fn a_non_loopback_listener_without_tls_is_refused_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    write_tokens(dir.path());
    let cfg = dir.path().join("radshard.toml");
    let text = format!(
        "[[clients]]\nname = \"lo\"\naddresses = [\"127.0.0.1\"]\nsecret = \"testing123\"\n\
         [accounting]\ndirectory = {:?}\n\
         [admin]\nlisten = \"0.0.0.0:{}\"\ntoken_file = \"admin-tokens\"\n",
        dir.path().join("acct").display().to_string(),
        free_tcp_port()
    );
    std::fs::write(&cfg, &text).unwrap();
    let line = text
        .lines()
        .position(|l| l.starts_with("listen = \"0.0.0.0"))
        .unwrap()
        + 1;
    let expect = format!("{}:{line}: admin.listen 0.0.0.0:", cfg.display());
    for cmd in ["check-config", "serve"] {
        let out = Command::new(env!("CARGO_BIN_EXE_radshard"))
            .args([cmd, "--config"])
            .arg(&cfg)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{cmd} accepted it");
        let err = stderr(&out);
        assert!(err.contains(&expect), "{cmd}: {err}");
        assert!(err.contains("not a loopback address"), "{cmd}: {err}");
    }

    // An empty token file, and a world-readable one (a warning).
    let tokens = dir.path().join("admin-tokens");
    let loopback = text.replace("0.0.0.0:", "127.0.0.1:");
    std::fs::write(&cfg, &loopback).unwrap();
    std::fs::write(&tokens, "# nobody\n").unwrap();
    let out = cli(&cfg, &["check-config"], &[]);
    assert!(!out.status.success());
    let tline = loopback
        .lines()
        .position(|l| l.starts_with("token_file"))
        .unwrap()
        + 1;
    assert!(
        stderr(&out).contains(&format!(
            "{}:{tline}: admin.token_file: token file",
            cfg.display()
        )),
        "{}",
        stderr(&out)
    );
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(&tokens, format!("{TOKEN}\n")).unwrap();
        std::fs::set_permissions(&tokens, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let out = cli(&cfg, &["check-config"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("readable by every local user"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains(TOKEN));
}

#[test]
fn the_api_answers_over_https_with_the_test_pki() {
    let pki = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_radshard"))
        .args(["certs", "--out"])
        .arg(pki.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let tls = format!(
        "[admin.tls]\ncertificate = {:?}\nprivate_key = {:?}\n",
        pki.path().join("server.pem").display().to_string(),
        pki.path().join("server.key").display().to_string()
    );
    let server = Server::start(Setup {
        admin_extra: tls.clone(),
        ..Setup::default()
    });
    server.wait_for_log("admin API at https://", Duration::from_secs(5));
    server.start_session("alice", "s-tls", "10.0.0.9");
    std::thread::sleep(Duration::from_millis(200));

    // Pinned: the CLI trusts the configured certificate itself.
    let out = server.cli(&["sessions", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["sessions"][0]["user"], "alice", "{v}");
    // Through the CA, checking the certificate's name (radius.test, resolved to the listener).
    let ca = pki.path().join("ca.pem");
    let out = server.cli(&["sessions", "--ca", ca.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("alice"), "{}", stdout(&out));
    // A wrong name is refused.
    let out = server.cli(&[
        "sessions",
        "--ca",
        ca.to_str().unwrap(),
        "--server-name",
        "other.test",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    // A certificate the CLI does not expect is refused: another PKI's CA.
    let other = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_radshard"))
        .args(["certs", "--out"])
        .arg(other.path())
        .output()
        .unwrap();
    let out = server.cli(&[
        "sessions",
        "--ca",
        other.path().join("ca.pem").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));

    // Plain HTTP to the TLS listener gets no HTTP answer.
    let mut s = TcpStream::connect(server.admin).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = write!(s, "GET /api/v1/sessions HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    assert!(
        !buf.starts_with(b"HTTP/"),
        "{:?}",
        String::from_utf8_lossy(&buf)
    );

    // With TLS, a non-loopback listener is allowed (checked, not bound).
    let text = std::fs::read_to_string(&server.config).unwrap().replace(
        &format!("listen = \"{}\"", server.admin),
        "listen = \"0.0.0.0:9813\"",
    );
    let cfg = server.dir.path().join("any.toml");
    std::fs::write(&cfg, text).unwrap();
    let out = cli(&cfg, &["check-config"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn metrics_stay_on_their_own_listener() {
    let server = Server::start(Setup::default());
    server.start_session("alice", "s-metrics", "10.0.0.10");
    wait_sessions(&server, "", 1);
    let m = scrape(&server);
    assert!(m.contains("radshard_shards 2"), "{m}");
    assert_eq!(metric(&m, "radshard_sessions_open{client=\"lo\"}"), 1);
    assert!(
        m.contains("radshard_admin_requests_total{outcome=\"ok\"}"),
        "{m}"
    );
    // The metrics listener serves nothing else, the API's no metrics.
    assert_eq!(
        http(server.metrics, "GET", "/api/v1/sessions", Some(TOKEN), None).status,
        404
    );
    assert_eq!(
        http(server.metrics, "POST", "/metrics", None, None).status,
        404
    );
    assert_eq!(server.api("GET", "/metrics", None, None).status, 401);
    assert_eq!(server.api("GET", "/metrics", Some(TOKEN), None).status, 404);
}

#[test]
fn the_api_lists_and_filters_sessions_and_refuses_bad_requests() {
    let server = Server::start(Setup::default());
    server.start_session("alice", "s-a1", "10.0.0.11");
    server.start_session("alice", "s-a2", "10.0.0.12");
    server.start_session("bob", "s-b1", "10.0.0.13");
    wait_sessions(&server, "", 3);
    assert_eq!(wait_sessions(&server, "?user=alice", 2).len(), 2);
    let bob = wait_sessions(&server, "?ip=10.0.0.13", 1);
    assert_eq!(bob[0]["user"], "bob");
    assert_eq!(bob[0]["calling_station_id"], "02-00-00-00-00-01");
    assert_eq!(wait_sessions(&server, "?nas=lo&user=bob", 1).len(), 1);
    assert_eq!(wait_sessions(&server, "?nas=other", 0).len(), 0);
    let id = bob[0]["id"].as_str().unwrap();
    let r = server.api("GET", &format!("/api/v1/sessions/{id}"), Some(TOKEN), None);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["session"]["acct_session_id"], "s-b1");

    // Bad requests.
    let r = server.api("GET", "/api/v1/sessions?colour=red", Some(TOKEN), None);
    assert_eq!(r.status, 400, "{}", r.body);
    let r = server.api("GET", "/api/v1/sessions?ip=not-an-ip", Some(TOKEN), None);
    assert_eq!(r.status, 400, "{}", r.body);
    let r = server.api("DELETE", "/api/v1/sessions", Some(TOKEN), None);
    assert_eq!(r.status, 405);
    let coa = format!("/api/v1/sessions/{id}/coa");
    let r = server.api(
        "POST",
        &coa,
        Some(TOKEN),
        Some(r#"{"attributes": [["Session-Timeout", "60"], ["No-Such-Attribute", "1"]]}"#),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["attribute"], "No-Such-Attribute");
    assert!(r.json()["error"]
        .as_str()
        .unwrap()
        .contains("No-Such-Attribute"));
    let r = server.api("POST", &coa, Some(TOKEN), Some(r#"{"attributes": []}"#));
    assert_eq!(r.status, 400, "{}", r.body);
    let r = server.api("POST", &coa, Some(TOKEN), Some("{not json"));
    assert_eq!(r.status, 400, "{}", r.body);
    let big = format!(
        r#"{{"attributes": [["Reply-Message", "{}"]]}}"#,
        "x".repeat(70 * 1024)
    );
    let r = server.api("POST", &coa, Some(TOKEN), Some(&big));
    assert_eq!(r.status, 413, "{}", r.body);
    // Unknown sessions and users.
    let r = server.api(
        "POST",
        "/api/v1/sessions/00000000000000000000000000000000/disconnect",
        Some(TOKEN),
        None,
    );
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"], "no session");
    let r = server.api(
        "POST",
        "/api/v1/users/nobody%40example.org/disconnect",
        Some(TOKEN),
        None,
    );
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"], "no session");
}

#[test]
fn the_cli_lists_sessions_and_exits_1_for_no_session() {
    let server = Server::start(Setup::default());
    server.start_session("alice", "s-cli", "10.0.0.14");
    wait_sessions(&server, "", 1);

    let out = server.cli(&["sessions"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = stdout(&out);
    let mut lines = table.lines();
    let header = lines.next().unwrap();
    for col in [
        "ID",
        "USER",
        "CLIENT",
        "NAS-PORT",
        "FRAMED-IP",
        "CALLING-STATION",
        "STARTED",
        "OCTETS",
    ] {
        assert!(header.contains(col), "{header}");
    }
    let row = lines.next().unwrap();
    for cell in ["alice", "lo", "7", "10.0.0.14", "02-00-00-00-00-01", "0/0"] {
        assert!(row.contains(cell), "{cell} not in {row}");
    }
    let out = server.cli(&["sessions", "--user", "bob"]);
    assert!(out.status.success());
    assert_eq!(
        stdout(&out).lines().count(),
        1,
        "only the header: {}",
        stdout(&out)
    );
    let out = server.cli(&["sessions", "--json", "--user", "alice"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["sessions"][0]["framed_ip_address"], "10.0.0.14");

    // No session: exit 1, "no session".
    for args in [
        &["disconnect", "--user", "nobody"][..],
        &[
            "disconnect",
            "--session",
            "00000000000000000000000000000000",
        ],
        &[
            "coa",
            "--session",
            "00000000000000000000000000000000",
            "Session-Timeout=60",
        ],
    ] {
        let out = server.cli(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("no session"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    // disconnect needs --user or --session.
    assert_eq!(server.cli(&["disconnect"]).status.code(), Some(2));

    // The token: a wrong --token is refused (exit 2, the 401 said); RADSHARD_ADMIN_TOKEN works.
    let out = server.cli(&["sessions", "--token", WRONG]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("401"), "{}", stderr(&out));
    assert!(!stderr(&out).contains(WRONG));
    std::fs::write(server.dir.path().join("admin-tokens"), "# only a hash now\nsha256:0000000000000000000000000000000000000000000000000000000000000000\n").unwrap();
    let out = cli(
        &server.config,
        &["sessions"],
        &[("RADSHARD_ADMIN_TOKEN", TOKEN)],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = cli(&server.config, &["sessions"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no token"), "{}", stderr(&out));
}

/// Reads until EOF (or `limit`); returns how long it took and whether EOF came.
fn wait_closed(s: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buf = [0u8; 512];
    while start.elapsed() < limit {
        match s.read(&mut buf) {
            Ok(0) => return Some(start.elapsed()),
            Ok(_) => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return Some(start.elapsed()),
        }
    }
    None
}

#[test]
fn slow_and_excess_connections_are_cut_off() {
    let server = Server::start(Setup {
        admin_extra: "max_connections = 2".into(),
        ..Setup::default()
    });
    // Two clients that never finish their headers hold the two slots...
    let mut slow: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut s = TcpStream::connect(server.admin).unwrap();
            s.write_all(b"GET /api/v1/sessions HTTP/1.1\r\nHost: x\r\n")
                .unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // ...so a third is closed at once, unanswered.
    let mut third = TcpStream::connect(server.admin).unwrap();
    let _ = third.write_all(b"GET /api/v1/openapi.yaml HTTP/1.1\r\nHost: x\r\n\r\n");
    let closed = wait_closed(&mut third, Duration::from_secs(3));
    assert!(closed.is_some(), "an excess connection was served");
    // The slow ones are closed when the header read time (10 s) is up.
    for s in &mut slow {
        let t = wait_closed(s, Duration::from_secs(15)).expect("a slow client was never cut off");
        assert!(t < Duration::from_secs(12), "{t:?}");
    }
    // Then the slots are free again.
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        server
            .api("GET", "/api/v1/sessions", Some(TOKEN), None)
            .status,
        200
    );
}

#[test]
fn a_reload_takes_the_new_token_file() {
    let server = Server::start(Setup::default());
    assert_eq!(
        server
            .api("GET", "/api/v1/sessions", Some(TOKEN), None)
            .status,
        200
    );
    let new = "n3w-t0ken-after-the-reload-000000";
    std::fs::write(server.dir.path().join("admin-tokens"), format!("{new}\n")).unwrap();
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(
        unsafe { libc::kill(server.child.id() as libc::pid_t, libc::SIGHUP) },
        0
    );
    server.wait_for_log("configuration reloaded", Duration::from_secs(5));
    assert_eq!(
        server
            .api("GET", "/api/v1/sessions", Some(TOKEN), None)
            .status,
        401
    );
    assert_eq!(
        server
            .api("GET", "/api/v1/sessions", Some(new), None)
            .status,
        200
    );
    assert!(!server.log().contains(new));
}

// ---------------------------------------------------------------------------------------------
// With a NAS that answers Disconnect-Request and CoA-Request (a fake DAS in the test).
// ---------------------------------------------------------------------------------------------

const DAS_SECRET: &str = "das-secret-of-the-nas";

/// How the fake DAS answers.
#[derive(Clone, Copy)]
enum DasMode {
    Ack,
    /// A NAK with this Error-Cause.
    Nak(u32),
}

/// A request the fake DAS got: its code and its attributes (type, value).
type Received = (u8, Vec<(u8, Vec<u8>)>);

/// A fake DAS (the NAS's side of RFC 5176) on a loopback UDP port: it records every request
/// (code and attributes) and answers each as `mode` says, signed with [`DAS_SECRET`].
struct FakeDas {
    addr: SocketAddr,
    received: std::sync::Arc<std::sync::Mutex<Vec<Received>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl FakeDas {
    fn start(mode: DasMode) -> FakeDas {
        use radshard::proto::{Code, Packet, PacketBuilder, Secret};
        let sock = std::net::UdpSocket::bind(("127.0.0.1", free_udp_port())).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let addr = sock.local_addr().unwrap();
        let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (rec, st) = (received.clone(), stop.clone());
        std::thread::spawn(move || {
            let secret = Secret::new(DAS_SECRET).unwrap();
            let mut buf = [0u8; 4096];
            while !st.load(std::sync::atomic::Ordering::Relaxed) {
                let Ok((n, from)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                let Ok(p) = Packet::parse(&buf[..n]) else {
                    continue;
                };
                let attrs: Vec<(u8, Vec<u8>)> =
                    p.attributes().map(|a| (a.typ, a.value.to_vec())).collect();
                rec.lock().unwrap().push((p.code().as_u8(), attrs));
                let (ack, nak) = match p.code() {
                    Code::DisconnectRequest => (Code::DisconnectAck, Code::DisconnectNak),
                    Code::CoaRequest => (Code::CoaAck, Code::CoaNak),
                    _ => continue,
                };
                let auth: [u8; 16] = buf[4..20].try_into().unwrap();
                let mut out = [0u8; 256];
                let code = match mode {
                    DasMode::Ack => ack,
                    DasMode::Nak(_) => nak,
                };
                let mut b =
                    PacketBuilder::answer(&mut out, code, p.code(), p.identifier(), &auth).unwrap();
                if let DasMode::Nak(cause) = mode {
                    b.attr(101, &cause.to_be_bytes()).unwrap();
                }
                let reply = b.finish(&secret).unwrap().to_vec();
                let _ = sock.send_to(&reply, from);
            }
        });
        FakeDas {
            addr,
            received,
            stop,
        }
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for FakeDas {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A server whose client `lo` has a DAS: the fake one.
fn server_with_das(das: &FakeDas) -> Server {
    Server::start(Setup {
        client_extra: format!(
            "das = {{ address = \"{}\", secret = \"{DAS_SECRET}\" }}",
            das.addr
        ),
        tail: "[dynauth]\ntimeout = \"1s\"\nretries = 1\n".to_string(),
        ..Setup::default()
    })
}

#[test]
fn disconnect_and_coa_reach_the_das_and_the_cli_reports_ack_and_nak() {
    let das = FakeDas::start(DasMode::Ack);
    let server = server_with_das(&das);
    server.start_session("alice", "s-d1", "10.0.1.1");
    server.start_session("alice", "s-d2", "10.0.1.2");
    wait_sessions(&server, "?user=alice", 2);

    // Without a token nothing reaches the DAS, nor even the dispatcher.
    let r = server.api("POST", "/api/v1/users/alice/disconnect", Some(WRONG), None);
    assert_eq!(r.status, 401);
    let id = server.sessions("?ip=10.0.1.1")[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = server.api(
        "POST",
        &format!("/api/v1/sessions/{id}/coa"),
        None,
        Some(r#"{"attributes": [["Session-Timeout", "1"]]}"#),
    );
    assert_eq!(r.status, 401);
    std::thread::sleep(Duration::from_millis(300));
    assert!(das.received().is_empty());
    let m = scrape(&server);
    assert_eq!(
        metric(&m, "radshard_dynauth_requests_total{kind=\"disconnect\"}"),
        0
    );
    assert_eq!(
        metric(&m, "radshard_dynauth_requests_total{kind=\"coa\"}"),
        0
    );
    assert_eq!(wait_sessions(&server, "?user=alice", 2).len(), 2);

    // CoA by dictionary name.
    let out = server.cli(&[
        "coa",
        "--session",
        &id,
        "Session-Timeout=3600",
        "Filter-Id=gold",
    ]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("ACK"), "{}", stdout(&out));
    let got = das.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, 43, "a CoA-Request");
    assert!(got[0].1.contains(&(27, 3600u32.to_be_bytes().to_vec())));
    assert!(got[0].1.contains(&(11, b"gold".to_vec())));

    // Every session of the user, concurrently: exit 0 on ACKs.
    let out = server.cli(&["disconnect", "--user", "alice"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(stdout(&out).matches(": ACK").count(), 2, "{}", stdout(&out));
    let disconnects = das.received().iter().filter(|(c, _)| *c == 40).count();
    assert_eq!(disconnects, 2);
    let m = scrape(&server);
    assert_eq!(
        metric(
            &m,
            "radshard_admin_dynauth_requested_total{kind=\"disconnect\"}"
        ),
        2
    );
    assert_eq!(
        metric(&m, "radshard_dynauth_requests_total{kind=\"disconnect\"}"),
        2
    );
    assert_eq!(
        metric(&m, "radshard_dynauth_requests_total{kind=\"coa\"}"),
        1
    );
}

#[test]
fn a_nak_exits_1_with_its_error_cause() {
    let das = FakeDas::start(DasMode::Nak(503));
    let server = server_with_das(&das);
    server.start_session("alice", "s-n1", "10.0.2.1");
    let id = wait_sessions(&server, "", 1)[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = server.api(
        "POST",
        &format!("/api/v1/sessions/{id}/disconnect"),
        Some(TOKEN),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["session"], id.as_str());
    assert_eq!(v["outcome"]["result"], "nak");
    assert_eq!(v["outcome"]["error_cause"]["code"], 503);
    let out = server.cli(&["disconnect", "--session", &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("Session-Context-Not-Found (503)"),
        "{}",
        stderr(&out)
    );
}
