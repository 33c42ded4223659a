//! PEAPv0 (MS-PEAP) pieces inside the tunnel: the EAP-TLV (Extensions, Type 33) packet with
//! its Result TLV that ends phase 2 (MS-PEAP §2.2.8, §3.2.5.x), and the header-less form in
//! which PEAPv0 carries every other inner EAP packet (MS-PEAP §3.1.5.x: "the EAP header is
//! not sent").
//!
//! A TLV: `M(1) R(1) Type(14) | Length(2) | Value`. A Result TLV's value is two octets,
//! 1 = success, 2 = failure. Framing and error handling follow hostap's eap_peap.c /
//! eap_server_peap.c (`eap_tlv_process`): a TLV running past the packet, or octets left over
//! that cannot hold one, are errors; an unknown TLV is skipped unless it is mandatory.

use super::{EapCode, EapError};

/// The EAP Type of Extensions/EAP-TLV packets (MS-PEAP §2.2.8). Not an [`super::EapType`]
/// variant: it reads as `EapType::Other(33)`.
pub const TYPE_EXTENSIONS: u8 = 33;

pub const TLV_RESULT: u16 = 3;
pub const TLV_CRYPTO_BINDING: u16 = 12;
/// The M bit of a TLV's type field.
pub const TLV_MANDATORY: u16 = 0x8000;
/// The 14 bits of the TLV type; the R bit (0x4000) is reserved.
const TLV_TYPE_MASK: u16 = 0x3FFF;

const RESULT_SUCCESS: u16 = 1;
const RESULT_FAILURE: u16 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlvResult {
    Success,
    Failure,
}

/// What a Type-33 packet carries: its Result and, if present, the Crypto-Binding TLV's value
/// (MS-PEAP §2.2.8.2: Version, Received Version, Sub-Type, Nonce, Compound MAC) for the
/// caller to verify or ignore.
#[derive(Debug, Clone, Copy)]
pub struct Extensions<'a> {
    pub result: TlvResult,
    pub crypto_binding: Option<&'a [u8]>,
}

/// Writes an EAP Request (or Response) of Type 33 carrying one mandatory Result TLV: a whole
/// EAP packet with its header (PEAPv0 sends TLV packets with the header). 11 octets, or
/// `None` when `out` is shorter or `code` is Success/Failure (which have no Type).
pub fn write_result(
    out: &mut [u8],
    code: EapCode,
    identifier: u8,
    result: TlvResult,
) -> Option<usize> {
    write_result_with(out, code, identifier, result, &[])
}

/// [`write_result`] with more whole TLVs after the Result TLV (a Cryptobinding TLV), the
/// EAP Length covering them. `None` also when the packet would pass an EAP Length.
pub fn write_result_with(
    out: &mut [u8],
    code: EapCode,
    identifier: u8,
    result: TlvResult,
    more: &[u8],
) -> Option<usize> {
    if !matches!(code, EapCode::Request | EapCode::Response) {
        return None;
    }
    let status = match result {
        TlvResult::Success => RESULT_SUCCESS,
        TlvResult::Failure => RESULT_FAILURE,
    };
    let len = 11usize.checked_add(more.len())?;
    let [l0, l1] = u16::try_from(len).ok()?.to_be_bytes();
    let [t0, t1] = (TLV_MANDATORY | TLV_RESULT).to_be_bytes();
    let [s0, s1] = status.to_be_bytes();
    let head = [
        code.to_u8(),
        identifier,
        l0,
        l1,
        TYPE_EXTENSIONS,
        t0,
        t1,
        0,
        2,
        s0,
        s1,
    ];
    let dst = out.get_mut(..len)?;
    dst[..head.len()].copy_from_slice(&head);
    dst[head.len()..].copy_from_slice(more);
    Some(len)
}

/// The Result TLV of a Type-33 packet's type data (what follows the Type octet). Other TLVs
/// are skipped, an unknown mandatory TLV is an error; see [`read_extensions`] for the
/// Crypto-Binding TLV.
pub fn read_result(type_data: &[u8]) -> Result<TlvResult, EapError> {
    read_extensions(type_data).map(|e| e.result)
}

/// The Result TLV and the Crypto-Binding TLV (if any) of a Type-33 packet's type data.
/// Errors: a TLV header or value cut short; an unknown mandatory TLV; not exactly one Result
/// TLV, or one whose value is not two octets of 1 or 2; two Crypto-Binding TLVs.
pub fn read_extensions(type_data: &[u8]) -> Result<Extensions<'_>, EapError> {
    let mut rest = type_data;
    let mut result = None;
    let mut crypto_binding = None;
    while !rest.is_empty() {
        let (header, after) = rest.split_first_chunk::<4>().ok_or(EapError::BadTlv)?;
        let field = u16::from_be_bytes([header[0], header[1]]);
        let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
        if len > after.len() {
            return Err(EapError::BadTlv);
        }
        let (value, next) = after.split_at(len);
        rest = next;
        match field & TLV_TYPE_MASK {
            TLV_RESULT => {
                let status = match value {
                    [a, b] => u16::from_be_bytes([*a, *b]),
                    _ => return Err(EapError::BadTlv),
                };
                let r = match status {
                    RESULT_SUCCESS => TlvResult::Success,
                    RESULT_FAILURE => TlvResult::Failure,
                    _ => return Err(EapError::BadTlv),
                };
                // Two Results could disagree: which one the peer meant is unknowable.
                if result.replace(r).is_some() {
                    return Err(EapError::NoResultTlv);
                }
            }
            TLV_CRYPTO_BINDING if crypto_binding.is_some() => return Err(EapError::BadTlv),
            TLV_CRYPTO_BINDING => crypto_binding = Some(value),
            other if field & TLV_MANDATORY != 0 => {
                return Err(EapError::UnknownMandatoryTlv(other));
            }
            _ => {}
        }
    }
    Ok(Extensions {
        result: result.ok_or(EapError::NoResultTlv)?,
        crypto_binding,
    })
}

/// Rebuilds the whole inner EAP packet from a header-less one (Type, Type-Data) as PEAPv0
/// sends it, with `code` and `identifier` (the outer packet's, as hostap does) and the Length
/// it now has. `None` when `headerless` is empty (a Request or Response needs a Type), too
/// long for an EAP Length, or `out` is too small.
pub fn with_header(
    out: &mut [u8],
    code: EapCode,
    identifier: u8,
    headerless: &[u8],
) -> Option<usize> {
    if headerless.is_empty() {
        return None;
    }
    let len = 4usize.checked_add(headerless.len())?;
    let declared = u16::try_from(len).ok()?;
    let dst = out.get_mut(..len)?;
    dst[0] = code.to_u8();
    dst[1] = identifier;
    dst[2..4].copy_from_slice(&declared.to_be_bytes());
    dst[4..].copy_from_slice(headerless);
    Some(len)
}

/// A whole inner EAP packet as PEAPv0 sends it: without its 4-octet header, except a Type-33
/// (Extensions) packet, which keeps it. A packet without a Type (shorter than 5 octets: an
/// EAP Success or Failure, which PEAPv0 replaces with a Result TLV) has nothing to send and
/// gives the empty slice.
pub fn without_header(packet: &[u8]) -> &[u8] {
    match packet.get(4) {
        Some(&TYPE_EXTENSIONS) => packet,
        Some(_) => &packet[4..],
        None => &[],
    }
}

/// Whether decrypted inner data is a whole Type-33 packet (header kept) rather than a
/// header-less inner packet: five octets or more, Type 33 at the Type's place, and a Length
/// equal to the octets. A heuristic, as in hostap's peer: a side that knows from its own
/// state that a TLV packet is due should rely on that instead.
pub fn is_extensions_packet(inner: &[u8]) -> bool {
    match inner {
        [_, _, l0, l1, TYPE_EXTENSIONS, ..] => {
            usize::from(u16::from_be_bytes([*l0, *l1])) == inner.len()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::eap::{write_packet, EapPacket, EapType};
    use proptest::prelude::*;

    /// hostap's eap_tlv_build_result (eap_server_peap.c): EAP header, Type 33, then
    /// `be16(EAP_TLV_TYPE_MANDATORY | EAP_TLV_RESULT_TLV) be16(2) be16(status)`, success 1,
    /// failure 2 (MS-PEAP §2.2.8.1).
    #[test]
    fn known_vectors() {
        let success = [
            0x01, 0x0a, 0x00, 0x0b, 0x21, 0x80, 0x03, 0x00, 0x02, 0x00, 0x01,
        ];
        let failure = [
            0x02, 0x0b, 0x00, 0x0b, 0x21, 0x80, 0x03, 0x00, 0x02, 0x00, 0x02,
        ];
        let mut buf = [0u8; 11];
        assert_eq!(
            write_result(&mut buf, EapCode::Request, 0x0a, TlvResult::Success),
            Some(11)
        );
        assert_eq!(buf, success);
        assert_eq!(
            write_result(&mut buf, EapCode::Response, 0x0b, TlvResult::Failure),
            Some(11)
        );
        assert_eq!(buf, failure);
        for (bytes, want) in [(success, TlvResult::Success), (failure, TlvResult::Failure)] {
            let p = EapPacket::parse(&bytes).unwrap();
            assert_eq!(p.eap_type(), Some(EapType::Other(TYPE_EXTENSIONS)));
            assert_eq!(read_result(p.type_data()), Ok(want));
            // Type 33 keeps its header on the wire.
            assert_eq!(without_header(&bytes), bytes);
        }
    }

    #[test]
    fn other_tlvs_are_skipped_or_refused() {
        let result = [0x80, 0x03, 0x00, 0x02, 0x00, 0x01];
        // An optional unknown TLV (type 7) before it, and the Result without the M bit.
        let td = [
            0x00, 0x07, 0x00, 0x01, 0xaa, 0x00, 0x03, 0x00, 0x02, 0x00, 0x02,
        ];
        assert_eq!(read_result(&td), Ok(TlvResult::Failure));
        // The R bit does not change the type.
        let td = [0x40, 0x03, 0x00, 0x02, 0x00, 0x01];
        assert_eq!(read_result(&td), Ok(TlvResult::Success));
        // Crypto-Binding (M, 56 octets as in MS-PEAP §2.2.8.2) is skipped but handed back.
        let mut td = result.to_vec();
        td.extend_from_slice(&[0x80, 0x0c, 0x00, 0x38]);
        td.extend_from_slice(&[0x5c; 56]);
        let e = read_extensions(&td).unwrap();
        assert_eq!(e.result, TlvResult::Success);
        assert_eq!(e.crypto_binding, Some(&[0x5c; 56][..]));
        assert_eq!(read_result(&td), Ok(TlvResult::Success));
        assert_eq!(read_extensions(&result).unwrap().crypto_binding, None);

        let cases: &[(&[u8], EapError)] = &[
            (&[], EapError::NoResultTlv),
            (&[0x00, 0x07, 0x00, 0x00], EapError::NoResultTlv),
            (&[0x80, 0x07, 0x00, 0x00], EapError::UnknownMandatoryTlv(7)),
            (&[0xc0, 0x09, 0x00, 0x00], EapError::UnknownMandatoryTlv(9)),
            (&[0x80, 0x03, 0x00], EapError::BadTlv),
            (&[0x80, 0x03, 0x00, 0x02, 0x00], EapError::BadTlv),
            (&[0x80, 0x03, 0x00, 0x01, 0x01], EapError::BadTlv),
            (
                &[0x80, 0x03, 0x00, 0x03, 0x00, 0x01, 0x00],
                EapError::BadTlv,
            ),
            (&[0x80, 0x03, 0x00, 0x02, 0x00, 0x03], EapError::BadTlv),
            (&[0x80, 0x03, 0x00, 0x02, 0x00, 0x00], EapError::BadTlv),
            (
                &[
                    0x80, 0x03, 0x00, 0x02, 0x00, 0x01, 0x80, 0x03, 0x00, 0x02, 0x00, 0x01,
                ],
                EapError::NoResultTlv,
            ),
            (
                &[
                    0x80, 0x03, 0x00, 0x02, 0x00, 0x01, 0x80, 0x0c, 0, 0, 0x80, 0x0c, 0, 0,
                ],
                EapError::BadTlv,
            ),
            // A good Result, then octets too few for a TLV header.
            (
                &[0x80, 0x03, 0x00, 0x02, 0x00, 0x01, 0x00],
                EapError::BadTlv,
            ),
        ];
        for (td, want) in cases {
            assert_eq!(read_result(td), Err(*want), "{td:?}");
        }
    }

    #[test]
    fn write_result_limits() {
        let mut short = [0u8; 10];
        assert_eq!(
            write_result(&mut short, EapCode::Request, 1, TlvResult::Success),
            None
        );
        let mut buf = [0u8; 11];
        assert_eq!(
            write_result(&mut buf, EapCode::Success, 1, TlvResult::Success),
            None
        );
        // A TLV after the Result: the EAP Length covers it, and it reads back.
        let cb = [[0x00, 0x0c, 0x00, 0x38].as_slice(), &[0x11; 56]].concat();
        let mut big = [0u8; 80];
        assert_eq!(
            write_result_with(&mut big[..70], EapCode::Request, 3, TlvResult::Success, &cb),
            None
        );
        let n = write_result_with(&mut big, EapCode::Request, 3, TlvResult::Success, &cb);
        assert_eq!(n, Some(71));
        assert_eq!(big[2..4], [0, 71]);
        let p = EapPacket::parse(&big[..71]).unwrap();
        assert!(is_extensions_packet(&big[..71]));
        let e = read_extensions(p.type_data()).unwrap();
        assert_eq!(e.result, TlvResult::Success);
        assert_eq!(e.crypto_binding, Some(&[0x11; 56][..]));
    }

    /// MS-PEAP §3.1.5: an inner EAP-Response/Identity "bob" travels as `01 'b' 'o' 'b'`.
    #[test]
    fn headers_come_off_and_back() {
        let mut full = [0u8; 16];
        let n = write_packet(&mut full, EapCode::Response, 4, EapType::Identity, b"bob").unwrap();
        let full = &full[..n];
        assert_eq!(full, [0x02, 0x04, 0x00, 0x08, 0x01, b'b', b'o', b'b']);
        let bare = without_header(full);
        assert_eq!(bare, [0x01, b'b', b'o', b'b']);
        let mut out = [0u8; 16];
        let m = with_header(&mut out, EapCode::Response, 4, bare).unwrap();
        assert_eq!(&out[..m], full);
        assert!(EapPacket::parse(&out[..m]).is_ok());

        assert_eq!(with_header(&mut out, EapCode::Request, 1, b""), None);
        assert_eq!(
            with_header(&mut out[..7], EapCode::Request, 1, b"abcd"),
            None
        );
        assert_eq!(
            with_header(&mut out[..8], EapCode::Request, 1, b"abcd"),
            Some(8)
        );
        let mut big = vec![0u8; 70_000];
        let data = vec![1u8; 65531];
        assert_eq!(
            with_header(&mut big, EapCode::Request, 1, &data),
            Some(65535)
        );
        assert_eq!(
            with_header(&mut big, EapCode::Request, 1, &data[..65530]),
            Some(65534)
        );
        let data = vec![1u8; 65532];
        assert_eq!(with_header(&mut big, EapCode::Request, 1, &data), None);

        assert!(is_extensions_packet(&[1, 1, 0, 5, 33]));
        assert!(!is_extensions_packet(&[1, 1, 0, 6, 33]));
        assert!(!is_extensions_packet(&[1, 1, 0, 5, 26]));
        assert!(!is_extensions_packet(bare));
        assert_eq!(without_header(&[3, 1, 0, 4]), b"");
        assert_eq!(without_header(&[]), b"");
        assert_eq!(without_header(&[1, 1, 0, 5, 26]), [26]);
    }

    proptest! {
        #[test]
        fn read_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = read_extensions(&bytes);
            let bare = without_header(&bytes);
            let mut out = [0u8; 80];
            if let Some(n) = with_header(&mut out, EapCode::Request, 1, bare) {
                prop_assert_eq!(&out[4..n], bare);
            }
        }
    }
}
