//! A throwaway radsecproxy 1.9.2 (/work/shared/recipes/radsecproxy.md): the test writes its
//! configuration, this runs `radsecproxy -f -d 5 -c FILE` with its log in a temporary
//! directory, and kills and reaps it on drop.
//!
//! radsecproxy is required: scripts/test.sh installs it, so a missing one is a failure.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Radsecproxy {
    child: Child,
    dir: tempfile::TempDir,
}

impl Radsecproxy {
    /// Starts radsecproxy on `conf` and waits (at most 10 s) until its log says it listens.
    pub fn start(conf: &str) -> Radsecproxy {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("radsecproxy.conf");
        std::fs::write(&path, conf).expect("conf");
        let log = std::fs::File::create(dir.path().join("log")).expect("log");
        let child = Command::new("radsecproxy")
            .args(["-f", "-d", "5", "-c"])
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup"))
            .stderr(log)
            .spawn()
            .expect("these tests need radsecproxy: apt-get install -y radsecproxy");
        let mut r = Radsecproxy { child, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = r.child.try_wait() {
                panic!("radsecproxy exited ({st}):\n{}", r.log());
            }
            if r.log().contains("createlistener: listening for") {
                return r;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("radsecproxy did not start:\n{}", r.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Sends `sig` (SIGSTOP: a peer that vanished without closing its connections;
    /// SIGCONT: back).
    pub fn signal(&self, sig: i32) {
        let pid = self.child.id() as i32;
        // SAFETY: kill(2) on the pid of our own child, which we have not reaped yet.
        let rc = unsafe { libc::kill(pid, sig) };
        assert_eq!(rc, 0, "kill({pid}, {sig})");
    }

    /// A path inside its directory (for files the configuration names).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for Radsecproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
