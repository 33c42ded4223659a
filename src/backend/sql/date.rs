//! Dates of check items (`Expiration`) as FreeRADIUS 3.2 reads them (`fr_get_time`): Unix
//! seconds, or a month name, a day and a four-digit year in any order with an optional
//! `HH:MM[:SS]` (`"Jan  1 2030 00:00:00"`, `"1 Jan 2030"`); and, beyond FreeRADIUS, RFC 3339
//! (`2030-01-01T00:00:00Z`) or `YYYY-MM-DD[ HH:MM:SS]`.
//!
//! FreeRADIUS reads its format in the server's local time zone; radshard reads it as UTC
//! (the same instant when FreeRADIUS runs with `TZ=UTC`). Out-of-range fields carry over as
//! `mktime` carries them (`Jan 32` is `Feb 1`).

use crate::dict::datetime::{days_from_civil, parse_rfc3339};

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

/// Unix seconds (the 32 bits of a RADIUS date), or `None` when FreeRADIUS would refuse it.
pub fn parse_date(text: &str) -> Option<u32> {
    // strtoul over the whole text: digits only (the empty text is 0, as in FreeRADIUS).
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return if text.is_empty() {
            Some(0)
        } else {
            text.parse().ok()
        };
    }
    freeradius_date(text).or_else(|| iso_date(text))
}

fn freeradius_date(text: &str) -> Option<u32> {
    // FreeRADIUS copies the text into 64 octets before splitting it.
    let text = text.get(..text.len().min(63)).unwrap_or(text);
    let mut f: Vec<&str> = text.split([' ', '\t']).filter(|s| !s.is_empty()).collect();
    f.truncate(4);
    if f.len() < 3 {
        return None;
    }
    // The time has a colon, where nothing else does: it goes last.
    if f.len() == 4 {
        if let Some(i) = (0..3).find(|&i| f[i].contains(':')) {
            f.swap(i, 3);
        }
    }
    // The month is text: it goes first.
    let mut month = None;
    for i in 0..3 {
        if f[i].as_bytes().first().is_some_and(u8::is_ascii_alphabetic) {
            f.swap(0, i);
            let head = f[0].get(..3).unwrap_or("").to_ascii_lowercase();
            if let Some(m) = MONTHS.iter().position(|m| *m == head) {
                month = Some(m as i64);
            }
        }
    }
    let month = month?;
    let (mut year, mut mday) = (atoi(f[1]), atoi(f[2]));
    if year < 1900 {
        // Two-digit years are refused: day and year must be told apart.
        if mday < 1900 {
            return None;
        }
        std::mem::swap(&mut year, &mut mday);
    }
    if !(1..=31).contains(&mday) {
        return None;
    }
    let (mut h, mut m, mut s) = (0, 0, 0);
    if let Some(t) = f.get(3) {
        let (hh, rest) = t.split_once(':')?;
        h = atoi(hh);
        match rest.split_once(':') {
            Some((mm, ss)) => {
                m = atoi(mm);
                s = atoi(ss);
            }
            None => m = atoi(rest),
        }
    }
    let days = days_from_civil(year, month as u32 + 1, 1) + mday - 1;
    u32::try_from(days * 86_400 + h * 3600 + m * 60 + s).ok()
}

/// C's `atoi`: optional blanks and sign, then digits; 0 when there are none.
fn atoi(s: &str) -> i64 {
    let s = s.trim_start();
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let n = digits
        .bytes()
        .take_while(u8::is_ascii_digit)
        .take(12)
        .fold(0i64, |n, d| n * 10 + i64::from(d - b'0'));
    if neg {
        -n
    } else {
        n
    }
}

/// `YYYY-MM-DD`, `YYYY-MM-DD HH:MM:SS` (UTC) or RFC 3339 with its offset.
fn iso_date(text: &str) -> Option<u32> {
    if let Some(t) = parse_rfc3339(text) {
        return Some(t);
    }
    match text.len() {
        10 => parse_rfc3339(&format!("{text}T00:00:00Z")),
        19 => parse_rfc3339(&format!("{text}Z")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freeradius_dates() {
        // 2030-01-01T00:00:00Z
        let t = 1_893_456_000;
        assert_eq!(parse_date("Jan  1 2030 00:00:00"), Some(t));
        assert_eq!(parse_date("Jan 1 2030"), Some(t));
        assert_eq!(parse_date("1 Jan 2030"), Some(t));
        assert_eq!(parse_date("2030 january 1"), Some(t));
        assert_eq!(parse_date("00:00:00 Jan 1 2030"), Some(t));
        assert_eq!(parse_date("Jan 1 2030 01:02:03"), Some(t + 3723));
        assert_eq!(parse_date("Jan 1 2030 01:02"), Some(t + 3720));
        assert_eq!(parse_date("Dec 32 2029"), None);
        assert_eq!(parse_date("Jan 1 30"), None, "two-digit years are refused");
        assert_eq!(parse_date("Foo 1 2030"), None);
        assert_eq!(parse_date("1893456000"), Some(t));
        assert_eq!(parse_date(""), Some(0));
        assert_eq!(parse_date("Jan 1"), None);
        assert_eq!(parse_date("Jan 1 2030 noon"), None);
    }

    #[test]
    fn iso_dates() {
        let t = 1_893_456_000;
        assert_eq!(parse_date("2030-01-01"), Some(t));
        assert_eq!(parse_date("2030-01-01 00:00:10"), Some(t + 10));
        assert_eq!(parse_date("2030-01-01T02:00:00+02:00"), Some(t));
        assert_eq!(parse_date("2030-13-01"), None);
    }
}
