//! A throwaway FreeRADIUS 3.2 answering EAP (PEAP, EAP-TTLS, EAP-TLS) on a free 127.0.0.1
//! port, set up exactly as /work/shared/recipes/eapol_test.md does: section 1's certificates
//! (openssl, RSA-2048: a CA, `radius.test` for the server, `alice@example.test` for EAP-TLS;
//! [`super::eapol::make_pki_openssl`]) and section 4's configuration (a copy of
//! /etc/freeradius/3.0 in a temporary directory, never /etc itself; one auth listener; client
//! 127.0.0.1/testing123; user alice/alicepw; `TLS13` and `RESUME` as the recipe's options),
//! written by perf/lib/freeradius_eap.sh, the one perf/eap_compare.sh uses too. Stopped (only
//! the pid started here) on drop.
//!
//! FreeRADIUS and eapol_test are required: scripts/test.sh installs them, so a missing one is
//! a failure, not a skip.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const PASSWORD: &str = "alicepw";
/// The EAP-TLS identity (the client certificate's name).
pub const TLS_IDENTITY: &str = "alice@example.test";
const RADDB: &str = "/etc/freeradius/3.0";
/// The recipe's section 4 as shell functions (`freeradius_eap_raddb`, `freeradius_eap_check`).
const SETUP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/perf/lib/freeradius_eap.sh");

/// The recipe's options and what a test adds to them.
#[derive(Debug, Clone, Default)]
pub struct EapOptions {
    /// `TLS13=1`: `tls_max_version = "1.3"` (Debian caps it at 1.2).
    pub tls13: bool,
    /// `RESUME=1`: the TLS session cache on (name and persist_dir, as 3.2 needs).
    pub resume: bool,
    /// More `name password` users (Cleartext-Password), besides alice.
    pub users: Vec<(String, String)>,
    /// Unlang put at the top of the default server's post-auth section.
    pub post_auth: Option<String>,
    /// The negative fixtures too ([`super::eapol::make_negative_fixtures`]), and client
    /// certificates checked against the CA's CRL: `ca_file` is `ca-with-crl.pem` (the CA
    /// followed by its CRL), `check_crl = yes`.
    pub check_crl: bool,
    /// `freeradius -X` (single-threaded, full debug, to log/debug.log) instead of `-f`: for
    /// functional checks that read the server's side, never for measurements.
    pub debug: bool,
}

/// Panics unless FreeRADIUS and eapol_test are installed.
pub fn require_tools() {
    for (tool, package) in [
        ("/usr/sbin/freeradius", "freeradius"),
        ("/usr/bin/eapol_test", "eapoltest"),
        ("/usr/bin/openssl", "openssl"),
    ] {
        assert!(
            Path::new(tool).exists() && Path::new(RADDB).exists(),
            "{tool} (or {RADDB}) is missing: apt-get install -y {package} \
             (scripts/test.sh installs it)"
        );
    }
}

/// Runs the function `args[0]` of perf/lib/freeradius_eap.sh with the rest of `args`, bounded;
/// panics with its output (and the config check's) on failure.
fn run_setup(dir: &Path, args: &[OsString]) {
    let mut cmd = Command::new("bash");
    cmd.arg(SETUP)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let name = args[0].to_string_lossy();
    let out =
        bounded_output(cmd, Duration::from_secs(120)).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(
        out.status.success(),
        "{name} failed ({}):\n{}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(dir.join("log/config-check.log")).unwrap_or_default()
    );
}

/// `cmd`'s output, or an error if it runs longer than `limit` (then it is killed).
pub fn bounded_output(mut cmd: Command, limit: Duration) -> Result<std::process::Output, String> {
    let mut child = cmd.spawn().map_err(|e| format!("spawn: {e}"))?;
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return child.wait_with_output().map_err(|e| e.to_string()),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("still running after {limit:?}: killed"));
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// A running FreeRADIUS with the recipe's EAP configuration.
pub struct FreeRadiusEap {
    child: Child,
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
    /// log/radius.log, or log/debug.log under `-X`.
    log: PathBuf,
}

impl FreeRadiusEap {
    /// Generates the certificates, writes the configuration, starts `freeradius -f` (or `-X`)
    /// and waits (at most 30 s) until it is ready.
    pub fn start(opts: &EapOptions) -> FreeRadiusEap {
        require_tools();
        let dir = tempfile::Builder::new()
            .prefix("fr-eap-")
            .tempdir()
            .expect("tempdir");
        let d = dir.path();
        let port = super::free_udp_port();
        let certs = d.join("certs");
        super::eapol::make_pki_openssl(&certs);
        if opts.check_crl {
            super::eapol::make_negative_fixtures(&certs);
        }
        let mut users = String::new();
        for (name, password) in &opts.users {
            let _ = write!(users, "{name}\tCleartext-Password := \"{password}\"\n\n");
        }
        std::fs::write(d.join("users.extra"), users).expect("users");
        std::fs::write(
            d.join("post_auth.extra"),
            opts.post_auth.clone().unwrap_or_default(),
        )
        .expect("post-auth");
        let raddb = d.join("raddb");
        let mut args: Vec<OsString> = vec!["freeradius_eap_raddb".into()];
        for (on, flag) in [
            (opts.tls13, "--tls13"),
            (opts.resume, "--resume"),
            (opts.check_crl, "--check-crl"),
        ] {
            if on {
                args.push(flag.into());
            }
        }
        if opts.check_crl {
            args.extend(["--ca-file".into(), "ca-with-crl.pem".into()]);
        }
        args.extend([
            "--users".into(),
            d.join("users.extra").into(),
            "--post-auth".into(),
            d.join("post_auth.extra").into(),
            raddb.clone().into(),
            d.into(),
            certs.into(),
            port.to_string().into(),
        ]);
        run_setup(d, &args);
        run_setup(
            d,
            &[
                "freeradius_eap_check".into(),
                raddb.clone().into(),
                d.into(),
            ],
        );
        let mut cmd = Command::new("freeradius");
        cmd.stdin(Stdio::null());
        let log = if opts.debug {
            let log = d.join("log/debug.log");
            let file = std::fs::File::create(&log).expect("debug.log");
            cmd.arg("-X")
                .arg("-d")
                .arg(&raddb)
                .stdout(file.try_clone().expect("dup"))
                .stderr(file);
            log
        } else {
            let log = d.join("log/radius.log");
            cmd.arg("-f")
                .arg("-d")
                .arg(&raddb)
                .arg("-l")
                .arg(&log)
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            log
        };
        let child = cmd.spawn().expect("start freeradius");
        let mut fr = FreeRadiusEap {
            child,
            addr: ([127, 0, 0, 1], port).into(),
            dir,
            log,
        };
        fr.wait_ready();
        fr
    }

    /// The recipe's certificates: ca.pem, server.pem/key, client.pem/key (and with
    /// [`EapOptions::check_crl`] the negative fixtures).
    pub fn certs(&self) -> PathBuf {
        self.dir.path().join("certs")
    }

    /// The server's private directory (raddb, certs, log, run).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

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

    /// One eapol_test PEAP-MSCHAPv2 login as alice (the recipe's section 2 network block),
    /// bounded to 30 s: (SUCCESS with the MPPE keys checked, RADIUS round trips).
    pub fn eapol_test_peap(&self) -> (bool, usize, String) {
        let c = self.certs();
        let conf = self.dir.path().join("peap-mschapv2.conf");
        std::fs::write(
            &conf,
            format!(
                "network={{\n\tkey_mgmt=WPA-EAP\n\teap=PEAP\n\tidentity=\"alice\"\n\
                 \tanonymous_identity=\"anonymous\"\n\tpassword=\"{PASSWORD}\"\n\
                 \tca_cert=\"{}\"\n\tdomain_match=\"radius.test\"\n\tphase1=\"peaplabel=0\"\n\
                 \tphase2=\"auth=MSCHAPV2\"\n}}\n",
                c.join("ca.pem").display()
            ),
        )
        .expect("eapol conf");
        let mut cmd = Command::new("eapol_test");
        cmd.arg("-c")
            .arg(&conf)
            .args(["-a", "127.0.0.1", "-p", &self.addr.port().to_string()])
            .args(["-s", super::SECRET, "-t", "15"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let out = bounded_output(cmd, Duration::from_secs(30)).expect("eapol_test");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let ok = out.status.success()
            && text.trim_end().ends_with("SUCCESS")
            && text.contains("MPPE keys OK: 1  mismatch: 0");
        let rounds = text
            .matches("Sending RADIUS message to authentication server")
            .count();
        (ok, rounds, text)
    }
}

impl Drop for FreeRadiusEap {
    fn drop(&mut self) {
        // Only the process started here, by its handle.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
