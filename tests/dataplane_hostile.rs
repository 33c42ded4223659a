//! Hostile input: 100k garbage and mutated datagrams from a configured client address. Every one
//! must be dropped and counted under some reason, none answered, and the server must still
//! answer a valid request afterwards.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use radshard::metrics::DropReason;
use radshard::proto::{Code, Packet, Secret};

const TOTAL: usize = 100_000;
const BURST: usize = 1000;

/// xorshift64*: cheap enough in the debug profile to make ~125 MB of noise quickly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// The kinds of hostile datagram, with the drop reason each must land in (None: any reason;
/// random bytes are classified by length only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Random,
    TruncatedBelowHeader,
    TruncatedInBody,
    LengthTooSmall,
    LengthTooLarge,
    LengthByteFlipped,
    AttrLenZero,
    AttrLenOne,
    AttrOverrun,
    Oversized,
    UnknownCode,
    ReplyCode,
    WrongSecret,
}

const MUTATIONS: &[Kind] = &[
    Kind::TruncatedBelowHeader,
    Kind::TruncatedInBody,
    Kind::LengthTooSmall,
    Kind::LengthTooLarge,
    Kind::LengthByteFlipped,
    Kind::AttrLenZero,
    Kind::AttrLenOne,
    Kind::AttrOverrun,
    Kind::Oversized,
    Kind::UnknownCode,
    Kind::ReplyCode,
    Kind::WrongSecret,
];

impl Kind {
    /// The reason a datagram of this kind must be counted under, when it is determined.
    fn reason(self) -> Option<DropReason> {
        Some(match self {
            Kind::Random | Kind::LengthTooSmall | Kind::LengthByteFlipped => return None,
            Kind::TruncatedBelowHeader => DropReason::TooShort,
            Kind::TruncatedInBody | Kind::LengthTooLarge => DropReason::BadLength,
            Kind::AttrLenZero | Kind::AttrLenOne | Kind::AttrOverrun => {
                DropReason::MalformedAttribute
            }
            Kind::Oversized => DropReason::TooLong,
            Kind::UnknownCode => DropReason::UnknownCode,
            Kind::ReplyCode => DropReason::NotARequest,
            Kind::WrongSecret => DropReason::BadMessageAuthenticator,
        })
    }
}

fn set_len(p: &mut [u8], len: usize) {
    p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
}

fn hostile(rng: &mut Rng, kind: Kind, sec: &Secret, wrong: &Secret) -> Vec<u8> {
    let mut auth = [0u8; 16];
    rng.fill(&mut auth);
    // User-Name, User-Password, NAS-Identifier, with the Message-Authenticator first.
    let mut p = access_request(sec, rng.next() as u8, &auth, "alice", "alice-pw", true);
    let len = p.len();
    // The first attribute (Message-Authenticator) starts at 20, the second at 38.
    match kind {
        Kind::Random => {
            let mut d = vec![0u8; rng.below(5000)];
            rng.fill(&mut d);
            return d;
        }
        Kind::TruncatedBelowHeader => p.truncate(rng.below(20)),
        Kind::TruncatedInBody => p.truncate(20 + rng.below(len - 20)),
        Kind::LengthTooSmall => set_len(&mut p, 20 + rng.below(len - 20)),
        Kind::LengthTooLarge => set_len(&mut p, len + 1 + rng.below(5000)),
        Kind::LengthByteFlipped => {
            let i = 2 + rng.below(2);
            p[i] ^= 1 << rng.below(8);
        }
        Kind::AttrLenZero => p[38 + 1] = 0,
        Kind::AttrLenOne => p[38 + 1] = 1,
        Kind::AttrOverrun => {
            // The last attribute claims more octets than the packet has left.
            let mut off = 20;
            let mut last = 20;
            while off < len {
                last = off;
                off += p[off + 1] as usize;
            }
            let left = len - last;
            p[last + 1] = (left + 1 + rng.below(255 - left)) as u8;
        }
        Kind::Oversized => {
            let total = 4097 + rng.below(5000 - 4097);
            let mut pad = vec![0u8; total - len];
            rng.fill(&mut pad);
            p.extend_from_slice(&pad);
        }
        Kind::UnknownCode => {
            p[0] = loop {
                let c = rng.next() as u8;
                if radshard::proto::Code::from_u8(c).is_none() {
                    break c;
                }
            }
        }
        Kind::ReplyCode => p[0] = [2u8, 3, 5, 11, 13, 41, 42, 44, 45][rng.below(9)],
        Kind::WrongSecret => p = access_request(wrong, 1, &auth, "alice", "alice-pw", true),
    }
    p
}

#[test]
fn hostile_datagrams_are_all_dropped_and_counted() {
    let s = TestServer::start(2, STANDARD_BODY);
    let c = RadClient::new();
    c.sock.set_nonblocking(false).expect("blocking sends");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    println!("hostile input seed: {seed:#x}");
    let mut rng = Rng(seed);
    let (sec, wrong) = (secret(SECRET), secret("not-testing123"));
    let started = Instant::now();

    // Zero-length datagrams first: they are datagrams too, and must be seen and counted.
    for _ in 0..5 {
        c.send(&[], s.auth);
    }
    assert!(
        s.wait_received(5, Duration::from_secs(5)),
        "empty datagrams reach the server (received {})",
        s.received()
    );
    assert_eq!(
        s.dropped(DropReason::TooShort),
        5,
        "{:?}",
        s.drop_breakdown()
    );
    let mut sent = 5usize;
    let mut by_kind: BTreeMap<Kind, usize> = BTreeMap::new();
    let mut expected: BTreeMap<&str, u64> = BTreeMap::new();
    expected.insert(DropReason::TooShort.label(), 5);
    // Datagrams whose reason is fixed by their length alone.
    let (mut shorter_than_header, mut longer_than_max) = (5u64, 0u64);

    while sent < TOTAL {
        let n = BURST.min(TOTAL - sent);
        for i in 0..n {
            let kind = if (sent + i) % 2 == 0 {
                Kind::Random
            } else {
                MUTATIONS[rng.below(MUTATIONS.len())]
            };
            let d = hostile(&mut rng, kind, &sec, &wrong);
            if d.len() < 20 {
                shorter_than_header += 1;
            } else if d.len() > 4096 {
                longer_than_max += 1;
            } else if kind != Kind::Random {
                // A well-formed mutation must not verify: it is never the original packet.
                assert!(
                    Packet::parse(&d).is_err()
                        || radshard::proto::verify_request(Packet::parse(&d).unwrap(), &sec, true)
                            .is_err(),
                    "{kind:?} mutation is still valid"
                );
            }
            if let Some(r) = kind.reason() {
                *expected.entry(r.label()).or_default() += 1;
            }
            *by_kind.entry(kind).or_default() += 1;
            c.send(&d, s.auth);
        }
        sent += n;
        // Let the server catch up so the socket buffers never overflow.
        assert!(
            s.wait_received(sent as u64, Duration::from_secs(10)),
            "server stalled: received {} of {sent} (drops {:?})",
            s.received(),
            s.drop_breakdown()
        );
    }
    let elapsed = started.elapsed();

    let breakdown = s.drop_breakdown();
    println!(
        "{sent} hostile datagrams in {elapsed:?}; kinds {by_kind:?}\nper-reason drops: {breakdown:?}"
    );
    assert_eq!(s.received(), sent as u64);
    assert_eq!(
        s.total_drops(),
        sent as u64,
        "every hostile datagram is dropped and counted: {breakdown:?}"
    );
    assert_eq!(
        s.sum(|m| m.replies.iter().map(|c| c.get()).sum()),
        0,
        "none answered"
    );
    assert_eq!(s.sum(|m| m.send_errors.get()), 0);
    assert_eq!(
        s.dropped(DropReason::TooShort),
        shorter_than_header,
        "exactly the datagrams shorter than a header are too_short"
    );
    assert_eq!(
        s.dropped(DropReason::TooLong),
        longer_than_max,
        "exactly the datagrams over 4096 octets are too_long"
    );
    for (label, min) in &expected {
        let got = breakdown.get(label).copied().unwrap_or(0);
        assert!(
            got >= *min,
            "{label}: {got} < {min} expected from the mutations"
        );
    }
    c.sock.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 64];
    assert!(
        c.sock.recv_from(&mut buf).is_err(),
        "no reply to anything hostile"
    );
    c.sock.set_nonblocking(false).unwrap();

    // Still serving.
    let req = access_request(&sec, 1, &random_authenticator(), "alice", "alice-pw", true);
    let reply = c
        .exchange(&req, s.auth)
        .expect("a valid request is answered");
    assert_eq!(check_reply(&reply, &req, &sec), Code::AccessAccept);
}
