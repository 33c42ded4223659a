//! Untrusted EAP: the bytes as one EAP packet, and the same bytes cut into EAP-Message
//! attributes of a (signed) Access-Request at lengths the input chooses, reassembled. Every
//! step must answer an error instead of panicking, and a reassembly must give back exactly the
//! octets that went in.

#![no_main]

use libfuzzer_sys::fuzz_target;
use radshard::proto::eap::{reassemble, EapPacket, MAX_EAP_LEN};
use radshard::proto::{verify_request, Code, Packet, PacketBuilder, Secret, EAP_MESSAGE};

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = EapPacket::parse(data) {
        std::hint::black_box((p.code(), p.identifier(), p.eap_type(), p.type_data()));
    }
    // First octet: the attribute size (1..=253) the rest is cut into.
    let Some((&cut, eap)) = data.split_first() else {
        return;
    };
    let cut = usize::from(cut).clamp(1, 253);
    let secret = Secret::new("fuzz").expect("secret");
    let mut buf = [0u8; 4096];
    let Ok(mut b) = PacketBuilder::request(&mut buf, Code::AccessRequest, 1, &[3; 16]) else {
        return;
    };
    if b.message_authenticator().is_err() {
        return;
    }
    for chunk in eap.chunks(cut) {
        if b.attr(EAP_MESSAGE, chunk).is_err() {
            return; // does not fit a RADIUS packet
        }
    }
    let Ok(bytes) = b.finish(&secret) else {
        return;
    };
    let bytes = bytes.to_vec();
    let Ok(packet) = Packet::parse(&bytes) else {
        return;
    };
    let Ok(v) = verify_request(packet, &secret, true) else {
        return;
    };
    let mut out = [0u8; MAX_EAP_LEN];
    if let Ok(p) = reassemble(&v, &mut out) {
        assert_eq!(p.as_bytes(), eap);
    }
});
