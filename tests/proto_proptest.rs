//! Property tests: build -> parse round trips, and no panics on hostile input.

use proptest::prelude::*;
use radshard::proto::{attr, verify_request, verify_response, Code, Packet, PacketBuilder, Secret};

fn secret() -> Secret {
    Secret::new("proptest-secret").expect("non-empty")
}

/// Attribute types the builder treats as plain TLVs (no MA, which the
/// builder owns, and no User-Password, which is added separately).
fn plain_type() -> impl Strategy<Value = u8> {
    any::<u8>().prop_filter("builder-owned types", |t| {
        *t != attr::MESSAGE_AUTHENTICATOR && *t != attr::USER_PASSWORD
    })
}

fn attrs() -> impl Strategy<Value = Vec<(u8, Vec<u8>)>> {
    prop::collection::vec(
        (plain_type(), prop::collection::vec(any::<u8>(), 0..=253)),
        0..12,
    )
}

/// A signed Access-Request with a Message-Authenticator, as bytes.
fn signed_request(attrs: &[(u8, Vec<u8>)], password: &[u8], ra: [u8; 16]) -> Vec<u8> {
    let s = secret();
    let mut buf = [0u8; 4096];
    let mut b = PacketBuilder::request(&mut buf, Code::AccessRequest, 7, &ra).expect("fits");
    b.message_authenticator().expect("fits");
    b.user_password(&s, password).expect("fits");
    for (t, v) in attrs {
        b.attr(*t, v).expect("fits in 4096");
    }
    b.finish(&s).expect("signs").to_vec()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn build_parse_round_trip(
        attrs in attrs(),
        password in prop::collection::vec(1u8..=255, 1..=128),
        ra in any::<[u8; 16]>(),
    ) {
        let bytes = signed_request(&attrs, &password, ra);
        let p = Packet::parse(&bytes).expect("builder output parses");
        let s = secret();
        let v = verify_request(p, &s, true).expect("builder output verifies");
        let got: Vec<(u8, Vec<u8>)> = v
            .attributes()
            .filter(|a| a.typ != attr::MESSAGE_AUTHENTICATOR && a.typ != attr::USER_PASSWORD)
            .map(|a| (a.typ, a.value.to_vec()))
            .collect();
        prop_assert_eq!(&got, &attrs);
        let mut out = [0u8; 128];
        prop_assert_eq!(v.user_password(&mut out).expect("unhides"), &password[..]);

        // And a reply to it, with Proxy-States copied, verifies client-side.
        let mut rbuf = [0u8; 4096];
        let mut rb = PacketBuilder::reply(&mut rbuf, Code::AccessAccept, &v).expect("fits");
        rb.attr(attr::REPLY_MESSAGE, b"hi").expect("fits");
        if let Ok(reply) = rb.finish(&s) {
            let r = Packet::parse(reply).expect("reply parses");
            prop_assert!(verify_response(&r, &ra, &s).is_ok());
            let proxies_in = v.attributes().filter(|a| a.typ == attr::PROXY_STATE).count();
            let proxies_out = r.attributes().filter(|a| a.typ == attr::PROXY_STATE).count();
            prop_assert_eq!(proxies_in, proxies_out);
        }
    }

    #[test]
    fn parse_and_verify_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..5000)) {
        let s = secret();
        if let Ok(p) = Packet::parse(&bytes) {
            prop_assert!(p.len() <= bytes.len());
            let _ = p.attributes().count();
            let _ = p.vendor_attributes().flat_map(|v| v.sub_attributes()).count();
            let _ = verify_response(&p, &[0; 16], &s);
            if let Ok(v) = verify_request(p, &s, false) {
                let mut out = [0u8; 128];
                let _ = v.user_password(&mut out);
                let _ = v.chap_password();
                let _ = v.chap_challenge();
            }
        }
    }

    #[test]
    fn mutated_valid_packets_never_panic(
        attrs in attrs(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        truncate in any::<prop::sample::Index>(),
        do_truncate in any::<bool>(),
    ) {
        let mut bytes = signed_request(&attrs, b"pw", [3; 16]);
        for (i, x) in flips {
            let i = i.index(bytes.len());
            bytes[i] ^= x;
        }
        if do_truncate {
            bytes.truncate(truncate.index(bytes.len() + 1));
        }
        let s = secret();
        if let Ok(p) = Packet::parse(&bytes) {
            let _ = p.attributes().count();
            if let Ok(v) = verify_request(p, &s, false) {
                let mut out = [0u8; 128];
                let _ = v.user_password(&mut out);
            }
        }
    }
}
