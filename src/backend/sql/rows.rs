//! The rows of FreeRADIUS's tables (`radcheck`, `radreply`, `radgroupcheck`, `radgroupreply`)
//! as rlm_sql reads them: an attribute name, an operator and a value, the value unquoted the
//! way FreeRADIUS 3.2 unquotes it (`sql_fr_pair_list_afrom_str`).
//!
//! Values come from the database, which an operator (or a provisioning tool) fills: they are
//! parsed here without trusting them (bounded, no panics; fuzzed as `sql_rows`).

use std::borrow::Cow;

/// FreeRADIUS's `MAX_STRING_LEN` less its terminating NUL: a quoted value longer than this is
/// not unquoted (FreeRADIUS's tokenizer gives up and keeps the value as written).
const MAX_UNQUOTED: usize = 253;

/// A row as the database returned it. Its `Debug` leaves out the value (it may be a
/// password or a hash).
#[derive(Clone, PartialEq, Eq)]
pub struct RawRow {
    pub attribute: String,
    /// `None` or empty: FreeRADIUS takes `==` (and complains).
    pub op: Option<String>,
    /// `None`: the row is refused (FreeRADIUS fails the whole query).
    pub value: Option<String>,
}

impl std::fmt::Debug for RawRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawRow")
            .field("attribute", &self.attribute)
            .field("op", &self.op)
            .finish_non_exhaustive()
    }
}

impl RawRow {
    /// A row from its three columns (tests and the fuzz target).
    pub fn new(attribute: &str, op: &str, value: &str) -> RawRow {
        RawRow {
            attribute: attribute.to_string(),
            op: Some(op.to_string()),
            value: Some(value.to_string()),
        }
    }
}

/// The operators of FreeRADIUS's check and reply items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `=`: add if not there (in a check list it compares, as `==`).
    Eq,
    /// `:=`: replace (in a check list: always matches, then set in the control list).
    Set,
    /// `+=`: append (in a check list: always matches).
    Add,
    /// `-=`: remove matching values.
    Sub,
    /// `^=`: prepend.
    Prepend,
    /// `==`
    CmpEq,
    /// `!=`
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// `=~`: regular expression matches.
    RegEq,
    /// `!~`
    RegNe,
    /// `=*`: present.
    Present,
    /// `!*`: absent.
    Absent,
}

/// Longest spellings first, as FreeRADIUS's tokenizer tries them.
const OPS: &[(&str, Op)] = &[
    ("=~", Op::RegEq),
    ("!~", Op::RegNe),
    ("!=", Op::Ne),
    ("+=", Op::Add),
    ("-=", Op::Sub),
    (":=", Op::Set),
    ("<=", Op::Le),
    (">=", Op::Ge),
    ("==", Op::CmpEq),
    ("=*", Op::Present),
    ("!*", Op::Absent),
    ("^=", Op::Prepend),
    ("=", Op::Eq),
    ("<", Op::Lt),
    (">", Op::Gt),
];

/// Why a row cannot be used. FreeRADIUS fails the whole lookup on such a row (the request is
/// rejected), and so do we.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RowError {
    #[error("empty attribute name")]
    NoAttribute,
    #[error("attribute {0}: value is NULL")]
    NoValue(String),
    #[error("attribute {attr}: invalid operator {op:?}")]
    BadOp { attr: String, op: String },
    #[error("attribute {0}: back-quoted values (run-time expansions) are not supported")]
    Expansion(String),
    #[error("unknown attribute {0:?}")]
    UnknownAttribute(String),
    #[error("attribute {attr}: {why}")]
    BadValue { attr: String, why: String },
    #[error("attribute {0}: too many rows for one user (at most {1})")]
    TooMany(String, usize),
}

impl Op {
    /// The operator column: leading blanks skipped, the longest operator spelled at its start
    /// (what follows is ignored, as FreeRADIUS ignores it). Empty or NULL is `==`.
    pub fn parse(attr: &str, text: Option<&str>) -> Result<Op, RowError> {
        let t = text.unwrap_or_default().trim_start();
        if t.is_empty() {
            return Ok(Op::CmpEq);
        }
        OPS.iter()
            .find(|(s, _)| t.starts_with(s))
            .map(|&(_, op)| op)
            .ok_or_else(|| RowError::BadOp {
                attr: attr.to_string(),
                op: t.chars().take(8).collect(),
            })
    }

    pub fn symbol(self) -> &'static str {
        OPS.iter()
            .find(|(_, op)| *op == self)
            .map_or("?", |(s, _)| s)
    }

    /// `:=` and `+=`: a check item that sets rather than compares (always matches).
    pub fn sets(self) -> bool {
        matches!(self, Op::Set | Op::Add)
    }
}

/// A value as rlm_sql takes it: a value quoted whole with `'` or `"` loses its quotes (a
/// backslash before the quote character stands for it; other backslashes stay); a
/// back-quoted one would be expanded at run time, which we refuse; anything else, including
/// a quoted value FreeRADIUS's tokenizer rejects (unterminated, longer than 253 octets), is
/// taken as written.
pub fn unquote<'v>(attr: &str, raw: &'v str) -> Result<Cow<'v, str>, RowError> {
    let b = raw.as_bytes();
    let (Some(&first), Some(&last)) = (b.first(), b.last()) else {
        return Ok(Cow::Borrowed(raw));
    };
    if !matches!(first, b'\'' | b'"' | b'`') || first != last {
        return Ok(Cow::Borrowed(raw));
    }
    let Some(inner) = quoted_token(&b[1..], first) else {
        return Ok(Cow::Borrowed(raw));
    };
    if first == b'`' {
        return Err(RowError::Expansion(attr.to_string()));
    }
    // Only ASCII octets were removed, so what is left is still UTF-8; lossy is a no-op.
    Ok(Cow::Owned(String::from_utf8_lossy(&inner).into_owned()))
}

/// The quoted string starting after its opening `quote`, up to the first unescaped `quote`,
/// with `\<quote>` turned into the quote and every other backslash kept (FreeRADIUS's
/// tokenizer without unescaping). `None` where that tokenizer fails: no closing quote, a
/// backslash at the very end, or more than [`MAX_UNQUOTED`] octets.
fn quoted_token(s: &[u8], quote: u8) -> Option<Vec<u8>> {
    // FreeRADIUS reads into a 254-octet buffer, one input character (or backslash pair) per
    // step while more than one octet of room is left: at most 253 steps, the closing quote
    // being one of them.
    const STEPS: usize = MAX_UNQUOTED;
    let mut out = Vec::with_capacity(s.len().min(MAX_UNQUOTED));
    let (mut i, mut steps) = (0, 0);
    while i < s.len() {
        if steps >= STEPS {
            return None;
        }
        steps += 1;
        match s[i] {
            c if c == quote => return Some(out),
            b'\\' => {
                let next = *s.get(i + 1)?;
                if next == quote {
                    out.push(next);
                } else {
                    // Both octets are kept, which needs two octets of room.
                    if STEPS + 1 - steps < 2 {
                        return None;
                    }
                    out.push(b'\\');
                    out.push(next);
                }
                i += 2;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operators_as_freeradius_reads_them() {
        for (text, op) in [
            (":=", Op::Set),
            ("==", Op::CmpEq),
            ("=", Op::Eq),
            ("+=", Op::Add),
            (" !*", Op::Absent),
            ("=~", Op::RegEq),
            ("<=", Op::Le),
            ("<", Op::Lt),
            ("^=", Op::Prepend),
        ] {
            assert_eq!(Op::parse("A", Some(text)), Ok(op), "{text}");
            assert!(text.contains(op.symbol()));
        }
        assert_eq!(Op::parse("A", None), Ok(Op::CmpEq));
        assert_eq!(Op::parse("A", Some("")), Ok(Op::CmpEq));
        assert!(Op::parse("A", Some("~")).is_err());
        assert!(Op::parse("A", Some("OR 1=1")).is_err());
    }

    #[test]
    fn values_unquoted_as_rlm_sql_does() {
        let u = |s| unquote("A", s).map(|c| c.into_owned());
        assert_eq!(u("plain").unwrap(), "plain");
        assert_eq!(u("\"quoted\"").unwrap(), "quoted");
        assert_eq!(u("'single'").unwrap(), "single");
        assert_eq!(u(r#""a\"b""#).unwrap(), "a\"b");
        assert_eq!(u(r#""a\nb""#).unwrap(), r"a\nb");
        // Up to the first unescaped quote; the rest is dropped (FreeRADIUS reads one token).
        assert_eq!(u(r#""ab"cd""#).unwrap(), "ab");
        // Not quoted whole, or a tokenizer error: as written.
        assert_eq!(u("\"ab").unwrap(), "\"ab");
        assert_eq!(u("\"").unwrap(), "\"");
        assert_eq!(u(r#""ab\""#).unwrap(), r#""ab\""#);
        let long = format!("\"{}\"", "x".repeat(300));
        assert_eq!(u(&long).unwrap(), long);
        let fits = format!("\"{}\"", "x".repeat(252));
        assert_eq!(u(&fits).unwrap().len(), 252);
        let over = format!("\"{}\"", "x".repeat(253));
        assert_eq!(u(&over).unwrap(), over);
        assert_eq!(u("").unwrap(), "");
        assert!(matches!(u("`%{exec:rm}`"), Err(RowError::Expansion(_))));
        assert_eq!(u("`x").unwrap(), "`x");
    }

    #[test]
    fn debug_leaves_out_the_value() {
        let r = RawRow::new("Cleartext-Password", ":=", "hunter2");
        assert!(!format!("{r:?}").contains("hunter2"));
    }
}
