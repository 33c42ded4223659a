//! Framing RADIUS over a byte stream (RADIUS/TCP, RFC 6613 §2.1; RadSec,
//! RFC 6614; RADIUS/1.1, RFC 9765): sans-IO, not wired to a socket yet.
//!
//! A stream has no datagram boundaries: packets are delimited only by their
//! own Length field (octets 2..4 of the header).
//! [`StreamDecoder::decode`](crate::proto::stream::StreamDecoder::decode) takes
//! whatever the transport read and yields whole packets, one per call.
//!
//! Memory is bounded: the decoder owns one 4096-octet buffer, allocated once
//! per connection, and only ever copies the *one* packet that straddles two
//! reads into it. A packet wholly inside the caller's input is returned as a
//! slice of that input, uncopied. Nothing is allocated per packet.
//!
//! Only framing is checked here. The yielded bytes still go through
//! [`crate::proto::Packet::parse`] (or
//! [`crate::proto::radius11::Packet11::parse`]), which checks code and
//! attributes. (Links are absolute: the doc line on `pub mod stream` in
//! `proto/mod.rs` makes rustdoc resolve this text from `proto`.)

use super::{HEADER_LEN, MAX_PACKET_LEN};

/// Octets needed before the Length field can be read: Code, Identifier, Length.
const LENGTH_END: usize = 4;

/// A framing error on a stream. Every variant is fatal: once framing is
/// lost there is no way to find the next packet boundary, so RFC 6613
/// §2.6.1 requires the connection to be closed. The decoder stays in the
/// error state and returns the same error on every later call.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum StreamError {
    /// The Length field is below 20 or above 4096.
    #[error(
        "Length field {declared} outside 20..=4096: stream framing lost, \
         the connection must be closed (RFC 6613 §2.6.1)"
    )]
    BadLength { declared: u16 },
}

impl StreamError {
    /// Stable metrics label, like the other codec errors.
    pub const fn label(&self) -> &'static str {
        match self {
            StreamError::BadLength { .. } => "stream_bad_length",
        }
    }

    /// Always true: spelled out so a transport can write
    /// `if e.must_close() { ... }` and a future non-fatal variant is a
    /// compile-visible change here rather than a silent one there.
    pub const fn must_close(&self) -> bool {
        match self {
            StreamError::BadLength { .. } => true,
        }
    }
}

/// What one [`StreamDecoder::decode`] call did.
#[derive(Debug, PartialEq, Eq)]
pub struct Decoded<'a> {
    /// Octets of the input used; the caller passes the rest on the next call.
    pub consumed: usize,
    /// A whole packet (exactly Length octets), if one was completed.
    pub packet: Option<&'a [u8]>,
}

/// Incremental RADIUS stream framer. One per connection.
pub struct StreamDecoder {
    /// Holds the start of a packet that straddles reads; at most one
    /// maximum-size packet, so memory per connection is fixed at 4 KiB.
    partial: Box<[u8; MAX_PACKET_LEN]>,
    /// Valid octets in `partial`.
    partial_len: usize,
    /// Set on the first framing error; the stream is unusable from then on.
    failed: Option<StreamError>,
}

impl Default for StreamDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl StreamDecoder {
    /// A decoder with an empty buffer (the one allocation it ever makes).
    pub fn new() -> Self {
        StreamDecoder {
            partial: Box::new([0; MAX_PACKET_LEN]),
            partial_len: 0,
            failed: None,
        }
    }

    /// Octets of an incomplete packet held back. Non-zero when the peer
    /// closes means the stream ended mid-packet.
    pub fn buffered(&self) -> usize {
        self.partial_len
    }

    /// Feeds `input` and yields at most one packet.
    ///
    /// Call repeatedly with `&input[consumed..]` until it returns no packet;
    /// by then all of `input` has been consumed (partial data is kept for
    /// the next read). A packet is never split across yields.
    pub fn decode<'a>(&'a mut self, input: &'a [u8]) -> Result<Decoded<'a>, StreamError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        if self.partial_len == 0 {
            return self.decode_direct(input);
        }
        self.decode_buffered(input)
    }

    /// Fast path, nothing held back: hand out packets straight from `input`.
    fn decode_direct<'a>(&'a mut self, input: &'a [u8]) -> Result<Decoded<'a>, StreamError> {
        if let Some(len) = self.checked(frame_len(input))? {
            if let Some(packet) = input.get(..len) {
                return Ok(Decoded {
                    consumed: len,
                    packet: Some(packet),
                });
            }
        }
        // Incomplete: shorter than its Length (< 4096) or than the 4 octets
        // that carry Length, so it fits in `partial`.
        let n = input.len().min(MAX_PACKET_LEN);
        self.partial[..n].copy_from_slice(&input[..n]);
        self.partial_len = n;
        Ok(Decoded {
            consumed: n,
            packet: None,
        })
    }

    /// A packet is partly held back: top it up from `input`, first to the
    /// Length field, then to Length octets.
    fn decode_buffered<'a>(&'a mut self, input: &'a [u8]) -> Result<Decoded<'a>, StreamError> {
        let mut consumed = self.fill(LENGTH_END, input);
        let held = frame_len(&self.partial[..self.partial_len]);
        let Some(len) = self.checked(held)? else {
            return Ok(Decoded {
                consumed,
                packet: None,
            });
        };
        consumed += self.fill(len, &input[consumed..]);
        if self.partial_len < len {
            return Ok(Decoded {
                consumed,
                packet: None,
            });
        }
        self.partial_len = 0;
        Ok(Decoded {
            consumed,
            packet: Some(&self.partial[..len]),
        })
    }

    /// Copies from `input` until `partial` holds `target` octets (or input
    /// runs out); returns the octets copied. `target <= MAX_PACKET_LEN`.
    fn fill(&mut self, target: usize, input: &[u8]) -> usize {
        let n = target.saturating_sub(self.partial_len).min(input.len());
        let start = self.partial_len;
        self.partial[start..start + n].copy_from_slice(&input[..n]);
        self.partial_len += n;
        n
    }

    /// Records a framing error so it sticks: after one, there is no way to
    /// find the next packet boundary.
    fn checked(
        &mut self,
        len: Result<Option<usize>, StreamError>,
    ) -> Result<Option<usize>, StreamError> {
        if let Err(e) = len {
            self.failed = Some(e);
        }
        len
    }
}

/// The Length of the packet starting at `bytes`, once its first four octets
/// are there.
fn frame_len(bytes: &[u8]) -> Result<Option<usize>, StreamError> {
    let Some(&[_, _, hi, lo]) = bytes.first_chunk::<LENGTH_END>() else {
        return Ok(None);
    };
    let declared = u16::from_be_bytes([hi, lo]);
    let len = usize::from(declared);
    if !(HEADER_LEN..=MAX_PACKET_LEN).contains(&len) {
        return Err(StreamError::BadLength { declared });
    }
    Ok(Some(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A packet of `len` octets whose body octets are `fill`.
    fn packet(len: u16, fill: u8) -> Vec<u8> {
        let mut p = vec![fill; usize::from(len)];
        p[0] = 1;
        p[1] = fill;
        p[2..4].copy_from_slice(&len.to_be_bytes());
        p
    }

    /// Feeds `chunks` in order, collecting every packet yielded.
    fn feed(dec: &mut StreamDecoder, chunks: &[&[u8]]) -> Result<Vec<Vec<u8>>, StreamError> {
        let mut out = Vec::new();
        for chunk in chunks {
            let mut rest = *chunk;
            loop {
                let d = dec.decode(rest)?;
                let consumed = d.consumed;
                let done = d.packet.is_none();
                if let Some(p) = d.packet {
                    out.push(p.to_vec());
                }
                rest = &rest[consumed..];
                if done {
                    assert!(rest.is_empty(), "no packet yielded but input left over");
                    break;
                }
            }
        }
        Ok(out)
    }

    #[test]
    fn one_byte_at_a_time() {
        let a = packet(20, 0xaa);
        let b = packet(300, 0xbb);
        let stream: Vec<u8> = [a.clone(), b.clone()].concat();
        let chunks: Vec<&[u8]> = stream.chunks(1).collect();
        let mut dec = StreamDecoder::new();
        assert_eq!(feed(&mut dec, &chunks).unwrap(), vec![a, b]);
        assert_eq!(dec.buffered(), 0);
    }

    #[test]
    fn several_packets_in_one_chunk_are_not_copied() {
        let stream = [packet(20, 1), packet(4096, 2), packet(44, 3)].concat();
        let mut dec = StreamDecoder::new();
        let mut rest = &stream[..];
        let mut lens = Vec::new();
        while let Decoded {
            consumed,
            packet: Some(p),
        } = dec.decode(rest).unwrap()
        {
            // Zero-copy: the packet is a slice of the input itself.
            assert_eq!(p.as_ptr(), rest.as_ptr());
            lens.push(p.len());
            rest = &rest[consumed..];
        }
        assert_eq!(lens, [20, 4096, 44]);
        assert!(rest.is_empty());
    }

    #[test]
    fn split_at_every_offset() {
        let a = packet(20, 0x11);
        let b = packet(1000, 0x22);
        let c = packet(4096, 0x33);
        let stream = [a.clone(), b.clone(), c.clone()].concat();
        for cut in 0..=stream.len() {
            let mut dec = StreamDecoder::new();
            let got = feed(&mut dec, &[&stream[..cut], &stream[cut..]]).unwrap();
            assert_eq!(got, vec![a.clone(), b.clone(), c.clone()], "cut at {cut}");
            assert_eq!(dec.buffered(), 0);
        }
    }

    #[test]
    fn partial_data_waits() {
        let p = packet(100, 7);
        let mut dec = StreamDecoder::new();
        assert_eq!(feed(&mut dec, &[&p[..3]]).unwrap(), Vec::<Vec<u8>>::new());
        assert_eq!(dec.buffered(), 3);
        assert_eq!(feed(&mut dec, &[&p[3..99]]).unwrap(), Vec::<Vec<u8>>::new());
        assert_eq!(dec.buffered(), 99);
        assert_eq!(feed(&mut dec, &[&p[99..]]).unwrap(), vec![p]);
        assert_eq!(
            dec.decode(&[]).unwrap(),
            Decoded {
                consumed: 0,
                packet: None
            }
        );
    }

    #[test]
    fn bad_lengths_are_fatal() {
        for declared in [0u16, 1, 19, 4097, u16::MAX] {
            // Direct path, and behind a good packet and a split header.
            let mut dec = StreamDecoder::new();
            let bad = [1, 0, (declared >> 8) as u8, declared as u8];
            let e = dec.decode(&bad).unwrap_err();
            assert_eq!(e, StreamError::BadLength { declared });
            assert!(e.must_close());
            // Sticky: the stream cannot be resynchronised.
            assert_eq!(dec.decode(&packet(20, 0)).unwrap_err(), e);

            let mut dec = StreamDecoder::new();
            let stream = [packet(20, 0), bad.to_vec()].concat();
            assert_eq!(feed(&mut dec, &[&stream[..22], &stream[22..]]), Err(e));
        }
    }

    #[test]
    fn boundary_lengths_are_fine() {
        let mut dec = StreamDecoder::new();
        let stream = [packet(20, 0), packet(4096, 1)].concat();
        let got = feed(&mut dec, &stream.chunks(7).collect::<Vec<_>>()).unwrap();
        assert_eq!(got.iter().map(Vec::len).collect::<Vec<_>>(), [20, 4096]);
    }
}
