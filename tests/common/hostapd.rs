//! hostapd as a real 802.1X NAS (wired driver) with its Dynamic Authorization Server, and a
//! `wpa_supplicant -Dwired` peer in a network namespace, as `shared/recipes/hostapd-das.md`
//! measured: hostapd's `nas` end of a veth pair stays in the test's namespace, the peer's end
//! moves into a namespace this harness creates. RADIUS and the DAS are on 127.0.0.1.
//!
//! [`Nas::start`] returns `None` (the caller skips, saying why) where namespaces cannot be
//! made. Everything it started is stopped on drop: both processes killed by pid, the
//! namespace deleted (which removes the pair).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What hostapd is pointed at, and how the peer logs in.
pub struct NasSetup<'a> {
    pub auth: std::net::SocketAddr,
    pub acct: std::net::SocketAddr,
    pub secret: &'a str,
    pub das_port: u16,
    pub das_secret: &'a str,
    /// PEAP-MSCHAPv2 as `identity` (inner) with `anonymous` outside.
    pub identity: &'a str,
    pub password: &'a str,
    pub ca: &'a Path,
}

pub struct Nas {
    dir: PathBuf,
    netns: String,
    link: String,
    hostapd: Option<Child>,
    supplicant: Option<Child>,
}

fn run(cmd: &[&str]) -> bool {
    Command::new(cmd[0])
        .args(&cmd[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl Nas {
    /// Starts hostapd and the peer; `None` when a namespace or the veth pair cannot be made
    /// (not root, no CAP_NET_ADMIN) — the only part a test may skip.
    pub fn start(dir: &Path, s: &NasSetup<'_>) -> Option<Nas> {
        let tag = std::process::id() % 100_000;
        let netns = format!("rsup{tag}");
        let link = format!("rnas{tag}");
        let peer = format!("rsup{tag}");
        let _ = run(&["ip", "netns", "del", &netns]);
        let _ = run(&["ip", "link", "del", &link]);
        if !run(&["ip", "netns", "add", &netns]) {
            return None;
        }
        let mut nas = Nas {
            dir: dir.to_path_buf(),
            netns: netns.clone(),
            link: link.clone(),
            hostapd: None,
            supplicant: None,
        };
        let ok = run(&[
            "ip", "link", "add", &link, "type", "veth", "peer", "name", &peer,
        ]) && run(&["ip", "link", "set", &peer, "netns", &netns])
            && run(&["ip", "link", "set", &link, "up"])
            && run(&["ip", "-n", &netns, "link", "set", &peer, "up"])
            && run(&["ip", "-n", &netns, "link", "set", "lo", "up"]);
        if !ok {
            return None;
        }
        std::fs::create_dir_all(dir).expect("hostapd dir");
        let conf = dir.join("hostapd.conf");
        std::fs::write(
            &conf,
            format!(
                "interface={link}\ndriver=wired\nieee8021x=1\neap_reauth_period=0\n\
                 use_pae_group_addr=1\nown_ip_addr=127.0.0.1\nnas_identifier=hapd1\n\
                 auth_server_addr={}\nauth_server_port={}\nauth_server_shared_secret={}\n\
                 acct_server_addr={}\nacct_server_port={}\nacct_server_shared_secret={}\n\
                 radius_das_port={}\nradius_das_client=127.0.0.1 {}\n\
                 ctrl_interface={}\n",
                s.auth.ip(),
                s.auth.port(),
                s.secret,
                s.acct.ip(),
                s.acct.port(),
                s.secret,
                s.das_port,
                s.das_secret,
                dir.join("hctrl").display()
            ),
        )
        .expect("hostapd.conf");
        let sup = dir.join("sup.conf");
        std::fs::write(
            &sup,
            format!(
                "ap_scan=0\nnetwork={{\n  key_mgmt=IEEE8021X\n  eap=PEAP\n  identity=\"{}\"\n  \
                 anonymous_identity=\"anonymous\"\n  password=\"{}\"\n  ca_cert=\"{}\"\n  \
                 phase2=\"auth=MSCHAPV2\"\n  eapol_flags=0\n}}\n",
                s.identity,
                s.password,
                s.ca.display()
            ),
        )
        .expect("sup.conf");
        let log = |name: &str| {
            std::fs::File::create(dir.join(name))
                .map(Stdio::from)
                .expect("log file")
        };
        nas.hostapd = Some(
            Command::new("hostapd")
                .arg("-d")
                .arg(&conf)
                .stdout(log("hostapd.log"))
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn hostapd"),
        );
        // hostapd must own the port before the peer starts talking.
        std::thread::sleep(Duration::from_millis(500));
        nas.supplicant = Some(
            Command::new("ip")
                .args(["netns", "exec", &netns, "wpa_supplicant", "-Dwired", "-i"])
                .arg(&peer)
                .arg("-c")
                .arg(&sup)
                .arg("-d")
                .stdout(log("sup.log"))
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn wpa_supplicant"),
        );
        Some(nas)
    }

    pub fn hostapd_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("hostapd.log")).unwrap_or_default()
    }

    pub fn supplicant_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("sup.log")).unwrap_or_default()
    }

    /// Waits (bounded) for `needle` in hostapd's log.
    pub fn wait_hostapd(&self, needle: &str, limit: Duration) -> bool {
        wait(limit, || self.hostapd_log().contains(needle))
    }

    pub fn wait_supplicant(&self, needle: &str, limit: Duration) -> bool {
        wait(limit, || self.supplicant_log().contains(needle))
    }

    /// The peer's MAC as hostapd's Calling-Station-Id writes it (`02-00-…`, upper case).
    pub fn station(&self) -> String {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.netns, "cat"])
            .arg(format!("/sys/class/net/{}/address", self.netns))
            .output()
            .expect("read peer MAC");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .to_uppercase()
            .replace(':', "-")
    }
}

fn wait(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    cond()
}

impl Drop for Nas {
    fn drop(&mut self) {
        for child in [self.supplicant.take(), self.hostapd.take()]
            .into_iter()
            .flatten()
        {
            let mut child = child;
            let _ = child.kill();
            let _ = child.wait();
        }
        // `ip netns exec` forked wpa_supplicant: make sure it is gone with the namespace.
        if let Ok(out) = Command::new("ip")
            .args(["netns", "pids", &self.netns])
            .output()
        {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = run(&["kill", "-9", pid]);
            }
        }
        let _ = run(&["ip", "netns", "del", &self.netns]);
        let _ = run(&["ip", "link", "del", &self.link]);
    }
}
