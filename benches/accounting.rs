//! Accounting hot path: formatting one record as a JSON line (dictionary lookups, value
//! formatting, escaping). The fsync is measured by the load tests, not here.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use radshard::accounting::record::{write_record, Origin, Scratch};
use radshard::dict::Dictionary;
use radshard::proto::{attr, verify_request, Code, Packet, PacketBuilder, Secret};

fn accounting_request(secret: &Secret) -> Vec<u8> {
    let mut buf = [0u8; 512];
    let mut b =
        PacketBuilder::request(&mut buf, Code::AccountingRequest, 9, &[0; 16]).expect("fits");
    b.attr(attr::ACCT_STATUS_TYPE, &3u32.to_be_bytes())
        .expect("fits");
    b.attr(attr::ACCT_SESSION_ID, b"0000c0ffee").expect("fits");
    b.attr(attr::USER_NAME, b"user0042").expect("fits");
    b.attr(attr::NAS_IP_ADDRESS, &[10, 0, 0, 1]).expect("fits");
    b.attr(attr::NAS_PORT, &42u32.to_be_bytes()).expect("fits");
    b.attr(attr::NAS_PORT_TYPE, &19u32.to_be_bytes())
        .expect("fits");
    b.attr(attr::FRAMED_IP_ADDRESS, &[10, 1, 2, 3])
        .expect("fits");
    b.attr(attr::CALLING_STATION_ID, b"00-11-22-33-44-55")
        .expect("fits");
    b.attr(46, &3600u32.to_be_bytes()).expect("fits"); // Acct-Session-Time
    b.attr(42, &123_456u32.to_be_bytes()).expect("fits"); // Acct-Input-Octets
    b.attr(43, &654_321u32.to_be_bytes()).expect("fits"); // Acct-Output-Octets
    b.finish(secret).expect("fits").to_vec()
}

fn bench(c: &mut Criterion) {
    let secret = Secret::new("testing123").expect("secret");
    let bytes = accounting_request(&secret);
    let dict = Dictionary::builtin();
    let mut out = Vec::with_capacity(1 << 20);
    let mut scratch = Scratch::default();
    let origin = Origin {
        client: "localhost",
        nas: "127.0.0.1:40000".parse().expect("addr"),
        shard: 0,
        when: (1_764_124_200, 42),
        session: None,
    };
    c.bench_function("write_accounting_record_11_attributes", |b| {
        b.iter(|| {
            let req = verify_request(
                Packet::parse(black_box(&bytes)).expect("parse"),
                &secret,
                false,
            )
            .expect("verify");
            out.clear();
            write_record(&mut out, &mut scratch, &req, origin, &dict);
            black_box(out.len())
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
