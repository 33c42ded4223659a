//! Real peers for the directory tests: a throwaway OpenLDAP slapd on a free loopback port
//! (stopped by Drop), radshard in-process, and FreeRADIUS's radclient.

#![allow(dead_code)]

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

// One allocator per test process (the crate's `common`), so the two never hand out a port twice.
pub use crate::common::ports::{free_tcp_port, free_udp_port};

pub const SUFFIX: &str = "dc=example,dc=org";
pub const ADMIN: &str = "cn=admin,dc=example,dc=org";

/// OpenLDAP slapd as in shared/recipes/slapd.md, on `port`, in its own temp dir.
pub struct Slapd {
    pub port: u16,
    /// The LDAPS port, when started with TLS.
    pub tls_port: Option<u16>,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Slapd {
    pub fn start() -> Slapd {
        Slapd::start_inner(false)
    }

    /// With a test CA (`ca_file()`) and a server certificate for IP 127.0.0.1: StartTLS on
    /// `port`, LDAPS on `tls_port`.
    pub fn start_tls() -> Slapd {
        Slapd::start_inner(true)
    }

    pub fn ca_file(&self) -> std::path::PathBuf {
        self.dir.path().join("ca.pem")
    }

    fn start_inner(tls: bool) -> Slapd {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("data")).unwrap();
        let mut tls_conf = String::new();
        if tls {
            let ec = [
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
            ];
            let mut a = vec!["req", "-x509"];
            a.extend(ec);
            a.extend([
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=radshard test CA",
            ]);
            openssl(d, &a);
            let mut a = vec!["req"];
            a.extend(ec);
            a.extend([
                "-keyout",
                "key.pem",
                "-out",
                "req.csr",
                "-subj",
                "/CN=127.0.0.1",
            ]);
            openssl(d, &a);
            std::fs::write(
                d.join("ext.cnf"),
                "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
            )
            .unwrap();
            openssl(
                d,
                &[
                    "x509",
                    "-req",
                    "-in",
                    "req.csr",
                    "-CA",
                    "ca.pem",
                    "-CAkey",
                    "ca.key",
                    "-CAcreateserial",
                    "-out",
                    "cert.pem",
                    "-days",
                    "2",
                    "-extfile",
                    "ext.cnf",
                ],
            );
            tls_conf = format!(
                "TLSCACertificateFile {d}/ca.pem\nTLSCertificateFile {d}/cert.pem\nTLSCertificateKeyFile {d}/key.pem\n",
                d = d.display()
            );
        }
        // The part of Samba's samba.schema that carries NT hashes (same OIDs and syntax), for
        // MS-CHAP against the directory: Debian's slapd does not ship samba.schema.
        std::fs::write(d.join("samba-nt.schema"), SAMBA_NT_SCHEMA).unwrap();
        let conf = format!(
            "include /etc/ldap/schema/core.schema\ninclude /etc/ldap/schema/cosine.schema\n\
             include /etc/ldap/schema/nis.schema\ninclude /etc/ldap/schema/inetorgperson.schema\n\
             include {d}/samba-nt.schema\n\
             {tls_conf}pidfile {d}/slapd.pid\nargsfile {d}/slapd.args\nmodulepath /usr/lib/ldap\n\
             moduleload back_mdb\nmoduleload memberof\n\
             database mdb\nmaxsize 104857600\nsuffix \"{SUFFIX}\"\nrootdn \"{ADMIN}\"\nrootpw adminpw\n\
             directory {d}/data\nindex objectClass eq\nindex uid,cn,mail eq\n\
             access to attrs=userPassword\n  by self write\n  by anonymous auth\n  by * none\n\
             access to attrs=sambaNTPassword\n  by dn.exact=\"{ADMIN}\" read\n  by * none\n\
             access to *\n  by * read\noverlay memberof\n",
            d = d.display()
        );
        std::fs::write(d.join("slapd.conf"), conf).unwrap();
        let port = free_tcp_port();
        let mut s = Slapd {
            port,
            tls_port: tls.then(free_tcp_port),
            child: None,
            dir,
        };
        s.spawn();
        s.ldapadd(&base_ldif());
        s
    }

    fn spawn(&mut self) {
        let d = self.dir.path();
        let bin = if Path::new("/usr/sbin/slapd").exists() {
            "/usr/sbin/slapd"
        } else {
            "slapd"
        };
        let mut urls = format!("ldap://127.0.0.1:{}/", self.port);
        if let Some(p) = self.tls_port {
            urls += &format!(" ldaps://127.0.0.1:{p}/");
        }
        let child = Command::new(bin)
            .args(["-d", "0", "-h"])
            .arg(urls)
            .arg("-f")
            .arg(d.join("slapd.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("slapd must be installed (apt-get install slapd ldap-utils)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("slapd did not start on port {}", self.port);
    }

    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    pub fn ldapadd(&self, ldif: &str) {
        let mut c = Command::new("ldapadd")
            .args(["-x", "-H", &self.url(), "-D", ADMIN, "-w", "adminpw"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("ldapadd (ldap-utils)");
        c.stdin.take().unwrap().write_all(ldif.as_bytes()).unwrap();
        assert!(c.wait().unwrap().success(), "ldapadd failed");
    }

    fn signal(&self, sig: libc::c_int) {
        if let Some(c) = &self.child {
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(c.id() as libc::pid_t, sig) };
        }
    }

    /// Freezes slapd: connections are accepted by the kernel but nothing is answered.
    pub fn pause(&self) {
        self.signal(libc::SIGSTOP);
        // kill(2) returns before every thread has stopped; wait until /proc says they have.
        let Some(pid) = self.child.as_ref().map(Child::id) else {
            return;
        };
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            let stopped = std::fs::read_dir(format!("/proc/{pid}/task"))
                .map(|tasks| {
                    tasks.flatten().all(|t| {
                        std::fs::read_to_string(t.path().join("stat"))
                            .ok()
                            .and_then(|st| {
                                st.rsplit_once(')')
                                    .map(|(_, rest)| rest.trim_start().starts_with('T'))
                            })
                            .unwrap_or(true)
                    })
                })
                .unwrap_or(true);
            if stopped {
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    pub fn resume(&self) {
        self.signal(libc::SIGCONT);
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(c.id() as libc::pid_t, libc::SIGCONT) };
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// sambaSID, sambaNTPassword and the auxiliary class sambaSamAccount as samba.schema defines
/// them (its other optional attributes left out).
const SAMBA_NT_SCHEMA: &str = "\
attributetype ( 1.3.6.1.4.1.7165.2.1.20 NAME 'sambaSID' DESC 'Security ID'
  EQUALITY caseIgnoreIA5Match SUBSTR caseExactIA5SubstringsMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.26{64} SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.7165.2.1.25 NAME 'sambaNTPassword' DESC 'MD4 hash of the unicode password'
  EQUALITY caseIgnoreIA5Match SYNTAX 1.3.6.1.4.1.1466.115.121.1.26{32} SINGLE-VALUE )
objectclass ( 1.3.6.1.4.1.7165.2.2.6 NAME 'sambaSamAccount' SUP top AUXILIARY
  DESC 'Samba 3.0 Auxilary SAM Account'
  MUST ( uid $ sambaSID ) MAY ( sambaNTPassword ) )
";

pub fn base_ldif() -> String {
    let mut s = format!(
        "dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n\n\
         dn: ou=people,{SUFFIX}\nobjectClass: organizationalUnit\nou: people\n\n\
         dn: ou=groups,{SUFFIX}\nobjectClass: organizationalUnit\nou: groups\n\n"
    );
    for (u, pw) in [("alice", "alicepw"), ("bob", "bobpw"), ("carol", "carolpw")] {
        s += &format!(
            "dn: uid={u},ou=people,{SUFFIX}\nobjectClass: inetOrgPerson\nuid: {u}\ncn: {u}\nsn: {u}\n\
             mail: {u}@example.org\nuserPassword: {pw}\n\n"
        );
    }
    for i in 0..32 {
        s += &format!(
            "dn: uid=user{i},ou=people,{SUFFIX}\nobjectClass: inetOrgPerson\nuid: user{i}\ncn: user{i}\nsn: u\n\
             userPassword: pw{i}\n\n"
        );
    }
    s += &format!(
        "dn: cn=radius-users,ou=groups,{SUFFIX}\nobjectClass: groupOfNames\ncn: radius-users\n\
         member: uid=alice,ou=people,{SUFFIX}\nmember: uid=bob,ou=people,{SUFFIX}\n"
    );
    for i in 0..32 {
        s += &format!("member: uid=user{i},ou=people,{SUFFIX}\n");
    }
    s
}

/// radshard in-process with `extra` TOML appended to a loopback config.
pub struct Radshard {
    pub handle: Option<radshard::dataplane::ServerHandle>,
    pub port: u16,
    /// The config text minus `extra`, for reloads.
    pub base: String,
    _dir: tempfile::TempDir,
}

impl Radshard {
    pub fn start(extra: &str) -> Radshard {
        Radshard::start_with_shards(2, extra)
    }

    pub fn start_with_shards(shards: usize, extra: &str) -> Radshard {
        let dir = tempfile::tempdir().unwrap();
        let (auth, acct) = (free_udp_port(), free_udp_port());
        let base = format!(
            "[server]\nshards = {shards}\nlisten_auth = [\"127.0.0.1:{auth}\"]\nlisten_acct = [\"127.0.0.1:{acct}\"]\n\
             [accounting]\ndirectory = {:?}\n\
             [[clients]]\nname = \"localhost\"\naddresses = [\"127.0.0.1\"]\nsecret = \"testing123\"\ngroup = \"lab\"\n",
            dir.path().join("acct").display().to_string()
        );
        let text = format!("{base}{extra}");
        let config = radshard::config::Config::from_str(&text, Path::new("test.toml"), None)
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        let handle = radshard::dataplane::start(&config).expect("start radshard");
        Radshard {
            handle: Some(handle),
            port: auth,
            base,
            _dir: dir,
        }
    }

    /// Reloads with `extra` in place of the original (as SIGHUP would); returns the settings
    /// that need a restart.
    pub fn reload(&self, extra: &str) -> Vec<&'static str> {
        let text = format!("{}{extra}", self.base);
        let config = radshard::config::Config::from_str(&text, Path::new("test.toml"), None)
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        self.handle.as_ref().unwrap().reload(&config).unwrap()
    }

    pub fn backend(&self) -> &radshard::metrics::BackendMetrics {
        self.handle
            .as_ref()
            .and_then(|h| h.backend.as_ref())
            .expect("backend configured")
            .metrics()
    }

    pub fn drops(&self, reason: radshard::metrics::DropReason) -> u64 {
        let h = self.handle.as_ref().unwrap();
        radshard::metrics::total(&h.metrics, |m| m.dropped(reason))
    }
}

impl Drop for Radshard {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            h.stop();
        }
    }
}

/// The reply codes radclient received for `requests` (one attribute block each), sent with
/// `parallel` in flight; unanswered requests are missing from the result.
pub fn radclient(
    port: u16,
    requests: &[String],
    parallel: usize,
    timeout_s: u32,
    retries: u32,
) -> Vec<String> {
    let body: String = requests
        .iter()
        .map(|r| format!("{r}\nMessage-Authenticator = 0x00\n\n"))
        .collect();
    let mut c = Command::new("radclient")
        .args([
            "-x",
            "-p",
            &parallel.to_string(),
            "-t",
            &timeout_s.to_string(),
            "-r",
            &retries.to_string(),
        ])
        .arg(format!("127.0.0.1:{port}"))
        .args(["auth", "testing123"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("radclient must be installed (apt-get install freeradius-utils)");
    c.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
    let out = c.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            l.strip_prefix("Received ")
                .map(|r| r.split(' ').next().unwrap_or("").to_string())
        })
        .collect()
}

/// One PAP request: the reply code and radclient's whole output (for attributes).
pub fn pap(port: u16, user: &str, password: &str) -> (Option<String>, String) {
    let attrs = format!(
        "User-Name = \"{}\"\nUser-Password = \"{}\"\nNAS-Port-Type = Virtual\n",
        user.replace('\\', "\\\\").replace('"', "\\\""),
        password
    );
    ask(port, &attrs)
}

/// One request through radclient with arbitrary attributes (values quoted by the caller) and
/// a Message-Authenticator, waiting up to 5 s: the reply code and radclient's whole output.
pub fn ask(port: u16, attrs: &str) -> (Option<String>, String) {
    ask_within(port, 5, attrs)
}

/// [`ask`], waiting up to `timeout_s` seconds for the reply.
pub fn ask_within(port: u16, timeout_s: u32, attrs: &str) -> (Option<String>, String) {
    let mut c = Command::new("radclient")
        .args(["-x", "-t", &timeout_s.to_string(), "-r", "1"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["auth", "testing123"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("radclient must be installed (apt-get install freeradius-utils)");
    c.stdin
        .take()
        .unwrap()
        .write_all(format!("{attrs}Message-Authenticator = 0x00\n").as_bytes())
        .unwrap();
    let out = c.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let code = text.lines().find_map(|l| {
        l.strip_prefix("Received ")
            .map(|r| r.split(' ').next().unwrap_or("").to_string())
    });
    (code, text)
}

/// `Class = "<text>"` as radclient prints it (octets in hex).
pub fn radclient_class(text: &str) -> String {
    let hex: String = text.bytes().map(|b| format!("{b:02x}")).collect();
    format!("Class = 0x{hex}")
}

/// A policy for the group radius-users with LDAP as the primary source, MFA required, `extra`
/// lines and the reply `Class = "<class>"`.
pub fn ldap_mfa_policy(name: &str, extra: &str, class: &str) -> String {
    format!(
        "\n[[policies]]\nname = \"{name}\"\ngroups = [\"radius-users\"]\nauth_sources = [\"ldap\"]\n\
         {extra}mfa = true\nreply = {{ Class = \"{class}\" }}\n"
    )
}

/// The policy most directory MFA tests use: [`ldap_mfa_policy`] `radius-users-mfa`, reply
/// `Class = "radius-users"`.
pub fn radius_users_mfa_policy() -> String {
    ldap_mfa_policy("radius-users-mfa", "", "radius-users")
}

pub fn ldap_section(servers: &[String], extra: &str) -> String {
    let list: Vec<String> = servers.iter().map(|s| format!("{s:?}")).collect();
    format!(
        "[ldap]\nservers = [{}]\nbind_dn = \"{ADMIN}\"\nbind_password = \"adminpw\"\nbase_dn = \"{SUFFIX}\"\n\
         user_filter = \"(&(objectClass=inetOrgPerson)(uid={{user}}))\"\nalternate_login_attribute = \"mail\"\n\
         connect_timeout = \"3s\"\n{extra}\n",
        list.join(", ")
    )
}
