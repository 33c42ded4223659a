//! Reading the durable log back: one line of `accounting-YYYY-MM-DD.jsonl` (as
//! [`crate::accounting::record`] writes it) into what the shipper needs of it.
//!
//! Input is a file radshard wrote, but it is still read as untrusted text: a torn last line
//! after a crash, a line another writer glued onto it, values of any size. Nothing here
//! panics on input (fuzzed as `acct_ship`); a line that is not a record is reported, never
//! guessed at.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use serde::Deserialize;

use crate::accounting::time::parse_rfc3339_utc;
use crate::session::unique_id::KeyAttributes;
use crate::session::UniqueId;

/// Longest text value kept for a column; longer values are cut (at a character boundary).
pub const MAX_VALUE: usize = 253 * 4;

#[derive(Deserialize)]
struct Line<'a> {
    #[serde(borrow)]
    time: Cow<'a, str>,
    #[serde(borrow)]
    nas: Cow<'a, str>,
    #[serde(borrow, default)]
    attributes: Attributes<'a>,
    #[serde(borrow, default)]
    session: Option<SessionPart<'a>>,
}

#[derive(Deserialize)]
struct SessionPart<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
}

/// A value as the log writes it: text, or an array for a repeated attribute (the first
/// occurrence is the one used, as FreeRADIUS's `%{Attr}` does).
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

macro_rules! attributes {
    ($($field:ident = $name:literal),* $(,)?) => {
        #[derive(Deserialize, Default)]
        #[serde(default)]
        struct Attributes<'a> {
            $(#[serde(rename = $name, borrow)] $field: Option<Value<'a>>,)*
        }
        /// The attributes a radacct row is made of, each its first value.
        #[derive(Debug, Default, Clone, PartialEq, Eq)]
        pub struct Attrs {
            $(pub $field: Option<String>,)*
        }
        impl Attributes<'_> {
            fn owned(self) -> Attrs {
                Attrs { $($field: self.$field.and_then(Value::first).map(bounded),)* }
            }
        }
    };
}

attributes! {
    status = "Acct-Status-Type",
    user_name = "User-Name",
    acct_session_id = "Acct-Session-Id",
    nas_ip = "NAS-IP-Address",
    nas_ipv6 = "NAS-IPv6-Address",
    nas_identifier = "NAS-Identifier",
    nas_port = "NAS-Port",
    nas_port_id = "NAS-Port-Id",
    nas_port_type = "NAS-Port-Type",
    event_timestamp = "Event-Timestamp",
    session_time = "Acct-Session-Time",
    authentic = "Acct-Authentic",
    connect_info = "Connect-Info",
    input_octets = "Acct-Input-Octets",
    output_octets = "Acct-Output-Octets",
    input_gigawords = "Acct-Input-Gigawords",
    output_gigawords = "Acct-Output-Gigawords",
    called = "Called-Station-Id",
    calling = "Calling-Station-Id",
    terminate_cause = "Acct-Terminate-Cause",
    service_type = "Service-Type",
    framed_protocol = "Framed-Protocol",
    framed_ip = "Framed-IP-Address",
    framed_ipv6 = "Framed-IPv6-Address",
    framed_ipv6_prefix = "Framed-IPv6-Prefix",
    framed_interface_id = "Framed-Interface-Id",
    delegated_prefix = "Delegated-IPv6-Prefix",
    class = "Class",
}

/// At most [`MAX_VALUE`] bytes, without NUL (PostgreSQL's text cannot hold it).
fn bounded(v: Cow<'_, str>) -> String {
    let v = if v.contains('\0') {
        Cow::Owned(v.replace('\0', ""))
    } else {
        v
    };
    if v.len() <= MAX_VALUE {
        return v.into_owned();
    }
    let mut end = MAX_VALUE;
    while !v.is_char_boundary(end) {
        end -= 1;
    }
    v[..end].to_string()
}

/// One record of the log, as the shipper reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// Unix seconds the record was received.
    pub received: i64,
    /// The address the request came from.
    pub source: IpAddr,
    /// Acct-Unique-Session-Id: the one the session table resolved (`"session":{"id"}`), else
    /// computed from the attributes as FreeRADIUS's `acct_unique` does.
    pub unique_id: UniqueId,
    pub attrs: Attrs,
}

/// Why a line is not a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("not a JSON accounting record")]
    Syntax,
    #[error("the record's time is not RFC 3339 UTC")]
    Time,
    #[error("the record's NAS address does not parse")]
    Nas,
    #[error("the record's session id is not 32 hex digits")]
    SessionId,
}

/// Reads one line (without or with its newline). A line whose start was torn by a crash and
/// glued to the next record is read from that record's start (`{"time":` after the first
/// byte): the torn part was never acknowledged, the record after it was.
pub fn parse_line(line: &[u8]) -> Result<LogRecord, LineError> {
    match parse_exact(line) {
        Err(LineError::Syntax) => {
            const START: &[u8] = b"{\"time\":";
            let at = line
                .get(1..)
                .and_then(|rest| rest.windows(START.len()).position(|w| w == START))
                .ok_or(LineError::Syntax)?;
            parse_exact(&line[at + 1..])
        }
        other => other,
    }
}

fn parse_exact(line: &[u8]) -> Result<LogRecord, LineError> {
    let l: Line<'_> = serde_json::from_slice(line).map_err(|_| LineError::Syntax)?;
    let received = parse_rfc3339_utc(&l.time).ok_or(LineError::Time)?;
    let source = l
        .nas
        .parse::<SocketAddr>()
        .map(|a| a.ip())
        .or_else(|_| l.nas.parse::<IpAddr>())
        .map_err(|_| LineError::Nas)?;
    let session = match &l.session {
        Some(s) => Some(UniqueId::from_hex(&s.id).ok_or(LineError::SessionId)?),
        None => None,
    };
    let attrs = l.attributes.owned();
    let unique_id = session.unwrap_or_else(|| computed_unique_id(&attrs));
    Ok(LogRecord {
        received,
        source,
        unique_id,
        attrs,
    })
}

/// Acct-Unique-Session-Id of a record written without the session table: our Class (logged
/// as `0x` hex) and the Acct-Session-Id, else the NAS's attributes.
pub fn computed_unique_id(a: &Attrs) -> UniqueId {
    let sid = a.acct_session_id.as_deref().unwrap_or("").as_bytes();
    let class = a
        .class
        .as_deref()
        .and_then(|c| c.strip_prefix("0x"))
        .and_then(|h| data_encoding::HEXLOWER_PERMISSIVE.decode(h.as_bytes()).ok());
    if let Some(digits) = class.as_deref().and_then(UniqueId::class_digits) {
        return UniqueId::from_class(digits, sid);
    }
    fn bytes(v: &Option<String>) -> &[u8] {
        v.as_deref().unwrap_or("").as_bytes()
    }
    UniqueId::from_attributes(&KeyAttributes {
        user_name: bytes(&a.user_name),
        acct_session_id: sid,
        nas_ip: a.nas_ip.as_deref().and_then(|s| s.parse::<Ipv4Addr>().ok()),
        nas_ipv6: a
            .nas_ipv6
            .as_deref()
            .and_then(|s| s.parse::<Ipv6Addr>().ok()),
        nas_identifier: bytes(&a.nas_identifier),
        nas_port_id: bytes(&a.nas_port_id),
        nas_port: a.nas_port.as_deref().and_then(|s| s.parse().ok()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const START: &str = r#"{"time":"2026-12-06T10:00:00.000001Z","client":"c","nas":"127.0.0.1:4000","shard":0,"attributes":{"Acct-Status-Type":"Start","User-Name":"alice","Acct-Session-Id":"s1","Class":["0x61","0x62"]},"session":{"id":"00112233445566778899aabbccddeeff","user":"alice"}}"#;

    #[test]
    fn reads_what_the_writer_writes() {
        let r = parse_line(format!("{START}\n").as_bytes()).unwrap();
        assert_eq!(r.received, 1_796_551_200);
        assert_eq!(r.source, "127.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(r.unique_id.to_string(), "00112233445566778899aabbccddeeff");
        assert_eq!(r.attrs.status.as_deref(), Some("Start"));
        assert_eq!(r.attrs.class.as_deref(), Some("0x61"), "the first Class");
    }

    #[test]
    fn without_the_session_part_the_id_is_freeradius_acct_unique() {
        let line = r#"{"time":"2026-12-06T10:00:00.000001Z","nas":"[::1]:4000","attributes":{"User-Name":"bob","Acct-Session-Id":"x","NAS-IP-Address":"10.0.0.1","NAS-Port":"7"}}"#;
        let r = parse_line(line.as_bytes()).unwrap();
        let expect = UniqueId::from_attributes(&KeyAttributes {
            user_name: b"bob",
            acct_session_id: b"x",
            nas_ip: Some(Ipv4Addr::new(10, 0, 0, 1)),
            nas_ipv6: None,
            nas_identifier: b"",
            nas_port_id: b"",
            nas_port: Some(7),
        });
        assert_eq!(r.unique_id, expect);
        assert_eq!(r.source, "::1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn a_torn_line_glued_to_a_record_yields_the_record() {
        let glued = format!("{{\"time\":\"2026-12-06T09:59:59.9Z\",\"cli{START}");
        assert_eq!(
            parse_line(glued.as_bytes())
                .unwrap()
                .attrs
                .user_name
                .as_deref(),
            Some("alice")
        );
        assert_eq!(parse_line(b"{\"time\":\"2026"), Err(LineError::Syntax));
        assert_eq!(parse_line(b""), Err(LineError::Syntax));
        let bad_id = START.replace("00112233445566778899aabbccddeeff", "zz");
        assert_eq!(parse_line(bad_id.as_bytes()), Err(LineError::SessionId));
        let bad_time = START.replace("2026-12-06T10", "2026-13-06T10");
        assert_eq!(parse_line(bad_time.as_bytes()), Err(LineError::Time));
    }

    #[test]
    fn long_values_are_cut_at_a_character_boundary() {
        let long = "é".repeat(MAX_VALUE);
        let line = START.replace("\"alice\",\"Acct", &format!("\"{long}\",\"Acct"));
        let r = parse_line(line.as_bytes()).unwrap();
        let name = r.attrs.user_name.unwrap();
        assert!(name.len() <= MAX_VALUE && name.chars().all(|c| c == 'é'));
    }
}
