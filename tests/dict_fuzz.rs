//! No input makes the dictionary panic: arbitrary dictionary text, operator
//! values and received octets all end in Ok or an error.

use std::path::Path;

use proptest::prelude::*;
use radshard::dict::Dictionary;

/// Dictionary-looking lines, so the fuzzer reaches past the keyword check.
fn line() -> impl Strategy<Value = String> {
    let kw = prop::sample::select(vec![
        "ATTRIBUTE",
        "VALUE",
        "VENDOR",
        "BEGIN-VENDOR",
        "END-VENDOR",
        "BEGIN-TLV",
        "END-TLV",
        "$INCLUDE-",
        "#",
    ]);
    let word = prop::sample::select(vec![
        "Foo",
        "Bar",
        "Acme",
        "Microsoft",
        "1",
        "26",
        "241.1",
        "1.2.3.4.5.6",
        "0x",
        "0xff",
        "tlv",
        "string",
        "octets[3]",
        "integer",
        "has_tag,encrypt=2",
        "format=4,0",
        "format=1,1,c",
        "format=Extended-Vendor-Specific-5",
        "99999",
        "4294967296",
        "-1",
        "User-Name",
    ]);
    (kw, prop::collection::vec(word, 0..5)).prop_map(|(k, w)| format!("{k} {}", w.join(" ")))
}

proptest! {
    #[test]
    fn loader_never_panics(lines in prop::collection::vec(line(), 0..12)) {
        let mut d = Dictionary::builtin();
        let _ = d.load_str(&lines.join("\n"), Path::new("fuzz"));
    }

    #[test]
    fn loader_never_panics_on_noise(text in ".{0,200}") {
        let mut d = Dictionary::builtin();
        let _ = d.load_str(&text, Path::new("fuzz"));
    }

    #[test]
    fn encode_and_format_never_panic(
        idx in 0usize..200,
        text in ".{0,40}",
        bytes in prop::collection::vec(any::<u8>(), 0..40),
    ) {
        let d = Dictionary::builtin();
        let defs: Vec<_> = d.attributes().cloned().collect();
        let def = &defs[idx % defs.len()];
        if let Ok(e) = d.encode(&def.name, &text) {
            let _ = e.to_wire(&mut Vec::new());
        }
        let _ = d.encode(&format!("{}:{}", def.name, text), "1");
        let mut s = String::new();
        d.format_value(def.key, &bytes, &mut s);
    }
}
