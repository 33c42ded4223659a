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
