//! `[sessions]`: the session table and its housekeeping.
//!
//! ```toml
//! [sessions]
//! enabled = true               # keep the table (default); false: accounting is only recorded
//! max_sessions = 1000000       # open sessions at most; a Start past it is recorded, not tracked
//! interim_interval = "10m"     # assumed for a NAS that sends no Acct-Interim-Interval
//! stale_after = 3              # no update for this many intervals: closed (a synthetic stop); 0: never
//! rebuild_days = 7             # at start-up the table is rebuilt from this many days of the log
//! class = true                 # every Access-Accept carries our Class (ties accounting to the login)
//! ```

use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::cfg::{ConfigError, DurationValue};

const DEFAULT_MAX: usize = 1_000_000;
const MAX_MAX: usize = 100_000_000;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawSessions {
    pub enabled: Option<bool>,
    pub max_sessions: Option<Spanned<usize>>,
    pub interim_interval: Option<Spanned<DurationValue>>,
    pub stale_after: Option<Spanned<u32>>,
    pub rebuild_days: Option<Spanned<u32>>,
    pub class: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionsConfig {
    pub enabled: bool,
    pub max_sessions: usize,
    pub interim_interval: Duration,
    pub stale_after: u32,
    pub rebuild_days: u32,
    pub class: bool,
}

impl Default for SessionsConfig {
    fn default() -> SessionsConfig {
        SessionsConfig {
            enabled: true,
            max_sessions: DEFAULT_MAX,
            interim_interval: Duration::from_secs(600),
            stale_after: 3,
            rebuild_days: 7,
            class: true,
        }
    }
}

impl SessionsConfig {
    pub fn from_raw(
        raw: RawSessions,
        origin: &Path,
        at: &impl Fn(Range<usize>) -> usize,
    ) -> Result<SessionsConfig, ConfigError> {
        let d = SessionsConfig::default();
        let err = |span: Range<usize>, m: &str| ConfigError::new(origin, at(span), m.to_string());
        let max_sessions = match raw.max_sessions {
            Some(n) if *n.get_ref() == 0 || *n.get_ref() > MAX_MAX => {
                return Err(err(
                    n.span(),
                    "sessions.max_sessions must be between 1 and 100000000 (use enabled = false for no table)",
                ))
            }
            Some(n) => n.into_inner(),
            None => d.max_sessions,
        };
        let interim_interval = match raw.interim_interval {
            Some(i) if i.get_ref().0 < Duration::from_secs(1) => {
                return Err(err(
                    i.span(),
                    "sessions.interim_interval must be at least 1s",
                ))
            }
            Some(i) => i.into_inner().0,
            None => d.interim_interval,
        };
        let rebuild_days = match raw.rebuild_days {
            Some(n) if *n.get_ref() > 3660 => {
                return Err(err(n.span(), "sessions.rebuild_days must be at most 3660"))
            }
            Some(n) => n.into_inner(),
            None => d.rebuild_days,
        };
        Ok(SessionsConfig {
            enabled: raw.enabled.unwrap_or(d.enabled),
            max_sessions,
            interim_interval,
            stale_after: raw.stale_after.map_or(d.stale_after, Spanned::into_inner),
            rebuild_days,
            class: raw.class.unwrap_or(d.class),
        })
    }
}

/// What happens to a login that would exceed a Simultaneous-Use cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtCap {
    /// Access-Reject, reason `simultaneous_use`.
    Reject,
    /// Access-Accept, and the user's oldest session is sent a Disconnect-Request.
    DisconnectOldest,
}

impl AtCap {
    pub fn from_label(s: &str) -> Option<AtCap> {
        match s {
            "reject" => Some(AtCap::Reject),
            "disconnect_oldest" => Some(AtCap::DisconnectOldest),
            _ => None,
        }
    }
}

/// A Simultaneous-Use cap: `simultaneous_use = N` on a policy (its `on_simultaneous_use`
/// says what happens at it) or on a local user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimit {
    pub cap: u32,
    pub at_cap: AtCap,
}
