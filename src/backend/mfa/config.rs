//! `[mfa]`: the second factor required by network policies with `mfa = true`. Without this
//! section the policies' flag is only logged (as before).

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::config::schema::DurationValue;
use crate::config::{ConfigError, SecretText};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMfa {
    /// `"totp"`: built-in RFC 6238 codes, secrets in `[[users]] totp_secret`.
    pub provider: Spanned<String>,
    /// How long an issued challenge (its State) stays valid (default "120s", at most "10m").
    pub challenge_ttl: Option<Spanned<DurationValue>>,
    /// Reply-Message of the Access-Challenge.
    pub prompt: Option<Spanned<String>>,
    /// Users with no second factor enrolled: "reject" (default) or "accept".
    pub unenrolled: Option<Spanned<String>>,
    /// Challenges pending at once (default 100000); beyond that new ones are refused.
    pub max_pending: Option<Spanned<usize>>,
    /// When the provider cannot be asked: "reject" (fail-secure, default) or "accept"
    /// (fail-safe: the primary result stands).
    pub on_unreachable: Option<Spanned<String>>,
    /// Clients (`[[clients]] name`) whose requests need no second factor (NAS allowlist).
    #[serde(default)]
    pub exempt_clients: Vec<String>,
    /// Users in one of these groups (DN or first RDN value, as in policies) need none.
    #[serde(default)]
    pub exempt_groups: Vec<String>,
    /// `provider = "privacyidea"`.
    pub privacyidea: Option<Spanned<RawPrivacyIdea>>,
    /// `provider = "rest_push"`.
    pub rest_push: Option<Spanned<RawRestPush>>,
    /// `provider = "duo"`.
    pub duo: Option<Spanned<RawDuo>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDuo {
    /// The Auth API hostname, e.g. `api-xxxxxxxx.duosecurity.com` (https); an explicit
    /// `http://127.…`/`http://localhost…` base is accepted only for loopback testing.
    pub api_host: Spanned<String>,
    pub integration_key: Spanned<String>,
    pub secret_key: Spanned<String>,
    /// `"push"` (default: the request is held for the user's answer) or `"passcode"`
    /// (Access-Challenge, the code in the follow-up's User-Password).
    pub factor: Option<Spanned<String>>,
    /// Push: how long the Access-Request is held for the user's answer (default "60s").
    pub wait: Option<Spanned<DurationValue>>,
    /// Push: how often the pending push's status is asked (default "1s", 100ms to 10s).
    pub poll_interval: Option<Spanned<DurationValue>>,
    /// Per HTTP request (default "10s", at most "60s").
    pub timeout: Option<Spanned<DurationValue>>,
}

impl std::fmt::Debug for RawDuo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret key.
        f.debug_struct("RawDuo")
            .field("api_host", self.api_host.get_ref())
            .field("integration_key", self.integration_key.get_ref())
            .finish_non_exhaustive()
    }
}

/// What Duo asks of the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DuoFactor {
    Push,
    Passcode,
}

/// A validated `[mfa.duo]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuoConfig {
    /// Where requests go: `https://{api_host}` (or the loopback test base).
    pub base: String,
    /// The host as signed (lowercase, without scheme; with the port for a loopback base).
    pub host: String,
    pub integration_key: String,
    pub secret_key: SecretText,
    pub factor: DuoFactor,
    pub wait: Duration,
    pub poll_interval: Duration,
    pub timeout: Duration,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRestPush {
    /// POSTed `{"user": …, "client": …}`; answers `{"approved": true|false}` once the user
    /// decided (a long poll). `https://` (or `http://` on loopback).
    pub url: Spanned<String>,
    /// How long the Access-Request is held for the user's answer (default "60s").
    pub wait: Option<Spanned<DurationValue>>,
    /// How often a pending push's status is asked (default "1s", 100ms to 10s).
    pub poll_interval: Option<Spanned<DurationValue>>,
}

/// A validated `[mfa.rest_push]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestPushConfig {
    pub url: String,
    pub wait: Duration,
    pub poll_interval: Duration,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPrivacyIdea {
    /// Base URL: `https://…` (or `http://` on loopback).
    pub url: Spanned<String>,
    /// Realm sent with every check; default: privacyIDEA's default realm.
    #[serde(default)]
    pub realm: String,
    /// Per HTTP request (default "5s").
    pub timeout: Option<Spanned<DurationValue>>,
    /// privacyIDEA admin account allowed `triggerchallenge`: with it radshard has privacyIDEA
    /// trigger the challenge (code typed without PIN, push tokens); without it radshard issues
    /// its own challenge and sends PIN+code.
    pub service_user: Option<Spanned<String>>,
    pub service_password: Option<Spanned<String>>,
    /// How long a request is held for a push token's answer (default "60s", 1s to 5m).
    pub push_wait: Option<Spanned<DurationValue>>,
    /// How often privacyIDEA is polled during a push (default "1s", 100ms to 10s).
    pub poll_interval: Option<Spanned<DurationValue>>,
    /// Users with both a push and a code token: push (default true) or code challenge.
    pub prefer_push: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provider {
    Totp,
    PrivacyIdea(super::privacyidea::PrivacyIdeaConfig),
    /// Generic REST push: the request is held until the user approves or denies.
    RestPush(RestPushConfig),
    /// Duo Auth API v2: preauth, then push (held request) or passcode (challenge).
    Duo(DuoConfig),
}

impl Provider {
    pub fn label(&self) -> &'static str {
        match self {
            Provider::Totp => "totp",
            Provider::PrivacyIdea(_) => "privacyidea",
            Provider::RestPush(_) => "rest_push",
            Provider::Duo(_) => "duo",
        }
    }

    /// The user answers a push: the request itself is held (any authentication method).
    pub fn is_push(&self) -> bool {
        match self {
            Provider::RestPush(_) => true,
            Provider::Duo(d) => d.factor == DuoFactor::Push,
            _ => false,
        }
    }

    /// The request is held while the provider is asked before anything is answered: pushes,
    /// and Duo's passcode factor (its preauth decides between challenge, bypass and reject).
    pub fn holds(&self) -> bool {
        matches!(self, Provider::RestPush(_) | Provider::Duo(_))
    }
}

/// A validated `[mfa]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MfaConfig {
    pub provider: Provider,
    pub challenge_ttl: Duration,
    pub prompt: String,
    /// Accept users with no second factor enrolled (else reject them).
    pub accept_unenrolled: bool,
    pub max_pending: usize,
    /// Provider unreachable: accept (primary result stands) instead of reject.
    pub accept_unreachable: bool,
    pub exempt_clients: Vec<String>,
    pub exempt_groups: Vec<String>,
}

pub const DEFAULT_PROMPT: &str = "Enter your one-time code";

impl MfaConfig {
    pub fn from_raw(
        raw: RawMfa,
        origin: &Path,
        at: &impl Fn(std::ops::Range<usize>) -> usize,
    ) -> Result<MfaConfig, ConfigError> {
        let err = |span: std::ops::Range<usize>, m: String| ConfigError::new(origin, at(span), m);
        let http_ok = |url: &str| {
            url.starts_with("https://")
                || ["http://127.", "http://localhost", "http://[::1]"]
                    .iter()
                    .any(|p| url.starts_with(p))
        };
        if raw.rest_push.is_some() && raw.provider.get_ref() != "rest_push" {
            return Err(err(
                raw.provider.span(),
                "[mfa.rest_push] is set but mfa.provider is not \"rest_push\"".into(),
            ));
        }
        if let ("rest_push", Some(p)) = (raw.provider.get_ref().as_str(), &raw.rest_push) {
            let url = p.get_ref().url.get_ref().clone();
            if !http_ok(&url) {
                return Err(err(
                    p.get_ref().url.span(),
                    "mfa.rest_push.url must be https:// (http:// only on loopback)".into(),
                ));
            }
        }
        if raw.duo.is_some() && raw.provider.get_ref() != "duo" {
            return Err(err(
                raw.provider.span(),
                "[mfa.duo] is set but mfa.provider is not \"duo\"".into(),
            ));
        }
        let provider = match (raw.provider.get_ref().as_str(), raw.privacyidea) {
            ("duo", None) => match raw.duo {
                Some(d) => Provider::Duo(duo_from_raw(d.into_inner(), &err, &http_ok)?),
                None => {
                    return Err(err(
                        raw.provider.span(),
                        "mfa.provider = \"duo\" needs an [mfa.duo] section with api_host, integration_key and secret_key".into(),
                    ))
                }
            },
            ("rest_push", None) => match raw.rest_push {
                Some(p) => {
                    let p = p.into_inner();
                    let wait = match p.wait {
                        Some(w) => {
                            let d = w.get_ref().0;
                            if d < Duration::from_secs(1) || d > Duration::from_secs(300) {
                                return Err(err(
                                    w.span(),
                                    "mfa.rest_push.wait must be between 1s and 5m".into(),
                                ));
                            }
                            d
                        }
                        None => Duration::from_secs(60),
                    };
                    let poll_interval = match p.poll_interval {
                        Some(i) => {
                            let d = i.get_ref().0;
                            if d < Duration::from_millis(100) || d > Duration::from_secs(10) {
                                return Err(err(
                                    i.span(),
                                    "mfa.rest_push.poll_interval must be between 100ms and 10s"
                                        .into(),
                                ));
                            }
                            d
                        }
                        None => Duration::from_secs(1),
                    };
                    Provider::RestPush(RestPushConfig {
                        url: p.url.into_inner().trim_end_matches('/').to_string(),
                        wait,
                        poll_interval,
                    })
                }
                None => {
                    return Err(err(
                        raw.provider.span(),
                        "mfa.provider = \"rest_push\" needs an [mfa.rest_push] section with url"
                            .into(),
                    ))
                }
            },
            ("totp", None) => Provider::Totp,
            ("privacyidea", Some(pi)) => {
                let span = pi.span();
                let pi = pi.into_inner();
                let url = pi.url.get_ref().trim_end_matches('/').to_string();
                let loopback = ["http://127.", "http://localhost", "http://[::1]"]
                    .iter()
                    .any(|p| url.starts_with(p));
                if !(url.starts_with("https://") || loopback) {
                    return Err(err(
                        pi.url.span(),
                        "mfa.privacyidea.url must be https:// (http:// only on loopback)".into(),
                    ));
                }
                let timeout = match pi.timeout {
                    Some(t) if t.get_ref().0.is_zero() => {
                        return Err(err(t.span(), "mfa.privacyidea.timeout must not be 0".into()))
                    }
                    Some(t) => t.into_inner().0,
                    None => Duration::from_secs(5),
                };
                let service = match (pi.service_user, pi.service_password) {
                    (None, None) => None,
                    (Some(u), Some(p)) => {
                        if u.get_ref().is_empty() {
                            return Err(err(
                                u.span(),
                                "mfa.privacyidea.service_user must not be empty".into(),
                            ));
                        }
                        Some(super::privacyidea::ServiceAccount {
                            user: u.into_inner(),
                            password: p.into_inner(),
                        })
                    }
                    (Some(u), None) => {
                        return Err(err(
                            u.span(),
                            "mfa.privacyidea.service_user needs service_password".into(),
                        ))
                    }
                    (None, Some(p)) => {
                        return Err(err(
                            p.span(),
                            "mfa.privacyidea.service_password needs service_user".into(),
                        ))
                    }
                };
                let ranged = |v: Option<Spanned<DurationValue>>,
                              min: Duration,
                              max: Duration,
                              default: Duration,
                              what: &str|
                 -> Result<Duration, ConfigError> {
                    match v {
                        Some(v) if v.get_ref().0 < min || v.get_ref().0 > max => Err(err(
                            v.span(),
                            format!("mfa.privacyidea.{what} must be between {min:?} and {max:?}"),
                        )),
                        Some(v) => Ok(v.into_inner().0),
                        None => Ok(default),
                    }
                };
                let push_wait = ranged(
                    pi.push_wait,
                    Duration::from_secs(1),
                    Duration::from_secs(300),
                    Duration::from_secs(60),
                    "push_wait",
                )?;
                let poll_interval = ranged(
                    pi.poll_interval,
                    Duration::from_millis(100),
                    Duration::from_secs(10),
                    Duration::from_secs(1),
                    "poll_interval",
                )?;
                let _ = span;
                Provider::PrivacyIdea(super::privacyidea::PrivacyIdeaConfig {
                    url,
                    realm: pi.realm,
                    timeout,
                    service,
                    push_wait,
                    poll_interval,
                    prefer_push: pi.prefer_push.unwrap_or(true),
                })
            }
            ("privacyidea", None) => {
                return Err(err(
                    raw.provider.span(),
                    "mfa.provider = \"privacyidea\" needs an [mfa.privacyidea] section with url".into(),
                ))
            }
            ("totp", Some(pi)) => {
                return Err(err(
                    pi.span(),
                    "[mfa.privacyidea] is set but mfa.provider is \"totp\"".into(),
                ))
            }
            (other, _) => {
                return Err(err(
                    raw.provider.span(),
                    format!("mfa.provider {other:?} is not supported (supported: \"totp\", \"privacyidea\", \"rest_push\", \"duo\")"),
                ))
            }
        };
        let accept_unreachable = match raw.on_unreachable {
            Some(u) => match u.get_ref().as_str() {
                "reject" => false,
                "accept" => true,
                other => {
                    return Err(err(
                        u.span(),
                        format!("mfa.on_unreachable {other:?} must be \"reject\" or \"accept\""),
                    ))
                }
            },
            None => false,
        };
        let challenge_ttl = match raw.challenge_ttl {
            Some(t) => {
                let d = t.get_ref().0;
                if d < Duration::from_secs(10) || d > Duration::from_secs(600) {
                    return Err(err(
                        t.span(),
                        "mfa.challenge_ttl must be between 10s and 10m".into(),
                    ));
                }
                d
            }
            None => Duration::from_secs(120),
        };
        let prompt = match raw.prompt {
            Some(p) => {
                if p.get_ref().is_empty() || p.get_ref().len() > 253 {
                    return Err(err(p.span(), "mfa.prompt must be 1 to 253 octets".into()));
                }
                p.into_inner()
            }
            None => DEFAULT_PROMPT.to_string(),
        };
        let accept_unenrolled = match raw.unenrolled {
            Some(u) => match u.get_ref().as_str() {
                "reject" => false,
                "accept" => true,
                other => {
                    return Err(err(
                        u.span(),
                        format!("mfa.unenrolled {other:?} must be \"reject\" or \"accept\""),
                    ))
                }
            },
            None => false,
        };
        let max_pending = match raw.max_pending {
            Some(m) if *m.get_ref() == 0 => {
                return Err(err(m.span(), "mfa.max_pending must be at least 1".into()))
            }
            Some(m) => m.into_inner(),
            None => 100_000,
        };
        Ok(MfaConfig {
            provider,
            challenge_ttl,
            prompt,
            accept_unenrolled,
            max_pending,
            accept_unreachable,
            exempt_clients: raw.exempt_clients,
            exempt_groups: raw.exempt_groups,
        })
    }
}

/// A duration within `[min, max]`, or `default`; else `FILE:LINE: name must be between …`.
fn duration_in(
    v: Option<Spanned<DurationValue>>,
    default: Duration,
    (min, max): (Duration, Duration),
    name: &str,
    bounds: &str,
    err: &impl Fn(std::ops::Range<usize>, String) -> ConfigError,
) -> Result<Duration, ConfigError> {
    match v {
        Some(v) => {
            let d = v.get_ref().0;
            if d < min || d > max {
                return Err(err(v.span(), format!("{name} must be between {bounds}")));
            }
            Ok(d)
        }
        None => Ok(default),
    }
}

fn duo_from_raw(
    d: RawDuo,
    err: &impl Fn(std::ops::Range<usize>, String) -> ConfigError,
    http_ok: &impl Fn(&str) -> bool,
) -> Result<DuoConfig, ConfigError> {
    let given = d
        .api_host
        .get_ref()
        .trim()
        .trim_end_matches('/')
        .to_string();
    let (base, host) = match given.split_once("://") {
        Some((_, rest)) if http_ok(&given) => (given.clone(), rest.to_ascii_lowercase()),
        Some(_) => {
            return Err(err(
                d.api_host.span(),
                "mfa.duo.api_host must be a host name like api-xxxxxxxx.duosecurity.com (https), or https://… (http:// only on loopback)".into(),
            ))
        }
        None => (format!("https://{given}"), given.to_ascii_lowercase()),
    };
    // The host is signed: a path, query or credentials in it would break every signature.
    if host.is_empty()
        || !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c))
    {
        return Err(err(
            d.api_host.span(),
            "mfa.duo.api_host must be a bare host name (letters, digits, '-', '.', optional :port)"
                .into(),
        ));
    }
    let nonempty = |v: &Spanned<String>, name: &str| {
        let t = v.get_ref().trim();
        if t.is_empty() || t.len() > 256 || !t.chars().all(|c| c.is_ascii_graphic()) {
            Err(err(
                v.span(),
                format!("mfa.duo.{name} must be 1 to 256 printable ASCII characters"),
            ))
        } else {
            Ok(t.to_string())
        }
    };
    let integration_key = nonempty(&d.integration_key, "integration_key")?;
    let secret_key = SecretText::new(nonempty(&d.secret_key, "secret_key")?);
    let factor = match &d.factor {
        None => DuoFactor::Push,
        Some(f) => match f.get_ref().as_str() {
            "push" => DuoFactor::Push,
            "passcode" => DuoFactor::Passcode,
            other => {
                return Err(err(
                    f.span(),
                    format!("mfa.duo.factor {other:?} must be \"push\" or \"passcode\""),
                ))
            }
        },
    };
    let wait = duration_in(
        d.wait,
        Duration::from_secs(60),
        (Duration::from_secs(1), Duration::from_secs(300)),
        "mfa.duo.wait",
        "1s and 5m",
        err,
    )?;
    let poll_interval = duration_in(
        d.poll_interval,
        Duration::from_secs(1),
        (Duration::from_millis(100), Duration::from_secs(10)),
        "mfa.duo.poll_interval",
        "100ms and 10s",
        err,
    )?;
    let timeout = duration_in(
        d.timeout,
        Duration::from_secs(10),
        (Duration::from_millis(100), Duration::from_secs(60)),
        "mfa.duo.timeout",
        "100ms and 60s",
        err,
    )?;
    Ok(DuoConfig {
        base,
        host,
        integration_key,
        secret_key,
        factor,
        wait,
        poll_interval,
        timeout,
    })
}
