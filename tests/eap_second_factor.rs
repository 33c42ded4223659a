//! A one-time code inside EAP, with eapol_test as the supplicant: PEAP and TTLS with inner
//! EAP-GTC ask for the password, then (the policy wants a second factor) for the code in a
//! second GTC round, which radshard checks against the built-in TOTP. eapol_test has no
//! password configured, so it asks its control interface for each answer (as a desktop
//! supplicant asks its user): the test attaches to that interface, reads each prompt and
//! answers it. A wrong code ends in Access-Reject; a client proposing EAP-MSCHAPv2 under the
//! code policy is refused (it cannot carry a code).

mod common;
mod ldap_common;

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::eapol::parse_output;
use common::mfa::{code_at, wrong_code, ALICE_TOTP};
use ldap_common::Radshard;

const SECRET: &str = "testing123";
const PROMPT: &str = "Enter your one-time code";

fn config(certs: &Path) -> String {
    let d = certs.display();
    format!(
        "\n[[users]]\nname = \"alice\"\npassword = \"alicepw\"\ntotp_secret = \"{ALICE_TOTP}\"\ngroups = [\"staff\"]\n\
         \n[[policies]]\nname = \"staff-wifi-code\"\ngroups = [\"staff\"]\nauth_methods = [\"peap\", \"ttls\"]\nmfa = true\n\
         reply = {{ Session-Timeout = 3600 }}\n\
         \n[mfa]\nprovider = \"totp\"\nprompt = \"{PROMPT}\"\n\
         \n[eap]\nmethods = [\"peap\", \"ttls\"]\n\
         \n[eap.tls]\ncertificate = \"{d}/server.pem\"\nprivate_key = \"{d}/server.key\"\n"
    )
}

/// An eapol_test run whose answers come through its control interface.
struct Supplicant {
    child: Child,
    ctrl: UnixDatagram,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Supplicant {
    /// Starts eapol_test for `phase` (`eap=…` and `phase2=…` lines) against `port` and
    /// attaches to its control interface.
    fn start(certs: &Path, port: u16, phase: &str) -> Supplicant {
        let dir = tempfile::tempdir().expect("dir");
        let ctrl_dir = dir.path().join("ctrl");
        let conf = dir.path().join("gtc.conf");
        std::fs::write(
            &conf,
            format!(
                "ctrl_interface={}\nnetwork={{\n\tkey_mgmt=WPA-EAP\n{phase}\tidentity=\"alice\"\n\
                 \tanonymous_identity=\"anonymous\"\n\tca_cert=\"{}\"\n\tdomain_match=\"radius.test\"\n}}\n",
                ctrl_dir.display(),
                certs.join("ca.pem").display()
            ),
        )
        .expect("conf");
        let log = dir.path().join("eapol.log");
        let child = Command::new("eapol_test")
            .arg("-c")
            .arg(&conf)
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-s", SECRET])
            .args(["-t", "20", "-W"])
            .stdout(std::fs::File::create(&log).expect("log"))
            .stderr(Stdio::null())
            .spawn()
            .expect("eapol_test (package eapoltest)");
        // eapol_test names its control socket after the interface: "test".
        let socket = ctrl_dir.join("test");
        let until = Instant::now() + Duration::from_secs(10);
        while !socket.exists() {
            assert!(Instant::now() < until, "eapol_test made no control socket");
            std::thread::sleep(Duration::from_millis(20));
        }
        let ctrl = UnixDatagram::bind(dir.path().join("monitor")).expect("bind");
        ctrl.connect(&socket).expect("connect");
        ctrl.set_read_timeout(Some(Duration::from_secs(15)))
            .expect("timeout");
        ctrl.send(b"ATTACH").expect("attach");
        let mut s = Supplicant {
            child,
            ctrl,
            log,
            _dir: dir,
        };
        let ok = s.next_message().expect("ATTACH answered");
        assert!(ok.starts_with("OK"), "ATTACH: {ok}");
        s
    }

    fn next_message(&mut self) -> Option<String> {
        let mut buf = [0u8; 4096];
        loop {
            match self.ctrl.recv(&mut buf) {
                Ok(n) => return Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
                // The server under test shares the process; its signals interrupt the wait.
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    eprintln!("control interface: {e}");
                    return None;
                }
            }
        }
    }

    /// The next one-time-password request's prompt, answered with `answer`; `None` if the
    /// conversation ended (or timed out) first.
    fn answer(&mut self, answer: &str) -> Option<String> {
        loop {
            let m = self.next_message()?;
            if m.contains("CTRL-EVENT-EAP-FAILURE") || m.contains("CTRL-EVENT-EAP-SUCCESS") {
                return None;
            }
            // "<3>CTRL-REQ-OTP-0:<prompt> needed for SSID …"
            let Some(rest) = m.split("CTRL-REQ-OTP-").nth(1) else {
                continue;
            };
            let (id, prompt) = rest.split_once(':').expect("id:prompt");
            // wpa_supplicant shows a server's text in brackets.
            let prompt = prompt.split(" needed for SSID").next().unwrap_or("");
            let prompt = prompt.trim_start_matches('[').trim_end_matches(']');
            let rsp = format!("CTRL-RSP-OTP-{id}:{answer}");
            self.ctrl.send(rsp.as_bytes()).expect("answer");
            // Its reply, past any event ("<level>…") sent before it.
            let ok = std::iter::from_fn(|| self.next_message())
                .find(|m| !m.starts_with('<'))
                .unwrap_or_default();
            assert!(ok.starts_with("OK"), "{rsp}: {ok}");
            return Some(prompt.to_string());
        }
    }

    /// Waits for eapol_test to end: its log and exit code.
    fn finish(mut self) -> (String, Option<i32>) {
        let until = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                break s;
            }
            if Instant::now() > until {
                let _ = self.child.kill();
                break self.child.wait().expect("wait");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        (log, status.code())
    }
}

impl Drop for Supplicant {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn server() -> (Radshard, tempfile::TempDir) {
    let certs = tempfile::tempdir().expect("dir");
    radshard::tls::pki::write_test_pki(certs.path(), Default::default(), false).expect("PKI");
    let rs = Radshard::start(&config(certs.path()));
    (rs, certs)
}

const PEAP_GTC: &str = "\teap=PEAP\n\tphase1=\"peaplabel=0\"\n\tphase2=\"auth=GTC\"\n";
const TTLS_GTC: &str = "\teap=TTLS\n\tphase2=\"autheap=GTC\"\n";

/// The password, then the code: both prompts seen, SUCCESS with the MPPE keys matching.
fn password_then_code(phase: &str) {
    let (rs, certs) = server();
    let mut s = Supplicant::start(certs.path(), rs.port, phase);
    let first = s.answer("alicepw").expect("asked for the password");
    assert!(first.contains("Password"), "first prompt: {first:?}");
    let second = s
        .answer(&code_at(ALICE_TOTP, 0))
        .expect("asked for the code");
    assert_eq!(second, PROMPT, "second prompt");
    let (log, code) = s.finish();
    let r = parse_output(&log, code);
    assert!(r.success && r.keys_ok(1), "{}", r.explain());
}

#[test]
fn peap_gtc_asks_for_the_password_then_the_code() {
    password_then_code(PEAP_GTC);
}

#[test]
fn ttls_eap_gtc_asks_for_the_password_then_the_code() {
    password_then_code(TTLS_GTC);
}

#[test]
fn a_wrong_code_inside_peap_is_rejected() {
    let (rs, certs) = server();
    let mut s = Supplicant::start(certs.path(), rs.port, PEAP_GTC);
    s.answer("alicepw").expect("asked for the password");
    s.answer(wrong_code(ALICE_TOTP))
        .expect("asked for the code");
    // No third prompt: the conversation ends.
    assert_eq!(s.answer("alicepw"), None);
    let (log, code) = s.finish();
    let r = parse_output(&log, code);
    assert!(!r.success && r.rejected(), "{}", r.explain());
}

#[test]
fn a_wrong_password_is_rejected_before_any_code() {
    let (rs, certs) = server();
    let mut s = Supplicant::start(certs.path(), rs.port, PEAP_GTC);
    s.answer("not-the-password")
        .expect("asked for the password");
    assert_eq!(s.answer(&code_at(ALICE_TOTP, 0)), None, "no code asked");
    let (log, code) = s.finish();
    assert!(parse_output(&log, code).rejected(), "{log}");
}

/// PEAP-MSCHAPv2 cannot carry a code: the code policy's login is refused, not waived.
#[test]
fn mschapv2_under_a_code_policy_is_refused() {
    let (rs, certs) = server();
    let eapol = common::eapol::Eapol::new(certs.path(), "alicepw");
    let r = eapol.run(
        common::eapol::Case::Good(common::eapol::Method::PeapMschapv2),
        rs.port,
        SECRET,
        &[],
    );
    assert!(!r.success && r.rejected(), "{}", r.explain());
}
