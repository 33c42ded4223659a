//! Known-answer tests: the RFC 2865 §7 examples, plus vectors for the
//! mechanisms the RFCs give no examples for, computed independently with
//! Python's `hashlib`/`hmac` (script in the comment of each constant).

use radshard::proto::crypto::{mppe, tunnel_password, user_password};
use radshard::proto::{
    attr, chap_verify, verify_request, verify_response, Code, Packet, PacketBuilder, Secret,
    VerifyError,
};

const SECRET: &[u8] = b"xyzzy5461";

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn secret() -> Secret {
    Secret::new(SECRET).expect("non-empty")
}

/// RFC 2865 §7.1: User Telnet to Specified Host (Access-Request).
const RFC_7_1_REQUEST: &str = "01 00 00 38 0f 40 3f 94 73 97 80 57 bd 83 d5 cb
    98 f4 22 7a 01 06 6e 65 6d 6f 02 12 0d be 70 8d
    93 d4 13 ce 31 96 e4 3f 78 2a 0a ee 04 06 c0 a8
    01 10 05 06 00 00 00 03";
/// RFC 2865 §7.1: the Access-Accept.
const RFC_7_1_ACCEPT: &str = "02 00 00 26 86 fe 22 0e 76 24 ba 2a 10 05 f6 bf
    9b 55 e0 b2 06 06 00 00 00 01 0f 06 00 00 00 00
    0e 06 c0 a8 01 03";
/// RFC 2865 §7.2: Framed User Authenticating with CHAP (Access-Request).
const RFC_7_2_REQUEST: &str = "01 01 00 47 2a ee 86 f0 8d 0d 55 96 9c a5 97 8e
    0d 33 67 a2 01 08 66 6c 6f 70 73 79 03 13 16 e9
    75 57 c3 16 18 58 95 f2 93 ff 63 44 07 72 75 04
    06 c0 a8 01 10 05 06 00 00 00 14 06 06 00 00 00
    02 07 06 00 00 00 01";
/// RFC 2865 §7.2: the Access-Accept.
const RFC_7_2_ACCEPT: &str = "02 01 00 38 15 ef bc 7d ab 26 cf a3 dc 34 d9 c0
    3c 86 01 a4 06 06 00 00 00 02 07 06 00 00 00 01
    08 06 ff ff ff fe 0a 06 00 00 00 02 0d 06 00 00
    00 01 0c 06 00 00 05 dc";

/// The §7.1 request with a Message-Authenticator appended. Python:
/// `hmac.new(b"xyzzy5461", pkt_with_zero_ma, hashlib.md5).digest()`.
const REQUEST_WITH_MA: &str = "0100004a0f403f9473978057bd83d5cb98f4227a01066e656d6f02120dbe708d
    93d413ce3196e43f782a0aee0406c0a80110050600000003501263b78a6b9d2f
    149989fbf57ea21d194c";
/// Access-Accept answering REQUEST_WITH_MA with Message-Authenticator first
/// and the §7.1 reply attributes. Python: MA = HMAC-MD5 over the packet with
/// the request authenticator in the header and MA zeroed; then
/// `md5(packet_with_ma + secret)` into the header.
const ACCEPT_WITH_MA: &str = "02000038c13e8f5e21426df8a8fffcc5569ce9fc501204121386280130d5ef8e
    d8072ba8058d0606000000010f06000000000e06c0a80103";
/// Accounting-Request id 7: Acct-Status-Type=Start, Acct-Session-Id "abc",
/// NAS-IP-Address. Python: `md5(pkt_with_zero_auth + secret)`.
const ACCOUNTING: &str =
    "04070025457f7b2cf624435d36d503786b9ffbfb2806000000012c056162630406c0a80110";
/// Accounting-Request id 8 with a Message-Authenticator (HMAC over zero
/// authenticator), then the Request Authenticator over the result.
const ACCOUNTING_WITH_MA: &str = "040800310925020ddc61ad3af53b4d00dbf2bd662806000000012c05616263
    5012acec8fb683774aad5c83d54ccc82cb28";
/// MS-MPPE-Send-Key value for key 00..0f, salt 0x8001, request authenticator
/// of §7.1 (RFC 2548 §2.4.2 algorithm in Python).
const MPPE_VALUE: &str = "8001d74fd77a66159af1c00e2603ed8f8a2da18214fcd796204e7e1edd8c11cafce2";
/// Tunnel-Password value for tag 1, salt 0x8123, "tunnelpass", request
/// authenticator of §7.1 (RFC 2868 §3.5 algorithm in Python).
const TUNNEL_VALUE: &str = "018123bdcdc166247f5a7d14a3414df83b62b1";

#[test]
fn rfc2865_7_1_request_decodes_and_password_unhides() {
    let bytes = hex(RFC_7_1_REQUEST);
    let p = Packet::parse(&bytes).expect("valid");
    assert_eq!(p.code(), Code::AccessRequest);
    assert_eq!(p.identifier(), 0);
    assert_eq!(p.len(), 56);
    assert_eq!(p.attributes().count(), 4);
    assert_eq!(p.attr(attr::USER_NAME), Some(&b"nemo"[..]));
    assert_eq!(p.attr(attr::NAS_IP_ADDRESS), Some(&[192, 168, 1, 16][..]));
    assert_eq!(p.attr(attr::NAS_PORT), Some(&[0, 0, 0, 3][..]));
    assert_eq!(p.message_authenticator_offset(), None);

    let s = secret();
    let v = verify_request(p, &s, false).expect("no MA required");
    assert_eq!(v.user_name(), Some(&b"nemo"[..]));
    let mut out = [0u8; 128];
    assert_eq!(v.user_password(&mut out).expect("unhide"), b"arctangent");
    // BlastRADIUS mode refuses the (MA-less) RFC example.
    assert_eq!(
        verify_request(p, &s, true).err(),
        Some(VerifyError::MissingMessageAuthenticator)
    );
}

#[test]
fn rfc2865_7_1_request_is_reproduced_by_the_builder() {
    let req = hex(RFC_7_1_REQUEST);
    let s = secret();
    let ra: [u8; 16] = req[4..20].try_into().expect("16");
    let mut buf = [0u8; 4096];
    let mut b = PacketBuilder::request(&mut buf, Code::AccessRequest, 0, &ra).expect("fits");
    b.attr(attr::USER_NAME, b"nemo").expect("fits");
    b.user_password(&s, b"arctangent").expect("fits");
    b.attr(attr::NAS_IP_ADDRESS, &[192, 168, 1, 16])
        .expect("fits");
    b.attr(attr::NAS_PORT, &[0, 0, 0, 3]).expect("fits");
    assert_eq!(b.finish(&s).expect("signs"), &req[..]);
}

#[test]
fn rfc2865_7_1_accept_response_authenticator() {
    let req = hex(RFC_7_1_REQUEST);
    let acc = hex(RFC_7_1_ACCEPT);
    let ra: [u8; 16] = req[4..20].try_into().expect("16");
    let p = Packet::parse(&acc).expect("valid");
    assert_eq!(p.code(), Code::AccessAccept);
    assert_eq!(p.attr(attr::SERVICE_TYPE), Some(&[0, 0, 0, 1][..]));
    verify_response(&p, &ra, &secret()).expect("RFC response authenticator");
    let wrong = Secret::new("xyzzy5462").expect("ok");
    assert_eq!(
        verify_response(&p, &ra, &wrong),
        Err(VerifyError::BadResponseAuthenticator)
    );
}

#[test]
fn rfc2865_7_2_chap_request_and_accept() {
    let req = hex(RFC_7_2_REQUEST);
    let p = Packet::parse(&req).expect("valid");
    assert_eq!(p.identifier(), 1);
    assert_eq!(p.attributes().count(), 6);
    let s = secret();
    let v = verify_request(p, &s, false).expect("ok");
    assert_eq!(v.user_name(), Some(&b"flopsy"[..]));
    let (ident, response) = v.chap_password().expect("17-octet CHAP-Password");
    assert_eq!(ident, 22);
    // No CHAP-Challenge attribute: the Request Authenticator is the challenge.
    assert_eq!(v.chap_challenge(), &req[4..20]);
    // The example's CHAP secret is "arctangent", like §7.1's password.
    assert!(chap_verify(
        ident,
        b"arctangent",
        v.chap_challenge(),
        response
    ));
    assert!(!chap_verify(
        ident,
        b"arctangenT",
        v.chap_challenge(),
        response
    ));
    assert!(!chap_verify(
        ident ^ 1,
        b"arctangent",
        v.chap_challenge(),
        response
    ));

    let acc = hex(RFC_7_2_ACCEPT);
    let a = Packet::parse(&acc).expect("valid");
    let ra: [u8; 16] = req[4..20].try_into().expect("16");
    verify_response(&a, &ra, &s).expect("RFC response authenticator");
    assert_eq!(a.attributes().count(), 6);
}

#[test]
fn message_authenticator_vector_request() {
    let bytes = hex(REQUEST_WITH_MA);
    let p = Packet::parse(&bytes).expect("valid");
    assert_eq!(p.message_authenticator_offset(), Some(56));
    let s = secret();
    let v = verify_request(p, &s, true).expect("MA verifies");
    assert!(v.has_message_authenticator());

    // And the builder produces exactly these bytes.
    let ra: [u8; 16] = bytes[4..20].try_into().expect("16");
    let mut buf = [0u8; 256];
    let mut b = PacketBuilder::request(&mut buf, Code::AccessRequest, 0, &ra).expect("fits");
    b.attr(attr::USER_NAME, b"nemo").expect("fits");
    b.user_password(&s, b"arctangent").expect("fits");
    b.attr(attr::NAS_IP_ADDRESS, &[192, 168, 1, 16])
        .expect("fits");
    b.attr(attr::NAS_PORT, &[0, 0, 0, 3]).expect("fits");
    b.message_authenticator().expect("fits");
    assert_eq!(b.finish(&s).expect("signs"), &bytes[..]);

    // Any flipped bit in the packet breaks the MA.
    for i in 20..bytes.len() {
        let mut m = bytes.clone();
        m[i] ^= 0x01;
        if let Ok(p) = Packet::parse(&m) {
            assert!(verify_request(p, &s, true).is_err(), "octet {i}");
        }
    }
}

#[test]
fn message_authenticator_vector_reply() {
    let req = hex(REQUEST_WITH_MA);
    let s = secret();
    let v = verify_request(Packet::parse(&req).expect("valid"), &s, true).expect("ok");
    let mut buf = [0u8; 512];
    let mut b = PacketBuilder::reply(&mut buf, Code::AccessAccept, &v).expect("fits");
    b.attr(attr::SERVICE_TYPE, &[0, 0, 0, 1]).expect("fits");
    b.attr(15, &[0, 0, 0, 0]).expect("fits");
    b.attr(14, &[192, 168, 1, 3]).expect("fits");
    let out = b.finish(&s).expect("signs");
    assert_eq!(out, &hex(ACCEPT_WITH_MA)[..]);
    let p = Packet::parse(out).expect("valid");
    assert_eq!(p.message_authenticator_offset(), Some(20), "MA first");
    verify_response(&p, v.authenticator(), &s).expect("verifies");
}

#[test]
fn accounting_request_authenticator_vectors() {
    let s = secret();
    for (vector, with_ma) in [(ACCOUNTING, false), (ACCOUNTING_WITH_MA, true)] {
        let bytes = hex(vector);
        let p = Packet::parse(&bytes).expect("valid");
        let v = verify_request(p, &s, false).expect("verifies");
        assert_eq!(v.has_message_authenticator(), with_ma);

        let mut buf = [0u8; 256];
        // The authenticator argument is ignored for Accounting-Request.
        let mut b =
            PacketBuilder::request(&mut buf, Code::AccountingRequest, bytes[1], &[0xaa; 16])
                .expect("fits");
        b.attr(attr::ACCT_STATUS_TYPE, &[0, 0, 0, 1]).expect("fits");
        b.attr(attr::ACCT_SESSION_ID, b"abc").expect("fits");
        if with_ma {
            b.message_authenticator().expect("fits");
        } else {
            b.attr(attr::NAS_IP_ADDRESS, &[192, 168, 1, 16])
                .expect("fits");
        }
        assert_eq!(b.finish(&s).expect("signs"), &bytes[..]);

        let mut bad = bytes.clone();
        bad[5] ^= 1;
        let p = Packet::parse(&bad).expect("valid framing");
        assert_eq!(
            verify_request(p, &s, false).err(),
            Some(VerifyError::BadRequestAuthenticator)
        );
    }
}

#[test]
fn mppe_key_vector_and_round_trip() {
    let s = secret();
    let ra: [u8; 16] = hex(RFC_7_1_REQUEST)[4..20].try_into().expect("16");
    let key: Vec<u8> = (0u8..16).collect();
    let mut out = [0u8; mppe::MAX_VALUE_LEN];
    let value = mppe::encrypt(&s, &ra, 0x8001, &key, &mut out).expect("fits");
    assert_eq!(value, &hex(MPPE_VALUE)[..]);
    let mut plain = [0u8; 240];
    assert_eq!(
        mppe::decrypt(&s, &ra, value, &mut plain).expect("ok"),
        &key[..]
    );
    // 32-octet keys (MPPE 128-bit send+recv material) round-trip too.
    let key = [0x5a; 32];
    let value = mppe::encrypt(&s, &ra, 0x0002, &key, &mut out).expect("fits");
    assert_eq!(value[0] & 0x80, 0x80, "salt high bit forced");
    assert_eq!(
        mppe::decrypt(&s, &ra, value, &mut plain).expect("ok"),
        &key[..]
    );
}

#[test]
fn mppe_key_in_reply_is_a_microsoft_vsa() {
    let req = hex(REQUEST_WITH_MA);
    let s = secret();
    let v = verify_request(Packet::parse(&req).expect("valid"), &s, true).expect("ok");
    let mut buf = [0u8; 512];
    let mut b = PacketBuilder::reply(&mut buf, Code::AccessAccept, &v).expect("fits");
    let key: Vec<u8> = (0u8..16).collect();
    b.mppe_key(&s, attr::MS_MPPE_SEND_KEY, 0x8001, &key)
        .expect("fits");
    let out = b.finish(&s).expect("signs");
    let p = Packet::parse(out).expect("valid");
    let value = p
        .vendor_attr(attr::MICROSOFT, attr::MS_MPPE_SEND_KEY)
        .expect("present");
    assert_eq!(value, &hex(MPPE_VALUE)[..]);
}

#[test]
fn tunnel_password_vector_and_round_trip() {
    let s = secret();
    let ra: [u8; 16] = hex(RFC_7_1_REQUEST)[4..20].try_into().expect("16");
    let mut out = [0u8; tunnel_password::MAX_VALUE_LEN];
    let value =
        tunnel_password::encrypt(&s, &ra, 1, 0x8123, b"tunnelpass", &mut out).expect("fits");
    assert_eq!(value, &hex(TUNNEL_VALUE)[..]);
    let mut plain = [0u8; 240];
    assert_eq!(
        tunnel_password::decrypt(&s, &ra, value, &mut plain).expect("ok"),
        (1, &b"tunnelpass"[..])
    );
}

#[test]
fn user_password_hide_matches_rfc() {
    let req = hex(RFC_7_1_REQUEST);
    let ra: [u8; 16] = req[4..20].try_into().expect("16");
    let mut out = [0u8; 128];
    let hidden = user_password::hide(&secret(), &ra, b"arctangent", &mut out).expect("fits");
    assert_eq!(hidden, &req[28..44]);
}
