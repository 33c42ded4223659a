//! Loads the FreeRADIUS 3.2 dictionaries shipped by Debian's freeradius-common.
//! Skips (with a message) when they are not installed.

use std::path::{Path, PathBuf};

use radshard::dict::{AttrKey, AttrType, Dictionary, Encrypt};

const DIR: &str = "/usr/share/freeradius";

fn dir() -> Option<&'static Path> {
    let p = Path::new(DIR);
    if p.join("dictionary").exists() {
        Some(p)
    } else {
        eprintln!("SKIP: {DIR}/dictionary not found (install freeradius-common)");
        None
    }
}

fn full() -> Option<Dictionary> {
    let dir = dir()?;
    let mut d = Dictionary::builtin();
    if let Err(e) = d.load_file(&dir.join("dictionary")) {
        panic!("full FreeRADIUS dictionary failed to load: {e}");
    }
    Some(d)
}

#[test]
fn loads_everything_via_include() {
    let Some(d) = full() else { return };
    eprintln!(
        "{} attributes, {} vendors",
        d.attributes().count(),
        d.vendors().count()
    );
    assert!(d.attributes().count() > 7000);
    assert!(d.vendors().count() > 180);

    let a = d.attribute("Cisco-AVPair").unwrap();
    assert_eq!((a.key, a.ty), (AttrKey::new(9, 1), AttrType::String));
    let a = d.attribute("Aruba-User-Role").unwrap();
    assert_eq!((a.key, a.ty), (AttrKey::new(14823, 1), AttrType::String));
    let a = d.attribute("Juniper-Local-User-Name").unwrap();
    assert_eq!(a.key, AttrKey::new(2636, 1));
    let a = d.attribute("ERX-Primary-Dns").unwrap();
    assert_eq!((a.key.vendor, a.ty), (4874, AttrType::IpAddr));

    // format=4,0 and 2,1 vendors
    assert_eq!(
        d.vendor("USR").map(|v| (v.type_octets, v.length_octets)),
        Some((4, 0))
    );
    assert_eq!(
        d.vendor("Lucent").map(|v| (v.type_octets, v.length_octets)),
        Some((2, 1))
    );
    assert_eq!(
        d.vendor("Starent")
            .map(|v| (v.type_octets, v.length_octets)),
        Some((2, 2))
    );
    assert!(d.vendor("WiMAX").unwrap().continuation);

    // TLV children and extended attributes get distinct keys.
    let a = d.attribute("WiMAX-Release").unwrap();
    assert_eq!((a.key, a.depth), (AttrKey::new(24757, 1 | 1 << 8), 2));
    let a = d.attribute("WiMAX-Classifer-Priority").unwrap();
    assert_eq!(a.path(), vec![28, 11, 2]);
    let a = d.attribute("Frag-Status").unwrap();
    assert_eq!(a.key, AttrKey::new(241 << 24, 1));
    let a = d.attribute("IP-Port-Limit").unwrap();
    assert_eq!((a.key, a.depth), (AttrKey::new(241 << 24, 5 | 2 << 8), 2));
    let a = d.attribute("FreeRADIUS-802.1X-Anonce").unwrap();
    assert_eq!(a.key, AttrKey::new(245 << 24 | 11344, 1));

    // Redefinitions: dictionary.compat's old names stay accepted, the RFC name prints.
    assert_eq!(d.attribute("Client-Id").unwrap().key, AttrKey::standard(4));
    assert_eq!(d.name_of(AttrKey::standard(4)), Some("NAS-IP-Address"));
    // A VALUE defined before its ATTRIBUTE (Auth-Type in dictionary.compat).
    let at = d.attribute("Auth-Type").unwrap().key;
    assert!(d.value_by_name(at, "Accept").is_some());

    // Built-in entries agree with FreeRADIUS'.
    let b = Dictionary::builtin();
    for def in b.attributes() {
        let fr = d
            .by_key(def.key)
            .unwrap_or_else(|| panic!("{} missing", def.name));
        assert_eq!(fr.ty, def.ty, "{}", def.name);
        assert_eq!(fr.encrypt, def.encrypt, "{}", def.name);
        assert_eq!(fr.has_tag, def.has_tag, "{}", def.name);
        assert_eq!(d.attribute(&def.name).unwrap().key, def.key, "{}", def.name);
    }
    assert_eq!(
        d.attribute("MS-MPPE-Recv-Key").unwrap().encrypt,
        Encrypt::TunnelPassword
    );
}

/// Files that cannot load on their own, and why. Everything else must.
/// FreeRADIUS itself refuses the same files alone (unresolved VALUEs and
/// vendors are errors there too).
const DEPENDENT: &[(&str, &str)] = &[
    (
        "dictionary.compat",
        "VALUEs for Auth-Type, which dictionary.freeradius.internal defines",
    ),
    (
        "dictionary.freeradius.evs5",
        "BEGIN-VENDOR FreeRADIUS needs the VENDOR line of dictionary.freeradius",
    ),
    (
        "dictionary.freedhcp",
        "VALUEs for FreeDHCP-Opcode, which no shipped file defines (not in the default set)",
    ),
];

#[test]
fn each_file_loads_on_top_of_builtin() {
    let Some(dir) = dir() else { return };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("dictionary."))
        })
        .collect();
    files.sort();
    let mut failures = Vec::new();
    for f in &files {
        let name = f.file_name().unwrap().to_str().unwrap();
        let mut d = Dictionary::builtin();
        let res = d.load_file(f);
        let expected_dependent = DEPENDENT.iter().any(|(n, _)| *n == name);
        match (res, expected_dependent) {
            (Ok(()), false) => {}
            (Err(e), true) => eprintln!("expected failure for {name}: {e}"),
            (Ok(()), true) => failures.push(format!("{name}: listed as dependent but loads")),
            (Err(e), false) => failures.push(e.to_string()),
        }
    }
    assert!(
        failures.is_empty(),
        "{} files failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// One timing of the full load, for the record:
/// `cargo test --release --test dict_freeradius -- --ignored --nocapture load_timing`
#[test]
#[ignore]
fn load_timing() {
    let Some(dir) = dir() else { return };
    let start = std::time::Instant::now();
    let mut d = Dictionary::builtin();
    d.load_file(&dir.join("dictionary")).unwrap();
    let elapsed = start.elapsed();
    eprintln!(
        "builtin + {DIR}/dictionary: {} attributes, {} vendors in {elapsed:?}",
        d.attributes().count(),
        d.vendors().count()
    );
}
