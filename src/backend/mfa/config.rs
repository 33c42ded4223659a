//! `[mfa]`: the second factor required by network policies with `mfa = true`. Without this
//! section the policies' flag is only logged (as before).

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::config::schema::DurationValue;
use crate::config::ConfigError;

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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Totp,
}

impl Provider {
    pub fn label(self) -> &'static str {
        match self {
            Provider::Totp => "totp",
        }
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
}

pub const DEFAULT_PROMPT: &str = "Enter your one-time code";

impl MfaConfig {
    pub fn from_raw(
        raw: RawMfa,
        origin: &Path,
        at: &impl Fn(std::ops::Range<usize>) -> usize,
    ) -> Result<MfaConfig, ConfigError> {
        let err = |span: std::ops::Range<usize>, m: String| ConfigError::new(origin, at(span), m);
        let provider = match raw.provider.get_ref().as_str() {
            "totp" => Provider::Totp,
            other => {
                return Err(err(
                    raw.provider.span(),
                    format!("mfa.provider {other:?} is not supported (supported: \"totp\")"),
                ))
            }
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
        })
    }
}
