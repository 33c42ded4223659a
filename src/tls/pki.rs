//! `radshard certs`: a throwaway PKI for tests and first steps, written with rcgen.
//!
//! A CA, a server certificate for `radius.test` and a client certificate for
//! `alice@example.test`, each with its key. The CA's key lies unprotected beside its
//! certificate, so this PKI must never be trusted outside a test.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevokedCertParams, SanType, SerialNumber,
};
use time::OffsetDateTime;

/// The test CA's subject CN.
pub const CA_NAME: &str = "radshard test CA";
/// The server certificate's CN and DNS name.
pub const SERVER_NAME: &str = "radius.test";
/// The client certificate's CN and email.
pub const CLIENT_NAME: &str = "alice@example.test";

const DAY: Duration = Duration::from_secs(86_400);
/// Ten years, counting the leap days.
const VALIDITY: Duration = Duration::from_secs(3_652 * 86_400);

/// The kind of key every certificate of the PKI gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyKind {
    /// RSA-2048, what FreeRADIUS's test certificates use.
    #[default]
    Rsa,
    /// ECDSA P-256.
    Ecdsa,
}

impl KeyKind {
    pub fn from_label(label: &str) -> Option<KeyKind> {
        match label {
            "rsa" => Some(KeyKind::Rsa),
            "ecdsa" => Some(KeyKind::Ecdsa),
            _ => None,
        }
    }

    fn generate(self) -> Result<KeyPair, PkiError> {
        match self {
            KeyKind::Rsa => {
                KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
            }
            KeyKind::Ecdsa => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
        }
        .map_err(|e| PkiError::Generate(e.to_string()))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("{} already exists (use --force to overwrite)", .0.display())]
    Exists(PathBuf),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot generate the test PKI: {0}")]
    Generate(String),
}

/// The files [`write_test_pki`] writes, in order.
pub const FILES: [&str; 6] = [
    "ca.pem",
    "ca.key",
    "server.pem",
    "server.key",
    "client.pem",
    "client.key",
];

/// Writes the test PKI into `dir` (created if missing) and returns the files written. With
/// `force` false, refuses before writing anything if one of them exists. Keys are 0600.
pub fn write_test_pki(dir: &Path, key: KeyKind, force: bool) -> Result<Vec<PathBuf>, PkiError> {
    let paths: Vec<PathBuf> = FILES.iter().map(|f| dir.join(f)).collect();
    if !force {
        if let Some(p) = paths.iter().find(|p| p.exists()) {
            return Err(PkiError::Exists(p.clone()));
        }
    }
    std::fs::create_dir_all(dir).map_err(|source| PkiError::Io {
        path: dir.to_path_buf(),
        source,
    })?;

    let gen = |e: rcgen::Error| PkiError::Generate(e.to_string());
    let (not_before, not_after) = validity();

    let ca_key = key.generate()?;
    let ca_params = ca_params(not_before, not_after);
    let ca_cert = ca_params.self_signed(&ca_key).map_err(gen)?;
    let ca_pem = ca_cert.pem();
    let ca_key_pem = ca_key.serialize_pem();
    let issuer = Issuer::new(ca_params, ca_key);

    let leaf = |cn: &str, san: SanType, eku: ExtendedKeyUsagePurpose| {
        let leaf_key = key.generate()?;
        let mut p = CertificateParams::default();
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.subject_alt_names = vec![san];
        p.serial_number = Some(random_serial());
        p.not_before = not_before;
        p.not_after = not_after;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if key == KeyKind::Rsa {
            // For TLS 1.2 clients that still check it for RSA certificates.
            p.key_usages.push(KeyUsagePurpose::KeyEncipherment);
        }
        p.extended_key_usages = vec![eku];
        p.use_authority_key_identifier_extension = true;
        let cert = p.signed_by(&leaf_key, &issuer).map_err(gen)?;
        Ok::<_, PkiError>((cert.pem(), leaf_key.serialize_pem()))
    };
    let ia5 = |s: &str| s.try_into().map_err(|e: rcgen::Error| gen(e));
    let (server_pem, server_key) = leaf(
        SERVER_NAME,
        SanType::DnsName(ia5(SERVER_NAME)?),
        ExtendedKeyUsagePurpose::ServerAuth,
    )?;
    let (client_pem, client_key) = leaf(
        CLIENT_NAME,
        SanType::Rfc822Name(ia5(CLIENT_NAME)?),
        ExtendedKeyUsagePurpose::ClientAuth,
    )?;

    let contents = [
        ca_pem, ca_key_pem, server_pem, server_key, client_pem, client_key,
    ];
    for (path, text) in paths.iter().zip(contents.iter()) {
        let secret = path.extension().is_some_and(|e| e == "key");
        write_file(path, text.as_bytes(), secret)?;
    }
    Ok(paths)
}

/// Writes `crl.pem` into a directory [`write_test_pki`] wrote, signed by its `ca.key`,
/// revoking the certificates with these serial numbers (the DER integer's octets). For tests
/// of revocation. Overwrites an existing `crl.pem`.
pub fn write_test_crl(dir: &Path, revoked: &[Vec<u8>]) -> Result<PathBuf, PkiError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| PkiError::Io { path, source }
    };
    let gen = |e: rcgen::Error| PkiError::Generate(e.to_string());
    let key_path = dir.join("ca.key");
    let pem = std::fs::read_to_string(&key_path).map_err(io(&key_path))?;
    let ca_key = KeyPair::from_pem(&pem).map_err(gen)?;
    let (not_before, not_after) = validity();
    // The issuer needs only the CA's name, key identifier method and key usages, which
    // ca_params() fixes: the CRL's issuer then matches ca.pem's subject exactly.
    let issuer = Issuer::new(ca_params(not_before, not_after), ca_key);
    let now = at_unix(unix_now());
    let crl = CertificateRevocationListParams {
        this_update: now,
        next_update: now + 30 * DAY,
        crl_number: SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: revoked
            .iter()
            .map(|serial| RevokedCertParams {
                serial_number: SerialNumber::from_slice(serial),
                revocation_time: now,
                reason_code: Some(rcgen::RevocationReason::KeyCompromise),
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: KeyIdMethod::Sha256,
    }
    .signed_by(&issuer)
    .map_err(gen)?;
    let path = dir.join("crl.pem");
    write_file(&path, crl.pem().map_err(gen)?.as_bytes(), false)?;
    Ok(path)
}

fn ca_params(not_before: OffsetDateTime, not_after: OffsetDateTime) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, CA_NAME);
    p.distinguished_name
        .push(DnType::OrganizationName, "radshard tests");
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.serial_number = Some(random_serial());
    p.not_before = not_before;
    p.not_after = not_after;
    p.key_identifier_method = KeyIdMethod::Sha256;
    p
}

/// A positive 16-octet serial: RFC 5280 wants them unique per CA and at most 20 octets.
fn random_serial() -> SerialNumber {
    let mut b: [u8; 16] = rand::random();
    b[0] = (b[0] & 0x7f) | 0x01;
    SerialNumber::from_slice(&b)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Valid from a day ago (clocks of test machines drift) for ten years.
fn validity() -> (OffsetDateTime, OffsetDateTime) {
    let from = at_unix(unix_now().saturating_sub(DAY.as_secs()));
    (from, from + VALIDITY)
}

fn at_unix(secs: u64) -> OffsetDateTime {
    OffsetDateTime::UNIX_EPOCH + Duration::from_secs(secs)
}

fn write_file(path: &Path, bytes: &[u8], secret: bool) -> Result<(), PkiError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let io = |source| PkiError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mode = if secret { 0o600 } else { 0o644 };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(io)?;
    // `mode` applies only to a file created now: an overwritten key keeps its old bits.
    f.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyKind::Rsa => "rsa",
            KeyKind::Ecdsa => "ecdsa",
        })
    }
}
