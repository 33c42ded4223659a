//! `[mfa]`: the second factor required by network policies with `mfa = true`. Without this
//! section the policies' flag is only logged (as before).

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::cfg::{ConfigError, DurationValue, SecretText};

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
    /// A file holding the key MFA States are signed with (hex or base64, at least 32
    /// octets; relative to the config file): nodes sharing it verify each other's States.
    /// Without it the key is random per process.
    pub state_key_file: Option<Spanned<std::path::PathBuf>>,
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRestPush {
    /// Where the push is POSTed. `https://` (or `http://` on loopback).
    pub url: Spanned<String>,
    /// How long the Access-Request is held for the user's answer (default "60s").
    pub wait: Option<Spanned<DurationValue>>,
    /// How often a pending push's status is asked (default "1s", 100ms to 10s); with
    /// `long_poll` the least time between two status requests.
    pub poll_interval: Option<Spanned<DurationValue>>,
    /// The POST body's field for the user (default "user").
    pub user_field: Option<Spanned<String>>,
    /// The POST body's field for the RADIUS client's name (default "client").
    pub client_field: Option<Spanned<String>>,
    /// Constant fields added to the POST body (strings, numbers, booleans).
    pub extra: Option<Spanned<std::collections::BTreeMap<String, Spanned<toml::Value>>>>,
    /// Static headers sent with every request (e.g. Authorization); values never logged.
    pub headers: Option<Spanned<std::collections::BTreeMap<String, Spanned<String>>>>,
    /// JSON pointer to the push's id in the POST answer (default "/id").
    pub id_pointer: Option<Spanned<String>>,
    /// JSON pointer to an immediate decision in the POST answer (default "/approved").
    pub decision_pointer: Option<Spanned<String>>,
    /// Where the status is asked: `{url}` and `{id}` (URL-encoded) are replaced (default
    /// "{url}/{id}").
    pub status_url: Option<Spanned<String>>,
    /// JSON pointer to the status in the status answer (default "/status").
    pub status_pointer: Option<Spanned<String>>,
    /// Status values (strings or booleans) meaning approved, denied, still pending.
    pub approved: Option<Spanned<Vec<toml::Value>>>,
    pub denied: Option<Spanned<Vec<toml::Value>>>,
    pub pending: Option<Spanned<Vec<toml::Value>>>,
    /// The status request is sent again as soon as it answers pending: the service holds it
    /// open until the user decides (default false).
    pub long_poll: Option<bool>,
    /// How long one long-poll status request may stay open (default "30s", 1s to 5m).
    pub long_poll_timeout: Option<Spanned<DurationValue>>,
}

impl std::fmt::Debug for RawRestPush {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Header names only: their values are credentials.
        f.debug_struct("RawRestPush")
            .field("url", self.url.get_ref())
            .field(
                "headers",
                &self
                    .headers
                    .as_ref()
                    .map(|h| h.get_ref().keys().collect::<Vec<_>>()),
            )
            .finish_non_exhaustive()
    }
}

/// A status (or immediate decision) value as the service answers it: JSON strings and
/// booleans are told apart, so `"true"` and `true` are different values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusValue {
    Text(String),
    Bool(bool),
}

impl StatusValue {
    /// The answer's value as one of ours; numbers, objects and null are none.
    pub fn of(v: &serde_json::Value) -> Option<StatusValue> {
        match v {
            serde_json::Value::String(s) => Some(StatusValue::Text(s.clone())),
            serde_json::Value::Bool(b) => Some(StatusValue::Bool(*b)),
            _ => None,
        }
    }
}

/// A validated `[mfa.rest_push]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestPushConfig {
    pub url: String,
    pub wait: Duration,
    pub poll_interval: Duration,
    pub user_field: String,
    pub client_field: String,
    /// Constant POST body fields.
    pub extra: Vec<(String, serde_json::Value)>,
    /// Static request headers: name, value.
    pub headers: Vec<(String, SecretText)>,
    pub id_pointer: String,
    pub decision_pointer: String,
    /// The status URL with `{url}` expanded; `{id}` is replaced per push.
    pub status_url: String,
    pub status_pointer: String,
    pub approved: Vec<StatusValue>,
    pub denied: Vec<StatusValue>,
    pub pending: Vec<StatusValue>,
    /// `Some(per-request timeout)`: long-polling.
    pub long_poll: Option<Duration>,
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
    /// `state_key_file`'s key (read by the aggregate config, which resolves the path).
    pub state_key: Option<crate::auth::conversation::state::KeyMaterial>,
}

pub const DEFAULT_PROMPT: &str = "Enter your one-time code";

impl MfaConfig {
    pub fn from_raw(
        raw: RawMfa,
        origin: &Path,
        at: &impl Fn(std::ops::Range<usize>) -> usize,
    ) -> Result<MfaConfig, ConfigError> {
        let err = |span: std::ops::Range<usize>, m: String| ConfigError::new(origin, at(span), m);
        if raw.rest_push.is_some() && raw.provider.get_ref() != "rest_push" {
            return Err(err(
                raw.provider.span(),
                "[mfa.rest_push] is set but mfa.provider is not \"rest_push\"".into(),
            ));
        }
        if raw.duo.is_some() && raw.provider.get_ref() != "duo" {
            return Err(err(
                raw.provider.span(),
                "[mfa.duo] is set but mfa.provider is not \"duo\"".into(),
            ));
        }
        let provider = match (raw.provider.get_ref().as_str(), raw.privacyidea) {
            ("duo", None) => match raw.duo {
                Some(d) => Provider::Duo(duo_from_raw(d.into_inner(), &err)?),
                None => {
                    return Err(err(
                        raw.provider.span(),
                        "mfa.provider = \"duo\" needs an [mfa.duo] section with api_host, integration_key and secret_key".into(),
                    ))
                }
            },
            ("rest_push", None) => match raw.rest_push {
                Some(p) => Provider::RestPush(rest_push_from_raw(p.into_inner(), &err)?),
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
                Provider::PrivacyIdea(privacyidea_from_raw(pi.into_inner(), &err)?)
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
        let challenge_ttl =
            duration_in(raw.challenge_ttl, &CHALLENGE_TTL, "mfa.challenge_ttl", &err)?;
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
            state_key: None,
        })
    }
}

/// A duration within `[min, max]`, or `default`; else `FILE:LINE: name must be between …`.
/// A duration setting's default and bounds.
struct DurationRule {
    default: Duration,
    min: Duration,
    max: Duration,
    /// The bounds as the error message says them.
    bounds: &'static str,
}

/// How long a request may be held for a push: the same bounds for every push provider.
const PUSH_WAIT: DurationRule = DurationRule {
    default: Duration::from_secs(60),
    min: Duration::from_secs(1),
    max: Duration::from_secs(300),
    bounds: "1s and 5m",
};

/// How often a pending push's status is asked: the same bounds for every push provider.
const POLL_INTERVAL: DurationRule = DurationRule {
    default: Duration::from_secs(1),
    min: Duration::from_millis(100),
    max: Duration::from_secs(10),
    bounds: "100ms and 10s",
};

const CHALLENGE_TTL: DurationRule = DurationRule {
    default: Duration::from_secs(120),
    min: Duration::from_secs(10),
    max: Duration::from_secs(600),
    bounds: "10s and 10m",
};

const LONG_POLL_TIMEOUT: DurationRule = DurationRule {
    default: Duration::from_secs(30),
    ..PUSH_WAIT
};

const DUO_TIMEOUT: DurationRule = DurationRule {
    default: Duration::from_secs(10),
    min: Duration::from_millis(100),
    max: Duration::from_secs(60),
    bounds: "100ms and 60s",
};

/// `v` checked against `rule` (`name` in the error), or the rule's default.
fn duration_in(
    v: Option<Spanned<DurationValue>>,
    rule: &DurationRule,
    name: &str,
    err: &impl Fn(std::ops::Range<usize>, String) -> ConfigError,
) -> Result<Duration, ConfigError> {
    match v {
        Some(v) => {
            let d = v.get_ref().0;
            if d < rule.min || d > rule.max {
                return Err(err(
                    v.span(),
                    format!("{name} must be between {}", rule.bounds),
                ));
            }
            Ok(d)
        }
        None => Ok(rule.default),
    }
}

/// Provider URLs: `https://`, or `http://` on loopback (tests, a local relay).
fn https_or_loopback(url: &str) -> bool {
    url.starts_with("https://")
        || ["http://127.", "http://localhost", "http://[::1]"]
            .iter()
            .any(|p| url.starts_with(p))
}

fn privacyidea_from_raw(
    pi: RawPrivacyIdea,
    err: &impl Fn(std::ops::Range<usize>, String) -> ConfigError,
) -> Result<super::privacyidea::PrivacyIdeaConfig, ConfigError> {
    let url = pi.url.get_ref().trim_end_matches('/').to_string();
    if !https_or_loopback(&url) {
        return Err(err(
            pi.url.span(),
            "mfa.privacyidea.url must be https:// (http:// only on loopback)".into(),
        ));
    }
    let timeout = match pi.timeout {
        Some(t) if t.get_ref().0.is_zero() => {
            return Err(err(
                t.span(),
                "mfa.privacyidea.timeout must not be 0".into(),
            ))
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
    Ok(super::privacyidea::PrivacyIdeaConfig {
        url,
        realm: pi.realm,
        timeout,
        service,
        push_wait: duration_in(pi.push_wait, &PUSH_WAIT, "mfa.privacyidea.push_wait", err)?,
        poll_interval: duration_in(
            pi.poll_interval,
            &POLL_INTERVAL,
            "mfa.privacyidea.poll_interval",
            err,
        )?,
        prefer_push: pi.prefer_push.unwrap_or(true),
    })
}

/// A JSON pointer (RFC 6901): empty (the whole answer) or `/`-separated tokens, `~` only as
/// `~0` or `~1`.
fn pointer_ok(p: &str) -> bool {
    (p.is_empty() || p.starts_with('/'))
        && p.split('~')
            .skip(1)
            .all(|rest| rest.starts_with('0') || rest.starts_with('1'))
}

fn rest_push_from_raw(
    p: RawRestPush,
    err: &impl Fn(std::ops::Range<usize>, String) -> ConfigError,
) -> Result<RestPushConfig, ConfigError> {
    let url = p.url.get_ref().trim_end_matches('/').to_string();
    if !https_or_loopback(&url) {
        return Err(err(
            p.url.span(),
            "mfa.rest_push.url must be https:// (http:// only on loopback)".into(),
        ));
    }
    let wait = duration_in(p.wait, &PUSH_WAIT, "mfa.rest_push.wait", err)?;
    let poll_interval = duration_in(
        p.poll_interval,
        &POLL_INTERVAL,
        "mfa.rest_push.poll_interval",
        err,
    )?;
    let long_poll_timeout = duration_in(
        p.long_poll_timeout,
        &LONG_POLL_TIMEOUT,
        "mfa.rest_push.long_poll_timeout",
        err,
    )?;
    let field = |v: Option<Spanned<String>>, default: &str, name: &str| match v {
        None => Ok((default.to_string(), 0..0)),
        Some(v) if v.get_ref().is_empty() || v.get_ref().len() > 128 => Err(err(
            v.span(),
            format!("mfa.rest_push.{name} must be 1 to 128 characters"),
        )),
        Some(v) => {
            let span = v.span();
            Ok((v.into_inner(), span))
        }
    };
    let (user_field, user_span) = field(p.user_field, "user", "user_field")?;
    let (client_field, client_span) = field(p.client_field, "client", "client_field")?;
    if user_field == client_field {
        // The one given (a default has no place in the file).
        return Err(err(
            if client_span.is_empty() {
                user_span
            } else {
                client_span
            },
            "mfa.rest_push.client_field must differ from user_field".into(),
        ));
    }
    let mut extra = Vec::new();
    for (k, v) in p.extra.map(|e| e.into_inner()).unwrap_or_default() {
        if k == user_field || k == client_field {
            return Err(err(
                v.span(),
                format!("mfa.rest_push.extra.{k} would overwrite the user or client field"),
            ));
        }
        let value = match v.get_ref() {
            toml::Value::String(s) => serde_json::Value::from(s.clone()),
            toml::Value::Integer(i) => serde_json::Value::from(*i),
            toml::Value::Boolean(b) => serde_json::Value::from(*b),
            toml::Value::Float(f) => match serde_json::Number::from_f64(*f) {
                Some(n) => serde_json::Value::Number(n),
                None => {
                    return Err(err(
                        v.span(),
                        format!("mfa.rest_push.extra.{k} must be a finite number"),
                    ))
                }
            },
            _ => {
                return Err(err(
                    v.span(),
                    format!("mfa.rest_push.extra.{k} must be a string, number or boolean"),
                ))
            }
        };
        extra.push((k, value));
    }
    let mut headers = Vec::new();
    for (k, v) in p.headers.map(|h| h.into_inner()).unwrap_or_default() {
        let name_ok = reqwest::header::HeaderName::from_bytes(k.as_bytes()).is_ok();
        // Framing headers are reqwest's to set; a wrong one would break every request.
        let framing = ["host", "content-length", "transfer-encoding", "connection"]
            .contains(&k.to_ascii_lowercase().as_str());
        if !name_ok || framing {
            return Err(err(
                v.span(),
                format!("mfa.rest_push.headers: {k:?} is not a header radshard may set"),
            ));
        }
        // The value is never echoed: it is usually a credential.
        if reqwest::header::HeaderValue::from_str(v.get_ref()).is_err() {
            return Err(err(
                v.span(),
                format!("mfa.rest_push.headers.{k} must be printable ASCII on one line"),
            ));
        }
        headers.push((k, SecretText::new(v.into_inner())));
    }
    let pointer = |v: Option<Spanned<String>>, default: &str, name: &str| {
        match v {
        None => Ok(default.to_string()),
        Some(v) if !pointer_ok(v.get_ref()) => Err(err(
            v.span(),
            format!(
                "mfa.rest_push.{name} must be a JSON pointer like \"/data/id\" (starting with '/', '~' only as ~0 or ~1)"
            ),
        )),
        Some(v) => Ok(v.into_inner()),
    }
    };
    let id_pointer = pointer(p.id_pointer, "/id", "id_pointer")?;
    let decision_pointer = pointer(p.decision_pointer, "/approved", "decision_pointer")?;
    let status_pointer = pointer(p.status_pointer, "/status", "status_pointer")?;
    let status_url = match p.status_url {
        None => format!("{url}/{{id}}"),
        Some(t) => {
            let expanded = t.get_ref().replace("{url}", &url);
            if expanded.matches("{id}").count() != 1 {
                return Err(err(
                    t.span(),
                    "mfa.rest_push.status_url must contain {id} once".into(),
                ));
            }
            if !https_or_loopback(&expanded) {
                return Err(err(
                    t.span(),
                    "mfa.rest_push.status_url must be https:// (http:// only on loopback), or start with {url}".into(),
                ));
            }
            expanded
        }
    };
    let values = |v: Option<Spanned<Vec<toml::Value>>>, default: &str, name: &str| {
        let Some(v) = v else {
            return Ok((vec![StatusValue::Text(default.to_string())], 0..0));
        };
        let span = v.span();
        if v.get_ref().is_empty() {
            return Err(err(span, format!("mfa.rest_push.{name} must not be empty")));
        }
        v.into_inner()
            .into_iter()
            .map(|x| match x {
                toml::Value::String(s) if !s.is_empty() => Ok(StatusValue::Text(s)),
                toml::Value::Boolean(b) => Ok(StatusValue::Bool(b)),
                _ => Err(err(
                    span.clone(),
                    format!("mfa.rest_push.{name} holds non-empty strings or booleans"),
                )),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|l| (l, span))
    };
    let approved = values(p.approved, "approved", "approved")?;
    let denied = values(p.denied, "denied", "denied")?;
    let pending = values(p.pending, "pending", "pending")?;
    // A value in two lists would make the outcome depend on the order of the checks.
    for ((a, a_span, a_name), (b, b_span, b_name)) in [
        ((&approved, "approved"), (&denied, "denied")),
        ((&approved, "approved"), (&pending, "pending")),
        ((&denied, "denied"), (&pending, "pending")),
    ]
    .map(|((a, an), (b, bn))| ((&a.0, &a.1, an), (&b.0, &b.1, bn)))
    {
        if let Some(v) = b.iter().find(|v| a.contains(v)) {
            // Shown at the list given in the file (a default one has no line).
            let span = if b_span.is_empty() { a_span } else { b_span };
            return Err(err(
                span.clone(),
                format!("mfa.rest_push: {v:?} is in both {a_name} and {b_name}"),
            ));
        }
    }
    let (approved, denied, pending) = (approved.0, denied.0, pending.0);
    Ok(RestPushConfig {
        url,
        wait,
        poll_interval,
        user_field,
        client_field,
        extra,
        headers,
        id_pointer,
        decision_pointer,
        status_url,
        status_pointer,
        approved,
        denied,
        pending,
        long_poll: p.long_poll.unwrap_or(false).then_some(long_poll_timeout),
    })
}

fn duo_from_raw(
    d: RawDuo,
    err: &impl Fn(std::ops::Range<usize>, String) -> ConfigError,
) -> Result<DuoConfig, ConfigError> {
    let given = d
        .api_host
        .get_ref()
        .trim()
        .trim_end_matches('/')
        .to_string();
    let (base, host) = match given.split_once("://") {
        Some((_, rest)) if https_or_loopback(&given) => (given.clone(), rest.to_ascii_lowercase()),
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
    let wait = duration_in(d.wait, &PUSH_WAIT, "mfa.duo.wait", err)?;
    let poll_interval = duration_in(
        d.poll_interval,
        &POLL_INTERVAL,
        "mfa.duo.poll_interval",
        err,
    )?;
    let timeout = duration_in(d.timeout, &DUO_TIMEOUT, "mfa.duo.timeout", err)?;
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
