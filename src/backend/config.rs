//! `[backend]`: the pool that runs directory and MFA work off the shards.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::cfg::{ConfigError, DurationValue};

/// `[backend]`: the pool that runs directory (and later MFA) work off the shards.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawBackend {
    /// Tokio worker threads (default 2).
    pub threads: Option<Spanned<usize>>,
    /// Jobs that may wait for a free slot (default 1024); beyond that requests are shed.
    pub queue: Option<Spanned<usize>>,
    /// Jobs running at once (default 256).
    pub max_in_flight: Option<Spanned<usize>>,
    /// From a request's arrival to its answer (default "3s"): keep it below the NAS timeout.
    pub deadline: Option<Spanned<DurationValue>>,
    /// When the queue is full: "drop" (the NAS retries) or "reject".
    pub on_overload: Option<ShedPolicy>,
    /// When no directory answers by the deadline: "drop" or "reject".
    pub on_unavailable: Option<ShedPolicy>,
    /// How long an accept / a reject is reused for the same client, user and password.
    pub positive_cache_ttl: Option<DurationValue>,
    pub negative_cache_ttl: Option<DurationValue>,
}

/// What to do with a request the backend cannot serve.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum ShedPolicy {
    /// No reply: the NAS retries (or fails over to another server).
    #[default]
    Drop,
    /// Access-Reject.
    Reject,
}

/// `[backend]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendConfig {
    pub threads: usize,
    pub queue: usize,
    pub max_in_flight: usize,
    pub deadline: Duration,
    pub on_overload: ShedPolicy,
    pub on_unavailable: ShedPolicy,
    pub positive_cache_ttl: Duration,
    pub negative_cache_ttl: Duration,
}

impl Default for BackendConfig {
    fn default() -> Self {
        BackendConfig {
            threads: 2,
            queue: 1024,
            max_in_flight: 256,
            deadline: Duration::from_secs(3),
            on_overload: ShedPolicy::Drop,
            on_unavailable: ShedPolicy::Drop,
            positive_cache_ttl: Duration::ZERO,
            negative_cache_ttl: Duration::from_secs(10),
        }
    }
}

impl BackendConfig {
    /// Validates `[backend]` from `origin`; `at` maps a span to its line.
    pub fn from_raw(
        raw: RawBackend,
        origin: &Path,
        at: &impl Fn(std::ops::Range<usize>) -> usize,
    ) -> Result<BackendConfig, ConfigError> {
        let d = BackendConfig::default();
        let bounded = |v: Option<Spanned<usize>>, key: &str, max: usize, default: usize| match v {
            Some(n) if *n.get_ref() == 0 || *n.get_ref() > max => Err(ConfigError::new(
                origin,
                at(n.span()),
                format!("backend.{key} must be between 1 and {max}"),
            )),
            Some(n) => Ok(n.into_inner()),
            None => Ok(default),
        };
        let deadline = match raw.deadline {
            Some(v) if v.get_ref().0.is_zero() => {
                return Err(ConfigError::new(
                    origin,
                    at(v.span()),
                    "backend.deadline must be positive",
                ))
            }
            Some(v) => v.into_inner().0,
            None => d.deadline,
        };
        Ok(BackendConfig {
            threads: bounded(raw.threads, "threads", 256, d.threads)?,
            queue: bounded(raw.queue, "queue", 1 << 20, d.queue)?,
            max_in_flight: bounded(raw.max_in_flight, "max_in_flight", 1 << 16, d.max_in_flight)?,
            deadline,
            on_overload: raw.on_overload.unwrap_or_default(),
            on_unavailable: raw.on_unavailable.unwrap_or_default(),
            positive_cache_ttl: raw.positive_cache_ttl.map_or(d.positive_cache_ttl, |v| v.0),
            negative_cache_ttl: raw.negative_cache_ttl.map_or(d.negative_cache_ttl, |v| v.0),
        })
    }
}
