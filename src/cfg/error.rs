//! Configuration errors. Every one names the file and line it came from, so an operator can
//! jump straight to the mistake: `FILE:LINE: reason`.

use std::fmt;
use std::path::{Path, PathBuf};

/// A configuration problem found while reading, parsing or validating a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file the problem is in (the config itself, or a file it names).
    pub file: PathBuf,
    /// 1-based line; 0 when the problem concerns the file as a whole (e.g. unreadable).
    pub line: usize,
    /// What is wrong, in words an operator can act on.
    pub reason: String,
}

impl ConfigError {
    pub fn new(file: impl Into<PathBuf>, line: usize, reason: impl Into<String>) -> Self {
        ConfigError {
            file: file.into(),
            line,
            reason: reason.into(),
        }
    }

    /// An error located by a byte offset into `source` (the text of `file`).
    pub fn at_offset(file: &Path, source: &str, offset: usize, reason: impl Into<String>) -> Self {
        ConfigError::new(file, line_of(source, offset), reason)
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.reason)
    }
}

impl std::error::Error for ConfigError {}

/// Line numbers of a file looked up many times (a users file with 100k entries): the line
/// starts are found once, each lookup is a binary search instead of a scan from the top.
pub struct Lines {
    /// Offsets just past each newline.
    starts: Vec<usize>,
}

impl Lines {
    pub fn new(source: &str) -> Lines {
        Lines {
            starts: source
                .bytes()
                .enumerate()
                .filter(|&(_, b)| b == b'\n')
                .map(|(i, _)| i + 1)
                .collect(),
        }
    }

    /// 1-based line number of byte `offset` (as [`line_of`]).
    pub fn line(&self, offset: usize) -> usize {
        self.starts.partition_point(|&s| s <= offset) + 1
    }
}

/// 1-based line number of byte `offset` in `source`.
pub fn line_of(source: &str, offset: usize) -> usize {
    let end = offset.min(source.len());
    source.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_numbers_are_one_based() {
        let text = "a\nb\nc";
        assert_eq!(line_of(text, 0), 1);
        assert_eq!(line_of(text, 2), 2);
        assert_eq!(line_of(text, 4), 3);
        assert_eq!(line_of(text, 100), 3);
        let lines = Lines::new(text);
        for offset in 0..text.len() + 3 {
            assert_eq!(lines.line(offset), line_of(text, offset), "offset {offset}");
        }
    }

    #[test]
    fn display_is_file_line_reason() {
        let e = ConfigError::new("x.toml", 7, "bad");
        assert_eq!(e.to_string(), "x.toml:7: bad");
    }
}
