//! Shared harness for the data-plane integration tests: an in-process server with its own
//! ephemeral ports and temporary accounting directory, the same server as a subprocess, a small
//! RADIUS client built on `radshard::proto`, and a bounded runner for FreeRADIUS's
//! `radclient`/`radtest`.
//!
//! Everything here is loopback-only and every wait is bounded.
#![allow(dead_code)]

pub mod eap_memory;
pub mod eapol;
pub mod freeradius;
pub mod freeradius_das;
pub mod freeradius_eap;
pub mod freeradius_home;
pub mod hostapd;
pub mod mfa;
pub mod mschap;
pub mod ports;
pub mod postgres;
pub mod radsec_client;
pub mod radsecproxy;

use std::collections::BTreeMap;
use std::io::{ErrorKind, Write};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use radshard::config::Config;
use radshard::dataplane::{self, ServerHandle};
use radshard::metrics::{DropReason, DuplicateKind, ShardMetrics};
use radshard::proto::{attr, verify_response, Code, Packet, PacketBuilder, Secret};

pub const SECRET: &str = "testing123";
/// A receive timeout for "an answer is expected".
pub const REPLY_WAIT: Duration = Duration::from_secs(3);
/// How long silence must last before we call it "no reply".
pub const SILENCE: Duration = Duration::from_millis(700);

/// The client and user sections most tests use: 127.0.0.1 with [`SECRET`], MA required, and
/// the users alice (cleartext, with a Reply-Message) and bob (cleartext, no reply attrs).
pub const STANDARD_BODY: &str = r#"
[[clients]]
name = "localhost"
addresses = ["127.0.0.1"]
secret = "testing123"
require_message_authenticator = true
limit_proxy_state = true

[[users]]
name = "alice"
password = "alice-pw"
reply = { Reply-Message = "Welcome, alice", Session-Timeout = 3600 }

[[users]]
name = "bob"
password = "bob-pw"
"#;

// ---------------------------------------------------------------------------------------------
// In-process server
// ---------------------------------------------------------------------------------------------

/// A server started in this process; stopped (shards drained and joined) on drop.
pub struct TestServer {
    handle: Option<ServerHandle>,
    pub auth: SocketAddr,
    pub acct: SocketAddr,
    pub metrics: Vec<Arc<ShardMetrics>>,
    pub shards: usize,
    /// The accounting directory (deleted on drop).
    pub dir: tempfile::TempDir,
}

/// The full config text for a test server: `[server]` on ephemeral loopback ports with `shards`
/// shards and `server_extra` lines, `[accounting]` in `acct_dir`, then `body`.
pub fn config_text(shards: usize, server_extra: &str, acct_dir: &Path, body: &str) -> String {
    format!(
        "[server]\nshards = {shards}\nlisten_auth = [\"127.0.0.1:0\"]\nlisten_acct = [\"127.0.0.1:0\"]\n{server_extra}\n\n\
         [accounting]\ndirectory = {dir:?}\n\n{body}\n",
        dir = acct_dir.to_str().expect("utf-8 temp path"),
    )
}

impl TestServer {
    /// Starts a server with `shards` shards and the given clients/users `body`.
    pub fn start(shards: usize, body: &str) -> TestServer {
        TestServer::start_with(shards, "", body)
    }

    pub fn start_with(shards: usize, server_extra: &str, body: &str) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let text = config_text(shards, server_extra, dir.path(), body);
        let config = Config::from_str(&text, Path::new("test.toml"), None)
            .unwrap_or_else(|e| panic!("test config is invalid: {e}\n{text}"));
        let handle = dataplane::start(&config).unwrap_or_else(|e| panic!("server start: {e}"));
        assert_eq!(handle.auth_addrs.len(), 1);
        assert_eq!(handle.acct_addrs.len(), 1);
        let (auth, acct) = (handle.auth_addrs[0], handle.acct_addrs[0]);
        assert_ne!(auth.port(), 0, "the handle reports the bound port");
        TestServer {
            auth,
            acct,
            metrics: handle.metrics.clone(),
            shards: handle.shards,
            handle: Some(handle),
            dir,
        }
    }

    /// The backend pool's counters (directory, winbind), when one is configured.
    pub fn backend(&self) -> Option<&radshard::metrics::BackendMetrics> {
        Some(self.handle.as_ref()?.backend.as_ref()?.metrics())
    }

    /// The first RadSec listener's address, when `[radsec]` is configured.
    pub fn radsec(&self) -> Option<SocketAddr> {
        self.handle.as_ref()?.radsec_addrs.first().copied()
    }

    /// The first RADIUS/TCP listener's address, when `[tcp]` is configured.
    pub fn tcp(&self) -> Option<SocketAddr> {
        self.handle.as_ref()?.tcp_addrs.first().copied()
    }

    /// The session table, when `[sessions]` is on (the default).
    pub fn sessions(&self) -> Option<Arc<radshard::session::SessionStore>> {
        self.handle.as_ref()?.sessions.clone()
    }

    /// The proxy client's counters, when `[proxy]` is configured.
    pub fn proxy(&self) -> Option<Arc<radshard::proxy::client::ProxyMetrics>> {
        self.handle.as_ref()?.proxy_metrics()
    }

    /// Stops the server and waits for it to drain (also done on drop).
    pub fn stop(mut self) {
        if let Some(h) = self.handle.take() {
            h.stop();
        }
    }

    pub fn sum(&self, f: impl Fn(&ShardMetrics) -> u64) -> u64 {
        radshard::metrics::total(&self.metrics, f)
    }

    pub fn received(&self) -> u64 {
        self.sum(|m| m.received.get())
    }

    pub fn dropped(&self, r: DropReason) -> u64 {
        self.sum(|m| m.dropped(r))
    }

    pub fn total_drops(&self) -> u64 {
        self.sum(|m| m.total_drops())
    }

    pub fn duplicates(&self, k: DuplicateKind) -> u64 {
        self.sum(|m| m.duplicates[k as usize].get())
    }

    pub fn replies(&self, code: Code) -> u64 {
        self.sum(|m| m.replies_with(code.as_u8()))
    }

    pub fn requests(&self, code: Code) -> u64 {
        self.sum(|m| m.requests_with(code.as_u8()))
    }

    /// Non-zero drop counters by label.
    pub fn drop_breakdown(&self) -> BTreeMap<&'static str, u64> {
        DropReason::ALL
            .iter()
            .map(|&r| (r.label(), self.dropped(r)))
            .filter(|&(_, n)| n > 0)
            .collect()
    }

    /// Waits (bounded) until `received` reaches `n`; returns whether it did.
    pub fn wait_received(&self, n: u64, limit: Duration) -> bool {
        wait_until(limit, || self.received() >= n)
    }

    /// Every accounting record written so far, parsed.
    pub fn accounting_records(&self) -> Vec<serde_json::Value> {
        read_accounting(self.dir.path()).records
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            h.stop();
        }
    }
}

/// Polls `cond` every few milliseconds until it holds or `limit` passes.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

// ---------------------------------------------------------------------------------------------
// Accounting log
// ---------------------------------------------------------------------------------------------

pub struct AccountingLog {
    pub records: Vec<serde_json::Value>,
    /// Lines (other than a torn last line) that are not valid JSON.
    pub bad_lines: Vec<String>,
    /// A last line without its newline (a torn write), if any.
    pub torn_tail: Option<String>,
    pub files: Vec<PathBuf>,
}

/// Reads every `accounting-YYYY-MM-DD.jsonl` in `dir` (all days, so a test running across
/// midnight UTC still sees everything).
pub fn read_accounting(dir: &Path) -> AccountingLog {
    let mut log = AccountingLog {
        records: Vec::new(),
        bad_lines: Vec::new(),
        torn_tail: None,
        files: Vec::new(),
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return log;
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("accounting-") && n.ends_with(".jsonl"))
        })
        .collect();
    files.sort();
    for f in &files {
        let text = std::fs::read_to_string(f).expect("accounting file is UTF-8");
        let mut rest = text.as_str();
        while !rest.is_empty() {
            let (line, next, complete) = match rest.find('\n') {
                Some(i) => (&rest[..i], &rest[i + 1..], true),
                None => (rest, "", false),
            };
            rest = next;
            if !complete {
                log.torn_tail = Some(line.to_string());
                break;
            }
            match serde_json::from_str::<serde_json::Value>(line) {
                Ok(v) => log.records.push(v),
                Err(_) => log.bad_lines.push(line.to_string()),
            }
        }
    }
    log.files = files;
    log
}

/// `record["attributes"][name]` as a string, if it is one.
pub fn rec_attr<'a>(record: &'a serde_json::Value, name: &str) -> Option<&'a str> {
    record.get("attributes")?.get(name)?.as_str()
}

// ---------------------------------------------------------------------------------------------
// Packets
// ---------------------------------------------------------------------------------------------

pub fn secret(s: &str) -> Secret {
    Secret::new(s).expect("non-empty secret")
}

pub fn random_authenticator() -> [u8; 16] {
    rand::random()
}

/// A PAP Access-Request for `user`/`password`, signed with `secret`; with `ma`, a
/// Message-Authenticator first. Returns the bytes (the authenticator is bytes[4..20]).
pub fn access_request(
    secret: &Secret,
    id: u8,
    authenticator: &[u8; 16],
    user: &str,
    password: &str,
    ma: bool,
) -> Vec<u8> {
    access_request_with(secret, id, authenticator, user, password, ma, &[])
}

pub fn access_request_with(
    secret: &Secret,
    id: u8,
    authenticator: &[u8; 16],
    user: &str,
    password: &str,
    ma: bool,
    extra: &[(u8, &[u8])],
) -> Vec<u8> {
    let mut buf = [0u8; 4096];
    let mut b = PacketBuilder::request(&mut buf, Code::AccessRequest, id, authenticator)
        .expect("header fits");
    if ma {
        b.message_authenticator().expect("fits");
    }
    b.attr(attr::USER_NAME, user.as_bytes()).expect("fits");
    b.user_password(secret, password.as_bytes()).expect("fits");
    b.attr(attr::NAS_IDENTIFIER, b"itest-nas").expect("fits");
    for (t, v) in extra {
        b.attr(*t, v).expect("fits");
    }
    b.finish(secret).expect("signs").to_vec()
}

/// An Accounting-Request with the given attributes (Request Authenticator computed with
/// `secret`).
pub fn accounting_request(secret: &Secret, id: u8, attrs: &[(u8, &[u8])]) -> Vec<u8> {
    let mut buf = [0u8; 4096];
    let mut b =
        PacketBuilder::request(&mut buf, Code::AccountingRequest, id, &[0; 16]).expect("fits");
    for (t, v) in attrs {
        b.attr(*t, v).expect("fits");
    }
    b.finish(secret).expect("signs").to_vec()
}

/// A typical accounting record: Acct-Status-Type (1 Start, 2 Stop, 3 Interim-Update),
/// User-Name, Acct-Session-Id, NAS-Identifier, Framed-IP-Address 10.0.0.1.
pub fn accounting_for(secret: &Secret, id: u8, status: u32, user: &str, session: &str) -> Vec<u8> {
    accounting_request(
        secret,
        id,
        &[
            (attr::ACCT_STATUS_TYPE, &status.to_be_bytes()),
            (attr::USER_NAME, user.as_bytes()),
            (attr::ACCT_SESSION_ID, session.as_bytes()),
            (attr::NAS_IDENTIFIER, b"itest-nas"),
            (attr::FRAMED_IP_ADDRESS, &[10, 0, 0, 1]),
        ],
    )
}

/// The Request Authenticator of a packet we built.
pub fn authenticator_of(packet: &[u8]) -> [u8; 16] {
    packet[4..20].try_into().expect("a header")
}

/// A reply, checked: its framing parses, it answers `request` (identifier) and its Response
/// Authenticator and Message-Authenticator verify with `secret`.
pub fn check_reply(reply: &[u8], request: &[u8], secret: &Secret) -> Code {
    let p = Packet::parse(reply).unwrap_or_else(|e| panic!("reply does not parse: {e:?}"));
    assert_eq!(p.identifier(), request[1], "reply identifier");
    verify_response(&p, &authenticator_of(request), secret)
        .unwrap_or_else(|e| panic!("reply does not verify: {e:?}"));
    p.code()
}

/// Value of attribute `typ` in a reply.
pub fn reply_attr(reply: &[u8], typ: u8) -> Option<Vec<u8>> {
    Packet::parse(reply).ok()?.attr(typ).map(<[u8]>::to_vec)
}

// ---------------------------------------------------------------------------------------------
// Client socket
// ---------------------------------------------------------------------------------------------

/// A loopback UDP client (one source port for its life, as a NAS).
pub struct RadClient {
    pub sock: UdpSocket,
}

impl RadClient {
    pub fn new() -> RadClient {
        RadClient::bind("127.0.0.1:0")
    }

    pub fn bind(addr: &str) -> RadClient {
        let sock = UdpSocket::bind(addr).expect("bind client socket");
        RadClient { sock }
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.sock.local_addr().expect("bound")
    }

    pub fn send(&self, datagram: &[u8], to: SocketAddr) {
        let n = self.sock.send_to(datagram, to).expect("send_to");
        assert_eq!(n, datagram.len());
    }

    /// The next datagram, or None after `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        let mut buf = vec![0u8; 65536];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.sock.set_read_timeout(Some(left)).expect("timeout");
            match self.sock.recv_from(&mut buf) {
                Ok((n, _)) => return Some(buf[..n].to_vec()),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return None
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => panic!("recv: {e}"),
            }
        }
    }

    /// Every datagram that arrives until `quiet` passes without one (bounded by `limit`).
    pub fn drain(&self, quiet: Duration, limit: Duration) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + limit;
        let mut out = Vec::new();
        while Instant::now() < deadline {
            match self.recv_timeout(quiet) {
                Some(d) => out.push(d),
                None => break,
            }
        }
        out
    }

    /// Sends `request` and waits for one reply.
    pub fn exchange(&self, request: &[u8], to: SocketAddr) -> Option<Vec<u8>> {
        self.send(request, to);
        self.recv_timeout(REPLY_WAIT)
    }
}

impl Default for RadClient {
    fn default() -> Self {
        RadClient::new()
    }
}

// ---------------------------------------------------------------------------------------------
// Accounting flood
// ---------------------------------------------------------------------------------------------

pub const FLOOD_WINDOW: usize = 64;
pub const FLOOD_MAX_REQUESTS: u64 = 200_000;
pub const FLOOD_MAX_TIME: Duration = Duration::from_secs(10);
/// An unanswered request frees its identifier after this long.
pub const FLOOD_GIVE_UP: Duration = Duration::from_secs(2);

pub struct FloodResult {
    pub sent: u64,
    /// Acct-Session-Ids whose Accounting-Response arrived and verified.
    pub acked: Vec<String>,
    pub bad_replies: u64,
    /// Requests given up on after FLOOD_GIVE_UP without a response.
    pub gave_up: u64,
}

/// Sends Accounting-Requests with unique Acct-Session-Ids (`<prefix>-<n>`), at most
/// `FLOOD_WINDOW` outstanding, until `stop` is raised (then drains late replies for 300 ms),
/// `FLOOD_MAX_REQUESTS` are sent or `FLOOD_MAX_TIME` passes.
pub fn flood_accounting(to: SocketAddr, prefix: &str, stop: Arc<AtomicBool>) -> FloodResult {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.set_read_timeout(Some(Duration::from_millis(5)))
        .expect("timeout");
    let sec = secret(SECRET);
    // Outstanding requests by identifier: (sequence number, request authenticator, sent at).
    let mut slots: Vec<Option<(u64, [u8; 16], Instant)>> = vec![None; 256];
    let mut outstanding = 0usize;
    let mut next_id = 0u8;
    let mut r = FloodResult {
        sent: 0,
        acked: Vec::new(),
        bad_replies: 0,
        gave_up: 0,
    };
    let started = Instant::now();
    let mut stopped_at: Option<Instant> = None;
    let mut rbuf = [0u8; 4096];
    let mut pbuf = [0u8; 4096];
    loop {
        let now = Instant::now();
        if stopped_at.is_none()
            && (stop.load(Ordering::Acquire)
                || now - started > FLOOD_MAX_TIME
                || r.sent >= FLOOD_MAX_REQUESTS)
        {
            stopped_at = Some(now);
        }
        match stopped_at {
            // After the stop, collect replies already on their way, then finish.
            Some(t) if now - t > Duration::from_millis(300) || outstanding == 0 => break,
            Some(_) => {}
            None => {
                while outstanding < FLOOD_WINDOW {
                    while slots[next_id as usize].is_some() {
                        next_id = next_id.wrapping_add(1);
                    }
                    let id = next_id;
                    next_id = next_id.wrapping_add(1);
                    let session = format!("{prefix}-{}", r.sent);
                    let mut b =
                        PacketBuilder::request(&mut pbuf, Code::AccountingRequest, id, &[0; 16])
                            .expect("fits");
                    b.attr(attr::ACCT_STATUS_TYPE, &1u32.to_be_bytes()).unwrap();
                    b.attr(attr::USER_NAME, b"alice").unwrap();
                    b.attr(attr::ACCT_SESSION_ID, session.as_bytes()).unwrap();
                    let pkt = b.finish(&sec).expect("signs");
                    let auth = authenticator_of(pkt);
                    if sock.send_to(pkt, to).is_err() {
                        break;
                    }
                    slots[id as usize] = Some((r.sent, auth, Instant::now()));
                    outstanding += 1;
                    r.sent += 1;
                }
            }
        }
        match sock.recv_from(&mut rbuf) {
            Ok((n, _)) => {
                let Ok(p) = Packet::parse(&rbuf[..n]) else {
                    r.bad_replies += 1;
                    continue;
                };
                let id = p.identifier() as usize;
                match slots[id] {
                    Some((seq, auth, _))
                        if p.code() == Code::AccountingResponse
                            && verify_response(&p, &auth, &sec).is_ok() =>
                    {
                        r.acked.push(format!("{prefix}-{seq}"));
                        slots[id] = None;
                        outstanding -= 1;
                    }
                    _ => r.bad_replies += 1,
                }
            }
            Err(_) => {
                // Timeout (or an ICMP error after the kill): expire requests that will never
                // be answered so the window keeps moving.
                let now = Instant::now();
                for s in slots.iter_mut() {
                    if s.is_some_and(|(_, _, at)| now - at > FLOOD_GIVE_UP) {
                        *s = None;
                        outstanding -= 1;
                        r.gave_up += 1;
                    }
                }
            }
        }
    }
    r
}

// ---------------------------------------------------------------------------------------------
// Subprocess server
// ---------------------------------------------------------------------------------------------

#[allow(unused_imports)] // not every test crate starts a TCP peer
pub use ports::{free_tcp_port, free_udp_port};

/// `radshard serve` as a child process, killed (SIGKILL) and reaped on drop if still running.
pub struct ChildServer {
    pub child: Option<Child>,
    pub auth: SocketAddr,
    pub acct: SocketAddr,
}

impl ChildServer {
    /// Spawns `radshard serve --config <config> --listen-auth/--listen-acct <free ports>
    /// --accounting-dir <acct_dir> <extra...>` and waits (bounded) until it answers a
    /// Status-Server.
    pub fn spawn(config: &Path, acct_dir: &Path, extra: &[&str]) -> ChildServer {
        ChildServer::spawn_logging(config, acct_dir, extra, Stdio::inherit())
    }

    /// As [`ChildServer::spawn`], with the server's stderr (its log) sent to `stderr`.
    pub fn spawn_logging(
        config: &Path,
        acct_dir: &Path,
        extra: &[&str],
        stderr: Stdio,
    ) -> ChildServer {
        let auth: SocketAddr = format!("127.0.0.1:{}", free_udp_port()).parse().unwrap();
        let acct: SocketAddr = format!("127.0.0.1:{}", free_udp_port()).parse().unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_radshard"))
            .arg("serve")
            .arg("--config")
            .arg(config)
            .arg("--listen-auth")
            .arg(auth.to_string())
            .arg("--listen-acct")
            .arg(acct.to_string())
            .arg("--accounting-dir")
            .arg(acct_dir)
            // The shipped config serves metrics on 127.0.0.1:9812; tests run side by side.
            .args(["--metrics-listen", "127.0.0.1:0"])
            // Quiet unless the test asks for a level of its own.
            .args(
                ["--log-level", "warn"]
                    .iter()
                    .filter(|_| !extra.contains(&"--log-level")),
            )
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn radshard");
        let mut s = ChildServer {
            child: Some(child),
            auth,
            acct,
        };
        s.wait_ready(Duration::from_secs(15));
        s
    }

    fn wait_ready(&mut self, limit: Duration) {
        let c = RadClient::new();
        let sec = secret(SECRET);
        let deadline = Instant::now() + limit;
        let mut id = 0u8;
        while Instant::now() < deadline {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("radshard exited during startup: {status}");
            }
            id = id.wrapping_add(1);
            let mut buf = [0u8; 64];
            let b =
                PacketBuilder::request(&mut buf, Code::StatusServer, id, &random_authenticator())
                    .expect("fits");
            let req = b.finish(&sec).expect("signs").to_vec();
            c.send(&req, self.auth);
            // A late answer to an earlier probe (a slow start) is not this probe's: skipped.
            if let Some(r) = c.recv_timeout(Duration::from_millis(200)) {
                if r.get(1) == Some(&id) && check_reply(&r, &req, &sec) == Code::AccessAccept {
                    return;
                }
            }
        }
        panic!("radshard did not answer Status-Server within {limit:?}");
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().expect("running").id() as i32
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on the pid of our own child, which we have not reaped yet.
        let rc = unsafe { libc::kill(self.pid(), sig) };
        assert_eq!(rc, 0, "kill({}, {sig})", self.pid());
    }

    /// Waits (bounded) for the child to exit.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        let child = self.child.as_mut()?;
        loop {
            if let Some(st) = child.try_wait().expect("try_wait") {
                self.child = None;
                return Some(st);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// FreeRADIUS tools
// ---------------------------------------------------------------------------------------------

/// Runs a FreeRADIUS tool with `stdin`, killing it after `limit`. Panics with a clear message if
/// the tool is not installed (CI installs freeradius-utils; `scripts/test.sh` does too).
pub fn run_tool(program: &str, args: &[&str], stdin: &str, limit: Duration) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {program}: {e}. These tests need FreeRADIUS's radclient/radtest: \
                 install freeradius-utils (scripts/test.sh does)"
            )
        });
    {
        let mut w = child.stdin.take().expect("stdin");
        let _ = w.write_all(stdin.as_bytes());
    }
    let deadline = Instant::now() + limit;
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            break;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().expect("output")
}

/// `radclient -r 1 -t <t> <server> <command> <secret>` with `attrs` on stdin.
pub fn radclient(server: SocketAddr, command: &str, secret: &str, attrs: &str) -> Output {
    let target = server.to_string();
    run_tool(
        "radclient",
        &["-x", "-r", "1", "-t", "1", &target, command, secret],
        attrs,
        Duration::from_secs(20),
    )
}

pub fn stdout_of(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
