//! TLS messages in EAP fragments (RFC 5216 §2.1.5, §3.1; the same for TTLS and PEAP), the
//! peer's side: [`Inbound`] reassembles what the server sends in fragments (each but the last
//! with M set, which we acknowledge), [`Outbound`] cuts our own flight into fragments of at
//! most `fragment` octets, sent one per server acknowledgement. Sans-IO: bytes in, bytes out.
//!
//! The buffers are the conversation's and are reused from one login to the next.

use crate::proto::eap::tls::{flags, write_fragment, TlsFragment};
use crate::proto::eap::{EapCode, EapType};

/// The longest TLS message we reassemble. A server's flight is a few kB (its chain, a CA
/// list); this only bounds what a broken or hostile server can make us buffer.
pub const INBOUND_MAX: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FragmentError {
    #[error("a TLS message longer than {INBOUND_MAX} octets")]
    TooLong,
    #[error("fragments that do not add up to the announced TLS Message Length")]
    LengthMismatch,
    #[error("a fragment with M set and no data")]
    EmptyFragment,
}

/// Where reassembly stands after a fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// More fragments follow: acknowledge this one.
    More,
    /// The message is whole: [`Inbound::data`].
    Complete,
}

#[derive(Debug, Default)]
pub struct Inbound {
    buf: Vec<u8>,
    /// The TLS Message Length the first fragment announced, if it did.
    expected: Option<u32>,
}

impl Inbound {
    pub fn push(&mut self, frag: &TlsFragment<'_>) -> Result<Progress, FragmentError> {
        if let Some(len) = frag.message_length {
            if len as usize > INBOUND_MAX {
                return Err(FragmentError::TooLong);
            }
            match self.expected {
                // L may be repeated on later fragments (RFC 5216 §3.1), but must agree.
                Some(e) if e != len => return Err(FragmentError::LengthMismatch),
                Some(_) => {}
                None if self.buf.is_empty() => self.expected = Some(len),
                None => return Err(FragmentError::LengthMismatch),
            }
        }
        if self.buf.len() + frag.data.len() > INBOUND_MAX {
            return Err(FragmentError::TooLong);
        }
        self.buf.extend_from_slice(frag.data);
        if let Some(e) = self.expected {
            if self.buf.len() > e as usize {
                return Err(FragmentError::LengthMismatch);
            }
        }
        if frag.more() {
            if frag.data.is_empty() {
                return Err(FragmentError::EmptyFragment);
            }
            return Ok(Progress::More);
        }
        match self.expected {
            Some(e) if e as usize != self.buf.len() => Err(FragmentError::LengthMismatch),
            _ => Ok(Progress::Complete),
        }
    }

    /// The reassembled message (after [`Progress::Complete`]).
    pub fn data(&self) -> &[u8] {
        &self.buf
    }

    pub fn clear(&mut self) {
        self.buf.clear();
        self.expected = None;
    }
}

/// Our TLS flight and how much of it has gone out.
#[derive(Debug, Default)]
pub struct Outbound {
    buf: Vec<u8>,
    sent: usize,
}

impl Outbound {
    /// Where the TLS layer writes the flight (rustls's `write_tls` appends to it).
    pub fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Whether part of the flight still waits for the server's acknowledgement.
    pub fn pending(&self) -> bool {
        self.sent > 0 && self.sent < self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Writes the next fragment as a whole EAP-Response into `out`. The first fragment
    /// carries L and the TLS Message Length (always, even when it is the only one: RFC 5216
    /// allows it and it costs four octets); every fragment but the last carries M. When the
    /// last one is written the flight is dropped. An empty flight gives an acknowledgement.
    /// `None` when `out` is too small.
    pub fn next_fragment(
        &mut self,
        out: &mut [u8],
        identifier: u8,
        eap_type: EapType,
        version: u8,
        fragment: usize,
    ) -> Option<usize> {
        let version = version & flags::VERSION;
        if self.buf.is_empty() {
            return write_fragment(
                out,
                EapCode::Response,
                identifier,
                eap_type,
                version,
                None,
                &[],
            );
        }
        let total = u32::try_from(self.buf.len()).ok()?;
        let first = self.sent == 0;
        let end = (self.sent + fragment).min(self.buf.len());
        let more = end < self.buf.len();
        let flags = version | if more { flags::MORE } else { 0 };
        let n = write_fragment(
            out,
            EapCode::Response,
            identifier,
            eap_type,
            flags,
            first.then_some(total),
            &self.buf[self.sent..end],
        )?;
        if more {
            self.sent = end;
        } else {
            self.clear();
        }
        Some(n)
    }

    pub fn clear(&mut self) {
        self.buf.clear();
        self.sent = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::eap::EapPacket;

    fn frag(flags: u8, len: Option<u32>, data: &[u8]) -> TlsFragment<'_> {
        TlsFragment {
            flags,
            message_length: len,
            data,
        }
    }

    #[test]
    fn inbound_reassembles_and_checks_lengths() {
        let mut i = Inbound::default();
        assert_eq!(
            i.push(&frag(flags::MORE, Some(5), b"ab")),
            Ok(Progress::More)
        );
        assert_eq!(i.push(&frag(flags::MORE, None, b"cd")), Ok(Progress::More));
        assert_eq!(i.push(&frag(0, None, b"e")), Ok(Progress::Complete));
        assert_eq!(i.data(), b"abcde");
        i.clear();
        // Unfragmented, with or without L.
        assert_eq!(i.push(&frag(0, None, b"xyz")), Ok(Progress::Complete));
        i.clear();
        assert_eq!(i.push(&frag(0, Some(3), b"xyz")), Ok(Progress::Complete));
        i.clear();
        // Short, long, disagreeing L, empty M fragment, too long.
        i.push(&frag(flags::MORE, Some(5), b"ab")).unwrap();
        assert_eq!(
            i.push(&frag(0, None, b"c")),
            Err(FragmentError::LengthMismatch)
        );
        i.clear();
        i.push(&frag(flags::MORE, Some(3), b"ab")).unwrap();
        assert_eq!(
            i.push(&frag(0, None, b"cd")),
            Err(FragmentError::LengthMismatch)
        );
        i.clear();
        i.push(&frag(flags::MORE, Some(5), b"ab")).unwrap();
        assert_eq!(
            i.push(&frag(flags::MORE, Some(6), b"cd")),
            Err(FragmentError::LengthMismatch)
        );
        i.clear();
        assert_eq!(
            i.push(&frag(flags::MORE, None, b"")),
            Err(FragmentError::EmptyFragment)
        );
        i.clear();
        assert_eq!(
            i.push(&frag(flags::MORE, Some(INBOUND_MAX as u32 + 1), b"a")),
            Err(FragmentError::TooLong)
        );
    }

    #[test]
    fn outbound_fragments_with_l_on_the_first_and_m_on_all_but_the_last() {
        let mut o = Outbound::default();
        o.buffer().extend_from_slice(&[7u8; 2500]);
        let mut out = [0u8; 2048];
        let mut seen = Vec::new();
        let mut got = Vec::new();
        for id in 0..3u8 {
            let n = o
                .next_fragment(&mut out, id, EapType::Peap, 0, 1024)
                .unwrap();
            let p = EapPacket::parse(&out[..n]).unwrap();
            assert_eq!(p.identifier(), id);
            let f = TlsFragment::parse(p.type_data()).unwrap();
            seen.push((f.message_length, f.more(), f.data.len()));
            got.extend_from_slice(f.data);
            assert_eq!(o.pending(), id < 2);
        }
        assert_eq!(
            seen,
            [
                (Some(2500), true, 1024),
                (None, true, 1024),
                (None, false, 452)
            ]
        );
        assert_eq!(got, vec![7u8; 2500]);
        assert!(o.is_empty());
        // Nothing to send: an acknowledgement keeps the version bits and nothing else.
        let n = o
            .next_fragment(&mut out, 9, EapType::Ttls, 1, 1024)
            .unwrap();
        let p = EapPacket::parse(&out[..n]).unwrap();
        let f = TlsFragment::parse(p.type_data()).unwrap();
        assert!(f.is_ack() && f.version() == 1);
    }
}
