//! A throwaway Samba AD DC for tests (shared/recipes/samba.md): provisioned in a temp dir,
//! `samba -i` started as a child, users created with samba-tool, killed by `Drop`.
//!
//! The DC binds the fixed AD ports (88, 389, 445, 636 …) on loopback and its winbindd the
//! compiled-in socket /run/samba/winbindd/pipe, so only one can run on a machine: `start`
//! waits while another `samba` runs (another suite's), for up to 15 minutes.
//!
//! `ntlm auth = mschapv2-and-ntlmv2-only` is added (what MS-CHAPv2 through winbind needs);
//! `set_ntlm_auth` and `restart` change it. `wait_mschapv2` waits until winbind accepts an
//! MS-CHAPv2 response: right after a start the DC answers INVALID_SERVER_STATE for a while.

#![allow(dead_code)] // each test file uses part of it

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use radshard::proto::crypto::mschap;

pub const REALM: &str = "EXAMPLE.TEST";
pub const DOMAIN: &str = "EXAMPLE";
pub const ADMIN_PASSWORD: &str = "Adm1n-Passw0rd";

/// Whether the Samba AD DC tools are installed; tests skip with a message when not.
pub fn installed() -> bool {
    ["samba", "samba-tool", "ldapsearch", "ntlm_auth"]
        .iter()
        .all(|tool| {
            Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
}

/// PIDs of running `samba` processes (any, ours included).
fn running_samba() -> Vec<u32> {
    let Ok(out) = Command::new("pgrep").args(["-x", "samba"]).output() else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// Descendants of `pid` (children, grandchildren …) whose command name is `comm`: the DC's
/// winbindd is started by one of samba's task processes, not by the master.
pub fn descendants_named(pid: u32, comm: &str) -> Vec<u32> {
    let parent_of = |p: u32| -> Option<u32> {
        let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
        // After the last ')': state, then ppid.
        stat.rsplit(')')
            .next()?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&p| {
            std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == comm)
        })
        .filter(|&p| {
            let mut cur = p;
            for _ in 0..64 {
                match parent_of(cur) {
                    Some(pp) if pp == pid => return true,
                    Some(pp) if pp > 1 => cur = pp,
                    _ => return false,
                }
            }
            false
        })
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub struct Samba {
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl Samba {
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn conf(&self) -> PathBuf {
        self.dir.path().join("etc/smb.conf")
    }

    /// The samba master's PID while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Runs samba-tool against this DC; panics with its stderr on failure.
    pub fn tool(&self, args: &[&str]) {
        let out = Command::new("samba-tool")
            .args(args)
            .arg("-s")
            .arg(self.conf())
            .output()
            .expect("samba-tool");
        assert!(
            out.status.success(),
            "samba-tool {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Creates `name` with `password` (CN = name), plus any extra samba-tool arguments.
    pub fn create_user(&self, name: &str, password: &str, extra: &[&str]) {
        let mut args = vec!["user", "create", name, password, "--use-username-as-cn"];
        args.extend_from_slice(extra);
        self.tool(&args);
    }

    /// Applies an LDIF modification as Administrator over LDAPS (attributes samba-tool has no
    /// command for, such as userWorkstations or logonHours).
    pub fn ldapmodify(&self, ldif: &str) {
        use std::io::Write;
        let mut child = Command::new("ldapmodify")
            .env("LDAPTLS_REQCERT", "never")
            .args(["-x", "-H", "ldaps://127.0.0.1"])
            .args(["-D", &format!("Administrator@{}", REALM.to_lowercase())])
            .args(["-w", ADMIN_PASSWORD])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ldapmodify");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(ldif.as_bytes())
            .expect("write ldif");
        let out = child.wait_with_output().expect("ldapmodify");
        assert!(
            out.status.success(),
            "ldapmodify: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The DN of a user made by [`Samba::create_user`].
    pub fn user_dn(name: &str) -> String {
        format!("CN={name},CN=Users,DC=example,DC=test")
    }

    /// Provisions a DC and starts it, with password complexity, history and ageing off.
    pub fn start() -> Samba {
        wait_for_free_slot();
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().display().to_string();
        let out = Command::new("samba-tool")
            .args(["domain", "provision", &format!("--targetdir={d}")])
            .args(["--use-rfc2307", &format!("--realm={REALM}")])
            .args([&format!("--domain={DOMAIN}"), "--server-role=dc"])
            .args([
                "--dns-backend=NONE",
                &format!("--adminpass={ADMIN_PASSWORD}"),
            ])
            .args(["--host-ip=127.0.0.1", "--option=interfaces=lo"])
            .arg("--option=bind interfaces only=yes")
            .output()
            .expect("samba-tool");
        assert!(
            out.status.success(),
            "provision: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut s = Samba { child: None, dir };
        std::fs::create_dir_all(s.dir.path().join("log")).expect("log dir");
        let log_line = format!("\tlog file = {d}/log/log.%m");
        s.edit_conf(|lines| {
            for l in lines.iter_mut() {
                if l.trim_start().starts_with("log file") {
                    l.clone_from(&log_line);
                }
            }
        });
        s.set_ntlm_auth("mschapv2-and-ntlmv2-only");
        s.spawn();
        s.tool(&[
            "domain",
            "passwordsettings",
            "set",
            "--complexity=off",
            "--min-pwd-length=1",
            "--history-length=0",
            "--min-pwd-age=0",
            "--max-pwd-age=0",
        ]);
        s
    }

    fn edit_conf(&self, f: impl FnOnce(&mut Vec<String>)) {
        let text = std::fs::read_to_string(self.conf()).expect("smb.conf");
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        f(&mut lines);
        std::fs::write(self.conf(), lines.join("\n") + "\n").expect("write smb.conf");
    }

    /// Sets `ntlm auth` in [global]; takes effect at the next (re)start.
    pub fn set_ntlm_auth(&self, value: &str) {
        let line = format!("\tntlm auth = {value}");
        self.edit_conf(|lines| {
            lines.retain(|l| !l.trim_start().starts_with("ntlm auth"));
            let at = lines
                .iter()
                .position(|l| l.trim() == "[global]")
                .map_or(0, |i| i + 1);
            lines.insert(at, line);
        });
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("samba.log"))
            .expect("samba.log");
        let child = Command::new("samba")
            .args(["-i", "-s"])
            .arg(self.conf())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .expect("samba");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let ok = Command::new("ldapsearch")
                .args(["-x", "-H", "ldap://127.0.0.1", "-s", "base", "-b", ""])
                .arg("defaultNamingContext")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return;
            }
            if let Some(Ok(Some(st))) = self.child.as_mut().map(Child::try_wait) {
                panic!(
                    "samba exited with {st}; see {}/samba.log",
                    self.dir().display()
                );
            }
            assert!(Instant::now() < deadline, "samba did not start");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// SIGTERM to the master (its tasks, winbindd included, exit with it) and wait.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: kill(2) on our own child process.
            unsafe { libc::kill(c.id() as libc::pid_t, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
            // Its tasks may outlive the master by a moment; the ports must be free for the next.
            let deadline = Instant::now() + Duration::from_secs(10);
            while !running_samba().is_empty() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    /// Stops and starts again with the same provision (and the current smb.conf).
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// `ntlm_auth --allow-mschapv2` with a computed MS-CHAPv2 response: Ok(NT key hex) or the
    /// error line.
    pub fn ntlm_auth_mschapv2(&self, user: &str, password: &str) -> Result<String, String> {
        let hash = mschap::nt_password_hash(password.as_bytes()).expect("password");
        let auth = [0x11u8; 16];
        let peer = [0x22u8; 16];
        let challenge = mschap::challenge_hash(&peer, &auth, user.as_bytes());
        let response = mschap::generate_nt_response(&auth, &peer, user.as_bytes(), &hash);
        let out = Command::new("ntlm_auth")
            .arg(format!("--configfile={}", self.conf().display()))
            .args(["--request-nt-key", "--allow-mschapv2"])
            .arg(format!("--username={user}"))
            .arg(format!("--domain={DOMAIN}"))
            .arg(format!("--challenge={}", hex(&challenge)))
            .arg(format!("--nt-response={}", hex(&response)))
            .output()
            .map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        match text.strip_prefix("NT_KEY: ") {
            Some(k) if out.status.success() => Ok(k.to_string()),
            _ => Err(format!(
                "{text} {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )),
        }
    }

    /// Waits until winbind verifies an MS-CHAPv2 response for `user` (INVALID_SERVER_STATE
    /// for a few seconds after a start). Returns how long it took.
    pub fn wait_mschapv2(&self, user: &str, password: &str) -> Duration {
        let start = Instant::now();
        let deadline = start + Duration::from_secs(120);
        loop {
            match self.ntlm_auth_mschapv2(user, password) {
                Ok(_) => return start.elapsed(),
                Err(e) if Instant::now() >= deadline => {
                    panic!("MS-CHAPv2 through winbind never worked: {e}")
                }
                Err(_) => std::thread::sleep(Duration::from_millis(500)),
            }
        }
    }
}

/// Waits while another suite's `samba` runs: the ports and the winbindd socket are shared.
fn wait_for_free_slot() {
    let deadline = Instant::now() + Duration::from_secs(900);
    let mut told = false;
    loop {
        let others = running_samba();
        if others.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "another samba ({others:?}) ran for 15 minutes; not starting a second one"
        );
        if !told {
            eprintln!("waiting: another samba is running ({others:?})");
            told = true;
        }
        std::thread::sleep(Duration::from_secs(3));
    }
}

impl Drop for Samba {
    fn drop(&mut self) {
        self.stop();
    }
}
