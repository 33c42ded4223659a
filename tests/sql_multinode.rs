//! Several radshard nodes on one PostgreSQL 15 (started by the test in a temp dir, with
//! FreeRADIUS's schema.sql): an MFA challenge started on node A is answered on node B (one
//! shared State key file; the State carries the challenge sealed), and the same State
//! replayed on A is refused (redeemed once for all nodes in `radshard_state_redeemed`).

mod common;

use std::os::unix::fs::PermissionsExt;

use common::mfa::*;
use common::postgres::Postgres;
use common::*;
use radshard::proto::{attr, Code};

/// A shared State key file (hex, 32 octets, mode 600) in `dir`.
fn key_file(dir: &std::path::Path, hex_octet: &str) -> String {
    let path = dir.join(format!("state-{hex_octet}.key"));
    std::fs::write(
        &path,
        format!("# shared by every node\n{}\n", hex_octet.repeat(32)),
    )
    .expect("key file");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    path.display().to_string()
}

fn node_body(pg_port: u16, key: &str) -> String {
    format!(
        r#"{MFA_CLIENT}{alice}{policy}
[mfa]
provider = "totp"
state_key_file = "{key}"

[backend]
deadline = "3s"

[sql]
server = "127.0.0.1"
port = {pg_port}
database = "radius"
login = "radius"
password = "radpass"
users = false
shared_state = true
"#,
        alice = staff_user("alice", "alice-pw", Some(ALICE_TOTP)),
        policy = staff_mfa_policy("staff-vpn", ""),
    )
}

#[test]
fn challenge_started_on_one_node_is_answered_on_another_once() {
    let pg = Postgres::start();
    let keys = tempfile::tempdir().expect("tempdir");
    let key = key_file(keys.path(), "5a");
    let a = TestServer::start(1, &node_body(pg.port, &key));
    let b = TestServer::start(1, &node_body(pg.port, &key));
    let mut nas = Nas::new();
    base_step();

    // Started on A: the State is sealed (longer than a node-local one).
    let (_, _, state) = nas.challenge(&a, "alice", "alice-pw");
    assert!(
        state.len() > 56 && state.len() <= 253,
        "sealed State: {}",
        state.len()
    );

    // Answered on B → Accept, with the policy's attributes (B knew nothing of it).
    let (reply, code) = nas.ask(&b, "alice", &code_at(ALICE_TOTP, 0), Some(&state));
    assert_eq!(code, Code::AccessAccept, "answered on the other node");
    assert_eq!(
        reply_attr(&reply, attr::SESSION_TIMEOUT),
        session_timeout_3600()
    );
    // Replayed on A (which still holds the challenge) → Reject: the database says redeemed.
    let (_, code) = nas.ask(&a, "alice", &code_at(ALICE_TOTP, 1), Some(&state));
    assert_eq!(code, Code::AccessReject, "replayed on the issuing node");
    // And on B again → Reject.
    let (_, code) = nas.ask(&b, "alice", &code_at(ALICE_TOTP, 1), Some(&state));
    assert_eq!(code, Code::AccessReject, "replayed on the answering node");
    assert_eq!(pg.sql("SELECT count(*) FROM radshard_state_redeemed"), "1");

    // A challenge answered on its own node works as before, once.
    let (_, _, state2) = nas.challenge(&a, "alice", "alice-pw");
    let (_, code) = nas.ask(&a, "alice", &code_at(ALICE_TOTP, 1), Some(&state2));
    assert_eq!(code, Code::AccessAccept, "answered on the issuing node");
    let (_, code) = nas.ask(&b, "alice", &code_at(ALICE_TOTP, 2), Some(&state2));
    assert_eq!(code, Code::AccessReject, "then replayed on the other");

    // A node with another key does not know the State at all.
    let other_key = key_file(keys.path(), "a5");
    let c = TestServer::start(1, &node_body(pg.port, &other_key));
    let (_, _, state3) = nas.challenge(&a, "alice", "alice-pw");
    let (_, code) = nas.ask(&c, "alice", &code_at(ALICE_TOTP, 0), Some(&state3));
    assert_eq!(code, Code::AccessReject, "another key");
    assert_eq!(pg.sql("SELECT count(*) FROM radshard_state_redeemed"), "2");
}
