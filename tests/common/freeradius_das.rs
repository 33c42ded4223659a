//! A throwaway FreeRADIUS 3.2 as a NAS's Dynamic Authorization Server (RFC 5176): a
//! `listen { type = coa }` on a free 127.0.0.1 port, client 127.0.0.1 with [`DAS_SECRET`]
//! (Message-Authenticator required), answering from a script:
//!
//! * Acct-Session-Id [`KNOWN_SESSION`]: ACK, except a CoA-Request carrying
//!   `Filter-Id = "unsupported"`, which is NAK'd with Error-Cause Unsupported-Attribute (401);
//! * any other session: NAK with Error-Cause Session-Context-Not-Found (503).
//!
//! Every request it receives is written to a detail file the test reads back. Killed and
//! reaped on drop. FreeRADIUS is required: scripts/test.sh installs it.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::freeradius_home::Record;
use super::{freeradius, ports};

/// The DAS's shared secret (the NAS side of a client's `das = { secret }`).
pub const DAS_SECRET: &str = "das-secret-0123456789";
/// The one session the scripted NAS knows.
pub const KNOWN_SESSION: &str = "known-session-1";

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
}
security {
    allow_core_dumps = no
    max_attributes = 200
    reject_delay = 0
    status_server = no
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
    secret = @SECRET@
    require_message_authenticator = yes
}
modules {
    always ok {
        rcode = ok
    }
    always reject {
        rcode = reject
    }
    detail coa_log {
        filename = ${radacctdir}/coa-detail
        permissions = 0600
        header = "%t"
        locking = no
    }
}
server coa {
    listen {
        type = coa
        ipaddr = 127.0.0.1
        port = @PORT@
    }
    # Both CoA-Request and Disconnect-Request are processed here; a reject is a NAK.
    recv-coa {
        coa_log
        if (&Acct-Session-Id == "@KNOWN@") {
            if ((&request:Packet-Type == CoA-Request) && (&Filter-Id == "unsupported")) {
                update reply {
                    &Error-Cause := Unsupported-Attribute
                }
                reject
            }
            ok
        }
        else {
            update reply {
                &Error-Cause := Session-Context-Not-Found
            }
            reject
        }
    }
    send-coa {
        ok
    }
}
"#;

/// A FreeRADIUS child process acting as a NAS's DAS.
pub struct FreeRadiusDas {
    child: Option<Child>,
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl FreeRadiusDas {
    pub fn start() -> FreeRadiusDas {
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
        let port = ports::free_udp_port();
        let conf = freeradius::radiusd_head(dir.path(), "${confdir}/mods-config")
            + &CONF
                .replace("@DIR@", &dir.path().display().to_string())
                .replace("@PORT@", &port.to_string())
                .replace("@SECRET@", DAS_SECRET)
                .replace("@KNOWN@", KNOWN_SESSION);
        std::fs::write(dir.path().join("radiusd.conf"), conf).expect("radiusd.conf");
        let child = Command::new("freeradius")
            .arg("-f")
            .arg("-d")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("these tests need the FreeRADIUS 3.2 server: apt-get install -y freeradius");
        let mut das = FreeRadiusDas {
            child: Some(child),
            addr: ([127, 0, 0, 1], port).into(),
            dir,
        };
        das.wait_ready();
        das
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
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("freeradius exited ({status}):\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("freeradius not ready after 20 s:\n{}", self.log());
    }

    /// Every CoA/Disconnect request it has received, oldest first.
    pub fn requests(&self) -> Vec<Record> {
        let text =
            std::fs::read_to_string(self.dir.path().join("radacct/coa-detail")).unwrap_or_default();
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
}

impl Drop for FreeRadiusDas {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
