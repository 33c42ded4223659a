//! RadSec (RFC 6614) served by the shards: a rustls client on loopback logs in and sends
//! accounting over one connection; a certificate the CA did not sign, an address that is no
//! TLS client, 1,000 handshakes that never come (slowloris), broken framing, an idle peer and
//! more connections than allowed are each refused or closed, counted, while others are served.

mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use common::radsec_client::{client_config, connect, read_packet};
use common::*;
use radshard::metrics::StreamClose;
use radshard::proto::{attr, Code, Packet};
use radshard::tls::pki::{write_test_pki, KeyKind};

const RADSEC: &str = "radsec";

fn body(pki: &Path, extra: &str) -> String {
    format!(
        r#"{STANDARD_BODY}
[[clients]]
name = "radsec-peers"
addresses = ["127.0.0.1"]
transport = "tls"

[radsec]
listen = ["127.0.0.1:0"]
handshake_timeout = "2s"
{idle}
{extra}
[radsec.tls]
certificate = "{dir}/server.pem"
private_key = "{dir}/server.key"
ca = "{dir}/ca.pem"
"#,
        dir = pki.display(),
        idle = if extra.contains("idle_timeout") {
            ""
        } else {
            "idle_timeout = \"3s\""
        },
    )
}

fn closed(server: &TestServer, why: StreamClose) -> u64 {
    server.sum(|m| m.radsec_closed[why as usize].get())
}

#[test]
fn logins_and_accounting_over_one_connection() {
    let pki = tempfile::tempdir().expect("tempdir");
    write_test_pki(pki.path(), KeyKind::Ecdsa, false).expect("pki");
    let server = TestServer::start(1, &body(pki.path(), ""));
    let to = server.radsec().expect("radsec listener");
    let sec = secret(RADSEC);
    let mut tls = connect(to, client_config(pki.path(), pki.path()));

    // Pipelined: three requests written at once, three replies in order of decision.
    let good = access_request(&sec, 1, &random_authenticator(), "alice", "alice-pw", false);
    let bad = access_request(&sec, 2, &random_authenticator(), "alice", "nope", false);
    let acct = accounting_for(&sec, 3, 1, "alice", "tls-session-1");
    tls.write_all(&[good.clone(), bad.clone(), acct.clone()].concat())
        .expect("write");
    let mut replies: Vec<Vec<u8>> = (0..3)
        .map(|_| read_packet(&mut tls).expect("reply"))
        .collect();
    replies.sort_by_key(|r| r[1]);
    assert_eq!(check_reply(&replies[0], &good, &sec), Code::AccessAccept);
    assert_eq!(
        reply_attr(&replies[0], attr::REPLY_MESSAGE).as_deref(),
        Some(&b"Welcome, alice"[..])
    );
    assert_eq!(check_reply(&replies[1], &bad, &sec), Code::AccessReject);
    assert_eq!(
        check_reply(&replies[2], &acct, &sec),
        Code::AccountingResponse
    );
    let records = server.accounting_records();
    assert!(records
        .iter()
        .any(|r| rec_attr(r, "Acct-Session-Id") == Some("tls-session-1")));

    // Status-Server, the RadSec keepalive: Access-Accept.
    let mut buf = [0u8; 4096];
    let status = radshard::proto::PacketBuilder::request(
        &mut buf,
        Code::StatusServer,
        9,
        &random_authenticator(),
    )
    .expect("ok")
    .finish(&sec)
    .expect("ok")
    .to_vec();
    tls.write_all(&status).expect("write");
    let reply = read_packet(&mut tls).expect("reply");
    assert_eq!(check_reply(&reply, &status, &sec), Code::AccessAccept);

    // One byte at a time still frames.
    let slow = access_request(&sec, 4, &random_authenticator(), "bob", "bob-pw", false);
    for b in &slow {
        tls.write_all(std::slice::from_ref(b)).expect("write");
    }
    let reply = read_packet(&mut tls).expect("reply");
    assert_eq!(check_reply(&reply, &slow, &sec), Code::AccessAccept);
    assert_eq!(server.sum(|m| m.radsec_open.get()), 1);
    drop(tls);
    assert!(wait_until(Duration::from_secs(3), || closed(
        &server,
        StreamClose::PeerClosed
    ) == 1));
    assert_eq!(server.sum(|m| m.radsec_open.get()), 0);
}

#[test]
fn bad_peers_are_refused_and_counted_while_good_ones_are_served() {
    let pki = tempfile::tempdir().expect("tempdir");
    let other = tempfile::tempdir().expect("tempdir");
    write_test_pki(pki.path(), KeyKind::Ecdsa, false).expect("pki");
    write_test_pki(other.path(), KeyKind::Ecdsa, false).expect("pki");
    let server = TestServer::start(1, &body(pki.path(), "max_connections = 1010"));
    let to = server.radsec().expect("radsec listener");
    let sec = secret(RADSEC);
    let good = client_config(pki.path(), pki.path());

    // A certificate from another CA: the handshake fails, nothing is served.
    let mut wrong = connect(to, client_config(pki.path(), other.path()));
    let req = access_request(&sec, 1, &random_authenticator(), "alice", "alice-pw", false);
    let refused = wrong
        .write_all(&req)
        .and_then(|_| read_packet(&mut wrong))
        .is_err();
    assert!(refused, "a foreign client certificate is refused");
    assert!(wait_until(Duration::from_secs(3), || closed(
        &server,
        StreamClose::BadCertificate
    ) == 1));

    // An address that is no TLS client: closed at once.
    let sock =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    sock.bind(&SocketAddr::from(([127, 0, 0, 2], 0)).into())
        .expect("bind 127.0.0.2");
    sock.connect(&to.into()).expect("connect");
    assert!(wait_until(Duration::from_secs(3), || closed(
        &server,
        StreamClose::UnknownClient
    ) == 1));

    // Slowloris: 1,000 connections that never say a word hold slots until the handshake
    // deadline (2 s); a real client is served meanwhile, and connections past
    // max_connections (1,010) are refused at once.
    let mut idle: Vec<TcpStream> = (0..1000)
        .map(|_| TcpStream::connect(to).expect("connect"))
        .collect();
    assert!(wait_until(Duration::from_secs(3), || server
        .sum(|m| m.radsec_open.get())
        == 1000));
    let mut tls = connect(to, good.clone());
    let req = access_request(&sec, 2, &random_authenticator(), "alice", "alice-pw", false);
    tls.write_all(&req).expect("write");
    assert_eq!(
        check_reply(&read_packet(&mut tls).expect("reply"), &req, &sec),
        Code::AccessAccept
    );
    idle.extend((0..20).map(|_| TcpStream::connect(to).expect("connect")));
    assert!(wait_until(Duration::from_secs(3), || closed(
        &server,
        StreamClose::ConnectionLimit
    ) == 11));
    assert!(wait_until(Duration::from_secs(5), || closed(
        &server,
        StreamClose::HandshakeTimeout
    ) == 1009));
    assert_eq!(
        server.sum(|m| m.radsec_open.get()),
        1,
        "only the real client"
    );
    drop(idle);

    // Broken framing (Length 5) closes the connection.
    tls.write_all(&[1, 3, 0, 5, 0]).expect("write");
    let _ = tls.flush();
    assert!(read_packet(&mut tls).is_err(), "closed");
    assert!(wait_until(Duration::from_secs(3), || closed(
        &server,
        StreamClose::BadFraming
    ) == 1));

    // Idle after the handshake: closed at idle_timeout (3 s).
    let started = Instant::now();
    let mut quiet = connect(to, good);
    let status = {
        let mut buf = [0u8; 4096];
        radshard::proto::PacketBuilder::request(&mut buf, Code::StatusServer, 1, &[7; 16])
            .expect("ok")
            .finish(&sec)
            .expect("ok")
            .to_vec()
    };
    quiet.write_all(&status).expect("write");
    let reply = read_packet(&mut quiet).expect("status reply");
    assert_eq!(
        Packet::parse(&reply).expect("ok").code(),
        Code::AccessAccept
    );
    quiet
        .sock
        .set_read_timeout(Some(Duration::from_secs(6)))
        .expect("timeout");
    assert!(read_packet(&mut quiet).is_err(), "closed when idle");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(3) && waited < Duration::from_secs(6),
        "{waited:?}"
    );
    // Counted once the server's writer has finished closing, a moment after the client sees it.
    assert!(wait_until(Duration::from_secs(2), || closed(
        &server,
        StreamClose::IdleTimeout
    ) >= 1));
}

/// radsecproxy 1.9.2 as a RadSec client: a NAS speaks UDP to it, it speaks TLS to radshard
/// (keeping the connection up with Status-Server). Logins and accounting come back through
/// it; a radsecproxy holding a certificate from another CA gets nothing through.
#[test]
fn radsecproxy_forwards_udp_to_radshard_over_tls() {
    use common::radsecproxy::Radsecproxy;
    let pki = tempfile::tempdir().expect("tempdir");
    let other = tempfile::tempdir().expect("tempdir");
    write_test_pki(pki.path(), KeyKind::Rsa, false).expect("pki");
    write_test_pki(other.path(), KeyKind::Rsa, false).expect("pki");
    let server = TestServer::start(1, &body(pki.path(), "idle_timeout = \"120s\""));
    let to = server.radsec().expect("radsec listener");
    let conf = |udp: u16, certs: &Path| {
        format!(
            "ListenUDP 127.0.0.1:{udp}\n\
             tls default {{\n    CACertificateFile {ca}\n    CertificateFile {d}/client.pem\n    CertificateKeyFile {d}/client.key\n}}\n\
             client 127.0.0.1 {{\n    type udp\n    secret testing123\n}}\n\
             server radshard {{\n    host 127.0.0.1\n    port {port}\n    type tls\n    secret radsec\n    StatusServer on\n    certificateNameCheck off\n}}\n\
             realm * {{\n    server radshard\n    accountingServer radshard\n}}\n",
            ca = pki.path().join("ca.pem").display(),
            d = certs.display(),
            port = to.port(),
        )
    };
    let udp = free_udp_port();
    let rp = Radsecproxy::start(&conf(udp, pki.path()));
    let via: SocketAddr = ([127, 0, 0, 1], udp).into();
    let sec = secret(SECRET);
    let client = RadClient::new();
    let req = access_request(&sec, 1, &random_authenticator(), "alice", "alice-pw", true);
    let reply = client
        .exchange(&req, via)
        .unwrap_or_else(|| panic!("no reply through radsecproxy:\n{}", rp.log()));
    assert_eq!(check_reply(&reply, &req, &sec), Code::AccessAccept);
    assert_eq!(
        reply_attr(&reply, attr::REPLY_MESSAGE).as_deref(),
        Some(&b"Welcome, alice"[..])
    );
    let req = access_request(&sec, 2, &random_authenticator(), "alice", "wrong", true);
    let reply = client.exchange(&req, via).expect("reply");
    assert_eq!(check_reply(&reply, &req, &sec), Code::AccessReject);
    let acct = accounting_for(&sec, 3, 1, "alice", "via-radsecproxy");
    let reply = client.exchange(&acct, via).expect("accounting reply");
    assert_eq!(check_reply(&reply, &acct, &sec), Code::AccountingResponse);
    assert!(server
        .accounting_records()
        .iter()
        .any(|r| rec_attr(r, "Acct-Session-Id") == Some("via-radsecproxy")));
    assert_eq!(server.sum(|m| m.radsec_open.get()), 1, "one connection");

    // The wrong certificate: the TLS handshake is refused, the NAS gets no answer.
    let udp2 = free_udp_port();
    let wrong = Radsecproxy::start(&conf(udp2, other.path()));
    let req = access_request(&sec, 4, &random_authenticator(), "alice", "alice-pw", true);
    client.send(&req, ([127, 0, 0, 1], udp2).into());
    assert_eq!(
        client.recv_timeout(Duration::from_secs(2)),
        None,
        "{}",
        wrong.log()
    );
    assert!(closed(&server, StreamClose::BadCertificate) >= 1);
}

/// `radshard bench --radsec`: the loader's RadSec mode against radshard, every reply verified;
/// then the same over RADIUS/1.1 (`--radius11`), which the server must have negotiated on
/// every connection.
#[test]
fn the_loader_speaks_radsec_and_radius_1_1() {
    let pki = tempfile::tempdir().expect("tempdir");
    write_test_pki(pki.path(), KeyKind::Ecdsa, false).expect("pki");
    // Each connection cycles through the file from its start: 50 of its 100 for each line.
    let users = pki.path().join("users");
    std::fs::write(&users, "alice alice-pw\nalice wrong\n").expect("users");
    let (users, dir) = (
        users.display().to_string(),
        pki.path().display().to_string(),
    );
    for radius11 in [false, true] {
        let server = TestServer::start(1, &body(pki.path(), ""));
        let to = server.radsec().expect("radsec listener").to_string();
        let mut argv = vec![
            "radshard",
            "bench",
            "--server",
            &to,
            "--radsec",
            &dir,
            "--secret",
            "radsec",
            "--users-file",
            &users,
            "--quiet",
            "--count",
            "300",
            "--duration",
            "10s",
            "--sockets",
            "3",
            "--window",
            "30",
        ];
        if radius11 {
            argv.push("--radius11");
        }
        let args = match <radshard::cli::Cli as clap::Parser>::try_parse_from(argv)
            .expect("parses")
            .command
        {
            radshard::cli::Command::Bench(a) => a,
            other => panic!("not bench: {other:?}"),
        };
        let r = radshard::bench::run(&args).expect("runs");
        let c = &r.counts;
        assert_eq!(c.sent, 300, "{}", r.to_table());
        assert_eq!(
            (c.access_accept, c.access_reject),
            (150, 150),
            "{}",
            r.to_table()
        );
        assert_eq!(
            (c.timeouts, c.bad(), c.unexpected, c.unmatched),
            (0, 0, 150, 0),
            "{}",
            r.to_table()
        );
        assert_eq!(
            server.sum(|m| m.radsec_accepted.get()),
            3,
            "one connection per --sockets"
        );
        let expected = if radius11 { 3 } else { 0 };
        assert_eq!(server.sum(|m| m.radsec_radius11.get()), expected);
    }
}

/// RADIUS over TCP (RFC 6613, `[tcp]`): FreeRADIUS's radclient over TCP logs in and sends
/// accounting; a UDP client's address is not a TCP client.
#[test]
fn radius_over_tcp_with_radclient() {
    let server = TestServer::start(
        1,
        &format!(
            "{STANDARD_BODY}\n[[clients]]\nname = \"tcp-nas\"\naddresses = [\"127.0.0.1\"]\n\
             secret = \"tcp-secret\"\ntransport = \"tcp\"\n\n[tcp]\nlisten = [\"127.0.0.1:0\"]\n"
        ),
    );
    let to = server.tcp().expect("tcp listener");
    let target = to.to_string();
    let run = |command: &str, secret: &str, attrs: &str| {
        run_tool(
            "radclient",
            &[
                "-P", "tcp", "-x", "-r", "1", "-t", "2", &target, command, secret,
            ],
            attrs,
            Duration::from_secs(20),
        )
    };
    let out = run(
        "auth",
        "tcp-secret",
        "User-Name = alice\nUser-Password = alice-pw\nMessage-Authenticator = 0x00\n",
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Received Access-Accept"),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("Welcome, alice"), "{text}");
    let out = run(
        "auth",
        "tcp-secret",
        "User-Name = alice\nUser-Password = nope\nMessage-Authenticator = 0x00\n",
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Received Access-Reject"));
    let out = run(
        "acct",
        "tcp-secret",
        "User-Name = alice\nAcct-Status-Type = Start\nAcct-Session-Id = over-tcp\n",
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Received Accounting-Response"));
    assert!(server
        .accounting_records()
        .iter()
        .any(|r| rec_attr(r, "Acct-Session-Id") == Some("over-tcp")));
    // The UDP client's secret over TCP: the TCP client's secret is another, so it is dropped.
    let out = run(
        "auth",
        SECRET,
        "User-Name = alice\nUser-Password = alice-pw\nMessage-Authenticator = 0x00\n",
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("Received"));
    assert!(server.sum(|m| m.radsec_accepted.get()) >= 4);
}
