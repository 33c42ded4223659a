//! A client certificate's names, as policies and the EAP-TLS identity rule see them.

use x509_parser::extensions::GeneralName;
use x509_parser::oid_registry::Oid;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::TlsError;

/// Microsoft's User Principal Name otherName (`szOID_NT_PRINCIPAL_NAME`).
const UPN_OID: &str = "1.3.6.1.4.1.311.20.2.3";

/// The fields of a (verified) client certificate that decisions use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerCertificate {
    pub subject_cn: Option<String>,
    pub san_email: Vec<String>,
    pub san_dns: Vec<String>,
    /// otherName 1.3.6.1.4.1.311.20.2.3 (UPN), as Windows client certificates carry.
    pub san_upn: Vec<String>,
    pub issuer_cn: Option<String>,
    /// Lower-case hex, no separators, as the DER integer's octets.
    pub serial: String,
    pub not_after_unix: i64,
}

impl PeerCertificate {
    /// Reads the fields of one DER certificate (the leaf rustls verified). Names that are
    /// not valid text are skipped, not guessed at.
    pub fn parse(der: &[u8]) -> Result<PeerCertificate, TlsError> {
        let (rest, cert) =
            X509Certificate::from_der(der).map_err(|e| TlsError::PeerCertificate(e.to_string()))?;
        if !rest.is_empty() {
            return Err(TlsError::PeerCertificate(
                "trailing data after the certificate".into(),
            ));
        }
        let cn = |name: &x509_parser::x509::X509Name<'_>| {
            name.iter_common_name()
                .next()
                .and_then(|a| a.as_str().ok())
                .map(str::to_string)
        };
        let mut out = PeerCertificate {
            subject_cn: cn(cert.subject()),
            issuer_cn: cn(cert.issuer()),
            serial: cert
                .raw_serial()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
            not_after_unix: cert.validity().not_after.timestamp(),
            ..PeerCertificate::default()
        };
        let san = cert
            .subject_alternative_name()
            .map_err(|e| TlsError::PeerCertificate(format!("subjectAltName: {e}")))?;
        let upn: Oid<'static> = UPN_OID.parse().map_err(|_| {
            TlsError::PeerCertificate("internal: the UPN OID does not parse".into())
        })?;
        for name in san.iter().flat_map(|s| s.value.general_names.iter()) {
            match name {
                GeneralName::RFC822Name(e) => out.san_email.push((*e).to_string()),
                GeneralName::DNSName(d) => out.san_dns.push((*d).to_string()),
                GeneralName::OtherName(oid, value) if *oid == upn => {
                    if let Some(u) = other_name_utf8(value) {
                        out.san_upn.push(u);
                    }
                }
                _ => {}
            }
        }
        Ok(out)
    }
}

/// The UTF8String inside an otherName's `[0] EXPLICIT` value.
fn other_name_utf8(value: &[u8]) -> Option<String> {
    use x509_parser::der_parser::asn1_rs::{Any, Utf8String};
    let (_, tagged) = Any::from_der(value).ok()?;
    let (_, s) = Utf8String::from_der(tagged.data).ok()?;
    Some(s.string())
}

/// How an EAP-TLS client certificate is tied to the EAP identity the client sent (written
/// `"none"`, `"cn"`, `"san"`, `"san-or-cn"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IdentityRule {
    /// Any identity: the certificate alone decides (its names still reach the policies).
    None,
    /// The subject CN.
    Cn,
    /// A SAN: email, UPN or DNS name.
    San,
    /// A SAN or the subject CN: every name the CA vouched for in the certificate.
    #[default]
    SanOrCn,
}

impl IdentityRule {
    pub fn label(self) -> &'static str {
        match self {
            IdentityRule::None => "none",
            IdentityRule::Cn => "cn",
            IdentityRule::San => "san",
            IdentityRule::SanOrCn => "san-or-cn",
        }
    }

    pub fn from_label(label: &str) -> Option<IdentityRule> {
        [
            IdentityRule::None,
            IdentityRule::Cn,
            IdentityRule::San,
            IdentityRule::SanOrCn,
        ]
        .into_iter()
        .find(|r| r.label() == label)
    }

    /// Does the certificate name `identity` (the EAP identity)? Case-insensitive ASCII
    /// compare; `san`: email, UPN or DNS name. A DNS name also matches a Windows machine
    /// identity `host/<name>`. An empty identity matches nothing (except under `none`).
    pub fn matches(self, cert: &PeerCertificate, identity: &str) -> bool {
        if self == IdentityRule::None {
            return true;
        }
        if identity.is_empty() {
            return false;
        }
        let eq = |name: &String| name.eq_ignore_ascii_case(identity);
        let host = identity
            .get(..5)
            .filter(|p| p.eq_ignore_ascii_case("host/"))
            .map(|_| &identity[5..]);
        let san = || {
            cert.san_email.iter().any(eq)
                || cert.san_upn.iter().any(eq)
                || cert
                    .san_dns
                    .iter()
                    .any(|d| eq(d) || host.is_some_and(|h| d.eq_ignore_ascii_case(h)))
        };
        let cn = || cert.subject_cn.as_ref().is_some_and(eq);
        match self {
            IdentityRule::None => true,
            IdentityRule::Cn => cn(),
            IdentityRule::San => san(),
            IdentityRule::SanOrCn => san() || cn(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert() -> PeerCertificate {
        PeerCertificate {
            subject_cn: Some("Alice Example".into()),
            san_email: vec!["alice@example.test".into()],
            san_dns: vec!["laptop.example.test".into()],
            san_upn: vec!["alice@corp.example".into()],
            ..PeerCertificate::default()
        }
    }

    #[test]
    fn identity_rules() {
        let c = cert();
        use IdentityRule::*;
        assert!(None.matches(&c, "anyone"));
        assert!(None.matches(&c, ""));
        assert!(Cn.matches(&c, "alice example"));
        assert!(!Cn.matches(&c, "alice@example.test"));
        assert!(San.matches(&c, "ALICE@example.test"));
        assert!(San.matches(&c, "alice@CORP.example"));
        assert!(San.matches(&c, "laptop.example.test"));
        assert!(San.matches(&c, "HOST/laptop.example.test"));
        assert!(!San.matches(&c, "host/other.example.test"));
        assert!(!San.matches(&c, "Alice Example"));
        assert!(SanOrCn.matches(&c, "Alice Example"));
        assert!(SanOrCn.matches(&c, "alice@example.test"));
        assert!(!SanOrCn.matches(&c, "bob@example.test"));
        assert!(!SanOrCn.matches(&c, ""));
        // Non-ASCII is compared exactly, never case-folded.
        let u = PeerCertificate {
            subject_cn: Some("Émile".into()),
            ..PeerCertificate::default()
        };
        assert!(Cn.matches(&u, "Émile"));
        assert!(!Cn.matches(&u, "éMILE"));
        assert!(!Cn.matches(&PeerCertificate::default(), "x"));
    }

    #[test]
    fn labels_round_trip() {
        for r in [
            IdentityRule::None,
            IdentityRule::Cn,
            IdentityRule::San,
            IdentityRule::SanOrCn,
        ] {
            assert_eq!(IdentityRule::from_label(r.label()), Some(r));
        }
        assert_eq!(IdentityRule::from_label("subject"), Option::None);
        assert_eq!(IdentityRule::default(), IdentityRule::SanOrCn);
    }

    #[test]
    fn parses_names_of_a_generated_client_certificate() {
        let dir = tempfile::tempdir().expect("tempdir");
        crate::tls::pki::write_test_pki(dir.path(), crate::tls::pki::KeyKind::Ecdsa, false)
            .expect("pki");
        use rustls::pki_types::pem::PemObject;
        let der = rustls::pki_types::CertificateDer::from_pem_file(dir.path().join("client.pem"))
            .expect("client.pem");
        let p = PeerCertificate::parse(&der).expect("parse");
        assert_eq!(p.subject_cn.as_deref(), Some("alice@example.test"));
        assert_eq!(p.san_email, ["alice@example.test"]);
        assert!(p.san_dns.is_empty() && p.san_upn.is_empty());
        assert_eq!(p.issuer_cn.as_deref(), Some(crate::tls::pki::CA_NAME));
        assert!(!p.serial.is_empty() && p.serial.bytes().all(|b| b.is_ascii_hexdigit()));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs() as i64;
        assert!(p.not_after_unix > now + 9 * 365 * 86_400, "{p:?}");
        assert!(IdentityRule::SanOrCn.matches(&p, "Alice@Example.test"));
        assert!(PeerCertificate::parse(&der[..der.len() - 1]).is_err());
        assert!(PeerCertificate::parse(b"").is_err());
    }

    #[test]
    fn reads_a_upn() {
        use rcgen::{CertificateParams, KeyPair, OtherNameValue, SanType};
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let mut params = CertificateParams::new(vec!["pc.example.test".to_string()]).expect("p");
        params.subject_alt_names.push(SanType::OtherName((
            vec![1, 3, 6, 1, 4, 1, 311, 20, 2, 3],
            OtherNameValue::Utf8String("alice@corp.example".into()),
        )));
        let cert = params.self_signed(&key).expect("cert");
        let p = PeerCertificate::parse(cert.der()).expect("parse");
        assert_eq!(p.san_upn, ["alice@corp.example"]);
        assert_eq!(p.san_dns, ["pc.example.test"]);
        assert!(IdentityRule::San.matches(&p, "ALICE@corp.example"));
    }
}
