//! MS-CHAP v1 and v2 against local users, end to end: FreeRADIUS's `radtest -t mschap`
//! (v1) and `radclient` with a precomputed MS-CHAP2-Response as real peers, and a v2 client
//! of our own that checks the authenticator response `S=` and decrypts the MPPE keys against
//! the RFC 3079 derivation. Also: MS-CHAP-Error codes, nt_hash users, hashed users, and no
//! secret in the server's debug log.

mod common;

use std::process::Stdio;

use common::mschap::*;
use common::*;
use radshard::proto::crypto::mschap::{
    authenticator_response, challenge_hash, challenge_response, nt_password_hash,
    nt_password_hash_hash, server_mppe_keys,
};
use radshard::proto::{
    attr, Code, PacketBuilder, MICROSOFT, MS_CHAP2_RESPONSE, MS_CHAP2_SUCCESS, MS_CHAP_CHALLENGE,
    MS_CHAP_ERROR, MS_MPPE_SEND_KEY,
};

const BODY: &str = r#"
[[clients]]
name = "localhost"
addresses = ["127.0.0.1"]
secret = "testing123"

[[users]]
name = "alice"
password = "alice-pw"
reply = { Reply-Message = "Welcome, alice" }

# MD4(UTF-16LE "clientPass"), the password of RFC 2759 §9.2
[[users]]
name = "nthash"
nt_hash = "44EBBA8D5312B8D611474411F56989AE"

[[users]]
name = "hashed"
password_hash = "$6$saltsalt$pauPrmdmG4BTE9h2HPmywiw152IFch6BJCEsaY6D.PLTfpV8sqvXwWdyfsgVgozkYH9B80bAip/08R2BPH2xk/"
"#;

#[test]
fn v2_accept_checks_s_and_the_mppe_keys() {
    let server = TestServer::start(2, BODY);
    let sec = secret(SECRET);
    let c = RadClient::new();
    for (user, password, hashed_as) in [
        ("alice", "alice-pw", "alice"),
        ("nthash", "clientPass", "nthash"),
    ] {
        let login = V2::new(user, password);
        let req = login.request(&sec, 7, user);
        let reply = c.exchange(&req, server.auth).expect("a reply");
        assert_eq!(
            check_reply(&reply, &req, &sec),
            Code::AccessAccept,
            "{user}"
        );
        login.assert_accepted(&reply, &req, &sec, password, hashed_as);
    }
}

#[test]
fn v2_domain_prefix_is_not_hashed_and_rejects_say_691() {
    let server = TestServer::start(
        1,
        &format!("{BODY}\n[[users]]\nname = \"EXAMPLE\\\\carol\"\npassword = \"carol-pw\"\n"),
    );
    let sec = secret(SECRET);
    let c = RadClient::new();
    // DOMAIN\user: the peer hashed "carol"; the account is looked up as sent.
    let login = V2::new("EXAMPLE\\carol", "carol-pw");
    let req = login.request(&sec, 1, "EXAMPLE\\carol");
    let reply = c.exchange(&req, server.auth).expect("reply");
    assert_eq!(check_reply(&reply, &req, &sec), Code::AccessAccept);

    for (user, password) in [("alice", "wrong"), ("nobody", "x")] {
        let login = V2::new(user, password);
        let req = login.request(&sec, 2, user);
        let reply = c.exchange(&req, server.auth).expect("reply");
        assert_eq!(check_reply(&reply, &req, &sec), Code::AccessReject);
        let error = vsa(&reply, MS_CHAP_ERROR).expect("MS-CHAP-Error");
        assert_eq!(error[0], login.ident);
        let expected = format!(
            "E=691 R=0 C={} V=3",
            login
                .auth_challenge
                .iter()
                .map(|b| format!("{b:02X}"))
                .collect::<String>()
        );
        assert_eq!(String::from_utf8_lossy(&error[1..]), expected);
        assert!(vsa(&reply, MS_CHAP2_SUCCESS).is_none());
        assert!(vsa(&reply, MS_MPPE_SEND_KEY).is_none());
    }
    // A crypt hash cannot answer MS-CHAP: rejected, not crashed.
    let login = V2::new("hashed", "pw");
    let req = login.request(&sec, 3, "hashed");
    let reply = c.exchange(&req, server.auth).expect("reply");
    assert_eq!(check_reply(&reply, &req, &sec), Code::AccessReject);
    // A response without its challenge is malformed: rejected.
    let mut buf = [0u8; 4096];
    let mut b =
        PacketBuilder::request(&mut buf, Code::AccessRequest, 4, &random_authenticator()).unwrap();
    b.message_authenticator().unwrap();
    b.attr(attr::USER_NAME, b"alice").unwrap();
    b.vsa(
        MICROSOFT,
        MS_CHAP2_RESPONSE,
        &V2::new("alice", "alice-pw").response_value(),
    )
    .unwrap();
    let req = b.finish(&sec).unwrap().to_vec();
    let reply = c.exchange(&req, server.auth).expect("reply");
    assert_eq!(check_reply(&reply, &req, &sec), Code::AccessReject);
}

#[test]
fn radtest_mschap_v1_accepts_and_rejects() {
    let server = TestServer::start(2, BODY);
    let target = server.auth.to_string();
    let run = |user: &str, password: &str| {
        stdout_of(&run_tool(
            "radtest",
            &["-t", "mschap", "-x", user, password, &target, "0", SECRET],
            "",
            std::time::Duration::from_secs(20),
        ))
    };
    let out = run("alice", "alice-pw");
    assert!(out.contains("Received Access-Accept"), "{out}");
    assert!(out.contains("MS-CHAP-MPPE-Keys"), "{out}");
    assert!(out.contains("MS-MPPE-Encryption-Policy"), "{out}");
    let out = run("nthash", "clientPass");
    assert!(out.contains("Received Access-Accept"), "{out}");
    let out = run("alice", "alice-wrong");
    assert!(out.contains("Received Access-Reject"), "{out}");
    assert!(out.contains("E=691 R=0"), "{out}");
}

#[test]
fn radclient_with_a_precomputed_ms_chap2_response() {
    let server = TestServer::start(1, BODY);
    let login = V2::new("alice", "alice-pw");
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let attrs = format!(
        "User-Name = \"alice\"\nMS-CHAP-Challenge = 0x{}\nMS-CHAP2-Response = 0x{}\nMessage-Authenticator = 0x00\n",
        hex(&login.auth_challenge),
        hex(&login.response_value())
    );
    let out = stdout_of(&radclient(server.auth, "auth", SECRET, &attrs));
    assert!(out.contains("Received Access-Accept"), "{out}");
    // radclient prints MS-CHAP2-Success as octets: Ident then "S=<40 hex>".
    let nt_key = nt_password_hash_hash(&nt_password_hash(b"alice-pw").unwrap());
    let s = authenticator_response(
        &nt_key,
        &login.nt_response,
        &login.peer_challenge,
        &login.auth_challenge,
        b"alice",
    );
    let text = format!(
        "S={}",
        s.iter().map(|b| format!("{b:02X}")).collect::<String>()
    );
    let printed = format!("{:02x}{}", login.ident, hex(text.as_bytes()));
    assert!(out.contains(&printed), "S= not in\n{out}");
    assert!(
        out.contains("MS-MPPE-Send-Key") && out.contains("MS-MPPE-Recv-Key"),
        "{out}"
    );
}

/// The crypto the tests above rely on, checked against itself once more from first
/// principles: v2's NT-Response is v1's DES over the ChallengeHash.
#[test]
fn v2_response_is_des_over_the_challenge_hash() {
    let login = V2::new("alice", "alice-pw");
    let hash = nt_password_hash(b"alice-pw").unwrap();
    let ch = challenge_hash(&login.peer_challenge, &login.auth_challenge, b"alice");
    assert_eq!(challenge_response(&ch, &hash), login.nt_response);
}

#[test]
fn no_secret_in_the_debug_log() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("r.toml");
    std::fs::write(&config, config_text(1, "", dir.path(), BODY)).unwrap();
    let log_path = dir.path().join("log");
    let log = std::fs::File::create(&log_path).unwrap();
    let server = ChildServer::spawn_logging(
        &config,
        dir.path(),
        &["--log-level", "debug"],
        Stdio::from(log),
    );
    let sec = secret(SECRET);
    let c = RadClient::new();
    let mut secrets = Vec::new();
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    for (password, want) in [
        ("alice-pw", Code::AccessAccept),
        ("wrong-pw-7731", Code::AccessReject),
    ] {
        let login = V2::new("alice", password);
        let req = login.request(&sec, 9, "alice");
        let reply = c.exchange(&req, server.auth).expect("reply");
        assert_eq!(check_reply(&reply, &req, &sec), want);
        let hash = nt_password_hash(password.as_bytes()).unwrap();
        let nt_key = nt_password_hash_hash(&hash);
        let keys = server_mppe_keys(&nt_key, &login.nt_response);
        for s in [
            &hash[..],
            &nt_key,
            &login.nt_response,
            &keys.send,
            &keys.recv,
        ] {
            secrets.push(hex(s));
            secrets.push(format!("{s:?}"));
        }
        secrets.push(password.to_string());
    }
    drop(server);
    let text = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        text.contains("method=\"mschapv2\""),
        "decisions logged:\n{text}"
    );
    for s in secrets {
        assert!(
            !text.to_lowercase().contains(&s.to_lowercase()),
            "{s} in the log"
        );
    }
}

/// A password change (MS-CHAP2-CPW) is not offered: refused with E=709, never accepted.
#[test]
fn v2_password_change_is_refused_with_709() {
    let server = TestServer::start(1, BODY);
    let sec = secret(SECRET);
    let c = RadClient::new();
    let challenge: [u8; 16] = rand::random();
    let mut cpw = [0u8; 68];
    cpw[0] = 7;
    cpw[1] = 42;
    let mut buf = [0u8; 4096];
    let mut b =
        PacketBuilder::request(&mut buf, Code::AccessRequest, 1, &random_authenticator()).unwrap();
    b.message_authenticator().unwrap();
    b.attr(attr::USER_NAME, b"alice").unwrap();
    b.vsa(MICROSOFT, MS_CHAP_CHALLENGE, &challenge).unwrap();
    b.vsa(MICROSOFT, radshard::proto::MS_CHAP2_CPW, &cpw)
        .unwrap();
    let req = b.finish(&sec).unwrap().to_vec();
    let reply = c.exchange(&req, server.auth).expect("reply");
    assert_eq!(check_reply(&reply, &req, &sec), Code::AccessReject);
    let error = vsa(&reply, MS_CHAP_ERROR).expect("MS-CHAP-Error");
    assert_eq!(error[0], 42, "the CPW's Ident");
    assert!(error[1..].starts_with(b"E=709 R=0 C="), "{error:?}");
}
