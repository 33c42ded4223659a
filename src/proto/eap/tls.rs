//! The Type-Data header EAP-TLS (RFC 5216 §3.1), EAP-TTLS (RFC 5281 §9.1) and PEAP (MS-PEAP
//! §2.1) share: a flags octet, a 4-octet TLS Message Length when the L flag is set, then a
//! fragment of the TLS record stream.
//!
//! ```text
//!  0                   1                   2                   3
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     Code      |   Identifier  |            Length             |
//! |     Type      |L M S R R V V V|  TLS Message Length (if L)
//! |               TLS Message Length (cont.)      |   TLS Data...
//! ```
//!
//! The version bits are TTLS's and PEAP's (EAP-TLS keeps them reserved, zero). Reassembly of
//! fragments and acknowledgement logic belong to the caller; this file only reads and writes
//! one fragment, into caller buffers.

use super::{EapCode, EapError, EapType};

/// Bits of the flags octet.
pub mod flags {
    /// L: a TLS Message Length follows the flags.
    pub const LENGTH: u8 = 0x80;
    /// M: more fragments follow.
    pub const MORE: u8 = 0x40;
    /// S: the server's start of the method.
    pub const START: u8 = 0x20;
    /// The version bits of EAP-TTLS and PEAP (reserved in EAP-TLS).
    pub const VERSION: u8 = 0x07;
}

/// Flags octet plus the 4-octet TLS Message Length.
const LENGTH_FIELD: usize = 4;

/// One fragment: the flags, the TLS Message Length when L is set, and the TLS data.
#[derive(Clone, Copy)]
pub struct TlsFragment<'a> {
    pub flags: u8,
    pub message_length: Option<u32>,
    pub data: &'a [u8],
}

impl std::fmt::Debug for TlsFragment<'_> {
    // The data is TLS records (a handshake is public, application data is encrypted), but
    // printing kilobytes of it helps nobody: its length says enough.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsFragment")
            .field("flags", &format_args!("{:#04x}", self.flags))
            .field("message_length", &self.message_length)
            .field("data_len", &self.data.len())
            .finish()
    }
}

impl<'a> TlsFragment<'a> {
    /// Reads what follows the EAP Type octet. Errors: no flags octet; L set without four
    /// octets of TLS Message Length; a TLS Message Length smaller than this fragment alone
    /// (the length counts the whole message, of which this is a part).
    pub fn parse(type_data: &'a [u8]) -> Result<TlsFragment<'a>, EapError> {
        let (&flags, rest) = type_data.split_first().ok_or(EapError::BadTlsHeader)?;
        if flags & flags::LENGTH == 0 {
            return Ok(TlsFragment {
                flags,
                message_length: None,
                data: rest,
            });
        }
        let (len, data) = rest
            .split_first_chunk::<LENGTH_FIELD>()
            .ok_or(EapError::BadTlsHeader)?;
        let message_length = u32::from_be_bytes(*len);
        if u64::from(message_length) < data.len() as u64 {
            return Err(EapError::BadTlsHeader);
        }
        Ok(TlsFragment {
            flags,
            message_length: Some(message_length),
            data,
        })
    }

    pub fn more(&self) -> bool {
        self.flags & flags::MORE != 0
    }

    pub fn start(&self) -> bool {
        self.flags & flags::START != 0
    }

    /// The TTLS/PEAP version the sender proposes or accepts (0 for EAP-TLS).
    pub fn version(&self) -> u8 {
        self.flags & flags::VERSION
    }

    /// An acknowledgement of a fragment (RFC 5216 §3.2): no L, M or S and no data. The
    /// version bits may be set (TTLS and PEAP keep them on every packet).
    pub fn is_ack(&self) -> bool {
        self.flags & (flags::LENGTH | flags::MORE | flags::START) == 0 && self.data.is_empty()
    }
}

/// Writes a whole EAP packet (code, identifier, length, type, flags, [TLS Message Length],
/// data) into `out`: its length, or `None` when it does not fit `out` or an EAP Length.
///
/// The L flag follows `message_length`: set when it is `Some`, cleared when `None`, whatever
/// `flags` says, so a written header always parses back as written.
pub fn write_fragment(
    out: &mut [u8],
    code: EapCode,
    identifier: u8,
    eap_type: EapType,
    flags: u8,
    message_length: Option<u32>,
    data: &[u8],
) -> Option<usize> {
    let header = 6 + if message_length.is_some() {
        LENGTH_FIELD
    } else {
        0
    };
    let len = header.checked_add(data.len())?;
    let declared = u16::try_from(len).ok()?;
    let dst = out.get_mut(..len)?;
    dst[0] = code.to_u8();
    dst[1] = identifier;
    dst[2..4].copy_from_slice(&declared.to_be_bytes());
    dst[4] = eap_type.to_u8();
    dst[5] = match message_length {
        Some(_) => flags | flags::LENGTH,
        None => flags & !flags::LENGTH,
    };
    if let Some(m) = message_length {
        dst[6..10].copy_from_slice(&m.to_be_bytes());
    }
    dst[header..].copy_from_slice(data);
    Some(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::eap::EapPacket;
    use proptest::prelude::*;

    fn round_trip(flags: u8, message_length: Option<u32>, data: &[u8]) {
        let mut buf = vec![0u8; 16 + data.len()];
        let n = write_fragment(
            &mut buf,
            EapCode::Request,
            7,
            EapType::Ttls,
            flags,
            message_length,
            data,
        )
        .unwrap();
        let p = EapPacket::parse(&buf[..n]).unwrap();
        assert_eq!(p.eap_type(), Some(EapType::Ttls));
        let f = TlsFragment::parse(p.type_data()).unwrap();
        assert_eq!(f.flags & !flags::LENGTH, flags & !flags::LENGTH);
        assert_eq!(f.message_length, message_length);
        assert_eq!(f.data, data);
    }

    #[test]
    fn fragments_round_trip() {
        round_trip(flags::START, None, b"");
        round_trip(flags::MORE, Some(3000), &[0x16; 1000]);
        round_trip(0, Some(5), &[0x17; 5]);
        round_trip(flags::VERSION, None, &[1, 2, 3]);
        // L in `flags` without a length is cleared: the packet stays well-formed.
        round_trip(flags::LENGTH | flags::MORE, None, &[9; 4]);
    }

    /// Hand-assembled from RFC 5216 §3.1's layout and §3.2's flows: EAP-TLS Start
    /// (Request, Type 13, flags S), a peer's ack (Response, flags 0), and the first of
    /// several fragments (L and M, TLS Message Length 1000, two TLS octets).
    #[test]
    fn known_vectors() {
        let start = [0x01, 0x2a, 0x00, 0x06, 0x0d, 0x20];
        let f = TlsFragment::parse(&start[5..]).unwrap();
        assert!(f.start() && !f.more() && !f.is_ack() && f.version() == 0);
        let mut buf = [0u8; 16];
        let n = write_fragment(
            &mut buf,
            EapCode::Request,
            0x2a,
            EapType::Tls,
            flags::START,
            None,
            b"",
        );
        assert_eq!(&buf[..n.unwrap()], start);

        let ack = [0x02, 0x2b, 0x00, 0x06, 0x0d, 0x00];
        assert!(TlsFragment::parse(&ack[5..]).unwrap().is_ack());

        let first = [
            0x01, 0x2c, 0x00, 0x0c, 0x0d, 0xc0, 0x00, 0x00, 0x03, 0xe8, 0x16, 0x03,
        ];
        let f = TlsFragment::parse(&first[5..]).unwrap();
        assert!(f.more() && !f.is_ack());
        assert_eq!(f.message_length, Some(1000));
        assert_eq!(f.data, [0x16, 0x03]);
        let n = write_fragment(
            &mut buf,
            EapCode::Request,
            0x2c,
            EapType::Tls,
            flags::MORE,
            Some(1000),
            &[0x16, 0x03],
        );
        assert_eq!(&buf[..n.unwrap()], first);

        // RFC 5281 §9.1 / MS-PEAP §2.1: TTLS v0 and PEAP v1 Starts carry the version bits.
        let peap_v1_start = [0x01, 0x01, 0x00, 0x06, 0x19, 0x21];
        let f = TlsFragment::parse(&peap_v1_start[5..]).unwrap();
        assert_eq!((f.start(), f.version()), (true, 1));
        // An ack keeps its version bits.
        assert!(TlsFragment::parse(&[0x01]).unwrap().is_ack());
    }

    #[test]
    fn bad_headers_are_errors() {
        for bad in [
            &[][..],
            &[0x80],
            &[0x80, 0, 0, 0],
            &[0xc0, 0, 0, 0, 1, 0xaa, 0xbb], // says 1 octet, carries 2
        ] {
            assert_eq!(
                TlsFragment::parse(bad).map(|f| f.flags),
                Err(EapError::BadTlsHeader),
                "{bad:?}"
            );
        }
        // The limits: a length that just covers the fragment, a zero-length message, u32::MAX.
        assert!(TlsFragment::parse(&[0x80, 0, 0, 0, 2, 1, 2]).is_ok());
        assert!(TlsFragment::parse(&[0x80, 0, 0, 0, 0]).is_ok());
        assert!(TlsFragment::parse(&[0xc0, 0xff, 0xff, 0xff, 0xff, 1]).is_ok());
        // Not L, not M, not S but data: not an ack.
        assert!(!TlsFragment::parse(&[0x00, 0x17]).unwrap().is_ack());
    }

    #[test]
    fn write_limits() {
        let mut buf = vec![0u8; 70_000];
        // 6 + 65529 = 65535, the largest EAP Length.
        assert_eq!(
            write_fragment(
                &mut buf,
                EapCode::Response,
                1,
                EapType::Peap,
                0,
                None,
                &[0; 65529]
            ),
            Some(65535)
        );
        assert_eq!(
            write_fragment(
                &mut buf,
                EapCode::Response,
                1,
                EapType::Peap,
                0,
                None,
                &[0; 65530]
            ),
            None
        );
        assert_eq!(
            write_fragment(
                &mut buf,
                EapCode::Response,
                1,
                EapType::Peap,
                0,
                Some(65525),
                &[0; 65525]
            ),
            Some(65535)
        );
        // The buffer is exactly the packet, then one octet short.
        let mut exact = [0u8; 10];
        assert_eq!(
            write_fragment(
                &mut exact,
                EapCode::Request,
                1,
                EapType::Tls,
                0,
                None,
                &[1; 4]
            ),
            Some(10)
        );
        assert_eq!(
            write_fragment(
                &mut exact,
                EapCode::Request,
                1,
                EapType::Tls,
                0,
                None,
                &[1; 5]
            ),
            None
        );
    }

    #[test]
    fn debug_hides_data() {
        let f = TlsFragment::parse(&[0x00, 0xde, 0xad]).unwrap();
        let s = format!("{f:?}");
        assert!(s.contains("data_len: 2") && !s.contains("222"), "{s}");
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(f) = TlsFragment::parse(&bytes) {
                let mut buf = [0u8; 80];
                let n = write_fragment(&mut buf, EapCode::Request, 0, EapType::Tls, f.flags,
                    f.message_length, f.data).unwrap();
                prop_assert_eq!(&buf[5..n], &bytes[..]);
            }
        }
    }
}
