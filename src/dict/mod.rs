//! Attribute dictionaries: the compiled-in RFC set and FreeRADIUS-format files.
//!
//! * [`types`]: the data model ([`AttrType`], [`AttrKey`], [`AttrDef`], [`VendorDef`]).
//! * [`Dictionary`]: storage and lookups; `loader` reads FreeRADIUS 3 files into it.
//! * `builtin`: the RFC/Microsoft/WISPr set, embedded as dictionary text.
//! * `encode` / `format` / `wire`: operator text → value, value → text,
//!   value → attribute TLVs.
//!
//! See [`AttrKey`] for how vendor, extended and TLV attributes are keyed, and
//! the `wire` module docs for what the data plane can encode.

mod builtin;
pub(crate) mod datetime;
mod dictionary;
mod encode;
mod error;
mod format;
mod loader;
mod syntax;
pub mod types;
mod wire;

use std::path::Path;

pub use dictionary::Dictionary;
pub use encode::EncodedAttribute;
pub use error::{DictError, DictErrorKind, EncodeError};
pub use types::{AttrDef, AttrKey, AttrType, Encrypt, Layout, VendorDef, VendorRef};

impl Dictionary {
    /// Loads a FreeRADIUS-format dictionary file and merges it into `self`.
    /// `$INCLUDE`s are relative to the including file's directory. On error
    /// `self` is left unchanged.
    pub fn load_file(&mut self, path: &Path) -> Result<(), DictError> {
        let mut work = self.clone();
        loader::Loader::new(&mut work).load_file(path)?;
        *self = work;
        Ok(())
    }

    /// Like [`Dictionary::load_file`] for text already in memory; `origin` names
    /// it in errors and anchors relative `$INCLUDE`s.
    pub fn load_str(&mut self, text: &str, origin: &Path) -> Result<(), DictError> {
        let mut work = self.clone();
        loader::Loader::new(&mut work).load_str(text, origin)?;
        *self = work;
        Ok(())
    }
}
