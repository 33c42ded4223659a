//! The test PKI of `radshard certs` and the TLS server configurations built on it: in-memory
//! handshakes (rustls client ↔ server over byte buffers, no sockets) for mutual
//! authentication, refusal of foreign and revoked client certificates, and resumption; then
//! the built binary's `certs` and `check-config` on the shipped `config/eap.toml`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use radshard::tls::pki::{self, KeyKind};
use radshard::tls::{PeerCertificate, ServerTls, TlsError, TlsFile, TlsSettings, TlsVersion};
use rustls::client::Resumption;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, HandshakeKind, RootCertStore, ServerConnection};

fn settings(dir: &Path) -> TlsSettings {
    let mut s = TlsSettings::new(dir.join("server.pem"), dir.join("server.key"));
    s.ca = Some(dir.join("ca.pem"));
    s
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn version(v: TlsVersion) -> &'static rustls::SupportedProtocolVersion {
    match v {
        TlsVersion::V1_2 => &rustls::version::TLS12,
        TlsVersion::V1_3 => &rustls::version::TLS13,
    }
}

/// A client trusting `ca_dir`'s CA, presenting `client_dir`'s client certificate if given.
fn client(ca_dir: &Path, cert_dir: Option<&Path>, v: TlsVersion) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca_dir.join("ca.pem")).expect("ca.pem") {
        roots.add(c.expect("ca cert")).expect("root");
    }
    let b = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[version(v)])
        .expect("versions")
        .with_root_certificates(roots);
    Arc::new(match cert_dir {
        Some(d) => {
            let chain = CertificateDer::pem_file_iter(d.join("client.pem"))
                .expect("client.pem")
                .collect::<Result<Vec<_>, _>>()
                .expect("chain");
            let key = PrivateKeyDer::from_pem_file(d.join("client.key")).expect("client.key");
            b.with_client_auth_cert(chain, key).expect("client auth")
        }
        None => b.with_no_client_auth(),
    })
}

/// Runs one handshake to its end, moving bytes both ways through a buffer, as EAP will.
/// Returns the server side (for its handshake kind and peer certificate) or the first error.
fn handshake(
    client: &Arc<ClientConfig>,
    server: &Arc<rustls::ServerConfig>,
) -> Result<ServerConnection, rustls::Error> {
    let name = ServerName::try_from(pki::SERVER_NAME).expect("name");
    let mut c = ClientConnection::new(client.clone(), name).expect("client");
    let mut s = ServerConnection::new(server.clone()).expect("server");
    let mut buf = Vec::new();
    // A full handshake is 2-3 flights each way; tickets one more: 20 rounds is plenty.
    for _ in 0..20 {
        let mut moved = false;
        while c.wants_write() {
            buf.clear();
            c.write_tls(&mut buf).expect("client write");
            s.read_tls(&mut &buf[..]).expect("server read");
            s.process_new_packets()?;
            moved = true;
        }
        while s.wants_write() {
            buf.clear();
            s.write_tls(&mut buf).expect("server write");
            c.read_tls(&mut &buf[..]).expect("client read");
            c.process_new_packets()?;
            moved = true;
        }
        if !moved && !c.is_handshaking() && !s.is_handshaking() {
            return Ok(s);
        }
    }
    panic!("handshake did not finish in 20 rounds");
}

fn pki_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    pki::write_test_pki(dir.path(), KeyKind::Rsa, false).expect("write_test_pki");
    dir
}

#[test]
fn mutual_handshake_accepts_the_client_on_tls12_and_tls13() {
    let dir = pki_dir();
    let tls = ServerTls::build(&settings(dir.path())).expect("build");
    let mutual = tls.mutual.as_ref().expect("mutual with a ca");
    for v in [TlsVersion::V1_2, TlsVersion::V1_3] {
        let s = handshake(&client(dir.path(), Some(dir.path()), v), mutual)
            .unwrap_or_else(|e| panic!("TLS {v}: {e}"));
        assert_eq!(s.handshake_kind(), Some(HandshakeKind::Full), "TLS {v}");
        let leaf = &s.peer_certificates().expect("client certificate")[0];
        let p = PeerCertificate::parse(leaf).expect("parse");
        assert_eq!(p.san_email, [pki::CLIENT_NAME]);
        // No client certificate: refused by `mutual`, fine for `tunnel`.
        assert!(
            handshake(&client(dir.path(), None, v), mutual).is_err(),
            "TLS {v}"
        );
        let s = handshake(&client(dir.path(), None, v), &tls.tunnel).expect("tunnel");
        assert!(s.peer_certificates().is_none());
    }
}

#[test]
fn ecdsa_pki_works_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    pki::write_test_pki(dir.path(), KeyKind::Ecdsa, false).expect("write_test_pki");
    let tls = ServerTls::build(&settings(dir.path())).expect("build");
    for v in [TlsVersion::V1_2, TlsVersion::V1_3] {
        handshake(
            &client(dir.path(), Some(dir.path()), v),
            tls.mutual.as_ref().expect("mutual"),
        )
        .unwrap_or_else(|e| panic!("TLS {v}: {e}"));
    }
}

#[test]
fn a_client_certificate_of_another_ca_is_refused() {
    let dir = pki_dir();
    let other = tempfile::tempdir().expect("tempdir");
    pki::write_test_pki(other.path(), KeyKind::Ecdsa, false).expect("second pki");
    let tls = ServerTls::build(&settings(dir.path())).expect("build");
    for v in [TlsVersion::V1_2, TlsVersion::V1_3] {
        // The client trusts our server, but its certificate is from the other CA.
        let e = handshake(
            &client(dir.path(), Some(other.path()), v),
            tls.mutual.as_ref().expect("mutual"),
        )
        .expect_err("foreign client certificate accepted");
        assert!(
            matches!(e, rustls::Error::InvalidCertificate(_)),
            "TLS {v}: {e:?}"
        );
    }
}

#[test]
fn a_revoked_client_certificate_is_refused() {
    let dir = pki_dir();
    let client_der =
        CertificateDer::from_pem_file(dir.path().join("client.pem")).expect("client.pem");
    let serial = PeerCertificate::parse(&client_der).expect("parse").serial;
    let serial: Vec<u8> = (0..serial.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&serial[i..i + 2], 16).expect("hex"))
        .collect();

    // A CRL revoking another serial: the client still gets in.
    let crl = pki::write_test_crl(dir.path(), &[vec![0x01, 0x02, 0x03]]).expect("crl");
    let mut s = settings(dir.path());
    s.crls = vec![crl.clone()];
    let tls = ServerTls::build(&s).expect("build with crl");
    for v in [TlsVersion::V1_2, TlsVersion::V1_3] {
        handshake(
            &client(dir.path(), Some(dir.path()), v),
            tls.mutual.as_ref().expect("mutual"),
        )
        .unwrap_or_else(|e| panic!("TLS {v} with an unrelated revocation: {e}"));
    }

    pki::write_test_crl(dir.path(), &[serial]).expect("crl");
    let tls = ServerTls::build(&s).expect("build with crl");
    for v in [TlsVersion::V1_2, TlsVersion::V1_3] {
        let e = handshake(
            &client(dir.path(), Some(dir.path()), v),
            tls.mutual.as_ref().expect("mutual"),
        )
        .expect_err("revoked client certificate accepted");
        assert!(
            matches!(
                e,
                rustls::Error::InvalidCertificate(rustls::CertificateError::Revoked)
            ),
            "TLS {v}: {e:?}"
        );
    }

    // A CRL of another CA is refused when the settings are built.
    let other = pki_dir();
    let foreign = pki::write_test_crl(other.path(), &[]).expect("crl");
    s.crls = vec![crl, foreign.clone()];
    match ServerTls::build(&s) {
        Err(TlsError::BadCrl { index: 1, path, .. }) => assert_eq!(path, foreign),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_second_handshake_on_tunnel_is_resumed() {
    let dir = pki_dir();
    let tls = ServerTls::build(&settings(dir.path())).expect("build");
    for v in [TlsVersion::V1_2, TlsVersion::V1_3] {
        let c = client(dir.path(), None, v);
        let first = handshake(&c, &tls.tunnel).expect("first");
        assert_eq!(first.handshake_kind(), Some(HandshakeKind::Full), "TLS {v}");
        let second = handshake(&c, &tls.tunnel).expect("second");
        assert_eq!(
            second.handshake_kind(),
            Some(HandshakeKind::Resumed),
            "TLS {v}"
        );
    }
    // TLS 1.2 by session ID alone (the server's session cache, not a ticket).
    let mut c = (*client(dir.path(), None, TlsVersion::V1_2)).clone();
    c.resumption =
        Resumption::default().tls12_resumption(rustls::client::Tls12Resumption::SessionIdOnly);
    let c = Arc::new(c);
    handshake(&c, &tls.tunnel).expect("first");
    assert_eq!(
        handshake(&c, &tls.tunnel).expect("second").handshake_kind(),
        Some(HandshakeKind::Resumed)
    );
    // A tunnel session is not resumed on `mutual` (own cache, own ticket keys): the
    // client, without a certificate, is refused there.
    assert!(handshake(&c, tls.mutual.as_ref().expect("mutual")).is_err());
}

#[test]
fn resumption_off_means_full_handshakes() {
    let dir = pki_dir();
    let mut s = settings(dir.path());
    s.resumption = false;
    let tls = ServerTls::build(&s).expect("build");
    for v in [TlsVersion::V1_2, TlsVersion::V1_3] {
        let c = client(dir.path(), None, v);
        handshake(&c, &tls.tunnel).expect("first");
        assert_eq!(
            handshake(&c, &tls.tunnel).expect("second").handshake_kind(),
            Some(HandshakeKind::Full),
            "TLS {v}"
        );
    }
}

#[test]
fn only_the_configured_versions_are_served() {
    let dir = pki_dir();
    let mut s = settings(dir.path());
    s.min_version = TlsVersion::V1_3;
    let tls = ServerTls::build(&s).expect("build");
    assert!(handshake(&client(dir.path(), None, TlsVersion::V1_2), &tls.tunnel).is_err());
    handshake(&client(dir.path(), None, TlsVersion::V1_3), &tls.tunnel).expect("1.3");
    s.max_version = TlsVersion::V1_2;
    assert!(matches!(
        ServerTls::build(&s),
        Err(TlsError::Versions { .. })
    ));
}

#[test]
fn bad_files_are_named() {
    let dir = pki_dir();
    let other = pki_dir();
    let d = dir.path();
    let file_of = |s: &TlsSettings| ServerTls::build(s).expect_err("should fail").file();

    let mut s = settings(d);
    s.certificate = d.join("missing.pem");
    assert_eq!(file_of(&s), Some(TlsFile::Certificate));
    let mut s = settings(d);
    s.certificate = d.join("server.key"); // a key, no certificate
    assert!(matches!(
        ServerTls::build(&s),
        Err(TlsError::NoCertificate { .. })
    ));
    let mut s = settings(d);
    s.private_key = d.join("server.pem"); // a certificate, no key
    assert!(matches!(ServerTls::build(&s), Err(TlsError::NoKey { .. })));
    let mut s = settings(d);
    s.private_key = other.path().join("server.key");
    let e = ServerTls::build(&s).expect_err("foreign key");
    assert!(matches!(e, TlsError::KeyMismatch { .. }), "{e:?}");
    assert!(e.to_string().contains("does not match"), "{e}");
    let mut s = settings(d);
    s.ca = Some(d.join("client.key"));
    assert_eq!(file_of(&s), Some(TlsFile::Ca));
    let garbage = d.join("garbage.pem");
    std::fs::write(
        &garbage,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .expect("write");
    let mut s = settings(d);
    s.ca = Some(garbage.clone());
    assert_eq!(file_of(&s), Some(TlsFile::Ca));
    let mut s = settings(d);
    s.crls = vec![garbage];
    assert_eq!(file_of(&s), Some(TlsFile::Crl(0)));
    let mut s = settings(d);
    s.ca = None;
    s.crls = vec![d.join("ca.pem")];
    assert!(matches!(ServerTls::build(&s), Err(TlsError::CrlsWithoutCa)));
    // Without a ca there is no mutual configuration.
    let mut s = settings(d);
    s.ca = None;
    assert!(ServerTls::build(&s).expect("build").mutual.is_none());
}

#[test]
fn write_test_pki_refuses_to_overwrite_and_protects_keys() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("certs");
    let files = pki::write_test_pki(&out, KeyKind::Ecdsa, false).expect("first");
    assert_eq!(files.len(), 6);
    for f in &files {
        let mode = std::fs::metadata(f).expect("meta").permissions().mode() & 0o777;
        let is_key = f.extension().is_some_and(|e| e == "key");
        assert_eq!(mode, if is_key { 0o600 } else { 0o644 }, "{}", f.display());
    }
    let before = std::fs::read(out.join("ca.pem")).expect("read");
    match pki::write_test_pki(&out, KeyKind::Ecdsa, false) {
        Err(pki::PkiError::Exists(p)) => assert_eq!(p, out.join("ca.pem")),
        other => panic!("{other:?}"),
    }
    assert_eq!(std::fs::read(out.join("ca.pem")).expect("read"), before);
    std::fs::set_permissions(out.join("ca.key"), std::fs::Permissions::from_mode(0o644))
        .expect("chmod");
    pki::write_test_pki(&out, KeyKind::Ecdsa, true).expect("forced");
    assert_ne!(std::fs::read(out.join("ca.pem")).expect("read"), before);
    let mode = std::fs::metadata(out.join("ca.key"))
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

fn radshard(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_radshard"))
        .args(args)
        .output()
        .expect("run radshard")
}

fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

#[test]
fn certs_command_then_check_config_of_the_shipped_eap_example() {
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = dir.path().join("certs");
    let certs_s = certs.to_str().expect("utf-8 path");
    let out = radshard(&["certs", "--out", certs_s]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in pki::FILES {
        assert!(certs.join(f).is_file(), "{f}");
        assert!(stdout.contains(f), "{stdout}");
    }
    assert!(stdout.contains("tests only"), "{stdout}");

    // Again: refused without --force, written with it.
    let again = radshard(&["certs", "--out", certs_s, "--key", "ecdsa"]);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("--force"),
        "{again:?}"
    );
    let forced = radshard(&["certs", "--out", certs_s, "--key", "ecdsa", "--force"]);
    assert!(forced.status.success(), "{forced:?}");
    assert!(!radshard(&["certs", "--out", certs_s, "--key", "dsa"])
        .status
        .success());

    // config/eap.toml next to certs/, exactly as shipped.
    let config = dir.path().join("eap.toml");
    std::fs::copy(repo_file("config/eap.toml"), &config).expect("copy eap.toml");
    let config_s = config.to_str().expect("utf-8 path");
    let check = radshard(&["check-config", "--config", config_s]);
    assert!(
        check.status.success(),
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(stdout.contains("eap: peap, ttls, eap-tls"), "{stdout}");

    // A broken key: check-config names the config line of `private_key`.
    std::fs::write(certs.join("server.key"), "not a key\n").expect("write");
    let check = radshard(&["check-config", "--config", config_s]);
    assert!(!check.status.success());
    let stderr = String::from_utf8_lossy(&check.stderr);
    let text = std::fs::read_to_string(&config).expect("read");
    let line = 1 + text
        .lines()
        .position(|l| l.trim_start().starts_with("private_key"))
        .expect("private_key line");
    assert!(
        stderr.contains(&format!("{config_s}:{line}: ")),
        "line {line}: {stderr}"
    );
    assert!(stderr.contains("server.key"), "{stderr}");
}
