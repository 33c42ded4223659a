//! encode → to_wire → format_value round trips, per type.

use std::path::Path;

use radshard::dict::{AttrKey, Dictionary, EncodeError, Encrypt, Layout};

fn dict() -> Dictionary {
    let mut d = Dictionary::builtin();
    d.load_str(
        "VENDOR USR 429 format=4,0\n\
         VENDOR Lucent 4846 format=2,1\n\
         VENDOR Starent 8164 format=2,2\n\
         VENDOR WiMAX 24757 format=1,1,c\n\
         BEGIN-VENDOR USR\n\
         ATTRIBUTE USR-Last-Number-Dialed-Out 0x0066 string\n\
         ATTRIBUTE USR-Big 0x12345678 integer\n\
         END-VENDOR USR\n\
         BEGIN-VENDOR Lucent\nATTRIBUTE Lucent-Max-Shared-Users 2 integer\nEND-VENDOR Lucent\n\
         BEGIN-VENDOR Starent\nATTRIBUTE SN-VPN-Name 2 string\nEND-VENDOR Starent\n\
         BEGIN-VENDOR WiMAX\n\
         ATTRIBUTE WiMAX-Capability 1 tlv\n\
         ATTRIBUTE WiMAX-Release 1.1 string\n\
         ATTRIBUTE WiMAX-Test-Blob 99 octets\n\
         END-VENDOR WiMAX\n\
         ATTRIBUTE Frag-Status 241.1 integer\n\
         ATTRIBUTE IP-Port-Limit-Info 241.5 tlv\n\
         ATTRIBUTE IP-Port-Limit 241.5.2 integer\n\
         ATTRIBUTE Test-Long 245.1 octets\n\
         VENDOR FreeRADIUS 11344\n\
         BEGIN-VENDOR FreeRADIUS format=Extended-Vendor-Specific-5\n\
         ATTRIBUTE FreeRADIUS-Anonce 1 octets\n\
         END-VENDOR FreeRADIUS\n\
         ATTRIBUTE Test-Int64 3001 integer64\n\
         ATTRIBUTE Test-Prefix4 3002 ipv4prefix\n\
         ATTRIBUTE Test-Ether 3003 ether\n\
         ATTRIBUTE Test-Signed 3004 signed\n\
         ATTRIBUTE Test-Short 3005 short\n\
         ATTRIBUTE Test-Combo 3006 combo-ip\n\
         ATTRIBUTE Test-Addrs 3007 ipaddr array\n",
        Path::new("test-dictionary"),
    )
    .unwrap();
    d
}

/// Encodes, checks the value octets, renders them back, checks the text.
fn round_trip(d: &Dictionary, name: &str, input: &str, wire_value: &[u8], shown: &str) {
    let e = d
        .encode(name, input)
        .unwrap_or_else(|err| panic!("{name}={input}: {err}"));
    assert_eq!(e.value, wire_value, "{name}={input}");
    let mut s = String::new();
    d.format_value(e.key, &e.value, &mut s);
    assert_eq!(s, shown, "{name}={input}");
    // The rendered text encodes back to the same value.
    assert_eq!(
        d.encode(name, &s).unwrap().value,
        wire_value,
        "{name}: re-encode {s}"
    );
}

fn wire(d: &Dictionary, name: &str, input: &str) -> Vec<u8> {
    let mut out = Vec::new();
    d.encode(name, input).unwrap().to_wire(&mut out).unwrap();
    out
}

#[test]
fn integers_and_value_names() {
    let d = dict();
    round_trip(
        &d,
        "Service-Type",
        "Framed-User",
        &[0, 0, 0, 2],
        "Framed-User",
    );
    round_trip(
        &d,
        "service-type",
        "framed-user",
        &[0, 0, 0, 2],
        "Framed-User",
    );
    round_trip(&d, "Acct-Status-Type", "3", &[0, 0, 0, 3], "Interim-Update");
    round_trip(&d, "Session-Timeout", "3600", &[0, 0, 0x0e, 0x10], "3600");
    round_trip(&d, "Session-Timeout", "0x10", &[0, 0, 0, 16], "16");
    round_trip(
        &d,
        "Test-Int64",
        "4294967296",
        &[0, 0, 0, 1, 0, 0, 0, 0],
        "4294967296",
    );
    round_trip(&d, "Test-Signed", "-2", &[0xff, 0xff, 0xff, 0xfe], "-2");
    round_trip(&d, "Test-Short", "513", &[2, 1], "513");
    assert_eq!(wire(&d, "Session-Timeout", "60"), [27, 6, 0, 0, 0, 60]);
    let err = d.encode("Session-Timeout", "4294967296").unwrap_err();
    assert!(matches!(err, EncodeError::BadValue { .. }), "{err}");
    let err = d.encode("Service-Type", "Frame-User").unwrap_err();
    assert!(err.to_string().contains("Service-Type"), "{err}");
    assert!(matches!(
        d.encode("No-Such-Attr", "1"),
        Err(EncodeError::UnknownAttribute(_))
    ));
}

#[test]
fn addresses_and_prefixes() {
    let d = dict();
    round_trip(
        &d,
        "Framed-IP-Address",
        "192.0.2.1",
        &[192, 0, 2, 1],
        "192.0.2.1",
    );
    round_trip(
        &d,
        "NAS-IPv6-Address",
        "2001:db8::1",
        &[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        "2001:db8::1",
    );
    round_trip(
        &d,
        "Framed-IPv6-Prefix",
        "2001:db8::/32",
        &[0, 32, 0x20, 1, 0xd, 0xb8],
        "2001:db8::/32",
    );
    // Host bits beyond the prefix length are cleared.
    round_trip(
        &d,
        "Framed-IPv6-Prefix",
        "2001:db8:ff::/36",
        &[0, 36, 0x20, 1, 0xd, 0xb8, 0],
        "2001:db8::/36",
    );
    round_trip(
        &d,
        "Test-Prefix4",
        "10.1.2.0/24",
        &[0, 24, 10, 1, 2, 0],
        "10.1.2.0/24",
    );
    round_trip(
        &d,
        "Framed-Interface-Id",
        "0000:0000:0000:0001",
        &[0, 0, 0, 0, 0, 0, 0, 1],
        "0000:0000:0000:0001",
    );
    round_trip(
        &d,
        "Test-Ether",
        "00:11:22:aa:bb:cc",
        &[0, 0x11, 0x22, 0xaa, 0xbb, 0xcc],
        "00:11:22:aa:bb:cc",
    );
    round_trip(&d, "Test-Combo", "10.0.0.1", &[10, 0, 0, 1], "10.0.0.1");
    assert!(d.encode("Framed-IP-Address", "300.1.1.1").is_err());
    assert!(d.encode("Framed-IPv6-Prefix", "2001:db8::/129").is_err());
    // An array of addresses renders comma-separated.
    let mut s = String::new();
    let key = d.attribute("Test-Addrs").unwrap().key;
    d.format_value(key, &[10, 0, 0, 1, 10, 0, 0, 2], &mut s);
    assert_eq!(s, "10.0.0.1,10.0.0.2");
}

#[test]
fn dates() {
    let d = dict();
    round_trip(
        &d,
        "Event-Timestamp",
        "1700000000",
        &0x6553_f100u32.to_be_bytes(),
        "2023-11-14T22:13:20Z",
    );
    round_trip(
        &d,
        "Event-Timestamp",
        "2023-11-14T22:13:20Z",
        &0x6553_f100u32.to_be_bytes(),
        "2023-11-14T22:13:20Z",
    );
    assert!(d.encode("Event-Timestamp", "yesterday").is_err());
}

#[test]
fn strings_and_octets() {
    let d = dict();
    round_trip(
        &d,
        "User-Name",
        "bob@example.org",
        b"bob@example.org",
        "bob@example.org",
    );
    round_trip(&d, "Class", "0x0102ff", &[1, 2, 0xff], "0x0102ff");
    round_trip(&d, "Class", "0x", &[], "0x");
    assert!(d.encode("Class", "0x123").is_err());
    // Non-printable bytes are escaped when rendered.
    let mut s = String::new();
    d.format_value(AttrKey::standard(1), b"a\\b\n\x01\xff", &mut s);
    assert_eq!(s, "a\\\\b\\n\\x01\\xff");
    // Unknown attributes render as hex; the caller names them Attr-….
    let mut s = String::new();
    d.format_value(AttrKey::new(9, 77), b"ab", &mut s);
    assert_eq!(s, "0x6162");
    assert_eq!(AttrKey::new(9, 1).fallback_name(), "Attr-26.9.1");
    // Malformed lengths fall back to hex rather than guessing.
    let mut s = String::new();
    d.format_value(AttrKey::standard(8), &[1, 2, 3], &mut s);
    assert_eq!(s, "0x010203");
    assert_eq!(wire(&d, "User-Name", "bob"), [1, 5, b'b', b'o', b'b']);
    let long = "x".repeat(254);
    let err = d.encode("User-Name", &long).unwrap_err();
    assert!(
        matches!(err, EncodeError::TooLong { max: 253, .. }),
        "{err}"
    );
}

#[test]
fn tagged_attributes() {
    let d = dict();
    // "tag:value" in the value, or the FreeRADIUS "Name:tag" form.
    let e = d.encode("Tunnel-Private-Group-Id", "1:vlan10").unwrap();
    assert_eq!((e.tag, e.value.as_slice()), (Some(1), &b"\x01vlan10"[..]));
    let e2 = d.encode("Tunnel-Private-Group-Id:1", "vlan10").unwrap();
    assert_eq!(e, e2);
    let mut s = String::new();
    d.format_value(e.key, &e.value, &mut s);
    assert_eq!(s, "1:vlan10");
    let mut out = Vec::new();
    e.to_wire(&mut out).unwrap();
    assert_eq!(out, b"\x51\x09\x01vlan10");
    // Untagged string: no tag octet unless the first octet would look like one.
    assert_eq!(
        d.encode("Tunnel-Private-Group-Id", "10").unwrap().value,
        b"10"
    );
    assert_eq!(
        d.encode("Tunnel-Private-Group-Id", "\x05x").unwrap().value,
        b"\x00\x05x"
    );
    // Tagged integers carry the tag in the first octet.
    round_trip(&d, "Tunnel-Type", "1:VLAN", &[1, 0, 0, 13], "1:VLAN");
    round_trip(
        &d,
        "Tunnel-Medium-Type",
        "IEEE-802",
        &[0, 0, 0, 6],
        "IEEE-802",
    );
    assert!(matches!(
        d.encode("Tunnel-Type", "32:VLAN"),
        Err(EncodeError::BadValue { .. })
    ));
    assert!(matches!(
        d.encode("Tunnel-Type:32", "VLAN"),
        Err(EncodeError::BadTag { .. })
    ));
    assert!(matches!(
        d.encode("User-Name:1", "bob"),
        Err(EncodeError::NotTagged { .. })
    ));
    let e = d.encode_tagged("Tunnel-Type", Some(2), "L2TP").unwrap();
    assert_eq!(e.value, [2, 0, 0, 3]);
    // Encrypted attributes: plaintext and tag kept apart for the crypto layer.
    let e = d.encode("Tunnel-Password", "3:s3cret").unwrap();
    assert_eq!(
        (e.tag, e.value.as_slice(), e.encrypt),
        (Some(3), &b"s3cret"[..], Encrypt::TunnelPassword)
    );
    assert!(matches!(
        e.to_wire(&mut Vec::new()),
        Err(EncodeError::NeedsEncryption(_))
    ));
    let e = d.encode("User-Password", "pw").unwrap();
    assert_eq!(e.encrypt, Encrypt::UserPassword);
    assert!(d.encode("User-Password", &"p".repeat(129)).is_err());
}

#[test]
fn vendor_specific_wrapping() {
    let d = dict();
    // Microsoft, format 1,1: 26, len, 0 0 1 55, type, vlen, value.
    assert_eq!(
        wire(&d, "MS-CHAP-Challenge", "0x0102"),
        [26, 10, 0, 0, 0x01, 0x37, 11, 4, 1, 2]
    );
    assert_eq!(
        wire(&d, "WISPr-Bandwidth-Max-Down", "1000"),
        [26, 12, 0, 0, 0x37, 0x2a, 8, 6, 0, 0, 3, 0xe8]
    );
    // USR, format 4,0: four type octets, no length.
    assert_eq!(
        wire(&d, "USR-Last-Number-Dialed-Out", "555"),
        [26, 13, 0, 0, 0x01, 0xad, 0, 0, 0, 0x66, b'5', b'5', b'5']
    );
    assert_eq!(wire(&d, "USR-Big", "1")[6..10], [0x12, 0x34, 0x56, 0x78]);
    // Lucent 2,1 and Starent 2,2.
    assert_eq!(
        wire(&d, "Lucent-Max-Shared-Users", "1"),
        [26, 13, 0, 0, 0x12, 0xee, 0, 2, 7, 0, 0, 0, 1]
    );
    assert_eq!(
        wire(&d, "SN-VPN-Name", "a"),
        [26, 11, 0, 0, 0x1f, 0xe4, 0, 2, 0, 5, b'a']
    );
    // VSA values are limited by the header room.
    let err = d
        .encode("MS-CHAP-Challenge", &format!("0x{}", "00".repeat(248)))
        .unwrap_err();
    assert!(
        matches!(err, EncodeError::TooLong { max: 247, .. }),
        "{err}"
    );
    let e = d.encode("MS-MPPE-Send-Key", "0x00").unwrap();
    assert_eq!(
        (e.key, e.encrypt),
        (AttrKey::new(311, 16), Encrypt::TunnelPassword)
    );
    assert!(matches!(
        e.layout,
        Layout::Vendor {
            type_octets: 1,
            length_octets: 1,
            ..
        }
    ));
}

#[test]
fn concat_splits_and_tlvs_nest() {
    let d = dict();
    let value = format!("0x{}", "ab".repeat(300));
    let out = wire(&d, "EAP-Message", &value);
    assert_eq!(&out[..2], [79, 255]);
    assert_eq!(&out[255..257], [79, 49]);
    assert_eq!(out.len(), 255 + 49);
    // WiMAX 1,1,c with a TLV child: continuation octet then the nested TLV.
    assert_eq!(
        wire(&d, "WiMAX-Release", "1"),
        [26, 12, 0, 0, 0x60, 0xb5, 1, 6, 0, 1, 3, b'1']
    );
    // Continuation fragments long WiMAX values with the M bit.
    let out = wire(&d, "WiMAX-Test-Blob", &format!("0x{}", "00".repeat(300)));
    assert_eq!((out[0], out[1], out[8]), (26, 255, 0x80));
    assert_eq!(out[255 + 8], 0);
    // Extended and its TLV child.
    assert_eq!(wire(&d, "Frag-Status", "1"), [241, 7, 1, 0, 0, 0, 1]);
    assert_eq!(
        wire(&d, "IP-Port-Limit", "9"),
        [241, 9, 5, 2, 6, 0, 0, 0, 9]
    );
    // Long extended fragments with the M flag.
    let out = wire(&d, "Test-Long", &format!("0x{}", "00".repeat(300)));
    assert_eq!(&out[..4], [245, 255, 1, 0x80]);
    assert_eq!(&out[255..259], [245, 53, 1, 0]);
    // Extended-Vendor-Specific.
    assert_eq!(
        wire(&d, "FreeRADIUS-Anonce", "0x99"),
        [245, 10, 26, 0, 0, 0, 0x2c, 0x50, 1, 0x99]
    );
    // Server-internal attributes never reach the wire.
    let e = d.encode("Test-Short", "1").unwrap();
    assert!(matches!(
        e.to_wire(&mut Vec::new()),
        Err(EncodeError::NotOnWire(_))
    ));
}
