//! A throwaway FreeRADIUS 3.2 answering EAP (PEAP, EAP-TTLS, EAP-TLS) on a free 127.0.0.1
//! port, set up exactly as /work/shared/recipes/eapol_test.md does: section 1's certificates
//! (openssl, RSA-2048: a CA, `radius.test` for the server, `alice@example.test` for EAP-TLS)
//! and section 4's configuration (a copy of /etc/freeradius/3.0 in a temporary directory,
//! never /etc itself; one auth listener; client 127.0.0.1/testing123; user alice/alicepw;
//! `TLS13` and `RESUME` as the recipe's options). Stopped (only the pid started here) on drop.
//!
//! FreeRADIUS and eapol_test are required: scripts/test.sh installs them, so a missing one is
//! a failure, not a skip.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const PASSWORD: &str = "alicepw";
/// The EAP-TLS identity (the client certificate's name).
pub const TLS_IDENTITY: &str = "alice@example.test";
const RADDB: &str = "/etc/freeradius/3.0";

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
}

/// Section 1 of the recipe, without its "other CA" fixtures (no test here needs them).
const GEN_CERTS: &str = r#"#!/bin/sh
set -eu
D="$WORKDIR/certs"; mkdir -p "$D"; cd "$D"
DAYS=3650
openssl req -x509 -new -newkey rsa:2048 -nodes -sha256 -days $DAYS \
  -keyout ca.key -out ca.pem -subj "/C=US/O=EAP Test/CN=EAP Test CA" \
  -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -addext "subjectKeyIdentifier=hash"
cat > server.ext <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:radius.test
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid,issuer
EXT
openssl req -new -newkey rsa:2048 -nodes -sha256 -keyout server.key -out server.csr \
  -subj "/C=US/O=EAP Test/CN=radius.test"
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
  -days $DAYS -sha256 -extfile server.ext -out server.pem
cat > client.ext <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth
subjectAltName=email:alice@example.test
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid,issuer
EXT
openssl req -new -newkey rsa:2048 -nodes -sha256 -keyout client.key -out client.csr \
  -subj "/C=US/O=EAP Test/CN=alice@example.test"
openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
  -days $DAYS -sha256 -extfile client.ext -out client.pem
cat server.pem ca.pem > server-chain.pem
chmod 600 *.key
rm -f server.csr client.csr
openssl verify -CAfile ca.pem server.pem client.pem
"#;

/// Section 4 of the recipe (freeradius_setup.sh), unchanged but for the raddb source.
const SETUP: &str = r#"#!/bin/bash
set -eu
: "${WORKDIR:?}"; PORT=${PORT:-18121}; C=$WORKDIR/certs; RD=$WORKDIR/raddb
rm -rf "$RD"; cp -a "$RADDB_SRC" "$RD"; mkdir -p "$WORKDIR/log" "$WORKDIR/run"
sed -i -e "s|^logdir = .*|logdir = $WORKDIR/log|" \
       -e "s|^raddbdir = .*|raddbdir = $RD|" \
       -e "s|^run_dir = .*|run_dir = $WORKDIR/run|" \
       -e 's|^\(\s*\)user = freerad|\1#user = freerad|' \
       -e 's|^\(\s*\)group = freerad|\1#group = freerad|' \
       -e 's|^proxy_requests\s*=.*|proxy_requests = no|' \
       -e 's|^max_requests = .*|max_requests = 65536|' "$RD/radiusd.conf"
cat > "$WORKDIR/run/listen.conf" <<L
listen {
	type = auth
	ipaddr = 127.0.0.1
	port = $PORT
}
L
strip() { python3 - "$@" <<'PY'
import re, sys
src = open(sys.argv[1]).read().split('\n'); repl = open(sys.argv[3]).read() if len(sys.argv) > 3 else ''
out, depth, skip, done = [], 0, False, False
for line in src:
    code = line.split('#', 1)[0]
    if not skip and re.match(r'^\s*listen\s*\{', code):
        skip, ld = True, depth
        if repl and not done: out.append(repl.rstrip('\n')); done = True
    depth += code.count('{') - code.count('}')
    if skip:
        if depth == ld: skip = False
        continue
    out.append(line)
open(sys.argv[2], 'w').write('\n'.join(out))
PY
}
rm -f "$RD/sites-enabled/default" "$RD/sites-enabled/inner-tunnel"
strip "$RD/sites-available/default" "$RD/sites-enabled/default" "$WORKDIR/run/listen.conf"
strip "$RD/sites-available/inner-tunnel" "$RD/sites-enabled/inner-tunnel"
cat > "$RD/clients.conf" <<'CL'
client localhost {
	ipaddr = 127.0.0.1
	secret = testing123
}
CL
{ cat "$WORKDIR/users.extra"; cat "$RD/mods-config/files/authorize"; } > "$RD/users.tmp"
mv "$RD/users.tmp" "$RD/mods-config/files/authorize"
sed -i -e 's|^\(\s*\)private_key_password = .*|\1#private_key_password = (unencrypted key)|' \
       -e "s|^\(\s*\)private_key_file = .*|\1private_key_file = $C/server.key|" \
       -e "s|^\(\s*\)certificate_file = .*|\1certificate_file = $C/server.pem|" \
       -e "s|^\(\s*\)ca_file = .*|\1ca_file = $C/ca.pem|" \
       -e 's|^\(\s*\)ca_path = \${cadir}|\1#ca_path = ${cadir}|' "$RD/mods-available/eap"
if [ "${TLS13:-0}" = 1 ]; then
  sed -i 's|^\(\s*\)tls_max_version = "1.2"|\1tls_max_version = "1.3"|' "$RD/mods-available/eap"
fi
if [ "${RESUME:-0}" = 1 ]; then
  mkdir -p -m 700 "$WORKDIR/tlscache"
  python3 - "$RD/mods-available/eap" "$WORKDIR/tlscache" <<'PY'
import re, sys
p, d = sys.argv[1], sys.argv[2]; L = open(p).read().split('\n'); i = next(n for n, l in enumerate(L) if re.match(r'^\s*cache \{', l))
done = set()
for n in range(i, len(L)):
    if 'en' not in done and re.match(r'^\s*enable = no', L[n]): L[n] = L[n].replace('enable = no', 'enable = yes'); done.add('en')
    elif 'nm' not in done and re.match(r'^\s*#\s*name = ', L[n]): L[n] = '\t\t\tname = "EAP module"'; done.add('nm')
    elif 'pd' not in done and re.match(r'^\s*#\s*persist_dir = ', L[n]): L[n] = f'\t\t\tpersist_dir = "{d}"'; done.add('pd')
    if len(done) == 3: break
assert len(done) == 3, done
open(p, 'w').write('\n'.join(L))
PY
fi
if [ -s "$WORKDIR/post_auth.extra" ]; then
  python3 - "$RD/sites-enabled/default" "$WORKDIR/post_auth.extra" <<'PY'
import re, sys
p, extra = sys.argv[1], open(sys.argv[2]).read()
L = open(p).read().split('\n'); i = next(n for n, l in enumerate(L) if re.match(r'^post-auth\s*\{', l))
L.insert(i + 1, extra)
open(p, 'w').write('\n'.join(L))
PY
fi
freeradius -C -d "$RD" > "$WORKDIR/log/config-check.log" 2>&1 && echo "config OK: $RD"
"#;

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

/// Runs `script` with bash in `dir`, bounded; panics with its output on failure.
fn run_script(dir: &Path, name: &str, script: &str, env: &[(&str, String)]) {
    let path = dir.join(name);
    std::fs::write(&path, script).expect("write script");
    let mut cmd = Command::new("bash");
    cmd.arg(&path)
        .env("WORKDIR", dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
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
}

impl FreeRadiusEap {
    /// Generates the certificates, writes the configuration, starts `freeradius -f` and waits
    /// (at most 20 s) until it is ready.
    pub fn start(opts: &EapOptions) -> FreeRadiusEap {
        require_tools();
        let dir = tempfile::tempdir().expect("tempdir");
        let port = super::free_udp_port();
        let mut users = format!("alice\tCleartext-Password := \"{PASSWORD}\"\n\n");
        for (name, password) in &opts.users {
            let _ = write!(users, "{name}\tCleartext-Password := \"{password}\"\n\n");
        }
        std::fs::write(dir.path().join("users.extra"), users).expect("users");
        std::fs::write(
            dir.path().join("post_auth.extra"),
            opts.post_auth.clone().unwrap_or_default(),
        )
        .expect("post-auth");
        run_script(dir.path(), "gen_certs.sh", GEN_CERTS, &[]);
        let flag = |on: bool| if on { "1" } else { "0" }.to_string();
        run_script(
            dir.path(),
            "freeradius_setup.sh",
            SETUP,
            &[
                ("PORT", port.to_string()),
                ("RADDB_SRC", RADDB.to_string()),
                ("TLS13", flag(opts.tls13)),
                ("RESUME", flag(opts.resume)),
            ],
        );
        let raddb = dir.path().join("raddb");
        let log = dir.path().join("log/radius.log");
        let child = Command::new("freeradius")
            .arg("-f")
            .arg("-d")
            .arg(&raddb)
            .arg("-l")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start freeradius");
        let mut fr = FreeRadiusEap {
            child,
            addr: ([127, 0, 0, 1], port).into(),
            dir,
        };
        fr.wait_ready();
        fr
    }

    /// The recipe's certificates: ca.pem, server.pem/key, client.pem/key.
    pub fn certs(&self) -> PathBuf {
        self.dir.path().join("certs")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log/radius.log")).unwrap_or_default()
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.log().contains("Ready to process requests") {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("freeradius exited ({status}):\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("freeradius not ready after 20 s:\n{}", self.log());
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
