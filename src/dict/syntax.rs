//! Parsing of single dictionary fields: numbers, type names, flag lists,
//! vendor formats. Kept apart from the line/block logic in `loader`.

use super::error::DictErrorKind;
use super::types::{AttrDef, AttrType, Encrypt};

type Res<T> = Result<T, DictErrorKind>;

/// Decimal or `0x` hex. Leading zeros are decimal (no shipped file uses octal).
pub(crate) fn parse_number(s: &str) -> Option<u64> {
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        if hex.is_empty() {
            return None;
        }
        return u64::from_str_radix(hex, 16).ok();
    }
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `octets[16]` → (Octets, Some(16)).
pub(crate) fn parse_type(text: &str) -> Res<(AttrType, Option<u16>)> {
    let unknown = || DictErrorKind::UnknownType(text.to_string());
    if let Some((base, rest)) = text.split_once('[') {
        let len = rest
            .strip_suffix(']')
            .and_then(parse_number)
            .and_then(|n| u16::try_from(n).ok())
            .filter(|n| (1..=253).contains(n))
            .ok_or_else(unknown)?;
        return match AttrType::from_name(base) {
            Some(AttrType::Octets) => Ok((AttrType::Octets, Some(len))),
            _ => Err(unknown()),
        };
    }
    AttrType::from_name(text)
        .map(|t| (t, None))
        .ok_or_else(unknown)
}

/// Flags FreeRADIUS 3.2 accepts in the fifth column.
pub(crate) const KNOWN_FLAGS: &[&str] = &[
    "has_tag", "concat", "array", "virtual", "secret", "abinary", "long",
];

pub(crate) fn flags_text<'a>(toks: &[&'a str]) -> &'a str {
    toks.get(4).copied().unwrap_or("")
}

pub(crate) fn parse_flags(text: &str, def: &mut AttrDef) -> Res<()> {
    for flag in text.split(',').filter(|f| !f.is_empty()) {
        let (key, val) = match flag.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (flag, None),
        };
        // Boolean flags accept `=1`/`=0`, as FreeRADIUS does for has_tag.
        let on = || match val {
            None | Some("1") => Ok(true),
            Some("0") => Ok(false),
            Some(_) => Err(DictErrorKind::BadFlag {
                flag: flag.to_string(),
                why: "boolean flags take no value, =0 or =1",
            }),
        };
        match key {
            "has_tag" => def.has_tag = on()?,
            "concat" => def.concat = on()?,
            "array" => def.array = on()?,
            "virtual" => def.virtual_ = on()?,
            "secret" => def.secret = on()?,
            // `abinary` as a flag is the pre-type-name spelling; `long` only
            // marks TLVs in long-extended space, which the key already implies.
            "abinary" => def.ty = AttrType::Abinary,
            "long" => {}
            "encrypt" => {
                let n = val
                    .and_then(parse_number)
                    .and_then(|n| u32::try_from(n).ok())
                    .and_then(Encrypt::from_number)
                    .ok_or_else(|| DictErrorKind::BadFlag {
                        flag: flag.to_string(),
                        why: "encrypt must be 0, 1, 2 or 3",
                    })?;
                def.encrypt = n;
            }
            _ => return Err(DictErrorKind::UnknownFlag(flag.to_string())),
        }
    }
    Ok(())
}

/// Combinations FreeRADIUS 3 refuses; catching them here keeps the encoder simple.
pub(crate) fn check_flags(def: &AttrDef, text: &str) -> Res<()> {
    let bad = |why| DictErrorKind::BadFlag {
        flag: text.to_string(),
        why,
    };
    if def.has_tag
        && !matches!(
            def.ty,
            AttrType::String | AttrType::Integer | AttrType::Octets
        )
    {
        return Err(bad("has_tag needs a string, octets or integer attribute"));
    }
    if def.concat && def.ty != AttrType::Octets {
        return Err(bad("concat needs an octets attribute"));
    }
    Ok(())
}

/// `format=T,L[,c]`.
pub(crate) fn parse_vendor_format(text: &str) -> Res<(u8, u8, bool)> {
    let bad = || DictErrorKind::BadVendorFormat(text.to_string());
    let spec = text.strip_prefix("format=").ok_or_else(bad)?;
    let mut parts = spec.split(',');
    let t = match parts.next() {
        Some("1") => 1,
        Some("2") => 2,
        Some("4") => 4,
        _ => return Err(bad()),
    };
    let l = match parts.next() {
        Some("0") => 0,
        Some("1") => 1,
        Some("2") => 2,
        _ => return Err(bad()),
    };
    let c = match parts.next() {
        None => false,
        // The continuation octet only exists in the WiMAX 1,1 layout.
        Some("c") if t == 1 && l == 1 => true,
        Some(_) => return Err(bad()),
    };
    if parts.next().is_some() {
        return Err(bad());
    }
    Ok((t, l, c))
}
