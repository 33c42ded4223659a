//! Active Directory's bind diagnostics. AD answers a failed simple bind with result 49 and a
//! diagnostic message such as `80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext
//! error, data 52e, v4563`; the hex after `data` says why, which NPS logs as a reason code.

use crate::vocab::RejectReason;

/// The sub-code of an AD bind failure, if the message carries one.
pub fn bind_subcode(diagnostic: &str) -> Option<u32> {
    let rest = &diagnostic[diagnostic.find("data ")? + 5..];
    let hex: String = rest.chars().take_while(|c| c.is_ascii_hexdigit()).collect();
    u32::from_str_radix(&hex, 16).ok()
}

/// Why a bind with result 49 (invalidCredentials) failed, from AD's sub-code; a directory
/// without sub-codes (OpenLDAP) yields `BadPassword`.
pub fn reject_reason(diagnostic: &str) -> RejectReason {
    match bind_subcode(diagnostic) {
        Some(0x525) => RejectReason::UnknownUser,
        Some(0x530) | Some(0x531) => RejectReason::LogonRestricted,
        Some(0x532) => RejectReason::PasswordExpired,
        Some(0x773) => RejectReason::PasswordMustChange,
        Some(0x533) => RejectReason::AccountDisabled,
        Some(0x701) => RejectReason::AccountExpired,
        Some(0x775) => RejectReason::AccountLocked,
        _ => RejectReason::BadPassword,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(code: &str) -> String {
        format!("80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data {code}, v4563")
    }

    #[test]
    fn maps_ad_subcodes() {
        let table = [
            ("52e", RejectReason::BadPassword),
            ("525", RejectReason::UnknownUser),
            ("530", RejectReason::LogonRestricted),
            ("531", RejectReason::LogonRestricted),
            ("532", RejectReason::PasswordExpired),
            ("773", RejectReason::PasswordMustChange),
            ("533", RejectReason::AccountDisabled),
            ("701", RejectReason::AccountExpired),
            ("775", RejectReason::AccountLocked),
        ];
        for (code, want) in table {
            assert_eq!(reject_reason(&msg(code)), want, "{code}");
        }
        assert_eq!(bind_subcode(&msg("775")), Some(0x775));
    }

    #[test]
    fn plain_ldap_messages_are_bad_passwords() {
        assert_eq!(reject_reason(""), RejectReason::BadPassword);
        assert_eq!(
            reject_reason("Invalid credentials"),
            RejectReason::BadPassword
        );
        assert_eq!(bind_subcode("data zz"), None);
    }
}
