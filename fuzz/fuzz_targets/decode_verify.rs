//! Untrusted datagram -> parse -> verify -> walk attributes -> unhide.
//! Every step must return an error instead of panicking.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use radshard::proto::{verify_request, verify_response, Packet, Secret};

fn secret() -> &'static Secret {
    static SECRET: OnceLock<Secret> = OnceLock::new();
    SECRET.get_or_init(|| Secret::new("fuzzing-secret").expect("non-empty literal"))
}

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = Packet::parse(data) else {
        return;
    };
    for a in packet.attributes() {
        std::hint::black_box(a);
    }
    for v in packet.vendor_attributes() {
        std::hint::black_box(v.is_well_formed());
        for s in v.sub_attributes() {
            std::hint::black_box(s);
        }
    }
    let _ = verify_response(&packet, &[0; 16], secret());
    for require_ma in [false, true] {
        if let Ok(verified) = verify_request(packet, secret(), require_ma) {
            let mut out = [0u8; 128];
            let _ = std::hint::black_box(verified.user_password(&mut out));
            let _ = std::hint::black_box(verified.chap_password());
            let _ = std::hint::black_box(verified.chap_challenge());
        }
    }
});
