//! A throwaway FreeRADIUS 3.2 as a plain home server: an auth and an accounting listener on
//! free 127.0.0.1 ports, client 127.0.0.1/testing123 (Message-Authenticator required),
//! Status-Server answered on both, PAP and MS-CHAP against a `users` file the test writes,
//! and every request it receives written to a detail file the test reads back (what reached
//! the home server, attribute by attribute). Killed and reaped on drop; restartable on the
//! same ports (a home server that goes away and comes back).
//!
//! FreeRADIUS is required: scripts/test.sh installs it, so a missing one is a failure.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{freeradius, ports};

/// After [`freeradius::radiusd_head`].
const CONF: &str = r#"
cleanup_delay = 1
max_requests = 65536
hostname_lookups = no
proxy_requests = no
log {
    destination = files
    file = ${logdir}/radius.log
    colourise = no
    auth = no
}
security {
    allow_core_dumps = no
    max_attributes = 200
    reject_delay = 0
    status_server = yes
}
thread pool {
    start_servers = 2
    max_servers = 2
    min_spare_servers = 2
    max_spare_servers = 2
    max_requests_per_server = 0
    max_queue_size = 65536
}
client localhost {
    ipaddr = 127.0.0.1
    secret = testing123
    require_message_authenticator = yes
}
modules {
    always ok {
        rcode = ok
    }
    files {
        filename = ${confdir}/users
    }
    pap {
    }
    mschap {
    }
    detail auth_log {
        filename = ${radacctdir}/auth-detail
        permissions = 0600
        header = "%t"
        locking = no
    }
    detail acct_log {
        filename = ${radacctdir}/acct-detail
        permissions = 0600
        header = "%t"
        locking = no
    }
}
server home {
    listen {
        type = auth
        ipaddr = 127.0.0.1
        port = @AUTH@
        # The default 208 KB buffer overflows with a few hundred requests in flight.
        recv_buff = 4194304
    }
    listen {
        type = acct
        ipaddr = 127.0.0.1
        port = @ACCT@
        recv_buff = 4194304
    }
    authorize {
        Autz-Type Status-Server {
            ok
        }
        auth_log
        files
        mschap
        pap
    }
    authenticate {
        Auth-Type PAP {
            pap
        }
        Auth-Type MS-CHAP {
            mschap
        }
    }
    preacct {
    }
    accounting {
        acct_log
    }
    post-auth {
    }
}
"#;

/// One request as the home server's detail file recorded it: attribute names and values
/// (strings unquoted), in order.
pub type Record = Vec<(String, String)>;

/// The value of the first `name` in `record`.
pub fn field<'a>(record: &'a Record, name: &str) -> Option<&'a str> {
    record
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// A FreeRADIUS home server child process with a private raddb.
pub struct FreeRadiusHome {
    child: Option<Child>,
    pub auth: SocketAddr,
    pub acct: SocketAddr,
    dir: tempfile::TempDir,
}

impl FreeRadiusHome {
    /// Writes `users` (FreeRADIUS `users` file syntax) and starts the server on free ports.
    pub fn start(users: &str) -> FreeRadiusHome {
        let dir = tempfile::tempdir().expect("tempdir");
        for d in ["log", "run", "radacct"] {
            std::fs::create_dir(dir.path().join(d)).expect("mkdir");
        }
        std::fs::copy(
            "/etc/freeradius/3.0/dictionary",
            dir.path().join("dictionary"),
        )
        .expect(
            "these tests need the FreeRADIUS 3.2 server: apt-get install -y freeradius \
             (/etc/freeradius/3.0/dictionary is missing)",
        );
        std::fs::write(dir.path().join("users"), users).expect("users");
        let (auth, acct) = (ports::free_udp_port(), ports::free_udp_port());
        let conf = freeradius::radiusd_head(dir.path(), "${confdir}/mods-config")
            + &CONF
                .replace("@DIR@", &dir.path().display().to_string())
                .replace("@AUTH@", &auth.to_string())
                .replace("@ACCT@", &acct.to_string());
        std::fs::write(dir.path().join("radiusd.conf"), conf).expect("radiusd.conf");
        let mut home = FreeRadiusHome {
            child: None,
            auth: ([127, 0, 0, 1], auth).into(),
            acct: ([127, 0, 0, 1], acct).into(),
            dir,
        };
        home.restart();
        home
    }

    /// Starts (again) on the same ports and waits until it is ready.
    pub fn restart(&mut self) {
        self.kill();
        // A fresh log, so readiness is this run's.
        let _ = std::fs::remove_file(self.log_path());
        let child = Command::new("freeradius")
            .arg("-f")
            .arg("-d")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("these tests need the FreeRADIUS 3.2 server: apt-get install -y freeradius");
        self.child = Some(child);
        self.wait_ready();
    }

    /// Stops it (a home server that went away).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn log_path(&self) -> std::path::PathBuf {
        self.dir.path().join("log/radius.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.log().contains("Ready to process requests") {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("freeradius exited ({status}):\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("freeradius not ready after 20 s:\n{}", self.log());
    }

    /// Every Access-Request it has received (Status-Server checks are not recorded), oldest
    /// first.
    pub fn auth_requests(&self) -> Vec<Record> {
        read_detail(&self.dir.path().join("radacct/auth-detail"))
    }

    /// Every Accounting-Request it has received, oldest first.
    pub fn acct_requests(&self) -> Vec<Record> {
        read_detail(&self.dir.path().join("radacct/acct-detail"))
    }
}

impl Drop for FreeRadiusHome {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Parses a detail file: records separated by blank lines, each a timestamp line followed by
/// `\tName = value` lines.
fn read_detail(path: &Path) -> Vec<Record> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.split("\n\n")
        .filter(|r| !r.trim().is_empty())
        .map(|r| {
            r.lines()
                .skip(1)
                .filter_map(|l| l.trim().split_once(" = "))
                .map(|(n, v)| (n.to_string(), v.trim_matches('"').to_string()))
                .collect()
        })
        .collect()
}
