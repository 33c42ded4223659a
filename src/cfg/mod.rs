//! Config primitives shared by every component's config: errors with their `FILE:LINE`
//! ([`ConfigError`], [`line_of`], [`Lines`]), values that remember where they were written
//! ([`Located`]), secrets that never reach a log ([`SecretText`]), and value syntaxes written
//! the same way in every section (durations, networks, reply attribute values).
//!
//! A leaf: it imports nothing from the crate, so components import from here and
//! [`crate::config`] (which aggregates the components' configs into one file) imports the
//! components without a cycle.

mod duration;
mod error;
mod located;
mod values;

pub use duration::{parse_duration, DurationValue};
pub use error::{line_of, ConfigError, Lines};
pub use located::{Located, SecretText};
pub use values::{parse_client_net, AttrValues, ClientNet};

/// A count that must be at least 1: `key must be at least 1` at its line otherwise.
pub fn positive(
    n: Option<toml::Spanned<usize>>,
    key: &str,
    err: &impl Fn(std::ops::Range<usize>, String) -> ConfigError,
) -> Result<Option<usize>, ConfigError> {
    match n {
        Some(n) if *n.get_ref() == 0 => Err(err(n.span(), format!("{key} must be at least 1"))),
        n => Ok(n.map(toml::Spanned::into_inner)),
    }
}
