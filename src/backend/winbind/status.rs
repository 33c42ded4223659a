//! NT_STATUS codes that a winbind MS-CHAP check can answer, and what each means for RADIUS.
//!
//! Values are from [MS-ERREF] 2.3.1 (Samba's `libcli/util/ntstatus_gen.h`).

use std::fmt;

use crate::vocab::RejectReason;

/// An NTSTATUS as winbindd reports it (`wbcAuthErrorInfo.nt_status`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct NtStatus(pub u32);

impl NtStatus {
    pub const OK: NtStatus = NtStatus(0);
    pub const UNSUCCESSFUL: NtStatus = NtStatus(0xC000_0001);
    pub const ACCESS_DENIED: NtStatus = NtStatus(0xC000_0022);
    pub const NO_MEMORY: NtStatus = NtStatus(0xC000_0017);
    pub const NO_SUCH_USER: NtStatus = NtStatus(0xC000_0064);
    pub const WRONG_PASSWORD: NtStatus = NtStatus(0xC000_006A);
    pub const LOGON_FAILURE: NtStatus = NtStatus(0xC000_006D);
    pub const ACCOUNT_RESTRICTION: NtStatus = NtStatus(0xC000_006E);
    pub const INVALID_LOGON_HOURS: NtStatus = NtStatus(0xC000_006F);
    pub const INVALID_WORKSTATION: NtStatus = NtStatus(0xC000_0070);
    pub const PASSWORD_EXPIRED: NtStatus = NtStatus(0xC000_0071);
    pub const ACCOUNT_DISABLED: NtStatus = NtStatus(0xC000_0072);
    pub const NO_LOGON_SERVERS: NtStatus = NtStatus(0xC000_005E);
    pub const IO_TIMEOUT: NtStatus = NtStatus(0xC000_00B5);
    pub const CANT_ACCESS_DOMAIN_INFO: NtStatus = NtStatus(0xC000_00DA);
    pub const INVALID_SERVER_STATE: NtStatus = NtStatus(0xC000_00DC);
    pub const NO_SUCH_DOMAIN: NtStatus = NtStatus(0xC000_00DF);
    pub const INTERNAL_ERROR: NtStatus = NtStatus(0xC000_00E5);
    pub const NO_TRUST_SAM_ACCOUNT: NtStatus = NtStatus(0xC000_018B);
    pub const TRUSTED_DOMAIN_FAILURE: NtStatus = NtStatus(0xC000_018C);
    pub const TRUSTED_RELATIONSHIP_FAILURE: NtStatus = NtStatus(0xC000_018D);
    pub const ACCOUNT_EXPIRED: NtStatus = NtStatus(0xC000_0193);
    pub const NETLOGON_NOT_STARTED: NtStatus = NtStatus(0xC000_0192);
    pub const PASSWORD_MUST_CHANGE: NtStatus = NtStatus(0xC000_0224);
    pub const CONNECTION_REFUSED: NtStatus = NtStatus(0xC000_0236);
    pub const ACCOUNT_LOCKED_OUT: NtStatus = NtStatus(0xC000_0234);
    pub const DOMAIN_CONTROLLER_NOT_FOUND: NtStatus = NtStatus(0xC000_0233);
    pub const NTLM_BLOCKED: NtStatus = NtStatus(0xC000_0418);
    pub const RPC_NT_CALL_FAILED: NtStatus = NtStatus(0xC002_001B);
    pub const RPC_NT_SERVER_UNAVAILABLE: NtStatus = NtStatus(0xC002_0017);

    /// The symbolic name, for logs; `None` for a code this table does not know.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            NtStatus::OK => "NT_STATUS_OK",
            NtStatus::UNSUCCESSFUL => "NT_STATUS_UNSUCCESSFUL",
            NtStatus::ACCESS_DENIED => "NT_STATUS_ACCESS_DENIED",
            NtStatus::NO_MEMORY => "NT_STATUS_NO_MEMORY",
            NtStatus::NO_SUCH_USER => "NT_STATUS_NO_SUCH_USER",
            NtStatus::WRONG_PASSWORD => "NT_STATUS_WRONG_PASSWORD",
            NtStatus::LOGON_FAILURE => "NT_STATUS_LOGON_FAILURE",
            NtStatus::ACCOUNT_RESTRICTION => "NT_STATUS_ACCOUNT_RESTRICTION",
            NtStatus::INVALID_LOGON_HOURS => "NT_STATUS_INVALID_LOGON_HOURS",
            NtStatus::INVALID_WORKSTATION => "NT_STATUS_INVALID_WORKSTATION",
            NtStatus::PASSWORD_EXPIRED => "NT_STATUS_PASSWORD_EXPIRED",
            NtStatus::ACCOUNT_DISABLED => "NT_STATUS_ACCOUNT_DISABLED",
            NtStatus::NO_LOGON_SERVERS => "NT_STATUS_NO_LOGON_SERVERS",
            NtStatus::IO_TIMEOUT => "NT_STATUS_IO_TIMEOUT",
            NtStatus::CANT_ACCESS_DOMAIN_INFO => "NT_STATUS_CANT_ACCESS_DOMAIN_INFO",
            NtStatus::INVALID_SERVER_STATE => "NT_STATUS_INVALID_SERVER_STATE",
            NtStatus::NO_SUCH_DOMAIN => "NT_STATUS_NO_SUCH_DOMAIN",
            NtStatus::INTERNAL_ERROR => "NT_STATUS_INTERNAL_ERROR",
            NtStatus::NO_TRUST_SAM_ACCOUNT => "NT_STATUS_NO_TRUST_SAM_ACCOUNT",
            NtStatus::TRUSTED_DOMAIN_FAILURE => "NT_STATUS_TRUSTED_DOMAIN_FAILURE",
            NtStatus::TRUSTED_RELATIONSHIP_FAILURE => "NT_STATUS_TRUSTED_RELATIONSHIP_FAILURE",
            NtStatus::ACCOUNT_EXPIRED => "NT_STATUS_ACCOUNT_EXPIRED",
            NtStatus::NETLOGON_NOT_STARTED => "NT_STATUS_NETLOGON_NOT_STARTED",
            NtStatus::PASSWORD_MUST_CHANGE => "NT_STATUS_PASSWORD_MUST_CHANGE",
            NtStatus::CONNECTION_REFUSED => "NT_STATUS_CONNECTION_REFUSED",
            NtStatus::ACCOUNT_LOCKED_OUT => "NT_STATUS_ACCOUNT_LOCKED_OUT",
            NtStatus::DOMAIN_CONTROLLER_NOT_FOUND => "NT_STATUS_DOMAIN_CONTROLLER_NOT_FOUND",
            NtStatus::NTLM_BLOCKED => "NT_STATUS_NTLM_BLOCKED",
            NtStatus::RPC_NT_CALL_FAILED => "NT_STATUS_RPC_CALL_FAILED",
            NtStatus::RPC_NT_SERVER_UNAVAILABLE => "NT_STATUS_RPC_SERVER_UNAVAILABLE",
            _ => return None,
        })
    }

    /// What a failed check with this status means: a reject with a reason, or "the domain
    /// could not answer" (`None`), which the pipeline treats like an unreachable directory
    /// (drop or reject by policy) instead of telling the user their password is wrong.
    pub fn verdict(self) -> Option<RejectReason> {
        match self {
            // Unknown user and wrong password look the same to the NAS and in the reason, so
            // that the reason (logged, possibly exported as a metric label) does not become
            // an oracle for which account names exist.
            NtStatus::WRONG_PASSWORD | NtStatus::LOGON_FAILURE | NtStatus::NO_SUCH_USER => {
                Some(RejectReason::BadPassword)
            }
            NtStatus::ACCOUNT_LOCKED_OUT => Some(RejectReason::AccountLocked),
            NtStatus::ACCOUNT_DISABLED => Some(RejectReason::AccountDisabled),
            NtStatus::ACCOUNT_EXPIRED => Some(RejectReason::AccountExpired),
            NtStatus::PASSWORD_EXPIRED => Some(RejectReason::PasswordExpired),
            NtStatus::PASSWORD_MUST_CHANGE => Some(RejectReason::PasswordMustChange),
            NtStatus::INVALID_LOGON_HOURS
            | NtStatus::INVALID_WORKSTATION
            | NtStatus::ACCOUNT_RESTRICTION => Some(RejectReason::LogonRestricted),
            // A domain winbindd does not know: the user named a realm we do not serve.
            NtStatus::NO_SUCH_DOMAIN => Some(RejectReason::UnknownRealm),
            // The domain (or winbindd's link to it) is down or not ready: not the user's fault.
            NtStatus::NO_LOGON_SERVERS
            | NtStatus::INVALID_SERVER_STATE
            | NtStatus::IO_TIMEOUT
            | NtStatus::CANT_ACCESS_DOMAIN_INFO
            | NtStatus::INTERNAL_ERROR
            | NtStatus::NO_MEMORY
            | NtStatus::NO_TRUST_SAM_ACCOUNT
            | NtStatus::TRUSTED_DOMAIN_FAILURE
            | NtStatus::TRUSTED_RELATIONSHIP_FAILURE
            | NtStatus::NETLOGON_NOT_STARTED
            | NtStatus::CONNECTION_REFUSED
            | NtStatus::DOMAIN_CONTROLLER_NOT_FOUND
            | NtStatus::RPC_NT_CALL_FAILED
            | NtStatus::RPC_NT_SERVER_UNAVAILABLE => None,
            // Anything else the DC refused with (NTLM_BLOCKED when `ntlm auth` forbids the
            // protocol, ACCESS_DENIED, …) is a refusal, not an outage: fail closed, and the
            // status itself is logged so the operator sees which.
            _ => Some(RejectReason::BadPassword),
        }
    }
}

impl fmt::Display for NtStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{:#010x} ({n})", self.0),
            None => write!(f, "{:#010x}", self.0),
        }
    }
}

impl fmt::Debug for NtStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_hex_and_name() {
        assert_eq!(
            NtStatus::WRONG_PASSWORD.to_string(),
            "0xc000006a (NT_STATUS_WRONG_PASSWORD)"
        );
        assert_eq!(NtStatus(0xC0DE_0001).to_string(), "0xc0de0001");
    }

    #[test]
    fn maps_the_documented_statuses() {
        use RejectReason::*;
        let cases = [
            (0xC000_006A, Some(BadPassword)),
            (0xC000_006D, Some(BadPassword)),
            (0xC000_0064, Some(BadPassword)),
            (0xC000_0234, Some(AccountLocked)),
            (0xC000_0072, Some(AccountDisabled)),
            (0xC000_0193, Some(AccountExpired)),
            (0xC000_0071, Some(PasswordExpired)),
            (0xC000_0224, Some(PasswordMustChange)),
            (0xC000_006F, Some(LogonRestricted)),
            (0xC000_0070, Some(LogonRestricted)),
            (0xC000_006E, Some(LogonRestricted)),
            (0xC000_005E, None),
            (0xC000_00DC, None),
            (0xC000_0418, Some(BadPassword)),
        ];
        for (code, want) in cases {
            assert_eq!(NtStatus(code).verdict(), want, "{}", NtStatus(code));
        }
    }
}
