//! A real privacyIDEA for the tests (pip-installed, sqlite, werkzeug dev server), started on a
//! free port in its own temp dir and stopped by Drop, as in shared/recipes/privacyidea.md.
//! The virtualenv comes from `scripts/test.sh` (`target/privacyidea-venv`, or
//! `RADSHARD_PRIVACYIDEA_VENV`).

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

pub struct PrivacyIdea {
    pid: i32,
    pub url: String,
    pub venv: PathBuf,
    pub dir: tempfile::TempDir,
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

/// Starts privacyIDEA (admin/adminpw, flat-file users dave and erin in `$D/users.passwd`),
/// then evaluates the configuration snippet (`$4`) with `$PI` (base URL), `$H` (an admin
/// `Authorization:` header), `$D` (the temp dir) and `$PY` (the venv's python) set.
const SETUP: &str = r#"
set -euo pipefail
D=$1; PORT=$2; VENV=$3; CONFIGURE=$4
mkdir -p $D/data
cat > $D/pi.cfg <<END_OF_CFG
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
END_OF_CFG
export PRIVACYIDEA_CONFIGFILE=$D/pi.cfg
PM=$VENV/bin/pi-manage
PY=$VENV/bin/python
$PM setup create_enckey >/dev/null 2>&1
$PM setup create_audit_keys >/dev/null 2>&1
$PM setup create_tables >/dev/null 2>&1
$PM admin add admin -p adminpw >/dev/null 2>&1
cat > $D/users.passwd <<END_OF_USERS
dave:x:1001:1001:Dave Flat,,,:/home/dave:/bin/sh
erin:x:1002:1002:Erin Flat,,,:/home/erin:/bin/sh
END_OF_USERS
$PM run -h 127.0.0.1 -p $PORT --no-reload > $D/server.log 2>&1 &
echo $! > $D/server.pid
PI=http://127.0.0.1:$PORT
for i in $(seq 1 600); do curl -sf -o /dev/null $PI/healthz/ && break; sleep 0.1; done
TOK=$(curl -sf -X POST $PI/auth -d username=admin -d password=adminpw \
      | $PY -c 'import sys,json; print(json.load(sys.stdin)["result"]["value"]["token"])')
H="Authorization: $TOK"
eval "$CONFIGURE"
"#;

/// A simulated privacyIDEA Authenticator app (enrollment step 2 and signed answers).
const PHONE: &str = include_str!("phone.py");

pub fn venv() -> PathBuf {
    std::env::var_os("RADSHARD_PRIVACYIDEA_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/privacyidea-venv")
        })
}

/// Starts privacyIDEA on a free port and configures it with `configure` (see [`SETUP`]).
pub fn start(configure: &str) -> PrivacyIdea {
    let venv = venv();
    assert!(
        venv.join("bin/pi-manage").exists(),
        "no privacyIDEA virtualenv at {}: run scripts/test.sh (it installs one)",
        venv.display()
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let port = crate::common::free_tcp_port();
    let out = Command::new("bash")
        .arg("-c")
        .arg(SETUP)
        .arg("setup")
        .arg(dir.path())
        .arg(port.to_string())
        .arg(&venv)
        .arg(configure)
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
        venv,
        dir,
    };
    assert!(
        out.status.success() && pid > 0,
        "privacyIDEA setup failed:\n{}{}\nserver log:\n{log}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    pi
}

impl PrivacyIdea {
    /// Runs a bash snippet with `$PI`, `$H` (admin header), `$D` and `$PY` set; its stdout.
    pub fn run(&self, script: &str) -> String {
        let full = format!(
            "set -euo pipefail\nPI={url}\nD={dir}\nPY={py}\n\
             TOK=$(curl -sf -X POST $PI/auth -d username=admin -d password=adminpw \
             | $PY -c 'import sys,json; print(json.load(sys.stdin)[\"result\"][\"value\"][\"token\"])')\n\
             H=\"Authorization: $TOK\"\n{script}",
            url = self.url,
            dir = self.dir.path().display(),
            py = self.venv.join("bin/python").display(),
        );
        let out = Command::new("bash")
            .arg("-c")
            .arg(full)
            .output()
            .expect("bash");
        assert!(
            out.status.success(),
            "script failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// How many `/validate/triggerchallenge` requests privacyIDEA audited for `user`.
    pub fn triggers(&self, user: &str) -> usize {
        let out = self.run(&format!(
            "curl -sf \"$PI/audit/?action=*triggerchallenge*&user={user}\" -H \"$H\" \
             | $PY -c 'import sys,json; print(json.load(sys.stdin)[\"result\"][\"value\"][\"count\"])'"
        ));
        out.trim().parse().unwrap_or(usize::MAX)
    }

    /// Enrolls a push token `serial` for `user` in poll-only mode (no Firebase) and completes
    /// its enrollment as the smartphone would; the phone's key stays in the temp dir.
    pub fn enroll_push(&self, serial: &str, user: &str, realm: &str) {
        let phone = self.dir.path().join("phone.py");
        std::fs::write(&phone, PHONE).expect("write phone.py");
        self.run(&format!(
            "curl -sf -X POST $PI/policy/pushenroll -H \"$H\" -d scope=enrollment \
               -d \"action=push_firebase_configuration=poll only, push_registration_url=$PI/ttype/push\" \
               -d active=true >/dev/null\n\
             CRED=$(curl -sf -X POST $PI/token/init -H \"$H\" -d type=push -d genkey=1 -d serial={serial} \
               -d user={user} -d realm={realm} \
               | $PY -c 'import sys,json; print(json.load(sys.stdin)[\"detail\"][\"enrollment_credential\"])')\n\
             $PY $D/phone.py enroll $PI {serial} $D/{serial}.key $CRED >/dev/null"
        ));
    }

    /// The smartphone: after `delay_s`, waits (at most `wait_s`) for the push challenge of
    /// `serial` and approves or declines it. Runs in the background; wait for it with
    /// [`std::process::Child::wait`].
    pub fn phone(
        &self,
        serial: &str,
        approve: bool,
        wait_s: u32,
        delay_s: f32,
    ) -> std::process::Child {
        let d = self.dir.path();
        Command::new(self.venv.join("bin/python"))
            .arg(d.join("phone.py"))
            .arg("answer")
            .arg(&self.url)
            .arg(serial)
            .arg(d.join(format!("{serial}.key")))
            .arg(if approve { "approve" } else { "decline" })
            .arg(wait_s.to_string())
            .arg(delay_s.to_string())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("run the phone")
    }

    /// How many challenges privacyIDEA holds for the token `serial` (its admin API).
    pub fn challenges(&self, serial: &str) -> usize {
        let out = self.run(&format!(
            "curl -sf \"$PI/token/challenges/{serial}\" -H \"$H\" \
             | $PY -c 'import sys,json; print(json.load(sys.stdin)[\"result\"][\"value\"][\"count\"])'"
        ));
        out.trim().parse().unwrap_or(usize::MAX)
    }
}

/// The LDAP resolver and the realm `ldaprealm` (made the default realm) for the slapd on
/// `ldap_port`, as in the recipe.
pub fn ldap_realm(ldap_port: u16) -> String {
    format!(
        r#"
curl -sf -X POST $PI/resolver/ldap1 -H "$H" -H 'Content-Type: application/json' -d '{{
  "type":"ldapresolver","LDAPURI":"ldap://127.0.0.1:{ldap_port}","LDAPBASE":"ou=people,dc=example,dc=org",
  "BINDDN":"cn=admin,dc=example,dc=org","BINDPW":"adminpw","AUTHTYPE":"Simple",
  "LOGINNAMEATTRIBUTE":"uid","LDAPSEARCHFILTER":"(objectClass=inetOrgPerson)",
  "USERINFO":"{{\"username\":\"uid\",\"givenname\":\"cn\",\"surname\":\"sn\",\"email\":\"mail\"}}",
  "UIDTYPE":"DN","TIMEOUT":"5","SIZELIMIT":"500","CACHE_TIMEOUT":"120","NOREFERRALS":"True",
  "START_TLS":"0","TLS_VERIFY":"0"}}' >/dev/null
curl -sf -X POST $PI/realm/ldaprealm -H "$H" -d resolvers=ldap1 >/dev/null
curl -sf -X POST $PI/defaultrealm/ldaprealm -H "$H" >/dev/null
"#
    )
}
