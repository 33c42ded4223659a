//! Shared pieces of the MFA tests: the config blocks they repeat, TOTP codes, a NAS that keeps
//! its Identifier sequence, the held-push exchange with its retransmissions, radclient's State,
//! and a minimal HTTP server loop for the providers' test doubles.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use radshard::backend::mfa::totp::TotpSecret;
use radshard::backend::mfa::MfaMetrics;
use radshard::proto::{attr, Code, Secret};

use super::{
    access_request, access_request_with, check_reply, random_authenticator, reply_attr, secret,
    RadClient, TestServer, REPLY_WAIT, SECRET,
};

// ---------------------------------------------------------------------------------------------
// Config blocks
// ---------------------------------------------------------------------------------------------

/// The NAS the MFA tests play: 127.0.0.1 with [`SECRET`], Message-Authenticator not required.
pub const MFA_CLIENT: &str = r#"
[[clients]]
name = "localhost"
addresses = ["127.0.0.1"]
secret = "testing123"
require_message_authenticator = false
"#;

/// A `[[users]]` entry in the group `staff`, with a TOTP secret if given.
pub fn staff_user(name: &str, password: &str, totp_secret: Option<&str>) -> String {
    let totp = totp_secret.map_or(String::new(), |t| format!("totp_secret = \"{t}\"\n"));
    format!(
        "\n[[users]]\nname = \"{name}\"\npassword = \"{password}\"\n{totp}groups = [\"staff\"]\n"
    )
}

/// [`staff_user`] for each name, the password `<name>-pw`, no TOTP secret.
pub fn staff_users(names: &[&str]) -> String {
    names
        .iter()
        .map(|u| staff_user(u, &format!("{u}-pw"), None))
        .collect()
}

/// A `[[policies]]` entry for the group `staff` requiring MFA, with `extra` lines (e.g.
/// `auth_methods`, `mfa_mode`) and the reply Session-Timeout = 3600 the tests look for.
pub fn staff_mfa_policy(name: &str, extra: &str) -> String {
    format!(
        "\n[[policies]]\nname = \"{name}\"\ngroups = [\"staff\"]\n{extra}mfa = true\n\
         reply = {{ Session-Timeout = 3600 }}\n"
    )
}

/// `[mfa]` with `provider` and `mfa_extra` lines, then `[mfa.<provider>]` with `settings`.
pub fn mfa_section(provider: &str, mfa_extra: &str, settings: &str) -> String {
    format!("\n[mfa]\nprovider = \"{provider}\"\n{mfa_extra}\n\n[mfa.{provider}]\n{settings}\n")
}

/// The reply attribute [`staff_mfa_policy`] grants, as [`reply_attr`] returns it.
pub fn session_timeout_3600() -> Option<Vec<u8>> {
    Some(3600u32.to_be_bytes().to_vec())
}

/// Starts a server and returns it with its own MFA metrics. The metrics `metrics()` serves are
/// the latest store's (process-wide), so start and capture happen under one lock: tests in one
/// binary may then run side by side, each reading its own server's counters.
pub fn start_mfa_server(shards: usize, body: &str) -> (TestServer, Arc<MfaMetrics>) {
    static START: Mutex<()> = Mutex::new(());
    let _one = START.lock().unwrap_or_else(|e| e.into_inner());
    let s = TestServer::start(shards, body);
    let m = radshard::backend::mfa::metrics().expect("mfa metrics registered");
    (s, m)
}

// ---------------------------------------------------------------------------------------------
// TOTP
// ---------------------------------------------------------------------------------------------

/// "12345678901234567890" (the RFC 6238 seed) in base32.
pub const ALICE_TOTP: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
pub const DAVE_TOTP: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

/// The time step when the test process first asked: codes are computed relative to it, so a
/// step boundary passing mid-test changes nothing (the server accepts ±1 step).
pub fn base_step() -> u64 {
    static BASE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *BASE.get_or_init(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_secs()
            / 30
    })
}

/// The six-digit code of the base32 `secret_b32` at [`base_step`] + `offset_steps`.
pub fn code_at(secret_b32: &str, offset_steps: u64) -> String {
    let s = TotpSecret::from_base32(secret_b32).expect("valid secret");
    format!("{:06}", s.code_at_step(base_step() + offset_steps, 6))
}

/// A six-digit code that is not `secret_b32`'s at the base step or the two after it.
pub fn wrong_code(secret_b32: &str) -> &'static str {
    let near: Vec<String> = (0..3).map(|o| code_at(secret_b32, o)).collect();
    ["000000", "111111", "222222", "333333"]
        .into_iter()
        .find(|c| !near.iter().any(|n| n == c))
        .expect("four candidates, three codes")
}

// ---------------------------------------------------------------------------------------------
// A NAS
// ---------------------------------------------------------------------------------------------

/// A NAS sending PAP requests from one socket, each with the next Identifier.
pub struct Nas {
    pub c: RadClient,
    pub sec: Secret,
    pub id: u8,
    /// How long to wait for a reply.
    pub wait: Duration,
}

impl Default for Nas {
    fn default() -> Self {
        Nas::new()
    }
}

impl Nas {
    pub fn new() -> Nas {
        Nas::waiting(REPLY_WAIT)
    }

    /// A NAS that waits up to `wait` for each reply.
    pub fn waiting(wait: Duration) -> Nas {
        Nas {
            c: RadClient::new(),
            sec: secret(SECRET),
            id: 0,
            wait,
        }
    }

    /// A PAP request with the next Identifier and `extra` attributes.
    pub fn request_with(&mut self, user: &str, pw: &str, extra: &[(u8, &[u8])]) -> Vec<u8> {
        self.id = self.id.wrapping_add(1);
        access_request_with(
            &self.sec,
            self.id,
            &random_authenticator(),
            user,
            pw,
            false,
            extra,
        )
    }

    /// A PAP request with the next Identifier, carrying `state` if given.
    pub fn request(&mut self, user: &str, pw: &str, state: Option<&[u8]>) -> Vec<u8> {
        let extra: Vec<(u8, &[u8])> = state.map(|st| (attr::STATE, st)).into_iter().collect();
        self.request_with(user, pw, &extra)
    }

    /// Sends `req` and returns its reply, checked (framing, identifier, authenticators).
    pub fn send_checked(&self, s: &TestServer, req: &[u8]) -> (Vec<u8>, Code) {
        self.c.send(req, s.auth);
        let reply = self.c.recv_timeout(self.wait).expect("a reply");
        let code = check_reply(&reply, req, &self.sec);
        (reply, code)
    }

    /// A PAP request with `extra` attributes: (request, reply, code).
    pub fn ask_with(
        &mut self,
        s: &TestServer,
        user: &str,
        pw: &str,
        extra: &[(u8, &[u8])],
    ) -> (Vec<u8>, Vec<u8>, Code) {
        let req = self.request_with(user, pw, extra);
        let (reply, code) = self.send_checked(s, &req);
        (req, reply, code)
    }

    /// A PAP request, with a State if given: (reply, code).
    pub fn ask(
        &mut self,
        s: &TestServer,
        user: &str,
        pw: &str,
        state: Option<&[u8]>,
    ) -> (Vec<u8>, Code) {
        let req = self.request(user, pw, state);
        self.send_checked(s, &req)
    }

    /// Primary authentication that must be challenged: (request, reply, State).
    pub fn challenge(
        &mut self,
        s: &TestServer,
        user: &str,
        pw: &str,
    ) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let req = self.request(user, pw, None);
        let (reply, code) = self.send_checked(s, &req);
        assert_eq!(code, Code::AccessChallenge, "{user}: challenged");
        let state = reply_attr(&reply, attr::STATE).expect("a State");
        (req, reply, state)
    }
}

// ---------------------------------------------------------------------------------------------
// Held requests and retransmissions
// ---------------------------------------------------------------------------------------------

/// Sends `req`, then the very same datagram `copies` more times `every` apart; returns the
/// replies that arrived meanwhile.
pub fn send_with_retransmissions(
    c: &RadClient,
    to: SocketAddr,
    req: &[u8],
    copies: usize,
    every: Duration,
) -> Vec<Vec<u8>> {
    let mut replies = Vec::new();
    c.send(req, to);
    for _ in 0..copies {
        let next = Instant::now() + every;
        while let Some(r) = c.recv_timeout(next.saturating_duration_since(Instant::now())) {
            replies.push(r);
        }
        c.send(req, to);
    }
    replies
}

/// A push the provider approves after about 500 ms, attempted by `user`/`<user>-pw`: the
/// Access-Request, five retransmissions 50 ms apart while the push is pending, and a copy with
/// a new Identifier (as a NAS that gave up on the first). Asserts that the request was held for
/// the push, that each distinct request got exactly one reply, both Access-Accept with the
/// policy's Session-Timeout, and that later retransmissions get the very same bytes. The
/// caller checks how many pushes reached its provider.
pub fn approved_push_with_copies(s: &TestServer, user: &str) {
    let c = RadClient::new();
    let sec = secret(SECRET);
    let pw = format!("{user}-pw");
    let req = access_request(&sec, 1, &random_authenticator(), user, &pw, false);
    let copy = access_request(&sec, 2, &random_authenticator(), user, &pw, false);
    let started = Instant::now();
    let mut replies = send_with_retransmissions(&c, s.auth, &req, 5, Duration::from_millis(50));
    c.send(&copy, s.auth);
    replies.extend(c.recv_timeout(REPLY_WAIT));
    replies.extend(c.drain(Duration::from_millis(400), Duration::from_secs(5)));
    assert!(
        started.elapsed() >= Duration::from_millis(450),
        "held for the push"
    );
    assert_eq!(
        replies.len(),
        2,
        "one reply per distinct request: {:?}",
        replies.iter().map(|r| (r[0], r[1])).collect::<Vec<_>>()
    );
    let first = replies
        .iter()
        .find(|r| r[1] == 1)
        .expect("a reply to the first request")
        .clone();
    assert_eq!(check_reply(&first, &req, &sec), Code::AccessAccept);
    assert_eq!(
        reply_attr(&first, attr::SESSION_TIMEOUT),
        session_timeout_3600(),
        "the policy's attributes"
    );
    let second = replies
        .iter()
        .find(|r| r[1] == 2)
        .expect("a reply to the copy");
    assert_eq!(check_reply(second, &copy, &sec), Code::AccessAccept);
    // Later retransmissions get the very same bytes.
    for _ in 0..2 {
        c.send(&req, s.auth);
        assert_eq!(c.recv_timeout(REPLY_WAIT).as_deref(), Some(&first[..]));
    }
}

// ---------------------------------------------------------------------------------------------
// radclient
// ---------------------------------------------------------------------------------------------

/// The State of the reply in radclient's `-x` output, as radclient prints it (`0x…`).
pub fn radclient_state(out: &str) -> String {
    out.lines()
        .filter_map(|l| l.trim().strip_prefix("State = "))
        .next_back()
        .unwrap_or_else(|| panic!("no State in:\n{out}"))
        .trim()
        .to_string()
}

// ---------------------------------------------------------------------------------------------
// HTTP test doubles
// ---------------------------------------------------------------------------------------------

/// One request as a test double's handler sees it.
pub struct HttpRequest {
    pub method: String,
    /// The request target (path and query).
    pub target: String,
    /// Header names in lower case.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl HttpRequest {
    pub fn header(&self, name: &str) -> String {
        self.headers.get(name).cloned().unwrap_or_default()
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A minimal HTTP/1.1 server on a loopback port for a provider's test double: each connection
/// on a thread of its own, one request read (request line, headers, a Content-Length body),
/// answered with `handle`'s (status, JSON body), then closed. Returns `http://127.0.0.1:PORT`.
pub fn http_double(
    handle: impl Fn(HttpRequest) -> (u16, String) + Send + Sync + 'static,
) -> String {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", l.local_addr().expect("addr"));
    let handle = Arc::new(handle);
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut conn) = conn else { return };
            let handle = handle.clone();
            std::thread::spawn(move || {
                let mut r = BufReader::new(conn.try_clone().expect("clone"));
                let (mut line, mut request_line) = (String::new(), String::new());
                let mut headers = HashMap::new();
                loop {
                    line.clear();
                    if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if request_line.is_empty() {
                        request_line = line.trim_end().to_string();
                    } else if let Some((k, v)) = line.split_once(':') {
                        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                    }
                }
                let len: usize = headers
                    .get("content-length")
                    .and_then(|v: &String| v.parse().ok())
                    .unwrap_or(0);
                let mut body = vec![0u8; len.min(65_536)];
                let _ = r.read_exact(&mut body);
                let mut parts = request_line.split_whitespace();
                let request = HttpRequest {
                    method: parts.next().unwrap_or("").to_string(),
                    target: parts.next().unwrap_or("").to_string(),
                    headers,
                    body,
                };
                let (status, answer) = handle(request);
                let reason = if status == 200 { "OK" } else { "X" };
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                    answer.len()
                );
            });
        }
    });
    base
}

/// Request bodies a double recorded, in arrival order.
pub type Bodies = Arc<Mutex<Vec<String>>>;

/// An [`http_double`] answering every request 200 with `answer(body)`, recording the bodies.
pub fn recording_double(
    answer: impl Fn(&str) -> String + Send + Sync + 'static,
) -> (String, Bodies) {
    let seen: Bodies = Arc::default();
    let log = seen.clone();
    let url = http_double(move |req| {
        let body = req.body_text();
        let a = answer(&body);
        log.lock().expect("lock").push(body);
        (200, a)
    });
    (url, seen)
}

/// privacyIDEA 3.14's `/validate/check` answer, accepted or not.
pub fn privacyidea_check_answer(ok: bool) -> String {
    format!(
        r#"{{"detail":{{"message":"x"}},"result":{{"authentication":"{}","status":true,"value":{ok}}},"version":"privacyIDEA 3.14"}}"#,
        if ok { "ACCEPT" } else { "REJECT" }
    )
}
