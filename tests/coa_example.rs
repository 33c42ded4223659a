//! `config/coa.toml` as shipped, with hostapd as the NAS whose DAS it names: copied next to
//! a PKI made by `radshard certs` (the file's `certs/` paths) and its token file, its ports
//! (1812, 1813, the DAS's 3799, the API's 9813) moved to free ones (tests run side by side),
//! the accounting directory to a temporary one, and nothing else changed. Then the commands
//! its header documents: `radshard sessions --config`, `radshard disconnect --config --user
//! alice` (exit 0 on the ACK; "no session" and non-zero once alice is gone).

mod common;

use std::process::Command;
use std::time::Duration;

use common::hostapd::{Nas, NasSetup};
use common::*;

const SHIPPED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/coa.toml");
const TOKENS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/coa-tokens");

fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "config/coa.toml names {from} once"
    );
    text.replace(from, to)
}

fn cli(config: &std::path::Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_radshard"))
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .expect("run the CLI");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn the_shipped_coa_config_runs_as_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let out = Command::new(env!("CARGO_BIN_EXE_radshard"))
        .args(["certs", "--out"])
        .arg(d.join("certs"))
        .output()
        .expect("radshard certs");
    assert!(out.status.success());
    std::fs::copy(TOKENS, d.join("coa-tokens")).expect("token file");

    let (auth, acct, das, api) = (
        free_udp_port(),
        free_udp_port(),
        free_udp_port(),
        free_tcp_port(),
    );
    let mut text = std::fs::read_to_string(SHIPPED).expect("config/coa.toml");
    for (from, to) in [
        ("\"127.0.0.1:1812\"", format!("\"127.0.0.1:{auth}\"")),
        ("\"127.0.0.1:1813\"", format!("\"127.0.0.1:{acct}\"")),
        ("\"127.0.0.1:3799\"", format!("\"127.0.0.1:{das}\"")),
        ("\"127.0.0.1:9813\"", format!("\"127.0.0.1:{api}\"")),
        (
            "\"/var/log/radshard/accounting\"",
            format!("{:?}", d.join("acct").display().to_string()),
        ),
    ] {
        text = replace_once(&text, from, &to);
    }
    let config = d.join("coa.toml");
    std::fs::write(&config, text).expect("config");
    let mut server = Command::new(env!("CARGO_BIN_EXE_radshard"))
        .args(["serve", "--config"])
        .arg(&config)
        .args(["--metrics-listen", "127.0.0.1:0", "--log-level", "warn"])
        .spawn()
        .expect("serve");
    let _kill = KillOnDrop(&mut server);
    assert!(
        wait_until(Duration::from_secs(15), || cli(&config, &["sessions"]).0
            == 0),
        "the API answers"
    );
    let (code, said) = cli(&config, &["disconnect", "--user", "alice"]);
    assert_ne!(code, 0);
    assert!(said.contains("no session"), "{said}");

    let ca = d.join("certs/ca.pem");
    let Some(nas) = Nas::start(
        &d.join("hostapd"),
        &NasSetup {
            auth: format!("127.0.0.1:{auth}").parse().unwrap(),
            acct: format!("127.0.0.1:{acct}").parse().unwrap(),
            secret: "testing123",
            das_port: das,
            das_secret: "dassecret",
            identity: "alice",
            password: "alice-pw",
            ca: &ca,
        },
    ) else {
        eprintln!("skipping the NAS part: cannot create network namespaces here");
        return;
    };
    assert!(
        nas.wait_supplicant("CTRL-EVENT-EAP-SUCCESS", Duration::from_secs(20)),
        "PEAP through hostapd:\n{}",
        nas.hostapd_log()
    );
    assert!(
        wait_until(Duration::from_secs(10), || {
            let (code, said) = cli(&config, &["sessions", "--user", "alice"]);
            code == 0 && said.contains("alice")
        }),
        "alice's session is listed"
    );
    let (code, said) = cli(&config, &["disconnect", "--user", "alice"]);
    assert_eq!(code, 0, "ACK: {said}\n{}", nas.hostapd_log());
    assert!(nas.wait_hostapd("AP-STA-DISCONNECTED", Duration::from_secs(5)));
}

struct KillOnDrop<'a>(&'a mut std::process::Child);

impl Drop for KillOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
