//! Operator text → attribute value in wire form.
//!
//! Accepted spellings per type:
//!
//! | type | text |
//! | --- | --- |
//! | integer, byte, short, integer64 | a VALUE name, decimal, or `0x` hex |
//! | signed | a VALUE name or a decimal that may be negative |
//! | date | Unix seconds, or RFC 3339 (`2024-01-02T03:04:05Z`, offsets allowed) |
//! | ipaddr / ipv6addr / combo-ip | dotted quad / RFC 4291 text / either |
//! | ipv4prefix, ipv6prefix | `addr/len` (a bare address means /32, /128) |
//! | ifid | `xxxx:xxxx:xxxx:xxxx` |
//! | ether | `aa:bb:cc:dd:ee:ff` (or `-` separated) |
//! | string | the text as is |
//! | octets | `0x` hex, otherwise the text's bytes |
//! | abinary, tlv, vsa, extended, long-extended, evs | `0x` hex of the raw value |
//!
//! Tags (RFC 2868, attributes with `has_tag`): write the attribute as
//! `Tunnel-Type:1` (FreeRADIUS syntax), or prefix the value with the tag and a
//! colon, `1:vlan10`. The value prefix is only taken as a tag when it is one or
//! two decimal digits with a value of 0..=31; use the name form for strings that
//! legitimately start that way. Tag 0 means "no tag".

use std::net::{Ipv4Addr, Ipv6Addr};

use super::dictionary::Dictionary;
use super::error::EncodeError;
use super::types::{AttrDef, AttrKey, AttrType, Encrypt, Layout};

/// One attribute's value, ready for [`EncodedAttribute::to_wire`] or, when
/// `encrypt != None`, for the packet builder's per-packet crypto.
///
/// * `encrypt == None`: `value` is the exact wire value, including the RFC 2868
///   tag octet for tagged attributes (first octet of a tagged integer, prefix
///   octet of a tagged string). `tag` repeats it for the caller's information.
/// * `encrypt != None`: `value` is the plaintext without any tag; the crypto
///   layer encrypts it and, for Tunnel-Password, prepends `tag` (0 if `None`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedAttribute {
    pub key: AttrKey,
    pub tag: Option<u8>,
    pub value: Vec<u8>,
    pub encrypt: Encrypt,
    /// Where the attribute goes on the wire (vendor format, TLV depth, …).
    pub layout: Layout,
}

impl Dictionary {
    /// Parses an operator-written value for attribute `name` into wire form.
    /// See the module docs for the accepted spellings and the tag syntax.
    pub fn encode(&self, name: &str, value: &str) -> Result<EncodedAttribute, EncodeError> {
        let (name, name_tag) = split_name_tag(name);
        let def = self
            .attribute(name)
            .ok_or_else(|| EncodeError::UnknownAttribute(name.to_string()))?;
        let bad_tag = |t: &str| EncodeError::BadTag {
            attr: def.name.clone(),
            tag: t.to_string(),
        };
        let name_tag = match name_tag {
            None => None,
            Some(t) => Some(parse_tag(t).ok_or_else(|| bad_tag(t))?),
        };
        let (tag, text) = match name_tag {
            Some(t) => (Some(t), value),
            None if def.has_tag => match split_value_tag(value) {
                Some((t, rest)) => (Some(t), rest),
                None => (None, value),
            },
            None => (None, value),
        };
        if tag.is_some() && !def.has_tag {
            return Err(EncodeError::NotTagged {
                attr: def.name.clone(),
            });
        }
        // Tag 0 is "unused" on the wire; keep the API's Option honest about it.
        let tag = tag.filter(|&t| t != 0);
        self.encode_def(def, tag, text)
    }

    /// Like [`Dictionary::encode`] with the tag given separately (0 or `None` = untagged).
    pub fn encode_tagged(
        &self,
        name: &str,
        tag: Option<u8>,
        value: &str,
    ) -> Result<EncodedAttribute, EncodeError> {
        let def = self
            .attribute(name)
            .ok_or_else(|| EncodeError::UnknownAttribute(name.to_string()))?;
        let tag = tag.filter(|&t| t != 0);
        if let Some(t) = tag {
            if !def.has_tag {
                return Err(EncodeError::NotTagged {
                    attr: def.name.clone(),
                });
            }
            if t > 31 {
                return Err(EncodeError::BadTag {
                    attr: def.name.clone(),
                    tag: t.to_string(),
                });
            }
        }
        self.encode_def(def, tag, value)
    }

    fn encode_def(
        &self,
        def: &AttrDef,
        tag: Option<u8>,
        text: &str,
    ) -> Result<EncodedAttribute, EncodeError> {
        let mut value = self.parse_value(def, text)?;
        if def.has_tag && def.encrypt == Encrypt::None {
            value = apply_tag(def, tag, value, text)?;
        }
        let layout = self.layout(def);
        if let Some(max) = max_value_len(def, layout) {
            if value.len() > max {
                return Err(EncodeError::TooLong {
                    attr: def.name.clone(),
                    len: value.len(),
                    max,
                });
            }
        }
        Ok(EncodedAttribute {
            key: def.key,
            tag,
            value,
            encrypt: def.encrypt,
            layout,
        })
    }

    fn parse_value(&self, def: &AttrDef, text: &str) -> Result<Vec<u8>, EncodeError> {
        let bad = |why: &str| EncodeError::BadValue {
            attr: def.name.clone(),
            ty: def.ty.name(),
            value: text.to_string(),
            why: why.to_string(),
        };
        let number = |max: u64| -> Result<u64, EncodeError> {
            if let Some(n) = self.value_by_name(def.key, text) {
                return Ok(n);
            }
            let n = parse_uint(text).ok_or_else(|| bad("not a VALUE name or number"))?;
            if n > max {
                return Err(bad(&format!("larger than {max}")));
            }
            Ok(n)
        };
        Ok(match def.ty {
            AttrType::String => text.as_bytes().to_vec(),
            AttrType::Octets => match strip_hex_prefix(text) {
                Some(hex) => decode_hex(hex).ok_or_else(|| bad("odd length or non-hex digit"))?,
                None => match self.value_by_name(def.key, text) {
                    // VALUEs on octets (dictionary.cablelabs) are 4-octet numbers.
                    Some(n) => (n as u32).to_be_bytes().to_vec(),
                    None => text.as_bytes().to_vec(),
                },
            },
            AttrType::Integer => (number(u32::MAX.into())? as u32).to_be_bytes().to_vec(),
            AttrType::Byte => vec![number(u8::MAX.into())? as u8],
            AttrType::Short => (number(u16::MAX.into())? as u16).to_be_bytes().to_vec(),
            AttrType::Integer64 => number(u64::MAX)?.to_be_bytes().to_vec(),
            AttrType::Signed => {
                let n = match self.value_by_name(def.key, text) {
                    Some(n) => n as u32 as i32,
                    None => text
                        .parse::<i32>()
                        .map_err(|_| bad("not a VALUE name or 32-bit signed number"))?,
                };
                n.to_be_bytes().to_vec()
            }
            AttrType::Date => {
                let secs = match self.value_by_name(def.key, text) {
                    Some(n) => n as u32,
                    None => match parse_uint(text) {
                        Some(n) => u32::try_from(n).map_err(|_| bad("beyond 2106"))?,
                        None => super::datetime::parse_rfc3339(text)
                            .ok_or_else(|| bad("expected Unix seconds or RFC 3339 UTC time"))?,
                    },
                };
                secs.to_be_bytes().to_vec()
            }
            AttrType::IpAddr => text
                .parse::<Ipv4Addr>()
                .map_err(|_| bad("not an IPv4 address"))?
                .octets()
                .to_vec(),
            AttrType::Ipv6Addr => text
                .parse::<Ipv6Addr>()
                .map_err(|_| bad("not an IPv6 address"))?
                .octets()
                .to_vec(),
            AttrType::ComboIp => {
                if let Ok(a) = text.parse::<Ipv4Addr>() {
                    a.octets().to_vec()
                } else {
                    text.parse::<Ipv6Addr>()
                        .map_err(|_| bad("not an IPv4 or IPv6 address"))?
                        .octets()
                        .to_vec()
                }
            }
            AttrType::Ipv4Prefix => {
                let (addr, len) =
                    split_prefix(text, 32).ok_or_else(|| bad("expected a.b.c.d/len"))?;
                let a: Ipv4Addr = addr.parse().map_err(|_| bad("not an IPv4 address"))?;
                let masked = mask(&a.octets(), len);
                let mut v = vec![0, len];
                v.extend_from_slice(&masked);
                v
            }
            AttrType::Ipv6Prefix => {
                let (addr, len) =
                    split_prefix(text, 128).ok_or_else(|| bad("expected addr/len, len <= 128"))?;
                let a: Ipv6Addr = addr.parse().map_err(|_| bad("not an IPv6 address"))?;
                // RFC 8044 §3.10: only the octets the prefix length covers are sent.
                let masked = mask(&a.octets(), len);
                let mut v = vec![0, len];
                v.extend_from_slice(&masked[..usize::from(len).div_ceil(8)]);
                v
            }
            AttrType::Ifid => parse_groups(text, &[':'], 4, 2)
                .ok_or_else(|| bad("expected xxxx:xxxx:xxxx:xxxx"))?,
            AttrType::Ether => parse_groups(text, &[':', '-'], 6, 1)
                .ok_or_else(|| bad("expected aa:bb:cc:dd:ee:ff"))?,
            AttrType::Abinary
            | AttrType::Tlv
            | AttrType::Vsa
            | AttrType::Extended
            | AttrType::LongExtended
            | AttrType::Evs => strip_hex_prefix(text)
                .and_then(decode_hex)
                .ok_or_else(|| bad("only 0x hex is accepted for this type"))?,
        })
    }
}

/// Folds the RFC 2868 tag into the wire value (non-encrypted attributes).
fn apply_tag(
    def: &AttrDef,
    tag: Option<u8>,
    mut value: Vec<u8>,
    text: &str,
) -> Result<Vec<u8>, EncodeError> {
    if def.ty == AttrType::Integer {
        // Tagged integers keep 24 bits of value under the tag octet.
        if value.first().copied().unwrap_or(0) != 0 {
            return Err(EncodeError::BadValue {
                attr: def.name.clone(),
                ty: def.ty.name(),
                value: text.to_string(),
                why: "tagged integers are limited to 24 bits".to_string(),
            });
        }
        if let (Some(t), Some(first)) = (tag, value.first_mut()) {
            *first = t;
        }
        return Ok(value);
    }
    // A string whose first octet looks like a tag must carry an explicit 0 tag,
    // or the receiver would eat that octet (RFC 2868 §3.5).
    let needs_zero = value.first().is_some_and(|&b| b <= 0x1f);
    match tag {
        Some(t) => value.insert(0, t),
        None if needs_zero => value.insert(0, 0),
        None => {}
    }
    Ok(value)
}

/// The longest value one attribute (or fragment chain) can carry; `None` when
/// the attribute may be split (concat, long-extended, WiMAX continuation).
fn max_value_len(def: &AttrDef, layout: Layout) -> Option<usize> {
    match def.encrypt {
        // RFC 2865 §5.2 caps the password at 128 octets.
        Encrypt::UserPassword => return Some(128),
        // Salt/padding length checks belong to the crypto layer.
        Encrypt::TunnelPassword | Encrypt::AscendSecret => return None,
        Encrypt::None => {}
    }
    let tlv_headers = |depth: u8| 2 * usize::from(depth.saturating_sub(1));
    match layout {
        Layout::Internal => None,
        Layout::Standard {
            depth: 1,
            concat: true,
        } => None,
        Layout::Standard { depth, .. } => Some(253 - tlv_headers(depth)),
        Layout::Vendor {
            continuation: true, ..
        } => None,
        Layout::Vendor {
            type_octets,
            length_octets,
            depth,
            ..
        } => Some(
            255 - 2
                - 4
                - usize::from(type_octets)
                - usize::from(length_octets)
                - tlv_headers(depth),
        ),
        Layout::Extended { long: true, .. } => None,
        Layout::Extended { depth, .. } => {
            let evs = if def.key.pec() != 0 { 5 } else { 0 };
            Some(255 - 3 - evs - tlv_headers(depth))
        }
    }
}

/// `Tunnel-Type:1` → (`Tunnel-Type`, Some("1")).
fn split_name_tag(name: &str) -> (&str, Option<&str>) {
    match name.rsplit_once(':') {
        Some((n, t)) if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) => (n, Some(t)),
        _ => (name, None),
    }
}

fn parse_tag(t: &str) -> Option<u8> {
    t.parse::<u8>().ok().filter(|&t| t <= 31)
}

/// `1:vlan10` → (1, `vlan10`); only 1–2 digit tags up to 31.
fn split_value_tag(value: &str) -> Option<(u8, &str)> {
    let (t, rest) = value.split_once(':')?;
    if t.is_empty() || t.len() > 2 || !t.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((parse_tag(t)?, rest))
}

fn parse_uint(text: &str) -> Option<u64> {
    super::syntax::parse_number(text)
}

fn strip_hex_prefix(text: &str) -> Option<&str> {
    text.strip_prefix("0x").or_else(|| text.strip_prefix("0X"))
}

pub(crate) fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if hex.len() % 2 != 0 {
        return None;
    }
    hex.as_bytes()
        .chunks(2)
        .map(|p| {
            let s = std::str::from_utf8(p).ok()?;
            u8::from_str_radix(s, 16).ok()
        })
        .collect()
}

/// `addr/len` with len ≤ max; a bare address is a host prefix.
fn split_prefix(text: &str, max: u8) -> Option<(&str, u8)> {
    match text.split_once('/') {
        Some((a, l)) => {
            let len: u8 = l.parse().ok()?;
            (len <= max).then_some((a, len))
        }
        None => Some((text, max)),
    }
}

/// Zeroes the bits beyond `len`, so the value is the canonical prefix.
fn mask<const N: usize>(octets: &[u8; N], len: u8) -> [u8; N] {
    let mut out = *octets;
    for (i, b) in out.iter_mut().enumerate() {
        let bits = usize::from(len).saturating_sub(i * 8).min(8);
        *b &= if bits == 0 { 0 } else { 0xffu8 << (8 - bits) };
    }
    out
}

/// `n` hex groups of `width` octets each, separated by any of `seps`.
fn parse_groups(text: &str, seps: &[char], n: usize, width: usize) -> Option<Vec<u8>> {
    let groups: Vec<&str> = text.split(|c| seps.contains(&c)).collect();
    if groups.len() != n {
        return None;
    }
    let mut out = Vec::with_capacity(n * width);
    for g in groups {
        if g.is_empty() || g.len() > width * 2 || !g.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let v = u32::from_str_radix(g, 16).ok()?;
        out.extend_from_slice(&v.to_be_bytes()[4 - width..]);
    }
    Some(out)
}
