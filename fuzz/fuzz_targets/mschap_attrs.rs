//! Untrusted Microsoft vendor attribute values -> the MS-CHAP parsers, and
//! whatever a parse yields -> the crypto that would consume it. Every step
//! must return an error instead of panicking.

#![no_main]

use libfuzzer_sys::fuzz_target;
use radshard::proto::crypto::mschap::{
    self, MsChap2Response, MsChap2Success, MsChapChallenge, MsChapErrorValue, MsChapResponse,
};

fuzz_target!(|data: &[u8]| {
    let hash = [0x42u8; 16];

    if let Ok(MsChapChallenge::V1(c)) = MsChapChallenge::parse(data) {
        std::hint::black_box(mschap::nt_challenge_response_v1(c, &hash));
    }
    if let Ok(r) = MsChapResponse::parse(data) {
        std::hint::black_box(r.uses_nt_response());
        std::hint::black_box(mschap::verify_nt_response_v1(&[0; 8], &hash, r.nt_response));
    }
    if let Ok(r) = MsChap2Response::parse(data) {
        // The same input doubles as the User-Name.
        let name = mschap::strip_domain(data);
        std::hint::black_box(mschap::verify_nt_response(
            &[0; 16],
            r.peer_challenge,
            name,
            &hash,
            r.nt_response,
        ));
    }
    if let Ok(s) = MsChap2Success::parse(data) {
        assert_eq!(MsChap2Success::parse(&s.to_bytes()), Ok(s));
    }
    if let Ok(e) = MsChapErrorValue::parse(data) {
        std::hint::black_box(e.error_code());
    }
    // The same bytes as a password and as a user name.
    std::hint::black_box(mschap::nt_password_hash(data));
    std::hint::black_box(mschap::strip_domain(data));
});
