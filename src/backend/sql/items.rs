//! Rows made into items: the attribute resolved (a RADIUS attribute of the dictionary, or one
//! of the server attributes FreeRADIUS keeps in its control list), the operator, the value
//! unquoted and, for RADIUS attributes, encoded as on the wire.

use crate::dict::{AttrKey, AttrType, Dictionary};

use super::rows::{unquote, Op, RawRow, RowError};

/// The server ("control") attributes of FreeRADIUS's internal dictionary that the SQL store
/// understands. Any other name that is not in the RADIUS dictionary refuses the row: an
/// attribute that restricts a login in FreeRADIUS (Login-Time, Max-Daily-Session, …) must not
/// be ignored here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    CleartextPassword,
    NtPassword,
    CryptPassword,
    Md5Password,
    Smd5Password,
    ShaPassword,
    SshaPassword,
    Sha2Password,
    Ssha2_224Password,
    Ssha2_256Password,
    Ssha2_384Password,
    Ssha2_512Password,
    /// Recognised, never checked: a login against them is rejected.
    LmPassword,
    NsMtaMd5Password,
    Pbkdf2Password,
    PasswordWithHeader,
    AuthType,
    SimultaneousUse,
    Expiration,
    FallThrough,
    /// Group membership (`SQL-Group == "staff"`), as rlm_sql's registered comparison.
    SqlGroup,
    /// `Pool-Name := "…"`: the `radippool` pool an Access-Accept's address comes from
    /// (FreeRADIUS's sqlippool reads it from the control list).
    PoolName,
}

/// Names as FreeRADIUS spells them (compared case-insensitively), aliases included.
const SERVER: &[(&str, Server)] = &[
    ("Cleartext-Password", Server::CleartextPassword),
    ("NT-Password", Server::NtPassword),
    ("Crypt-Password", Server::CryptPassword),
    ("MD5-Password", Server::Md5Password),
    ("SMD5-Password", Server::Smd5Password),
    ("SHA-Password", Server::ShaPassword),
    ("SHA1-Password", Server::ShaPassword),
    ("SSHA-Password", Server::SshaPassword),
    ("SSHA1-Password", Server::SshaPassword),
    ("SHA2-Password", Server::Sha2Password),
    ("SSHA2-224-Password", Server::Ssha2_224Password),
    ("SSHA2-256-Password", Server::Ssha2_256Password),
    ("SSHA2-384-Password", Server::Ssha2_384Password),
    ("SSHA2-512-Password", Server::Ssha2_512Password),
    ("LM-Password", Server::LmPassword),
    ("NS-MTA-MD5-Password", Server::NsMtaMd5Password),
    ("PBKDF2-Password", Server::Pbkdf2Password),
    ("Password-With-Header", Server::PasswordWithHeader),
    ("Auth-Type", Server::AuthType),
    ("Simultaneous-Use", Server::SimultaneousUse),
    ("Expiration", Server::Expiration),
    ("Fall-Through", Server::FallThrough),
    ("SQL-Group", Server::SqlGroup),
    ("Pool-Name", Server::PoolName),
];

impl Server {
    pub fn by_name(name: &str) -> Option<Server> {
        SERVER
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|&(_, s)| s)
    }

    pub fn name(self) -> &'static str {
        SERVER
            .iter()
            .find(|(_, s)| *s == self)
            .map_or("?", |(n, _)| n)
    }

    /// A known-good password of some form (what rlm_pap looks for).
    pub fn is_password(self) -> bool {
        !matches!(
            self,
            Server::AuthType
                | Server::SimultaneousUse
                | Server::Expiration
                | Server::FallThrough
                | Server::SqlGroup
                | Server::PoolName
                | Server::PasswordWithHeader
        )
    }

    /// Octets in FreeRADIUS's dictionary: a `0x` value is hex-decoded when read.
    fn is_octets(self) -> bool {
        matches!(
            self,
            Server::NtPassword
                | Server::Md5Password
                | Server::Smd5Password
                | Server::ShaPassword
                | Server::SshaPassword
                | Server::Sha2Password
                | Server::Ssha2_224Password
                | Server::Ssha2_256Password
                | Server::Ssha2_384Password
                | Server::Ssha2_512Password
                | Server::LmPassword
                | Server::Pbkdf2Password
        )
    }
}

/// What an item's attribute is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attr {
    Server(Server),
    /// A dictionary attribute: compared with the request's, sent in replies.
    Radius {
        key: AttrKey,
        /// The dictionary's spelling (and `:tag` when the row gave one).
        name: String,
        ty: AttrType,
    },
}

impl Attr {
    /// The same attribute (FreeRADIUS compares definitions, not tags).
    pub fn same(&self, other: &Attr) -> bool {
        match (self, other) {
            (Attr::Server(a), Attr::Server(b)) => a == b,
            (Attr::Radius { key: a, .. }, Attr::Radius { key: b, .. }) => a == b,
            _ => false,
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Attr::Server(s) => s.name(),
            Attr::Radius { name, .. } => name,
        }
    }
}

/// One check or reply item. Its `Debug` leaves out values (passwords, hashes).
#[derive(Clone, PartialEq, Eq)]
pub struct Item {
    pub attr: Attr,
    pub op: Op,
    /// The value as text, unquoted (a regular expression for `=~`/`!~`).
    pub text: String,
    /// The value as octets: a RADIUS attribute's wire value (tag included), a server
    /// attribute's octets (hex-decoded after `0x` for octets types, else the text's).
    pub value: Vec<u8>,
}

impl std::fmt::Debug for Item {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Item({} {} <value>)", self.attr.name(), self.op.symbol())
    }
}

/// Most rows one lookup reads from one table for one user or group (each query is limited
/// to it, so one user cannot make a lookup unbounded).
pub const MAX_ROWS: usize = 256;

/// Parses rows into items with the dictionary; the first unusable row refuses them all, as
/// FreeRADIUS fails the whole query.
pub fn parse_rows(rows: &[RawRow], dict: &Dictionary) -> Result<Vec<Item>, RowError> {
    if rows.len() > MAX_ROWS {
        let name = rows.first().map_or("", |r| r.attribute.as_str());
        return Err(RowError::TooMany(name.to_string(), MAX_ROWS));
    }
    rows.iter().map(|r| parse_row(r, dict)).collect()
}

fn parse_row(row: &RawRow, dict: &Dictionary) -> Result<Item, RowError> {
    let name = row.attribute.trim();
    if name.is_empty() {
        return Err(RowError::NoAttribute);
    }
    let op = Op::parse(name, row.op.as_deref())?;
    let raw = row
        .value
        .as_deref()
        .ok_or_else(|| RowError::NoValue(name.to_string()))?;
    let text = unquote(name, raw)?.into_owned();
    if let Some(server) = Server::by_name(name) {
        let value = server_value(server, &text).map_err(|why| RowError::BadValue {
            attr: server.name().to_string(),
            why: why.into(),
        })?;
        return Ok(Item {
            attr: Attr::Server(server),
            op,
            text,
            value,
        });
    }
    radius_item(name, op, text, dict)
}

/// A server attribute's value as FreeRADIUS's dictionary types it: numbers (integers, dates,
/// the VALUE names of Auth-Type and Fall-Through) as four octets in network order, octets
/// hex-decoded after `0x`, strings as they are.
fn server_value(server: Server, text: &str) -> Result<Vec<u8>, &'static str> {
    let number = |names: &[(&str, u32)]| {
        names
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(text))
            .map(|&(_, v)| v)
            .or_else(|| text.parse::<u32>().ok())
            .map(|n| n.to_be_bytes().to_vec())
    };
    match server {
        Server::Expiration => super::date::parse_date(text)
            .map(|t| t.to_be_bytes().to_vec())
            .ok_or(
                "not a date FreeRADIUS reads (\"Jan  1 2030 00:00:00\", Unix seconds, ISO 8601)",
            ),
        Server::SimultaneousUse => number(&[]).ok_or("not a number"),
        Server::FallThrough => number(&[("No", 0), ("Yes", 1)]).ok_or("not Yes, No or a number"),
        Server::AuthType => number(AUTH_TYPES).ok_or("not an Auth-Type radshard knows"),
        s if s.is_octets() => match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
            Some(hex) => data_encoding::HEXLOWER_PERMISSIVE
                .decode(hex.as_bytes())
                .map_err(|_| "odd length or non-hex digit after 0x"),
            None => Ok(text.as_bytes().to_vec()),
        },
        _ => Ok(text.as_bytes().to_vec()),
    }
}

/// Auth-Type values: FreeRADIUS's fixed ones and those its modules define (numbered here, the
/// numbers are ours: only the names are compared with FreeRADIUS's).
pub const AUTH_TYPES: &[(&str, u32)] = &[
    ("Local", 1),
    ("Reject", 4),
    ("Accept", 254),
    ("PAP", 1024),
    ("CHAP", 1025),
    ("MS-CHAP", 1026),
];

fn radius_item(name: &str, op: Op, text: String, dict: &Dictionary) -> Result<Item, RowError> {
    let bare = name.rsplit_once(':').map_or(name, |(n, _)| n);
    let def = dict
        .attribute(name)
        .or_else(|| dict.attribute(bare))
        .ok_or_else(|| RowError::UnknownAttribute(name.chars().take(64).collect()))?;
    let bad = |e: crate::dict::EncodeError| RowError::BadValue {
        attr: def.name.clone(),
        why: e.to_string(),
    };
    // A regular expression is text; FreeRADIUS still parses it as the attribute's type.
    let encoded = dict.encode(name, &text).map_err(bad)?;
    let display = match name.rsplit_once(':') {
        Some((_, tag)) if def.has_tag => format!("{}:{tag}", def.name),
        _ => def.name.clone(),
    };
    Ok(Item {
        attr: Attr::Radius {
            key: def.key,
            name: display,
            ty: def.ty,
        },
        op,
        text,
        value: encoded.value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_resolve_to_server_and_radius_attributes() {
        let dict = Dictionary::builtin();
        let items = parse_rows(
            &[
                RawRow::new("cleartext-password", ":=", "\"pw\""),
                RawRow::new("NT-Password", ":=", "0x8846F7EAEE8FB117AD06BDD830B7586C"),
                RawRow::new("Session-Timeout", "=", "3600"),
                RawRow::new("Tunnel-Private-Group-Id:1", ":=", "10"),
                RawRow::new("NAS-IP-Address", "==", "10.0.0.1"),
            ],
            &dict,
        )
        .unwrap();
        assert_eq!(items[0].attr, Attr::Server(Server::CleartextPassword));
        assert_eq!(items[0].value, b"pw");
        assert_eq!(items[1].value.len(), 16);
        assert_eq!(items[2].value, 3600u32.to_be_bytes());
        assert_eq!(items[3].value, b"\x0110");
        assert_eq!(items[3].attr.name(), "Tunnel-Private-Group-Id:1");
        assert_eq!(items[4].value, [10, 0, 0, 1]);
        let shown = format!("{items:?}");
        assert!(
            !shown.contains("pw\"") && !shown.contains("8846"),
            "{shown}"
        );
    }

    #[test]
    fn unusable_rows_are_refused() {
        let dict = Dictionary::builtin();
        for row in [
            RawRow::new("Login-Time", ":=", "Al0800-1800"),
            RawRow::new("Session-Timeout", ":=", "soon"),
            RawRow::new("", ":=", "x"),
            RawRow::new("Reply-Message", "~~", "x"),
            RawRow::new("Reply-Message", ":=", "`%{exec:/bin/sh}`"),
            RawRow::new("NT-Password", ":=", "0xZZ"),
        ] {
            assert!(
                parse_rows(std::slice::from_ref(&row), &dict).is_err(),
                "{row:?}"
            );
        }
        let null = RawRow {
            value: None,
            ..RawRow::new("Reply-Message", ":=", "")
        };
        assert!(matches!(
            parse_rows(&[null], &dict),
            Err(RowError::NoValue(_))
        ));
        let many = vec![RawRow::new("Class", "+=", "x"); MAX_ROWS + 1];
        assert!(matches!(
            parse_rows(&many, &dict),
            Err(RowError::TooMany(..))
        ));
    }
}
