//! Authentication: the sans-IO decision path every request takes ([`pipeline`]), its
//! methods' credentials, its primary sources, the second-factor stage and the typed decision.

pub mod config;
pub mod context;
pub mod conversation;
pub mod credential;
pub mod decision;
pub mod local;
pub mod password;
pub mod pipeline;
pub mod second_factor;
pub mod sources;

pub use context::{Context, DirectorySettings, Now, Request};
pub use decision::{Decision, Outcome, Reply, Waiver};
pub use pipeline::{resume, start, Await, Continuation, Job, JobResult, Step};

use crate::policy::AuthSource;
use crate::proto::{Verified, CHAP_PASSWORD, USER_PASSWORD};

/// Who the primary authentication says the user is: what the policies and the second factor
/// decide on. The method travels with it, so every later stage sees how the user logged in.
#[derive(Debug, Clone, Copy)]
pub struct Identity<'i> {
    pub source: AuthSource,
    pub method: Option<Method>,
    /// The name later stages (the second factor's provider) know the user by: the
    /// directory's alternate login ID, the local user's name, or the User-Name as sent.
    pub presented: &'i str,
    /// Group names or DNs, for policies and MFA exemptions.
    pub groups: &'i [String],
}

/// How the NAS presented the user's credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Pap,
    Chap,
}

impl Method {
    /// The method of an Access-Request, from the attributes it carries.
    pub fn of(req: &Verified<'_>) -> Option<Method> {
        if req.attr(USER_PASSWORD).is_some() {
            Some(Method::Pap)
        } else if req.attr(CHAP_PASSWORD).is_some() {
            Some(Method::Chap)
        } else {
            None
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Method::Pap => "pap",
            Method::Chap => "chap",
        }
    }
}

/// Why a request was rejected; logged, never sent to the NAS (a reject says nothing by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    NoUserName,
    UnknownUser,
    BadPassword,
    /// Neither User-Password nor CHAP-Password (EAP and MS-CHAP are not served yet).
    NoSupportedCredentials,
    MalformedPassword,
    /// CHAP for a user whose password is stored hashed.
    ChapNeedsCleartext,
    /// An empty password: never sent to a directory (an empty simple bind "succeeds").
    EmptyPassword,
    /// The realm of the user name is not one the directory serves.
    UnknownRealm,
    /// Directory: logon hours or workstation restrictions (AD 530/531).
    LogonRestricted,
    /// Directory: password expired (AD 532).
    PasswordExpired,
    /// Directory: password must be changed at next logon (AD 773).
    PasswordMustChange,
    /// Directory: account disabled (AD 533).
    AccountDisabled,
    /// Directory: account expired (AD 701).
    AccountExpired,
    /// Directory: account locked out (AD 775).
    AccountLocked,
    /// Found in several directory entries: ambiguous, refused.
    AmbiguousUser,
    /// The directory could not be reached within the deadline and the policy says reject.
    DirectoryUnavailable,
    /// Too much directory work queued and the policy says reject.
    Overloaded,
    /// No network policy matched (or the matching one rejects).
    PolicyReject,
    /// MFA: the State is not one we issued for this client and user (forged or altered).
    MfaStateInvalid,
    /// MFA: the State's challenge expired.
    MfaStateExpired,
    /// MFA: the State was already used (single use).
    MfaStateReplayed,
    /// MFA: the code is wrong (or missing).
    MfaBadCode,
    /// MFA: the code was already used within its window.
    MfaCodeReused,
    /// MFA: the user has no second factor enrolled and the policy says reject.
    MfaNotEnrolled,
    /// MFA: the authentication method cannot carry a code (CHAP) and no push is configured.
    MfaUnsupportedMethod,
    /// MFA: too many challenges pending.
    MfaOverloaded,
    /// MFA: the provider could not be asked and the policy is fail-secure.
    MfaUnavailable,
    /// MFA: the user denied the push (or let it expire).
    MfaPushDenied,
    /// MFA: the provider refuses this user outright (Duo preauth `deny`).
    MfaDenied,
    /// MFA: User-Password was read in one `mfa_mode` before primary authentication, but the
    /// policy that decided after it requires another (see `NetworkPolicies::read_mode`).
    MfaModeMismatch,
    /// A local entry with no password (MFA-only: a directory user's TOTP secret) cannot
    /// authenticate as a primary, and no directory is configured.
    NoPassword,
}

impl RejectReason {
    pub fn label(self) -> &'static str {
        match self {
            RejectReason::NoUserName => "no_user_name",
            RejectReason::UnknownUser => "unknown_user",
            RejectReason::BadPassword => "bad_password",
            RejectReason::NoSupportedCredentials => "no_supported_credentials",
            RejectReason::MalformedPassword => "malformed_password",
            RejectReason::ChapNeedsCleartext => "chap_needs_cleartext",
            RejectReason::EmptyPassword => "empty_password",
            RejectReason::UnknownRealm => "unknown_realm",
            RejectReason::LogonRestricted => "logon_restricted",
            RejectReason::PasswordExpired => "password_expired",
            RejectReason::PasswordMustChange => "password_must_change",
            RejectReason::AccountDisabled => "account_disabled",
            RejectReason::AccountExpired => "account_expired",
            RejectReason::AccountLocked => "account_locked",
            RejectReason::AmbiguousUser => "ambiguous_user",
            RejectReason::DirectoryUnavailable => "directory_unavailable",
            RejectReason::Overloaded => "overloaded",
            RejectReason::PolicyReject => "policy_reject",
            RejectReason::MfaStateInvalid => "mfa_state_invalid",
            RejectReason::MfaStateExpired => "mfa_state_expired",
            RejectReason::MfaStateReplayed => "mfa_state_replayed",
            RejectReason::MfaBadCode => "mfa_bad_code",
            RejectReason::MfaCodeReused => "mfa_code_reused",
            RejectReason::MfaNotEnrolled => "mfa_not_enrolled",
            RejectReason::MfaUnsupportedMethod => "mfa_unsupported_method",
            RejectReason::MfaOverloaded => "mfa_overloaded",
            RejectReason::MfaUnavailable => "mfa_unavailable",
            RejectReason::MfaPushDenied => "mfa_push_denied",
            RejectReason::MfaDenied => "mfa_denied",
            RejectReason::MfaModeMismatch => "mfa_mode_mismatch",
            RejectReason::NoPassword => "no_password",
        }
    }
}
