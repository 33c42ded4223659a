//! The compiled-in dictionary: RFC 2865, 2866, 2867, 2868, 2869, 3162, 3580,
//! 4072, 5176, 5997, 6911 (plus RFC 4372's Chargeable-User-Identity, RFC
//! 4818's Delegated-IPv6-Prefix and RFC 6929's extended-space containers, so
//! files using `241.x` load on their own), Microsoft (RFC 2548) and WISPr.
//!
//! Kept as FreeRADIUS-format text and parsed by the ordinary loader, so there is
//! one parser to trust and the files read like the ones operators drop in.

use std::path::Path;
use std::sync::OnceLock;

use super::dictionary::Dictionary;
use super::error::DictError;

/// (origin shown in errors, text), in load order: values of 3580/5176 extend
/// attributes from 2865/2866/2868.
const FILES: &[(&str, &str)] = &[
    (
        "builtin/dictionary.rfc2865",
        include_str!("builtin/dictionary.rfc2865"),
    ),
    (
        "builtin/dictionary.rfc2866",
        include_str!("builtin/dictionary.rfc2866"),
    ),
    (
        "builtin/dictionary.rfc2867",
        include_str!("builtin/dictionary.rfc2867"),
    ),
    (
        "builtin/dictionary.rfc2868",
        include_str!("builtin/dictionary.rfc2868"),
    ),
    (
        "builtin/dictionary.rfc2869",
        include_str!("builtin/dictionary.rfc2869"),
    ),
    (
        "builtin/dictionary.rfc3162",
        include_str!("builtin/dictionary.rfc3162"),
    ),
    (
        "builtin/dictionary.rfc3580",
        include_str!("builtin/dictionary.rfc3580"),
    ),
    (
        "builtin/dictionary.rfc4072",
        include_str!("builtin/dictionary.rfc4072"),
    ),
    (
        "builtin/dictionary.rfc5176",
        include_str!("builtin/dictionary.rfc5176"),
    ),
    (
        "builtin/dictionary.rfc5997",
        include_str!("builtin/dictionary.rfc5997"),
    ),
    (
        "builtin/dictionary.rfc6911",
        include_str!("builtin/dictionary.rfc6911"),
    ),
    (
        "builtin/dictionary.rfc6929",
        include_str!("builtin/dictionary.rfc6929"),
    ),
    (
        "builtin/dictionary.microsoft",
        include_str!("builtin/dictionary.microsoft"),
    ),
    (
        "builtin/dictionary.wispr",
        include_str!("builtin/dictionary.wispr"),
    ),
];

/// Parses the embedded files into a fresh dictionary.
pub(crate) fn parse() -> Result<Dictionary, DictError> {
    let mut d = Dictionary::empty();
    for (origin, text) in FILES {
        d.load_str(text, Path::new(origin))?;
    }
    Ok(d)
}

impl Dictionary {
    /// The compiled-in RFC/Microsoft/WISPr dictionary. Parsed once per process
    /// and cloned, so calling it repeatedly is cheap.
    pub fn builtin() -> Dictionary {
        static BUILTIN: OnceLock<Dictionary> = OnceLock::new();
        BUILTIN
            .get_or_init(|| {
                // The text is part of the binary and a unit test parses it, so a
                // failure here is a build defect, not bad input.
                parse().unwrap_or_else(|e| panic!("built-in dictionary is invalid: {e}"))
            })
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dict::{AttrKey, AttrType, Encrypt};

    #[test]
    fn builtin_parses() {
        let d = parse().expect("built-in dictionary parses");
        assert!(d.attributes().count() > 100);
    }

    #[test]
    fn spot_checks() {
        let d = Dictionary::builtin();
        let a = d.attribute("Tunnel-Private-Group-Id").unwrap();
        assert_eq!(
            (a.key, a.ty, a.has_tag),
            (AttrKey::standard(81), AttrType::String, true)
        );
        let a = d.attribute("tunnel-password").unwrap();
        assert_eq!(a.key, AttrKey::standard(69));
        assert_eq!(a.encrypt, Encrypt::TunnelPassword);
        assert!(a.has_tag);
        let a = d.attribute("Message-Authenticator").unwrap();
        assert_eq!((a.key, a.ty), (AttrKey::standard(80), AttrType::Octets));
        let a = d.attribute("MS-MPPE-Send-Key").unwrap();
        assert_eq!(a.key, AttrKey::new(311, 16));
        assert_eq!(a.encrypt, Encrypt::TunnelPassword);
        assert_eq!(
            d.attribute("WISPr-Bandwidth-Max-Down").unwrap().key,
            AttrKey::new(14122, 8)
        );
        let st = d.attribute("Acct-Status-Type").unwrap().key;
        assert_eq!(d.value_by_name(st, "Interim-Update"), Some(3));
        assert_eq!(d.value_name(st, 7), Some("Accounting-On"));
        assert_eq!(d.value_name(st, 8), Some("Accounting-Off"));
        assert!(d.attribute("EAP-Message").unwrap().concat);
        assert_eq!(
            d.attribute("User-Password").unwrap().encrypt,
            Encrypt::UserPassword
        );
        assert_eq!(d.vendor("microsoft").unwrap().id, 311);
        assert_eq!(d.vendor(14122).unwrap().name, "WISPr");
        assert_eq!(d.name_of(AttrKey::standard(1)), Some("User-Name"));
        let tt = d.attribute("Tunnel-Type").unwrap().key;
        assert_eq!(d.value_by_name(tt, "VLAN"), Some(13));
        let sv = d.attribute("Service-Type").unwrap().key;
        assert_eq!(d.value_by_name(sv, "Authorize-Only"), Some(17));
    }
}
