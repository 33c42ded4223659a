//! Error-Cause (attribute 101, RFC 5176 §3.5): why a NAS refused (or how it handled) a
//! Disconnect-Request or CoA-Request.

use serde::Serialize;

/// The Error-Cause attribute's type number.
pub const ERROR_CAUSE: u8 = 101;

/// One Error-Cause value: its code and, for the values RFC 5176 §3.5 defines, its name.
/// Serialised as `{"code": 503, "name": "Session-Context-Not-Found"}`; an unassigned code
/// keeps its number with the name `"Unknown"`, so nothing a NAS says is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct ErrorCause {
    pub code: u32,
    pub name: &'static str,
}

/// The values RFC 5176 §3.5 defines, in code order.
pub const KNOWN: [(u32, &str); 17] = [
    (201, "Residual-Session-Context-Removed"),
    (202, "Invalid-EAP-Packet"),
    (401, "Unsupported-Attribute"),
    (402, "Missing-Attribute"),
    (403, "NAS-Identification-Mismatch"),
    (404, "Invalid-Request"),
    (405, "Unsupported-Service"),
    (406, "Unsupported-Extension"),
    (407, "Invalid-Attribute-Value"),
    (501, "Administratively-Prohibited"),
    (502, "Request-Not-Routable"),
    (503, "Session-Context-Not-Found"),
    (504, "Session-Context-Not-Removable"),
    (505, "Other-Proxy-Processing-Error"),
    (506, "Resources-Unavailable"),
    (507, "Request-Initiated"),
    (508, "Multiple-Session-Selection-Unsupported"),
];

impl ErrorCause {
    pub const RESIDUAL_SESSION_CONTEXT_REMOVED: ErrorCause = ErrorCause::known(0);
    pub const INVALID_EAP_PACKET: ErrorCause = ErrorCause::known(1);
    pub const UNSUPPORTED_ATTRIBUTE: ErrorCause = ErrorCause::known(2);
    pub const MISSING_ATTRIBUTE: ErrorCause = ErrorCause::known(3);
    pub const NAS_IDENTIFICATION_MISMATCH: ErrorCause = ErrorCause::known(4);
    pub const INVALID_REQUEST: ErrorCause = ErrorCause::known(5);
    pub const UNSUPPORTED_SERVICE: ErrorCause = ErrorCause::known(6);
    pub const UNSUPPORTED_EXTENSION: ErrorCause = ErrorCause::known(7);
    pub const INVALID_ATTRIBUTE_VALUE: ErrorCause = ErrorCause::known(8);
    pub const ADMINISTRATIVELY_PROHIBITED: ErrorCause = ErrorCause::known(9);
    pub const REQUEST_NOT_ROUTABLE: ErrorCause = ErrorCause::known(10);
    pub const SESSION_CONTEXT_NOT_FOUND: ErrorCause = ErrorCause::known(11);
    pub const SESSION_CONTEXT_NOT_REMOVABLE: ErrorCause = ErrorCause::known(12);
    pub const OTHER_PROXY_PROCESSING_ERROR: ErrorCause = ErrorCause::known(13);
    pub const RESOURCES_UNAVAILABLE: ErrorCause = ErrorCause::known(14);
    pub const REQUEST_INITIATED: ErrorCause = ErrorCause::known(15);
    pub const MULTIPLE_SESSION_SELECTION_UNSUPPORTED: ErrorCause = ErrorCause::known(16);

    const fn known(i: usize) -> ErrorCause {
        ErrorCause {
            code: KNOWN[i].0,
            name: KNOWN[i].1,
        }
    }

    /// The cause for a code; unassigned codes are kept with the name `"Unknown"`.
    pub fn from_code(code: u32) -> ErrorCause {
        match KNOWN.iter().find(|(c, _)| *c == code) {
            Some(&(code, name)) => ErrorCause { code, name },
            None => ErrorCause {
                code,
                name: "Unknown",
            },
        }
    }

    /// Decodes an Error-Cause attribute value (a 4-octet integer); anything else is `None`.
    pub fn from_value(value: &[u8]) -> Option<ErrorCause> {
        let octets: [u8; 4] = value.try_into().ok()?;
        Some(ErrorCause::from_code(u32::from_be_bytes(octets)))
    }

    /// The position among [`KNOWN`], or `KNOWN.len()` for an unassigned code: an index for
    /// fixed-size metric arrays.
    pub fn index(&self) -> usize {
        KNOWN
            .iter()
            .position(|(c, _)| *c == self.code)
            .unwrap_or(KNOWN.len())
    }

    /// RFC 5176 §3.5: 2xx values are informational (the request succeeded), 4xx and 5xx
    /// errors.
    pub fn is_error(&self) -> bool {
        self.code >= 400
    }
}

impl std::fmt::Display for ErrorCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name, self.code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_known_unknown_and_malformed_values() {
        let c = ErrorCause::from_value(&503u32.to_be_bytes()).expect("4 octets");
        assert_eq!(c, ErrorCause::SESSION_CONTEXT_NOT_FOUND);
        assert_eq!(c.name, "Session-Context-Not-Found");
        assert_eq!(ErrorCause::UNSUPPORTED_ATTRIBUTE.code, 401);
        assert_eq!(ErrorCause::MULTIPLE_SESSION_SELECTION_UNSUPPORTED.code, 508);
        let odd = ErrorCause::from_code(999);
        assert_eq!((odd.name, odd.index()), ("Unknown", KNOWN.len()));
        assert_eq!(ErrorCause::from_value(&[1, 2, 3]), None);
        assert!(!ErrorCause::RESIDUAL_SESSION_CONTEXT_REMOVED.is_error());
        assert!(ErrorCause::REQUEST_NOT_ROUTABLE.is_error());
        let json = serde_json::to_string(&c).expect("serialises");
        assert_eq!(json, r#"{"code":503,"name":"Session-Context-Not-Found"}"#);
    }
}
