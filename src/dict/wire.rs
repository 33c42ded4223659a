//! Serialising an [`EncodedAttribute`] into RADIUS attribute TLVs.
//!
//! Encodable: standard attributes (values over 253 octets split when `concat`),
//! TLV children of standard, extended and `format=1,x` vendor attributes (one
//! child per parent TLV: the data plane does not merge siblings), Vendor-Specific
//! (26) in every `format=T,L` (1/2/4 type octets, 0/1/2 length octets), WiMAX
//! continuation (`format=1,1,c`, fragmented with the M bit), RFC 6929 extended
//! (241..=244), long extended (245, 246, fragmented with the M bit) and
//! Extended-Vendor-Specific (`24x.26`).
//!
//! Not encodable: attributes needing per-packet crypto (`encrypt != None`, the
//! packet builder owns those), server-internal attributes (virtual, or standard
//! numbers above 255), and values too long for a non-splittable attribute.

use super::encode::EncodedAttribute;
use super::error::EncodeError;
use super::types::{AttrKey, Encrypt, Layout};

const VENDOR_SPECIFIC: u8 = 26;

impl EncodedAttribute {
    /// Appends the complete wire attribute(s) to `out`. On error nothing is appended.
    pub fn to_wire(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let name = || self.key.fallback_name();
        if self.encrypt != Encrypt::None {
            return Err(EncodeError::NeedsEncryption(name()));
        }
        let too_long = |max: usize| EncodeError::TooLong {
            attr: name(),
            len: self.value.len(),
            max,
        };
        let start = out.len();
        let result = self.write(out, too_long);
        if result.is_err() {
            out.truncate(start);
        }
        result
    }

    fn write(
        &self,
        out: &mut Vec<u8>,
        too_long: impl Fn(usize) -> EncodeError,
    ) -> Result<(), EncodeError> {
        let depth = match self.layout {
            Layout::Internal => return Err(EncodeError::NotOnWire(self.key.fallback_name())),
            Layout::Standard { depth, .. }
            | Layout::Vendor { depth, .. }
            | Layout::Extended { depth, .. } => depth,
        };
        let path = AttrKey::unpack_path(self.key.code, depth);
        let top = path[0];
        // Innermost first: wrap the value in each TLV level below the top.
        let payload = wrap_tlvs(&path[1..], &self.value).ok_or_else(|| too_long(253))?;
        match self.layout {
            Layout::Internal => Err(EncodeError::NotOnWire(self.key.fallback_name())),
            Layout::Standard { concat, .. } => {
                let top = u8::try_from(top)
                    .map_err(|_| EncodeError::NotOnWire(self.key.fallback_name()))?;
                if payload.len() <= 253 {
                    push_attr(out, top, &payload);
                    Ok(())
                } else if concat && depth == 1 {
                    for chunk in payload.chunks(253) {
                        push_attr(out, top, chunk);
                    }
                    Ok(())
                } else {
                    Err(too_long(253))
                }
            }
            Layout::Vendor {
                type_octets,
                length_octets,
                continuation,
                ..
            } => self.write_vsa(
                out,
                top,
                type_octets,
                length_octets,
                continuation,
                &payload,
                &too_long,
            ),
            Layout::Extended { long, .. } => {
                let parent = (self.key.vendor >> 24) as u8;
                let top = top as u8; // loader limits extended codes to one octet
                let mut head = Vec::with_capacity(6);
                if self.key.pec() != 0 {
                    head.push(VENDOR_SPECIFIC);
                    head.extend_from_slice(&self.key.pec().to_be_bytes());
                    head.push(top);
                } else {
                    head.push(top);
                }
                if !long {
                    let max = 253 - head.len();
                    if payload.len() > max {
                        return Err(too_long(max));
                    }
                    let mut body = head;
                    body.extend_from_slice(&payload);
                    push_attr(out, parent, &body);
                    return Ok(());
                }
                // RFC 6929 §2.2: type, length, ext-type, flags(M), data; the M bit
                // marks every fragment but the last. EVS headers repeat per fragment.
                let room = 253 - head.len() - 1;
                let chunks: Vec<&[u8]> = if payload.is_empty() {
                    vec![&[]]
                } else {
                    payload.chunks(room).collect()
                };
                let last = chunks.len() - 1;
                for (i, chunk) in chunks.into_iter().enumerate() {
                    let flags = if i < last { 0x80 } else { 0 };
                    let mut body = Vec::with_capacity(head.len() + 1 + chunk.len());
                    body.push(head[0]);
                    body.push(flags);
                    body.extend_from_slice(&head[1..]);
                    body.extend_from_slice(chunk);
                    push_attr(out, parent, &body);
                }
                Ok(())
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn write_vsa(
        &self,
        out: &mut Vec<u8>,
        code: u32,
        type_octets: u8,
        length_octets: u8,
        continuation: bool,
        payload: &[u8],
        too_long: &impl Fn(usize) -> EncodeError,
    ) -> Result<(), EncodeError> {
        let pec = self.key.pec().to_be_bytes();
        let t = usize::from(type_octets);
        let l = usize::from(length_octets);
        let c = usize::from(continuation);
        // 255 minus the outer header (2) and the vendor id (4).
        let room = 249 - t - l - c;
        let chunks: Vec<&[u8]> = if payload.len() <= room {
            vec![payload]
        } else if continuation {
            payload.chunks(room).collect()
        } else {
            return Err(too_long(room));
        };
        let last = chunks.len() - 1;
        for (i, chunk) in chunks.into_iter().enumerate() {
            let mut body = Vec::with_capacity(4 + t + l + c + chunk.len());
            body.extend_from_slice(&pec);
            let code_bytes = code.to_be_bytes();
            body.extend_from_slice(&code_bytes[4 - t..]);
            let vlen = (t + l + c + chunk.len()) as u16;
            match l {
                1 => body.push(vlen as u8),
                2 => body.extend_from_slice(&vlen.to_be_bytes()),
                _ => {}
            }
            if continuation {
                body.push(if i < last { 0x80 } else { 0 });
            }
            body.extend_from_slice(chunk);
            push_attr(out, VENDOR_SPECIFIC, &body);
        }
        Ok(())
    }
}

/// Wraps `value` in TLV headers for `levels` (outermost first).
fn wrap_tlvs(levels: &[u32], value: &[u8]) -> Option<Vec<u8>> {
    let mut inner = value.to_vec();
    for &t in levels.iter().rev() {
        let len = u8::try_from(inner.len() + 2).ok()?;
        let mut next = Vec::with_capacity(inner.len() + 2);
        next.push(t as u8);
        next.push(len);
        next.extend_from_slice(&inner);
        inner = next;
    }
    Some(inner)
}

/// `type, len, body`; callers keep body ≤ 253 octets.
fn push_attr(out: &mut Vec<u8>, ty: u8, body: &[u8]) {
    out.push(ty);
    out.push((2 + body.len()) as u8);
    out.extend_from_slice(body);
}
