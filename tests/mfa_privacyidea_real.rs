//! The privacyIDEA provider against a real privacyIDEA (pip-installed, sqlite, werkzeug dev
//! server), started on a free port by this test and stopped at its end. The virtualenv comes
//! from `scripts/test.sh` (`target/privacyidea-venv`, or `RADSHARD_PRIVACYIDEA_VENV`).
//!
//! privacyIDEA: flat-file realm `flatrealm` with users dave (HOTP token, no PIN, RFC 4226 key
//! "12345678901234567890") and erin (no token). radshard: local users dave and erin, a policy
//! requiring MFA, `[mfa] provider = "privacyidea"`.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::*;
use radshard::proto::{attr, Code};

/// RFC 4226 Appendix D HOTP values for the key "12345678901234567890".
const HOTP: [&str; 4] = ["755224", "287082", "359152", "969429"];

struct PrivacyIdea {
    pid: i32,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for PrivacyIdea {
    fn drop(&mut self) {
        if self.pid > 0 {
            // SAFETY: plain kill(2) of the server process this test started.
            unsafe {
                libc::kill(self.pid, libc::SIGTERM);
            }
        }
    }
}

const SETUP: &str = r#"
set -euo pipefail
D=$1; PORT=$2; VENV=$3
mkdir -p $D/data
cat > $D/pi.cfg <<EOF
SQLALCHEMY_DATABASE_URI = 'sqlite:///$D/data/pi.sqlite'
SECRET_KEY = 'throwaway-secret-key-0123456789abcdef'
PI_PEPPER = 'throwaway-pepper-0123456789'
PI_ENCFILE = '$D/data/enckey'
PI_AUDIT_KEY_PRIVATE = '$D/data/private.pem'
PI_AUDIT_KEY_PUBLIC = '$D/data/public.pem'
PI_LOGFILE = '$D/data/privacyidea.log'
PI_LOGLEVEL = 20
PI_AUDIT_SQL_TRUNCATE = True
SUPERUSER_REALM = []
EOF
export PRIVACYIDEA_CONFIGFILE=$D/pi.cfg
PM=$VENV/bin/pi-manage
$PM setup create_enckey >/dev/null 2>&1
$PM setup create_audit_keys >/dev/null 2>&1
$PM setup create_tables >/dev/null 2>&1
$PM admin add admin -p adminpw >/dev/null 2>&1
cat > $D/users.passwd <<EOF
dave:x:1001:1001:Dave Flat,,,:/home/dave:/bin/sh
erin:x:1002:1002:Erin Flat,,,:/home/erin:/bin/sh
EOF
$PM run -h 127.0.0.1 -p $PORT --no-reload > $D/server.log 2>&1 &
echo $! > $D/server.pid
PI=http://127.0.0.1:$PORT
for i in $(seq 1 600); do curl -sf -o /dev/null $PI/healthz/ && break; sleep 0.1; done
TOK=$(curl -sf -X POST $PI/auth -d username=admin -d password=adminpw \
      | $VENV/bin/python -c 'import sys,json; print(json.load(sys.stdin)["result"]["value"]["token"])')
H="Authorization: $TOK"
curl -sf -X POST $PI/resolver/flat1 -H "$H" -d type=passwdresolver -d fileName=$D/users.passwd >/dev/null
curl -sf -X POST $PI/realm/flatrealm -H "$H" -d resolvers=flat1 >/dev/null
curl -sf -X POST $PI/token/init -H "$H" -d type=hotp -d serial=HOTP-DAVE \
  -d otpkey=3132333435363738393031323334353637383930 -d user=dave -d realm=flatrealm >/dev/null
"#;

fn start_privacyidea() -> PrivacyIdea {
    let venv = std::env::var_os("RADSHARD_PRIVACYIDEA_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/privacyidea-venv")
        });
    assert!(
        venv.join("bin/pi-manage").exists(),
        "no privacyIDEA virtualenv at {}: run scripts/test.sh (it installs one)",
        venv.display()
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let out = Command::new("bash")
        .arg("-c")
        .arg(SETUP)
        .arg("setup")
        .arg(dir.path())
        .arg(port.to_string())
        .arg(&venv)
        .output()
        .expect("run the setup script");
    let pid: i32 = std::fs::read_to_string(dir.path().join("server.pid"))
        .ok()
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or(0);
    let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
    let pi = PrivacyIdea {
        pid,
        url: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    };
    assert!(
        out.status.success() && pid > 0,
        "privacyIDEA setup failed:\n{}{}\nserver log:\n{log}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    pi
}

fn body(url: &str) -> String {
    format!(
        r#"
[[clients]]
name = "localhost"
addresses = ["127.0.0.1"]
secret = "testing123"
require_message_authenticator = false

[[users]]
name = "dave"
password = "dave-pw"
groups = ["staff"]

[[users]]
name = "erin"
password = "erin-pw"
groups = ["staff"]

[[policies]]
name = "staff-mfa"
groups = ["staff"]
auth_methods = ["pap"]
mfa = true
reply = {{ Session-Timeout = 3600 }}

[mfa]
provider = "privacyidea"

[mfa.privacyidea]
url = "{url}"
realm = "flatrealm"
timeout = "5s"
"#
    )
}

fn ask(
    c: &RadClient,
    s: &TestServer,
    id: u8,
    user: &str,
    pw: &str,
    state: Option<&[u8]>,
) -> (Vec<u8>, Code) {
    let sec = secret(SECRET);
    let extra: Vec<(u8, &[u8])> = state.map(|st| (attr::STATE, st)).into_iter().collect();
    let req = access_request_with(&sec, id, &random_authenticator(), user, pw, false, &extra);
    // privacyIDEA's dev server can take a few hundred ms per check.
    c.send(&req, s.auth);
    let reply = c.recv_timeout(Duration::from_secs(8)).expect("a reply");
    let code = check_reply(&reply, &req, &sec);
    (reply, code)
}

fn challenge(c: &RadClient, s: &TestServer, id: u8, user: &str, pw: &str) -> Vec<u8> {
    let (reply, code) = ask(c, s, id, user, pw, None);
    assert_eq!(code, Code::AccessChallenge, "{user}");
    reply_attr(&reply, attr::STATE).expect("a State")
}

#[test]
fn real_privacyidea_hotp() {
    let pi = start_privacyidea();
    let s = TestServer::start(1, &body(&pi.url));
    let c = RadClient::new();

    // First HOTP value → Accept with the policy's attributes.
    let st = challenge(&c, &s, 1, "dave", "dave-pw");
    let (reply, code) = ask(&c, &s, 2, "dave", HOTP[0], Some(&st));
    assert_eq!(code, Code::AccessAccept);
    assert!(reply_attr(&reply, attr::SESSION_TIMEOUT).is_some());

    // The same code again, after a new challenge → privacyIDEA refuses it (already used).
    let st = challenge(&c, &s, 3, "dave", "dave-pw");
    let (_, code) = ask(&c, &s, 4, "dave", HOTP[0], Some(&st));
    assert_eq!(code, Code::AccessReject, "reused HOTP value");

    // A wrong code → Reject; the next counter value → Accept.
    let st = challenge(&c, &s, 5, "dave", "dave-pw");
    let (_, code) = ask(&c, &s, 6, "dave", "000000", Some(&st));
    assert_eq!(code, Code::AccessReject, "wrong code");
    let st = challenge(&c, &s, 7, "dave", "dave-pw");
    let (_, code) = ask(&c, &s, 8, "dave", HOTP[1], Some(&st));
    assert_eq!(code, Code::AccessAccept, "next HOTP value");

    // erin has no token at privacyIDEA → Reject (unenrolled = "reject").
    let st = challenge(&c, &s, 9, "erin", "erin-pw");
    let (_, code) = ask(&c, &s, 10, "erin", HOTP[2], Some(&st));
    assert_eq!(code, Code::AccessReject, "no token");

    let m = radshard::backend::mfa::metrics().expect("mfa metrics");
    assert_eq!(m.outcome_count("accept"), 2);
    assert_eq!(m.outcome_count("mfa_bad_code"), 2);
    assert_eq!(m.outcome_count("mfa_not_enrolled"), 1);
    drop(s);
    drop(pi);
}
