//! Operations: reload on SIGHUP, the metrics endpoint, orderly shutdown — against the real
//! binary, driven by FreeRADIUS's radtest.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{free_tcp_port, free_udp_port};

/// Kills the server if a test fails before stopping it.
struct Server {
    child: Child,
    log: std::path::PathBuf,
}

impl Server {
    fn start(config: &Path, log: &Path, extra: &[&str]) -> Server {
        let err = std::fs::File::create(log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_radshard"))
            .args(["serve", "--config"])
            .arg(config)
            .args(["--log-level", "info"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("start radshard");
        let s = Server {
            child,
            log: log.to_path_buf(),
        };
        s.wait_for_log("radshard listening", Duration::from_secs(10));
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

    fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(
            unsafe { libc::kill(self.child.id() as libc::pid_t, sig) },
            0
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// radtest's verdict: the reply code it received, if any.
fn radtest(user: &str, pass: &str, port: u16) -> Option<String> {
    let out = Command::new("radtest")
        .args([
            "-t",
            "pap",
            user,
            pass,
            &format!("127.0.0.1:{port}"),
            "0",
            "testing123",
        ])
        .output()
        .expect("radtest must be installed (apt-get install freeradius-utils)");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().find_map(|l| {
        l.strip_prefix("Received ")
            .map(|r| r.split(' ').next().unwrap_or("").to_string())
    })
}

fn config_text(auth: u16, acct: u16, acct_dir: &Path, users: &str) -> String {
    format!(
        "[server]\nshards = 2\nlisten_auth = [\"127.0.0.1:{auth}\"]\nlisten_acct = [\"127.0.0.1:{acct}\"]\n\
         [accounting]\ndirectory = {:?}\n\
         [[clients]]\nname = \"lo\"\naddresses = [\"127.0.0.1\"]\nsecret = \"testing123\"\n{users}",
        acct_dir.display().to_string()
    )
}

#[test]
fn sighup_reloads_users_and_refuses_a_broken_config() {
    let dir = tempfile::tempdir().unwrap();
    let (auth, acct) = (free_udp_port(), free_udp_port());
    let cfg = dir.path().join("radshard.toml");
    let alice = "[[users]]\nname = \"alice\"\npassword = \"alice-pw\"\n";
    std::fs::write(
        &cfg,
        config_text(auth, acct, &dir.path().join("acct"), alice),
    )
    .unwrap();
    let server = Server::start(
        &cfg,
        &dir.path().join("log"),
        &["--metrics-listen", "127.0.0.1:0"],
    );

    assert_eq!(
        radtest("alice", "alice-pw", auth).as_deref(),
        Some("Access-Accept")
    );
    assert_eq!(
        radtest("bob", "bob-pw", auth).as_deref(),
        Some("Access-Reject")
    );

    // Add bob; SIGHUP; bob is let in, alice still is.
    let both = format!("{alice}[[users]]\nname = \"bob\"\npassword = \"bob-pw\"\n");
    std::fs::write(
        &cfg,
        config_text(auth, acct, &dir.path().join("acct"), &both),
    )
    .unwrap();
    server.signal(libc::SIGHUP);
    server.wait_for_log("configuration reloaded", Duration::from_secs(5));
    assert_eq!(
        radtest("bob", "bob-pw", auth).as_deref(),
        Some("Access-Accept")
    );
    assert_eq!(
        radtest("alice", "alice-pw", auth).as_deref(),
        Some("Access-Accept")
    );

    // A broken config (unknown key on line 3) is refused with FILE:LINE; bob still gets in.
    let broken = config_text(auth, acct, &dir.path().join("acct"), &both).replacen(
        "shards = 2\n",
        "shards = 2\nshardz = 3\n",
        1,
    );
    std::fs::write(&cfg, broken).unwrap();
    server.signal(libc::SIGHUP);
    let expect = format!(
        "reload refused, the running configuration stays: {}:3: unknown field `shardz`",
        cfg.display()
    );
    server.wait_for_log(&expect, Duration::from_secs(5));
    assert_eq!(
        radtest("bob", "bob-pw", auth).as_deref(),
        Some("Access-Accept")
    );

    server.signal(libc::SIGTERM);
    let mut server = server;
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = server.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "server did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "SIGTERM exits 0: {status:?}");
}

fn scrape(addr: SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(s, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn metric(text: &str, line_prefix: &str) -> u64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(line_prefix)
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or_else(|| panic!("no {line_prefix} in\n{text}"))
}

#[test]
fn metrics_endpoint_counts_requests_drops_and_accounting() {
    let dir = tempfile::tempdir().unwrap();
    let (auth, acct, mport) = (free_udp_port(), free_udp_port(), free_tcp_port());
    let cfg = dir.path().join("radshard.toml");
    let users = "[[users]]\nname = \"alice\"\npassword = \"alice-pw\"\n";
    std::fs::write(
        &cfg,
        config_text(auth, acct, &dir.path().join("acct"), users),
    )
    .unwrap();
    let maddr: SocketAddr = format!("127.0.0.1:{mport}").parse().unwrap();
    let _server = Server::start(
        &cfg,
        &dir.path().join("log"),
        &["--metrics-listen", &maddr.to_string()],
    );

    assert_eq!(
        radtest("alice", "alice-pw", auth).as_deref(),
        Some("Access-Accept")
    );
    assert_eq!(
        radtest("alice", "nope", auth).as_deref(),
        Some("Access-Reject")
    );
    // Garbage from a known client and one from nowhere (well: from loopback, which is the
    // client; so garbage is counted as malformed).
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.send_to(&[1, 2, 3], ("127.0.0.1", auth)).unwrap();
    let acct_out = Command::new("radclient")
        .args([&format!("127.0.0.1:{acct}"), "acct", "testing123"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(
                b"Acct-Status-Type = Start, User-Name = alice, Acct-Session-Id = s1\n",
            )?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(String::from_utf8_lossy(&acct_out.stdout).contains("Accounting-Response"));

    let deadline = Instant::now() + Duration::from_secs(5);
    let text = loop {
        let t = scrape(maddr);
        if t.contains("radshard_dropped_total{reason=\"too_short\"} 1") || Instant::now() > deadline
        {
            break t;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(text.starts_with("HTTP/1.1 200 OK"));
    assert_eq!(
        metric(
            &text,
            "radshard_requests_total{client=\"lo\",code=\"Access-Request\"}"
        ),
        2
    );
    assert_eq!(
        metric(
            &text,
            "radshard_replies_total{client=\"lo\",code=\"Access-Accept\"}"
        ),
        1
    );
    assert_eq!(
        metric(
            &text,
            "radshard_replies_total{client=\"lo\",code=\"Access-Reject\"}"
        ),
        1
    );
    assert_eq!(
        metric(
            &text,
            "radshard_replies_total{client=\"lo\",code=\"Accounting-Response\"}"
        ),
        1
    );
    assert_eq!(
        metric(&text, "radshard_dropped_total{reason=\"too_short\"}"),
        1
    );
    assert_eq!(metric(&text, "radshard_accounting_records_total"), 1);
    assert_eq!(metric(&text, "radshard_accounting_fsync_seconds_count"), 1);
    for line in text
        .lines()
        .skip_while(|l| !l.is_empty())
        .skip(1)
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        assert!(line.starts_with("radshard_"), "{line}");
    }
}
