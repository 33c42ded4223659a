//! The RADIUS/1.1 edge (`radsec::radius11`) fed what a peer controls: on the server side an
//! arbitrary RADIUS/1.1 request; on the client side an arbitrary RADIUS/1.1 reply to a
//! request of ours.
//!
//! Server side: a request that translates must verify as RADIUS/1.0 with the client's
//! secret (its User-Password revealing to what was sent in the clear); the shard's reply to
//! it must translate back, carrying the request's Token, and only once.
//! Client side: a reply that translates must verify as the home server's reply to our
//! request (Response Authenticator, Message-Authenticator) and match only once.
//!
//! Input: octet 0 picks the side (bit 0 clear: server, set: client) and, for the server, the
//! client entry's Message-Authenticator needs (bit 1: always, bit 2: with Proxy-State); the
//! rest is the packet.

#![no_main]

use libfuzzer_sys::fuzz_target;
use radshard::proto::radius11::Packet11;
use radshard::proto::{
    verify_request, verify_response, Code, Packet, PacketBuilder, Secret, EAP_MESSAGE,
    MAX_PACKET_LEN, PROXY_STATE, USER_NAME, USER_PASSWORD,
};
use radshard::radsec::radius11::{ClientEdge, MaNeeds, ServerEdge};

fuzz_target!(|data: &[u8]| {
    let Some((&side, wire)) = data.split_first() else {
        return;
    };
    let secret = Secret::new("radsec").expect("non-empty");
    if side & 1 == 0 {
        let ma = MaNeeds {
            always: side & 2 != 0,
            with_proxy_state: side & 4 != 0,
        };
        server(wire, &secret, ma);
    } else {
        client(wire, &secret);
    }
});

fn server(wire: &[u8], secret: &Secret, ma: MaNeeds) {
    let mut edge = ServerEdge::new(secret.clone(), ma);
    let mut out = [0u8; MAX_PACKET_LEN];
    let Ok(r10) = edge.request(wire, std::time::Instant::now(), &mut out) else {
        return;
    };
    let r10 = r10.to_vec();
    let p11 = Packet11::parse(wire).expect("translated, so it parses");
    let p = Packet::parse(&r10).expect("our own packet parses");
    // A Message-Authenticator exactly where the client entry makes the shard insist on one.
    let needs_ma = p.code() == Code::AccessRequest
        && (ma.always
            || p11.attr(EAP_MESSAGE).is_some()
            || (ma.with_proxy_state && p11.attr(PROXY_STATE).is_some()));
    assert_eq!(
        p.message_authenticator_offset().is_some(),
        needs_ma || p.code() == Code::StatusServer
    );
    let v = verify_request(p, secret, needs_ma).expect("and verifies");
    if let Some(plain) = p11.attr(USER_PASSWORD) {
        let mut pw = [0u8; 128];
        if let Ok(got) = v.user_password(&mut pw) {
            // Hiding pads with NULs, which revealing strips.
            let trimmed = plain
                .iter()
                .rposition(|&b| b != 0)
                .map_or(&[][..], |i| &plain[..=i]);
            assert_eq!(got, trimmed);
        }
    }
    let mut rbuf = [0u8; MAX_PACKET_LEN];
    let code = if v.code() == Code::AccountingRequest {
        Code::AccountingResponse
    } else {
        Code::AccessAccept
    };
    let Ok(mut b) = PacketBuilder::reply(&mut rbuf, code, &v) else {
        return;
    };
    if b.attr(USER_NAME, b"bob").is_err() {
        return;
    }
    let Ok(reply) = b.finish(secret) else {
        return;
    };
    let reply = reply.to_vec();
    let mut out11 = [0u8; MAX_PACKET_LEN];
    let back = edge
        .reply(&reply, &mut out11)
        .expect("the shard's reply translates");
    let back = Packet11::parse(back).expect("and parses as RADIUS/1.1");
    assert_eq!(back.token(), p11.token());
    assert!(
        edge.reply(&reply, &mut out11).is_err(),
        "answered once only"
    );
}

fn client(wire: &[u8], secret: &Secret) {
    let mut edge = ClientEdge::new(secret.clone());
    let ra = [7u8; 16];
    let mut buf = [0u8; MAX_PACKET_LEN];
    let mut b = PacketBuilder::request(&mut buf, Code::AccessRequest, 5, &ra).expect("ok");
    b.message_authenticator().expect("ok");
    b.attr(USER_NAME, b"bob").expect("ok");
    b.user_password(secret, b"pw").expect("ok");
    let req = b.finish(secret).expect("ok").to_vec();
    let mut out = [0u8; MAX_PACKET_LEN];
    let sent = edge
        .request(&req, std::time::Instant::now(), &mut out)
        .expect("ours translates")
        .to_vec();
    let token = Packet11::parse(&sent).expect("parses").token();
    // The input as a reply; with the Token of our request written in, when long enough.
    let mut reply = wire.to_vec();
    if reply.len() >= 8 && reply[0] % 2 == 0 {
        reply[4..8].copy_from_slice(&token);
    }
    let mut out10 = [0u8; MAX_PACKET_LEN];
    let Ok(r10) = edge.reply(&reply, &mut out10) else {
        return;
    };
    let p = Packet::parse(r10).expect("our own packet parses");
    assert_eq!(p.identifier(), 5);
    verify_response(&p, &ra, secret).expect("verifies as the home server's reply");
    assert!(edge.reply(&reply, &mut out10).is_err(), "matched once only");
}
