//! PEAPv0 crypto-binding (MS-PEAP §3.1.5.5) against the real peer, hostap's eapol_test:
//! PEAP-MSCHAPv2 with `phase1="crypto_binding=0|1|2"` (never / optional / required on the
//! client's side) against each `[eap] peap_crypto_binding` of ours, on TLS 1.2 and 1.3, and on
//! resumption (`-r 1`, phase 2 skipped: the keys come from TK alone).
//!
//! eapol_test checks the Access-Accept's MS-MPPE keys against the MSK it derived itself,
//! which is the compound session key once it bound: SUCCESS with `MPPE keys OK` after a bound
//! login proves the server derived IPMK, CMK and the compound MSK as the peer does, and the
//! peer's "Valid cryptobinding TLV received" proves our request's Compound MAC.
//!
//! In memory (`in_memory`), the load generator's PEAP client, which answers without a
//! Cryptobinding TLV, against each mode through `auth::start` / `auth::resume`. A wrong
//! Compound MAC, nonce, version or subtype is refused in `proto::eap::peap_binding`'s tests.

mod common;

use std::path::{Path, PathBuf};

use common::eapol::{
    check, network_block, run_eapol_test, Case, EapolResult, Login, Method, TlsMax,
};
use common::{TestServer, SECRET, STANDARD_BODY};

const PASSWORD: &str = "alice-pw";
/// eapol_test's own whole-run timeout, and ours a little later (it is killed by its pid).
const EAPOL_TIMEOUT_S: u64 = 20;
/// What hostap's peer prints once our request's Compound MAC verified.
const PEER_BOUND: &str = "EAP-PEAP: Valid cryptobinding TLV received";

struct Setup {
    server: TestServer,
    certs: tempfile::TempDir,
    runs: tempfile::TempDir,
}

/// A server with `[eap] peap_crypto_binding = mode` (`None`: the key left out, the default).
fn server(mode: Option<&str>) -> Setup {
    let certs = tempfile::tempdir().expect("certs dir");
    radshard::tls::pki::write_test_pki(certs.path(), radshard::tls::pki::KeyKind::Rsa, false)
        .expect("test PKI");
    let d = certs.path().display();
    let binding = mode.map_or(String::new(), |m| {
        format!("peap_crypto_binding = \"{m}\"\n")
    });
    let body = format!(
        "{STANDARD_BODY}\n[eap]\nmethods = [\"peap\"]\n{binding}\n[eap.tls]\n\
         certificate = \"{d}/server.pem\"\nprivate_key = \"{d}/server.key\"\n"
    );
    Setup {
        server: TestServer::start(2, &body),
        certs,
        runs: tempfile::tempdir().expect("runs dir"),
    }
}

/// The harness's PEAP-MSCHAPv2 network block with `crypto_binding=<n>` in its phase1.
fn block(login: &Login, certs: &Path, binding: u8) -> String {
    let b = network_block(login, certs, PASSWORD);
    assert!(b.contains("phase1=\"peaplabel=0"), "{b}");
    b.replace(
        "phase1=\"peaplabel=0",
        &format!("phase1=\"peaplabel=0 crypto_binding={binding}"),
    )
}

impl Setup {
    /// One eapol_test run (and `reauth` re-authentications) of PEAP-MSCHAPv2 at `tls` with the
    /// client's `crypto_binding=<binding>`.
    fn run(&self, tls: TlsMax, binding: u8, reauth: u32) -> EapolResult {
        let login = Login::new(Case::Good(Method::PeapMschapv2)).with_tls(tls);
        let stem = format!("{}-cb{binding}-r{reauth}", login.name());
        let conf: PathBuf = self.runs.path().join(format!("{stem}.conf"));
        std::fs::write(&conf, block(&login, self.certs.path(), binding)).expect("write conf");
        let log_path = self.runs.path().join(format!("{stem}.log"));
        let timeout = EAPOL_TIMEOUT_S + 5 * u64::from(reauth);
        let mut args = vec![
            format!("-c{}", conf.display()),
            "-a127.0.0.1".into(),
            format!("-p{}", self.server.auth.port()),
            format!("-s{SECRET}"),
        ];
        if reauth > 0 {
            args.push(format!("-r{reauth}"));
        }
        let mut r = run_eapol_test(args, timeout, &log_path);
        r.login = Some(login);
        r.reauth = reauth;
        r
    }
}

/// SUCCESS with matching keys for every authentication, bound (or not) as `bound` says.
fn good(r: &EapolResult, bound: bool, what: &str) -> Result<(), String> {
    check(r).map_err(|e| format!("{what}: {e}"))?;
    if r.log.contains(PEER_BOUND) != bound {
        return Err(format!(
            "{what}: the peer {} a valid Cryptobinding TLV: {}",
            if bound {
                "did not verify"
            } else {
                "unexpectedly verified"
            },
            r.explain()
        ));
    }
    Ok(())
}

fn assert_all(failures: Vec<String>) {
    assert!(
        failures.is_empty(),
        "{} failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// Default (optional): every client setting logs in on TLS 1.2 and 1.3; with 1 or 2 the peer
/// binds and the MPPE keys are the compound key's, with 0 it ignores the TLV and the keys are
/// the tunnel's.
#[test]
fn optional_binding_with_every_client_setting() {
    let s = server(None);
    let mut failures = Vec::new();
    for tls in TlsMax::ALL {
        for binding in [0u8, 1, 2] {
            let r = s.run(tls, binding, 0);
            println!("{r} crypto_binding={binding}");
            let what = format!("{tls:?} crypto_binding={binding}");
            if let Err(e) = good(&r, binding > 0, &what) {
                failures.push(e);
            }
        }
    }
    assert_all(failures);
}

/// `-r 1` with `crypto_binding=2`: the re-authentication resumes the TLS session, phase 2 is
/// skipped, and the binding (keys from TK alone) still verifies both ways.
#[test]
fn resumption_with_required_client_binding() {
    let s = server(Some("optional"));
    let mut failures = Vec::new();
    for tls in TlsMax::ALL {
        let r = s.run(tls, 2, 1);
        println!("{r}");
        let what = format!("{tls:?} -r 1 crypto_binding=2");
        if let Err(e) = good(&r, true, &what) {
            failures.push(e);
        } else if r.accepts != 2 || r.resumed < 1 {
            failures.push(format!(
                "{what}: expected 2 accepts, 1 resumed: {}",
                r.explain()
            ));
        } else if r.log.matches(PEER_BOUND).count() != 2 {
            failures.push(format!("{what}: both logins bind: {}", r.explain()));
        }
    }
    assert_all(failures);
}

/// `required`: a client that binds logs in; one that answers without the TLV is refused
/// (after the tunnel was up and the inner login passed).
#[test]
fn required_binding_refuses_a_client_that_does_not_bind() {
    let s = server(Some("required"));
    let mut failures = Vec::new();
    let (r, refused) = binding_rejects(|| s.run(TlsMax::V1_2, 0, 0));
    println!("{r} crypto_binding=0");
    if !(r.rejected() && r.handshake_done) {
        failures.push(format!(
            "required vs crypto_binding=0: expected Access-Reject: {}",
            r.explain()
        ));
    }
    if refused != 1 {
        failures.push(format!(
            "one reject for peap_crypto_binding_failed, not {refused}"
        ));
    }
    for tls in TlsMax::ALL {
        let r = s.run(tls, 2, 0);
        println!("{r} crypto_binding=2");
        if let Err(e) = good(&r, true, &format!("required vs {tls:?} crypto_binding=2")) {
            failures.push(e);
        }
    }
    assert_all(failures);
}

/// `off`: no Cryptobinding TLV, as before; a client that would bind if asked logs in with the
/// tunnel's keys.
#[test]
fn off_sends_no_binding() {
    let s = server(Some("off"));
    let mut failures = Vec::new();
    for binding in [0u8, 1] {
        let r = s.run(TlsMax::V1_2, binding, 0);
        println!("{r} crypto_binding={binding}");
        if let Err(e) = good(&r, false, &format!("off vs crypto_binding={binding}")) {
            failures.push(e);
        }
    }
    assert_all(failures);
}

// ---------------------------------------------------------------------------------------------
// The same modes in memory: the load generator's PEAP client (which, like crypto_binding=0,
// answers the Result TLV without a Cryptobinding TLV) against `auth::start` / `auth::resume`.
// ---------------------------------------------------------------------------------------------

mod in_memory {
    use radshard::bench::eap::args::TlsVersion;
    use radshard::bench::eap::conversation::Conversation;
    use radshard::bench::eap::setup::Method;
    use radshard::proto::Code;

    use super::binding_rejects;
    use crate::common::eap_memory::{self, Server};

    fn server(mode: &str) -> Server {
        Server::build(|certs| {
            let d = certs.display();
            format!(
                "[[users]]\nname = \"alice\"\npassword = \"alice-pw\"\n\
                 [eap]\nmethods = [\"peap\"]\npeap_crypto_binding = \"{mode}\"\n\
                 [eap.tls]\ncertificate = \"{d}/server.pem\"\nprivate_key = \"{d}/server.key\"\n"
            )
        })
    }

    /// A PEAP-MSCHAPv2 login of alice to its end (an Accept's MPPE keys checked against the
    /// client's TLS MSK).
    fn login(srv: &Server, tls: TlsVersion) -> Code {
        let setup = eap_memory::setup(Method::Peap, srv.certs(), tls, false, 1000);
        let mut conv = Conversation::new(setup.slot_config());
        eap_memory::login(srv, &setup, &mut conv, "alice", "alice-pw").0
    }

    /// optional and off: a peer that does not bind logs in with the tunnel's MSK; required:
    /// it is refused, for binding.
    #[test]
    fn a_peer_that_does_not_bind_by_mode() {
        for tls in [TlsVersion::Tls12, TlsVersion::Tls13] {
            for mode in ["optional", "off"] {
                assert_eq!(
                    login(&server(mode), tls),
                    Code::AccessAccept,
                    "{mode} {tls:?}"
                );
            }
            let srv = server("required");
            let refused = binding_rejects(|| login(&srv, tls));
            assert_eq!(refused, (Code::AccessReject, 1), "required {tls:?}");
        }
    }
}

/// Serialises the logins whose refusals are counted: the reject counters are the process's.
static REJECT_COUNT: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// What `f` returns, and how many logins were refused for crypto-binding while it ran.
fn binding_rejects<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let _one_at_a_time = REJECT_COUNT.lock().unwrap_or_else(|e| e.into_inner());
    let count = || {
        radshard::metrics::eap()
            .rejects
            .lock()
            .map(|m| m.get("peap_crypto_binding_failed").copied().unwrap_or(0))
            .unwrap_or(0)
    };
    let before = count();
    let t = f();
    (t, count() - before)
}
