//! Errors `radshard bench` reports before or instead of a result.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{0}")]
    Invalid(String),
    #[error("{path}: {source}")]
    UsersFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {reason}")]
    UsersLine {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("pattern {pattern:?}: {reason}")]
    Pattern { pattern: String, reason: String },
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
    #[error("secret: {0}")]
    Secret(#[from] crate::proto::SecretError),
    #[error("building a request: {0}")]
    Build(#[from] crate::proto::BuildError),
}
