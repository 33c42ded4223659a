//! Authentication methods: pure decisions over verified requests.

pub mod local;
pub mod password;

use crate::proto::{Verified, CHAP_PASSWORD, USER_PASSWORD};

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
        }
    }
}
