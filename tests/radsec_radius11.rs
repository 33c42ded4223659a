//! RADIUS/1.1 (RFC 9765) between two radshard instances: a front radshard takes UDP from the
//! NAS and proxies over RadSec to a home radshard; ALPN decides per connection whether the
//! link speaks RADIUS/1.1 (Token, no MD5 hiding, no Message-Authenticator) or falls back to
//! RADIUS/1.0, by each side's `radius_1_1`.
//!
//! On a RADIUS/1.1 link the home server reveals the MPPE keys it sends (no secret hides them)
//! and the front hides them again for the NAS: eapol_test (PEAP-MSCHAPv2 through both)
//! checks the keys it receives against the MSK it derived itself, so a key garbled anywhere
//! on the way fails the login. PAP checks that User-Password crosses in the clear and is
//! hidden again for the home's pipeline.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use common::eapol::run_eapol_test;
use common::*;
use radshard::metrics::StreamClose;
use radshard::proto::{attr, Code};
use radshard::proxy::client::ProxyMetrics;
use radshard::tls::pki::{write_test_pki, KeyKind};

const ALICE_PW: &str = "alice-pw";

/// A home radshard serving RadSec with `[radsec] radius_1_1 = mode`: PAP user dana, and alice
/// behind PEAP.
fn home(pki: &Path, mode: &str) -> TestServer {
    let d = pki.display();
    TestServer::start(
        1,
        &format!(
            "[[clients]]\nname = \"front\"\naddresses = [\"127.0.0.1\"]\ntransport = \"tls\"\n\n\
             [[users]]\nname = \"dana\"\npassword = \"dana-pw\"\n\
             reply = {{ Reply-Message = \"home radshard\" }}\n\n\
             [[users]]\nname = \"alice\"\npassword = \"{ALICE_PW}\"\n\n\
             [eap]\nmethods = [\"peap\"]\n\n\
             [eap.tls]\ncertificate = \"{d}/server.pem\"\nprivate_key = \"{d}/server.key\"\n\n\
             [radsec]\nlisten = [\"127.0.0.1:0\"]\nradius_1_1 = \"{mode}\"\n\
             [radsec.tls]\ncertificate = \"{d}/server.pem\"\nprivate_key = \"{d}/server.key\"\n\
             ca = \"{d}/ca.pem\"\n"
        ),
    )
}

/// A front radshard proxying realm `rs.test` (kept whole, as EAP needs) over RadSec to `to`
/// with the home server's `radius_1_1 = mode`.
fn front(pki: &Path, to: SocketAddr, mode: &str) -> TestServer {
    let d = pki.display();
    let mut body = String::from(STANDARD_BODY);
    body.push_str(&format!(
        "\n[proxy]\n[[proxy.home_servers]]\nname = \"rs\"\naddress = \"{to}\"\nprotocol = \"tls\"\n\
         response_window = \"2s\"\n\
         tls = {{ ca = \"{d}/ca.pem\", certificate = \"{d}/client.pem\", \
         private_key = \"{d}/client.key\", server_name = \"radius.test\", radius_1_1 = \"{mode}\" }}\n\n\
         [[proxy.pools]]\nname = \"rs\"\nhome_servers = [\"rs\"]\n\n\
         [[proxy.realms]]\nname = \"rs.test\"\nauth_pool = \"rs\"\nacct_pool = \"rs\"\n\
         user_name = \"keep_for_eap\"\n"
    ));
    TestServer::start(1, &body)
}

fn pki() -> tempfile::TempDir {
    let pki = tempfile::tempdir().expect("tempdir");
    write_test_pki(pki.path(), KeyKind::Rsa, false).expect("pki");
    pki
}

/// A PAP login of dana@rs.test through `front`: the home's reply, if any came back.
fn pap(front: &TestServer, id: u8) -> Option<Code> {
    let sec = secret(SECRET);
    let client = RadClient::new();
    let req = access_request(
        &sec,
        id,
        &random_authenticator(),
        "dana@rs.test",
        "dana-pw",
        true,
    );
    client.send(&req, front.auth);
    let reply = client.recv_timeout(Duration::from_secs(3))?;
    let code = check_reply(&reply, &req, &sec);
    if code == Code::AccessAccept {
        assert_eq!(
            reply_attr(&reply, attr::REPLY_MESSAGE).as_deref(),
            Some(&b"home radshard"[..])
        );
    }
    Some(code)
}

fn closed(server: &TestServer, why: StreamClose) -> u64 {
    server.sum(|m| m.radsec_closed[why as usize].get())
}

#[test]
fn radius_1_1_between_two_radshards_carries_passwords_and_keys() {
    let pki = pki();
    let home = home(pki.path(), "allow");
    let front = front(pki.path(), home.radsec().expect("radsec"), "allow");

    assert_eq!(pap(&front, 1), Some(Code::AccessAccept));
    let sec = secret(SECRET);
    let client = RadClient::new();
    let acct = accounting_for(&sec, 2, 1, "dana@rs.test", "over-radius-1.1");
    let reply = client
        .exchange(&acct, front.acct)
        .expect("accounting reply");
    assert_eq!(check_reply(&reply, &acct, &sec), Code::AccountingResponse);
    assert!(home
        .accounting_records()
        .iter()
        .any(|r| rec_attr(r, "Acct-Session-Id") == Some("over-radius-1.1")));
    // A wrong password is the home's Access-Reject, not a translation failure.
    let req = access_request(
        &sec,
        3,
        &random_authenticator(),
        "dana@rs.test",
        "not-it",
        true,
    );
    let reply = client.exchange(&req, front.auth).expect("a reject");
    assert_eq!(check_reply(&reply, &req, &sec), Code::AccessReject);

    // PEAP-MSCHAPv2 from eapol_test: every round crosses the RADIUS/1.1 link both ways.
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = dir.path().join("peap.conf");
    std::fs::write(
        &conf,
        format!(
            "network={{\n\tkey_mgmt=WPA-EAP\n\teap=PEAP\n\tidentity=\"alice\"\n\
             \tanonymous_identity=\"anonymous@rs.test\"\n\tpassword=\"{ALICE_PW}\"\n\
             \tca_cert=\"{}\"\n\tphase1=\"peaplabel=0\"\n\tphase2=\"auth=MSCHAPV2\"\n}}\n",
            pki.path().join("ca.pem").display()
        ),
    )
    .expect("network block");
    let r = run_eapol_test(
        vec![
            format!("-c{}", conf.display()),
            "-a127.0.0.1".into(),
            format!("-p{}", front.auth.port()),
            format!("-s{SECRET}"),
        ],
        20,
        &dir.path().join("peap.log"),
    );
    assert!(r.success, "{}", r.log);
    assert_eq!(r.mppe_ok, 1, "the keys survive both edges: {}", r.log);

    // One connection, and it spoke RADIUS/1.1.
    assert_eq!(home.sum(|m| m.radsec_accepted.get()), 1);
    assert_eq!(home.sum(|m| m.radsec_radius11.get()), 1);
    let m = front.proxy().expect("proxy");
    assert_eq!(
        ProxyMetrics::count(&m.refused, "radius11_untranslatable"),
        0,
        "{:?}",
        m.refused.lock().expect("lock")
    );
}

#[test]
fn falls_back_to_radius_1_0_or_refuses_as_configured() {
    let pki = pki();
    // The front offers no ALPN: the home that allows RADIUS/1.1 speaks 1.0.
    let h = home(pki.path(), "allow");
    let f = front(pki.path(), h.radsec().expect("radsec"), "forbid");
    assert_eq!(pap(&f, 1), Some(Code::AccessAccept));
    assert_eq!(h.sum(|m| m.radsec_accepted.get()), 1);
    assert_eq!(h.sum(|m| m.radsec_radius11.get()), 0);

    // The home does not answer the front's offer: 1.0 again.
    let h = home(pki.path(), "forbid");
    let f = front(pki.path(), h.radsec().expect("radsec"), "allow");
    assert_eq!(pap(&f, 1), Some(Code::AccessAccept));
    assert_eq!(h.sum(|m| m.radsec_radius11.get()), 0);

    // The front requires it, the home forbids it: the front closes, nothing is answered.
    let h = home(pki.path(), "forbid");
    let f = front(pki.path(), h.radsec().expect("radsec"), "require");
    assert_eq!(pap(&f, 1), None);
    let m = f.proxy().expect("proxy");
    assert!(
        ProxyMetrics::count(&m.failures, "alpn_mismatch") >= 1,
        "{:?}",
        m.failures.lock().expect("lock")
    );
    assert_eq!(h.requests(Code::AccessRequest), 0);

    // The home requires it, the front offers nothing: the home closes, counted.
    let h = home(pki.path(), "require");
    let f = front(pki.path(), h.radsec().expect("radsec"), "forbid");
    assert_eq!(pap(&f, 1), None);
    assert!(
        wait_until(Duration::from_secs(3), || closed(
            &h,
            StreamClose::AlpnMismatch
        ) >= 1),
        "closed: {:?}",
        StreamClose::ALL
            .iter()
            .map(|r| (r.label(), closed(&h, *r)))
            .filter(|(_, n)| *n > 0)
            .collect::<Vec<_>>()
    );
    assert_eq!(h.requests(Code::AccessRequest), 0);

    // Both require it: RADIUS/1.1.
    let h = home(pki.path(), "require");
    let f = front(pki.path(), h.radsec().expect("radsec"), "require");
    assert_eq!(pap(&f, 1), Some(Code::AccessAccept));
    assert_eq!(h.sum(|m| m.radsec_radius11.get()), 1);
}
