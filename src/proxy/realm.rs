//! NAIs (RFC 7542) and the realm routing table.
//!
//! [`parse_nai`] splits a User-Name into user and realm and refuses the junk that must never
//! be proxied (a realm without a dot such as `user@gmail`, a bare `@example.com`, leading or
//! trailing dots or spaces): a federation such as eduroam asks every member to reject those
//! locally, since forwarding them only burdens the upper servers with requests nobody can
//! answer. [`RealmTable::route`] then maps the realm to a [`Route`]: exact realms first
//! (case-insensitive), then regular expressions in configuration order, then a default.
//!
//! Nothing here allocates per request: exact lookups fold case into a stack buffer.

use std::collections::HashMap;

use regex::{Regex, RegexBuilder};

/// Longest realm: a DNS name (RFC 1035 §2.3.4), which RFC 7542 §2.2 builds realms on.
pub const MAX_REALM_LEN: usize = 253;
/// Longest realm label (RFC 1035 §2.3.4).
pub const MAX_LABEL_LEN: usize = 63;
/// Longest User-Name we parse: a RADIUS attribute value holds at most 253 octets.
pub const MAX_NAME_LEN: usize = 253;
/// Bound on exact realms. A federation proxy lists a few thousand at most; past the bound
/// `add_exact` refuses with [`RealmTableError::TooManyExact`] (a config error, not a drop).
pub const MAX_EXACT_REALMS: usize = 100_000;
/// Bound on regex realms. They are tried one after another on every request that no exact
/// realm matched, so their number is a per-request cost; past the bound `add_regex` refuses.
pub const MAX_REGEX_REALMS: usize = 256;
/// Compiled-size limit of one realm regex, so a pathological pattern fails at load time.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Which forms besides `user@realm` (always on) are recognised.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NaiForms {
    /// `realm/user` (a prefix realm, as some dial-up era NASes send).
    pub prefix_slash: bool,
    /// `DOMAIN\user` (a Windows domain, as PEAP supplicants on domain machines send).
    pub nt_domain: bool,
}

/// Where the realm was found in the User-Name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RealmForm {
    /// `user@realm`.
    Suffix,
    /// `realm/user`.
    Prefix,
    /// `DOMAIN\user`.
    NtDomain,
}

/// A realm as it appeared in the User-Name (case preserved).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Realm<'u> {
    pub name: &'u str,
    pub form: RealmForm,
}

/// A parsed User-Name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Nai<'u> {
    /// The user part: the whole name when there is no realm.
    pub user: &'u str,
    pub realm: Option<Realm<'u>>,
}

/// Why a User-Name is not a NAI we route. Each has a stable `label()` for the counters and
/// the decision log.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum NaiError {
    #[error("User-Name is empty")]
    Empty,
    #[error("User-Name is longer than 253 octets")]
    TooLong,
    #[error("User-Name is not UTF-8")]
    NotUtf8,
    #[error("User-Name contains a control character")]
    ControlChar,
    /// Leading or trailing white space in the name, or any inside the realm.
    #[error("User-Name has leading/trailing white space or white space in the realm")]
    Whitespace,
    /// `@example.com`: a realm with nobody in front of it.
    #[error("User-Name has an empty user part")]
    EmptyUser,
    /// `user@` or `\user`.
    #[error("realm is empty")]
    EmptyRealm,
    /// `user@gmail`: RFC 7542 §2.2 realms are DNS names with at least one dot.
    #[error("realm has no dot")]
    RealmNoDot,
    #[error("realm starts with a dot")]
    RealmLeadingDot,
    #[error("realm ends with a dot")]
    RealmTrailingDot,
    #[error("realm has an empty label")]
    RealmEmptyLabel,
    #[error("realm label starts or ends with a hyphen")]
    RealmLabelHyphen,
    #[error("realm has a character outside letters, digits, '-' and '.'")]
    RealmBadChar,
    #[error("realm is longer than 253 octets")]
    RealmTooLong,
    #[error("realm label is longer than 63 octets")]
    RealmLabelTooLong,
}

impl NaiError {
    /// Stable metrics label.
    pub const fn label(&self) -> &'static str {
        match self {
            NaiError::Empty => "empty",
            NaiError::TooLong => "too_long",
            NaiError::NotUtf8 => "not_utf8",
            NaiError::ControlChar => "control_char",
            NaiError::Whitespace => "whitespace",
            NaiError::EmptyUser => "empty_user",
            NaiError::EmptyRealm => "empty_realm",
            NaiError::RealmNoDot => "realm_no_dot",
            NaiError::RealmLeadingDot => "realm_leading_dot",
            NaiError::RealmTrailingDot => "realm_trailing_dot",
            NaiError::RealmEmptyLabel => "realm_empty_label",
            NaiError::RealmLabelHyphen => "realm_label_hyphen",
            NaiError::RealmBadChar => "realm_bad_char",
            NaiError::RealmTooLong => "realm_too_long",
            NaiError::RealmLabelTooLong => "realm_label_too_long",
        }
    }
}

/// Parses a User-Name.
///
/// The realm is split at the LAST `@` (RFC 7542 §2.7 decorated names `a.org!user@b.org`
/// route on the outer realm, and a user part that itself contains `@` still routes on what
/// follows the last one). Without an `@`: `DOMAIN\user` when enabled, then `realm/user`
/// when enabled; a slash prefix without a dot (`host/pc.example.com`, how Windows machine
/// accounts log in) is not a realm, so the name is realm-less rather than rejected.
///
/// White space inside the user part is allowed (local directory names have it); white
/// space at either end of the name, or anywhere in a realm, is refused.
pub fn parse_nai(name: &[u8], forms: NaiForms) -> Result<Nai<'_>, NaiError> {
    if name.is_empty() {
        return Err(NaiError::Empty);
    }
    if name.len() > MAX_NAME_LEN {
        return Err(NaiError::TooLong);
    }
    let name = core::str::from_utf8(name).map_err(|_| NaiError::NotUtf8)?;
    if name.chars().any(char::is_control) {
        return Err(NaiError::ControlChar);
    }
    if name.starts_with(char::is_whitespace) || name.ends_with(char::is_whitespace) {
        return Err(NaiError::Whitespace);
    }
    if let Some((user, realm)) = name.rsplit_once('@') {
        if user.is_empty() {
            return Err(NaiError::EmptyUser);
        }
        validate_realm(realm)?;
        return Ok(Nai {
            user,
            realm: Some(Realm {
                name: realm,
                form: RealmForm::Suffix,
            }),
        });
    }
    if forms.nt_domain {
        if let Some((domain, user)) = name.split_once('\\') {
            validate_nt_domain(domain)?;
            if user.is_empty() {
                return Err(NaiError::EmptyUser);
            }
            return Ok(Nai {
                user,
                realm: Some(Realm {
                    name: domain,
                    form: RealmForm::NtDomain,
                }),
            });
        }
    }
    if forms.prefix_slash {
        if let Some((realm, user)) = name.split_once('/') {
            if realm.contains('.') {
                validate_realm(realm)?;
                if user.is_empty() {
                    return Err(NaiError::EmptyUser);
                }
                return Ok(Nai {
                    user,
                    realm: Some(Realm {
                        name: realm,
                        form: RealmForm::Prefix,
                    }),
                });
            }
        }
    }
    Ok(Nai {
        user: name,
        realm: None,
    })
}

/// RFC 7542 §2.2 realm rules: labels of letters, digits, hyphens (not at a label's ends)
/// and non-ASCII UTF-8, at least two labels, none empty.
pub fn validate_realm(realm: &str) -> Result<(), NaiError> {
    check_realm_chars(realm, false)?;
    check_dots(realm)?;
    if !realm.contains('.') {
        return Err(NaiError::RealmNoDot);
    }
    check_labels(realm)
}

/// A Windows domain: NetBIOS (`EXAMPLE`, no dot needed) or DNS style (`example.com`, then
/// the dot rules apply). Underscores are allowed, NetBIOS names have them.
fn validate_nt_domain(domain: &str) -> Result<(), NaiError> {
    check_realm_chars(domain, true)?;
    check_dots(domain)?;
    check_labels(domain)
}

fn check_realm_chars(realm: &str, underscore: bool) -> Result<(), NaiError> {
    if realm.is_empty() {
        return Err(NaiError::EmptyRealm);
    }
    if realm.len() > MAX_REALM_LEN {
        return Err(NaiError::RealmTooLong);
    }
    for c in realm.chars() {
        if c.is_whitespace() {
            return Err(NaiError::Whitespace);
        }
        let ok = c.is_ascii_alphanumeric()
            || c == '-'
            || c == '.'
            || (underscore && c == '_')
            || !c.is_ascii();
        if !ok {
            return Err(NaiError::RealmBadChar);
        }
    }
    Ok(())
}

fn check_dots(realm: &str) -> Result<(), NaiError> {
    if realm.starts_with('.') {
        return Err(NaiError::RealmLeadingDot);
    }
    if realm.ends_with('.') {
        return Err(NaiError::RealmTrailingDot);
    }
    if realm.contains("..") {
        return Err(NaiError::RealmEmptyLabel);
    }
    Ok(())
}

fn check_labels(realm: &str) -> Result<(), NaiError> {
    for label in realm.split('.') {
        if label.len() > MAX_LABEL_LEN {
            return Err(NaiError::RealmLabelTooLong);
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(NaiError::RealmLabelHyphen);
        }
    }
    Ok(())
}

/// Where a realm's authentication goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthTarget {
    /// Answered by this server's own sources.
    Local,
    /// Proxied to the named pool.
    Pool(Box<str>),
    /// Rejected here (a realm the operator refuses).
    Reject,
}

/// Where a realm's accounting goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AcctTarget {
    /// Recorded and answered here.
    Local,
    /// Proxied to the named pool.
    Pool(Box<str>),
}

/// Whether the realm is removed from User-Name before the request goes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StripRealm {
    Strip,
    Keep,
    /// Strip, except for EAP: the home server checks User-Name against the EAP identity
    /// (which keeps its realm), so an EAP request keeps it.
    KeepForEap,
}

/// One realm's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RealmRoute {
    pub auth: AuthTarget,
    pub acct: AcctTarget,
    pub strip: StripRealm,
}

/// Which rule decided a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Matched {
    Exact,
    /// The regex at this position in configuration order.
    Regex(usize),
    Default,
    /// The route for names without a realm.
    NoRealm,
    /// No rule applies (or the name is invalid).
    Nothing,
}

/// Why a route rejects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteReject {
    /// The User-Name is not a valid NAI.
    InvalidNai(NaiError),
    /// The realm is configured as rejected.
    RealmRejected,
    /// No exact realm, regex or default matched (or the name has no realm and there is no
    /// realm-less route).
    NoRoute,
}

impl RouteReject {
    /// Stable metrics label.
    pub const fn label(&self) -> &'static str {
        match self {
            RouteReject::InvalidNai(e) => e.label(),
            RouteReject::RealmRejected => "realm_rejected",
            RouteReject::NoRoute => "no_route",
        }
    }
}

/// What to do with an Access-Request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthAction<'t> {
    Local,
    Pool(&'t str),
    Reject(RouteReject),
}

/// What to do with an Accounting-Request. An invalid or unrouted name is recorded and
/// answered here: there is no Accounting-Reject, and a NAS left unanswered retries forever.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcctAction<'t> {
    Local,
    Pool(&'t str),
}

/// The routing decision for one User-Name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route<'t, 'u> {
    pub matched: Matched,
    /// The realm as it appeared (case preserved), if any.
    pub realm: Option<Realm<'u>>,
    /// The User-Name to use from here on: stripped of its realm when the route says so.
    pub user_name: &'u [u8],
    pub auth: AuthAction<'t>,
    pub acct: AcctAction<'t>,
}

/// Why the routing table refuses a configuration item.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum RealmTableError {
    #[error("more than {MAX_EXACT_REALMS} exact realms")]
    TooManyExact,
    #[error("more than {MAX_REGEX_REALMS} regex realms")]
    TooManyRegex,
    #[error("realm {0:?} is listed twice")]
    Duplicate(String),
    #[error("realm {realm:?} is not a valid realm: {reason}")]
    InvalidRealm { realm: String, reason: NaiError },
    #[error("realm regex {pattern:?}: {message}")]
    BadRegex { pattern: String, message: String },
}

/// The realm routing table: exact realms, regexes in order, a default, and the route of
/// realm-less names.
#[derive(Clone, Debug, Default)]
pub struct RealmTable {
    forms: NaiForms,
    /// ASCII-lowercased realm → route. DNS case-insensitivity is ASCII only (RFC 4343), so
    /// non-ASCII labels compare exactly.
    exact: Map<Box<[u8]>, RealmRoute>,
    regex: Vec<(Regex, RealmRoute)>,
    default: Option<RealmRoute>,
    no_realm: Option<RealmRoute>,
}

impl RealmTable {
    pub fn new(forms: NaiForms) -> Self {
        RealmTable {
            forms,
            ..RealmTable::default()
        }
    }

    /// Adds an exact realm. NetBIOS domains (no dot) are accepted here, since `DOMAIN\user`
    /// routes through the same table.
    pub fn add_exact(&mut self, realm: &str, route: RealmRoute) -> Result<(), RealmTableError> {
        validate_nt_domain(realm).map_err(|reason| RealmTableError::InvalidRealm {
            realm: realm.to_owned(),
            reason,
        })?;
        if self.exact.len() >= MAX_EXACT_REALMS {
            return Err(RealmTableError::TooManyExact);
        }
        let key: Box<[u8]> = realm.to_ascii_lowercase().into_bytes().into_boxed_slice();
        if self.exact.contains_key(&key) {
            return Err(RealmTableError::Duplicate(realm.to_owned()));
        }
        self.exact.insert(key, route);
        Ok(())
    }

    /// Adds a regex realm, matched case-insensitively against the realm (not the whole
    /// name) and unanchored, as FreeRADIUS's `~` realms: anchor it (`^…$`) to match whole.
    pub fn add_regex(&mut self, pattern: &str, route: RealmRoute) -> Result<(), RealmTableError> {
        if self.regex.len() >= MAX_REGEX_REALMS {
            return Err(RealmTableError::TooManyRegex);
        }
        let re = RegexBuilder::new(pattern)
            .case_insensitive(true)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map_err(|e| RealmTableError::BadRegex {
                pattern: pattern.to_owned(),
                message: e.to_string(),
            })?;
        self.regex.push((re, route));
        Ok(())
    }

    /// The route of any realm no exact realm or regex matched. Realm-less names never take
    /// it (a federation's upper servers must not see them); they take [`Self::set_no_realm`].
    pub fn set_default(&mut self, route: RealmRoute) {
        self.default = Some(route);
    }

    /// The route of names without a realm (FreeRADIUS's `NULL` realm).
    pub fn set_no_realm(&mut self, route: RealmRoute) {
        self.no_realm = Some(route);
    }

    /// Routes a User-Name. `is_eap` says whether the request carries EAP-Message (for
    /// [`StripRealm::KeepForEap`]).
    pub fn route<'t, 'u>(&'t self, user_name: &'u [u8], is_eap: bool) -> Route<'t, 'u> {
        let nai = match parse_nai(user_name, self.forms) {
            Ok(nai) => nai,
            Err(e) => {
                return Route {
                    matched: Matched::Nothing,
                    realm: None,
                    user_name,
                    auth: AuthAction::Reject(RouteReject::InvalidNai(e)),
                    acct: AcctAction::Local,
                }
            }
        };
        let found = match nai.realm {
            None => self.no_realm.as_ref().map(|r| (Matched::NoRealm, r)),
            Some(realm) => self.lookup(realm.name),
        };
        let Some((matched, rr)) = found else {
            return Route {
                matched: Matched::Nothing,
                realm: nai.realm,
                user_name,
                auth: AuthAction::Reject(RouteReject::NoRoute),
                acct: AcctAction::Local,
            };
        };
        let strip = match rr.strip {
            StripRealm::Strip => true,
            StripRealm::Keep => false,
            StripRealm::KeepForEap => !is_eap,
        };
        let name = if strip && nai.realm.is_some() {
            nai.user.as_bytes()
        } else {
            user_name
        };
        Route {
            matched,
            realm: nai.realm,
            user_name: name,
            auth: match &rr.auth {
                AuthTarget::Local => AuthAction::Local,
                AuthTarget::Pool(p) => AuthAction::Pool(p),
                AuthTarget::Reject => AuthAction::Reject(RouteReject::RealmRejected),
            },
            acct: match &rr.acct {
                AcctTarget::Local => AcctAction::Local,
                AcctTarget::Pool(p) => AcctAction::Pool(p),
            },
        }
    }

    fn lookup(&self, realm: &str) -> Option<(Matched, &RealmRoute)> {
        let mut folded = [0u8; MAX_REALM_LEN];
        // parse_nai bounds realms to MAX_REALM_LEN; a longer one cannot be in the table.
        if let Some(buf) = folded.get_mut(..realm.len()) {
            buf.copy_from_slice(realm.as_bytes());
            buf.make_ascii_lowercase();
            if let Some(r) = self.exact.get(&*buf) {
                return Some((Matched::Exact, r));
            }
        }
        for (i, (re, r)) in self.regex.iter().enumerate() {
            if re.is_match(realm) {
                return Some((Matched::Regex(i), r));
            }
        }
        self.default.as_ref().map(|r| (Matched::Default, r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: NaiForms = NaiForms {
        prefix_slash: true,
        nt_domain: true,
    };
    const AT_ONLY: NaiForms = NaiForms {
        prefix_slash: false,
        nt_domain: false,
    };

    fn nai<'a>(user: &'a str, realm: Option<(&'a str, RealmForm)>) -> Nai<'a> {
        Nai {
            user,
            realm: realm.map(|(name, form)| Realm { name, form }),
        }
    }

    #[test]
    fn parses_valid_nais() {
        use RealmForm::*;
        type Case<'a> = (&'a str, NaiForms, &'a str, Option<(&'a str, RealmForm)>);
        let cases: &[Case] = &[
            (
                "bob@example.com",
                AT_ONLY,
                "bob",
                Some(("example.com", Suffix)),
            ),
            (
                "bob@EXAMPLE.Com",
                AT_ONLY,
                "bob",
                Some(("EXAMPLE.Com", Suffix)),
            ),
            ("a.b@x.y.z", AT_ONLY, "a.b", Some(("x.y.z", Suffix))),
            // Decorated NAI: routes on the outer realm.
            (
                "a.org!bob@b.org",
                AT_ONLY,
                "a.org!bob",
                Some(("b.org", Suffix)),
            ),
            ("bob@x@b.org", AT_ONLY, "bob@x", Some(("b.org", Suffix))),
            (
                "bob@münchen.de",
                AT_ONLY,
                "bob",
                Some(("münchen.de", Suffix)),
            ),
            ("bob@a-b.c1", AT_ONLY, "bob", Some(("a-b.c1", Suffix))),
            ("bob", AT_ONLY, "bob", None),
            ("John Smith", AT_ONLY, "John Smith", None),
            ("EXAMPLE\\bob", AT_ONLY, "EXAMPLE\\bob", None),
            ("EXAMPLE\\bob", ALL, "bob", Some(("EXAMPLE", NtDomain))),
            ("my_dom\\bob", ALL, "bob", Some(("my_dom", NtDomain))),
            (
                "example.com\\bob",
                ALL,
                "bob",
                Some(("example.com", NtDomain)),
            ),
            ("example.com/bob", ALL, "bob", Some(("example.com", Prefix))),
            ("example.com/bob", AT_ONLY, "example.com/bob", None),
            // Machine accounts: a slash prefix without a dot is not a realm.
            ("host/pc.example.com", ALL, "host/pc.example.com", None),
            // The suffix wins over the other forms.
            (
                "EXAMPLE\\bob@example.org",
                ALL,
                "EXAMPLE\\bob",
                Some(("example.org", Suffix)),
            ),
        ];
        for (input, forms, user, realm) in cases {
            assert_eq!(
                parse_nai(input.as_bytes(), *forms),
                Ok(nai(user, *realm)),
                "{input}"
            );
        }
    }

    #[test]
    fn refuses_invalid_nais() {
        use NaiError::*;
        let long_label = format!("bob@{}.com", "a".repeat(64));
        let long_name = format!("bob@{}.com", "a.".repeat(130));
        let cases: &[(&[u8], NaiForms, NaiError)] = &[
            (b"", AT_ONLY, Empty),
            (long_name.as_bytes(), AT_ONLY, TooLong),
            (b"bob@ex\xffample.com", AT_ONLY, NotUtf8),
            (b"bob\0@example.com", AT_ONLY, ControlChar),
            (b"bob@example.com\n", AT_ONLY, ControlChar),
            (b" bob@example.com", AT_ONLY, Whitespace),
            (b"bob@example.com ", AT_ONLY, Whitespace),
            (b"bob@exa mple.com", AT_ONLY, Whitespace),
            (b"@gmail.com", AT_ONLY, EmptyUser),
            (b"bob@", AT_ONLY, EmptyRealm),
            (b"bob@gmail", AT_ONLY, RealmNoDot),
            (b"bob@.example.com", AT_ONLY, RealmLeadingDot),
            (b"bob@example.com.", AT_ONLY, RealmTrailingDot),
            (b"bob@example..com", AT_ONLY, RealmEmptyLabel),
            (b"bob@-example.com", AT_ONLY, RealmLabelHyphen),
            (b"bob@example-.com", AT_ONLY, RealmLabelHyphen),
            (b"bob@exa_mple.com", AT_ONLY, RealmBadChar),
            (b"bob@example.com/x", AT_ONLY, RealmBadChar),
            (long_label.as_bytes(), AT_ONLY, RealmLabelTooLong),
            (b"\\bob", ALL, EmptyRealm),
            (b"EXAMPLE\\", ALL, EmptyUser),
            (b".EXAMPLE\\bob", ALL, RealmLeadingDot),
            (b"EX AMPLE\\bob", ALL, Whitespace),
            (b"example.com/", ALL, EmptyUser),
            (b".example.com/bob", ALL, RealmLeadingDot),
        ];
        for (input, forms, err) in cases {
            assert_eq!(
                parse_nai(input, *forms),
                Err(*err),
                "{}",
                String::from_utf8_lossy(input)
            );
        }
    }

    fn rr(auth: AuthTarget, acct: AcctTarget, strip: StripRealm) -> RealmRoute {
        RealmRoute { auth, acct, strip }
    }

    fn pool(name: &str) -> AuthTarget {
        AuthTarget::Pool(name.into())
    }

    fn table() -> RealmTable {
        let mut t = RealmTable::new(ALL);
        let local = rr(AuthTarget::Local, AcctTarget::Local, StripRealm::Strip);
        t.add_exact("example.org", local.clone()).expect("ok");
        t.add_exact("EXAMPLE", local).expect("ok");
        t.add_exact(
            "Partner.EDU",
            rr(
                pool("partner"),
                AcctTarget::Pool("partner-acct".into()),
                StripRealm::KeepForEap,
            ),
        )
        .expect("ok");
        t.add_exact(
            "blocked.net",
            rr(AuthTarget::Reject, AcctTarget::Local, StripRealm::Keep),
        )
        .expect("ok");
        t.add_regex(
            r"\.ac\.uk$",
            rr(pool("janet"), AcctTarget::Local, StripRealm::Keep),
        )
        .expect("ok");
        t.add_regex(
            r"(^|\.)uni\.",
            rr(pool("unis"), AcctTarget::Local, StripRealm::Strip),
        )
        .expect("ok");
        // Overlaps the first regex: order decides.
        t.add_regex(
            r"\.uk$",
            rr(pool("uk"), AcctTarget::Local, StripRealm::Keep),
        )
        .expect("ok");
        t.set_default(rr(
            pool("federation"),
            AcctTarget::Pool("federation".into()),
            StripRealm::Keep,
        ));
        t.set_no_realm(rr(AuthTarget::Local, AcctTarget::Local, StripRealm::Keep));
        t
    }

    #[test]
    fn routes_exact_then_regex_then_default() {
        use AuthAction as A;
        let t = table();
        let cases: &[(&str, bool, Matched, A, AcctAction, &str)] = &[
            (
                "bob@example.org",
                false,
                Matched::Exact,
                A::Local,
                AcctAction::Local,
                "bob",
            ),
            (
                "bob@EXAMPLE.ORG",
                false,
                Matched::Exact,
                A::Local,
                AcctAction::Local,
                "bob",
            ),
            (
                "EXAMPLE\\bob",
                false,
                Matched::Exact,
                A::Local,
                AcctAction::Local,
                "bob",
            ),
            (
                "example\\bob",
                false,
                Matched::Exact,
                A::Local,
                AcctAction::Local,
                "bob",
            ),
            (
                "example.org/bob",
                false,
                Matched::Exact,
                A::Local,
                AcctAction::Local,
                "bob",
            ),
            (
                "eve@partner.edu",
                false,
                Matched::Exact,
                A::Pool("partner"),
                AcctAction::Pool("partner-acct"),
                "eve",
            ),
            (
                "eve@partner.edu",
                true,
                Matched::Exact,
                A::Pool("partner"),
                AcctAction::Pool("partner-acct"),
                "eve@partner.edu",
            ),
            (
                "x@blocked.net",
                false,
                Matched::Exact,
                A::Reject(RouteReject::RealmRejected),
                AcctAction::Local,
                "x@blocked.net",
            ),
            (
                "x@cs.ox.AC.UK",
                false,
                Matched::Regex(0),
                A::Pool("janet"),
                AcctAction::Local,
                "x@cs.ox.AC.UK",
            ),
            (
                "x@uni.example.de",
                false,
                Matched::Regex(1),
                A::Pool("unis"),
                AcctAction::Local,
                "x",
            ),
            (
                "x@cam.co.uk",
                false,
                Matched::Regex(2),
                A::Pool("uk"),
                AcctAction::Local,
                "x@cam.co.uk",
            ),
            (
                "x@elsewhere.fr",
                false,
                Matched::Default,
                A::Pool("federation"),
                AcctAction::Pool("federation"),
                "x@elsewhere.fr",
            ),
            // A realm-less name takes the no-realm route, never the default.
            (
                "bob",
                false,
                Matched::NoRealm,
                A::Local,
                AcctAction::Local,
                "bob",
            ),
            (
                "host/pc.example.com",
                false,
                Matched::NoRealm,
                A::Local,
                AcctAction::Local,
                "host/pc.example.com",
            ),
            (
                "bob@gmail",
                false,
                Matched::Nothing,
                A::Reject(RouteReject::InvalidNai(NaiError::RealmNoDot)),
                AcctAction::Local,
                "bob@gmail",
            ),
            (
                "@gmail.com",
                false,
                Matched::Nothing,
                A::Reject(RouteReject::InvalidNai(NaiError::EmptyUser)),
                AcctAction::Local,
                "@gmail.com",
            ),
        ];
        for (name, eap, matched, auth, acct, user) in cases {
            let r = t.route(name.as_bytes(), *eap);
            assert_eq!(r.matched, *matched, "{name}");
            assert_eq!(r.auth, *auth, "{name}");
            assert_eq!(r.acct, *acct, "{name}");
            assert_eq!(r.user_name, user.as_bytes(), "{name}");
        }
    }

    #[test]
    fn no_default_and_no_realm_route_reject_with_no_route() {
        let mut t = RealmTable::new(AT_ONLY);
        t.add_exact(
            "example.org",
            rr(AuthTarget::Local, AcctTarget::Local, StripRealm::Strip),
        )
        .expect("ok");
        for name in ["bob@other.org", "bob"] {
            let r = t.route(name.as_bytes(), false);
            assert_eq!(r.matched, Matched::Nothing, "{name}");
            assert_eq!(r.auth, AuthAction::Reject(RouteReject::NoRoute), "{name}");
            assert_eq!(r.acct, AcctAction::Local, "{name}");
            assert_eq!(r.user_name, name.as_bytes());
        }
        assert_eq!(RouteReject::NoRoute.label(), "no_route");
        assert_eq!(
            RouteReject::InvalidNai(NaiError::RealmNoDot).label(),
            "realm_no_dot"
        );
    }

    #[test]
    fn table_refuses_bad_config() {
        let local = rr(AuthTarget::Local, AcctTarget::Local, StripRealm::Keep);
        let mut t = RealmTable::new(AT_ONLY);
        t.add_exact("Example.org", local.clone()).expect("ok");
        assert_eq!(
            t.add_exact("example.ORG", local.clone()),
            Err(RealmTableError::Duplicate("example.ORG".into()))
        );
        assert!(matches!(
            t.add_exact(".bad", local.clone()),
            Err(RealmTableError::InvalidRealm {
                reason: NaiError::RealmLeadingDot,
                ..
            })
        ));
        assert!(matches!(
            t.add_regex("(unclosed", local.clone()),
            Err(RealmTableError::BadRegex { .. })
        ));
        for i in 0..MAX_REGEX_REALMS {
            t.add_regex(&format!("r{i}"), local.clone())
                .expect("within bound");
        }
        assert_eq!(
            t.add_regex("one-more", local),
            Err(RealmTableError::TooManyRegex)
        );
    }
}
