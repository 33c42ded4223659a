//! The shared vocabulary of an authentication: how the user logged in ([`Method`]), where the
//! password was checked ([`AuthSource`]), how a second factor's code is presented
//! ([`MfaMode`]) and why a request was rejected ([`RejectReason`]). A leaf: the pipeline, the
//! policies and the backends all speak it, and it imports none of them.

use crate::proto::{
    Verified, CHAP_PASSWORD, MICROSOFT, MS_CHAP2_CPW, MS_CHAP2_RESPONSE, MS_CHAP_RESPONSE,
    USER_PASSWORD,
};

/// How the NAS presented the user's credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Pap,
    Chap,
    /// MS-CHAP v1 (RFC 2433): MS-CHAP-Challenge (8 octets) and MS-CHAP-Response.
    MsChap,
    /// MS-CHAP v2 (RFC 2759): MS-CHAP-Challenge (16 octets) and MS-CHAP2-Response.
    MsChapV2,
    /// EAP-TLS (RFC 5216, RFC 9190): a client certificate.
    EapTls,
    /// PEAPv0 (MS-PEAP): inner EAP-MSCHAPv2 or EAP-GTC in a TLS tunnel.
    Peap,
    /// EAP-TTLS (RFC 5281): inner PAP, MS-CHAPv2 or EAP in a TLS tunnel.
    Ttls,
}

impl Method {
    /// The method of an Access-Request, from the attributes it carries.
    pub fn of(req: &Verified<'_>) -> Option<Method> {
        if req.attr(USER_PASSWORD).is_some() {
            Some(Method::Pap)
        } else if req.attr(CHAP_PASSWORD).is_some() {
            Some(Method::Chap)
        } else if req.vendor_attr(MICROSOFT, MS_CHAP2_RESPONSE).is_some()
            || req.vendor_attr(MICROSOFT, MS_CHAP2_CPW).is_some()
        {
            Some(Method::MsChapV2)
        } else if req.vendor_attr(MICROSOFT, MS_CHAP_RESPONSE).is_some() {
            Some(Method::MsChap)
        } else {
            None
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Method::Pap => "pap",
            Method::Chap => "chap",
            Method::MsChap => "mschap",
            Method::MsChapV2 => "mschapv2",
            Method::EapTls => "eap-tls",
            Method::Peap => "peap",
            Method::Ttls => "ttls",
        }
    }

    /// The method a policy's `auth_methods` entry names.
    pub fn from_label(label: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.label() == label)
    }

    pub const ALL: [Method; 7] = [
        Method::Pap,
        Method::Chap,
        Method::MsChap,
        Method::MsChapV2,
        Method::EapTls,
        Method::Peap,
        Method::Ttls,
    ];

    /// An EAP method (EAP-TLS, PEAP, TTLS): carried in EAP-Message, decided over several
    /// rounds.
    pub fn is_eap(self) -> bool {
        matches!(self, Method::EapTls | Method::Peap | Method::Ttls)
    }

    /// MS-CHAP v1 or v2: the password arrives as a challenge response, so the source needs
    /// the cleartext or the NT hash, and no code can travel with it.
    pub fn is_ms_chap(self) -> bool {
        matches!(self, Method::MsChap | Method::MsChapV2)
    }
}

/// Why a request was rejected; logged, never sent to the NAS (a reject says nothing by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    NoUserName,
    UnknownUser,
    BadPassword,
    /// None of User-Password, CHAP-Password, MS-CHAP(2)-Response (EAP is not served yet).
    NoSupportedCredentials,
    MalformedPassword,
    /// CHAP for a user whose password is stored hashed.
    ChapNeedsCleartext,
    /// MS-CHAP for a user whose password is stored in a hash MS-CHAP cannot use (neither the
    /// cleartext nor the NT hash).
    MsChapNeedsNtHash,
    /// MS-CHAP attributes of the wrong shape: a challenge or response of the wrong length, a
    /// v1 response without an NT-Response, or a response without its challenge.
    MalformedMsChap,
    /// An MS-CHAPv2 password change (MS-CHAP2-CPW): not offered; refused with E=709.
    PasswordChangeUnsupported,
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
    /// The user has as many open sessions as a Simultaneous-Use cap allows.
    SimultaneousUse,
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
    /// EAP: not EAP we can read (bad lengths, an unexpected Code or Type, a fragment out of
    /// order, a TLS message past its bound).
    EapMalformed,
    /// EAP: the peer refused every method we offer (a Nak naming none of ours).
    EapNoMethod,
    /// EAP: the State names no conversation of ours (forged, expired, or used before).
    EapUnknownConversation,
    /// EAP: too many conversations open (in all, or for this client): new ones refused.
    EapConversationsFull,
    /// EAP: the TLS handshake failed (an alert, a protocol error).
    TlsHandshakeFailed,
    /// EAP-TLS: the client certificate was refused (unknown CA, expired, revoked, wrong EKU).
    CertificateRejected,
    /// EAP-TLS: the certificate does not name the EAP identity.
    CertificateIdentityMismatch,
    /// EAP: the handshake workers were busy past their queue's bound, or did not answer in
    /// time.
    TlsOverloaded,
    /// EAP: the inner method asked for something the tunnel does not carry (an OTP challenge).
    InnerChallengeUnsupported,
    /// PEAP: the peer's Cryptobinding TLV (MS-PEAP §2.2.8.1.1) did not verify (wrong Compound
    /// MAC, nonce, version or subtype), or it sent none and `peap_crypto_binding = "required"`:
    /// the inner login may have been relayed into another tunnel.
    PeapCryptoBindingFailed,
    /// Proxy: the User-Name is not a valid NAI (RFC 7542), so it cannot be routed.
    InvalidNai,
    /// Proxy: the realm is configured as refused.
    RealmRejected,
    /// Proxy: no realm entry (exact, regex or default) matches.
    NoRealmRoute,
    /// Proxy: the home server answered Access-Reject.
    HomeServerReject,
    /// Proxy: no home server of the pool is alive and the pool says reject.
    NoHomeServer,
    /// Proxy: the home server did not answer within its response window.
    HomeServerTimeout,
    /// Proxy: the request carries more Proxy-States than allowed (a loop between proxies).
    ProxyLoop,
    /// Proxy: the request could not be forwarded or the answer relayed (malformed).
    ProxyFailed,
    /// SQL: the user's check items say `Auth-Type := Reject`.
    AuthTypeReject,
    /// SQL: `Auth-Type` names a method the request does not use, or one radshard lacks.
    UnsupportedAuthType,
    /// SQL: the user's known-good password is in a form radshard cannot check (DES crypt,
    /// LM, PBKDF2, a digest of the wrong length).
    UnsupportedHash,
    /// SQL: a row of the user's (or a group's) is unusable: an unknown attribute, a value
    /// that does not parse (FreeRADIUS fails the lookup the same way).
    SqlInvalidRow,
    /// SQL: the database did not answer within the deadline and the policy says reject.
    SqlUnavailable,
    /// `[sql] ip_pool`: no free address and `on_exhausted = "reject"`.
    IpPoolExhausted,
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
            RejectReason::MsChapNeedsNtHash => "mschap_needs_nt_hash",
            RejectReason::MalformedMsChap => "malformed_mschap",
            RejectReason::PasswordChangeUnsupported => "password_change_unsupported",
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
            RejectReason::SimultaneousUse => "simultaneous_use",
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
            RejectReason::EapMalformed => "eap_malformed",
            RejectReason::EapNoMethod => "eap_no_method",
            RejectReason::EapUnknownConversation => "eap_unknown_conversation",
            RejectReason::EapConversationsFull => "eap_conversations_full",
            RejectReason::TlsHandshakeFailed => "tls_handshake_failed",
            RejectReason::CertificateRejected => "certificate_rejected",
            RejectReason::CertificateIdentityMismatch => "certificate_identity_mismatch",
            RejectReason::TlsOverloaded => "tls_overloaded",
            RejectReason::InnerChallengeUnsupported => "inner_challenge_unsupported",
            RejectReason::PeapCryptoBindingFailed => "peap_crypto_binding_failed",
            RejectReason::InvalidNai => "invalid_nai",
            RejectReason::RealmRejected => "realm_rejected",
            RejectReason::NoRealmRoute => "no_realm_route",
            RejectReason::HomeServerReject => "home_server_reject",
            RejectReason::NoHomeServer => "no_home_server",
            RejectReason::HomeServerTimeout => "home_server_timeout",
            RejectReason::ProxyLoop => "proxy_loop",
            RejectReason::ProxyFailed => "proxy_failed",
            RejectReason::AuthTypeReject => "auth_type_reject",
            RejectReason::UnsupportedAuthType => "unsupported_auth_type",
            RejectReason::UnsupportedHash => "unsupported_password_hash",
            RejectReason::SqlInvalidRow => "sql_invalid_row",
            RejectReason::SqlUnavailable => "sql_unavailable",
            RejectReason::IpPoolExhausted => "ip_pool_exhausted",
        }
    }
}

/// Where the user's password was checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthSource {
    Local,
    Ldap,
    /// The NAS did the primary authentication itself (`[[policies]] primary = "nas"`); only
    /// the second factor was checked here.
    Nas,
    /// EAP-TLS: a client certificate a trusted CA signed.
    Certificate,
    /// A home server answered (`[proxy]`).
    Proxy,
    /// The SQL user store (`[sql]`, FreeRADIUS's schema).
    Sql,
}

impl AuthSource {
    pub fn label(self) -> &'static str {
        match self {
            AuthSource::Local => "local",
            AuthSource::Ldap => "ldap",
            AuthSource::Nas => "nas",
            AuthSource::Certificate => "certificate",
            AuthSource::Proxy => "proxy",
            AuthSource::Sql => "sql",
        }
    }
}

/// How a policy that requires a second factor gets the code (`[[policies]] mfa_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MfaMode {
    /// Access-Challenge, then a follow-up Access-Request with the State and the code.
    #[default]
    Challenge,
    /// One Access-Request: User-Password is `password,code`, split at the last comma (a
    /// password may contain commas; a code does not).
    PasswordCode,
    /// One Access-Request: User-Password is the password followed by a code of this many
    /// digits.
    AppendedCode(u8),
    /// The NAS did the primary authentication (`primary = "nas"`): all of User-Password is
    /// the code (empty with a push).
    CodeOnly,
}

impl MfaMode {
    pub fn label(self) -> &'static str {
        match self {
            MfaMode::Challenge => "challenge",
            MfaMode::PasswordCode => "password_code",
            MfaMode::AppendedCode(_) => "appended_code",
            MfaMode::CodeOnly => "code_only",
        }
    }

    /// Whether the code travels in the same Access-Request as the password.
    pub fn is_combined(self) -> bool {
        !matches!(self, MfaMode::Challenge)
    }

    /// Splits a User-Password read in this mode into (password, code); `None` when it cannot
    /// hold both (no comma or an empty code; too short or a tail that is not all digits).
    /// In challenge mode the whole value is the password and the code is empty.
    pub fn split(self, value: &[u8]) -> Option<(&[u8], &[u8])> {
        match self {
            MfaMode::Challenge => Some((value, &[])),
            MfaMode::PasswordCode => {
                let comma = value.iter().rposition(|&b| b == b',')?;
                let (password, code) = (&value[..comma], &value[comma + 1..]);
                (!code.is_empty()).then_some((password, code))
            }
            MfaMode::AppendedCode(n) => {
                let n = usize::from(n);
                // At least one octet of password: an empty one is never sent to a directory.
                let at = value.len().checked_sub(n).filter(|&at| at > 0)?;
                let (password, code) = value.split_at(at);
                code.iter()
                    .all(u8::is_ascii_digit)
                    .then_some((password, code))
            }
            MfaMode::CodeOnly => Some((&[], value)),
        }
    }
}
