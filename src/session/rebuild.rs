//! Rebuilding the table at start-up from the durable accounting log: the records of the last
//! `rebuild_days` days replayed in the order they were committed, then the stale sessions
//! closed. Each record carries the session id and identity radshard resolved when it was
//! received (`"session": {"id": …, "user": …}`), so the rebuilt table names the same
//! identities the live one did, whatever key the Class was sealed with.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::store::SessionStore;
use super::table::Applied;
use super::update::{octets, Status, Update};
use super::UniqueId;
use crate::accounting::time::{date_of, days_from_civil, parse_rfc3339_utc};

/// What a rebuild read and did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RebuildReport {
    pub files: usize,
    pub records: u64,
    /// Lines that were not records (a torn last line after a crash, foreign text).
    pub unreadable: u64,
    pub started: u64,
    pub stopped: u64,
    /// Closed for want of an update since.
    pub stale: usize,
    pub open: usize,
    pub elapsed: Duration,
}

#[derive(Deserialize)]
struct Line<'a> {
    #[serde(borrow)]
    time: Cow<'a, str>,
    #[serde(borrow)]
    client: Cow<'a, str>,
    #[serde(borrow)]
    nas: Cow<'a, str>,
    #[serde(borrow)]
    attributes: Attributes<'a>,
    #[serde(borrow, default)]
    session: Option<SessionPart<'a>>,
}

#[derive(Deserialize)]
struct SessionPart<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    user: Cow<'a, str>,
}

/// A value as the log writes it: text, or an array for a repeated attribute (the first
/// occurrence is the one the table reads, as it does live).
#[derive(Deserialize)]
#[serde(untagged)]
enum Value<'a> {
    One(#[serde(borrow)] Cow<'a, str>),
    Many(#[serde(borrow)] Vec<Cow<'a, str>>),
}

impl<'a> Value<'a> {
    fn first(self) -> Option<Cow<'a, str>> {
        match self {
            Value::One(v) => Some(v),
            Value::Many(v) => v.into_iter().next(),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Attributes<'a> {
    #[serde(rename = "Acct-Status-Type", borrow)]
    status: Option<Value<'a>>,
    #[serde(rename = "User-Name", borrow)]
    user_name: Option<Value<'a>>,
    #[serde(rename = "Acct-Session-Id", borrow)]
    acct_session_id: Option<Value<'a>>,
    #[serde(rename = "NAS-IP-Address", borrow)]
    nas_ip: Option<Value<'a>>,
    #[serde(rename = "NAS-Identifier", borrow)]
    nas_identifier: Option<Value<'a>>,
    #[serde(rename = "NAS-Port", borrow)]
    nas_port: Option<Value<'a>>,
    #[serde(rename = "NAS-Port-Id", borrow)]
    nas_port_id: Option<Value<'a>>,
    #[serde(rename = "Framed-IP-Address", borrow)]
    framed_ip: Option<Value<'a>>,
    #[serde(rename = "Calling-Station-Id", borrow)]
    calling: Option<Value<'a>>,
    #[serde(rename = "Called-Station-Id", borrow)]
    called: Option<Value<'a>>,
    #[serde(rename = "Acct-Multi-Session-Id", borrow)]
    multi: Option<Value<'a>>,
    #[serde(rename = "Chargeable-User-Identity", borrow)]
    cui: Option<Value<'a>>,
    #[serde(rename = "Acct-Session-Time", borrow)]
    session_time: Option<Value<'a>>,
    #[serde(rename = "Acct-Input-Octets", borrow)]
    input: Option<Value<'a>>,
    #[serde(rename = "Acct-Output-Octets", borrow)]
    output: Option<Value<'a>>,
    #[serde(rename = "Acct-Input-Gigawords", borrow)]
    input_giga: Option<Value<'a>>,
    #[serde(rename = "Acct-Output-Gigawords", borrow)]
    output_giga: Option<Value<'a>>,
    #[serde(rename = "Acct-Interim-Interval", borrow)]
    interim: Option<Value<'a>>,
}

fn parsed<T: std::str::FromStr>(v: Option<Value<'_>>) -> Option<T> {
    v?.first()?.parse().ok()
}

impl<'a> Line<'a> {
    /// The record as the update it was when received; `None` when it is not one the table
    /// reads (no session part and not an Accounting-On/Off).
    fn update(self) -> Option<Update<'a>> {
        let a = self.attributes;
        let status = a
            .status
            .and_then(Value::first)
            .map_or(Status::Other, |s| Status::from_name(&s));
        let (id, user) = match self.session {
            Some(s) => (Some(UniqueId::from_hex(&s.id)?), s.user),
            None if matches!(status, Status::AccountingOn | Status::AccountingOff) => {
                (None, Cow::Borrowed(""))
            }
            None => return None,
        };
        let nas_address = self
            .nas
            .parse::<SocketAddr>()
            .map(|a| a.ip())
            .or_else(|_| self.nas.parse::<IpAddr>())
            .ok()?;
        let u32_of = |v: Option<Value<'_>>| parsed::<u32>(v).unwrap_or(0);
        Some(Update {
            status,
            id,
            user,
            accounted_user: a.user_name.and_then(Value::first),
            acct_session_id: a.acct_session_id.and_then(Value::first).unwrap_or_default(),
            client: self.client,
            nas_address,
            nas_ip_address: parsed(a.nas_ip),
            nas_identifier: a.nas_identifier.and_then(Value::first),
            nas_port: parsed(a.nas_port),
            nas_port_id: a.nas_port_id.and_then(Value::first),
            framed_ip_address: parsed(a.framed_ip),
            calling_station_id: a.calling.and_then(Value::first),
            called_station_id: a.called.and_then(Value::first),
            acct_multi_session_id: a.multi.and_then(Value::first),
            chargeable_user_identity: a.cui.and_then(Value::first),
            session_time: parsed(a.session_time),
            input_octets: octets(u32_of(a.input), u32_of(a.input_giga)),
            output_octets: octets(u32_of(a.output), u32_of(a.output_giga)),
            interim_interval: parsed(a.interim),
            time: parse_rfc3339_utc(&self.time)?,
        })
    }
}

/// The daily log files of the last `days` days before `now` (and today's), oldest first.
pub fn log_files(dir: &Path, now: i64, days: u32) -> io::Result<Vec<PathBuf>> {
    let today = days_from_civil(date_of(now));
    let mut files: Vec<(i64, PathBuf)> = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(day) = name.to_str().and_then(file_day) else {
            continue;
        };
        if today - day <= i64::from(days) {
            files.push((day, entry.path()));
        }
    }
    files.sort();
    Ok(files.into_iter().map(|(_, p)| p).collect())
}

/// The day of `accounting-YYYY-MM-DD.jsonl`.
pub(crate) fn file_day(name: &str) -> Option<i64> {
    let date = name.strip_prefix("accounting-")?.strip_suffix(".jsonl")?;
    let t = parse_rfc3339_utc(&format!("{date}T00:00:00Z"))?;
    Some(t.div_euclid(86_400))
}

/// Replays the log into `store`, then closes what has gone stale by `now`.
pub fn rebuild(store: &SessionStore, dir: &Path, now: i64) -> io::Result<RebuildReport> {
    let began = Instant::now();
    let mut report = RebuildReport::default();
    let mut line = Vec::with_capacity(4096);
    for path in log_files(dir, now, store.config.rebuild_days)? {
        report.files += 1;
        let mut reader = BufReader::with_capacity(1 << 20, File::open(&path)?);
        loop {
            line.clear();
            if reader.read_until(b'\n', &mut line)? == 0 {
                break;
            }
            replay_line(store, &line, &mut report);
        }
    }
    report.stale = store.sweep(now);
    report.open = store.len();
    report.elapsed = began.elapsed();
    Ok(report)
}

/// Replays one line of the log (anything that is not a record is counted and skipped).
pub fn replay_line(store: &SessionStore, line: &[u8], report: &mut RebuildReport) {
    let Ok(parsed) = serde_json::from_slice::<Line<'_>>(line) else {
        report.unreadable += u64::from(line.iter().any(|b| !b.is_ascii_whitespace()));
        return;
    };
    report.records += 1;
    let Some(update) = parsed.update() else {
        return;
    };
    match store.apply(&update) {
        Applied::Started => report.started += 1,
        Applied::Stopped => report.stopped += 1,
        _ => {}
    }
}
