//! Proves the eapol_test harness (`tests/common/eapol.rs`) against the reference server,
//! FreeRADIUS 3.2, set up as `shared/recipes/eapol_test.md` section 4 does: a throwaway copy
//! of /etc/freeradius/3.0 in a temporary directory (never /etc itself), one auth listener on a
//! free 127.0.0.1 port, client 127.0.0.1/testing123, user alice/alicepw, TLS 1.3 allowed, the
//! TLS session cache on, and `check_crl = yes` with the CRL appended to the CA file
//! (`common::freeradius_eap`, whose configuration perf/eap_compare.sh shares).
//!
//! Every case `tests/eap_eapol.rs` runs against radshard runs here first: if these pass, a
//! failure there is radshard's.

mod common;

use std::path::PathBuf;

use common::eapol::{
    check, make_negative_fixtures, make_pki_openssl, openssl_verify, pem_bodies, BadClientCert,
    Case, Eapol, EapolResult, Login, Method, TlsMax,
};
use common::freeradius_eap::{EapOptions, FreeRadiusEap, PASSWORD};
use common::SECRET;

/// `freeradius -X` as `common::freeradius_eap` sets it up (the recipe's freeradius_setup.sh
/// with TLS13=1 RESUME=1, plus check_crl) and an eapol_test for its certificates.
struct Reference {
    fr: FreeRadiusEap,
    port: u16,
    eapol: Eapol,
}

impl Reference {
    fn start() -> Reference {
        let fr = FreeRadiusEap::start(&EapOptions {
            tls13: true,
            resume: true,
            check_crl: true,
            // Single-threaded full debug: functional checks only (never benchmark it); its log
            // shows the server's side of every case.
            debug: true,
            ..EapOptions::default()
        });
        let eapol = Eapol::new(&fr.certs(), PASSWORD);
        Reference {
            port: fr.addr.port(),
            fr,
            eapol,
        }
    }

    fn run(&self, login: impl Into<Login>) -> EapolResult {
        self.eapol.run(login, self.port, SECRET, &[])
    }

    /// Runs `login` and returns its result with what FreeRADIUS logged meanwhile.
    fn run_logged(&self, login: impl Into<Login>) -> (EapolResult, String) {
        let before = self.fr.log().len();
        let r = self.run(login);
        let log = self.fr.log();
        (r, log.get(before..).unwrap_or("").to_string())
    }

    fn certs(&self) -> PathBuf {
        self.fr.certs()
    }
}

/// The line of the results table for one run.
fn row(r: &EapolResult) -> String {
    format!(
        "{:40} {:7} rounds={:2} tls={:7} mppe_ok={} resumed={} {}",
        r.login.map(|l| l.name()).unwrap_or_default(),
        if r.success { "SUCCESS" } else { "FAILURE" },
        r.rounds,
        r.tls_version.as_deref().unwrap_or("-"),
        r.mppe_ok,
        r.resumed,
        match (&r.cert_error, r.access_reject) {
            (Some(e), _) => format!("cert_error='{e}'"),
            (None, true) => "Access-Reject".into(),
            (None, false) => String::new(),
        }
    )
}

#[test]
fn fixtures_verify_as_intended() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    make_pki_openssl(d);
    make_negative_fixtures(d);
    for good in ["server.pem", "client.pem", "revoked-client.pem"] {
        assert_eq!(openssl_verify(d, "ca.pem", None, good), None, "{good}");
    }
    assert_eq!(
        openssl_verify(d, "ca.pem", Some("crl.pem"), "client.pem"),
        None
    );
    assert_eq!(
        openssl_verify(d, "other-ca.pem", None, "other-client.pem"),
        None
    );
    let e = openssl_verify(d, "ca.pem", None, "other-client.pem").expect("other CA refused");
    assert!(e.contains("unable to get local issuer certificate"), "{e}");
    let e = openssl_verify(d, "ca.pem", None, "expired-client.pem").expect("expired refused");
    assert!(e.contains("certificate has expired"), "{e}");
    let e = openssl_verify(d, "ca.pem", Some("crl.pem"), "revoked-client.pem")
        .expect("revoked refused");
    assert!(e.contains("certificate revoked"), "{e}");
}

/// Every case at TLS 1.2 and at TLS 1.3 against one FreeRADIUS, checked with
/// `common::eapol::check`; the client-certificate refusals also with the server's own reason.
#[test]
fn freeradius_every_case_tls12_and_tls13() {
    let fr = Reference::start();
    let mut table = Vec::new();
    let mut failures = Vec::new();
    for tls in TlsMax::ALL {
        for case in Case::all() {
            let (r, server_log) = fr.run_logged(Login::new(case).with_tls(tls));
            table.push(row(&r));
            if let Err(e) = check(&r) {
                failures.push(e);
            }
            // The server's reason, from its debug log.
            let reason = match case {
                Case::BadClientCert(BadClientCert::OtherCa) => {
                    Some("unable to get local issuer certificate")
                }
                Case::BadClientCert(BadClientCert::Expired) => Some("certificate has expired"),
                Case::BadClientCert(BadClientCert::Revoked) => Some("certificate revoked"),
                _ => None,
            };
            if let Some(reason) = reason {
                if !server_log.contains(reason) {
                    failures.push(format!(
                        "{}: FreeRADIUS did not log '{reason}':\n{server_log}",
                        r.login.expect("login").name()
                    ));
                }
            }
        }
    }
    println!("FreeRADIUS reference results:\n{}", table.join("\n"));
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}\n\nresults:\n{}",
        failures.len(),
        table.len(),
        failures.join("\n\n"),
        table.join("\n")
    );
}

/// `-r 2`: the two re-authentications resume the TLS session (TLS 1.2), keys match thrice.
#[test]
fn freeradius_reauth_resumes() {
    let fr = Reference::start();
    let mut table = Vec::new();
    for m in [Method::PeapMschapv2, Method::TtlsPap, Method::Tls] {
        let r = fr.eapol.run_reauth(Case::Good(m), fr.port, SECRET, 2);
        table.push(row(&r));
        check(&r).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            r.resumed,
            2,
            "both re-authentications resumed: {}",
            r.explain()
        );
        assert_eq!(r.accepts, 3, "{}", r.explain());
    }
    // TLS 1.3 (session tickets): reported, not asserted beyond the keys. FreeRADIUS 3.2.1
    // resumes some of them only.
    for m in [Method::PeapMschapv2, Method::TtlsPap, Method::Tls] {
        let r = fr
            .eapol
            .run_reauth(Login::new(Case::Good(m)).tls13(), fr.port, SECRET, 2);
        table.push(row(&r));
        check(&r).unwrap_or_else(|e| panic!("{e}"));
    }
    println!("FreeRADIUS reference, -r 2:\n{}", table.join("\n"));
}

/// A 300-octet link: the client's fragments fit it, the server is told by Framed-MTU, and
/// the login needs more round trips than at eapol_test's default 1400.
#[test]
fn freeradius_small_mtu() {
    let fr = Reference::start();
    let mut table = Vec::new();
    for tls in TlsMax::ALL {
        for m in [Method::Tls, Method::PeapMschapv2] {
            let base = Login::new(Case::Good(m)).with_tls(tls);
            let normal = fr.run(base);
            let small = fr.run(base.small_mtu(300));
            table.push(row(&normal));
            table.push(row(&small));
            check(&normal).unwrap_or_else(|e| panic!("{e}"));
            check(&small).unwrap_or_else(|e| panic!("{e}"));
            assert!(
                small.rounds > normal.rounds,
                "more rounds at MTU 300: {normal} vs {small}"
            );
            // FreeRADIUS reads Framed-MTU as its TLS fragment size, so its EAP packets are
            // a few octets over the MTU (310 for 300); it still shrinks them from ~1004.
            assert!(
                small.max_server_eap <= 320 && small.max_server_eap < normal.max_server_eap,
                "the server's EAP packets shrink: {normal} vs {small}"
            );
            assert!(small.max_client_eap <= 310, "client fragments: {small}");
        }
    }
    println!("FreeRADIUS reference, MTU 300:\n{}", table.join("\n"));
}

/// The server configuration really is the one described: the radshard tests rely on the
/// reference meaning what it says.
#[test]
fn freeradius_reference_uses_our_pki() {
    let fr = Reference::start();
    let out = fr.fr.dir().join("server-chain-seen.pem");
    let out_arg = format!("-o{}", out.display());
    let r = fr
        .eapol
        .run(Case::Good(Method::Tls), fr.port, SECRET, &[&out_arg]);
    check(&r).unwrap_or_else(|e| panic!("{e}"));
    let seen = std::fs::read_to_string(&out).expect("eapol_test -o wrote the server chain");
    let ours = std::fs::read_to_string(fr.certs().join("server.pem")).expect("server.pem");
    let seen_bodies = pem_bodies(&seen);
    assert!(
        pem_bodies(&ours).iter().all(|c| seen_bodies.contains(c)),
        "the server sent our server.pem:\n{seen}"
    );
}
