//! radshard as a RadSec client of its home servers: requests from a UDP NAS go up over TLS
//! to radsecproxy 1.9.2 acting as the RadSec home server (it answers every request itself:
//! Access-Reject with its Reply-Message, and Accounting-Response), and to a second radshard
//! serving RadSec (Access-Accept with the home user's attributes), and to that radshard over
//! RADIUS/TCP. A home server whose CA radshard does not trust is never used: the handshake
//! fails and the request gets no answer.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use common::radsecproxy::Radsecproxy;
use common::*;
use radshard::proto::{attr, Code};
use radshard::proxy::client::ProxyMetrics;
use radshard::tls::pki::{write_test_pki, KeyKind};

fn tls_home(name: &str, addr: SocketAddr, pki: &Path, ca: &Path) -> String {
    format!(
        "[[proxy.home_servers]]\nname = \"{name}\"\naddress = \"{addr}\"\nprotocol = \"tls\"\n\
         response_window = \"2s\"\n\
         tls = {{ ca = \"{ca}\", certificate = \"{d}/client.pem\", private_key = \"{d}/client.key\", server_name = \"radius.test\" }}\n\n",
        ca = ca.join("ca.pem").display(),
        d = pki.display(),
    )
}

fn routes(realm: &str, home: &str) -> String {
    format!(
        "[[proxy.pools]]\nname = \"{home}\"\nhome_servers = [\"{home}\"]\n\n\
         [[proxy.realms]]\nname = \"{realm}\"\nauth_pool = \"{home}\"\nacct_pool = \"{home}\"\n\n"
    )
}

#[test]
fn proxies_over_radsec_to_radsecproxy_and_to_radshard() {
    let pki = tempfile::tempdir().expect("tempdir");
    let other = tempfile::tempdir().expect("tempdir");
    write_test_pki(pki.path(), KeyKind::Rsa, false).expect("pki");
    write_test_pki(other.path(), KeyKind::Rsa, false).expect("pki");

    // radsecproxy as the RadSec home server.
    let port = free_tcp_port();
    let rp = Radsecproxy::start(&format!(
        "ListenTLS 127.0.0.1:{port}\n\
         tls default {{\n    CACertificateFile {d}/ca.pem\n    CertificateFile {d}/server.pem\n    CertificateKeyFile {d}/server.key\n}}\n\
         client 127.0.0.1 {{\n    type tls\n    secret radsec\n    certificateNameCheck off\n}}\n\
         realm * {{\n    ReplyMessage \"radsecproxy test peer\"\n    AccountingResponse on\n}}\n",
        d = pki.path().display()
    ));

    // A second radshard serving RadSec, with its own user.
    let home_body = format!(
        "[[clients]]\nname = \"peer\"\naddresses = [\"127.0.0.1\"]\ntransport = \"tls\"\n\n\
         [[users]]\nname = \"dana\"\npassword = \"dana-pw\"\nreply = {{ Reply-Message = \"home radshard\", Session-Timeout = 600 }}\n\n\
         [[clients]]\nname = \"tcp-peer\"\naddresses = [\"127.0.0.1\"]\ntransport = \"tcp\"\nsecret = \"tcp-secret\"\n\n\
         [tcp]\nlisten = [\"127.0.0.1:0\"]\n\n\
         [radsec]\nlisten = [\"127.0.0.1:0\"]\n[radsec.tls]\ncertificate = \"{d}/server.pem\"\nprivate_key = \"{d}/server.key\"\nca = \"{d}/ca.pem\"\n",
        d = pki.path().display()
    );
    let home = TestServer::start(1, &home_body);
    let home_tls = home.radsec().expect("radsec");

    let mut body = String::from(STANDARD_BODY);
    body.push_str("\n[proxy]\n");
    body.push_str(&tls_home(
        "rp",
        ([127, 0, 0, 1], port).into(),
        pki.path(),
        pki.path(),
    ));
    body.push_str(&tls_home("rs", home_tls, pki.path(), pki.path()));
    // Trusts another CA: radshard refuses the home server's certificate.
    body.push_str(&tls_home("untrusted", home_tls, pki.path(), other.path()));
    body.push_str(&format!(
        "[[proxy.home_servers]]\nname = \"rt\"\naddress = \"{}\"\nprotocol = \"tcp\"\nsecret = \"tcp-secret\"\n\n",
        home.tcp().expect("tcp")
    ));
    body.push_str(&routes("rt.test", "rt"));
    body.push_str(&routes("rp.test", "rp"));
    body.push_str(&routes("rs.test", "rs"));
    body.push_str(&routes("untrusted.test", "untrusted"));
    let front = TestServer::start(1, &body);

    let sec = secret(SECRET);
    let client = RadClient::new();
    let req = access_request(&sec, 1, &random_authenticator(), "x@rp.test", "pw", true);
    let reply = client
        .exchange(&req, front.auth)
        .unwrap_or_else(|| panic!("no reply via radsecproxy:\n{}", rp.log()));
    assert_eq!(check_reply(&reply, &req, &sec), Code::AccessReject);
    assert_eq!(
        reply_attr(&reply, attr::REPLY_MESSAGE).as_deref(),
        Some(&b"radsecproxy test peer"[..])
    );
    let acct = accounting_for(&sec, 2, 1, "x@rp.test", "up-over-tls");
    let reply = client.exchange(&acct, front.acct).unwrap_or_else(|| {
        let m = front.proxy().expect("proxy");
        panic!(
            "no accounting reply via radsecproxy: refused {:?} failures {:?}\n{}",
            m.refused.lock().expect("lock"),
            m.failures.lock().expect("lock"),
            rp.log()
        )
    });
    assert_eq!(check_reply(&reply, &acct, &sec), Code::AccountingResponse);
    assert!(
        front.accounting_records().is_empty(),
        "forwarded, not recorded here"
    );

    let req = access_request(
        &sec,
        3,
        &random_authenticator(),
        "dana@rs.test",
        "dana-pw",
        true,
    );
    let reply = client
        .exchange(&req, front.auth)
        .expect("reply via radshard");
    assert_eq!(check_reply(&reply, &req, &sec), Code::AccessAccept);
    assert_eq!(
        reply_attr(&reply, attr::REPLY_MESSAGE).as_deref(),
        Some(&b"home radshard"[..])
    );
    let acct = accounting_for(&sec, 4, 1, "dana@rs.test", "on-the-home");
    let reply = client
        .exchange(&acct, front.acct)
        .expect("accounting reply");
    assert_eq!(check_reply(&reply, &acct, &sec), Code::AccountingResponse);
    assert!(home
        .accounting_records()
        .iter()
        .any(|r| rec_attr(r, "Acct-Session-Id") == Some("on-the-home")));
    // Both went over one connection to the home radshard.
    assert_eq!(home.sum(|m| m.radsec_accepted.get()), 1);
    let accepted_before_tcp = home.sum(|m| m.radsec_accepted.get());

    // RADIUS over TCP to the same home radshard.
    let req = access_request(
        &sec,
        6,
        &random_authenticator(),
        "dana@rt.test",
        "dana-pw",
        true,
    );
    let reply = client.exchange(&req, front.auth).expect("reply over TCP");
    assert_eq!(check_reply(&reply, &req, &sec), Code::AccessAccept);
    assert_eq!(
        reply_attr(&reply, attr::REPLY_MESSAGE).as_deref(),
        Some(&b"home radshard"[..])
    );

    let req = access_request(
        &sec,
        5,
        &random_authenticator(),
        "dana@untrusted.test",
        "dana-pw",
        true,
    );
    client.send(&req, front.auth);
    assert_eq!(client.recv_timeout(Duration::from_secs(3)), None);
    let m = front.proxy().expect("proxy metrics");
    assert!(
        wait_until(Duration::from_secs(3), || {
            ProxyMetrics::count(&m.failures, "tls_handshake_failed") >= 1
        }),
        "{:?}",
        m.failures.lock().expect("lock")
    );
    // The TCP connection, then the refused handshakes (the request's, and the zombie's
    // Status-Server checks after its response window), on which it served nothing.
    let accepted = home.sum(|m| m.radsec_accepted.get());
    assert!(
        accepted >= accepted_before_tcp + 2,
        "{accepted_before_tcp} then {accepted}"
    );
    assert_eq!(
        home.sum(|m| m.radsec_open.get()),
        2,
        "only the good TLS connection and the TCP one; closed: {:?}",
        radshard::metrics::StreamClose::ALL
            .iter()
            .map(|r| (r.label(), home.sum(|m| m.radsec_closed[*r as usize].get())))
            .filter(|(_, n)| *n > 0)
            .collect::<Vec<_>>()
    );
}

/// Keepalive over RadSec (RFC 6614 §2.3, RFC 6613 §2.6.2): an idle connection to an alive
/// home server carries a Status-Server every check_interval and stays open; a home server
/// that stops answering without closing (radsecproxy stopped with SIGSTOP) is a zombie after
/// one unanswered keepalive, with no request needed to find out; once it answers again, the
/// checks over a new connection bring it back.
#[test]
fn keepalive_watches_an_idle_radsec_home_server() {
    let pki = tempfile::tempdir().expect("tempdir");
    write_test_pki(pki.path(), KeyKind::Rsa, false).expect("pki");
    let port = free_tcp_port();
    let rp = Radsecproxy::start(&format!(
        "ListenTLS 127.0.0.1:{port}\n\
         tls default {{\n    CACertificateFile {d}/ca.pem\n    CertificateFile {d}/server.pem\n    CertificateKeyFile {d}/server.key\n}}\n\
         client 127.0.0.1 {{\n    type tls\n    secret radsec\n    certificateNameCheck off\n}}\n\
         realm * {{\n    ReplyMessage \"radsecproxy test peer\"\n}}\n",
        d = pki.path().display()
    ));
    let d = pki.path().display();
    let mut body = String::from(STANDARD_BODY);
    body.push_str(&format!(
        "\n[proxy]\n[[proxy.home_servers]]\nname = \"rp\"\naddress = \"127.0.0.1:{port}\"\n\
         protocol = \"tls\"\nresponse_window = \"2s\"\ncheck_interval = \"2s\"\n\
         check_timeout = \"1s\"\nzombie_period = \"30s\"\n\
         tls = {{ ca = \"{d}/ca.pem\", certificate = \"{d}/client.pem\", \
         private_key = \"{d}/client.key\", server_name = \"radius.test\" }}\n\n"
    ));
    body.push_str(&routes("rp.test", "rp"));
    let front = TestServer::start(1, &body);
    let m = front.proxy().expect("proxy");
    let home = || {
        m.homes
            .lock()
            .expect("lock")
            .iter()
            .find(|h| h.name == "rp")
            .cloned()
            .unwrap_or_else(|| panic!("home rp is not published: {:?}", m.homes))
    };

    let sec = secret(SECRET);
    let client = RadClient::new();
    let req = access_request(&sec, 1, &random_authenticator(), "x@rp.test", "pw", true);
    let reply = client
        .exchange(&req, front.auth)
        .unwrap_or_else(|| panic!("no reply:\n{}", rp.log()));
    assert_eq!(check_reply(&reply, &req, &sec), Code::AccessReject);
    assert!(wait_until(Duration::from_secs(3), || m
        .homes
        .lock()
        .expect("lock")
        .iter()
        .any(|h| h.name == "rp" && h.answers == 1)));

    // Idle: keepalives go out and are answered; the server stays alive.
    assert!(
        wait_until(Duration::from_secs(8), || home().status_answered >= 2),
        "{:?} refused {:?}\n{}",
        home(),
        m.refused.lock().expect("lock"),
        rp.log()
    );
    assert_eq!(home().state, "alive");
    assert_eq!(
        ProxyMetrics::count(&m.failures, "connect_failed")
            + ProxyMetrics::count(&m.failures, "tls_handshake_failed"),
        0,
        "one connection all along"
    );

    // Gone silent, connection still open: found out by the keepalive alone.
    rp.signal(libc::SIGSTOP);
    let stopped = std::time::Instant::now();
    assert!(
        wait_until(Duration::from_secs(8), || home().state == "zombie"),
        "{:?}",
        home()
    );
    let took = stopped.elapsed();
    assert!(
        took <= Duration::from_secs(6),
        "a zombie after one idle interval and one check timeout, took {took:?}"
    );
    assert_eq!(home().requests, 1, "no request was needed");

    // Answering again: the checks revive it over a new connection.
    rp.signal(libc::SIGCONT);
    assert!(
        wait_until(Duration::from_secs(15), || home().state == "alive"),
        "{:?}\n{}",
        home(),
        rp.log()
    );
    let req = access_request(&sec, 2, &random_authenticator(), "x@rp.test", "pw", true);
    let reply = client.exchange(&req, front.auth).expect("served again");
    assert_eq!(check_reply(&reply, &req, &sec), Code::AccessReject);
}
