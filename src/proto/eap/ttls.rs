//! Diameter AVPs, the inner data of EAP-TTLS (RFC 5281 §10): the credentials of the inner
//! method (User-Name, User-Password, CHAP, MS-CHAP-*, or EAP-Message carrying inner EAP).
//!
//! ```text
//! AVP Code (4) | V M r r r r r r | AVP Length (3) | [Vendor-ID (4) if V] | Data ... | pad
//! ```
//!
//! AVP Length counts the header and the data, not the padding to the next multiple of four
//! octets. The reserved flag bits are ignored, as RFC 5281 §10.1 asks of a receiver. What a
//! mandatory AVP the caller does not know means (RFC 5281 §10.1: fail the negotiation) is the
//! caller's decision: this file only frames.

use super::EapError;

/// The Vendor-ID of Microsoft's MS-CHAP AVPs (RFC 2548).
pub const VENDOR_MICROSOFT: u32 = 311;

/// AVP codes EAP-TTLS uses (RFC 5281 §11; RADIUS attribute numbers, RFC 2865/2548).
pub mod code {
    pub const USER_NAME: u32 = 1;
    pub const USER_PASSWORD: u32 = 2;
    pub const CHAP_PASSWORD: u32 = 3;
    pub const REPLY_MESSAGE: u32 = 18;
    pub const CHAP_CHALLENGE: u32 = 60;
    pub const EAP_MESSAGE: u32 = 79;
    // Microsoft's, with vendor 311 (RFC 2548).
    pub const MS_CHAP_ERROR: u32 = 2;
    pub const MS_CHAP_CHALLENGE: u32 = 11;
    pub const MS_CHAP2_RESPONSE: u32 = 25;
    pub const MS_CHAP2_SUCCESS: u32 = 26;
}

/// The V flag: a Vendor-ID follows the length.
const FLAG_VENDOR: u8 = 0x80;
/// The M flag: the receiver must understand this AVP or fail.
const FLAG_MANDATORY: u8 = 0x40;
/// Code, flags and length.
const HEADER: usize = 8;
/// The AVP Length field is 24 bits.
const MAX_AVP_LEN: usize = 0xFF_FFFF;

/// One AVP. Its data can be a password: never printed.
#[derive(Clone, Copy)]
pub struct Avp<'a> {
    pub code: u32,
    pub vendor: Option<u32>,
    pub mandatory: bool,
    pub data: &'a [u8],
}

impl std::fmt::Debug for Avp<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Avp")
            .field("code", &self.code)
            .field("vendor", &self.vendor)
            .field("mandatory", &self.mandatory)
            .field("data_len", &self.data.len())
            .finish()
    }
}

/// The AVPs of a decrypted TTLS record, in order. Yields an error for the first malformed
/// AVP and then stops: what follows a bad length cannot be framed.
#[derive(Clone)]
pub struct Avps<'a> {
    rest: &'a [u8],
}

/// Iterates the AVPs in `data`.
pub fn avps(data: &[u8]) -> Avps<'_> {
    Avps { rest: data }
}

impl<'a> Iterator for Avps<'a> {
    type Item = Result<Avp<'a>, EapError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let item = self.parse_one();
        if item.is_err() {
            self.rest = &[];
        }
        Some(item)
    }
}

impl<'a> Avps<'a> {
    fn parse_one(&mut self) -> Result<Avp<'a>, EapError> {
        let rest = self.rest;
        let header = rest.get(..HEADER).ok_or(EapError::BadAvp)?;
        let code = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        let flags = header[4];
        let len =
            usize::from(header[5]) << 16 | usize::from(header[6]) << 8 | usize::from(header[7]);
        let vendor = flags & FLAG_VENDOR != 0;
        let data_start = if vendor { HEADER + 4 } else { HEADER };
        if len < data_start {
            return Err(EapError::BadAvp);
        }
        let avp = rest.get(..len).ok_or(EapError::BadAvp)?;
        let vendor = if vendor {
            Some(u32::from_be_bytes([avp[8], avp[9], avp[10], avp[11]]))
        } else {
            None
        };
        // Every AVP is padded to four octets, but a sender that leaves the padding off the
        // last one loses nothing: accept its end as the end of the data.
        let padded = len.saturating_add(pad(len));
        self.rest = rest.get(padded..).unwrap_or_default();
        Ok(Avp {
            code,
            vendor,
            mandatory: flags & FLAG_MANDATORY != 0,
            data: &avp[data_start..],
        })
    }
}

/// Octets of padding after an AVP of `len` octets.
fn pad(len: usize) -> usize {
    (4 - len % 4) % 4
}

/// Writes one AVP with its padding (zeros) into `out`: the octets written, padding included,
/// or `None` when it does not fit `out` or the 24-bit AVP Length.
pub fn write_avp(
    out: &mut [u8],
    code: u32,
    vendor: Option<u32>,
    mandatory: bool,
    data: &[u8],
) -> Option<usize> {
    let data_start = if vendor.is_some() { HEADER + 4 } else { HEADER };
    let len = data_start.checked_add(data.len())?;
    if len > MAX_AVP_LEN {
        return None;
    }
    let total = len + pad(len);
    let dst = out.get_mut(..total)?;
    dst[..4].copy_from_slice(&code.to_be_bytes());
    let mut flags = 0;
    if vendor.is_some() {
        flags |= FLAG_VENDOR;
    }
    if mandatory {
        flags |= FLAG_MANDATORY;
    }
    // len <= 0xFFFFFF: the high octet of the u32 is free for the flags.
    let word = u32::from(flags) << 24 | u32::try_from(len).ok()?;
    dst[4..8].copy_from_slice(&word.to_be_bytes());
    if let Some(v) = vendor {
        dst[8..12].copy_from_slice(&v.to_be_bytes());
    }
    dst[data_start..len].copy_from_slice(data);
    dst[len..].fill(0);
    Some(total)
}

/// The User-Password AVP's value without its trailing NUL padding (RFC 5281 §11.2.5: the
/// password may be padded with NULs to a multiple of 16, and hostap's peer does so).
pub fn password(data: &[u8]) -> &[u8] {
    let end = data.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    &data[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Code, vendor, mandatory, data.
    type Owned = (u32, Option<u32>, bool, Vec<u8>);

    fn all(data: &[u8]) -> Result<Vec<Owned>, EapError> {
        avps(data)
            .map(|a| a.map(|a| (a.code, a.vendor, a.mandatory, a.data.to_vec())))
            .collect()
    }

    /// Laid out by hand from RFC 5281 §10.1 and §11.2.5 as hostap's eap_ttls.c (peer, PAP)
    /// writes them: User-Name "alice" (M, 13 octets + 3 padding), then User-Password "pw"
    /// NUL-padded to 16 (M, 24 octets, no padding needed).
    #[test]
    fn known_vector_pap() {
        let wire = [
            0x00, 0x00, 0x00, 0x01, 0x40, 0x00, 0x00, 0x0d, b'a', b'l', b'i', b'c', b'e', 0, 0, 0,
            0x00, 0x00, 0x00, 0x02, 0x40, 0x00, 0x00, 0x18, b'p', b'w', 0, 0, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0, 0, 0,
        ];
        let got = all(&wire).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], (code::USER_NAME, None, true, b"alice".to_vec()));
        assert_eq!(got[1].0, code::USER_PASSWORD);
        assert_eq!(password(&got[1].3), b"pw");

        let mut buf = [0u8; 64];
        let n = write_avp(&mut buf, code::USER_NAME, None, true, b"alice").unwrap();
        let mut pw = [0u8; 16];
        pw[..2].copy_from_slice(b"pw");
        let m = write_avp(&mut buf[n..], code::USER_PASSWORD, None, true, &pw).unwrap();
        assert_eq!((n, m), (16, 24));
        assert_eq!(buf[..n + m], wire);
    }

    /// RFC 5281 §11.2.4 (MS-CHAP-V2): MS-CHAP-Challenge, vendor 311, M and V: header 12 +
    /// 16 octets = 28, no padding.
    #[test]
    fn known_vector_vendor() {
        let mut wire = vec![
            0x00, 0x00, 0x00, 0x0b, 0xc0, 0x00, 0x00, 0x1c, 0, 0, 0x01, 0x37,
        ];
        wire.extend_from_slice(&[0x5a; 16]);
        let got = all(&wire).unwrap();
        assert_eq!(
            got,
            [(
                code::MS_CHAP_CHALLENGE,
                Some(VENDOR_MICROSOFT),
                true,
                vec![0x5a; 16]
            )]
        );
        let mut buf = [0u8; 28];
        assert_eq!(
            write_avp(
                &mut buf,
                code::MS_CHAP_CHALLENGE,
                Some(VENDOR_MICROSOFT),
                true,
                &[0x5a; 16]
            ),
            Some(28)
        );
        assert_eq!(buf[..], wire[..]);
    }

    #[test]
    fn round_trips_and_padding() {
        let mut buf = [0u8; 256];
        let mut at = 0;
        for (i, len) in [0usize, 1, 2, 3, 4, 5, 17].iter().enumerate() {
            let data = vec![i as u8 + 1; *len];
            let vendor = (i % 2 == 0).then_some(9);
            at += write_avp(&mut buf[at..], i as u32, vendor, i % 3 == 0, &data).unwrap();
            assert_eq!(at % 4, 0);
        }
        let got = all(&buf[..at]).unwrap();
        assert_eq!(got.len(), 7);
        for (i, (code, vendor, m, data)) in got.into_iter().enumerate() {
            assert_eq!(code, i as u32);
            assert_eq!(vendor, (i % 2 == 0).then_some(9));
            assert_eq!(m, i % 3 == 0);
            assert!(data.iter().all(|&b| b == i as u8 + 1));
        }
        // The last AVP without its padding is accepted.
        let n = write_avp(&mut buf, code::USER_NAME, None, false, b"bob").unwrap();
        assert_eq!(n, 12);
        assert_eq!(all(&buf[..11]).unwrap()[0].3, b"bob");
        // A non-zero padding octet is not checked.
        buf[11] = 0xff;
        assert_eq!(all(&buf[..12]).unwrap().len(), 1);
    }

    #[test]
    fn bad_avps_are_errors_and_stop() {
        let bad: &[&[u8]] = &[
            &[0, 0, 0, 1, 0, 0, 0],                      // short header
            &[0, 0, 0, 1, 0, 0, 0, 7],                   // length below the header
            &[0, 0, 0, 1, 0x80, 0, 0, 8, 0, 0, 0, 0],    // V without room for Vendor-ID
            &[0, 0, 0, 1, 0, 0, 0, 10, b'a'],            // length beyond the data
            &[0, 0, 0, 1, 0, 0xff, 0xff, 0xff, 0, 0, 0], // 24-bit length beyond the data
        ];
        for b in bad {
            let mut it = avps(b);
            assert_eq!(
                it.next().map(|r| r.map(|_| ())),
                Some(Err(EapError::BadAvp)),
                "{b:?}"
            );
            assert!(it.next().is_none());
        }
        // A good AVP then junk: the good one, the error, then nothing.
        let mut buf = [0u8; 32];
        let n = write_avp(&mut buf, 1, None, true, b"abcd").unwrap();
        buf[n] = 0xaa;
        let mut it = avps(&buf[..n + 1]);
        assert!(matches!(it.next(), Some(Ok(a)) if a.data == b"abcd"));
        assert!(matches!(it.next(), Some(Err(EapError::BadAvp))));
        assert!(it.next().is_none());
        assert!(avps(&[]).next().is_none());
        // Reserved flag bits are ignored.
        let r = [0, 0, 0, 5, 0x3f, 0, 0, 8];
        assert_eq!(all(&r).unwrap(), [(5, None, false, vec![])]);
    }

    #[test]
    fn write_limits() {
        let big = vec![0u8; MAX_AVP_LEN - HEADER];
        let mut out = vec![0u8; MAX_AVP_LEN + 4];
        assert_eq!(
            write_avp(&mut out, 1, None, false, &big),
            Some(MAX_AVP_LEN + 1)
        );
        let got: Vec<_> = avps(&out[..MAX_AVP_LEN + 1]).collect();
        assert!(matches!(got[..], [Ok(a)] if a.data.len() == big.len()));
        assert_eq!(write_avp(&mut out, 1, Some(1), false, &big), None);
        let bigger = vec![0u8; MAX_AVP_LEN - HEADER + 1];
        assert_eq!(write_avp(&mut out, 1, None, false, &bigger), None);
        // Padding must fit too.
        let mut small = [0u8; 11];
        assert_eq!(write_avp(&mut small, 1, None, false, b"abc"), None);
        let mut exact = [0u8; 12];
        assert_eq!(write_avp(&mut exact, 1, None, false, b"abc"), Some(12));
    }

    #[test]
    fn password_strips_nul_padding() {
        assert_eq!(password(b"secret\0\0\0\0\0\0\0\0\0\0"), b"secret");
        assert_eq!(password(b"secret"), b"secret");
        assert_eq!(password(&[0; 16]), b"");
        assert_eq!(password(b""), b"");
        // Only trailing NULs go.
        assert_eq!(password(b"a\0b\0"), b"a\0b");
    }

    #[test]
    fn debug_hides_data() {
        let mut buf = [0u8; 16];
        let n = write_avp(&mut buf, code::USER_PASSWORD, None, true, b"hunter2").unwrap();
        let a = avps(&buf[..n]).next().unwrap().unwrap();
        let s = format!("{a:?}");
        assert!(!s.contains("104") && s.contains("data_len: 7"), "{s}");
    }

    proptest! {
        #[test]
        fn avps_never_panic_and_round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..96)) {
            let mut out = [0u8; 256];
            for a in avps(&bytes) {
                let Ok(a) = a else { break };
                let n = write_avp(&mut out, a.code, a.vendor, a.mandatory, a.data).unwrap();
                let back = avps(&out[..n]).next().unwrap().unwrap();
                prop_assert_eq!((back.code, back.vendor, back.mandatory), (a.code, a.vendor, a.mandatory));
                prop_assert_eq!(back.data, a.data);
            }
        }
    }
}
