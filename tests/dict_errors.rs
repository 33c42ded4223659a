//! Loader errors name the right FILE:LINE and reason, and leave the dictionary unchanged.

use std::path::Path;

use radshard::dict::{DictError, DictErrorKind, Dictionary};

fn load(text: &str) -> Result<Dictionary, DictError> {
    let mut d = Dictionary::builtin();
    d.load_str(text, Path::new("/etc/radshard/dictionary.test"))?;
    Ok(d)
}

fn err(text: &str) -> DictError {
    match load(text) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e,
    }
}

#[test]
fn bad_type() {
    let e = err("# comment\n\nATTRIBUTE Foo 3000 strnig\n");
    assert_eq!(e.line, 3);
    assert_eq!(e.file, Path::new("/etc/radshard/dictionary.test"));
    assert!(matches!(e.reason, DictErrorKind::UnknownType(ref t) if t == "strnig"));
    assert_eq!(
        e.to_string(),
        "/etc/radshard/dictionary.test:3: unknown data type \"strnig\""
    );
}

#[test]
fn bad_numbers() {
    let e = err("ATTRIBUTE Foo 30x0 string\n");
    assert!(matches!(e.reason, DictErrorKind::BadNumber(_)), "{e}");
    let e = err("ATTRIBUTE Foo 3000 integer\nVALUE Foo Bar twelve\n");
    assert_eq!(e.line, 2);
    assert!(matches!(e.reason, DictErrorKind::BadNumber(_)), "{e}");
    let e = err("VENDOR Acme 12x\n");
    assert!(matches!(e.reason, DictErrorKind::BadNumber(_)), "{e}");
    // A byte attribute cannot enumerate 300.
    let e = err("ATTRIBUTE Foo 3000 byte\nVALUE Foo Big 300\n");
    assert!(matches!(e.reason, DictErrorKind::ValueRange { .. }), "{e}");
    // A vendor with 1-octet types cannot have attribute 256.
    let e =
        err("VENDOR Acme 99999\nBEGIN-VENDOR Acme\nATTRIBUTE Acme-X 256 string\nEND-VENDOR Acme\n");
    assert_eq!(e.line, 3);
    assert!(matches!(e.reason, DictErrorKind::BadOid { .. }), "{e}");
}

#[test]
fn unknown_vendor_in_begin_vendor() {
    let e = err("\nBEGIN-VENDOR Nobody\n");
    assert_eq!(e.line, 2);
    assert!(matches!(e.reason, DictErrorKind::UnknownVendor(ref v) if v == "Nobody"));
    assert!(e
        .to_string()
        .starts_with("/etc/radshard/dictionary.test:2: "));
}

#[test]
fn missing_end_vendor() {
    let e = err("VENDOR Acme 99999\nBEGIN-VENDOR Acme\nATTRIBUTE Acme-X 1 string\n");
    // Reported at the BEGIN-VENDOR that was never closed.
    assert_eq!(e.line, 2);
    assert!(
        matches!(e.reason, DictErrorKind::UnclosedVendor { .. }),
        "{e}"
    );
    let e = err("VENDOR Acme 99999\nBEGIN-VENDOR Acme\nEND-VENDOR Other\n");
    assert_eq!(e.line, 3);
    assert!(matches!(e.reason, DictErrorKind::Unmatched { .. }), "{e}");
}

#[test]
fn unknown_flag_and_keyword() {
    let e = err("ATTRIBUTE Foo 3000 string has_tga\n");
    assert!(matches!(e.reason, DictErrorKind::UnknownFlag(_)), "{e}");
    let e = err("ATTRIBUTE Foo 3000 string encrypt=9\n");
    assert!(matches!(e.reason, DictErrorKind::BadFlag { .. }), "{e}");
    let e = err("PROTOCOL RADIUS 1\n");
    assert!(matches!(e.reason, DictErrorKind::UnknownKeyword(_)), "{e}");
}

#[test]
fn value_for_unknown_attribute_names_its_line() {
    let e = err("ATTRIBUTE Foo 3000 integer\n\nVALUE Fooo Bar 1\n");
    assert_eq!(e.line, 3);
    assert!(
        matches!(e.reason, DictErrorKind::ValueForUnknown { .. }),
        "{e}"
    );
}

#[test]
fn conflicting_redefinitions() {
    // Same name, other number: refused (FreeRADIUS does too).
    let e = err("ATTRIBUTE User-Name 3000 string\n");
    assert!(
        matches!(e.reason, DictErrorKind::AttrNumberConflict { .. }),
        "{e}"
    );
    // Identical redefinition and a new alias are fine; the alias prints.
    let d = load("ATTRIBUTE User-Name 1 string\nATTRIBUTE Login-Name 1 string\n").unwrap();
    assert_eq!(
        d.name_of(radshard::dict::AttrKey::standard(1)),
        Some("Login-Name")
    );
    assert!(d.attribute("user-name").is_some());
    // Same vendor name, other id: refused.
    let e = err("VENDOR Microsoft 312\n");
    assert!(
        matches!(e.reason, DictErrorKind::VendorIdConflict { .. }),
        "{e}"
    );
}

#[test]
fn failed_load_leaves_dictionary_unchanged() {
    let mut d = Dictionary::builtin();
    let before = d.attributes().count();
    let r = d.load_str(
        "ATTRIBUTE New-One 3000 string\nATTRIBUTE Bad 3001 nope\n",
        Path::new("x"),
    );
    assert!(r.is_err());
    assert_eq!(d.attributes().count(), before);
    assert!(d.attribute("New-One").is_none());
}

#[test]
fn includes() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("vendors");
    std::fs::create_dir(&sub).unwrap();
    std::fs::write(
        sub.join("dictionary.acme"),
        "VENDOR Acme 99999 format=4,0\nBEGIN-VENDOR Acme\nATTRIBUTE Acme-Big 70000 integer\nEND-VENDOR Acme\n",
    )
    .unwrap();
    // Relative to the including file's directory; optional include may be absent.
    let top = dir.path().join("dictionary");
    std::fs::write(
        &top,
        "$INCLUDE vendors/dictionary.acme\n$INCLUDE- dictionary.local\n",
    )
    .unwrap();
    let mut d = Dictionary::builtin();
    d.load_file(&top).unwrap();
    assert_eq!(d.attribute("acme-big").unwrap().key.code, 70000);

    // A missing mandatory include names the including file and line.
    std::fs::write(&top, "# vendors\n\n$INCLUDE dictionary.missing\n").unwrap();
    let e = Dictionary::builtin().load_file(&top).unwrap_err();
    assert_eq!(e.file, top);
    assert_eq!(e.line, 3);
    assert!(matches!(e.reason, DictErrorKind::Io { .. }), "{e}");
    assert!(e.to_string().contains("dictionary.missing"), "{e}");

    // Errors inside an included file name that file.
    std::fs::write(sub.join("dictionary.bad"), "\nATTRIBUTE X 1 wrong\n").unwrap();
    std::fs::write(&top, "$INCLUDE vendors/dictionary.bad\n").unwrap();
    let e = Dictionary::builtin().load_file(&top).unwrap_err();
    assert_eq!(
        (e.file.as_path(), e.line),
        (sub.join("dictionary.bad").as_path(), 2)
    );

    // An include loop is cut off, not a stack overflow.
    std::fs::write(&top, "$INCLUDE dictionary\n").unwrap();
    let e = Dictionary::builtin().load_file(&top).unwrap_err();
    assert!(matches!(e.reason, DictErrorKind::IncludeDepth(_)), "{e}");

    // The top-level file itself missing: line 0.
    let e = Dictionary::builtin()
        .load_file(&dir.path().join("nope"))
        .unwrap_err();
    assert_eq!(e.line, 0);
}

#[test]
fn tlv_blocks() {
    let d = load(
        "VENDOR Acme 99999\nBEGIN-VENDOR Acme\nATTRIBUTE Acme-T 5 tlv\nBEGIN-TLV Acme-T\n\
         ATTRIBUTE Acme-T-A 1 integer\nATTRIBUTE Acme-T-B 2 string\nEND-TLV Acme-T\nEND-VENDOR Acme\n",
    )
    .unwrap();
    let b = d.attribute("Acme-T-B").unwrap();
    assert_eq!((b.key.vendor, b.path()), (99999, vec![5, 2]));
    let e =
        err("VENDOR Acme 99999\nBEGIN-VENDOR Acme\nATTRIBUTE Acme-X 5.1 string\nEND-VENDOR Acme\n");
    assert!(matches!(e.reason, DictErrorKind::NoParent { .. }), "{e}");
    let e = err("BEGIN-TLV User-Name\n");
    assert!(matches!(e.reason, DictErrorKind::NotTlv(_)), "{e}");
    let e = err("VENDOR Acme 99999\nBEGIN-VENDOR Acme\nATTRIBUTE Acme-T 5 tlv\nBEGIN-TLV Acme-T\nEND-VENDOR Acme\n");
    assert_eq!(e.line, 5);
    assert!(
        matches!(e.reason, DictErrorKind::UnclosedTlv { line: 4, .. }),
        "{e}"
    );
}
