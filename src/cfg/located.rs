//! Values that keep their place in the file, and text that must not be logged.

use std::path::PathBuf;

use super::ConfigError;

/// A value with the place it was written, for errors found after loading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located<T> {
    pub value: T,
    pub file: PathBuf,
    pub line: usize,
}

impl<T> Located<T> {
    pub fn error(&self, reason: impl Into<String>) -> ConfigError {
        ConfigError::new(self.file.clone(), self.line, reason)
    }
}

/// Text that must never reach a log: shared secrets and cleartext passwords.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretText(String);

impl SecretText {
    pub fn new(s: String) -> SecretText {
        SecretText(s)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}
