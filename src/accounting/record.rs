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
    /// `YYYY-MM-DDTHH:MM:SS` of `time_secs`: records arrive many per second, so the calendar
    /// arithmetic is done once a second.
    time_prefix: Vec<u8>,
    time_secs: Option<i64>,
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
    /// The session the record belongs to and whose it is, as the session table resolved
    /// them: written as `"session":{"id":…,"user":…}`, which the table is rebuilt from.
    pub session: Option<(&'a crate::session::UniqueId, &'a str)>,
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
        session,
    } = origin;
    let bytes = req.packet().as_bytes();
    collect(&mut scratch.items, req, bytes);

    out.extend_from_slice(b"{\"time\":\"");
    if scratch.time_secs != Some(secs) {
        scratch.time_prefix.clear();
        write_rfc3339(&mut scratch.time_prefix, secs, 0);
        scratch.time_prefix.truncate(19); // keep `YYYY-MM-DDTHH:MM:SS`
        scratch.time_secs = Some(secs);
    }
    out.extend_from_slice(&scratch.time_prefix);
    out.push(b'.');
    push_padded(out, u64::from(micros), 6);
    out.extend_from_slice(b"Z\",\"client\":");
    json_str(out, client);
    out.extend_from_slice(b",\"nas\":\"");
    push_addr(out, nas);
    out.extend_from_slice(b"\",\"shard\":");
    push_padded(out, shard as u64, 1);
    out.extend_from_slice(b",\"attributes\":{");

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
        // One dictionary lookup per distinct attribute: name, secrecy and type all come from it.
        let def = dict.by_key(key);
        match def {
            Some(d) => json_str(out, &d.name),
            None => json_str(out, &key.fallback_name()),
        }
        out.push(b':');
        let secret = def.is_some_and(|d| d.secret || d.encrypt != Encrypt::None);
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
            if secret {
                // A password-like attribute has no business in an accounting log.
                json_str(out, "<redacted>");
                continue;
            }
            let value = &bytes[off as usize..off as usize + len as usize];
            scratch.value.clear();
            match def {
                Some(d) => dict.format_def(d, value, &mut scratch.value),
                None => dict.format_value(key, value, &mut scratch.value),
            }
            json_str(out, &scratch.value);
        }
        if count > 1 {
            out.push(b']');
        }
    }
    out.push(b'}');
    if let Some((id, user)) = session {
        out.extend_from_slice(b",\"session\":{\"id\":\"");
        out.extend_from_slice(&id.hex());
        out.extend_from_slice(b"\",\"user\":");
        json_str(out, user);
        out.push(b'}');
    }
    out.extend_from_slice(b"}\n");
}

/// Lists the packet's attributes (vendor attributes unpacked) as (key, offset, length) into
/// the packet, so the writer can group repeats without copying values.
fn collect(items: &mut Vec<(AttrKey, u16, u16)>, req: &Verified<'_>, bytes: &[u8]) {
    let base = bytes.as_ptr() as usize;
    let offset = |v: &[u8]| (v.as_ptr() as usize - base) as u16;
    items.clear();
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
                    items.push((key, offset(sub.value), sub.value.len() as u16));
                }
                continue;
            }
        }
        items.push((
            AttrKey {
                vendor: 0,
                code: u32::from(typ),
            },
            offset(value),
            value.len() as u16,
        ));
    }
}

/// Decimal digits of `n`, zero-padded to at least `width`, without going through `fmt`.
fn push_padded(out: &mut Vec<u8>, mut n: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut i = digits.len();
    while n > 0 || digits.len() - i < width {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.extend_from_slice(&digits[i..]);
}

fn push_addr(out: &mut Vec<u8>, addr: SocketAddr) {
    match addr {
        SocketAddr::V4(a) => {
            for (i, o) in a.ip().octets().iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                push_padded(out, u64::from(*o), 1);
            }
            out.push(b':');
            push_padded(out, u64::from(a.port()), 1);
        }
        SocketAddr::V6(a) => {
            use std::io::Write;
            let _ = write!(out, "{a}");
        }
    }
}

fn json_str(out: &mut Vec<u8>, s: &str) {
    // serde_json's escaper writes straight into the Vec: correct escaping, no allocation.
    let _ = serde_json::to_writer(&mut *out, s);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_addresses_format_like_fmt() {
        let mut v = Vec::new();
        push_padded(&mut v, 42, 6);
        v.push(b' ');
        push_padded(&mut v, 0, 1);
        v.push(b' ');
        push_padded(&mut v, u64::MAX, 1);
        v.push(b' ');
        push_addr(&mut v, "10.0.255.1:1813".parse().unwrap());
        v.push(b' ');
        push_addr(&mut v, "[2001:db8::1]:1813".parse().unwrap());
        assert_eq!(
            String::from_utf8(v).unwrap(),
            format!("000042 0 {} 10.0.255.1:1813 [2001:db8::1]:1813", u64::MAX)
        );
    }
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
            session: None,
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
