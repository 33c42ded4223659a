//! Arbitrary bytes through the stream framer, split at input-chosen points,
//! and as a RADIUS/1.1 packet.
//!
//! Input: octet 0 = k (mod 32), the next k octets are chunk sizes used in
//! turn (s < 128: s + 1 octets; otherwise (s - 127) * 32, up to 4096), the
//! rest is the stream (k = 0: one chunk). Asserts every yielded packet has a
//! valid Length equal to its size, the yielded packets concatenate to a
//! prefix of the stream, all input is consumed or held back (< 4096 octets),
//! and a framing error is a real bad Length and sticks. Whatever parses as
//! RADIUS/1.1 must rebuild to the same code, Token and attributes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use radshard::proto::radius11::{Builder11, Packet11};
use radshard::proto::stream::{StreamDecoder, StreamError};
use radshard::proto::{Code, MAX_PACKET_LEN};

fn chunk_size(s: u8) -> usize {
    if s < 128 {
        usize::from(s) + 1
    } else {
        usize::from(s - 127) * 32
    }
}

fn check_stream(sizes: &[u8], stream: &[u8]) {
    let mut dec = StreamDecoder::new();
    let mut fed = 0; // octets of `stream` handed to the decoder
    let mut yielded = 0; // octets of `stream` yielded as packets
    let mut i = 0;
    while fed < stream.len() {
        let size = match sizes.get(i % sizes.len().max(1)) {
            Some(&s) => chunk_size(s),
            None => stream.len(),
        };
        i += 1;
        let chunk = &stream[fed..stream.len().min(fed + size)];
        fed += chunk.len();
        let mut rest = chunk;
        loop {
            let d = match dec.decode(rest) {
                Ok(d) => d,
                Err(e) => {
                    let StreamError::BadLength { declared } = e;
                    // The packet that failed starts right after the last
                    // yielded one and its Length really is out of range.
                    let at = &stream[yielded + 2..yielded + 4];
                    assert_eq!(u16::from_be_bytes([at[0], at[1]]), declared);
                    assert!(!(20..=4096).contains(&declared));
                    assert!(e.must_close());
                    assert_eq!(dec.decode(b"\x01\x00\x00\x14"), Err(e), "sticky");
                    return;
                }
            };
            assert!(d.consumed <= rest.len());
            let consumed = d.consumed;
            let Some(p) = d.packet else {
                assert_eq!(consumed, rest.len(), "no packet, input left over");
                break;
            };
            assert!((20..=MAX_PACKET_LEN).contains(&p.len()));
            assert_eq!(usize::from(u16::from_be_bytes([p[2], p[3]])), p.len());
            assert_eq!(p, &stream[yielded..yielded + p.len()], "not a prefix");
            yielded += p.len();
            let _ = Packet11::parse(p).map(round_trip);
            rest = &rest[consumed..];
        }
    }
    assert_eq!(yielded + dec.buffered(), stream.len());
    assert!(dec.buffered() < MAX_PACKET_LEN);
}

/// Rebuilds a parsed RADIUS/1.1 packet and checks it reads back the same.
fn round_trip(p: Packet11<'_>) {
    let mut req_buf = [0u8; 20];
    let mut buf = [0u8; MAX_PACKET_LEN];
    let mut b = if p.code().is_request() {
        Builder11::request(&mut buf, p.code(), p.token()).expect("request code")
    } else {
        // A reply needs a request with the token; this one has no
        // Proxy-State, so none is added at finish.
        let req = Builder11::request(&mut req_buf, Code::AccessRequest, p.token())
            .and_then(Builder11::finish)
            .expect("header fits");
        let req = Packet11::parse(req).expect("own request parses");
        Builder11::reply(&mut buf, p.code(), &req).expect("reply code")
    };
    for a in p.attributes() {
        b.attr(a.typ, a.value).expect("parsed attribute fits");
    }
    let rebuilt = b.finish().expect("no longer than the original");
    let q = Packet11::parse(rebuilt).expect("rebuilt packet parses");
    assert_eq!(q.code(), p.code());
    assert_eq!(q.token(), p.token());
    assert!(!q.had_message_authenticator());
    assert!(p.attributes().eq(q.attributes()));
    assert_eq!(q.user_password(), p.user_password());
    assert_eq!(&rebuilt[1..2], &[0]);
    assert_eq!(&rebuilt[8..20], &[0; 12]);
}

fuzz_target!(|data: &[u8]| {
    let Some((&k, rest)) = data.split_first() else {
        return;
    };
    let k = usize::from(k % 32).min(rest.len());
    let (sizes, stream) = rest.split_at(k);
    check_stream(sizes, stream);
    if let Ok(p) = Packet11::parse(data) {
        round_trip(p);
    }
});
