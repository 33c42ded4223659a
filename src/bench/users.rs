//! The user population: from a file or from `user%04d`-style patterns, loaded once before the run.

use std::path::Path;

use super::error::BenchError;

/// Longest User-Name / password we send; keeps per-request buffers on the stack.
pub const MAX_FIELD: usize = 128;

#[derive(Debug, Clone)]
pub struct User {
    pub name: Box<[u8]>,
    pub password: Box<[u8]>,
}

/// Reads `name password` or `name:password` lines; blank lines and `#` comments are skipped.
pub fn from_file(path: &Path) -> Result<Vec<User>, BenchError> {
    let text = std::fs::read_to_string(path).map_err(|source| BenchError::UsersFile {
        path: path.to_path_buf(),
        source,
    })?;
    let mut users = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let bad = |reason: &str| BenchError::UsersLine {
            path: path.to_path_buf(),
            line: i + 1,
            reason: reason.to_string(),
        };
        let (name, password) = line
            .split_once(|c: char| c == ':' || c.is_whitespace())
            .ok_or_else(|| bad("expected `name password` or `name:password`"))?;
        let password = password.trim();
        if name.is_empty() || password.is_empty() {
            return Err(bad("empty name or password"));
        }
        if name.len() > MAX_FIELD || password.len() > MAX_FIELD {
            return Err(bad("name or password longer than 128 octets"));
        }
        users.push(User {
            name: name.as_bytes().into(),
            password: password.as_bytes().into(),
        });
    }
    if users.is_empty() {
        return Err(BenchError::Invalid(format!("{}: no users", path.display())));
    }
    Ok(users)
}

/// Generates users `0..count` from the two patterns.
pub fn from_patterns(
    user_pattern: &str,
    password_pattern: &str,
    count: usize,
) -> Result<Vec<User>, BenchError> {
    if count == 0 {
        return Err(BenchError::Invalid("--users must be at least 1".into()));
    }
    let user = Pattern::parse(user_pattern)?;
    let pass = Pattern::parse(password_pattern)?;
    (0..count)
        .map(|n| {
            let name = user.render(n);
            let password = pass.render(n);
            if name.is_empty() || password.is_empty() {
                return Err(BenchError::Invalid("empty user name or password".into()));
            }
            if name.len() > MAX_FIELD || password.len() > MAX_FIELD {
                return Err(BenchError::Invalid(
                    "user name or password longer than 128 octets".into(),
                ));
            }
            Ok(User {
                name: name.into_bytes().into(),
                password: password.into_bytes().into(),
            })
        })
        .collect()
}

/// A text with at most one `%d` / `%0Nd` / `%Nd` placeholder; `%%` is a literal percent.
#[derive(Debug)]
struct Pattern {
    prefix: String,
    /// `(width, zero_pad)` when there is a placeholder.
    number: Option<(usize, bool)>,
    suffix: String,
}

impl Pattern {
    fn parse(text: &str) -> Result<Pattern, BenchError> {
        let err = |reason: &str| BenchError::Pattern {
            pattern: text.to_string(),
            reason: reason.to_string(),
        };
        let mut prefix = String::new();
        let mut suffix = String::new();
        let mut number = None;
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            let out = if number.is_some() {
                &mut suffix
            } else {
                &mut prefix
            };
            if c != '%' {
                out.push(c);
                continue;
            }
            if chars.peek() == Some(&'%') {
                chars.next();
                out.push('%');
                continue;
            }
            if number.is_some() {
                return Err(err("more than one %d"));
            }
            let zero = chars.peek() == Some(&'0');
            let mut width = String::new();
            while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                width.push(d);
                chars.next();
            }
            if chars.next() != Some('d') {
                return Err(err("only %d, %Nd and %0Nd are supported"));
            }
            let width = if width.is_empty() {
                0
            } else {
                width
                    .parse::<usize>()
                    .ok()
                    .filter(|w| *w <= 32)
                    .ok_or_else(|| err("width must be at most 32"))?
            };
            number = Some((width, zero));
        }
        Ok(Pattern {
            prefix,
            number,
            suffix,
        })
    }

    fn render(&self, n: usize) -> String {
        match self.number {
            None => self.prefix.clone(),
            Some((w, true)) => format!("{}{n:0w$}{}", self.prefix, self.suffix),
            Some((w, false)) => format!("{}{n:w$}{}", self.prefix, self.suffix),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        let u = from_patterns("user%04d", "pass%04d", 1000).expect("valid");
        assert_eq!(u.len(), 1000);
        assert_eq!(&*u[7].name, b"user0007");
        assert_eq!(&*u[999].password, b"pass0999");
        let u = from_patterns("u%d@x%%", "same", 12).expect("valid");
        assert_eq!(&*u[11].name, b"u11@x%");
        assert_eq!(&*u[11].password, b"same");
        assert!(from_patterns("a%s", "p", 1).is_err());
        assert!(from_patterns("a%d%d", "p", 1).is_err());
    }

    #[test]
    fn file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("users");
        std::fs::write(&p, "# c\nalice  pw1\nbob:pw:2\n\n").expect("write");
        let u = from_file(&p).expect("valid");
        assert_eq!(u.len(), 2);
        assert_eq!(&*u[1].password, b"pw:2");
        std::fs::write(&p, "lonely\n").expect("write");
        assert!(matches!(
            from_file(&p),
            Err(BenchError::UsersLine { line: 1, .. })
        ));
    }
}
