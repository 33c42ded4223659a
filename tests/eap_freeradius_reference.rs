//! Proves the eapol_test harness (`tests/common/eapol.rs`) against the reference server,
//! FreeRADIUS 3.2, set up as `shared/recipes/eapol_test.md` section 4 does: a throwaway copy
//! of /etc/freeradius/3.0 in a temporary directory (never /etc itself), one auth listener on a
//! free 127.0.0.1 port, client 127.0.0.1/testing123, user alice/alicepw, TLS 1.3 allowed, the
//! TLS session cache on, and `check_crl = yes` with the CRL appended to the CA file.
//!
//! Every case `tests/eap_eapol.rs` runs against radshard runs here first: if these pass, a
//! failure there is radshard's.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::eapol::{
    check, make_negative_fixtures, make_pki_openssl, openssl_verify, pem_bodies, BadClientCert,
    Case, Eapol, EapolResult, Login, Method, TlsMax,
};
use common::{free_udp_port, SECRET};

/// The recipe's password for alice (radshard's config says alice-pw).
const PASSWORD: &str = "alicepw";
const RADDB: &str = "/etc/freeradius/3.0";

/// `freeradius -X` with a private raddb, certificates and log; killed and reaped on drop.
struct FreeRadiusEap {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
    eapol: Eapol,
}

/// Replaces every line for which `edit` returns Some; returns how many it replaced.
fn edit_lines(text: &mut String, mut edit: impl FnMut(&str) -> Option<String>) -> usize {
    let mut n = 0;
    let out: Vec<String> = text
        .lines()
        .map(|l| match edit(l) {
            Some(new) => {
                n += 1;
                new
            }
            None => l.to_string(),
        })
        .collect();
    *text = out.join("\n") + "\n";
    n
}

/// Leading whitespace of `line`.
fn indent(line: &str) -> &str {
    &line[..line.len() - line.trim_start().len()]
}

/// Edits `file` in place with `edit`, insisting that it replaced at least `min` lines (so a
/// changed Debian config fails loudly instead of silently testing something else).
fn edit_file(file: &Path, min: usize, what: &str, edit: impl FnMut(&str) -> Option<String>) {
    let mut text = std::fs::read_to_string(file).expect("read raddb file");
    let n = edit_lines(&mut text, edit);
    assert!(
        n >= min,
        "{}: {what}: {n} lines changed, expected {min}",
        file.display()
    );
    std::fs::write(file, text).expect("write raddb file");
}

/// A virtual server's text without its `listen { }` blocks, `replacement` in place of the
/// first (the recipe's strip()): brace depth is counted on the code before any `#`.
fn strip_listen(src: &str, replacement: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let mut depth: i32 = 0;
    let mut skip_to: Option<i32> = None;
    let mut replaced = false;
    for line in src.lines() {
        let code = line.split('#').next().unwrap_or("");
        let t = code.trim_start();
        if skip_to.is_none()
            && t.strip_prefix("listen")
                .is_some_and(|r| r.trim_start().starts_with('{'))
        {
            skip_to = Some(depth);
            if !replaced && !replacement.is_empty() {
                out.push(replacement);
                replaced = true;
            }
        }
        depth += code.matches('{').count() as i32 - code.matches('}').count() as i32;
        if let Some(d) = skip_to {
            if depth == d {
                skip_to = None;
            }
            continue;
        }
        out.push(line);
    }
    out.join("\n") + "\n"
}

/// Runs a short command, bounded; panics with its output if it fails.
fn run_checked(cmd: &mut Command, limit: Duration) -> String {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let deadline = Instant::now() + limit;
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().expect("output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{text}",
        out.status
    );
    text
}

impl FreeRadiusEap {
    fn start() -> FreeRadiusEap {
        assert!(
            Path::new(RADDB).join("mods-available/eap").exists(),
            "these tests need the FreeRADIUS 3.2 server: apt-get install -y freeradius \
             ({RADDB}/mods-available/eap is missing)"
        );
        let dir = tempfile::Builder::new()
            .prefix("fr-eap-")
            .tempdir()
            .expect("tempdir");
        let d = dir.path();
        let certs = d.join("certs");
        make_pki_openssl(&certs);
        make_negative_fixtures(&certs);
        for sub in ["log", "run"] {
            std::fs::create_dir(d.join(sub)).expect("mkdir");
        }
        let tlscache = d.join("tlscache");
        std::fs::create_dir(&tlscache).expect("mkdir tlscache");
        let rd = d.join("raddb");
        run_checked(
            Command::new("cp").arg("-a").arg(RADDB).arg(&rd),
            Duration::from_secs(30),
        );
        let port = free_udp_port();
        Self::configure(d, &rd, &certs, &tlscache, port);
        run_checked(
            Command::new("freeradius").arg("-C").arg("-d").arg(&rd),
            Duration::from_secs(30),
        );

        let log = std::fs::File::create(d.join("log/debug.log")).expect("debug.log");
        // -X: single-threaded full debug. Functional checks only (never benchmark it); its log
        // shows the server's side of every case.
        let child = Command::new("freeradius")
            .arg("-X")
            .arg("-d")
            .arg(&rd)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup"))
            .stderr(log)
            .spawn()
            .expect("these tests need the FreeRADIUS 3.2 server: apt-get install -y freeradius");
        let eapol = Eapol::new(&certs, PASSWORD);
        let mut fr = FreeRadiusEap {
            child,
            port,
            dir,
            eapol,
        };
        fr.wait_ready();
        fr
    }

    /// The recipe's freeradius_setup.sh with TLS13=1 RESUME=1, plus check_crl.
    fn configure(d: &Path, rd: &Path, certs: &Path, tlscache: &Path, port: u16) {
        let p = |s: &Path| s.display().to_string();
        // radiusd.conf: private dirs, run as the invoking user, no proxy socket (it would open
        // 0.0.0.0), a bigger request table.
        let logdir = format!("logdir = {}", p(&d.join("log")));
        let raddbdir = format!("raddbdir = {}", p(rd));
        let run_dir = format!("run_dir = {}", p(&d.join("run")));
        edit_file(&rd.join("radiusd.conf"), 7, "dirs, user, proxy", |l| {
            let t = l.trim_start();
            if l.starts_with("logdir =") {
                Some(logdir.clone())
            } else if l.starts_with("raddbdir =") {
                Some(raddbdir.clone())
            } else if l.starts_with("run_dir =") {
                Some(run_dir.clone())
            } else if t == "user = freerad" || t == "group = freerad" {
                Some(format!("{}#{t}", indent(l)))
            } else if l.starts_with("proxy_requests") {
                Some("proxy_requests = no".into())
            } else if l.starts_with("max_requests =") {
                Some("max_requests = 65536".into())
            } else {
                None
            }
        });

        // Virtual servers: no listener but one auth listener on our port; inner-tunnel loses
        // its 127.0.0.1:18120 listener (EAP tunnels do not need it).
        let listen = format!("listen {{\n\ttype = auth\n\tipaddr = 127.0.0.1\n\tport = {port}\n}}");
        for (site, repl) in [("default", listen.as_str()), ("inner-tunnel", "")] {
            let src = std::fs::read_to_string(rd.join("sites-available").join(site))
                .expect("site config");
            let enabled = rd.join("sites-enabled").join(site);
            let _ = std::fs::remove_file(&enabled);
            std::fs::write(&enabled, strip_listen(&src, repl)).expect("write site");
        }

        std::fs::write(
            rd.join("clients.conf"),
            format!("client localhost {{\n\tipaddr = 127.0.0.1\n\tsecret = {SECRET}\n}}\n"),
        )
        .expect("clients.conf");
        let users = rd.join("mods-config/files/authorize");
        let old = std::fs::read_to_string(&users).expect("users file");
        std::fs::write(
            &users,
            format!("alice\tCleartext-Password := \"{PASSWORD}\"\n\n{old}"),
        )
        .expect("users file");

        // EAP: our certificates; ca_file (the CA for client certificates) carries the CRL,
        // which check_crl makes mandatory; TLS 1.3 allowed; the session cache on (3.2 needs a
        // name and persist_dir, OpenSSL's internal cache being disabled).
        let key = format!("private_key_file = {}", p(&certs.join("server.key")));
        let cert = format!("certificate_file = {}", p(&certs.join("server.pem")));
        let ca = format!("ca_file = {}", p(&certs.join("ca-with-crl.pem")));
        let persist = format!("persist_dir = \"{}\"", p(tlscache));
        let (mut in_cache, mut cache_edits) = (false, 0);
        edit_file(&rd.join("mods-available/eap"), 10, "tls-config", |l| {
            let t = l.trim_start();
            let i = indent(l);
            let uncommented = t.trim_start_matches('#').trim_start();
            if t.starts_with("cache {") {
                in_cache = true;
                return None;
            }
            if in_cache && cache_edits < 3 {
                let new = if t == "enable = no" {
                    Some("enable = yes".to_string())
                } else if t.starts_with('#') && uncommented.starts_with("name = ") {
                    Some("name = \"EAP module\"".to_string())
                } else if t.starts_with('#') && uncommented.starts_with("persist_dir = ") {
                    Some(persist.clone())
                } else {
                    None
                };
                if new.is_some() {
                    cache_edits += 1;
                }
                return new.map(|n| format!("{i}{n}"));
            }
            let new = if t.starts_with("private_key_password =") {
                format!("#{t}")
            } else if t.starts_with("private_key_file =") {
                key.clone()
            } else if t.starts_with("certificate_file =") {
                cert.clone()
            } else if t.starts_with("ca_file =") {
                ca.clone()
            } else if t == "ca_path = ${cadir}" {
                format!("#{t}")
            } else if t == "tls_max_version = \"1.2\"" {
                "tls_max_version = \"1.3\"".to_string()
            } else if t.starts_with('#') && uncommented == "check_crl = yes" {
                "check_crl = yes".to_string()
            } else {
                return None;
            };
            Some(format!("{i}{new}"))
        });
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log/debug.log")).unwrap_or_default()
    }

    /// Bounded wait for "Ready to process requests"; panics with the log otherwise.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.log().contains("Ready to process requests") {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("freeradius exited ({status}):\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("freeradius not ready after 30 s:\n{}", self.log());
    }

    fn run(&self, login: impl Into<Login>) -> EapolResult {
        self.eapol.run(login, self.port, SECRET, &[])
    }

    /// Runs `login` and returns its result with what FreeRADIUS logged meanwhile.
    fn run_logged(&self, login: impl Into<Login>) -> (EapolResult, String) {
        let before = self.log().len();
        let r = self.run(login);
        let log = self.log();
        (r, log.get(before..).unwrap_or("").to_string())
    }

    fn certs(&self) -> PathBuf {
        self.dir.path().join("certs")
    }
}

impl Drop for FreeRadiusEap {
    fn drop(&mut self) {
        // Our own child, by its pid.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The line of the results table for one run.
fn row(r: &EapolResult) -> String {
    format!(
        "{:40} {:7} rounds={:2} tls={:7} mppe_ok={} resumed={} {}",
        r.login.map(|l| l.name()).unwrap_or_default(),
        if r.success { "SUCCESS" } else { "FAILURE" },
        r.rounds,
        r.tls_version.as_deref().unwrap_or("-"),
        r.mppe_ok,
        r.resumed,
        match (&r.cert_error, r.access_reject) {
            (Some(e), _) => format!("cert_error='{e}'"),
            (None, true) => "Access-Reject".into(),
            (None, false) => String::new(),
        }
    )
}

#[test]
fn fixtures_verify_as_intended() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    make_pki_openssl(d);
    make_negative_fixtures(d);
    for good in ["server.pem", "client.pem", "revoked-client.pem"] {
        assert_eq!(openssl_verify(d, "ca.pem", None, good), None, "{good}");
    }
    assert_eq!(
        openssl_verify(d, "ca.pem", Some("crl.pem"), "client.pem"),
        None
    );
    assert_eq!(
        openssl_verify(d, "other-ca.pem", None, "other-client.pem"),
        None
    );
    let e = openssl_verify(d, "ca.pem", None, "other-client.pem").expect("other CA refused");
    assert!(e.contains("unable to get local issuer certificate"), "{e}");
    let e = openssl_verify(d, "ca.pem", None, "expired-client.pem").expect("expired refused");
    assert!(e.contains("certificate has expired"), "{e}");
    let e = openssl_verify(d, "ca.pem", Some("crl.pem"), "revoked-client.pem")
        .expect("revoked refused");
    assert!(e.contains("certificate revoked"), "{e}");
}

/// Every case at TLS 1.2 and at TLS 1.3 against one FreeRADIUS, checked with
/// `common::eapol::check`; the client-certificate refusals also with the server's own reason.
#[test]
fn freeradius_every_case_tls12_and_tls13() {
    let fr = FreeRadiusEap::start();
    let mut table = Vec::new();
    let mut failures = Vec::new();
    for tls in TlsMax::ALL {
        for case in Case::all() {
            let (r, server_log) = fr.run_logged(Login::new(case).with_tls(tls));
            table.push(row(&r));
            if let Err(e) = check(&r) {
                failures.push(e);
            }
            // The server's reason, from its debug log.
            let reason = match case {
                Case::BadClientCert(BadClientCert::OtherCa) => {
                    Some("unable to get local issuer certificate")
                }
                Case::BadClientCert(BadClientCert::Expired) => Some("certificate has expired"),
                Case::BadClientCert(BadClientCert::Revoked) => Some("certificate revoked"),
                _ => None,
            };
            if let Some(reason) = reason {
                if !server_log.contains(reason) {
                    failures.push(format!(
                        "{}: FreeRADIUS did not log '{reason}':\n{server_log}",
                        r.login.expect("login").name()
                    ));
                }
            }
        }
    }
    println!("FreeRADIUS reference results:\n{}", table.join("\n"));
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}\n\nresults:\n{}",
        failures.len(),
        table.len(),
        failures.join("\n\n"),
        table.join("\n")
    );
}

/// `-r 2`: the two re-authentications resume the TLS session (TLS 1.2), keys match thrice.
#[test]
fn freeradius_reauth_resumes() {
    let fr = FreeRadiusEap::start();
    let mut table = Vec::new();
    for m in [Method::PeapMschapv2, Method::TtlsPap, Method::Tls] {
        let r = fr.eapol.run_reauth(Case::Good(m), fr.port, SECRET, 2);
        table.push(row(&r));
        check(&r).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            r.resumed,
            2,
            "both re-authentications resumed: {}",
            r.explain()
        );
        assert_eq!(r.accepts, 3, "{}", r.explain());
    }
    // TLS 1.3 (session tickets): reported, not asserted beyond the keys. FreeRADIUS 3.2.1
    // resumes some of them only.
    for m in [Method::PeapMschapv2, Method::TtlsPap, Method::Tls] {
        let r = fr
            .eapol
            .run_reauth(Login::new(Case::Good(m)).tls13(), fr.port, SECRET, 2);
        table.push(row(&r));
        check(&r).unwrap_or_else(|e| panic!("{e}"));
    }
    println!("FreeRADIUS reference, -r 2:\n{}", table.join("\n"));
}

/// A 300-octet link: the client's fragments fit it, the server is told by Framed-MTU, and
/// the login needs more round trips than at eapol_test's default 1400.
#[test]
fn freeradius_small_mtu() {
    let fr = FreeRadiusEap::start();
    let mut table = Vec::new();
    for tls in TlsMax::ALL {
        for m in [Method::Tls, Method::PeapMschapv2] {
            let base = Login::new(Case::Good(m)).with_tls(tls);
            let normal = fr.run(base);
            let small = fr.run(base.small_mtu(300));
            table.push(row(&normal));
            table.push(row(&small));
            check(&normal).unwrap_or_else(|e| panic!("{e}"));
            check(&small).unwrap_or_else(|e| panic!("{e}"));
            assert!(
                small.rounds > normal.rounds,
                "more rounds at MTU 300: {normal} vs {small}"
            );
            // FreeRADIUS reads Framed-MTU as its TLS fragment size, so its EAP packets are
            // a few octets over the MTU (310 for 300); it still shrinks them from ~1004.
            assert!(
                small.max_server_eap <= 320 && small.max_server_eap < normal.max_server_eap,
                "the server's EAP packets shrink: {normal} vs {small}"
            );
            assert!(small.max_client_eap <= 310, "client fragments: {small}");
        }
    }
    println!("FreeRADIUS reference, MTU 300:\n{}", table.join("\n"));
}

/// The server configuration really is the one described: the radshard tests rely on the
/// reference meaning what it says.
#[test]
fn freeradius_reference_uses_our_pki() {
    let fr = FreeRadiusEap::start();
    let out = fr.dir.path().join("server-chain-seen.pem");
    let out_arg = format!("-o{}", out.display());
    let r = fr
        .eapol
        .run(Case::Good(Method::Tls), fr.port, SECRET, &[&out_arg]);
    check(&r).unwrap_or_else(|e| panic!("{e}"));
    let seen = std::fs::read_to_string(&out).expect("eapol_test -o wrote the server chain");
    let ours = std::fs::read_to_string(fr.certs().join("server.pem")).expect("server.pem");
    let seen_bodies = pem_bodies(&seen);
    assert!(
        pem_bodies(&ours).iter().all(|c| seen_bodies.contains(c)),
        "the server sent our server.pem:\n{seen}"
    );
}
