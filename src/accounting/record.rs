//! One accounting record as a JSON line:
//!
//! ```json
//! {"time":"2026-11-26T02:30:00.000042Z","client":"localhost","nas":"127.0.0.1:50000","shard":0,
//!  "attributes":{"Acct-Status-Type":"Start","User-Name":"alice","Class":["a","b"]}}
//! ```
//!
//! Attribute names and values come from the dictionary (`VALUE` names for enumerations,
//! dotted addresses, …). An attribute that occurs more than once becomes an array, in packet
//! order, so nothing the NAS sent is lost. Unknown attributes are named `Attr-N` (or
//! `Attr-26.V.N` for vendor attributes) with hex values.

use std::net::SocketAddr;

use super::time::write_rfc3339;
use crate::dict::{AttrKey, Dictionary, Encrypt};
use crate::proto::{Attribute, VendorAttribute, Verified, VENDOR_SPECIFIC};

/// Reusable buffers, so that formatting a record allocates nothing once warm.
#[derive(Default)]
pub struct Scratch {
    items: Vec<(AttrKey, u16, u16)>,
    value: String,
}

/// Where and when a record was received.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    /// The configured client's name.
    pub client: &'a str,
    pub nas: SocketAddr,
    pub shard: usize,
    /// Unix seconds and microseconds.
    pub when: (i64, u32),
}

/// Appends one record line (with its trailing newline) to `out`.
pub fn write_record(
    out: &mut Vec<u8>,
    scratch: &mut Scratch,
    req: &Verified<'_>,
    origin: Origin<'_>,
    dict: &Dictionary,
) {
    let Origin {
        client,
        nas,
        shard,
        when: (secs, micros),
    } = origin;
    let bytes = req.packet().as_bytes();
    let base = bytes.as_ptr() as usize;
    let offset = |v: &[u8]| (v.as_ptr() as usize - base) as u16;
    scratch.items.clear();
    for Attribute { typ, value } in req.attributes() {
        if typ == VENDOR_SPECIFIC {
            if let Some(vsa) =
                VendorAttribute::from_value(value).filter(VendorAttribute::is_well_formed)
            {
                for sub in vsa.sub_attributes() {
                    let key = AttrKey {
                        vendor: vsa.vendor,
                        code: u32::from(sub.vtype),
                    };
                    scratch
                        .items
                        .push((key, offset(sub.value), sub.value.len() as u16));
                }
                continue;
            }
        }
        scratch.items.push((
            AttrKey {
                vendor: 0,
                code: u32::from(typ),
            },
            offset(value),
            value.len() as u16,
        ));
    }

    out.extend_from_slice(b"{\"time\":\"");
    write_rfc3339(out, secs, micros);
    out.extend_from_slice(b"\",\"client\":");
    json_str(out, client);
    out.extend_from_slice(b",\"nas\":\"");
    use std::io::Write;
    let _ = write!(out, "{nas}\",\"shard\":{shard},\"attributes\":{{");
    let items = &scratch.items;
    let mut first = true;
    for (i, &(key, _, _)) in items.iter().enumerate() {
        if items[..i].iter().any(|(k, _, _)| *k == key) {
            continue; // already written with its first occurrence
        }
        if !first {
            out.push(b',');
        }
        first = false;
        match dict.name_of(key) {
            Some(name) => json_str(out, name),
            None => json_str(out, &key.fallback_name()),
        }
        out.push(b':');
        let count = items[i..].iter().filter(|(k, _, _)| *k == key).count();
        if count > 1 {
            out.push(b'[');
        }
        let mut n = 0;
        for &(k, off, len) in &items[i..] {
            if k != key {
                continue;
            }
            if n > 0 {
                out.push(b',');
            }
            n += 1;
            let value = &bytes[off as usize..off as usize + len as usize];
            if is_secret(dict, key) {
                // A password-like attribute has no business in an accounting log.
                json_str(out, "<redacted>");
                continue;
            }
            scratch.value.clear();
            dict.format_value(key, value, &mut scratch.value);
            json_str(out, &scratch.value);
        }
        if count > 1 {
            out.push(b']');
        }
    }
    out.extend_from_slice(b"}}\n");
}

/// Attributes whose value is a secret: encrypted on the wire or flagged `secret`.
fn is_secret(dict: &Dictionary, key: AttrKey) -> bool {
    dict.by_key(key)
        .is_some_and(|d| d.secret || d.encrypt != Encrypt::None)
}

fn json_str(out: &mut Vec<u8>, s: &str) {
    // serde_json's escaper writes straight into the Vec: correct escaping, no allocation.
    let _ = serde_json::to_writer(&mut *out, s);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{attr, verify_request, Code, Packet, PacketBuilder, Secret};

    #[test]
    fn record_is_json_with_names_values_arrays_and_no_secrets() {
        let secret = Secret::new("s3cret").unwrap();
        let mut buf = [0u8; 512];
        let mut b = PacketBuilder::request(&mut buf, Code::AccountingRequest, 7, &[0; 16]).unwrap();
        b.attr(attr::ACCT_STATUS_TYPE, &3u32.to_be_bytes()).unwrap();
        b.attr(attr::USER_NAME, b"alice \"quoted\"").unwrap();
        b.attr(attr::CLASS, b"a").unwrap();
        b.attr(attr::FRAMED_IP_ADDRESS, &[10, 0, 0, 1]).unwrap();
        b.attr(attr::CLASS, b"b").unwrap();
        b.attr(attr::USER_PASSWORD, &[0x55; 16]).unwrap();
        b.vsa(14122, 8, &1000u32.to_be_bytes()).unwrap();
        b.attr(200, b"\x01\x02").unwrap();
        let bytes = b.finish(&secret).unwrap().to_vec();
        let req = verify_request(Packet::parse(&bytes).unwrap(), &secret, false).unwrap();

        let dict = Dictionary::builtin();
        let mut out = Vec::new();
        let mut scratch = Scratch::default();
        let origin = Origin {
            client: "nas-1",
            nas: "127.0.0.1:4000".parse().unwrap(),
            shard: 1,
            when: (1_764_124_200, 5),
        };
        write_record(&mut out, &mut scratch, &req, origin, &dict);
        assert_eq!(out.last(), Some(&b'\n'));
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["time"], "2025-11-26T02:30:00.000005Z");
        assert_eq!(v["client"], "nas-1");
        assert_eq!(v["nas"], "127.0.0.1:4000");
        let a = &v["attributes"];
        assert_eq!(a["Acct-Status-Type"], "Interim-Update");
        assert_eq!(a["User-Name"], "alice \"quoted\"");
        assert_eq!(
            a["Class"],
            serde_json::json!(["0x61", "0x62"]),
            "Class is octets"
        );
        assert_eq!(a["Framed-IP-Address"], "10.0.0.1");
        assert_eq!(a["User-Password"], "<redacted>");
        assert_eq!(a["WISPr-Bandwidth-Max-Down"], "1000");
        assert_eq!(a["Attr-200"], "0x0102");
    }
}
