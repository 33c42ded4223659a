//! radshard's EAP against a real peer, hostap's eapol_test: PEAP-MSCHAPv2, EAP-TTLS (PAP,
//! MS-CHAPv2, EAP-MSCHAPv2) and EAP-TLS on TLS 1.2 and 1.3, the refusals (wrong passwords,
//! client certificates from another CA, expired or revoked), client-side aborts (wrong CA,
//! wrong name), resumption on re-authentication, and a small link MTU.
//!
//! The server runs `config/eap.toml` as it ships, copied into a temporary directory next to a
//! PKI from `radshard certs --out <dir>/certs` and the negative fixtures of
//! `common::eapol::make_negative_fixtures`; only the listen addresses change (free loopback
//! ports instead of 1812/1813 on 127.0.0.1 and ::1), and for the revocation case a second copy
//! names `crls = ["certs/crl.pem"]`. The accounting directory and the metrics listener are
//! moved on the command line, as for every other child server of the tests.
//!
//! The same cases, with the same expectations (`common::eapol::check`), pass against
//! FreeRADIUS 3.2 in `tests/eap_freeradius_reference.rs`: a failure here is radshard's.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::eapol::{
    check, make_negative_fixtures, pem_bodies, BadClientCert, Case, Eapol, EapolResult, Login,
    Method, PasswordMethod, TlsMax,
};
use common::{
    free_udp_port, random_authenticator, run_tool, secret, ChildServer, RadClient, SECRET,
};
use radshard::proto::{verify_response, Code, Packet, PacketBuilder};

/// alice's password in config/eap.toml (the FreeRADIUS reference uses alicepw).
const PASSWORD: &str = "alice-pw";
/// The link MTU of the small-MTU cases.
const SMALL_MTU: u16 = 300;

/// The shipped EAP example configuration.
fn shipped_config() -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/eap.toml");
    std::fs::read_to_string(&p).unwrap_or_else(|e| {
        panic!(
            "{}: {e}. These tests run the shipped EAP configuration (config/eap.toml)",
            p.display()
        )
    })
}

/// `text` with every `listen_auth` / `listen_acct` line replaced by one loopback address with
/// the given port.
fn with_listen_ports(text: &str, auth: u16, acct: u16) -> String {
    let mut replaced = 0;
    let out: Vec<String> = text
        .lines()
        .map(|line| {
            let t = line.trim_start();
            for (key, port) in [("listen_auth", auth), ("listen_acct", acct)] {
                if t.strip_prefix(key)
                    .is_some_and(|r| r.trim_start().starts_with('='))
                {
                    replaced += 1;
                    return format!("{key} = [\"127.0.0.1:{port}\"]");
                }
            }
            line.to_string()
        })
        .collect();
    assert_eq!(
        replaced, 2,
        "config/eap.toml names listen_auth and listen_acct once each"
    );
    out.join("\n") + "\n"
}

/// Starts `radshard serve --config <config>` (its stderr into `log`) and waits, bounded, until
/// it answers a Status-Server on `auth`. Replies to earlier probes that arrive late are
/// ignored: loading the TLS configuration can take longer than one probe interval.
fn spawn_server(
    config: &Path,
    auth: SocketAddr,
    acct: SocketAddr,
    acct_dir: &Path,
    log: &Path,
) -> ChildServer {
    let stderr = std::fs::File::create(log).expect("server log");
    let child = Command::new(env!("CARGO_BIN_EXE_radshard"))
        .arg("serve")
        .arg("--config")
        .arg(config)
        .arg("--accounting-dir")
        .arg(acct_dir)
        // A config without [metrics] would take 127.0.0.1:9812; tests run side by side.
        .args(["--metrics-listen", "127.0.0.1:0", "--log-level", "info"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("spawn radshard");
    let mut server = ChildServer {
        child: Some(child),
        auth,
        acct,
    };
    let client = RadClient::new();
    let sec = secret(SECRET);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut id = 0u8;
    while Instant::now() < deadline {
        if let Some(Ok(Some(status))) = server.child.as_mut().map(|c| c.try_wait()) {
            panic!(
                "radshard exited during startup: {status}\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        id = id.wrapping_add(1);
        let authenticator = random_authenticator();
        let mut buf = [0u8; 64];
        let b =
            PacketBuilder::request(&mut buf, Code::StatusServer, id, &authenticator).expect("fits");
        let req = b.finish(&sec).expect("signs").to_vec();
        client.send(&req, auth);
        let probe_end = Instant::now() + Duration::from_millis(300);
        while let Some(reply) =
            client.recv_timeout(probe_end.saturating_duration_since(Instant::now()))
        {
            let Ok(p) = Packet::parse(&reply) else {
                continue;
            };
            if p.identifier() == id
                && verify_response(&p, &authenticator, &sec).is_ok()
                && p.code() == Code::AccessAccept
            {
                return server;
            }
        }
    }
    panic!(
        "radshard did not answer Status-Server within 30 s\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// `text` with `[eap.tls] crls` naming `certs/crl.pem`: the line replaced if there is one,
/// added right under `[eap.tls]` otherwise.
fn with_crl(text: &str) -> String {
    let mut out = Vec::new();
    let mut section = String::new();
    let mut done = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            if section == "[eap.tls]" && !done {
                out.push("crls = [\"certs/crl.pem\"]".to_string());
                done = true;
            }
            section = t.to_string();
        }
        if section == "[eap.tls]" && t.starts_with("crls") && t[4..].trim_start().starts_with('=') {
            out.push("crls = [\"certs/crl.pem\"]".to_string());
            done = true;
            continue;
        }
        out.push(line.to_string());
    }
    if section == "[eap.tls]" && !done {
        out.push("crls = [\"certs/crl.pem\"]".to_string());
        done = true;
    }
    assert!(done, "config/eap.toml has no [eap.tls] section");
    out.join("\n") + "\n"
}

/// `radshard serve` on the shipped EAP config; stopped on drop (the server first, then its
/// directory).
struct Radshard {
    server: ChildServer,
    eapol: Eapol,
    dir: tempfile::TempDir,
}

impl Radshard {
    /// With `crl`, the config names the CRL that revokes `revoked-client.pem`.
    fn start(crl: bool) -> Radshard {
        let dir = tempfile::Builder::new()
            .prefix("radshard-eap-")
            .tempdir()
            .expect("tempdir");
        let d = dir.path();
        let certs = d.join("certs");
        let out = run_tool(
            env!("CARGO_BIN_EXE_radshard"),
            &["certs", "--out", certs.to_str().expect("utf-8 path")],
            "",
            Duration::from_secs(60),
        );
        assert!(
            out.status.success(),
            "radshard certs --out {}: {}\n{}",
            certs.display(),
            out.status,
            common::stdout_of(&out)
        );
        make_negative_fixtures(&certs);

        let (auth, acct) = (free_udp_port(), free_udp_port());
        let mut text = with_listen_ports(&shipped_config(), auth, acct);
        if crl {
            text = with_crl(&text);
        }
        let config = d.join("eap.toml");
        std::fs::write(&config, text).expect("write config");
        let acct_dir = d.join("acct");
        std::fs::create_dir(&acct_dir).expect("acct dir");
        let server = spawn_server(
            &config,
            ([127, 0, 0, 1], auth).into(),
            ([127, 0, 0, 1], acct).into(),
            &acct_dir,
            &d.join("radshard.log"),
        );
        let eapol = Eapol::new(&certs, PASSWORD);
        Radshard { server, eapol, dir }
    }

    fn port(&self) -> u16 {
        self.server.auth.port()
    }

    fn certs(&self) -> PathBuf {
        self.dir.path().join("certs")
    }

    fn run(&self, login: impl Into<Login>) -> EapolResult {
        self.eapol.run(login, self.port(), SECRET, &[])
    }

    /// The last lines of the server's log.
    fn log_tail(&self) -> String {
        let text =
            std::fs::read_to_string(self.dir.path().join("radshard.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// [`check`], with the server's log appended to a failure.
    fn check(&self, r: &EapolResult) -> Result<(), String> {
        check(r).map_err(|e| format!("{e}\n--- radshard log (tail) ---\n{}", self.log_tail()))
    }
}

/// After this many eapol_test timeouts a run stops: a silent server would otherwise cost
/// `-t` seconds per remaining case.
const MAX_TIMEOUTS: usize = 3;

/// Runs every login, collecting every failure (one bad case does not hide the others); with
/// `after_each`, checks after each that a good login still succeeds.
fn run_all(rs: &Radshard, logins: &[Login], after_each: bool) -> Vec<String> {
    let mut failures = Vec::new();
    let mut table = Vec::new();
    let mut timeouts = 0;
    for (i, &login) in logins.iter().enumerate() {
        if too_many_timeouts(timeouts, logins.len() - i, &mut failures) {
            break;
        }
        let r = rs.run(login);
        timeouts += usize::from(r.timed_out || r.killed);
        table.push(r.to_string());
        if let Err(e) = rs.check(&r) {
            failures.push(e);
        }
        if after_each {
            // A client-side abort must leave the server answering the next login.
            let next = rs.run(Case::Good(Method::PeapMschapv2));
            timeouts += usize::from(next.timed_out || next.killed);
            if let Err(e) = rs.check(&next) {
                failures.push(format!("after {login}, the next login failed: {e}"));
            }
        }
    }
    println!("radshard:\n{}", table.join("\n"));
    failures
}

fn assert_none_failed(failures: Vec<String>, runs: usize) {
    assert!(
        failures.is_empty(),
        "{} failures in {runs} eapol_test runs:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

fn every_tls(cases: impl IntoIterator<Item = Case>) -> Vec<Login> {
    let cases: Vec<Case> = cases.into_iter().collect();
    TlsMax::ALL
        .iter()
        .flat_map(|&tls| cases.iter().map(move |&c| Login::new(c).with_tls(tls)))
        .collect()
}

#[test]
fn config_copy_moves_only_the_listen_ports() {
    let text = with_listen_ports(
        "[server]\nshards = 0\nlisten_auth = [\"127.0.0.1:1812\", \"[::1]:1812\"]\nlisten_acct = [\"127.0.0.1:1813\"]\n",
        40001,
        40002,
    );
    assert_eq!(
        text,
        "[server]\nshards = 0\nlisten_auth = [\"127.0.0.1:40001\"]\nlisten_acct = [\"127.0.0.1:40002\"]\n"
    );
    let shipped = shipped_config();
    let edited = with_listen_ports(&shipped, 40001, 40002);
    assert_eq!(edited.lines().count(), shipped.lines().count());
    assert!(
        !edited.contains(":1812") && !edited.contains(":1813"),
        "{edited}"
    );
}

#[test]
fn config_copy_names_the_crl() {
    let text = with_crl("[eap.tls]\nca = \"certs/ca.pem\"\ncrls = []\nmin_version = \"1.2\"\n");
    assert!(text.contains("crls = [\"certs/crl.pem\"]\n"), "{text}");
    assert!(!text.contains("crls = []"), "{text}");
    let text = with_crl("[eap.tls]\nca = \"certs/ca.pem\"\n\n[other]\nx = 1\n");
    assert_eq!(text.matches("crls =").count(), 1, "{text}");
    assert!(
        text.find("crls").unwrap() < text.find("[other]").unwrap(),
        "{text}"
    );
    // The shipped file has the section (and the edit keeps everything else).
    let shipped = shipped_config();
    let edited = with_crl(&shipped);
    assert_eq!(edited.matches("crls = [\"certs/crl.pem\"]").count(), 1);
    assert_eq!(
        edited.lines().count(),
        shipped.lines().count() + usize::from(!shipped.contains("\ncrls"))
    );
}

/// PEAP-MSCHAPv2, TTLS-PAP, TTLS-MSCHAPv2, TTLS-EAP-MSCHAPv2 and EAP-TLS succeed with MPPE
/// keys matching the client's MSK, on TLS 1.2 and on TLS 1.3.
#[test]
fn good_logins_tls12_and_tls13() {
    let rs = Radshard::start(false);
    let logins = every_tls(Method::ALL.map(Case::Good));
    assert_none_failed(run_all(&rs, &logins, false), logins.len());
}

/// A wrong inner password gets an Access-Reject, on every method that has one.
#[test]
fn wrong_passwords_rejected() {
    let rs = Radshard::start(false);
    let logins = every_tls(PasswordMethod::ALL.map(Case::WrongPassword));
    assert_none_failed(run_all(&rs, &logins, false), logins.len());
}

/// EAP-TLS client certificates from another CA, expired or revoked (the config naming the CRL)
/// get an Access-Reject; the good certificate still passes with the CRL in force.
#[test]
fn bad_client_certificates_rejected() {
    let rs = Radshard::start(true);
    let mut cases: Vec<Case> = BadClientCert::ALL.map(Case::BadClientCert).to_vec();
    cases.push(Case::Good(Method::Tls));
    cases.push(Case::Good(Method::PeapMschapv2));
    let logins = every_tls(cases);
    assert_none_failed(run_all(&rs, &logins, false), logins.len());
}

/// Without the CRL, the server refuses the other CA's and the expired certificate all the
/// same: those refusals do not depend on revocation checking.
#[test]
fn bad_client_certificates_rejected_without_crl() {
    let rs = Radshard::start(false);
    let logins = every_tls([
        Case::BadClientCert(BadClientCert::OtherCa),
        Case::BadClientCert(BadClientCert::Expired),
    ]);
    assert_none_failed(run_all(&rs, &logins, false), logins.len());
}

/// The client refusing the server (it trusts another CA; it expects another name) fails
/// cleanly: the client reports the certificate error, the server ends with Access-Reject,
/// and the next login succeeds.
#[test]
fn client_side_refusals_fail_cleanly() {
    let rs = Radshard::start(false);
    let mut cases: Vec<Case> = Method::ALL.map(Case::WrongCa).to_vec();
    cases.extend(Method::ALL.map(Case::WrongDomain));
    let logins = every_tls(cases);
    assert_none_failed(run_all(&rs, &logins, true), logins.len() * 2);
}

/// True (and a failure recorded) once [`MAX_TIMEOUTS`] runs have timed out: the loop stops.
fn too_many_timeouts(timeouts: usize, left: usize, failures: &mut Vec<String>) -> bool {
    if timeouts < MAX_TIMEOUTS {
        return false;
    }
    failures.push(format!(
        "{timeouts} eapol_test runs timed out: the {left} remaining cases were not run"
    ));
    true
}

/// `eapol_test -r 2`: both re-authentications resume the TLS session and every one of the
/// three gets matching keys (TLS 1.2, session IDs or tickets; TLS 1.3, tickets: at least one
/// resumed — the reference FreeRADIUS resumes one of two there).
#[test]
fn reauth_resumes() {
    let rs = Radshard::start(false);
    let logins = every_tls([Method::PeapMschapv2, Method::TtlsPap, Method::Tls].map(Case::Good));
    let mut failures = Vec::new();
    let mut timeouts = 0;
    for (i, &login) in logins.iter().enumerate() {
        if too_many_timeouts(timeouts, logins.len() - i, &mut failures) {
            break;
        }
        let r = rs.eapol.run_reauth(login, rs.port(), SECRET, 2);
        timeouts += usize::from(r.timed_out || r.killed);
        println!("{r}");
        if let Err(e) = rs.check(&r) {
            failures.push(e);
            continue;
        }
        let (resumed_ok, want) = match login.tls {
            TlsMax::V1_2 => (r.resumed == 2, "2"),
            TlsMax::V1_3 => (r.resumed >= 1, ">= 1"),
        };
        if !resumed_ok || r.accepts != 3 {
            failures.push(format!(
                "{login} -r 2: expected 3 accepts, {want} resumed: {}",
                r.explain()
            ));
        }
    }
    assert_none_failed(failures, logins.len());
}

/// A 300-octet link (client fragments of 300 octets, Framed-MTU = 300): the login succeeds in
/// more round trips, and no EAP packet the server sends is larger than the MTU (a NAS sends
/// Framed-MTU so that the server keeps its EAP packets within what the link to the peer
/// carries; RFC 3579, RFC 3580). Stricter than the reference: FreeRADIUS 3.2.1 takes
/// Framed-MTU as its TLS fragment size and sends 310-octet EAP packets for 300.
#[test]
fn small_mtu_logins() {
    let rs = Radshard::start(false);
    let bases = every_tls([Method::Tls, Method::PeapMschapv2, Method::TtlsPap].map(Case::Good));
    let mut failures = Vec::new();
    let mut timeouts = 0;
    for (i, &base) in bases.iter().enumerate() {
        if too_many_timeouts(timeouts, bases.len() - i, &mut failures) {
            break;
        }
        let normal = rs.run(base);
        let small = rs.run(base.small_mtu(SMALL_MTU));
        timeouts += [&normal, &small]
            .iter()
            .filter(|r| r.timed_out || r.killed)
            .count();
        println!("{normal}\n{small}");
        let checked: Vec<String> = [&normal, &small]
            .iter()
            .filter_map(|r| rs.check(r).err())
            .collect();
        if !checked.is_empty() {
            failures.extend(checked);
            continue;
        }
        if small.rounds <= normal.rounds {
            failures.push(format!(
                "{base}: no more rounds at MTU {SMALL_MTU}: {normal} / {small}"
            ));
        }
        if small.max_server_eap > usize::from(SMALL_MTU) {
            failures.push(format!(
                "{base}: the server sent a {}-octet EAP packet over a {SMALL_MTU}-octet link: {}",
                small.max_server_eap,
                small.explain()
            ));
        }
    }
    assert_none_failed(failures, bases.len() * 2);
}

/// The server presents the certificate `radshard certs` wrote (eapol_test `-o` saves the chain
/// it received).
#[test]
fn presents_the_configured_certificate() {
    let rs = Radshard::start(false);
    let out = rs.dir.path().join("chain-seen.pem");
    let out_arg = format!("-o{}", out.display());
    let r = rs
        .eapol
        .run(Case::Good(Method::Tls), rs.port(), SECRET, &[&out_arg]);
    rs.check(&r).unwrap_or_else(|e| panic!("{e}"));
    let seen = std::fs::read_to_string(&out).expect("eapol_test -o wrote the server chain");
    let ours = std::fs::read_to_string(rs.certs().join("server.pem")).expect("server.pem");
    let seen_bodies = pem_bodies(&seen);
    assert!(
        pem_bodies(&ours).iter().all(|c| seen_bodies.contains(c)),
        "the server sent our server.pem:\n{seen}"
    );
}
