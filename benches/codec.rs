//! Codec hot-path benchmarks. Targets on the 2-core dev box:
//! decode+verify <= 1.5 us, build+sign <= 1 us.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use radshard::proto::{attr, verify_request, Code, Packet, PacketBuilder, Secret};

fn access_request(secret: &Secret) -> Vec<u8> {
    let mut buf = [0u8; 512];
    let mut b =
        PacketBuilder::request(&mut buf, Code::AccessRequest, 1, &[0x42; 16]).expect("fits");
    b.message_authenticator().expect("fits");
    b.attr(attr::USER_NAME, b"alice@example.com").expect("fits");
    b.user_password(secret, b"correct horse").expect("fits");
    b.attr(attr::NAS_IP_ADDRESS, &[10, 0, 0, 1]).expect("fits");
    b.attr(attr::NAS_PORT, &[0, 0, 0, 7]).expect("fits");
    b.attr(attr::CALLING_STATION_ID, b"00-11-22-33-44-55")
        .expect("fits");
    b.attr(attr::PROXY_STATE, b"proxy-state-1").expect("fits");
    b.finish(secret).expect("signs").to_vec()
}

fn accounting_request(secret: &Secret) -> Vec<u8> {
    let mut buf = [0u8; 512];
    let mut b =
        PacketBuilder::request(&mut buf, Code::AccountingRequest, 2, &[0; 16]).expect("fits");
    b.attr(attr::ACCT_STATUS_TYPE, &[0, 0, 0, 1]).expect("fits");
    b.attr(attr::ACCT_SESSION_ID, b"0123456789abcdef")
        .expect("fits");
    b.attr(attr::USER_NAME, b"alice@example.com").expect("fits");
    b.attr(attr::NAS_IP_ADDRESS, &[10, 0, 0, 1]).expect("fits");
    b.attr(attr::EVENT_TIMESTAMP, &[0x65, 0, 0, 0])
        .expect("fits");
    b.finish(secret).expect("signs").to_vec()
}

fn benches(c: &mut Criterion) {
    let secret = Secret::new("a-realistic-shared-secret").expect("non-empty");
    let req = access_request(&secret);
    let acct = accounting_request(&secret);

    c.bench_function("decode_verify_access_request", |b| {
        b.iter(|| {
            let p = Packet::parse(black_box(&req)).expect("valid");
            let v = verify_request(p, &secret, true).expect("verifies");
            let mut out = [0u8; 128];
            let pw = v.user_password(&mut out).expect("unhides");
            black_box(pw.len());
        })
    });

    let p = Packet::parse(&req).expect("valid");
    let v = verify_request(p, &secret, true).expect("verifies");
    c.bench_function("build_sign_access_accept", |b| {
        let mut buf = [0u8; 4096];
        b.iter(|| {
            // Five attributes: MA (automatic), three set here, Proxy-State copied.
            let mut pb =
                PacketBuilder::reply(&mut buf, Code::AccessAccept, black_box(&v)).expect("fits");
            pb.attr(attr::SERVICE_TYPE, &[0, 0, 0, 2]).expect("fits");
            pb.attr(attr::SESSION_TIMEOUT, &[0, 0, 0x0e, 0x10])
                .expect("fits");
            pb.attr(attr::FILTER_ID, b"std.acl").expect("fits");
            black_box(pb.finish(&secret).expect("signs").len());
        })
    });

    c.bench_function("verify_accounting_request", |b| {
        b.iter(|| {
            let p = Packet::parse(black_box(&acct)).expect("valid");
            black_box(
                verify_request(p, &secret, false)
                    .expect("verifies")
                    .identifier(),
            );
        })
    });
}

criterion_group!(codec, benches);
criterion_main!(codec);
