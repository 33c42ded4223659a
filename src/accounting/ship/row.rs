//! Records to radacct rows, as FreeRADIUS 3.2's `queries.conf` for PostgreSQL maps them, and
//! a batch of records to the statements that ship it.
//!
//! Sans-IO: [`Batch::push`] folds records in log order. Records of one Acct-Unique-Session-Id
//! are coalesced into one row with the final state (Start + Interim-Update + Stop → one row,
//! stopped); an Accounting-On/Off ends the group of rows before it, so that it closes the
//! NAS's sessions after them and before what follows. The same merge rules hold in memory
//! ([`AcctRow::merge`]) and in the database (the statement in `runtime.rs`):
//!
//! * a Stop always applies (stop time, session time, octets, cause, Connect-Info at stop);
//! * an Interim-Update or a Start applies only to an open row: an older Interim never
//!   reopens or overwrites a Stop;
//! * a Start sets the start time and Connect-Info; an Interim-Update the octets, session
//!   time, interval and framed addresses.

use std::collections::HashMap;
use std::net::IpAddr;

use super::line::{Attrs, LogRecord};

/// What a row's last word was, in the order of precedence (a Stop outranks the rest).
/// (The discriminants are Acct-Status-Type's values; the precedence is [`Kind::rank`].)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Start = 1,
    Interim = 3,
    Stop = 2,
}

impl Kind {
    pub fn rank(self) -> u8 {
        match self {
            Kind::Start => 0,
            Kind::Interim => 1,
            Kind::Stop => 2,
        }
    }

    /// Acct-Status-Type's value, which the statement tells the kinds apart by.
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// One radacct row (FreeRADIUS's `column_list`), times in Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcctRow {
    pub kind: Kind,
    pub acctsessionid: String,
    pub acctuniqueid: String,
    pub username: String,
    pub nasipaddress: IpAddr,
    /// NAS-Port-Id, else NAS-Port.
    pub nasportid: Option<String>,
    pub nasporttype: String,
    pub acctstarttime: i64,
    pub acctupdatetime: i64,
    pub acctstoptime: Option<i64>,
    pub acctinterval: Option<i64>,
    pub acctsessiontime: Option<i64>,
    pub acctauthentic: String,
    pub connectinfo_start: String,
    pub connectinfo_stop: Option<String>,
    pub acctinputoctets: i64,
    pub acctoutputoctets: i64,
    pub calledstationid: String,
    pub callingstationid: String,
    pub acctterminatecause: Option<String>,
    pub servicetype: String,
    pub framedprotocol: String,
    pub framedipaddress: Option<IpAddr>,
    pub framedipv6address: Option<IpAddr>,
    /// Text cast to inet by the statement (a prefix, `2001:db8::/64`).
    pub framedipv6prefix: Option<String>,
    pub framedinterfaceid: Option<String>,
    pub delegatedipv6prefix: Option<String>,
    pub class: Option<String>,
}

/// What one record asks of the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Row(Box<AcctRow>),
    /// Accounting-On/Off: close the NAS's open rows at `at` with `cause`.
    CloseNas {
        nas: IpAddr,
        at: i64,
        cause: String,
    },
    /// A record radacct has no row for (no Acct-Status-Type, Accounting "Failed", …).
    Nothing,
}

fn octets(low: &Option<String>, giga: &Option<String>) -> i64 {
    let n = |v: &Option<String>| {
        v.as_deref()
            .and_then(|s| s.parse::<u32>().ok())
            .unwrap_or(0)
    };
    ((i64::from(n(giga))) << 32) + i64::from(n(low))
}

fn text(v: &Option<String>) -> String {
    v.clone().unwrap_or_default()
}

fn non_empty(v: &Option<String>) -> Option<String> {
    v.clone().filter(|s| !s.is_empty())
}

/// An IPv6 prefix `addr/len` the database's inet accepts, else nothing (a value that would
/// make the statement fail must not stop the shipper).
fn prefix(v: &Option<String>) -> Option<String> {
    let s = v.as_deref()?;
    let (addr, len) = s.split_once('/')?;
    let ok =
        addr.parse::<std::net::Ipv6Addr>().is_ok() && len.parse::<u8>().is_ok_and(|l| l <= 128);
    ok.then(|| s.to_string())
}

/// `${event_timestamp_epoch}`: Event-Timestamp, else when the record was received.
fn event_time(r: &LogRecord) -> i64 {
    r.attrs
        .event_timestamp
        .as_deref()
        .and_then(crate::accounting::time::parse_rfc3339_utc)
        .or_else(|| r.attrs.event_timestamp.as_deref()?.parse().ok())
        .unwrap_or(r.received)
}

/// `%{NAS-IPv6-Address}:-%{NAS-IP-Address}`, else the address the request came from (the
/// column is NOT NULL).
fn nas_address(a: &Attrs, source: IpAddr) -> IpAddr {
    let parse = |v: &Option<String>| v.as_deref().and_then(|s| s.parse::<IpAddr>().ok());
    parse(&a.nas_ipv6)
        .or_else(|| parse(&a.nas_ip))
        .unwrap_or(source)
}

/// The record's action.
pub fn action(r: &LogRecord) -> Action {
    let a = &r.attrs;
    let kind = match a.status.as_deref() {
        Some("Start") => Kind::Start,
        Some("Interim-Update") | Some("Alive") => Kind::Interim,
        Some("Stop") => Kind::Stop,
        Some("Accounting-On") | Some("Accounting-Off") => {
            return Action::CloseNas {
                nas: nas_address(a, r.source),
                at: event_time(r),
                cause: non_empty(&a.terminate_cause).unwrap_or_else(|| "NAS-Reboot".into()),
            }
        }
        _ => return Action::Nothing,
    };
    let t = event_time(r);
    let session_time = a
        .session_time
        .as_deref()
        .and_then(|s| s.parse::<u32>().ok());
    let (start, stop, stime, inb, outb) = match kind {
        Kind::Start => (t, None, Some(0), 0, 0),
        Kind::Interim => (
            t,
            None,
            session_time.map(i64::from),
            octets(&a.input_octets, &a.input_gigawords),
            octets(&a.output_octets, &a.output_gigawords),
        ),
        Kind::Stop => (
            t - i64::from(session_time.unwrap_or(0)),
            Some(t),
            session_time.map(i64::from),
            octets(&a.input_octets, &a.input_gigawords),
            octets(&a.output_octets, &a.output_gigawords),
        ),
    };
    let ip = |v: &Option<String>| v.as_deref().and_then(|s| s.parse::<IpAddr>().ok());
    Action::Row(Box::new(AcctRow {
        kind,
        acctsessionid: text(&a.acct_session_id),
        acctuniqueid: r.unique_id.to_string(),
        username: text(&a.user_name),
        nasipaddress: nas_address(a, r.source),
        nasportid: non_empty(&a.nas_port_id).or_else(|| non_empty(&a.nas_port)),
        nasporttype: text(&a.nas_port_type),
        acctstarttime: start,
        acctupdatetime: t,
        acctstoptime: stop,
        acctinterval: None,
        acctsessiontime: stime,
        acctauthentic: text(&a.authentic),
        connectinfo_start: if kind == Kind::Stop {
            String::new()
        } else {
            text(&a.connect_info)
        },
        connectinfo_stop: (kind == Kind::Stop).then(|| text(&a.connect_info)),
        acctinputoctets: inb,
        acctoutputoctets: outb,
        calledstationid: text(&a.called),
        callingstationid: text(&a.calling),
        acctterminatecause: (kind == Kind::Stop).then(|| text(&a.terminate_cause)),
        servicetype: text(&a.service_type),
        framedprotocol: text(&a.framed_protocol),
        framedipaddress: ip(&a.framed_ip),
        framedipv6address: ip(&a.framed_ipv6),
        framedipv6prefix: prefix(&a.framed_ipv6_prefix),
        framedinterfaceid: non_empty(&a.framed_interface_id),
        delegatedipv6prefix: prefix(&a.delegated_prefix),
        class: non_empty(&a.class),
    }))
}

impl AcctRow {
    /// Folds a later record of the same session into this row (the rules in the module's
    /// documentation; the statement applies the same ones against the database's row).
    pub fn merge(&mut self, later: AcctRow) {
        if self.acctstoptime.is_some() && later.kind != Kind::Stop {
            return; // an Interim or Start after the Stop: too late
        }
        match later.kind {
            Kind::Start => {
                self.acctstarttime = later.acctstarttime;
                self.acctupdatetime = self.acctupdatetime.max(later.acctupdatetime);
                self.connectinfo_start = later.connectinfo_start;
            }
            Kind::Interim => {
                self.acctinterval = Some(later.acctupdatetime - self.acctupdatetime);
                self.acctupdatetime = later.acctupdatetime;
                if later.acctsessiontime.is_some() {
                    self.acctsessiontime = later.acctsessiontime;
                }
                self.acctinputoctets = later.acctinputoctets;
                self.acctoutputoctets = later.acctoutputoctets;
                self.take_framed(&later);
            }
            Kind::Stop => {
                self.acctstoptime = later.acctstoptime;
                self.acctupdatetime = later.acctupdatetime;
                self.acctsessiontime = later
                    .acctsessiontime
                    .or_else(|| later.acctstoptime.map(|stop| stop - self.acctstarttime));
                self.acctinputoctets = later.acctinputoctets;
                self.acctoutputoctets = later.acctoutputoctets;
                self.acctterminatecause = later.acctterminatecause.clone();
                self.connectinfo_stop = later.connectinfo_stop.clone();
                self.take_framed(&later);
            }
        }
        if later.kind.rank() > self.kind.rank() {
            self.kind = later.kind;
        }
    }

    fn take_framed(&mut self, later: &AcctRow) {
        self.framedipaddress = later.framedipaddress;
        self.framedipv6address = later.framedipv6address;
        self.framedipv6prefix = later.framedipv6prefix.clone();
        self.framedinterfaceid = later.framedinterfaceid.clone();
        self.delegatedipv6prefix = later.delegatedipv6prefix.clone();
    }
}

/// One statement of a batch, in the order they run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Statement {
    /// Rows with distinct acctuniqueid: one multi-row upsert.
    Upsert(Vec<AcctRow>),
    CloseNas {
        nas: IpAddr,
        at: i64,
        cause: String,
    },
}

/// Records folded into statements.
#[derive(Debug, Default)]
pub struct Batch {
    statements: Vec<Statement>,
    /// acctuniqueid → index in the open group (the last statement, an `Upsert`).
    open: HashMap<String, usize>,
    /// Records folded in.
    pub records: usize,
}

impl Batch {
    pub fn push(&mut self, record: &LogRecord) {
        self.records += 1;
        match action(record) {
            Action::Nothing => {}
            Action::CloseNas { nas, at, cause } => {
                self.open.clear();
                self.statements.push(Statement::CloseNas { nas, at, cause });
            }
            Action::Row(row) => {
                if let Some(&i) = self.open.get(&row.acctuniqueid) {
                    if let Some(Statement::Upsert(rows)) = self.statements.last_mut() {
                        rows[i].merge(*row);
                        return;
                    }
                }
                if !matches!(self.statements.last(), Some(Statement::Upsert(_))) {
                    self.statements.push(Statement::Upsert(Vec::new()));
                }
                if let Some(Statement::Upsert(rows)) = self.statements.last_mut() {
                    self.open.insert(row.acctuniqueid.clone(), rows.len());
                    rows.push(*row);
                }
            }
        }
    }

    /// Rows the statements write (after coalescing).
    pub fn rows(&self) -> usize {
        self.statements
            .iter()
            .map(|s| match s {
                Statement::Upsert(r) => r.len(),
                Statement::CloseNas { .. } => 0,
            })
            .sum()
    }

    pub fn statements(&self) -> &[Statement] {
        &self.statements
    }

    pub fn is_empty(&self) -> bool {
        self.records == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounting::ship::line::parse_line;

    fn rec(status: &str, sid: &str, t: &str, extra: &str) -> LogRecord {
        let line = format!(
            r#"{{"time":"2026-12-06T10:00:{t}.000000Z","nas":"192.0.2.9:4000","attributes":{{"Acct-Status-Type":"{status}","User-Name":"alice","Acct-Session-Id":"{sid}","NAS-IP-Address":"10.1.1.1"{extra}}}}}"#
        );
        parse_line(line.as_bytes()).unwrap()
    }

    fn row(r: &LogRecord) -> AcctRow {
        match action(r) {
            Action::Row(r) => *r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn start_interim_stop_map_like_queries_conf() {
        let start = row(&rec(
            "Start",
            "a",
            "00",
            r#","NAS-Port":"3","Connect-Info":"11Mbps""#,
        ));
        assert_eq!(start.kind, Kind::Start);
        assert_eq!(start.nasipaddress, "10.1.1.1".parse::<IpAddr>().unwrap());
        assert_eq!(start.nasportid.as_deref(), Some("3"));
        assert_eq!(start.acctsessiontime, Some(0));
        assert_eq!(start.acctstoptime, None);
        assert_eq!(start.connectinfo_start, "11Mbps");
        let interim = row(&rec(
            "Interim-Update",
            "a",
            "30",
            r#","Acct-Input-Octets":"5","Acct-Input-Gigawords":"1","Acct-Output-Octets":"7","Acct-Session-Time":"30""#,
        ));
        assert_eq!(interim.acctinputoctets, (1 << 32) + 5);
        assert_eq!(interim.acctoutputoctets, 7);
        let stop = row(&rec(
            "Stop",
            "a",
            "50",
            r#","Acct-Session-Time":"50","Acct-Terminate-Cause":"User-Request","Framed-IP-Address":"10.0.0.9""#,
        ));
        assert_eq!(
            stop.acctstarttime,
            stop.acctupdatetime - 50,
            "start = event − session time"
        );
        assert_eq!(stop.acctstoptime, Some(stop.acctupdatetime));
        assert_eq!(stop.acctterminatecause.as_deref(), Some("User-Request"));
        assert_eq!(stop.framedipaddress, Some("10.0.0.9".parse().unwrap()));
    }

    #[test]
    fn a_session_coalesces_into_one_row_with_the_final_state() {
        let mut b = Batch::default();
        b.push(&rec("Start", "a", "00", ""));
        b.push(&rec("Start", "b", "00", ""));
        b.push(&rec(
            "Interim-Update",
            "a",
            "30",
            r#","Acct-Input-Octets":"100","Acct-Session-Time":"30""#,
        ));
        b.push(&rec(
            "Stop",
            "a",
            "50",
            r#","Acct-Input-Octets":"200","Acct-Session-Time":"50""#,
        ));
        // A late Interim (retransmitted, reordered) never undoes the Stop.
        b.push(&rec(
            "Interim-Update",
            "a",
            "40",
            r#","Acct-Input-Octets":"150""#,
        ));
        assert_eq!((b.records, b.rows()), (5, 2));
        let Statement::Upsert(rows) = &b.statements()[0] else {
            panic!()
        };
        let a = &rows[0];
        assert_eq!(a.kind, Kind::Stop);
        assert_eq!(a.acctinputoctets, 200);
        assert_eq!(a.acctsessiontime, Some(50));
        assert_eq!(
            a.acctstarttime,
            rec("Start", "a", "00", "").received,
            "the Start's time"
        );
        assert_eq!(a.acctstoptime, Some(a.acctstarttime + 50));
        assert_eq!(a.acctinterval, Some(30));
        assert_eq!(rows[1].kind, Kind::Start);
    }

    #[test]
    fn accounting_on_closes_after_what_came_before_it() {
        let mut b = Batch::default();
        b.push(&rec("Start", "a", "00", ""));
        b.push(&rec("Accounting-On", "", "10", ""));
        b.push(&rec("Start", "a", "20", ""));
        b.push(&rec(
            "Accounting-Off",
            "",
            "30",
            r#","Acct-Terminate-Cause":"Admin-Reboot""#,
        ));
        let s = b.statements();
        assert_eq!(s.len(), 4);
        assert!(matches!(&s[0], Statement::Upsert(r) if r.len() == 1));
        assert!(
            matches!(&s[1], Statement::CloseNas { cause, nas, .. } if cause == "NAS-Reboot" && nas.to_string() == "10.1.1.1")
        );
        assert!(
            matches!(&s[2], Statement::Upsert(r) if r.len() == 1),
            "not merged across the On"
        );
        assert!(matches!(&s[3], Statement::CloseNas { cause, .. } if cause == "Admin-Reboot"));
    }

    #[test]
    fn other_records_have_no_row_and_event_timestamp_wins() {
        assert_eq!(action(&rec("Failed", "a", "00", "")), Action::Nothing);
        let r = row(&rec(
            "Start",
            "a",
            "00",
            r#","Event-Timestamp":"2026-12-06T09:00:00Z""#,
        ));
        assert_eq!(r.acctstarttime, rec("Start", "a", "00", "").received - 3600);
        // Without an address attribute, the request's source (the column is NOT NULL).
        let line = r#"{"time":"2026-12-06T10:00:00.0Z","nas":"192.0.2.9:4000","attributes":{"Acct-Status-Type":"Start"}}"#;
        assert_eq!(
            row(&parse_line(line.as_bytes()).unwrap())
                .nasipaddress
                .to_string(),
            "192.0.2.9"
        );
    }
}
