//! The shard's side of the second factor: after the policies accept, decide whether to
//! challenge; and decide a follow-up Access-Request that carries a State. The challenge store
//! itself ([`crate::backend::mfa::Mfa`]) is shared by all shards.

use std::net::SocketAddr;
use std::time::Instant;

use tracing::{info, warn};

use super::clients::Client;
use super::runtime::Runtime;
use crate::accounting::time::now_unix;
use crate::auth::{Method, RejectReason};
use crate::backend::mfa::config::DuoFactor;
use crate::backend::mfa::state::STATE_LEN;
use crate::backend::mfa::{Mfa, Pending, Provider};
use crate::policy::{AuthSource, MfaMode, NetworkPolicy, PolicyInput};
use crate::proto::{BuildError, PacketBuilder, Secret, Verified, REPLY_MESSAGE, STATE};

/// What the second-factor stage makes of a primary accept.
pub(super) enum Second {
    /// No second factor required: accept.
    NotRequired,
    /// Required but the user has none enrolled and `[mfa] unenrolled = "accept"`.
    AcceptUnenrolled,
    /// Not required for this client or user (`exempt_clients`, `exempt_groups`): the reason.
    Exempt(&'static str),
    /// Hold the request and push to the user: answer when they decide.
    Push,
    /// Hold the request while privacyIDEA triggers the user's challenge: then an
    /// Access-Challenge (code token) or, for a push token, the answer once the user decided.
    Trigger,
    /// Answer Access-Challenge with this State and the prompt.
    Challenge([u8; STATE_LEN]),
    /// Combined mode: the code in User-Password was checked here and is good.
    CodeOk,
    /// Combined mode: hold the request while the HTTP provider checks this code.
    Check(String),
    Reject(RejectReason),
}

/// How a request's User-Password was read before primary authentication.
#[derive(Debug, Clone, Copy)]
pub(super) enum PasswordRead<'c> {
    /// Not PAP: there is no User-Password to split (CHAP cannot carry a code).
    NotPap,
    /// All of it is the password (challenge mode, or no second factor).
    Whole,
    /// A combined `mfa_mode`: the password went to primary authentication, this is the code.
    Split(MfaMode, &'c [u8]),
}

/// The mode this request's User-Password is read with, before primary authentication decides
/// which policy applies: see [`crate::policy::NetworkPolicies::read_mode`]. Without `[mfa]`
/// or policies, or for an exempt client, nothing is split.
pub(super) fn read_mode(
    rt: &Runtime,
    req: &Verified<'_>,
    client: &Client,
    method: Option<Method>,
) -> MfaMode {
    let Some(mfa) = rt.mfa.as_deref() else {
        return MfaMode::Challenge;
    };
    if rt.policies.is_empty() || mfa.config.exempt_clients.contains(&client.name) {
        return MfaMode::Challenge;
    }
    rt.policies.read_mode(&PolicyInput::from_request(
        req,
        &client.name,
        client.group.as_deref(),
        &[],
        method,
        AuthSource::Local,
    ))
}

/// Reads User-Password into `buf` and, in a combined mode, splits off the code: the password
/// part for primary authentication (or why there is none: `MfaBadCode` when the value cannot
/// hold a password and a code, which must then reach no directory), and how it was read.
pub(super) fn read_password<'b>(
    rt: &Runtime,
    req: &Verified<'_>,
    client: &Client,
    method: Option<Method>,
    buf: &'b mut [u8; 128],
) -> (Result<&'b [u8], RejectReason>, PasswordRead<'b>) {
    if method != Some(Method::Pap) {
        return (Err(RejectReason::MalformedPassword), PasswordRead::NotPap);
    }
    let Ok(value) = req.user_password(buf) else {
        return (Err(RejectReason::MalformedPassword), PasswordRead::Whole);
    };
    let mode = read_mode(rt, req, client, method);
    match mode.split(value) {
        Some((password, _)) if mode == MfaMode::Challenge => (Ok(password), PasswordRead::Whole),
        Some((password, code)) => (Ok(password), PasswordRead::Split(mode, code)),
        None => (
            Err(RejectReason::MfaBadCode),
            PasswordRead::Split(mode, &[]),
        ),
    }
}

pub(super) fn now_secs() -> u64 {
    u64::try_from(now_unix().0).unwrap_or(0)
}

/// Whether the user has a second factor with the configured provider.
fn enrolled(rt: &Runtime, mfa: &Mfa, user: &[u8], mfa_user: &str) -> bool {
    match &mfa.config.provider {
        Provider::Totp => rt.users.totp_for(mfa_user, user).is_some(),
        // Known only when privacyIDEA is asked (the follow-up): "no tokens assigned".
        Provider::PrivacyIdea(_) => true,
        Provider::RestPush(_) => true,
        // Known when Duo's preauth answers (`enroll`), in the held request's flight.
        Provider::Duo(_) => true,
    }
}

/// What the primary authentication found, for the second-factor stage.
#[derive(Debug, Clone, Copy)]
pub(super) struct Primary<'a> {
    pub(super) client: &'a str,
    /// The User-Name as sent.
    pub(super) user: &'a [u8],
    /// The name the MFA provider knows the user by (the directory's alternate login ID).
    pub(super) mfa_user: &'a str,
    pub(super) groups: &'a [String],
    pub(super) source: AuthSource,
    pub(super) method: Option<Method>,
    /// How User-Password was read before primary authentication.
    pub(super) read: PasswordRead<'a>,
}

/// After the policies accepted (`matched` decided): challenge, reject or accept.
pub(super) fn after_primary(
    rt: &Runtime,
    matched: Option<&NetworkPolicy>,
    primary: Primary<'_>,
) -> Second {
    let Primary {
        client,
        user,
        mfa_user,
        groups,
        source,
        method,
        read,
    } = primary;
    let Some(mfa) = rt.mfa.as_deref() else {
        return Second::NotRequired;
    };
    let exempt_client = mfa.config.exempt_clients.iter().any(|c| c == client);
    // The password was read before this policy was known; if it was read in another mode,
    // primary authentication saw the wrong part (or the code went unread): refuse to guess.
    let required = match matched {
        Some(p) if !exempt_client => p.read_mode(),
        _ => MfaMode::Challenge,
    };
    let read_as = match read {
        PasswordRead::NotPap => required,
        PasswordRead::Whole => MfaMode::Challenge,
        PasswordRead::Split(mode, _) => mode,
    };
    if read_as != required {
        warn!(
            user = %mfa_user,
            client,
            policy = matched.map_or("", |p| p.name.as_str()),
            read_as = read_as.label(),
            required = required.label(),
            "User-Password was read in another mfa_mode than the deciding policy's: rejected (order the policies so that request attributes tell the modes apart)"
        );
        mfa.metrics.outcome(RejectReason::MfaModeMismatch.label());
        return Second::Reject(RejectReason::MfaModeMismatch);
    }
    if !matched.is_some_and(|p| p.mfa) {
        return Second::NotRequired;
    }
    let exempt_group = mfa.config.exempt_groups.iter().any(|w| {
        groups
            .iter()
            .any(|h| crate::policy::network::group_matches(h, w))
    });
    let second = if exempt_client {
        Second::Exempt("accept_mfa_exempt_client")
    } else if exempt_group {
        Second::Exempt("accept_mfa_exempt_group")
    } else if !enrolled(rt, mfa, user, mfa_user) {
        if mfa.config.accept_unenrolled {
            Second::AcceptUnenrolled
        } else {
            Second::Reject(RejectReason::MfaNotEnrolled)
        }
    } else if mfa.config.provider.is_push() {
        // Any method: the request itself is held until the user answers.
        Second::Push
    } else if method != Some(Method::Pap) {
        // CHAP cannot carry a code in the follow-up; only a push can serve it. With
        // privacyIDEA's trigger the token type (code or push) is only known after the trigger,
        // so non-PAP requests are refused up front there too.
        Second::Reject(RejectReason::MfaUnsupportedMethod)
    } else if let PasswordRead::Split(_, code) = read {
        check_combined(rt, mfa, user, mfa_user, code)
    } else if mfa.config.provider.holds() {
        // Duo passcode: held while the preauth decides (challenge, bypass, reject); the
        // challenge is issued when it answers.
        Second::Push
    } else if mfa.triggers() {
        Second::Trigger
    } else {
        match mfa.issue(client, user, mfa_user, groups, source, None, now_secs()) {
            Ok(state) => Second::Challenge(state),
            Err(r) => Second::Reject(r),
        }
    };
    let label = match &second {
        Second::NotRequired => "not_required",
        Second::AcceptUnenrolled => "accept_unenrolled",
        Second::Exempt(why) => why,
        Second::Challenge(_) => "challenge",
        Second::Push => "push",
        Second::CodeOk => "accept",
        Second::Check(_) => "check",
        Second::Trigger => "trigger",
        Second::Reject(r) => r.label(),
    };
    // Held requests count their outcome when the provider answers.
    if !matches!(
        second,
        Second::Challenge(_) | Second::Push | Second::Check(_) | Second::Trigger
    ) {
        mfa.metrics.outcome(label);
    }
    second
}

/// A code that came with the password (combined `mfa_mode`): checked here for TOTP, handed
/// to the HTTP provider otherwise.
fn check_combined(rt: &Runtime, mfa: &Mfa, user: &[u8], mfa_user: &str, code: &[u8]) -> Second {
    match &mfa.config.provider {
        Provider::Totp => match rt.users.totp_for(mfa_user, user) {
            Some((name, secret)) => match mfa.check_totp(name, secret, code, now_secs()) {
                Ok(()) => Second::CodeOk,
                Err(r) => Second::Reject(r),
            },
            None => Second::Reject(RejectReason::MfaNotEnrolled),
        },
        // Duo passcode: checked with /auth/v2/auth factor=passcode, which also refuses users
        // Duo would not let in (no preauth needed when the code is already here).
        Provider::PrivacyIdea(_) | Provider::Duo(_) if !mfa.config.provider.is_push() => {
            match std::str::from_utf8(code) {
                Ok(code) if !code.is_empty() => Second::Check(code.to_string()),
                _ => Second::Reject(RejectReason::MfaBadCode),
            }
        }
        // Refused by the configuration: a push has no code to carry.
        Provider::RestPush(_) | Provider::Duo(_) | Provider::PrivacyIdea(_) => {
            Second::Reject(RejectReason::MfaUnsupportedMethod)
        }
    }
}

/// Fills an Access-Challenge: the State and the prompt.
pub(super) fn fill_challenge<'a>(
    mfa: &'a Mfa,
    state: &'a [u8],
) -> impl FnOnce(&mut PacketBuilder<'_, '_>, &Secret) -> Result<(), BuildError> + 'a {
    move |b, _| {
        b.attr(STATE, state)?;
        b.attr(REPLY_MESSAGE, mfa.config.prompt.as_bytes())
    }
}

/// A follow-up whose State is good.
pub(super) enum Redeemed {
    /// The code was checked here and is good.
    Done(Pending),
    /// The code is for the HTTP provider to check.
    Remote(Pending, String),
}

/// A follow-up carrying a State: the primary-auth facts of its challenge if the State (and,
/// for local providers, the code) are good, else why not. The challenge is consumed whatever
/// the code's fate.
pub(super) fn redeem(
    rt: &Runtime,
    mfa: &Mfa,
    req: &Verified<'_>,
    client: &Client,
    state: &[u8],
) -> Result<Redeemed, RejectReason> {
    let now = now_secs();
    let user = req.user_name().ok_or(RejectReason::NoUserName)?;
    let pending = mfa.redeem(state, &client.name, user, now)?;
    let mut pw = [0u8; 128];
    let code = req
        .user_password(&mut pw)
        .map_err(|_| RejectReason::MfaBadCode)?;
    match &mfa.config.provider {
        Provider::Totp => {
            let (name, secret) = rt
                .users
                .totp_for(&pending.mfa_user, user)
                .ok_or(RejectReason::MfaNotEnrolled)?;
            mfa.check_totp(name, secret, code, now)?;
            Ok(Redeemed::Done(pending))
        }
        // No State is issued for push: a State here is not ours.
        Provider::RestPush(_) => Err(RejectReason::MfaStateInvalid),
        Provider::Duo(d) if d.factor == DuoFactor::Push => Err(RejectReason::MfaStateInvalid),
        Provider::PrivacyIdea(_) | Provider::Duo(_) => {
            let code = std::str::from_utf8(code).map_err(|_| RejectReason::MfaBadCode)?;
            if code.is_empty() {
                return Err(RejectReason::MfaBadCode);
            }
            Ok(Redeemed::Remote(pending, code.to_string()))
        }
    }
}

/// One line per second-factor decision: never the code or the State.
pub(super) fn log(
    req: &Verified<'_>,
    client: &Client,
    from: SocketAddr,
    outcome: &'static str,
    reason: &'static str,
    policy: &str,
    started: Instant,
) {
    info!(
        target: "radshard::auth",
        user = %String::from_utf8_lossy(req.user_name().unwrap_or_default()),
        client = %client.name,
        nas = %from,
        stage = "mfa",
        outcome,
        reason,
        policy,
        latency_us = started.elapsed().as_micros() as u64,
        "decision"
    );
}
