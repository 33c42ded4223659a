//! A real EAP peer for tests: hostap's `eapol_test` (Debian package `eapoltest`) driven
//! against a RADIUS server on 127.0.0.1, plus the certificates it needs.
//!
//! [`Eapol::new`] writes one eapol_test network block per [`Login`] into a temporary directory
//! (eapol_test does not expand environment variables, so every path is written out);
//! [`Eapol::run`] / [`Eapol::run_reauth`] run one bounded eapol_test process and parse its
//! debug output into an [`EapolResult`] the way `shared/recipes/eapol_test.md`'s
//! `eap_tests.sh` reads it.
//!
//! Certificates: [`make_pki_openssl`] writes the main test PKI (the same files as
//! `radshard certs --out DIR`); [`make_negative_fixtures`] adds, next to it, what the negative
//! cases need: another CA with a client certificate of its own, an expired and a revoked
//! client certificate signed by the main CA, and the CRL that revokes the latter.
//!
//! Everything is loopback-only and bounded: eapol_test gets `-t` (a whole-process timeout) and
//! is killed, by its own pid, if it outlives a second, larger deadline.

use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The user every password case logs in as.
pub const USER: &str = "alice";
/// The EAP-TLS identity; also the CN and email SAN of every client certificate here.
pub const TLS_IDENTITY: &str = "alice@example.test";
/// The name the server certificate carries (CN and DNS SAN); the clients' `domain_match`.
pub const SERVER_NAME: &str = "radius.test";
/// The password the wrong-password cases send.
pub const WRONG_PASSWORD: &str = "not-the-password";

/// `eapol_test -t` for one authentication. It bounds the whole process, not one round.
const EAPOL_TIMEOUT_S: u64 = 15;
/// Extra `-t` seconds per re-authentication (each waits a fixed 100 ms, then runs a login).
const EAPOL_TIMEOUT_PER_REAUTH_S: u64 = 5;
/// How much longer than `-t` we wait before killing eapol_test ourselves.
const KILL_GRACE: Duration = Duration::from_secs(10);
/// Upper bound on `-r` so that a typo cannot start an endless run.
const MAX_REAUTH: u32 = 20;

// ---------------------------------------------------------------------------------------------
// What to run
// ---------------------------------------------------------------------------------------------

/// The EAP methods (with their inner method) these tests speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// PEAPv0 with EAP-MSCHAPv2 inside.
    PeapMschapv2,
    /// EAP-TTLS with PAP AVPs inside.
    TtlsPap,
    /// EAP-TTLS with MS-CHAPv2 AVPs inside (what Windows and Android call TTLS+MSCHAPv2).
    TtlsMschapv2,
    /// EAP-TTLS with EAP-MSCHAPv2 inside (`autheap=`).
    TtlsEapMschapv2,
    /// EAP-TLS with a client certificate.
    Tls,
}

impl Method {
    pub const ALL: [Method; 5] = [
        Method::PeapMschapv2,
        Method::TtlsPap,
        Method::TtlsMschapv2,
        Method::TtlsEapMschapv2,
        Method::Tls,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Method::PeapMschapv2 => "peap-mschapv2",
            Method::TtlsPap => "ttls-pap",
            Method::TtlsMschapv2 => "ttls-mschapv2",
            Method::TtlsEapMschapv2 => "ttls-eapmschapv2",
            Method::Tls => "tls",
        }
    }
}

/// A method that carries a password: every [`Method`] but EAP-TLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PasswordMethod {
    PeapMschapv2,
    TtlsPap,
    TtlsMschapv2,
    TtlsEapMschapv2,
}

impl PasswordMethod {
    pub const ALL: [PasswordMethod; 4] = [
        PasswordMethod::PeapMschapv2,
        PasswordMethod::TtlsPap,
        PasswordMethod::TtlsMschapv2,
        PasswordMethod::TtlsEapMschapv2,
    ];
}

impl From<PasswordMethod> for Method {
    fn from(m: PasswordMethod) -> Method {
        match m {
            PasswordMethod::PeapMschapv2 => Method::PeapMschapv2,
            PasswordMethod::TtlsPap => Method::TtlsPap,
            PasswordMethod::TtlsMschapv2 => Method::TtlsMschapv2,
            PasswordMethod::TtlsEapMschapv2 => Method::TtlsEapMschapv2,
        }
    }
}

/// EAP-TLS client certificates a server must refuse (files from [`make_negative_fixtures`]).
/// Each has the same subject and SAN as the good `client.pem`, so that the name cannot be what
/// the server rejects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BadClientCert {
    /// Signed by `other-ca.pem`, which the server does not trust.
    OtherCa,
    /// Signed by `ca.pem`, valid 2020-01-01 .. 2021-01-01.
    Expired,
    /// Signed by `ca.pem` and listed in `crl.pem`.
    Revoked,
}

impl BadClientCert {
    pub const ALL: [BadClientCert; 3] = [
        BadClientCert::OtherCa,
        BadClientCert::Expired,
        BadClientCert::Revoked,
    ];

    /// The file stem: `<stem>.pem` / `<stem>.key`.
    pub fn stem(self) -> &'static str {
        match self {
            BadClientCert::OtherCa => "other-client",
            BadClientCert::Expired => "expired-client",
            BadClientCert::Revoked => "revoked-client",
        }
    }
}

/// One test case: the method and what, if anything, is wrong with the login.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Case {
    /// Everything right: must succeed with matching MPPE keys.
    Good(Method),
    /// The inner password is wrong: the server must reject.
    WrongPassword(PasswordMethod),
    /// The client trusts `other-ca.pem` instead of the CA that signed the server: the client
    /// aborts the handshake.
    WrongCa(Method),
    /// The client's `domain_match` names another host: the client aborts the handshake.
    WrongDomain(Method),
    /// EAP-TLS with a client certificate the server must refuse.
    BadClientCert(BadClientCert),
}

impl Case {
    pub fn method(self) -> Method {
        match self {
            Case::Good(m) | Case::WrongCa(m) | Case::WrongDomain(m) => m,
            Case::WrongPassword(m) => m.into(),
            Case::BadClientCert(_) => Method::Tls,
        }
    }

    /// The file-name stem of the case (`peap-mschapv2-wrongpw`, `tls-expired-client`, ...).
    pub fn name(self) -> String {
        match self {
            Case::Good(m) => m.name().to_string(),
            Case::WrongPassword(m) => format!("{}-wrongpw", Method::from(m).name()),
            Case::WrongCa(m) => format!("{}-wrongca", m.name()),
            Case::WrongDomain(m) => format!("{}-wrongdomain", m.name()),
            Case::BadClientCert(c) => format!("tls-{}", c.stem()),
        }
    }

    /// Every case there is, in a stable order.
    pub fn all() -> Vec<Case> {
        let mut v: Vec<Case> = Method::ALL.iter().map(|&m| Case::Good(m)).collect();
        v.extend(PasswordMethod::ALL.iter().map(|&m| Case::WrongPassword(m)));
        v.extend(Method::ALL.iter().map(|&m| Case::WrongCa(m)));
        v.extend(Method::ALL.iter().map(|&m| Case::WrongDomain(m)));
        v.extend(BadClientCert::ALL.iter().map(|&c| Case::BadClientCert(c)));
        v
    }
}

/// The highest TLS version the client offers. eapol_test 2.10 disables TLS 1.3 unless its
/// network block says `phase1="tls_disable_tlsv1_3=0"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TlsMax {
    V1_2,
    V1_3,
}

impl TlsMax {
    pub const ALL: [TlsMax; 2] = [TlsMax::V1_2, TlsMax::V1_3];

    /// What eapol_test prints in `SSL: Using TLS version ...` when this version is negotiated.
    pub fn label(self) -> &'static str {
        match self {
            TlsMax::V1_2 => "TLSv1.2",
            TlsMax::V1_3 => "TLSv1.3",
        }
    }
}

/// A case with its transport options: one eapol_test network block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Login {
    pub case: Case,
    pub tls: TlsMax,
    /// A small MTU: the client's own TLS fragments are at most this many octets
    /// (`fragment_size=` in the network block) and the server is told so with
    /// `Framed-MTU` (`-N 12:d:<mtu>`, which replaces eapol_test's default 1400).
    pub mtu: Option<u16>,
}

impl Login {
    pub fn new(case: Case) -> Login {
        Login {
            case,
            tls: TlsMax::V1_2,
            mtu: None,
        }
    }

    /// The same login offering TLS 1.3.
    pub fn tls13(self) -> Login {
        Login {
            tls: TlsMax::V1_3,
            ..self
        }
    }

    pub fn with_tls(self, tls: TlsMax) -> Login {
        Login { tls, ..self }
    }

    /// The same login over a link of `mtu` octets (see [`Login::mtu`]).
    pub fn small_mtu(self, mtu: u16) -> Login {
        Login {
            mtu: Some(mtu),
            ..self
        }
    }

    /// The network block's file stem: the case name, `-tls13`, `-mtu<N>`.
    pub fn name(&self) -> String {
        let mut s = self.case.name();
        if self.tls == TlsMax::V1_3 {
            s.push_str("-tls13");
        }
        if let Some(m) = self.mtu {
            s.push_str(&format!("-mtu{m}"));
        }
        s
    }
}

impl From<Case> for Login {
    fn from(case: Case) -> Login {
        Login::new(case)
    }
}

impl fmt::Display for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// The eapol_test network block for `login`, with certificate paths under `certs` and the
/// right password `password`. Pure, so the block for a case can be checked without a run.
pub fn network_block(login: &Login, certs: &Path, password: &str) -> String {
    let case = login.case;
    let method = case.method();
    let path = |file: &str| certs.join(file).display().to_string();
    let ca = match case {
        Case::WrongCa(_) => path("other-ca.pem"),
        _ => path("ca.pem"),
    };
    let domain = match case {
        Case::WrongDomain(_) => "wrong.test",
        _ => SERVER_NAME,
    };
    let password = match case {
        Case::WrongPassword(_) => WRONG_PASSWORD,
        _ => password,
    };
    let tls13 = login.tls == TlsMax::V1_3;

    let mut b = String::from("network={\n\tkey_mgmt=WPA-EAP\n");
    let eap = match method {
        Method::PeapMschapv2 => "PEAP",
        Method::TtlsPap | Method::TtlsMschapv2 | Method::TtlsEapMschapv2 => "TTLS",
        Method::Tls => "TLS",
    };
    b.push_str(&format!("\teap={eap}\n"));
    if method == Method::Tls {
        let stem = match case {
            Case::BadClientCert(c) => c.stem(),
            _ => "client",
        };
        b.push_str(&format!("\tidentity=\"{TLS_IDENTITY}\"\n"));
        b.push_str(&format!(
            "\tclient_cert=\"{}\"\n",
            path(&format!("{stem}.pem"))
        ));
        b.push_str(&format!(
            "\tprivate_key=\"{}\"\n",
            path(&format!("{stem}.key"))
        ));
    } else {
        b.push_str(&format!("\tidentity=\"{USER}\"\n"));
        b.push_str("\tanonymous_identity=\"anonymous\"\n");
        b.push_str(&format!("\tpassword=\"{password}\"\n"));
    }
    b.push_str(&format!("\tca_cert=\"{ca}\"\n"));
    b.push_str(&format!("\tdomain_match=\"{domain}\"\n"));
    // phase1 is one string: PEAP's label option and the TLS 1.3 switch go together.
    let mut phase1: Vec<&str> = Vec::new();
    if method == Method::PeapMschapv2 {
        phase1.push("peaplabel=0");
    }
    if tls13 {
        phase1.push("tls_disable_tlsv1_3=0");
    }
    if !phase1.is_empty() {
        b.push_str(&format!("\tphase1=\"{}\"\n", phase1.join(" ")));
    }
    match method {
        Method::PeapMschapv2 | Method::TtlsMschapv2 => b.push_str("\tphase2=\"auth=MSCHAPV2\"\n"),
        Method::TtlsPap => b.push_str("\tphase2=\"auth=PAP\"\n"),
        Method::TtlsEapMschapv2 => b.push_str("\tphase2=\"autheap=MSCHAPV2\"\n"),
        Method::Tls => {}
    }
    if let Some(mtu) = login.mtu {
        b.push_str(&format!("\tfragment_size={mtu}\n"));
    }
    b.push_str("}\n");
    b
}

// ---------------------------------------------------------------------------------------------
// Running eapol_test
// ---------------------------------------------------------------------------------------------

/// eapol_test configured for one PKI and one password; its network blocks and run logs live in
/// a temporary directory removed on drop.
pub struct Eapol {
    certs: PathBuf,
    password: String,
    dir: tempfile::TempDir,
    /// Numbers run logs so that runs from parallel test threads never share a file.
    runs: AtomicU32,
}

impl Eapol {
    /// Writes the network block of every [`Case`] at TLS 1.2 and 1.3 for certificates in
    /// `certs_dir` (which need not exist yet) and the right password `password`. Blocks for
    /// other options ([`Login::small_mtu`]) are written when first run.
    pub fn new(certs_dir: &Path, password: &str) -> Eapol {
        assert!(
            !password.contains(['"', '\n', '\\']),
            "the password goes into a quoted network-block string"
        );
        let certs = std::path::absolute(certs_dir).expect("absolute certs path");
        let dir = tempfile::Builder::new()
            .prefix("eapol-")
            .tempdir()
            .expect("tempdir");
        let e = Eapol {
            certs,
            password: password.to_string(),
            dir,
            runs: AtomicU32::new(0),
        };
        for case in Case::all() {
            for tls in TlsMax::ALL {
                e.conf(&Login::new(case).with_tls(tls));
            }
        }
        e
    }

    /// Where the network blocks and run logs are.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The path of `login`'s network block, written if it is not there yet.
    pub fn conf(&self, login: &Login) -> PathBuf {
        let p = self.dir.path().join(format!("{}.conf", login.name()));
        if !p.exists() {
            std::fs::write(&p, network_block(login, &self.certs, &self.password))
                .expect("write network block");
        }
        p
    }

    /// One authentication of `login` against `127.0.0.1:<server_port>` with `secret`;
    /// `extra` are more eapol_test arguments.
    pub fn run(
        &self,
        login: impl Into<Login>,
        server_port: u16,
        secret: &str,
        extra: &[&str],
    ) -> EapolResult {
        self.run_inner(login.into(), server_port, secret, 0, extra)
    }

    /// One authentication then `n` re-authentications in the same eapol_test process
    /// (`-r n`), which offers the previous TLS session each time.
    pub fn run_reauth(
        &self,
        login: impl Into<Login>,
        server_port: u16,
        secret: &str,
        n: u32,
    ) -> EapolResult {
        self.run_inner(login.into(), server_port, secret, n, &[])
    }

    fn run_inner(
        &self,
        login: Login,
        port: u16,
        secret: &str,
        reauth: u32,
        extra: &[&str],
    ) -> EapolResult {
        assert!(
            reauth <= MAX_REAUTH,
            "at most {MAX_REAUTH} re-authentications"
        );
        let conf = self.conf(&login);
        let timeout = EAPOL_TIMEOUT_S + EAPOL_TIMEOUT_PER_REAUTH_S * u64::from(reauth);
        let mut args: Vec<String> = vec![
            format!("-c{}", conf.display()),
            "-a127.0.0.1".into(),
            format!("-p{port}"),
            format!("-s{secret}"),
        ];
        if reauth > 0 {
            args.push(format!("-r{reauth}"));
        }
        if let Some(mtu) = login.mtu {
            // Replaces eapol_test's own Framed-MTU = 1400 (it adds its default only when no
            // -N names attribute 12).
            args.push(format!("-N12:d:{mtu}"));
        }
        args.extend(extra.iter().map(|s| s.to_string()));

        let n = self.runs.fetch_add(1, Ordering::Relaxed);
        let log_path = self.dir.path().join(format!("{n:04}-{}.log", login.name()));
        let mut r = run_eapol_test(args, timeout, &log_path);
        r.login = Some(login);
        r.reauth = reauth;
        r
    }
}

/// Runs eapol_test with `args` and `-t<timeout_s>`, its output to `log_path`; killed
/// [`KILL_GRACE`] after its own timeout. What it did, parsed from the log.
pub fn run_eapol_test(mut args: Vec<String>, timeout_s: u64, log_path: &Path) -> EapolResult {
    args.push(format!("-t{timeout_s}"));
    let log_file = File::create(log_path).expect("create eapol_test log");
    let mut child = Command::new("eapol_test")
        .args(&args)
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().expect("dup log"))
        .stderr(log_file)
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run eapol_test: {e}. These tests need hostap's eapol_test: \
                 apt-get install -y eapoltest (scripts/test.sh does)"
            )
        });
    let deadline = Instant::now() + Duration::from_secs(timeout_s) + KILL_GRACE;
    let mut killed = false;
    let status = loop {
        if let Some(st) = child.try_wait().expect("try_wait eapol_test") {
            break Some(st);
        }
        if Instant::now() >= deadline {
            // Our own child, by its pid.
            let _ = child.kill();
            killed = true;
            break child.wait().ok();
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let log = String::from_utf8_lossy(&std::fs::read(log_path).unwrap_or_default()).into_owned();
    let mut r = parse_output(&log, status.and_then(|s| s.code()));
    r.killed = killed;
    r
}

/// What one eapol_test process did.
#[derive(Clone, Default)]
pub struct EapolResult {
    /// The login run (None for a result parsed from a log alone).
    pub login: Option<Login>,
    /// `-r` re-authentications asked for.
    pub reauth: u32,
    /// Exit status 0 and a last line `SUCCESS`: every authentication succeeded and, unless
    /// `-n` was given, every Access-Accept's MS-MPPE keys matched the client's MSK.
    pub success: bool,
    /// eapol_test's exit status (None if it died of a signal).
    pub exit_code: Option<i32>,
    /// We killed it at our deadline.
    pub killed: bool,
    /// Its own `-t` expired (`EAPOL test timed out`): the server stopped answering.
    pub timed_out: bool,
    /// RADIUS retransmissions (`Resending RADIUS message`): unanswered rounds.
    pub retransmits: u32,
    /// From `MPPE keys OK: <ok>  mismatch: <mismatch>` (one per authentication attempt).
    pub mppe_ok: u32,
    pub mppe_mismatch: u32,
    /// The last `SSL: Using TLS version ...` (`TLSv1.2`, `TLSv1.3`).
    pub tls_version: Option<String>,
    /// Authentications in which the TLS handshake was a resumption (`resumed=1`). TLS 1.3
    /// prints "Handshake finished" twice per handshake, so lines are not counted: an
    /// authentication counts once.
    pub resumed: u32,
    /// A TLS handshake finished (`Handshake finished`): for a tunnel method, the inner method
    /// ran.
    pub handshake_done: bool,
    /// The client sent its certificate (EAP-TLS: the server had it to judge).
    pub client_cert_sent: bool,
    /// RADIUS round trips: `Sending RADIUS message to authentication server` lines.
    pub rounds: u32,
    pub accepts: u32,
    pub rejects: u32,
    /// An Access-Reject arrived.
    pub access_reject: bool,
    /// `err='...'` of the first `CTRL-EVENT-EAP-TLS-CERT-ERROR`: the client refused the
    /// server's certificate.
    pub cert_error: Option<String>,
    /// `local TLS alert (param=...)`: an alert the client sent.
    pub local_alert: Option<String>,
    /// `remote TLS alert (param=...)`: an alert the server sent.
    pub remote_alert: Option<String>,
    /// Largest EAP packet the server sent (`decapsulated EAP packet (... len=N)`).
    pub max_server_eap: usize,
    /// Largest EAP packet the client sent (`TX EAP -> RADIUS - hexdump(len=N)`).
    pub max_client_eap: usize,
    /// eapol_test's whole output (stdout and stderr).
    pub log: String,
}

impl EapolResult {
    /// The last `n` lines of the log, for assertion messages.
    pub fn log_tail(&self, n: usize) -> String {
        let lines: Vec<&str> = self.log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// The one-line summary followed by the log's tail: what an assertion should print.
    pub fn explain(&self) -> String {
        format!(
            "{self}\n--- eapol_test output (tail) ---\n{}",
            self.log_tail(60)
        )
    }

    /// Failed, on time, with an Access-Reject and no Access-Accept: a server that said no.
    pub fn rejected(&self) -> bool {
        !self.success && !self.killed && !self.timed_out && self.access_reject && self.accepts == 0
    }

    /// Succeeded with exactly `auths` matching key pairs and no mismatch.
    pub fn keys_ok(&self, auths: u32) -> bool {
        self.success && self.mppe_ok == auths && self.mppe_mismatch == 0
    }
}

/// A one-line summary; the log is left out (use [`EapolResult::explain`]).
impl fmt::Display for EapolResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.login.map(|l| l.name()).unwrap_or_else(|| "-".into());
        write!(
            f,
            "{name}{}: {} exit={} rounds={} retransmits={} tls={} resumed={} mppe_ok={} mismatch={} \
             accepts={} rejects={} max_eap(server/client)={}/{}",
            if self.reauth > 0 {
                format!(" -r{}", self.reauth)
            } else {
                String::new()
            },
            if self.success { "SUCCESS" } else { "FAILURE" },
            match (self.killed, self.exit_code) {
                (true, _) => "killed".to_string(),
                (false, _) if self.timed_out => "timed-out".to_string(),
            (false, Some(c)) => c.to_string(),
                (false, None) => "signal".to_string(),
            },
            self.rounds,
            self.retransmits,
            self.tls_version.as_deref().unwrap_or("-"),
            self.resumed,
            self.mppe_ok,
            self.mppe_mismatch,
            self.accepts,
            self.rejects,
            self.max_server_eap,
            self.max_client_eap,
        )?;
        if let Some(e) = &self.cert_error {
            write!(f, " cert_error='{e}'")?;
        }
        if let Some(a) = &self.local_alert {
            write!(f, " local_alert='{a}'")?;
        }
        if let Some(a) = &self.remote_alert {
            write!(f, " remote_alert='{a}'")?;
        }
        Ok(())
    }
}

/// Debug is the summary too: the log is long and would drown an assertion message.
impl fmt::Debug for EapolResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The text between `start` and the next `end` after it, within `line`.
fn between<'a>(line: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let i = line.find(start)? + start.len();
    let rest = &line[i..];
    Some(&rest[..rest.find(end)?])
}

/// Reads eapol_test's debug output (see the recipe's "How to read the result").
pub fn parse_output(log: &str, exit_code: Option<i32>) -> EapolResult {
    let mut r = EapolResult {
        exit_code,
        ..EapolResult::default()
    };
    let last = log
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    r.success = exit_code == Some(0) && last.trim() == "SUCCESS";
    // Whether the authentication in progress has resumed its TLS session; closed by the
    // Access-Accept or Access-Reject that ends it.
    let mut resumed_here = false;
    for line in log.lines() {
        if line.contains("Sending RADIUS message to authentication server") {
            r.rounds += 1;
        } else if line.contains("Resending RADIUS message") {
            r.retransmits += 1;
        } else if line.contains("EAPOL test timed out") {
            r.timed_out = true;
        } else if line.contains("RADIUS message: code=2 (Access-Accept)")
            || line.contains("RADIUS message: code=3 (Access-Reject)")
        {
            if line.contains("code=2") {
                r.accepts += 1;
            } else {
                r.rejects += 1;
            }
            r.resumed += u32::from(resumed_here);
            resumed_here = false;
        } else if line.contains("Handshake finished - resumed=") {
            r.handshake_done = true;
            resumed_here |= line.contains("resumed=1");
        } else if line.contains("write client certificate") {
            r.client_cert_sent = true;
        } else if let Some(v) = line.split("SSL: Using TLS version ").nth(1) {
            r.tls_version = Some(v.trim().to_string());
        } else if let Some(rest) = line.strip_prefix("MPPE keys OK: ") {
            let mut it = rest.split_whitespace();
            r.mppe_ok = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
            r.mppe_mismatch = it.nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        } else if line.contains("CTRL-EVENT-EAP-TLS-CERT-ERROR") {
            if r.cert_error.is_none() {
                r.cert_error = between(line, "err='", "'")
                    .map(str::to_string)
                    .or_else(|| Some(line.trim().to_string()));
            }
        } else if let Some(a) = between(line, "local TLS alert (param=", ")") {
            r.local_alert.get_or_insert_with(|| a.to_string());
        } else if let Some(a) = between(line, "remote TLS alert (param=", ")") {
            r.remote_alert.get_or_insert_with(|| a.to_string());
        } else if line.contains("decapsulated EAP packet") {
            if let Some(n) = between(line, " len=", ")").and_then(|s| s.parse().ok()) {
                r.max_server_eap = r.max_server_eap.max(n);
            }
        } else if let Some(n) = between(line, "TX EAP -> RADIUS - hexdump(len=", ")") {
            if let Ok(n) = n.parse::<usize>() {
                r.max_client_eap = r.max_client_eap.max(n);
            }
        }
    }
    r.access_reject = r.rejects > 0;
    r.log = log.to_string();
    r
}

// ---------------------------------------------------------------------------------------------
// Certificates
// ---------------------------------------------------------------------------------------------

/// Each openssl call is over in well under a second; this only catches a hang.
const OPENSSL_LIMIT: Duration = Duration::from_secs(60);
/// Validity of everything not meant to be expired.
const DAYS: &str = "3650";

/// Runs `openssl <args>` in `dir`, bounded by [`OPENSSL_LIMIT`].
fn openssl_bounded(dir: &Path, args: &[&str]) -> Output {
    let mut child = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run openssl: {e} (apt-get install -y openssl)"));
    let deadline = Instant::now() + OPENSSL_LIMIT;
    while child.try_wait().expect("try_wait openssl").is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.wait_with_output().expect("openssl output")
}

/// As [`openssl_bounded`]; panics with openssl's output if it fails.
fn openssl(dir: &Path, args: &[&str]) -> Output {
    let out = openssl_bounded(dir, args);
    assert!(
        out.status.success(),
        "openssl {} failed ({}):\n{}{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Extensions of an EAP-TLS client certificate (clientAuth EKU, email SAN).
const CLIENT_EXT: &str = "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth
subjectAltName=email:alice@example.test
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid,issuer
";

/// Extensions of the RADIUS server certificate (serverAuth EKU, which Windows and Android
/// supplicants require, and the DNS SAN `domain_match` checks).
const SERVER_EXT: &str = "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:radius.test
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid,issuer
";

/// A self-signed CA `<stem>.pem` / `<stem>.key` in `dir`.
fn make_ca(dir: &Path, stem: &str, subject: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-sha256",
            "-days",
            DAYS,
            "-keyout",
            &format!("{stem}.key"),
            "-out",
            &format!("{stem}.pem"),
            "-subj",
            subject,
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-addext",
            "subjectKeyIdentifier=hash",
        ],
    );
}

/// A new RSA-2048 key `<stem>.key` and a certificate request `csr` for `subject`.
fn new_key_and_request(dir: &Path, stem: &str, csr: &str, subject: &str) {
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-sha256",
            "-keyout",
            &format!("{stem}.key"),
            "-out",
            csr,
            "-subj",
            subject,
        ],
    );
}

/// A new key `<stem>.key` and a certificate `<stem>.pem` for `subject`, signed by the CA
/// `<ca>.pem`/`<ca>.key` with the extensions `ext`.
fn make_leaf(dir: &Path, stem: &str, subject: &str, ca: &str, ext: &str) {
    let ext_file = format!("{stem}.ext");
    std::fs::write(dir.join(&ext_file), ext).expect("write extensions");
    let csr = format!("{stem}.csr");
    new_key_and_request(dir, stem, &csr, subject);
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-days",
            DAYS,
            "-sha256",
            "-extfile",
            &ext_file,
            "-out",
            &format!("{stem}.pem"),
        ],
    );
    let _ = std::fs::remove_file(dir.join(csr));
    let _ = std::fs::remove_file(dir.join(ext_file));
}

/// `dir/out`: the files `parts` of `dir`, one after the other (`cat parts > out`).
fn concat(dir: &Path, out: &str, parts: &[&str]) {
    let mut all = Vec::new();
    for part in parts {
        all.extend(std::fs::read(dir.join(part)).unwrap_or_else(|e| panic!("{part}: {e}")));
    }
    std::fs::write(dir.join(out), all).unwrap_or_else(|e| panic!("{out}: {e}"));
}

/// Keys are unencrypted test keys; keep them private to the user anyway, as servers expect.
fn private(dir: &Path, file: &str) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(dir.join(file), std::fs::Permissions::from_mode(0o600));
}

/// The main test PKI, as `shared/recipes/eapol_test.md`'s gen_certs.sh makes it and as
/// `radshard certs --out DIR` writes it: `ca.pem`/`ca.key`, `server.pem`/`server.key`
/// (CN and DNS SAN `radius.test`, serverAuth), `client.pem`/`client.key` (CN
/// `alice@example.test`, email SAN, clientAuth), and `server-chain.pem` (leaf + CA).
pub fn make_pki_openssl(dir: &Path) {
    std::fs::create_dir_all(dir).expect("certs dir");
    make_ca(dir, "ca", "/C=US/O=EAP Test/CN=EAP Test CA");
    make_leaf(
        dir,
        "server",
        "/C=US/O=EAP Test/CN=radius.test",
        "ca",
        SERVER_EXT,
    );
    make_leaf(
        dir,
        "client",
        "/C=US/O=EAP Test/CN=alice@example.test",
        "ca",
        CLIENT_EXT,
    );
    concat(dir, "server-chain.pem", &["server.pem", "ca.pem"]);
    for k in ["ca.key", "server.key", "client.key"] {
        private(dir, k);
    }
}

/// `openssl ca`'s configuration for the main CA in `dir`: a database in `dir/ca-db`, the
/// extensions of a client certificate, and CRLs valid for [`DAYS`].
fn ca_config(dir: &Path) -> String {
    let d = dir.display();
    format!(
        "[ ca ]
default_ca = test_ca
[ test_ca ]
database = {d}/ca-db/index.txt
new_certs_dir = {d}/ca-db/new
serial = {d}/ca-db/serial
crlnumber = {d}/ca-db/crlnumber
certificate = {d}/ca.pem
private_key = {d}/ca.key
default_md = sha256
default_days = {DAYS}
default_crl_days = {DAYS}
policy = policy_any
unique_subject = no
crl_extensions = crl_ext
[ crl_ext ]
authorityKeyIdentifier = keyid
[ policy_any ]
countryName = optional
organizationName = optional
commonName = supplied
[ client_ext ]
{CLIENT_EXT}"
    )
}

/// A serial for `openssl ca` that cannot collide with the random serials `openssl x509
/// -CAcreateserial` or `radshard certs` give: 16 random octets, positive (top bit clear) and
/// without a leading zero octet.
fn random_serial() -> String {
    let mut b: [u8; 16] = rand::random();
    b[0] = (b[0] & 0x7f) | 0x10;
    b.iter().map(|x| format!("{x:02X}")).collect()
}

/// The negative fixtures, next to a main PKI (`ca.pem`, `ca.key`) already in `dir`:
///
/// * `other-ca.pem`/`.key`, an unrelated CA (the wrong-CA cases trust it instead of `ca.pem`);
/// * `other-client.pem`/`.key`, a client certificate signed by it;
/// * `expired-client.pem`/`.key`, signed by `ca.pem`, valid 2020-01-01 .. 2021-01-01
///   (`openssl ca -startdate/-enddate`: OpenSSL 3.0's `x509 -req` cannot backdate);
/// * `revoked-client.pem`/`.key`, signed by `ca.pem`, then revoked (keyCompromise);
/// * `crl.pem`, the main CA's CRL listing it (valid [`DAYS`] days) — a server names it with
///   `crls = ["crl.pem"]`;
/// * `ca-with-crl.pem`, `ca.pem` followed by `crl.pem`, the one file FreeRADIUS's
///   `ca_file` wants with `check_crl = yes`.
///
/// The three client certificates have the good client's subject and SAN, so a server can only
/// refuse them for their issuer, validity or revocation. `openssl ca`'s database stays in
/// `dir/ca-db`.
pub fn make_negative_fixtures(dir: &Path) {
    assert!(
        dir.join("ca.pem").exists() && dir.join("ca.key").exists(),
        "make_negative_fixtures needs the main CA (ca.pem, ca.key) in {}",
        dir.display()
    );
    let alice = "/C=US/O=EAP Test/CN=alice@example.test";
    make_ca(dir, "other-ca", "/C=US/O=Other/CN=Other Test CA");
    make_leaf(dir, "other-client", alice, "other-ca", CLIENT_EXT);

    let db = dir.join("ca-db");
    std::fs::create_dir_all(db.join("new")).expect("ca-db");
    std::fs::write(db.join("index.txt"), "").expect("index.txt");
    std::fs::write(db.join("serial"), format!("{}\n", random_serial())).expect("serial");
    std::fs::write(db.join("crlnumber"), "1000\n").expect("crlnumber");
    std::fs::write(dir.join("ca-db/ca.cnf"), ca_config(dir)).expect("ca.cnf");
    let cnf = "ca-db/ca.cnf";

    for (stem, dates) in [
        (
            "expired-client",
            Some(("20200101000000Z", "20210101000000Z")),
        ),
        ("revoked-client", None),
    ] {
        let csr = format!("ca-db/{stem}.csr");
        new_key_and_request(dir, stem, &csr, alice);
        let out = format!("{stem}.pem");
        let mut args = vec![
            "ca",
            "-batch",
            "-config",
            cnf,
            "-in",
            &csr,
            "-out",
            &out,
            "-notext",
            "-preserveDN",
            "-extensions",
            "client_ext",
        ];
        if let Some((start, end)) = dates {
            args.extend(["-startdate", start, "-enddate", end]);
        }
        openssl(dir, &args);
    }
    openssl(
        dir,
        &[
            "ca",
            "-batch",
            "-config",
            cnf,
            "-revoke",
            "revoked-client.pem",
            "-crl_reason",
            "keyCompromise",
        ],
    );
    openssl(
        dir,
        &["ca", "-batch", "-config", cnf, "-gencrl", "-out", "crl.pem"],
    );
    concat(dir, "ca-with-crl.pem", &["ca.pem", "crl.pem"]);
    for k in [
        "other-ca.key",
        "other-client.key",
        "expired-client.key",
        "revoked-client.key",
    ] {
        private(dir, k);
    }
}

/// `openssl verify` of `cert` against `ca` (optionally with a CRL): the verify error text, or
/// None if it verifies. For checking fixtures, not servers.
pub fn openssl_verify(dir: &Path, ca: &str, crl: Option<&str>, cert: &str) -> Option<String> {
    let mut args = vec!["verify", "-CAfile", ca];
    if let Some(crl) = crl {
        args.extend(["-crl_check", "-CRLfile", crl]);
    }
    args.push(cert);
    let out = openssl_bounded(dir, &args);
    if out.status.success() {
        None
    } else {
        Some(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// Expectations
// ---------------------------------------------------------------------------------------------

/// What the client says when it does not trust the server's chain: a server that sends its
/// CA along gives the first, one that sends only its leaf the second.
pub const UNTRUSTED_CHAIN_ERRORS: [&str; 2] = [
    "self-signed certificate in certificate chain",
    "unable to get local issuer certificate",
];

/// Whether `r` is what its case must give, any conforming server:
///
/// * `Good`: SUCCESS on time, one matching MPPE key pair per authentication (1 + `-r`), no
///   mismatch, the TLS version the login offers at most (1.3 when offered: both servers here
///   allow it), no certificate error;
/// * `WrongPassword`, `BadClientCert`: FAILURE by Access-Reject, no Access-Accept, the
///   client had no complaint about the server's certificate, and the refusal came after the
///   tunnel was up (wrong password) or after the client sent its certificate;
/// * `WrongCa`: the client refused the chain (see [`UNTRUSTED_CHAIN_ERRORS`]), `WrongDomain`:
///   it refused the name (`Domain mismatch`); either way no Access-Accept, and the server
///   answered the client's alert with an Access-Reject instead of leaving it to time out.
pub fn check(r: &EapolResult) -> Result<(), String> {
    let login = r
        .login
        .ok_or_else(|| "a result without its login".to_string())?;
    let fail = |why: &str| Err(format!("{why}: {}", r.explain()));
    if r.killed {
        return fail("eapol_test outlived its deadline");
    }
    // Even a login that must fail must fail by an answer, not by silence.
    if r.timed_out {
        return fail("eapol_test timed out: the server stopped answering");
    }
    match login.case {
        Case::Good(_) => {
            if !r.keys_ok(1 + r.reauth) {
                return fail("expected SUCCESS with matching MPPE keys for every authentication");
            }
            if r.tls_version.as_deref() != Some(login.tls.label()) {
                return fail(&format!("expected {}", login.tls.label()));
            }
            if r.cert_error.is_some() {
                return fail("unexpected certificate error");
            }
        }
        Case::WrongPassword(_) | Case::BadClientCert(_) => {
            if !r.rejected() {
                return fail("expected FAILURE by Access-Reject");
            }
            if r.cert_error.is_some() {
                return fail("the client should have accepted the server's certificate");
            }
            // A server that rejects everything must not pass: the refusal has to come where
            // the case puts it.
            if matches!(login.case, Case::WrongPassword(_)) && !r.handshake_done {
                return fail("rejected before the tunnel was up, not for the password");
            }
            if matches!(login.case, Case::BadClientCert(_)) && !r.client_cert_sent {
                return fail("rejected before the client sent its certificate");
            }
        }
        Case::WrongCa(_) | Case::WrongDomain(_) => {
            let want_domain = matches!(login.case, Case::WrongDomain(_));
            let err_ok = match r.cert_error.as_deref() {
                Some(e) if want_domain => e == "Domain mismatch",
                Some(e) => UNTRUSTED_CHAIN_ERRORS.contains(&e),
                None => false,
            };
            if r.success || !err_ok {
                return fail(if want_domain {
                    "expected FAILURE with the client's 'Domain mismatch'"
                } else {
                    "expected FAILURE with the client refusing the chain"
                });
            }
            if !r.rejected() {
                return fail("expected the server to end the conversation with Access-Reject");
            }
        }
    }
    Ok(())
}

/// The base64 bodies (whitespace removed) of every PEM block in `text`: certificates compare
/// equal whatever the line width of the file (eapol_test `-o` writes 72 columns, openssl 64).
pub fn pem_bodies(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    for line in text.lines() {
        let l = line.trim();
        if l.starts_with("-----BEGIN ") {
            cur = Some(String::new());
        } else if l.starts_with("-----END ") {
            out.extend(cur.take());
        } else if let Some(c) = cur.as_mut() {
            c.push_str(l);
        }
    }
    out
}
