//! Received attribute value → text for logs and the accounting JSON log.
//!
//! Renderings: VALUE names for enumerated numbers, decimal otherwise; dotted
//! IPv4; RFC 5952 IPv6; `addr/len` prefixes; dates as RFC 3339 UTC
//! (`2024-01-02T03:04:05Z`, chosen over raw seconds because logs are read by
//! people; the encoder accepts both back); strings as is with `\\`, `\n`, `\r`,
//! `\t` and `\xNN` escapes for backslash, control characters and invalid UTF-8;
//! everything else (octets, abinary, containers, unknown attributes, and any
//! value whose length does not fit its type) as `0x` lowercase hex.
//!
//! Tagged attributes with a non-zero tag render as `tag:value`, the same syntax
//! [`Dictionary::encode`] accepts. Arrays of fixed-size types are joined by `,`.
//! Encrypted attributes are rendered from whatever bytes the caller passes:
//! hand in the decrypted value to see text.

use std::fmt::Write;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::dictionary::Dictionary;
use super::types::{AttrDef, AttrKey, AttrType};

impl Dictionary {
    /// Appends the text form of `value`, received for attribute `key`, to `out`.
    pub fn format_value(&self, key: AttrKey, value: &[u8], out: &mut String) {
        match self.by_key(key) {
            Some(def) => self.format_def(def, value, out),
            None => push_hex(value, out),
        }
    }

    /// [`Dictionary::format_value`] for a definition already looked up.
    pub fn format_def(&self, def: &AttrDef, value: &[u8], out: &mut String) {
        let mut value = value;
        if def.has_tag {
            match (def.ty, value.first()) {
                (AttrType::Integer, Some(&t)) if value.len() == 4 => {
                    if t != 0 {
                        let _ = write!(out, "{t}:");
                    }
                    let n = u32::from_be_bytes([0, value[1], value[2], value[3]]);
                    self.push_number(def, n.into(), out);
                    return;
                }
                (AttrType::String | AttrType::Octets, Some(&t)) if t <= 0x1f => {
                    if t != 0 {
                        let _ = write!(out, "{t}:");
                    }
                    value = &value[1..];
                }
                _ => {}
            }
        }
        if def.array {
            if let Some(size) = fixed_size(def.ty) {
                if !value.is_empty() && value.len() % size == 0 && value.len() > size {
                    for (i, chunk) in value.chunks(size).enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        self.format_one(def, chunk, out);
                    }
                    return;
                }
            }
        }
        self.format_one(def, value, out);
    }

    fn format_one(&self, def: &AttrDef, v: &[u8], out: &mut String) {
        let ok = match def.ty {
            AttrType::String => {
                push_escaped(v, out);
                true
            }
            AttrType::Integer | AttrType::Date | AttrType::Signed => match <[u8; 4]>::try_from(v) {
                Ok(b) => {
                    let n = u32::from_be_bytes(b);
                    match def.ty {
                        AttrType::Date => match self.value_name(def.key, n.into()) {
                            Some(name) => out.push_str(name),
                            None => super::datetime::format_rfc3339(n, out),
                        },
                        AttrType::Signed => match self.value_name(def.key, n.into()) {
                            Some(name) => out.push_str(name),
                            None => {
                                let _ = write!(out, "{}", n as i32);
                            }
                        },
                        _ => self.push_number(def, n.into(), out),
                    }
                    true
                }
                Err(_) => false,
            },
            AttrType::Byte => match v {
                [b] => {
                    self.push_number(def, (*b).into(), out);
                    true
                }
                _ => false,
            },
            AttrType::Short => match <[u8; 2]>::try_from(v) {
                Ok(b) => {
                    self.push_number(def, u16::from_be_bytes(b).into(), out);
                    true
                }
                Err(_) => false,
            },
            AttrType::Integer64 => match <[u8; 8]>::try_from(v) {
                Ok(b) => {
                    self.push_number(def, u64::from_be_bytes(b), out);
                    true
                }
                Err(_) => false,
            },
            AttrType::IpAddr => push_ipv4(v, out),
            AttrType::Ipv6Addr => push_ipv6(v, out),
            AttrType::ComboIp => push_ipv4(v, out) || push_ipv6(v, out),
            AttrType::Ipv4Prefix => match v {
                [_, len, a, b, c, d] if *len <= 32 => {
                    let _ = write!(out, "{}/{len}", Ipv4Addr::new(*a, *b, *c, *d));
                    true
                }
                _ => false,
            },
            AttrType::Ipv6Prefix => match v {
                [_, len, prefix @ ..]
                    if *len <= 128
                        && prefix.len() <= 16
                        && prefix.len() >= usize::from(*len).div_ceil(8) =>
                {
                    let mut full = [0u8; 16];
                    full[..prefix.len()].copy_from_slice(prefix);
                    let _ = write!(out, "{}/{len}", Ipv6Addr::from(full));
                    true
                }
                _ => false,
            },
            AttrType::Ifid => match v {
                [_, _, _, _, _, _, _, _] => {
                    for (i, pair) in v.chunks(2).enumerate() {
                        if i > 0 {
                            out.push(':');
                        }
                        let _ = write!(out, "{:02x}{:02x}", pair[0], pair[1]);
                    }
                    true
                }
                _ => false,
            },
            AttrType::Ether => match v {
                [_, _, _, _, _, _] => {
                    for (i, b) in v.iter().enumerate() {
                        if i > 0 {
                            out.push(':');
                        }
                        let _ = write!(out, "{b:02x}");
                    }
                    true
                }
                _ => false,
            },
            AttrType::Octets => {
                // VALUE names on octets (dictionary.cablelabs) read as a 4-octet number.
                if let Ok(b) = <[u8; 4]>::try_from(v) {
                    if let Some(name) = self.value_name(def.key, u32::from_be_bytes(b).into()) {
                        out.push_str(name);
                        return;
                    }
                }
                false
            }
            AttrType::Abinary
            | AttrType::Tlv
            | AttrType::Vsa
            | AttrType::Extended
            | AttrType::LongExtended
            | AttrType::Evs => false,
        };
        if !ok {
            push_hex(v, out);
        }
    }

    fn push_number(&self, def: &AttrDef, n: u64, out: &mut String) {
        match self.value_name(def.key, n) {
            Some(name) => out.push_str(name),
            None => {
                let _ = write!(out, "{n}");
            }
        }
    }
}

fn fixed_size(ty: AttrType) -> Option<usize> {
    Some(match ty {
        AttrType::Byte => 1,
        AttrType::Short => 2,
        AttrType::Integer | AttrType::Signed | AttrType::Date | AttrType::IpAddr => 4,
        AttrType::Integer64 | AttrType::Ifid => 8,
        AttrType::Ipv6Addr => 16,
        AttrType::Ether => 6,
        _ => return None,
    })
}

fn push_ipv4(v: &[u8], out: &mut String) -> bool {
    match <[u8; 4]>::try_from(v) {
        Ok(b) => {
            let _ = write!(out, "{}", Ipv4Addr::from(b));
            true
        }
        Err(_) => false,
    }
}

fn push_ipv6(v: &[u8], out: &mut String) -> bool {
    match <[u8; 16]>::try_from(v) {
        Ok(b) => {
            let _ = write!(out, "{}", Ipv6Addr::from(b));
            true
        }
        Err(_) => false,
    }
}

/// `0x` followed by lowercase hex; an empty value is `0x`.
pub(crate) fn push_hex(v: &[u8], out: &mut String) {
    out.reserve(2 + v.len() * 2);
    out.push_str("0x");
    for b in v {
        let _ = write!(out, "{b:02x}");
    }
}

/// Printable UTF-8 as is; backslash, controls and invalid bytes escaped.
fn push_escaped(v: &[u8], out: &mut String) {
    for chunk in v.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if c.is_control() => {
                    let mut buf = [0u8; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        let _ = write!(out, "\\x{b:02x}");
                    }
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
}
