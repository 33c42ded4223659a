//! `[eap]`: the EAP methods offered (PEAP, EAP-TTLS, EAP-TLS), their limits and their TLS.
//!
//! ```toml
//! [eap]
//! methods = ["peap", "ttls", "eap-tls"]   # offered, in order (default: these; eap-tls only with a ca)
//! fragment_size = 1024                    # TLS data per EAP packet, 64..=4000
//! max_conversations = 10000               # open EAP conversations at most (whole server)
//! max_per_client = 5000                   # per client (NAS); default max_conversations / 2
//! idle_timeout = "60s"                    # a conversation with no round for this long is dropped
//! workers = 0                             # TLS handshake threads; 0 = available cores
//! queue = 1024                            # handshake jobs waiting for a worker at most
//! identity = "san-or-cn"                  # EAP-TLS: none | cn | san | san-or-cn
//! inner_methods = ["mschapv2", "gtc"]     # inner EAP of PEAP and TTLS, first proposed; a Nak picks another
//! peap_crypto_binding = "optional"        # PEAP: optional | required | off (see below)
//! [eap.tls]
//! certificate = "certs/server.pem"        # relative: to this file's directory
//! private_key = "certs/server.key"
//! ca = "certs/ca.pem"                     # client certificates must chain to it (EAP-TLS)
//! crls = []
//! min_version = "1.2"
//! max_version = "1.3"
//! resumption = true
//! session_lifetime = "1h"                 # 1s..=6h
//! session_cache = 10000
//! ```
//!
//! `peap_crypto_binding` (MS-PEAP §3.1.5.5): after the inner login, PEAP's Result TLV carries
//! a Cryptobinding TLV whose Compound MAC ties the inner method's key to the tunnel, so that
//! an inner login relayed into someone else's tunnel fails. "optional" (the default, as hostap
//! and NPS): sent; a peer that answers with a valid one gets MPPE keys from the compound key,
//! one that answers without gets the tunnel's; a wrong one is refused. "required": a response
//! without a valid one is refused (for peers that all bind: wpa_supplicant's
//! `crypto_binding=1/2`, Windows). "off": never sent, the Result TLV alone.
//!
//! The certificate, key, CA and CRLs are loaded while the config is read
//! ([`EapConfig::server_tls`]), so `check-config` and a reload refuse a file rustls cannot use,
//! at the line of the `[eap.tls]` key that names it.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::cfg::{positive, ConfigError, DurationValue};
use crate::proto::eap::peap_binding::BindingMode;
use crate::tls::config::{RawTls, TlsConfig, TlsLines};
use crate::tls::{IdentityRule, ServerTls, TlsSettings};
use crate::vocab::Method;

const DEFAULT_FRAGMENT: usize = 1024;
/// The smallest fragment that still carries a TLS record header and some data; the largest
/// that fits one RADIUS packet (4096 octets) with the EAP and RADIUS headers around it.
const FRAGMENTS: std::ops::RangeInclusive<usize> = 64..=4000;
/// EAP-MSCHAPv2 first (what Windows and most supplicants speak), EAP-GTC for a supplicant
/// that Naks it (a password, and a one-time code when a policy wants one).
const DEFAULT_INNER: [InnerMethod; 2] = [InnerMethod::MsChapV2, InnerMethod::Gtc];
const DEFAULT_CONVERSATIONS: usize = 10_000;
const DEFAULT_IDLE: Duration = Duration::from_secs(60);
const MAX_WORKERS: usize = 1024;
const DEFAULT_QUEUE: usize = 1024;

/// `[eap]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEap {
    pub methods: Option<Spanned<Vec<Spanned<String>>>>,
    pub fragment_size: Option<Spanned<usize>>,
    pub max_conversations: Option<Spanned<usize>>,
    pub max_per_client: Option<Spanned<usize>>,
    pub idle_timeout: Option<Spanned<DurationValue>>,
    pub workers: Option<Spanned<usize>>,
    pub queue: Option<Spanned<usize>>,
    pub identity: Option<Spanned<String>>,
    pub inner_methods: Option<Spanned<Vec<Spanned<String>>>>,
    pub peap_crypto_binding: Option<Spanned<String>>,
    pub tls: Spanned<RawTls>,
}

/// `[eap]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EapConfig {
    /// Offered in this order: the first is proposed after the EAP-Response/Identity, a Nak
    /// may pick another of these. Only EAP methods; not empty; no duplicates; EAP-TLS only
    /// with `tls.ca`.
    pub methods: Vec<Method>,
    /// TLS data per EAP packet.
    pub fragment_size: usize,
    /// Open EAP conversations at most, whole server.
    pub max_conversations: usize,
    /// Open EAP conversations at most per client (NAS); at most `max_conversations`.
    pub max_per_client: usize,
    /// A conversation with no round for this long is dropped.
    pub idle_timeout: Duration,
    /// TLS handshake threads, at least 1 (`0` in the file was resolved to the available cores).
    pub workers: usize,
    /// Handshake jobs waiting for a worker at most; beyond, refused.
    pub queue: usize,
    /// EAP-TLS: how the certificate is tied to the EAP identity.
    pub identity: IdentityRule,
    /// The inner EAP methods of PEAP and TTLS, in order: the first is proposed after the
    /// inner Identity, a Nak may pick another. Not empty, no duplicates.
    pub inner_methods: Vec<InnerMethod>,
    /// PEAP: whether the Result TLV carries a Cryptobinding TLV, and whether the peer must
    /// answer it.
    pub peap_crypto_binding: BindingMode,
    pub tls: TlsSettings,
    /// Where the `[eap.tls]` keys were written, for errors found when the files are loaded.
    pub lines: TlsLines,
}

/// An inner EAP method of PEAP and TTLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InnerMethod {
    /// EAP-MSCHAPv2: the NT key answers it (local, LDAP NT hash, AD through winbind).
    MsChapV2,
    /// EAP-GTC: the password in the clear inside the tunnel, checked like PAP; a policy's
    /// one-time code is asked for in a second GTC round.
    Gtc,
}

impl InnerMethod {
    pub fn from_label(s: &str) -> Option<InnerMethod> {
        match s {
            "mschapv2" => Some(InnerMethod::MsChapV2),
            "gtc" => Some(InnerMethod::Gtc),
            _ => None,
        }
    }

    /// Its EAP Type.
    pub fn eap_type(self) -> crate::proto::eap::EapType {
        match self {
            InnerMethod::MsChapV2 => crate::proto::eap::EapType::MsChapV2,
            InnerMethod::Gtc => crate::proto::eap::EapType::Gtc,
        }
    }
}

fn read_inner_methods(
    raw: Option<Spanned<Vec<Spanned<String>>>>,
    err: &impl Fn(Range<usize>, String) -> ConfigError,
) -> Result<Vec<InnerMethod>, ConfigError> {
    let Some(list) = raw else {
        return Ok(DEFAULT_INNER.to_vec());
    };
    let read = read_methods(
        list,
        MethodList {
            key: "eap.inner_methods",
            names: "(\"mschapv2\", \"gtc\")",
            empty: "",
            unknown: "is not an inner method served here: use \"mschapv2\" or \"gtc\"",
        },
        InnerMethod::from_label,
        err,
    )?;
    Ok(read.into_iter().map(|(m, _)| m).collect())
}

/// How a list of method names is explained when refused.
struct MethodList {
    key: &'static str,
    /// The names served, for the "at least one" refusal.
    names: &'static str,
    /// Added to the "at least one" refusal.
    empty: &'static str,
    /// Said of a name `parse` does not know.
    unknown: &'static str,
}

/// A non-empty list of method names without duplicates, each with its span.
fn read_methods<T: PartialEq>(
    list: Spanned<Vec<Spanned<String>>>,
    how: MethodList,
    parse: impl Fn(&str) -> Option<T>,
    err: &impl Fn(Range<usize>, String) -> ConfigError,
) -> Result<Vec<(T, Range<usize>)>, ConfigError> {
    let span = list.span();
    let list = list.into_inner();
    if list.is_empty() {
        return Err(err(
            span,
            format!(
                "{} must name at least one method {}{}",
                how.key, how.names, how.empty
            ),
        ));
    }
    let mut methods: Vec<(T, Range<usize>)> = Vec::with_capacity(list.len());
    for m in list {
        let method = parse(m.get_ref()).ok_or_else(|| {
            err(
                m.span(),
                format!("{}: {:?} {}", how.key, m.get_ref(), how.unknown),
            )
        })?;
        if methods.iter().any(|(seen, _)| *seen == method) {
            return Err(err(
                m.span(),
                format!("{} names {:?} twice", how.key, m.get_ref()),
            ));
        }
        methods.push((method, m.span()));
    }
    Ok(methods)
}

impl EapConfig {
    /// Validates `[eap]` from `origin`; `at` maps a span to its line, `resolve` makes a
    /// written path absolute (relative to the config file's directory). Loads the TLS files.
    pub fn from_raw(
        raw: RawEap,
        origin: &Path,
        at: &impl Fn(Range<usize>) -> usize,
        resolve: &impl Fn(&Path) -> PathBuf,
    ) -> Result<EapConfig, ConfigError> {
        let err = |span: Range<usize>, reason: String| ConfigError::new(origin, at(span), reason);
        let TlsConfig {
            settings: tls,
            lines,
        } = TlsConfig::from_raw(raw.tls, "eap.tls", origin, at, resolve)?;

        let methods = match raw.methods {
            None if tls.ca.is_some() => vec![Method::Peap, Method::Ttls, Method::EapTls],
            None => vec![Method::Peap, Method::Ttls],
            Some(list) => {
                let read = read_methods(
                    list,
                    MethodList {
                        key: "eap.methods",
                        names: "(\"peap\", \"ttls\", \"eap-tls\")",
                        empty: "; leave the [eap] section out to offer none",
                        unknown: "is not an EAP method served here: use \"peap\", \"ttls\" or \"eap-tls\"",
                    },
                    |label| Method::from_label(label).filter(|m| m.is_eap()),
                    &err,
                )?;
                if let Some((_, at)) = read
                    .iter()
                    .find(|(m, _)| *m == Method::EapTls && tls.ca.is_none())
                {
                    return Err(err(
                        at.clone(),
                        "eap.methods: \"eap-tls\" needs [eap.tls] ca, the CAs client certificates must chain to".into(),
                    ));
                }
                read.into_iter().map(|(m, _)| m).collect()
            }
        };

        let fragment_size = match raw.fragment_size {
            Some(n) if !FRAGMENTS.contains(n.get_ref()) => {
                return Err(err(
                    n.span(),
                    format!(
                        "eap.fragment_size must be between {} and {}",
                        FRAGMENTS.start(),
                        FRAGMENTS.end()
                    ),
                ))
            }
            Some(n) => n.into_inner(),
            None => DEFAULT_FRAGMENT,
        };
        let max_conversations = positive(raw.max_conversations, "eap.max_conversations", &err)?
            .unwrap_or(DEFAULT_CONVERSATIONS);
        let max_per_client = match raw.max_per_client {
            Some(n) if *n.get_ref() > max_conversations => {
                return Err(err(
                    n.span(),
                    format!(
                    "eap.max_per_client must be at most max_conversations ({max_conversations})"
                ),
                ))
            }
            n => positive(n, "eap.max_per_client", &err)?.unwrap_or((max_conversations / 2).max(1)),
        };
        let idle_timeout = match raw.idle_timeout {
            Some(d) if d.get_ref().0.is_zero() => {
                return Err(err(d.span(), "eap.idle_timeout must be positive".into()))
            }
            Some(d) => d.into_inner().0,
            None => DEFAULT_IDLE,
        };
        let workers = match raw.workers {
            Some(n) if *n.get_ref() > MAX_WORKERS => {
                return Err(err(
                    n.span(),
                    format!(
                        "eap.workers must be at most {MAX_WORKERS} (0: one per available core)"
                    ),
                ))
            }
            Some(n) if *n.get_ref() > 0 => n.into_inner(),
            _ => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        let queue = positive(raw.queue, "eap.queue", &err)?.unwrap_or(DEFAULT_QUEUE);
        let identity = match raw.identity {
            Some(i) => IdentityRule::from_label(i.get_ref()).ok_or_else(|| {
                err(
                    i.span(),
                    format!(
                        "eap.identity {:?}: use \"none\", \"cn\", \"san\" or \"san-or-cn\"",
                        i.get_ref()
                    ),
                )
            })?,
            None => IdentityRule::default(),
        };
        let peap_crypto_binding = match raw.peap_crypto_binding {
            Some(b) => BindingMode::from_label(b.get_ref()).ok_or_else(|| {
                err(
                    b.span(),
                    format!(
                        "eap.peap_crypto_binding {:?}: use \"optional\", \"required\" or \"off\"",
                        b.get_ref()
                    ),
                )
            })?,
            None => BindingMode::default(),
        };

        let inner_methods = read_inner_methods(raw.inner_methods, &err)?;

        let config = EapConfig {
            methods,
            inner_methods,
            fragment_size,
            max_conversations,
            max_per_client,
            idle_timeout,
            workers,
            queue,
            identity,
            peap_crypto_binding,
            tls,
            lines,
        };
        config.server_tls()?;
        Ok(config)
    }

    /// Builds the rustls configurations; a failure is reported at the line of the
    /// `[eap.tls]` key naming the file at fault.
    pub fn server_tls(&self) -> Result<ServerTls, ConfigError> {
        crate::tls::config::server_tls(&self.tls, &self.lines, "eap.tls")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cfg::line_of;
    use crate::tls::pki::{write_test_pki, KeyKind};
    use crate::tls::TlsVersion;

    #[derive(Deserialize)]
    struct File {
        eap: RawEap,
    }

    const TLS: &str = "[eap.tls]\ncertificate = \"certs/server.pem\"\nprivate_key = \"certs/server.key\"\nca = \"certs/ca.pem\"\n";

    fn pki() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        write_test_pki(&dir.path().join("certs"), KeyKind::Ecdsa, false).expect("pki");
        dir
    }

    fn load(dir: &Path, text: &str) -> Result<EapConfig, ConfigError> {
        let origin = dir.join("radshard.toml");
        let f: File = toml::from_str(text).map_err(|e| {
            ConfigError::new(
                &origin,
                e.span().map_or(0, |s| line_of(text, s.start)),
                e.message().to_string(),
            )
        })?;
        EapConfig::from_raw(
            f.eap,
            &origin,
            &|r: Range<usize>| line_of(text, r.start),
            &|p: &Path| {
                if p.is_relative() {
                    dir.join(p)
                } else {
                    p.to_path_buf()
                }
            },
        )
    }

    /// The error for `[eap]` holding `eap` (lines 2.. of the file), then [`TLS`].
    fn refused(dir: &Path, eap: &str) -> ConfigError {
        load(dir, &format!("[eap]\n{eap}\n{TLS}")).expect_err("should be refused")
    }

    #[test]
    fn defaults_and_relative_paths() {
        let dir = pki();
        let c = load(dir.path(), &format!("[eap]\n{TLS}")).expect("valid");
        assert_eq!(c.methods, [Method::Peap, Method::Ttls, Method::EapTls]);
        assert_eq!(c.fragment_size, 1024);
        assert_eq!((c.max_conversations, c.max_per_client), (10_000, 5_000));
        assert_eq!(c.idle_timeout, Duration::from_secs(60));
        assert!(c.workers >= 1);
        assert_eq!(c.queue, 1024);
        assert_eq!(c.identity, IdentityRule::SanOrCn);
        assert_eq!(c.inner_methods, [InnerMethod::MsChapV2, InnerMethod::Gtc]);
        assert_eq!(c.peap_crypto_binding, BindingMode::Optional);
        let certs = dir.path().join("certs");
        assert_eq!(c.tls.certificate, certs.join("server.pem"));
        assert_eq!(c.tls.private_key, certs.join("server.key"));
        assert_eq!(c.tls.ca, Some(certs.join("ca.pem")));
        assert!(c.tls.crls.is_empty());
        assert_eq!(
            (c.tls.min_version, c.tls.max_version),
            (TlsVersion::V1_2, TlsVersion::V1_3)
        );
        assert!(c.tls.resumption);
        assert_eq!(c.tls.session_lifetime, Duration::from_secs(3600));
        assert_eq!(c.tls.session_cache, 10_000);
        assert!(c.server_tls().expect("tls").mutual.is_some());

        // Without a ca: no EAP-TLS by default.
        let c = load(
            dir.path(),
            "[eap]\n[eap.tls]\ncertificate = \"certs/server.pem\"\nprivate_key = \"certs/server.key\"\n",
        )
        .expect("valid");
        assert_eq!(c.methods, [Method::Peap, Method::Ttls]);
        assert!(c.server_tls().expect("tls").mutual.is_none());
    }

    #[test]
    fn every_setting_is_read() {
        let dir = pki();
        let abs = dir.path().join("certs").join("server.pem");
        crate::tls::pki::write_test_crl(&dir.path().join("certs"), &[]).expect("crl");
        let text = format!(
            "[eap]\nmethods = [\"eap-tls\", \"peap\"]\nfragment_size = 1400\nmax_conversations = 100\n\
             max_per_client = 100\nidle_timeout = \"30s\"\nworkers = 3\nqueue = 7\nidentity = \"cn\"\n\
             peap_crypto_binding = \"required\"\n\
             [eap.tls]\ncertificate = {abs:?}\nprivate_key = \"certs/server.key\"\nca = \"certs/ca.pem\"\n\
             crls = [\"certs/crl.pem\"]\nmin_version = \"1.3\"\nmax_version = \"1.3\"\nresumption = false\n\
             session_lifetime = \"10m\"\nsession_cache = 5\n"
        );
        let c = load(dir.path(), &text).expect("valid");
        assert_eq!(c.methods, [Method::EapTls, Method::Peap]);
        assert_eq!(
            (c.fragment_size, c.max_conversations, c.max_per_client),
            (1400, 100, 100)
        );
        assert_eq!(c.idle_timeout, Duration::from_secs(30));
        assert_eq!((c.workers, c.queue, c.identity), (3, 7, IdentityRule::Cn));
        assert_eq!(c.tls.certificate, abs);
        assert_eq!(c.tls.crls, [dir.path().join("certs/crl.pem")]);
        assert_eq!(c.tls.min_version, TlsVersion::V1_3);
        assert!(!c.tls.resumption);
        assert_eq!(c.tls.session_lifetime, Duration::from_secs(600));
        assert_eq!(c.tls.session_cache, 5);
        assert_eq!(c.peap_crypto_binding, BindingMode::Required);
        assert_eq!(c.lines.crls, [15]);
        for mode in BindingMode::ALL {
            let text = format!("[eap]\npeap_crypto_binding = {:?}\n{TLS}", mode.label());
            let c = load(dir.path(), &text).expect("valid");
            assert_eq!(c.peap_crypto_binding, mode);
        }
        // max_per_client follows a small max_conversations down, never to 0.
        let c = load(dir.path(), &format!("[eap]\nmax_conversations = 1\n{TLS}")).expect("valid");
        assert_eq!(c.max_per_client, 1);
        let c = load(
            dir.path(),
            &format!("[eap]\ninner_methods = [\"gtc\"]\n{TLS}"),
        )
        .expect("valid");
        assert_eq!(c.inner_methods, [InnerMethod::Gtc]);
    }

    #[test]
    fn bad_values_name_their_line() {
        let dir = pki();
        let d = dir.path();
        let cases: &[(&str, &str)] = &[
            ("methods = [\"peap\", \"pap\"]", "not an EAP method"),
            ("methods = [\"peap\", \"md5\"]", "not an EAP method"),
            ("methods = []", "at least one"),
            ("methods = [\"peap\", \"peap\"]", "twice"),
            ("fragment_size = 63", "between 64 and 4000"),
            ("fragment_size = 4001", "between 64 and 4000"),
            ("max_conversations = 0", "at least 1"),
            ("max_per_client = 0", "at least 1"),
            ("max_per_client = 10001", "at most max_conversations"),
            ("idle_timeout = \"0s\"", "positive"),
            ("workers = 5000", "at most 1024"),
            ("queue = 0", "at least 1"),
            ("identity = \"subject\"", "san-or-cn"),
            ("inner_methods = []", "at least one"),
            ("inner_methods = [\"gtc\", \"pap\"]", "not an inner method"),
            ("inner_methods = [\"gtc\", \"gtc\"]", "twice"),
            (
                "peap_crypto_binding = \"yes\"",
                "\"optional\", \"required\" or \"off\"",
            ),
            ("peap_crypto_binding = \"Required\"", "peap_crypto_binding"),
            ("peap_crypto_binding = 2", "string"),
        ];
        for (line, why) in cases {
            let e = refused(d, line);
            assert_eq!(
                (e.file.clone(), e.line),
                (d.join("radshard.toml"), 2),
                "{line}: {e}"
            );
            assert!(e.reason.contains(why), "{line}: {e}");
        }
        let e = refused(d, "bogus = 1");
        assert_eq!(e.line, 2, "{e}");

        // eap-tls without a ca, at the method's line.
        let e = load(
            d,
            "[eap]\nmethods = [\"peap\",\n  \"eap-tls\"]\n[eap.tls]\ncertificate = \"certs/server.pem\"\nprivate_key = \"certs/server.key\"\n",
        )
        .expect_err("eap-tls without ca");
        assert_eq!(e.line, 3, "{e}");
        assert!(e.reason.contains("needs [eap.tls] ca"), "{e}");

        let tls_case = |extra: &str, line: usize, why: &str| {
            let e = load(d, &format!("[eap]\n{TLS}{extra}\n")).expect_err(extra);
            assert_eq!(e.line, line, "{extra}: {e}");
            assert!(e.reason.contains(why), "{extra}: {e}");
        };
        tls_case("min_version = \"1.1\"", 6, "not a TLS version");
        tls_case("max_version = \"2\"", 6, "not a TLS version");
        tls_case(
            "min_version = \"1.3\"\nmax_version = \"1.2\"",
            6,
            "above max_version",
        );
        tls_case("session_lifetime = \"0s\"", 6, "between 1s and 6h");
        tls_case("session_lifetime = \"7h\"", 6, "between 1s and 6h");
        tls_case("session_cache = 0", 6, "at least 1");
        tls_case("crls = [\"certs/ca.key\"]", 6, "crl");
        tls_case("bogus = true", 6, "bogus");
        // The TLS files themselves: missing, or not what they should be.
        let e =
            load(d, "[eap]\n[eap.tls]\nprivate_key = \"certs/server.key\"\n").expect_err("no cert");
        assert!(e.reason.contains("certificate"), "{e}");
        let file_case = |text: &str, line: usize, why: &str| {
            let e = load(d, text).expect_err(text);
            assert_eq!(
                (e.file.clone(), e.line),
                (d.join("radshard.toml"), line),
                "{e}"
            );
            assert!(e.reason.contains(why), "{e}");
        };
        file_case(
            "[eap]\n[eap.tls]\ncertificate = \"certs/missing.pem\"\nprivate_key = \"certs/server.key\"\n",
            3,
            "missing.pem",
        );
        file_case(
            "[eap]\n[eap.tls]\ncertificate = \"certs/server.pem\"\nprivate_key = \"certs/client.key\"\n",
            4,
            "does not match",
        );
        file_case(
            "[eap]\n[eap.tls]\ncertificate = \"certs/server.pem\"\nprivate_key = \"certs/server.key\"\n\nca = \"certs/server.key\"\n",
            6,
            "no PEM certificate",
        );
    }

    #[test]
    fn the_whole_config_file_resolves_against_its_directory() {
        let dir = pki();
        let path = dir.path().join("radshard.toml");
        std::fs::write(
            &path,
            format!("[[clients]]\nname = \"lo\"\naddresses = [\"127.0.0.1\"]\nsecret = \"s3cret\"\n\n[eap]\n{TLS}"),
        )
        .expect("write");
        let c = crate::config::Config::load_file(&path).expect("valid");
        let eap = c.eap.expect("[eap]");
        assert_eq!(eap.tls.certificate, dir.path().join("certs/server.pem"));
        // Without [eap], none.
        let c = crate::config::Config::from_str(
            crate::config::EMBEDDED_DEFAULT,
            Path::new("radshard.toml"),
            None,
        )
        .expect("default");
        assert!(c.eap.is_none());
        // The error of a file names the config file's line.
        std::fs::write(dir.path().join("certs/server.pem"), "").expect("truncate");
        let e = crate::config::Config::load_file(&path).expect_err("empty certificate");
        assert_eq!((e.file.clone(), e.line), (path.clone(), 8), "{e}");
    }

    #[test]
    fn the_shipped_example_is_valid() {
        let dir = pki();
        let path = dir.path().join("eap.toml");
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("config/eap.toml"),
            &path,
        )
        .expect("copy");
        let c = crate::config::Config::load_file(&path).expect("config/eap.toml");
        let eap = c.eap.expect("[eap]");
        assert_eq!(eap.methods, [Method::Peap, Method::Ttls, Method::EapTls]);
        assert_eq!(eap.tls.ca, Some(dir.path().join("certs/ca.pem")));
        assert_eq!(c.users[0].name, "alice");
    }
}
