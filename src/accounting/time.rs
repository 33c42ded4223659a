//! Wall-clock formatting for records and file names, without allocation.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

/// A civil UTC date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Date {
    pub year: i64,
    pub month: u32,
    pub day: u32,
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's `civil_from_days`).
pub fn civil_from_days(days: i64) -> Date {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    Date { year, month, day }
}

/// Seconds and microseconds since the Unix epoch.
pub fn now_unix() -> (i64, u32) {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_micros()),
        Err(_) => (0, 0),
    }
}

pub fn date_of(secs: i64) -> Date {
    civil_from_days(secs.div_euclid(86_400))
}

/// Writes `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
pub fn write_rfc3339(out: &mut Vec<u8>, secs: i64, micros: u32) {
    let d = date_of(secs);
    let s = secs.rem_euclid(86_400);
    // Writing into a Vec cannot fail.
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        d.year,
        d.month,
        d.day,
        s / 3600,
        s / 60 % 60,
        s % 60,
        micros
    );
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
pub fn days_from_civil(d: Date) -> i64 {
    let y = d.year - i64::from(d.month <= 2);
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(d.month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d.day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Unix seconds of `YYYY-MM-DDTHH:MM:SS[.f…]Z`, the form [`write_rfc3339`] writes.
pub fn parse_rfc3339_utc(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || !s.ends_with('Z') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let date = Date {
        year: num(0..4)?,
        month: u32::try_from(num(5..7)?)
            .ok()
            .filter(|m| (1..=12).contains(m))?,
        day: u32::try_from(num(8..10)?)
            .ok()
            .filter(|d| (1..=31).contains(d))?,
    };
    let (h, m, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if b[13] != b':' || b[16] != b':' || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    Some(days_from_civil(date) * 86_400 + h * 3600 + m * 60 + sec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(
            civil_from_days(0),
            Date {
                year: 1970,
                month: 1,
                day: 1
            }
        );
        // 2000-02-29 is day 11016; 2026-11-26 is day 20783.
        assert_eq!(
            civil_from_days(11_016),
            Date {
                year: 2000,
                month: 2,
                day: 29
            }
        );
        assert_eq!(
            civil_from_days(20_783),
            Date {
                year: 2026,
                month: 11,
                day: 26
            }
        );
        assert_eq!(
            civil_from_days(-1),
            Date {
                year: 1969,
                month: 12,
                day: 31
            }
        );
    }

    #[test]
    fn parses_what_it_writes() {
        for secs in [0i64, 951_782_400, 1_764_124_200, 4_102_444_799] {
            let mut v = Vec::new();
            write_rfc3339(&mut v, secs, 42);
            assert_eq!(
                parse_rfc3339_utc(std::str::from_utf8(&v).unwrap()),
                Some(secs)
            );
            assert_eq!(
                civil_from_days(days_from_civil(date_of(secs))),
                date_of(secs)
            );
        }
        assert_eq!(parse_rfc3339_utc("2025-13-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339_utc("garbage"), None);
    }

    #[test]
    fn rfc3339() {
        let mut v = Vec::new();
        write_rfc3339(&mut v, 1_764_124_200, 42);
        assert_eq!(
            std::str::from_utf8(&v).unwrap(),
            "2025-11-26T02:30:00.000042Z"
        );
    }
}
