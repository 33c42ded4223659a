//! Behavioural tests of the codec's edges: every DecodeError, every
//! VerifyError, builder limits, Proxy-State copying, VSA walking.

use radshard::proto::{
    attr, verify_request, verify_response, BuildError, Code, DecodeError, Packet, PacketBuilder,
    Secret, Verified, VerifyError, MAX_PACKET_LEN,
};

fn secret() -> Secret {
    Secret::new("testing123").expect("non-empty")
}

fn header(code: u8, len: u16) -> Vec<u8> {
    let mut v = vec![code, 9];
    v.extend_from_slice(&len.to_be_bytes());
    v.extend_from_slice(&[0x11; 16]);
    v
}

/// Builds a signed Access-Request with the given extra attributes.
fn access_request(buf: &mut [u8], with_ma: bool, extra: &[(u8, &[u8])]) -> Vec<u8> {
    let s = secret();
    let mut b = PacketBuilder::request(buf, Code::AccessRequest, 42, &[0x5c; 16]).expect("fits");
    if with_ma {
        b.message_authenticator().expect("fits");
    }
    b.attr(attr::USER_NAME, b"alice").expect("fits");
    b.user_password(&s, b"wonderland").expect("fits");
    for (t, v) in extra {
        b.attr(*t, v).expect("fits");
    }
    b.finish(&s).expect("signs").to_vec()
}

#[test]
fn decode_errors() {
    assert_eq!(Packet::parse(&[1; 19]).err(), Some(DecodeError::TooShort));
    assert_eq!(
        Packet::parse(&vec![0; MAX_PACKET_LEN + 1]).err(),
        Some(DecodeError::TooLong { received: 4097 })
    );
    for declared in [0u16, 19, 4097, 21] {
        let b = header(1, declared);
        assert_eq!(
            Packet::parse(&b).err(),
            Some(DecodeError::BadLength {
                declared,
                received: 20
            }),
        );
    }
    assert_eq!(
        Packet::parse(&header(99, 20)).err(),
        Some(DecodeError::UnknownCode(99))
    );

    let mut b = header(1, 22);
    b.extend_from_slice(&[1, 1]);
    assert_eq!(
        Packet::parse(&b).err(),
        Some(DecodeError::AttributeTooShort { offset: 20 })
    );
    b[21] = 3;
    assert_eq!(
        Packet::parse(&b).err(),
        Some(DecodeError::AttributeOverrun { offset: 20 })
    );
    // A lone type octet: the attribute header itself overruns.
    let mut b = header(1, 21);
    b.push(1);
    assert_eq!(
        Packet::parse(&b).err(),
        Some(DecodeError::AttributeOverrun { offset: 20 })
    );

    let mut b = header(1, 20 + 36);
    for _ in 0..2 {
        b.extend_from_slice(&[80, 18]);
        b.extend_from_slice(&[0; 16]);
    }
    assert_eq!(
        Packet::parse(&b).err(),
        Some(DecodeError::DuplicateMessageAuthenticator)
    );
    let mut b = header(1, 20 + 17);
    b.extend_from_slice(&[80, 17]);
    b.extend_from_slice(&[0; 15]);
    assert_eq!(
        Packet::parse(&b).err(),
        Some(DecodeError::BadMessageAuthenticatorLength)
    );

    let labels = [
        DecodeError::TooShort.label(),
        DecodeError::TooLong { received: 1 }.label(),
        DecodeError::BadLength {
            declared: 1,
            received: 1,
        }
        .label(),
        DecodeError::UnknownCode(0).label(),
        DecodeError::AttributeTooShort { offset: 0 }.label(),
        DecodeError::DuplicateMessageAuthenticator.label(),
        DecodeError::BadMessageAuthenticatorLength.label(),
    ];
    assert_eq!(labels[0], "too_short");
    assert_eq!(labels[4], "malformed_attribute");
    assert!(labels
        .iter()
        .all(|l| l.bytes().all(|c| c.is_ascii_lowercase() || c == b'_')));
}

#[test]
fn padding_past_length_is_ignored() {
    let mut buf = [0u8; 256];
    let mut p = access_request(&mut buf, true, &[]);
    let len = p.len();
    p.extend_from_slice(&[0xee; 10]);
    let packet = Packet::parse(&p).expect("valid");
    assert_eq!(packet.len(), len);
    assert_eq!(packet.as_bytes(), &p[..len]);
    verify_request(packet, &secret(), true).expect("padding is outside the MA");
}

#[test]
fn access_request_message_authenticator_rules() {
    let s = secret();
    let mut buf = [0u8; 256];
    let with = access_request(&mut buf, true, &[]);
    let without = access_request(&mut buf, false, &[]);
    let eap = access_request(&mut buf, false, &[(attr::EAP_MESSAGE, &[2, 1, 0, 4])]);

    let p = Packet::parse(&with).expect("valid");
    assert!(verify_request(p, &s, true).is_ok());
    let p = Packet::parse(&without).expect("valid");
    assert!(verify_request(p, &s, false).is_ok());
    assert_eq!(
        verify_request(p, &s, true).err(),
        Some(VerifyError::MissingMessageAuthenticator)
    );
    let p = Packet::parse(&eap).expect("valid");
    assert_eq!(
        verify_request(p, &s, false).err(),
        Some(VerifyError::MissingMessageAuthenticator)
    );
    let other = Secret::new("wrong").expect("ok");
    let p = Packet::parse(&with).expect("valid");
    assert_eq!(
        verify_request(p, &other, false).err(),
        Some(VerifyError::BadMessageAuthenticator)
    );
}

#[test]
fn status_server_requires_message_authenticator() {
    let s = secret();
    let mut buf = [0u8; 64];
    let b = PacketBuilder::request(&mut buf, Code::StatusServer, 1, &[7; 16]).expect("fits");
    let pkt = b.finish(&s).expect("signs").to_vec();
    let p = Packet::parse(&pkt).expect("valid");
    assert!(
        p.message_authenticator_offset().is_some(),
        "added automatically"
    );
    verify_request(p, &s, false).expect("verifies");

    // Even an Accounting-Response to Status-Server is authenticated.
    let v = verify_request(p, &s, false).expect("verifies");
    let mut out = [0u8; 64];
    let reply = PacketBuilder::reply(&mut out, Code::AccountingResponse, &v)
        .expect("fits")
        .finish(&s)
        .expect("signs");
    let r = Packet::parse(reply).expect("valid");
    assert_eq!(r.message_authenticator_offset(), Some(20));
    verify_response(&r, v.authenticator(), &s).expect("verifies");

    let bare = header(12, 20);
    let p = Packet::parse(&bare).expect("valid");
    assert_eq!(
        verify_request(p, &s, false).err(),
        Some(VerifyError::MissingMessageAuthenticator)
    );
}

#[test]
fn non_requests_are_refused() {
    let s = secret();
    for code in [2u8, 3, 5, 11, 13, 41, 42, 44, 45] {
        let b = header(code, 20);
        let p = Packet::parse(&b).expect("valid");
        assert_eq!(
            verify_request(p, &s, false).err(),
            Some(VerifyError::NotARequest)
        );
    }
    let b = header(1, 20);
    let p = Packet::parse(&b).expect("valid");
    assert_eq!(
        verify_response(&p, &[0; 16], &s),
        Err(VerifyError::NotAResponse)
    );
}

#[test]
fn coa_and_disconnect_round_trip() {
    let s = secret();
    for code in [Code::CoaRequest, Code::DisconnectRequest] {
        let mut buf = [0u8; 128];
        let mut b = PacketBuilder::request(&mut buf, code, 3, &[0; 16]).expect("fits");
        b.attr(attr::ACCT_SESSION_ID, b"sess-1").expect("fits");
        b.message_authenticator().expect("fits");
        let req = b.finish(&s).expect("signs").to_vec();
        let p = Packet::parse(&req).expect("valid");
        let v = verify_request(p, &s, false).expect("verifies");
        let mut out = [0u8; 128];
        let reply_code = if code == Code::CoaRequest {
            Code::CoaAck
        } else {
            Code::DisconnectAck
        };
        let reply = PacketBuilder::reply(&mut out, reply_code, &v)
            .expect("fits")
            .finish(&s)
            .expect("signs")
            .to_vec();
        let r = Packet::parse(&reply).expect("valid");
        assert_eq!(r.message_authenticator_offset(), None);
        verify_response(&r, v.authenticator(), &s).expect("verifies");
    }
}

fn verified_with_proxy_state<'a>(bytes: &'a [u8], s: &'a Secret) -> Verified<'a> {
    verify_request(Packet::parse(bytes).expect("valid"), s, true).expect("verifies")
}

#[test]
fn reply_copies_proxy_state_in_order_and_puts_ma_first() {
    let s = secret();
    let mut buf = [0u8; 256];
    let req = access_request(
        &mut buf,
        true,
        &[
            (attr::PROXY_STATE, b"one"),
            (attr::NAS_PORT, &[0, 0, 0, 1]),
            (attr::PROXY_STATE, b"two"),
        ],
    );
    let v = verified_with_proxy_state(&req, &s);
    let mut out = [0u8; 256];
    let mut b = PacketBuilder::reply(&mut out, Code::AccessReject, &v).expect("fits");
    b.attr(attr::REPLY_MESSAGE, b"no").expect("fits");
    let reply = b.finish(&s).expect("signs");
    let p = Packet::parse(reply).expect("valid");
    assert_eq!(p.identifier(), 42);
    let attrs: Vec<(u8, Vec<u8>)> = p.attributes().map(|a| (a.typ, a.value.to_vec())).collect();
    assert_eq!(attrs[0].0, attr::MESSAGE_AUTHENTICATOR);
    assert_eq!(
        &attrs[1..],
        &[
            (attr::REPLY_MESSAGE, b"no".to_vec()),
            (attr::PROXY_STATE, b"one".to_vec()),
            (attr::PROXY_STATE, b"two".to_vec()),
        ]
    );
    verify_response(&p, v.authenticator(), &s).expect("verifies");
}

#[test]
fn builder_limits() {
    let s = secret();
    let mut tiny = [0u8; 19];
    assert_eq!(
        PacketBuilder::request(&mut tiny, Code::AccessRequest, 0, &[0; 16]).err(),
        Some(BuildError::BufferTooSmall)
    );
    let mut buf = [0u8; 40];
    assert_eq!(
        PacketBuilder::request(&mut buf, Code::AccessAccept, 0, &[0; 16]).err(),
        Some(BuildError::WrongPacketKind)
    );
    let mut b = PacketBuilder::request(&mut buf, Code::AccessRequest, 0, &[0; 16]).expect("fits");
    assert_eq!(b.attr(1, &[0; 254]), Err(BuildError::ValueTooLong));
    assert_eq!(b.attr(1, &[0; 19]), Err(BuildError::BufferTooSmall));
    assert_eq!(b.vsa(9, 1, &[0; 248]), Err(BuildError::ValueTooLong));
    assert_eq!(b.raw(&[1, 1]), Err(BuildError::MalformedRaw));
    assert_eq!(b.raw(&[1, 4, 0]), Err(BuildError::MalformedRaw));
    let mut ma = vec![80, 18];
    ma.extend_from_slice(&[0; 16]);
    assert_eq!(b.raw(&ma), Err(BuildError::MalformedRaw));
    assert_eq!(
        b.tunnel_password(&s, 0, 1, b"x"),
        Err(BuildError::WrongPacketKind)
    );
    b.raw(&[1, 3, b'x', 5, 6, 0, 0, 0, 1]).expect("fits");
    assert_eq!(b.len(), 29);

    let mut big = vec![0u8; 8192];
    let mut b = PacketBuilder::request(&mut big, Code::AccessRequest, 0, &[0; 16]).expect("fits");
    let mut err = None;
    for _ in 0..20 {
        if let Err(e) = b.attr(attr::CLASS, &[0xab; 253]) {
            err = Some(e);
            break;
        }
    }
    assert_eq!(err, Some(BuildError::PacketTooLong));
    assert!(b.len() <= MAX_PACKET_LEN);

    // user_password only makes sense on Access-Request.
    let mut buf = [0u8; 128];
    let mut b =
        PacketBuilder::request(&mut buf, Code::AccountingRequest, 0, &[0; 16]).expect("fits");
    assert_eq!(b.user_password(&s, b"pw"), Err(BuildError::WrongPacketKind));
}

#[test]
fn message_authenticator_is_never_duplicated() {
    let s = secret();
    let mut buf = [0u8; 128];
    let mut b = PacketBuilder::request(&mut buf, Code::AccessRequest, 0, &[1; 16]).expect("fits");
    b.message_authenticator().expect("fits");
    b.message_authenticator().expect("idempotent");
    b.attr(attr::MESSAGE_AUTHENTICATOR, &[9; 16])
        .expect("routed");
    let out = b.finish(&s).expect("signs").to_vec();
    let p = Packet::parse(&out).expect("no duplicate");
    verify_request(p, &s, true).expect("verifies");
}

#[test]
fn vendor_attributes_walk_and_tolerate_garbage() {
    let mut buf = [0u8; 256];
    let mut b = PacketBuilder::request(&mut buf, Code::AccessRequest, 0, &[1; 16]).expect("fits");
    b.vsa(9, 1, b"cisco-avpair").expect("fits");
    // Non-standard layout: yielded raw, sub-attributes stop early.
    b.attr(attr::VENDOR_SPECIFIC, &[0, 0, 0, 42, 0xff, 0x00, 1])
        .expect("fits");
    // Too short for a Vendor-Id: skipped by vendor_attributes().
    b.attr(attr::VENDOR_SPECIFIC, &[0, 0]).expect("fits");
    let out = b.finish(&secret()).expect("signs").to_vec();
    let p = Packet::parse(&out).expect("valid");
    let vsas: Vec<_> = p.vendor_attributes().collect();
    assert_eq!(vsas.len(), 2);
    assert_eq!(vsas[0].vendor, 9);
    assert!(vsas[0].is_well_formed());
    let subs: Vec<_> = vsas[0].sub_attributes().collect();
    assert_eq!((subs[0].vtype, subs[0].value), (1, &b"cisco-avpair"[..]));
    assert_eq!(vsas[1].vendor, 42);
    assert!(!vsas[1].is_well_formed());
    assert_eq!(vsas[1].data, &[0xff, 0x00, 1]);
    assert_eq!(vsas[1].sub_attributes().count(), 0);
    assert_eq!(p.vendor_attr(9, 1), Some(&b"cisco-avpair"[..]));
    assert_eq!(p.vendor_attr(9, 2), None);
}

#[test]
fn debug_output_hides_secrets_and_values() {
    let s = secret();
    let mut buf = [0u8; 256];
    let req = access_request(&mut buf, true, &[]);
    let v = verified_with_proxy_state(&req, &s);
    let dbg = format!("{v:?}");
    assert!(!dbg.contains("testing123"));
    assert!(dbg.contains("<redacted>"));
    assert!(!dbg.contains("alice"));
}
