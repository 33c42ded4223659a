//! The shard's side of the second factor: after the policies accept, decide whether to
//! challenge; and decide a follow-up Access-Request that carries a State. The challenge store
//! itself ([`crate::backend::mfa::Mfa`]) is shared by all shards.

use std::net::SocketAddr;
use std::time::Instant;

use tracing::info;

use super::clients::Client;
use super::runtime::Runtime;
use crate::accounting::time::now_unix;
use crate::auth::{Method, RejectReason};
use crate::backend::mfa::state::STATE_LEN;
use crate::backend::mfa::{Mfa, Pending, Provider};
use crate::policy::{AuthSource, NetworkPolicy};
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
    Reject(RejectReason),
}

pub(super) fn now_secs() -> u64 {
    u64::try_from(now_unix().0).unwrap_or(0)
}

/// Whether `user` has a second factor with the configured provider.
fn enrolled(rt: &Runtime, mfa: &Mfa, user: &[u8]) -> bool {
    match &mfa.config.provider {
        Provider::Totp => rt.users.get(user).is_some_and(|u| u.totp.is_some()),
        // Known only when privacyIDEA is asked (the follow-up): "no tokens assigned".
        Provider::PrivacyIdea(_) => true,
        Provider::RestPush(_) => true,
    }
}

/// After the policies accepted (`matched` decided): challenge, reject or accept.
#[allow(clippy::too_many_arguments)]
pub(super) fn after_primary(
    rt: &Runtime,
    matched: Option<&NetworkPolicy>,
    client: &str,
    user: &[u8],
    mfa_user: &str,
    groups: &[String],
    source: AuthSource,
    method: Option<Method>,
) -> Second {
    let Some(mfa) = rt.mfa.as_deref() else {
        return Second::NotRequired;
    };
    if !matched.is_some_and(|p| p.mfa) {
        return Second::NotRequired;
    }
    let exempt_client = mfa.config.exempt_clients.iter().any(|c| c == client);
    let exempt_group = mfa.config.exempt_groups.iter().any(|w| {
        groups
            .iter()
            .any(|h| crate::policy::network::group_matches(h, w))
    });
    let second = if exempt_client {
        Second::Exempt("accept_mfa_exempt_client")
    } else if exempt_group {
        Second::Exempt("accept_mfa_exempt_group")
    } else if !enrolled(rt, mfa, user) {
        if mfa.config.accept_unenrolled {
            Second::AcceptUnenrolled
        } else {
            Second::Reject(RejectReason::MfaNotEnrolled)
        }
    } else if mfa.config.provider.is_push() {
        // Any method: the request itself is held until the user answers.
        Second::Push
    } else if method != Some(Method::Pap) {
        // CHAP cannot carry a code in the follow-up. With privacyIDEA the token type (code or
        // push) is only known after the trigger, so non-PAP requests are refused up front.
        Second::Reject(RejectReason::MfaUnsupportedMethod)
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
        Second::Trigger => "trigger",
        Second::Reject(r) => r.label(),
    };
    if !matches!(
        second,
        Second::Challenge(_) | Second::Push | Second::Trigger
    ) {
        mfa.metrics.outcome(label);
    }
    second
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
            let secret = rt
                .users
                .get(user)
                .and_then(|u| u.totp.as_ref())
                .ok_or(RejectReason::MfaNotEnrolled)?;
            mfa.check_totp(&String::from_utf8_lossy(user), secret, code, now)?;
            Ok(Redeemed::Done(pending))
        }
        // No State is issued for push: a State here is not ours.
        Provider::RestPush(_) => Err(RejectReason::MfaStateInvalid),
        Provider::PrivacyIdea(_) => {
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
