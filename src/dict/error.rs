//! Loader and encoder errors.

use std::path::PathBuf;

/// A dictionary could not be loaded. Display is `FILE:LINE: reason`, the form
/// editors and operators jump to. `line` is 0 when the file itself is unreadable.
#[derive(Debug, thiserror::Error)]
#[error("{}:{line}: {reason}", file.display())]
pub struct DictError {
    pub file: PathBuf,
    pub line: usize,
    pub reason: DictErrorKind,
}

/// Why a dictionary line was rejected.
#[derive(Debug, thiserror::Error)]
pub enum DictErrorKind {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("unknown keyword {0:?}")]
    UnknownKeyword(String),
    #[error("{keyword}: expected {expected}")]
    Syntax {
        keyword: &'static str,
        expected: &'static str,
    },
    #[error("unknown data type {0:?}")]
    UnknownType(String),
    #[error("invalid number {0:?}")]
    BadNumber(String),
    #[error("unknown flag {0:?}")]
    UnknownFlag(String),
    #[error("invalid flag {flag:?}: {why}")]
    BadFlag { flag: String, why: &'static str },
    #[error("unknown vendor {0:?}")]
    UnknownVendor(String),
    #[error(
        "invalid vendor format {0:?} (expected format=T,L[,c] with T in 1,2,4 and L in 0,1,2)"
    )]
    BadVendorFormat(String),
    #[error("vendor {name:?} is already defined with id {old}, not {new}")]
    VendorIdConflict { name: String, old: u32, new: u32 },
    #[error("attribute {name:?} is already defined with a different number")]
    AttrNumberConflict { name: String },
    #[error("attribute number {oid:?} is out of range here: {why}")]
    BadOid { oid: String, why: &'static str },
    #[error("parent of {oid:?} is not defined as a tlv, extended or evs attribute")]
    NoParent { oid: String },
    #[error("BEGIN-VENDOR {0:?} is still open (nested BEGIN-VENDOR)")]
    NestedVendor(String),
    #[error("BEGIN-VENDOR {name:?} (line {line}) has no matching END-VENDOR")]
    UnclosedVendor { name: String, line: usize },
    #[error("BEGIN-TLV {name:?} (line {line}) has no matching END-TLV")]
    UnclosedTlv { name: String, line: usize },
    #[error("{keyword} {name:?} does not match an open block")]
    Unmatched { keyword: &'static str, name: String },
    #[error("unknown attribute {0:?}")]
    UnknownAttribute(String),
    #[error("attribute {0:?} is not of type tlv")]
    NotTlv(String),
    #[error("VALUE {value:?} of {attr:?} given for type {ty}, which cannot have VALUEs")]
    ValueOnType {
        attr: String,
        value: String,
        ty: &'static str,
    },
    #[error("VALUE {value:?} of {attr:?}: {number} is too large for type {ty}")]
    ValueRange {
        attr: String,
        value: String,
        number: u64,
        ty: &'static str,
    },
    #[error("VALUE {value:?} of {attr:?} is already defined as {old}, not {new}")]
    ValueConflict {
        attr: String,
        value: String,
        old: u64,
        new: u64,
    },
    #[error("VALUE {value:?} refers to attribute {attr:?}, which no file defines")]
    ValueForUnknown { attr: String, value: String },
    #[error("$INCLUDE nesting deeper than {0} (include loop?)")]
    IncludeDepth(usize),
}

/// An operator-written value could not be turned into wire form, or an
/// encoded attribute could not be serialised.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("unknown attribute {0:?}")]
    UnknownAttribute(String),
    #[error("{attr}: invalid {ty} value {value:?}: {why}")]
    BadValue {
        attr: String,
        ty: &'static str,
        value: String,
        why: String,
    },
    #[error("{attr}: invalid tag {tag:?} (tags are 0..=31)")]
    BadTag { attr: String, tag: String },
    #[error("{attr}: attribute does not take a tag")]
    NotTagged { attr: String },
    #[error("{attr}: value is {len} octets, at most {max} fit")]
    TooLong {
        attr: String,
        len: usize,
        max: usize,
    },
    #[error("attribute {0} needs per-packet encryption; use the packet builder")]
    NeedsEncryption(String),
    #[error("attribute {0} is server-internal and has no wire form")]
    NotOnWire(String),
}
