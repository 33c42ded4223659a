//! Interoperability with a real peer: FreeRADIUS's radclient and radtest send to a bare UDP
//! listener; what they send must decode, verify with the shared secret, and reveal the right
//! credentials. (The server-level interop tests are in dataplane_freeradius.rs.)

use std::io::Write;
use std::net::UdpSocket;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use radshard::proto::{attr, chap_verify, verify_request, Code, Packet, Secret};

const SECRET: &str = "interop-secret-1";

/// Starts `program args` (which will time out: nobody answers) and returns the first datagram
/// it sent to `sock`.
fn capture(sock: &UdpSocket, mut cmd: Command, stdin: Option<&str>) -> Vec<u8> {
    let mut child: Child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("FreeRADIUS client tools must be installed (apt-get install freeradius-utils)");
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("write");
    }
    drop(child.stdin.take());
    sock.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut buf = [0u8; 4096];
    let got = loop {
        match sock.recv_from(&mut buf) {
            Ok((n, _)) => break buf[..n].to_vec(),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => panic!("no datagram from the FreeRADIUS client: {e}"),
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    got
}

fn listener() -> (UdpSocket, String) {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr = sock.local_addr().expect("addr").to_string();
    (sock, addr)
}

fn radclient(addr: &str, kind: &str) -> Command {
    let mut c = Command::new("radclient");
    c.args(["-r", "1", "-t", "3", addr, kind, SECRET]);
    c
}

#[test]
fn radclient_access_request_with_message_authenticator_verifies() {
    let (sock, addr) = listener();
    let bytes = capture(
        &sock,
        radclient(&addr, "auth"),
        Some("User-Name = \"alice\", User-Password = \"p@ss w0rd\", NAS-Port = 7, Message-Authenticator = 0x00\n"),
    );
    let secret = Secret::new(SECRET).unwrap();
    let packet = Packet::parse(&bytes).expect("decodes");
    assert_eq!(packet.code(), Code::AccessRequest);
    let req = verify_request(packet, &secret, true).expect("Message-Authenticator verifies");
    assert!(req.has_message_authenticator());
    assert_eq!(req.user_name(), Some(&b"alice"[..]));
    let mut out = [0u8; 128];
    assert_eq!(req.user_password(&mut out).unwrap(), b"p@ss w0rd");
    assert_eq!(req.attr(attr::NAS_PORT), Some(&7u32.to_be_bytes()[..]));

    // The same bytes checked with another secret fail.
    let wrong = Secret::new("not-the-secret").unwrap();
    assert!(verify_request(Packet::parse(&bytes).unwrap(), &wrong, true).is_err());
}

#[test]
fn radtest_chap_response_verifies() {
    let (sock, addr) = listener();
    let mut cmd = Command::new("radtest");
    cmd.args(["-t", "chap", "bob", "chap-secret-pw", &addr, "3", SECRET]);
    let bytes = capture(&sock, cmd, None);
    let secret = Secret::new(SECRET).unwrap();
    let req = verify_request(Packet::parse(&bytes).unwrap(), &secret, true).expect("verifies");
    let (ident, response) = req.chap_password().expect("CHAP-Password");
    assert!(chap_verify(
        ident,
        b"chap-secret-pw",
        req.chap_challenge(),
        response
    ));
    assert!(!chap_verify(
        ident,
        b"other",
        req.chap_challenge(),
        response
    ));
}

#[test]
fn radclient_accounting_request_authenticator_verifies() {
    let (sock, addr) = listener();
    let bytes = capture(
        &sock,
        radclient(&addr, "acct"),
        Some("Acct-Status-Type = Start, User-Name = \"alice\", Acct-Session-Id = \"0001\", Framed-IP-Address = 10.1.2.3\n"),
    );
    let secret = Secret::new(SECRET).unwrap();
    let req = verify_request(Packet::parse(&bytes).unwrap(), &secret, false)
        .expect("Request Authenticator verifies");
    assert_eq!(req.code(), Code::AccountingRequest);
    assert_eq!(
        req.attr(attr::ACCT_STATUS_TYPE),
        Some(&1u32.to_be_bytes()[..])
    );
    assert_eq!(req.attr(attr::FRAMED_IP_ADDRESS), Some(&[10, 1, 2, 3][..]));
    let wrong = Secret::new("nope").unwrap();
    assert!(verify_request(Packet::parse(&bytes).unwrap(), &wrong, false).is_err());
}

#[test]
fn radclient_status_server_verifies() {
    let (sock, addr) = listener();
    let bytes = capture(
        &sock,
        radclient(&addr, "status"),
        Some("Message-Authenticator = 0x00\n"),
    );
    let secret = Secret::new(SECRET).unwrap();
    let req = verify_request(Packet::parse(&bytes).unwrap(), &secret, true).expect("verifies");
    assert_eq!(req.code(), Code::StatusServer);
}
