//! The dictionary's data model: attribute types, keys, definitions, vendors.

use std::fmt;

/// Data type of an attribute value.
///
/// RFC 8044 names plus the FreeRADIUS 3.2 types the shipped dictionaries use.
/// FreeRADIUS' aliases (`uint8`, `uint16`, `uint32`, `int32`, `uint64`) map onto
/// the classic names, because operators' dictionaries use both spellings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AttrType {
    String,
    Octets,
    Integer,
    IpAddr,
    Ipv6Addr,
    Ipv6Prefix,
    Ipv4Prefix,
    Date,
    Integer64,
    Byte,
    Short,
    Signed,
    Ifid,
    Ether,
    Abinary,
    Tlv,
    Vsa,
    Extended,
    LongExtended,
    Evs,
    ComboIp,
}

impl AttrType {
    /// Parse a FreeRADIUS type name (case-insensitive, as FreeRADIUS compares them).
    pub fn from_name(name: &str) -> Option<AttrType> {
        let t = match name.to_ascii_lowercase().as_str() {
            "string" => AttrType::String,
            "octets" => AttrType::Octets,
            "integer" | "uint32" => AttrType::Integer,
            "ipaddr" | "ipv4addr" => AttrType::IpAddr,
            "ipv6addr" => AttrType::Ipv6Addr,
            "ipv6prefix" => AttrType::Ipv6Prefix,
            "ipv4prefix" => AttrType::Ipv4Prefix,
            "date" => AttrType::Date,
            "integer64" | "uint64" => AttrType::Integer64,
            "byte" | "uint8" => AttrType::Byte,
            "short" | "uint16" => AttrType::Short,
            "signed" | "int32" => AttrType::Signed,
            "ifid" => AttrType::Ifid,
            "ether" => AttrType::Ether,
            "abinary" => AttrType::Abinary,
            "tlv" => AttrType::Tlv,
            "vsa" => AttrType::Vsa,
            "extended" => AttrType::Extended,
            "long-extended" => AttrType::LongExtended,
            "evs" => AttrType::Evs,
            "combo-ip" => AttrType::ComboIp,
            _ => return None,
        };
        Some(t)
    }

    /// The canonical FreeRADIUS spelling.
    pub fn name(self) -> &'static str {
        match self {
            AttrType::String => "string",
            AttrType::Octets => "octets",
            AttrType::Integer => "integer",
            AttrType::IpAddr => "ipaddr",
            AttrType::Ipv6Addr => "ipv6addr",
            AttrType::Ipv6Prefix => "ipv6prefix",
            AttrType::Ipv4Prefix => "ipv4prefix",
            AttrType::Date => "date",
            AttrType::Integer64 => "integer64",
            AttrType::Byte => "byte",
            AttrType::Short => "short",
            AttrType::Signed => "signed",
            AttrType::Ifid => "ifid",
            AttrType::Ether => "ether",
            AttrType::Abinary => "abinary",
            AttrType::Tlv => "tlv",
            AttrType::Vsa => "vsa",
            AttrType::Extended => "extended",
            AttrType::LongExtended => "long-extended",
            AttrType::Evs => "evs",
            AttrType::ComboIp => "combo-ip",
        }
    }

    /// Types that VALUE names may enumerate. FreeRADIUS also tolerates VALUEs on
    /// `octets` (dictionary.cablelabs relies on it); those are matched on the
    /// value's big-endian integer reading.
    pub fn allows_values(self) -> bool {
        matches!(
            self,
            AttrType::Integer
                | AttrType::Byte
                | AttrType::Short
                | AttrType::Signed
                | AttrType::Integer64
                | AttrType::Date
                | AttrType::Octets
        )
    }

    /// Largest value a VALUE line may carry for this type.
    pub(crate) fn value_max(self) -> u64 {
        match self {
            AttrType::Byte => u8::MAX.into(),
            AttrType::Short => u16::MAX.into(),
            AttrType::Integer | AttrType::Signed | AttrType::Date => u32::MAX.into(),
            _ => u64::MAX,
        }
    }

    /// Containers whose children are defined with dotted OIDs / BEGIN-TLV.
    pub fn is_container(self) -> bool {
        matches!(
            self,
            AttrType::Tlv | AttrType::Extended | AttrType::LongExtended | AttrType::Evs
        )
    }
}

impl fmt::Display for AttrType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Per-packet encryption the attribute needs (FreeRADIUS `encrypt=N`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Encrypt {
    #[default]
    None,
    /// RFC 2865 User-Password hiding.
    UserPassword,
    /// RFC 2868 salted Tunnel-Password encryption (also RFC 2548 MS-MPPE keys).
    TunnelPassword,
    /// Ascend's secret scheme.
    AscendSecret,
}

impl Encrypt {
    pub fn from_number(n: u32) -> Option<Encrypt> {
        Some(match n {
            0 => Encrypt::None,
            1 => Encrypt::UserPassword,
            2 => Encrypt::TunnelPassword,
            3 => Encrypt::AscendSecret,
            _ => return None,
        })
    }
}

/// Deepest TLV nesting a key can hold (WiMAX uses all five levels).
pub const MAX_TLV_DEPTH: usize = 5;
/// Bit offset of each TLV level in [`AttrKey::code`] (FreeRADIUS 3's layout).
const TLV_SHIFT: [u32; MAX_TLV_DEPTH] = [0, 8, 16, 24, 29];
/// Largest number each level can hold: the deepest two levels are narrower.
const TLV_MASK: [u32; MAX_TLV_DEPTH] = [0xff, 0xff, 0xff, 0x1f, 0x07];

/// Identity of an attribute, the key the data plane looks attributes up by.
///
/// The encoding follows FreeRADIUS 3's own internal scheme so that every
/// attribute of the shipped dictionaries has a distinct key:
///
/// * `vendor`: bits 0..24 hold the IANA Private Enterprise Number (0 = standard
///   space); bits 24..32 hold the RFC 6929 extended parent (241..=246) for
///   extended attributes, else 0. An Extended-Vendor-Specific vendor attribute
///   therefore has `vendor = parent << 24 | pec`.
/// * `code`: the attribute number. For TLV children the path is packed one
///   octet per level, outermost in the low octet: WiMAX `28.11.2` is
///   `code = 28 | 11 << 8 | 2 << 16`. Nesting is only defined where every
///   level is one octet wide (standard/extended space, vendors with `format=1,x`),
///   which is also where RADIUS TLVs exist. As in FreeRADIUS, levels 4 and 5
///   sit at bits 24 and 29 and hold at most 31 and 7. [`AttrDef::depth`] says
///   how many levels `code` holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttrKey {
    pub vendor: u32,
    pub code: u32,
}

impl AttrKey {
    pub const fn new(vendor: u32, code: u32) -> AttrKey {
        AttrKey { vendor, code }
    }

    /// A standard (RFC space) attribute.
    pub const fn standard(code: u32) -> AttrKey {
        AttrKey { vendor: 0, code }
    }

    /// The IANA enterprise number, without the extended-parent bits.
    pub const fn pec(self) -> u32 {
        self.vendor & 0x00ff_ffff
    }

    /// The RFC 6929 extended parent (241..=246), if this is an extended attribute.
    pub const fn extended_parent(self) -> Option<u8> {
        let p = (self.vendor >> 24) as u8;
        if p == 0 {
            None
        } else {
            Some(p)
        }
    }

    /// Packs a TLV path (outermost first) into a code; `None` when the path
    /// is empty, deeper than [`MAX_TLV_DEPTH`], or a level exceeds its width.
    pub fn pack_path(path: &[u32]) -> Option<u32> {
        match path {
            [] => None,
            [only] => Some(*only),
            _ if path.len() > MAX_TLV_DEPTH => None,
            _ => {
                let mut code = 0u32;
                for (i, &c) in path.iter().enumerate() {
                    if c == 0 || c > TLV_MASK[i] {
                        return None;
                    }
                    code |= c << TLV_SHIFT[i];
                }
                Some(code)
            }
        }
    }

    /// Inverse of [`AttrKey::pack_path`] for a code holding `depth` levels.
    pub fn unpack_path(code: u32, depth: u8) -> Vec<u32> {
        let depth = usize::from(depth);
        if depth <= 1 {
            return vec![code];
        }
        (0..depth.min(MAX_TLV_DEPTH))
            .map(|i| (code >> TLV_SHIFT[i]) & TLV_MASK[i])
            .collect()
    }

    /// The `Attr-…` name FreeRADIUS prints for an attribute it has no name for
    /// (depth 1 assumed: callers without a dictionary entry cannot know more).
    pub fn fallback_name(self) -> String {
        let mut s = String::from("Attr-");
        if let Some(p) = self.extended_parent() {
            s.push_str(&p.to_string());
            s.push('.');
            if self.pec() != 0 {
                s.push_str(&format!("26.{}.", self.pec()));
            }
        } else if self.pec() != 0 {
            s.push_str(&format!("26.{}.", self.pec()));
        }
        s.push_str(&self.code.to_string());
        s
    }
}

/// One attribute definition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttrDef {
    pub name: String,
    pub key: AttrKey,
    pub ty: AttrType,
    pub encrypt: Encrypt,
    /// RFC 2868 tag octet (tunnel attributes).
    pub has_tag: bool,
    /// Long values are split over several attributes of the same type (EAP-Message).
    pub concat: bool,
    /// Several values packed back to back in one attribute.
    pub array: bool,
    /// Server-side only; never sent on the wire.
    pub virtual_: bool,
    /// Value must not be logged.
    pub secret: bool,
    /// `octets[N]`: the fixed length the dictionary declares.
    pub fixed_len: Option<u16>,
    /// Number of TLV levels packed into `key.code` (1 = not nested).
    pub depth: u8,
}

impl AttrDef {
    /// FreeRADIUS 3 treats standard-space numbers above 255 as server-internal.
    pub fn is_internal(&self) -> bool {
        self.virtual_ || (self.key.vendor == 0 && self.depth == 1 && self.key.code > 255)
    }

    /// The numbers of each level, outermost first (`[28, 11, 2]`).
    pub fn path(&self) -> Vec<u32> {
        AttrKey::unpack_path(self.key.code, self.depth)
    }
}

/// A vendor and its VSA layout (`format=t,l[,c]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VendorDef {
    pub name: String,
    pub id: u32,
    /// Width of the vendor type field: 1, 2 or 4.
    pub type_octets: u8,
    /// Width of the vendor length field: 0, 1 or 2.
    pub length_octets: u8,
    /// WiMAX-style continuation octet after the vendor length (`format=1,1,c`).
    pub continuation: bool,
}

/// How to look a vendor up: by name (case-insensitive) or by enterprise number.
#[derive(Clone, Copy, Debug)]
pub enum VendorRef<'a> {
    Name(&'a str),
    Id(u32),
}

impl<'a> From<&'a str> for VendorRef<'a> {
    fn from(s: &'a str) -> Self {
        VendorRef::Name(s)
    }
}

impl<'a> From<&'a String> for VendorRef<'a> {
    fn from(s: &'a String) -> Self {
        VendorRef::Name(s)
    }
}

impl From<u32> for VendorRef<'_> {
    fn from(id: u32) -> Self {
        VendorRef::Id(id)
    }
}

/// Where an attribute sits on the wire; derived from its key and vendor format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Server-side only (virtual, or standard number above 255): not encodable.
    Internal,
    /// RFC 2865 `type,len,value`; `depth > 1` wraps the value in TLV headers;
    /// `concat` values longer than 253 octets are split over several attributes.
    Standard { depth: u8, concat: bool },
    /// Inside Vendor-Specific (26) with the vendor's field widths.
    Vendor {
        type_octets: u8,
        length_octets: u8,
        continuation: bool,
        depth: u8,
    },
    /// RFC 6929 extended (241..=244) or long extended (245, 246) space; the
    /// parent number is `key.vendor >> 24` and a non-zero `key.pec()` means
    /// Extended-Vendor-Specific (`.26`).
    Extended { long: bool, depth: u8 },
}
