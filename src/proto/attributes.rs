//! Zero-copy iterators over attributes and Vendor-Specific content.
//!
//! The top-level iterator is infallible because [`super::Packet::parse`]
//! already validated every TLV; it still stops (rather than panicking) on
//! anything malformed so it stays safe if handed unvalidated bytes.

use super::attr::VENDOR_SPECIFIC;

/// One attribute: its type and value (the 2-octet header excluded).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attribute<'a> {
    pub typ: u8,
    pub value: &'a [u8],
}

/// Iterator over a packet's attributes, in wire order.
#[derive(Clone, Debug)]
pub struct Attributes<'a> {
    rest: &'a [u8],
}

impl<'a> Attributes<'a> {
    /// Iterates over already-validated attribute bytes (everything after the header).
    pub(crate) fn new(rest: &'a [u8]) -> Self {
        Attributes { rest }
    }
}

/// Splits one TLV off the front of `bytes`: `(type, value, remainder)`.
/// `None` at the end or on malformed data.
#[inline]
pub(crate) fn split_tlv(bytes: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&typ, after_type) = bytes.split_first()?;
    let (&len, _) = after_type.split_first()?;
    let len = usize::from(len);
    if len < 2 {
        return None;
    }
    let (tlv, rest) = bytes.split_at_checked(len)?;
    Some((typ, tlv.get(2..)?, rest))
}

impl<'a> Iterator for Attributes<'a> {
    type Item = Attribute<'a>;

    #[inline]
    fn next(&mut self) -> Option<Attribute<'a>> {
        match split_tlv(self.rest) {
            Some((typ, value, rest)) => {
                self.rest = rest;
                Some(Attribute { typ, value })
            }
            None => {
                self.rest = &[];
                None
            }
        }
    }
}

/// A Vendor-Specific attribute (RFC 2865 §5.26): Vendor-Id plus the vendor
/// data. Most vendors use the recommended `type(1) length(1) value` layout,
/// walked by [`VendorAttribute::sub_attributes`]; vendors that do not are
/// still yielded, with `data` raw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VendorAttribute<'a> {
    pub vendor: u32,
    pub data: &'a [u8],
}

impl<'a> VendorAttribute<'a> {
    /// Interprets a Vendor-Specific value; `None` when it is too short to
    /// hold a Vendor-Id.
    pub fn from_value(value: &'a [u8]) -> Option<Self> {
        let (id, data) = value.split_first_chunk::<4>()?;
        Some(VendorAttribute {
            vendor: u32::from_be_bytes(*id),
            data,
        })
    }

    /// Sub-attributes in the RFC 2865 §5.26 recommended layout. Stops at
    /// the first malformed sub-attribute; see [`Self::is_well_formed`].
    pub fn sub_attributes(&self) -> SubAttributes<'a> {
        SubAttributes { rest: self.data }
    }

    /// True when `data` is entirely a sequence of well-formed sub-attributes.
    pub fn is_well_formed(&self) -> bool {
        let mut rest = self.data;
        while !rest.is_empty() {
            match split_tlv(rest) {
                Some((_, _, r)) => rest = r,
                None => return false,
            }
        }
        true
    }
}

/// One vendor sub-attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubAttribute<'a> {
    pub vtype: u8,
    pub value: &'a [u8],
}

/// Iterator over a VSA's sub-attributes.
#[derive(Clone, Debug)]
pub struct SubAttributes<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for SubAttributes<'a> {
    type Item = SubAttribute<'a>;

    fn next(&mut self) -> Option<SubAttribute<'a>> {
        match split_tlv(self.rest) {
            Some((vtype, value, rest)) => {
                self.rest = rest;
                Some(SubAttribute { vtype, value })
            }
            None => {
                self.rest = &[];
                None
            }
        }
    }
}

/// Iterator over a packet's Vendor-Specific attributes. Values shorter than
/// a Vendor-Id (4 octets) are skipped here; they remain visible through
/// [`Attributes`].
#[derive(Clone, Debug)]
pub struct VendorAttributes<'a> {
    inner: Attributes<'a>,
}

impl<'a> VendorAttributes<'a> {
    pub(crate) fn new(inner: Attributes<'a>) -> Self {
        VendorAttributes { inner }
    }
}

impl<'a> Iterator for VendorAttributes<'a> {
    type Item = VendorAttribute<'a>;

    fn next(&mut self) -> Option<VendorAttribute<'a>> {
        self.inner
            .by_ref()
            .filter(|a| a.typ == VENDOR_SPECIFIC)
            .find_map(|a| VendorAttribute::from_value(a.value))
    }
}
