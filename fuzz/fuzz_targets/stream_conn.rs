//! Arbitrary bytes through a RADIUS/TCP connection (`radsec::conn::Connection::plain`, the
//! path of `[tcp]` and, after TLS, of RadSec), read in input-chosen chunks as the shard's
//! reader does: `receive`, then `next_packet` until it has nothing. Asserts the packets
//! handed out concatenate to a prefix of the stream, each has a valid Length equal to its
//! size, and once the connection fails it stays failed; replies queued with `send` come
//! back whole from `write_tls`, and `receive` never refuses a read once the last was framed.
//!
//! Input: octet 0 = chunk size (1..=256), the rest is the stream.

#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use radshard::proto::MAX_PACKET_LEN;
use radshard::radsec::conn::{Connection, Inbound};

fuzz_target!(|data: &[u8]| {
    let Some((&size, stream)) = data.split_first() else {
        return;
    };
    let size = usize::from(size) + 1;
    let now = Instant::now();
    let mut conn = Connection::plain(now, Duration::from_secs(60));
    let mut out = [0u8; MAX_PACKET_LEN];
    let mut yielded = 0usize;
    let mut framing_lost = false;
    for chunk in stream.chunks(size) {
        if conn.receive(chunk).is_err() {
            // Room for a chunk is always there once the last was framed: never here.
            panic!("receive refused a {}-octet chunk", chunk.len());
        }
        loop {
            match conn.next_packet(&mut out, now) {
                Ok(Some(Inbound::Dropped(e))) => panic!("no RADIUS/1.1 on plain TCP: {e}"),
                Ok(Some(Inbound::Packet(p))) => {
                    let len = usize::from(u16::from_be_bytes([p[2], p[3]]));
                    assert_eq!(len, p.len());
                    assert!((20..=MAX_PACKET_LEN).contains(&len));
                    assert_eq!(&stream[yielded..yielded + len], p);
                    yielded += len;
                    conn.send(p).expect("a reply fits");
                }
                Ok(None) => break,
                Err(_) => {
                    framing_lost = true;
                    break;
                }
            }
        }
        if framing_lost {
            break;
        }
    }
    if framing_lost {
        // A framing error is fatal and sticks.
        assert!(conn.next_packet(&mut out, now).is_err());
    }
    let mut echoed = Vec::new();
    conn.write_tls(&mut echoed);
    assert_eq!(&echoed[..], &stream[..yielded]);
});
