//! Acct-Unique-Session-Id, computed exactly as FreeRADIUS 3's `acct_unique` policy does, so
//! that a session has the same id in radshard and in a FreeRADIUS SQL schema fed from the
//! same accounting:
//!
//! * the Class is ours (`ai:` then 32 hex digits): MD5 of `"<those 32 digits>,<Acct-Session-Id>"`;
//! * otherwise MD5 of `"User-Name,Acct-Session-Id,NAS-IPv6-Address or NAS-IP-Address,
//!   NAS-Identifier,NAS-Port-Id,NAS-Port"` (absent attributes are empty).
//!
//! The id is the digest; its text form is 32 lowercase hex digits.

use std::fmt;
use std::io::Write;
use std::net::{Ipv4Addr, Ipv6Addr};

use md5::{Digest, Md5};

/// The prefix of a Class radshard (or FreeRADIUS's `insert_acct_class`) generated.
pub const CLASS_PREFIX: &[u8] = b"ai:";

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UniqueId(pub [u8; 16]);

impl UniqueId {
    pub fn from_hex(s: &str) -> Option<UniqueId> {
        let bytes = data_encoding::HEXLOWER_PERMISSIVE
            .decode(s.as_bytes())
            .ok()?;
        Some(UniqueId(bytes.try_into().ok()?))
    }

    /// The 32 hex digits of a Class starting `ai:` followed by them (any case, anything after).
    pub fn class_digits(class: &[u8]) -> Option<&[u8]> {
        let digits = class.strip_prefix(CLASS_PREFIX)?.get(..32)?;
        digits.iter().all(u8::is_ascii_hexdigit).then_some(digits)
    }

    /// From our Class's digits and the Acct-Session-Id.
    pub fn from_class(digits: &[u8], acct_session_id: &[u8]) -> UniqueId {
        let mut h = Md5::new();
        h.update(digits);
        h.update(b",");
        h.update(acct_session_id);
        UniqueId(h.finalize().into())
    }

    /// From the NAS's attributes (no Class of ours).
    pub fn from_attributes(a: &KeyAttributes<'_>) -> UniqueId {
        let mut h = Md5::new();
        h.update(a.user_name);
        h.update(b",");
        h.update(a.acct_session_id);
        h.update(b",");
        // FreeRADIUS prints addresses and integers as text; a stack buffer keeps it
        // allocation-free.
        let mut text = [0u8; 48];
        let mut put = |h: &mut Md5, f: &dyn Fn(&mut &mut [u8]) -> std::io::Result<()>| {
            let mut w: &mut [u8] = &mut text;
            let room = w.len();
            if f(&mut w).is_ok() {
                let used = room - w.len();
                h.update(&text[..used]);
            }
        };
        match (a.nas_ipv6, a.nas_ip) {
            (Some(v6), _) => put(&mut h, &|w| write!(w, "{v6}")),
            (None, Some(v4)) => put(&mut h, &|w| write!(w, "{v4}")),
            (None, None) => {}
        }
        h.update(b",");
        h.update(a.nas_identifier);
        h.update(b",");
        h.update(a.nas_port_id);
        h.update(b",");
        if let Some(port) = a.nas_port {
            put(&mut h, &|w| write!(w, "{port}"));
        }
        UniqueId(h.finalize().into())
    }

    /// 32 lowercase hex digits.
    pub fn hex(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        data_encoding::HEXLOWER.encode_mut(&self.0, &mut out);
        out
    }
}

impl fmt::Display for UniqueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex = self.hex();
        // Hex digits are ASCII.
        f.write_str(std::str::from_utf8(&hex).unwrap_or_default())
    }
}

impl fmt::Debug for UniqueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UniqueId({self})")
    }
}

/// The attributes the fallback id is made of (empty when absent).
#[derive(Debug, Clone, Copy, Default)]
pub struct KeyAttributes<'a> {
    pub user_name: &'a [u8],
    pub acct_session_id: &'a [u8],
    pub nas_ip: Option<Ipv4Addr>,
    pub nas_ipv6: Option<Ipv6Addr>,
    pub nas_identifier: &'a [u8],
    pub nas_port_id: &'a [u8],
    pub nas_port: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md5_hex(s: &str) -> String {
        data_encoding::HEXLOWER.encode(&Md5::digest(s.as_bytes()))
    }

    #[test]
    fn fallback_is_freeradius_string_hashed() {
        let a = KeyAttributes {
            user_name: b"alice",
            acct_session_id: b"5F00A1B2",
            nas_ip: Some(Ipv4Addr::new(10, 0, 0, 1)),
            nas_ipv6: None,
            nas_identifier: b"hapd1",
            nas_port_id: b"",
            nas_port: Some(1),
        };
        let id = UniqueId::from_attributes(&a);
        assert_eq!(id.to_string(), md5_hex("alice,5F00A1B2,10.0.0.1,hapd1,,1"));
        let none = KeyAttributes {
            acct_session_id: b"x",
            ..KeyAttributes::default()
        };
        assert_eq!(
            UniqueId::from_attributes(&none).to_string(),
            md5_hex(",x,,,,")
        );
        let v6 = KeyAttributes {
            nas_ipv6: Some("2001:db8::1".parse().unwrap()),
            ..a
        };
        assert_eq!(
            UniqueId::from_attributes(&v6).to_string(),
            md5_hex("alice,5F00A1B2,2001:db8::1,hapd1,,1")
        );
    }

    #[test]
    fn class_form_hashes_the_digits_and_session() {
        let class = b"ai:0123456789abcdef0123456789ABCDEF:extra";
        let digits = UniqueId::class_digits(class).unwrap();
        assert_eq!(
            UniqueId::from_class(digits, b"S1").to_string(),
            md5_hex("0123456789abcdef0123456789ABCDEF,S1")
        );
        assert!(UniqueId::class_digits(b"ai:0123").is_none());
        assert!(UniqueId::class_digits(b"xx:0123456789abcdef0123456789abcdef").is_none());
        assert!(UniqueId::class_digits(b"ai:0123456789abcdef0123456789abcdeg").is_none());
        let id = UniqueId::from_class(digits, b"S1");
        assert_eq!(UniqueId::from_hex(&id.to_string()), Some(id));
        assert_eq!(UniqueId::from_hex("zz"), None);
    }
}
