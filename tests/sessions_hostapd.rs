//! Sessions against a real NAS: hostapd (wired 802.1X, its DAS on) authenticating a
//! `wpa_supplicant` peer by PEAP-MSCHAPv2 through radshard, in network namespaces the test
//! creates (`tests/common/hostapd.rs`). The peer logs in as `anonymous` outside and `alice`
//! inside; hostapd accounts as `anonymous` and echoes our Class, and the session is alice's.

mod common;

use std::time::Duration;

use common::hostapd::{Nas, NasSetup};
use common::{free_udp_port, ChildServer};

const DAS_SECRET: &str = "dassecret";

struct Setup {
    _dir: tempfile::TempDir,
    dir: std::path::PathBuf,
    server: ChildServer,
    das_port: u16,
}

const TOKEN: &str = "hostapd-test-token-5d41402abc4b2a76";

fn server() -> Setup {
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path().to_path_buf();
    radshard::tls::pki::write_test_pki(&d, radshard::tls::pki::KeyKind::Rsa, false)
        .expect("test PKI");
    let das_port = free_udp_port();
    let admin = common::free_tcp_port();
    let tokens = d.join("tokens");
    std::fs::write(&tokens, format!("{TOKEN}\n")).expect("tokens");
    std::fs::set_permissions(&tokens, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("chmod");
    let config = d.join("radshard.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[[clients]]
name = "hapd"
addresses = ["127.0.0.1"]
secret = "testing123"
das = {{ address = "127.0.0.1:{das_port}", secret = "{DAS_SECRET}" }}

[[users]]
name = "alice"
password = "alice-pw"

[eap]
methods = ["peap"]

[eap.tls]
certificate = "{d}/server.pem"
private_key = "{d}/server.key"

[admin]
listen = "127.0.0.1:{admin}"
token_file = "tokens"
"#,
            d = d.display()
        ),
    )
    .expect("config");
    let acct = d.join("acct");
    let server = ChildServer::spawn(&config, &acct, &["--log-level", "info"]);
    Setup {
        _dir: dir,
        dir: d,
        server,
        das_port,
    }
}

fn nas(s: &Setup) -> Option<Nas> {
    let ca = s.dir.join("ca.pem");
    Nas::start(
        &s.dir.join("hostapd"),
        &NasSetup {
            auth: s.server.auth,
            acct: s.server.acct,
            secret: "testing123",
            das_port: s.das_port,
            das_secret: DAS_SECRET,
            identity: "alice",
            password: "alice-pw",
            ca: &ca,
        },
    )
}

/// `radshard ARGS… --config <the test's config>`: exit code and stdout.
fn cli(s: &Setup, args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_radshard"))
        .args(args)
        .arg("--config")
        .arg(s.dir.join("radshard.toml"))
        .output()
        .expect("run the CLI");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The open sessions, as `radshard sessions --json` lists them.
fn sessions(s: &Setup, user: Option<&str>) -> Vec<serde_json::Value> {
    let mut args = vec!["sessions", "--json"];
    if let Some(u) = user {
        args.extend(["--user", u]);
    }
    let (code, out, err) = cli(s, &args);
    assert_eq!(code, 0, "radshard sessions: {out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    v["sessions"].as_array().cloned().unwrap_or_default()
}

#[test]
fn hostapd_login_session_disconnect_and_naks() {
    let s = server();
    let Some(nas) = nas(&s) else {
        eprintln!("skipping: cannot create network namespaces here (needs root / CAP_NET_ADMIN)");
        return;
    };
    assert!(
        nas.wait_supplicant("CTRL-EVENT-EAP-SUCCESS", Duration::from_secs(20)),
        "the peer's PEAP login through hostapd succeeds:\n{}",
        nas.hostapd_log()
    );
    // hostapd's Accounting Start reaches the table as alice's session, though hostapd
    // accounts as the outer identity.
    assert!(
        common::wait_until(Duration::from_secs(10), || sessions(&s, Some("alice"))
            .len()
            == 1),
        "alice's session is open:\n{}",
        nas.hostapd_log()
    );
    let alice = sessions(&s, Some("alice")).remove(0);
    assert_eq!(alice["accounted_user"], "anonymous");
    assert_eq!(alice["nas_identifier"], "hapd1");
    assert_eq!(alice["calling_station_id"], nas.station());
    let id = alice["id"].as_str().expect("id").to_string();

    // A session hostapd does not know (its Start from the same NAS, with another station and
    // session id): the DAS answers Disconnect-NAK, Session-Context-Not-Found.
    let c = common::RadClient::new();
    let sec = common::secret("testing123");
    let bogus = common::accounting_request(
        &sec,
        9,
        &[
            (radshard::proto::attr::ACCT_STATUS_TYPE, &[0, 0, 0, 1]),
            (radshard::proto::attr::USER_NAME, b"mallory"),
            (radshard::proto::attr::ACCT_SESSION_ID, b"00000000DEADBEEF"),
            (radshard::proto::attr::NAS_IDENTIFIER, b"hapd1"),
            (
                radshard::proto::attr::CALLING_STATION_ID,
                b"02-00-00-00-BE-EF",
            ),
        ],
    );
    assert!(c.exchange(&bogus, s.server.acct).is_some());
    let mallory = sessions(&s, Some("mallory"));
    assert_eq!(mallory.len(), 1);
    let (code, out, err) = cli(
        &s,
        &[
            "disconnect",
            "--session",
            mallory[0]["id"].as_str().unwrap(),
        ],
    );
    assert_ne!(code, 0, "a NAK is a failure: {out}{err}");
    assert!(
        format!("{out}{err}").contains("503"),
        "the NAK's Error-Cause is reported: {out}{err}"
    );

    // A CoA-Request hostapd does not support: NAKed, and reported as such.
    let (code, out, err) = cli(&s, &["coa", "--session", &id, "Session-Timeout=600"]);
    assert_ne!(code, 0, "{out}{err}");
    let said = format!("{out}{err}");
    assert!(
        said.contains("Unsupported-Attribute (401)") || said.contains("(405)"),
        "the CoA-NAK's Error-Cause is reported: {said}"
    );
    assert!(
        !nas.hostapd_log().contains("AP-STA-DISCONNECTED"),
        "still connected"
    );

    // Disconnect alice: hostapd ACKs, drops the station and accounts the Stop, which closes
    // the session.
    let (code, out, err) = cli(&s, &["disconnect", "--user", "alice"]);
    assert_eq!(code, 0, "Disconnect-ACK: {out}{err}\n{}", nas.hostapd_log());
    assert!(
        nas.wait_hostapd("AP-STA-DISCONNECTED", Duration::from_secs(5)),
        "hostapd dropped the station:\n{}",
        nas.hostapd_log()
    );
    assert!(
        common::wait_until(Duration::from_secs(10), || sessions(&s, Some("alice"))
            .is_empty()),
        "hostapd's Accounting Stop closed the session"
    );
    let log = common::read_accounting(&s.dir.join("acct"));
    assert!(log.records.iter().any(|r| {
        r["session"]["id"] == id.as_str() && r["attributes"]["Acct-Status-Type"] == "Stop"
    }));
}
