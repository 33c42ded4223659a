//! FreeRADIUS 3.x dictionary format reader.
//!
//! Keywords: `ATTRIBUTE`, `VALUE`, `VENDOR`, `BEGIN-VENDOR` (optionally
//! `format=Extended-Vendor-Specific-N`), `END-VENDOR`, `BEGIN-TLV`, `END-TLV`,
//! `$INCLUDE` and `$INCLUDE-` (optional include). That is every keyword the
//! FreeRADIUS 3.2 dictionaries use; FreeRADIUS 4 keywords (`PROTOCOL`, `STRUCT`,
//! `MEMBER`, `ALIAS`, `ENUM`, `DEFINE`, `BEGIN`) are rejected by name so an
//! operator sees which file is from the wrong generation.
//!
//! Semantics follow FreeRADIUS 3: `#` starts a comment anywhere on a line;
//! keywords, type names and attribute/vendor/value names are case-insensitive;
//! numbers are decimal or `0x` hex; a VALUE may name an attribute that a later
//! file defines (resolved at the end of the load); vendor blocks and TLV blocks
//! are per file.

use std::path::{Path, PathBuf};

use super::dictionary::{Dictionary, InsertError, ValueError};
use super::error::{DictError, DictErrorKind};
use super::syntax::{
    check_flags, flags_text, parse_flags, parse_number, parse_type, parse_vendor_format,
    KNOWN_FLAGS,
};
use super::types::{AttrDef, AttrKey, AttrType, Encrypt, VendorDef};

/// FreeRADIUS' own include depth limit is of this order; deeper means a loop.
const MAX_INCLUDE_DEPTH: usize = 32;

/// A VALUE whose attribute was not defined yet when it was read.
struct PendingValue {
    attr: String,
    name: String,
    number: u64,
    file: PathBuf,
    line: usize,
}

/// Open `BEGIN-VENDOR` block.
struct VendorBlock {
    name: String,
    /// Full key vendor: PEC, plus the extended parent for EVS blocks.
    vendor: u32,
    line: usize,
}

/// Open `BEGIN-TLV` block.
struct TlvBlock {
    name: String,
    key: AttrKey,
    path: Vec<u32>,
    line: usize,
}

/// Per-file parse state: FreeRADIUS scopes vendor and TLV blocks to one file.
#[derive(Default)]
struct FileState {
    vendor: Option<VendorBlock>,
    tlvs: Vec<TlvBlock>,
}

pub(crate) struct Loader<'d> {
    dict: &'d mut Dictionary,
    pending: Vec<PendingValue>,
}

type Res<T> = Result<T, DictErrorKind>;

impl<'d> Loader<'d> {
    pub(crate) fn new(dict: &'d mut Dictionary) -> Self {
        Loader {
            dict,
            pending: Vec::new(),
        }
    }

    /// Reads `path` from disk and parses it.
    pub(crate) fn load_file(&mut self, path: &Path) -> Result<(), DictError> {
        let text = read(path).map_err(|reason| DictError {
            file: path.to_path_buf(),
            line: 0,
            reason,
        })?;
        self.load_text(&text, path, 0)?;
        self.finish()
    }

    /// Parses `text` as if it were the file `origin`.
    pub(crate) fn load_str(&mut self, text: &str, origin: &Path) -> Result<(), DictError> {
        self.load_text(text, origin, 0)?;
        self.finish()
    }

    /// Resolves VALUEs that were read before their ATTRIBUTE.
    fn finish(&mut self) -> Result<(), DictError> {
        for p in std::mem::take(&mut self.pending) {
            let Some(def) = self.dict.attribute(&p.attr).cloned() else {
                return Err(DictError {
                    file: p.file,
                    line: p.line,
                    reason: DictErrorKind::ValueForUnknown {
                        attr: p.attr,
                        value: p.name,
                    },
                });
            };
            self.apply_value(&def, &p.name, p.number)
                .map_err(|reason| DictError {
                    file: p.file,
                    line: p.line,
                    reason,
                })?;
        }
        Ok(())
    }

    fn load_text(&mut self, text: &str, file: &Path, depth: usize) -> Result<(), DictError> {
        let mut state = FileState::default();
        let at = |line: usize| {
            move |reason: DictErrorKind| DictError {
                file: file.to_path_buf(),
                line,
                reason,
            }
        };
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let content = raw.split('#').next().unwrap_or("");
            let toks: Vec<&str> = content.split_ascii_whitespace().collect();
            let Some(keyword) = toks.first() else {
                continue;
            };
            let kw = keyword.to_ascii_uppercase();
            match kw.as_str() {
                "$INCLUDE" | "$INCLUDE-" => {
                    let optional = kw == "$INCLUDE-";
                    let Some(target) = toks.get(1) else {
                        return Err(at(line)(DictErrorKind::Syntax {
                            keyword: "$INCLUDE",
                            expected: "a file name",
                        }));
                    };
                    self.include(file, line, target, optional, depth)?;
                }
                "ATTRIBUTE" => self.attribute(&toks, &state).map_err(at(line))?,
                "VALUE" => self.value(&toks, file, line).map_err(at(line))?,
                "VENDOR" => self.vendor(&toks).map_err(at(line))?,
                "BEGIN-VENDOR" => self
                    .begin_vendor(&toks, &mut state, line)
                    .map_err(at(line))?,
                "END-VENDOR" => end_vendor(&toks, &mut state).map_err(at(line))?,
                "BEGIN-TLV" => self.begin_tlv(&toks, &mut state, line).map_err(at(line))?,
                "END-TLV" => end_tlv(&toks, &mut state).map_err(at(line))?,
                _ => return Err(at(line)(DictErrorKind::UnknownKeyword(keyword.to_string()))),
            }
        }
        if let Some(t) = state.tlvs.pop() {
            return Err(at(t.line)(DictErrorKind::UnclosedTlv {
                name: t.name,
                line: t.line,
            }));
        }
        if let Some(v) = state.vendor {
            return Err(at(v.line)(DictErrorKind::UnclosedVendor {
                name: v.name,
                line: v.line,
            }));
        }
        Ok(())
    }

    fn include(
        &mut self,
        from: &Path,
        line: usize,
        target: &str,
        optional: bool,
        depth: usize,
    ) -> Result<(), DictError> {
        let err = |reason| DictError {
            file: from.to_path_buf(),
            line,
            reason,
        };
        if depth + 1 > MAX_INCLUDE_DEPTH {
            return Err(err(DictErrorKind::IncludeDepth(MAX_INCLUDE_DEPTH)));
        }
        // Relative to the including file's directory, like FreeRADIUS.
        let path = match from.parent() {
            Some(dir) if Path::new(target).is_relative() => dir.join(target),
            _ => PathBuf::from(target),
        };
        let text = match read(&path) {
            Ok(t) => t,
            Err(DictErrorKind::Io { source, .. })
                if optional && source.kind() == std::io::ErrorKind::NotFound =>
            {
                return Ok(());
            }
            Err(e) => return Err(err(e)),
        };
        self.load_text(&text, &path, depth + 1)
    }

    fn attribute(&mut self, toks: &[&str], state: &FileState) -> Res<()> {
        if toks.len() < 4 || toks.len() > 5 {
            return Err(DictErrorKind::Syntax {
                keyword: "ATTRIBUTE",
                expected: "ATTRIBUTE name number type [flags]",
            });
        }
        let (name, oid, type_text) = (toks[1], toks[2], toks[3]);
        let (ty, fixed_len) = parse_type(type_text)?;
        let mut def = AttrDef {
            name: name.to_string(),
            key: AttrKey::standard(0),
            ty,
            encrypt: Encrypt::None,
            has_tag: false,
            concat: false,
            array: false,
            virtual_: false,
            secret: false,
            fixed_len,
            depth: 1,
        };
        let mut old_style_vendor = None;
        if let Some(flags) = toks.get(4) {
            // FreeRADIUS 1.x put a vendor name in this column; 3.x still accepts it.
            let is_flag = flags.contains('=') || flags.split(',').all(|f| KNOWN_FLAGS.contains(&f));
            match self.dict.vendor(*flags) {
                Some(v) if !is_flag => old_style_vendor = Some(v.id),
                _ => parse_flags(flags, &mut def)?,
            }
        }
        let (key, depth) = self.resolve_oid(oid, state, old_style_vendor)?;
        def.key = key;
        def.depth = depth;
        check_flags(&def, flags_text(toks))?;
        self.dict
            .insert_attr(def)
            .map_err(
                |InsertError::NumberConflict| DictErrorKind::AttrNumberConflict {
                    name: name.to_string(),
                },
            )
    }

    /// Turns the number column into a key, given the open vendor/TLV blocks.
    fn resolve_oid(
        &self,
        oid: &str,
        state: &FileState,
        old_style_vendor: Option<u32>,
    ) -> Res<(AttrKey, u8)> {
        let mut comps = Vec::with_capacity(4);
        for part in oid.split('.') {
            let n = parse_number(part).ok_or_else(|| DictErrorKind::BadNumber(oid.to_string()))?;
            let n = u32::try_from(n).map_err(|_| DictErrorKind::BadNumber(oid.to_string()))?;
            comps.push(n);
        }
        let bad = |why| DictErrorKind::BadOid {
            oid: oid.to_string(),
            why,
        };
        let (vendor, path) = if let Some(tlv) = state.tlvs.last() {
            let mut p = tlv.path.clone();
            p.extend_from_slice(&comps);
            (tlv.key.vendor, p)
        } else if let Some(v) = old_style_vendor {
            (v, comps)
        } else if let Some(block) = &state.vendor {
            (block.vendor, comps)
        } else if comps.len() >= 2 && (241..=246).contains(&comps[0]) {
            let parent = comps[0];
            match self.dict.type_of(AttrKey::standard(parent)) {
                Some(AttrType::Extended | AttrType::LongExtended) => {}
                _ => {
                    return Err(DictErrorKind::NoParent {
                        oid: oid.to_string(),
                    })
                }
            }
            (parent << 24, comps[1..].to_vec())
        } else {
            (0, comps)
        };

        let pec = vendor & 0x00ff_ffff;
        let extended = vendor >> 24 != 0;
        let type_octets = if pec != 0 && !extended {
            self.dict.vendor(pec).map_or(1, |v| v.type_octets)
        } else {
            1
        };
        if path.len() == 1 {
            let code = path[0];
            let max: u32 = match (extended, pec != 0, type_octets) {
                (true, _, _) => 255,
                (false, false, _) => u32::MAX, // standard; >255 is server-internal
                (false, true, 1) => 255,
                (false, true, 2) => 65535,
                _ => u32::MAX,
            };
            if code > max {
                return Err(bad("too large for the vendor's type field"));
            }
            return Ok((AttrKey::new(vendor, code), 1));
        }
        // FreeRADIUS also nests TLVs under multi-octet vendor types
        // (dictionary.dhcp's option 82). With the same packing as FreeRADIUS, a
        // nested key could equal one of that vendor's numbers above 255; no
        // shipped file has such a pair, and insert_attr would alias them.
        let code = AttrKey::pack_path(&path).ok_or_else(|| {
            bad("TLV levels must be 1..=255 (31, 7 for levels 4, 5) and at most 5 deep")
        })?;
        let parent_code = AttrKey::pack_path(&path[..path.len() - 1]).ok_or_else(|| {
            bad("TLV levels must be 1..=255 (31, 7 for levels 4, 5) and at most 5 deep")
        })?;
        match self.dict.type_of(AttrKey::new(vendor, parent_code)) {
            Some(AttrType::Tlv) => {}
            _ => {
                return Err(DictErrorKind::NoParent {
                    oid: oid.to_string(),
                })
            }
        }
        // path.len() <= MAX_TLV_DEPTH was checked by pack_path.
        Ok((AttrKey::new(vendor, code), path.len() as u8))
    }

    fn value(&mut self, toks: &[&str], file: &Path, line: usize) -> Res<()> {
        if toks.len() != 4 {
            return Err(DictErrorKind::Syntax {
                keyword: "VALUE",
                expected: "VALUE attribute name number",
            });
        }
        let (attr, name, num) = (toks[1], toks[2], toks[3]);
        let number = match num.strip_prefix('-') {
            // Negative numbers only make sense for `signed`; stored as the i32 bit pattern.
            Some(abs) => parse_number(abs)
                .and_then(|n| i32::try_from(n).ok())
                .map(|n| u64::from((-n) as u32)),
            None => parse_number(num),
        }
        .ok_or_else(|| DictErrorKind::BadNumber(num.to_string()))?;
        match self.dict.attribute(attr).cloned() {
            Some(def) => self.apply_value(&def, name, number),
            None => {
                self.pending.push(PendingValue {
                    attr: attr.to_string(),
                    name: name.to_string(),
                    number,
                    file: file.to_path_buf(),
                    line,
                });
                Ok(())
            }
        }
    }

    fn apply_value(&mut self, def: &AttrDef, name: &str, number: u64) -> Res<()> {
        if !def.ty.allows_values() {
            return Err(DictErrorKind::ValueOnType {
                attr: def.name.clone(),
                value: name.to_string(),
                ty: def.ty.name(),
            });
        }
        if number > def.ty.value_max() {
            return Err(DictErrorKind::ValueRange {
                attr: def.name.clone(),
                value: name.to_string(),
                number,
                ty: def.ty.name(),
            });
        }
        self.dict
            .insert_value(def.key, name, number)
            .map_err(
                |ValueError::Conflict { old }| DictErrorKind::ValueConflict {
                    attr: def.name.clone(),
                    value: name.to_string(),
                    old,
                    new: number,
                },
            )
    }

    fn vendor(&mut self, toks: &[&str]) -> Res<()> {
        if toks.len() < 3 || toks.len() > 4 {
            return Err(DictErrorKind::Syntax {
                keyword: "VENDOR",
                expected: "VENDOR name number [format=T,L[,c]]",
            });
        }
        let name = toks[1];
        let id = parse_number(toks[2])
            .and_then(|n| u32::try_from(n).ok())
            // The key packs the PEC in 24 bits (the extended parent uses the rest).
            .filter(|&n| n <= 0x00ff_ffff)
            .ok_or_else(|| DictErrorKind::BadNumber(toks[2].to_string()))?;
        let (type_octets, length_octets, continuation) = match toks.get(3) {
            None => (1, 1, false),
            Some(f) => parse_vendor_format(f)?,
        };
        if let Some(old) = self.dict.vendor(name) {
            if old.id != id {
                return Err(DictErrorKind::VendorIdConflict {
                    name: name.to_string(),
                    old: old.id,
                    new: id,
                });
            }
        }
        self.dict.upsert_vendor(VendorDef {
            name: name.to_string(),
            id,
            type_octets,
            length_octets,
            continuation,
        });
        Ok(())
    }

    fn begin_vendor(&mut self, toks: &[&str], state: &mut FileState, line: usize) -> Res<()> {
        if toks.len() < 2 || toks.len() > 3 {
            return Err(DictErrorKind::Syntax {
                keyword: "BEGIN-VENDOR",
                expected: "BEGIN-VENDOR name [format=Extended-Vendor-Specific-N]",
            });
        }
        let name = toks[1];
        if let Some(open) = &state.vendor {
            return Err(DictErrorKind::NestedVendor(open.name.clone()));
        }
        let v = self
            .dict
            .vendor(name)
            .ok_or_else(|| DictErrorKind::UnknownVendor(name.to_string()))?;
        let mut vendor = v.id;
        if let Some(fmt) = toks.get(2) {
            let n = fmt
                .strip_prefix("format=Extended-Vendor-Specific-")
                .and_then(|n| n.parse::<u32>().ok())
                .filter(|n| (1..=6).contains(n))
                .ok_or_else(|| DictErrorKind::BadFlag {
                    flag: fmt.to_string(),
                    why: "expected format=Extended-Vendor-Specific-1..6",
                })?;
            let parent = 240 + n;
            if self.dict.type_of(AttrKey::new(parent << 24, 26)) != Some(AttrType::Evs) {
                return Err(DictErrorKind::NoParent {
                    oid: format!("{parent}.26"),
                });
            }
            vendor |= parent << 24;
        }
        state.vendor = Some(VendorBlock {
            name: name.to_string(),
            vendor,
            line,
        });
        Ok(())
    }

    fn begin_tlv(&mut self, toks: &[&str], state: &mut FileState, line: usize) -> Res<()> {
        let Some(name) = toks.get(1) else {
            return Err(DictErrorKind::Syntax {
                keyword: "BEGIN-TLV",
                expected: "BEGIN-TLV attribute",
            });
        };
        let def = self
            .dict
            .attribute(name)
            .ok_or_else(|| DictErrorKind::UnknownAttribute(name.to_string()))?;
        if def.ty != AttrType::Tlv {
            return Err(DictErrorKind::NotTlv(name.to_string()));
        }
        state.tlvs.push(TlvBlock {
            name: name.to_string(),
            key: def.key,
            path: def.path(),
            line,
        });
        Ok(())
    }
}

fn end_vendor(toks: &[&str], state: &mut FileState) -> Res<()> {
    let name = toks.get(1).copied().unwrap_or("");
    // A TLV block cannot outlive the vendor block it was opened in.
    if let Some(t) = state.tlvs.last() {
        return Err(DictErrorKind::UnclosedTlv {
            name: t.name.clone(),
            line: t.line,
        });
    }
    match &state.vendor {
        Some(open) if open.name.eq_ignore_ascii_case(name) => {
            state.vendor = None;
            Ok(())
        }
        _ => Err(DictErrorKind::Unmatched {
            keyword: "END-VENDOR",
            name: name.to_string(),
        }),
    }
}

fn end_tlv(toks: &[&str], state: &mut FileState) -> Res<()> {
    let name = toks.get(1).copied().unwrap_or("");
    match state.tlvs.last() {
        Some(open) if open.name.eq_ignore_ascii_case(name) => {
            state.tlvs.pop();
            Ok(())
        }
        _ => Err(DictErrorKind::Unmatched {
            keyword: "END-TLV",
            name: name.to_string(),
        }),
    }
}

fn read(path: &Path) -> Res<String> {
    // Lossy: a few vendor files carry Latin-1 in comments; names are ASCII.
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .map_err(|source| DictErrorKind::Io {
            path: path.to_path_buf(),
            source,
        })
}
