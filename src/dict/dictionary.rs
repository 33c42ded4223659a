//! The in-memory dictionary: storage, lookups and FreeRADIUS' redefinition rules.

/// The dictionary's maps are consulted for every attribute of every logged record: a fast
/// (keyed) hasher instead of SipHash. Their keys come from the operator's files and from
/// attribute numbers, which give no useful handle for collision attacks.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

use super::types::{AttrDef, AttrKey, AttrType, Layout, VendorDef, VendorRef};

/// VALUE names of one attribute, both directions.
#[derive(Clone, Debug, Default)]
pub(crate) struct ValueNames {
    /// number → newest name (printing uses the newest, as FreeRADIUS does).
    pub(crate) by_number: HashMap<u64, String>,
    /// lowercased name → number (every name ever defined stays accepted).
    pub(crate) by_name: HashMap<String, u64>,
}

/// Attribute dictionary. Cheap to share behind an `Arc`; lookups take `&self`.
#[derive(Clone, Debug, Default)]
pub struct Dictionary {
    pub(crate) attrs: Vec<AttrDef>,
    /// lowercased name → index into `attrs`.
    pub(crate) attr_by_name: HashMap<String, usize>,
    /// key → index of the newest definition for that key.
    pub(crate) attr_by_key: HashMap<AttrKey, usize>,
    pub(crate) vendors: Vec<VendorDef>,
    pub(crate) vendor_by_name: HashMap<String, usize>,
    pub(crate) vendor_by_id: HashMap<u32, usize>,
    pub(crate) values: HashMap<AttrKey, ValueNames>,
}

/// Outcome of [`Dictionary::insert_attr`] that the loader turns into an error.
#[derive(Debug)]
pub(crate) enum InsertError {
    NumberConflict,
}

/// Outcome of [`Dictionary::insert_value`] that the loader turns into an error.
#[derive(Debug)]
pub(crate) enum ValueError {
    Conflict { old: u64 },
}

impl Dictionary {
    /// A dictionary with nothing in it.
    pub fn empty() -> Dictionary {
        Dictionary::default()
    }

    /// Attribute by name, case-insensitively (FreeRADIUS compares names that way).
    pub fn attribute(&self, name: &str) -> Option<&AttrDef> {
        let i = self.attr_by_name.get(&name.to_ascii_lowercase())?;
        self.attrs.get(*i)
    }

    /// Attribute by key; when several names share a key, the last defined wins.
    pub fn by_key(&self, key: AttrKey) -> Option<&AttrDef> {
        self.attrs.get(*self.attr_by_key.get(&key)?)
    }

    /// Name of the attribute with this key. Unknown keys return `None`; callers
    /// print [`AttrKey::fallback_name`] (`Attr-26.9.1`) then.
    pub fn name_of(&self, key: AttrKey) -> Option<&str> {
        self.by_key(key).map(|a| a.name.as_str())
    }

    /// Vendor by name (case-insensitive) or by enterprise number.
    pub fn vendor<'a>(&self, v: impl Into<VendorRef<'a>>) -> Option<&VendorDef> {
        let i = match v.into() {
            VendorRef::Name(n) => self.vendor_by_name.get(&n.to_ascii_lowercase())?,
            VendorRef::Id(id) => self.vendor_by_id.get(&id)?,
        };
        self.vendors.get(*i)
    }

    /// The VALUE name for `value` of attribute `key`.
    pub fn value_name(&self, key: AttrKey, value: u64) -> Option<&str> {
        self.values
            .get(&key)?
            .by_number
            .get(&value)
            .map(String::as_str)
    }

    /// The number a VALUE name stands for (case-insensitive).
    pub fn value_by_name(&self, key: AttrKey, name: &str) -> Option<u64> {
        self.values
            .get(&key)?
            .by_name
            .get(&name.to_ascii_lowercase())
            .copied()
    }

    /// Every attribute definition, in load order (including superseded names).
    pub fn attributes(&self) -> impl Iterator<Item = &AttrDef> {
        self.attrs.iter()
    }

    /// Every vendor, in load order.
    pub fn vendors(&self) -> impl Iterator<Item = &VendorDef> {
        self.vendors.iter()
    }

    /// Where `def` sits on the wire, using the vendor's current format.
    pub fn layout(&self, def: &AttrDef) -> Layout {
        if def.is_internal() {
            return Layout::Internal;
        }
        let key = def.key;
        if let Some(parent) = key.extended_parent() {
            return Layout::Extended {
                long: parent >= 245,
                depth: def.depth,
            };
        }
        if key.vendor == 0 {
            return Layout::Standard {
                depth: def.depth,
                concat: def.concat,
            };
        }
        match self.vendor(key.vendor) {
            Some(v) => Layout::Vendor {
                type_octets: v.type_octets,
                length_octets: v.length_octets,
                continuation: v.continuation,
                depth: def.depth,
            },
            // A key whose vendor vanished cannot be built; the loader never
            // creates one, but stay total rather than panic.
            None => Layout::Internal,
        }
    }

    /// Adds or redefines a vendor. Same name with another id is a conflict
    /// (checked by the caller); a later definition's format wins, and lookups by
    /// id return the newest name, as in FreeRADIUS.
    pub(crate) fn upsert_vendor(&mut self, def: VendorDef) {
        let lname = def.name.to_ascii_lowercase();
        if let Some(&i) = self.vendor_by_name.get(&lname) {
            if let Some(slot) = self.vendors.get_mut(i) {
                *slot = def;
            }
            self.vendor_by_id.insert(self.vendors[i].id, i);
            return;
        }
        let i = self.vendors.len();
        self.vendor_by_id.insert(def.id, i);
        self.vendors.push(def);
        self.vendor_by_name.insert(lname, i);
    }

    /// Adds or redefines an attribute with FreeRADIUS 3 semantics: the same name
    /// with the same key replaces type and flags; the same name with another key
    /// is an error; another name for an existing key adds an alias, and the newest
    /// name is what `by_key`/`name_of` report.
    pub(crate) fn insert_attr(&mut self, def: AttrDef) -> Result<(), InsertError> {
        let lname = def.name.to_ascii_lowercase();
        if let Some(&i) = self.attr_by_name.get(&lname) {
            if self.attrs[i].key != def.key {
                return Err(InsertError::NumberConflict);
            }
            self.attr_by_key.insert(def.key, i);
            self.attrs[i] = def;
            return Ok(());
        }
        let i = self.attrs.len();
        self.attr_by_key.insert(def.key, i);
        self.attrs.push(def);
        self.attr_by_name.insert(lname, i);
        Ok(())
    }

    /// Adds a VALUE. An identical redefinition is accepted; the same name with
    /// another number is a conflict; another name for a number becomes the
    /// printed one while the old name stays accepted.
    pub(crate) fn insert_value(
        &mut self,
        key: AttrKey,
        name: &str,
        number: u64,
    ) -> Result<(), ValueError> {
        let names = self.values.entry(key).or_default();
        let lname = name.to_ascii_lowercase();
        if let Some(&old) = names.by_name.get(&lname) {
            if old != number {
                return Err(ValueError::Conflict { old });
            }
            return Ok(());
        }
        names.by_name.insert(lname, number);
        names.by_number.insert(number, name.to_string());
        Ok(())
    }

    /// Type of the attribute `key`, if defined.
    pub(crate) fn type_of(&self, key: AttrKey) -> Option<AttrType> {
        self.by_key(key).map(|a| a.ty)
    }
}
