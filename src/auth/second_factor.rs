//! The second-factor stage: after the policies accepted, whether to challenge, hold for a
//! push, check a code that came with the password, or waive; a follow-up that carries one of
//! our States; and what a provider's answer makes of a held request. The conversation store
//! ([`Mfa`]) is shared by every shard (a follow-up may land on any of them).

use tracing::warn;

use super::context::{Context, Request};
use super::conversation::state::{Nonce, StateBuf, MAX_PAYLOAD};
use super::conversation::{Conversation, ConversationError, Taken};
use super::credential::PasswordRead;
use super::decision::Waiver;
use super::mschap::NtKey;
use super::{Identity, Method, RejectReason};
use crate::backend::mfa::config::DuoFactor;
use crate::backend::mfa::{Mfa, Provider};
use crate::policy::NetworkPolicy;
use crate::vocab::{AuthSource, MfaMode};

/// What a second factor in progress remembers of the primary authentication (an open
/// challenge, or a request held for a push), so it can be finished by the policies without
/// the password.
#[derive(Debug, Clone)]
pub struct Pending {
    /// The name the provider knows the user by (the directory's alternate login ID, if any).
    pub mfa_user: String,
    pub groups: Vec<String>,
    pub source: AuthSource,
    /// How the user logged in: the policies run again with it after the second factor.
    pub method: Option<Method>,
    /// privacyIDEA's transaction id of the challenge it triggered (kept here, never in the
    /// State on the wire): the code is checked against it.
    pub transaction_id: Option<String>,
    /// An MS-CHAP login held for a push: the NT key its accept is answered with.
    pub nt_key: Option<NtKey>,
    /// EAP-TLS: the client certificate's fields, for the policies after the second factor
    /// (or a resumption).
    pub certificate: Option<Box<crate::tls::PeerCertificate>>,
    /// The source's reply attributes and cap (SQL), for the accept after the second factor.
    pub granted: Option<std::sync::Arc<super::SourceGrant>>,
}

/// Opens a challenge for `pending` in the conversation store: its State, or why not.
pub fn open_challenge(
    ctx: &Context<'_>,
    mfa: &Mfa,
    r: &Request<'_>,
    pending: Pending,
    now_unix: u64,
) -> Result<StateBuf, RejectReason> {
    let ttl = mfa.config.challenge_ttl.as_secs();
    // Several nodes on one database: the State carries what the challenge remembers, so
    // that any node can finish it (an EAP tunnel's stays on its node, as its conversation).
    let sealed = ctx
        .cluster
        .filter(|c| c.shared_state && r.tunnel.is_none())
        .and_then(|_| seal_pending(&pending));
    let state = ctx
        .conversations
        .open_sealed(
            r.client,
            r.user_name(),
            Conversation::SecondFactor(pending),
            sealed.as_deref(),
            ttl,
            now_unix,
        )
        .map_err(|_| RejectReason::MfaOverloaded)?;
    let m = &mfa.metrics;
    m.pending.store(
        ctx.conversations.len() as u64,
        std::sync::atomic::Ordering::Relaxed,
    );
    m.challenges_issued
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Ok(state)
}

/// What the second-factor stage makes of a primary accept.
// A State inline (253 octets at most): decided once per login on the stack, where boxing it
// would allocate per challenge.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Second {
    /// No second factor required: accept.
    NotRequired,
    /// Required but waived (exempt, or unenrolled users accepted).
    Waived(Waiver),
    /// Hold the request and push to the user: answer when they decide. Also Duo's passcode
    /// factor, whose preauth decides between a challenge, a bypass and a reject.
    Push,
    /// Hold the request while privacyIDEA triggers the user's challenge: then an
    /// Access-Challenge (code token) or, for a push token, the answer once the user decided.
    Trigger,
    /// Answer Access-Challenge with this State and the prompt.
    Challenge(StateBuf),
    /// Combined mode: the code in User-Password was checked here and is good.
    CodeOk,
    /// Combined mode: hold the request while the HTTP provider checks this code.
    Check(String),
    Reject(RejectReason),
}

impl Second {
    fn label(&self) -> &'static str {
        match self {
            Second::NotRequired => "not_required",
            Second::Waived(w) => w.label(),
            Second::Challenge(_) => "challenge",
            Second::Push => "push",
            Second::CodeOk => "accept",
            Second::Check(_) => "check",
            Second::Trigger => "trigger",
            Second::Reject(r) => r.label(),
        }
    }

    /// Whether the request is answered later (its outcome is counted then).
    fn is_held(&self) -> bool {
        matches!(
            self,
            Second::Challenge(_) | Second::Push | Second::Check(_) | Second::Trigger
        )
    }
}

/// Whether the user has a second factor with the configured provider.
fn enrolled(ctx: &Context<'_>, mfa: &Mfa, user: &[u8], mfa_user: &str) -> bool {
    match &mfa.config.provider {
        Provider::Totp => ctx.users.totp_for(mfa_user, user).is_some(),
        // Known only when the provider is asked: privacyIDEA "no tokens assigned", Duo's
        // preauth `enroll`, a push service's answer.
        Provider::PrivacyIdea(_) | Provider::RestPush(_) | Provider::Duo(_) => true,
    }
}

/// After the policies accepted (`matched` decided) the primary authentication of `id`:
/// challenge, hold, reject or accept.
pub fn after_primary(
    ctx: &Context<'_>,
    r: &Request<'_>,
    matched: Option<&NetworkPolicy>,
    id: &Identity<'_>,
    read: PasswordRead<'_>,
    now_unix: u64,
) -> Second {
    let Some(mfa) = ctx.mfa else {
        return Second::NotRequired;
    };
    let exempt_client = mfa.config.exempt_clients.iter().any(|c| c == r.client);
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
            user = %id.presented,
            client = r.client,
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
    let second = decide(ctx, mfa, r, id, read, exempt_client, now_unix);
    if !second.is_held() {
        mfa.metrics.outcome(second.label());
    }
    second
}

/// The second factor a policy requires, for `id`.
fn decide(
    ctx: &Context<'_>,
    mfa: &Mfa,
    r: &Request<'_>,
    id: &Identity<'_>,
    read: PasswordRead<'_>,
    exempt_client: bool,
    now_unix: u64,
) -> Second {
    let user = r.user_name();
    // Exemptions waive a second factor on top of a primary authentication; a NAS that did
    // the primary itself has only the second factor to show.
    let primary_here = id.source != AuthSource::Nas;
    let exempt_group = primary_here
        && mfa.config.exempt_groups.iter().any(|w| {
            id.groups
                .iter()
                .any(|h| crate::policy::network::group_matches(h, w))
        });
    if exempt_client && primary_here {
        Second::Waived(Waiver::ExemptClient)
    } else if exempt_group {
        Second::Waived(Waiver::ExemptGroup)
    } else if !enrolled(ctx, mfa, user, id.presented) {
        if mfa.config.accept_unenrolled {
            Second::Waived(Waiver::Unenrolled)
        } else {
            Second::Reject(RejectReason::MfaNotEnrolled)
        }
    } else if mfa.config.provider.is_push() {
        // Any method: the request itself is held until the user answers.
        Second::Push
    } else if id.method != Some(Method::Pap) {
        // CHAP cannot carry a code in the follow-up; only a push can serve it. With
        // privacyIDEA's trigger the token type (code or push) is only known after the trigger,
        // so non-PAP requests are refused up front there too.
        Second::Reject(RejectReason::MfaUnsupportedMethod)
    } else if let PasswordRead::Split(_, code) = read {
        check_combined(ctx, mfa, user, id.presented, code, now_unix)
    } else if mfa.config.provider.holds() {
        // Duo passcode: held while the preauth decides (challenge, bypass, reject); the
        // challenge is issued when it answers.
        Second::Push
    } else if mfa.triggers() {
        Second::Trigger
    } else {
        match open_challenge(ctx, mfa, r, pending(id, None), now_unix) {
            Ok(state) => Second::Challenge(state),
            Err(r) => Second::Reject(r),
        }
    }
}

/// What a pending challenge (or a held request) remembers of `id`.
pub fn pending(id: &Identity<'_>, transaction_id: Option<String>) -> Pending {
    Pending {
        mfa_user: id.presented.to_string(),
        groups: id.groups.to_vec(),
        source: id.source,
        method: id.method,
        transaction_id,
        nt_key: id.nt_key,
        certificate: id.certificate.map(|c| Box::new(c.clone())),
        granted: id.granted.cloned(),
    }
}

/// A code that came with the password (combined `mfa_mode`, or all of User-Password when the
/// NAS did the primary): checked here for TOTP, handed to the HTTP provider otherwise.
fn check_combined(
    ctx: &Context<'_>,
    mfa: &Mfa,
    user: &[u8],
    mfa_user: &str,
    code: &[u8],
    now_unix: u64,
) -> Second {
    match &mfa.config.provider {
        Provider::Totp => match ctx.users.totp_for(mfa_user, user) {
            Some((name, secret)) => match mfa.check_totp(name, secret, code, now_unix) {
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

/// A follow-up whose State is good.
pub enum Redeemed {
    /// The code was checked here and is good.
    Done(Pending),
    /// The code is for the HTTP provider to check.
    Remote(Pending, String),
}

/// A follow-up carrying a State: the primary-auth facts of its challenge if the State (and,
/// for local providers, the code) are good, else why not. The challenge is consumed whatever
/// the code's fate. Node-local only: a sealed State (several nodes) goes through
/// [`take_challenge`], the database, then [`check_code`].
pub fn redeem(
    ctx: &Context<'_>,
    mfa: &Mfa,
    r: &Request<'_>,
    state: &[u8],
    code: Result<&[u8], RejectReason>,
    now_unix: u64,
) -> Result<Redeemed, RejectReason> {
    let user = r.user.ok_or(RejectReason::NoUserName)?;
    let taken = ctx.conversations.take(state, r.client, user, now_unix);
    mfa.metrics.pending.store(
        ctx.conversations.len() as u64,
        std::sync::atomic::Ordering::Relaxed,
    );
    let pending = match taken {
        Ok(Conversation::SecondFactor(p)) => p,
        // An EAP conversation's State on a request without EAP-Message: not a challenge.
        Ok(Conversation::Eap(_)) => return Err(RejectReason::MfaStateInvalid),
        Err(e) => return Err(refused(e)),
    };
    check_code(ctx, mfa, r, pending, code, now_unix)
}

fn refused(e: ConversationError) -> RejectReason {
    match e {
        ConversationError::Invalid => RejectReason::MfaStateInvalid,
        ConversationError::Expired => RejectReason::MfaStateExpired,
        ConversationError::Replayed => RejectReason::MfaStateReplayed,
    }
}

/// A challenge taken by its State on a node of several: what it remembers (from this node's
/// store, or sealed in the State by another node), and the nonce and expiry the database
/// redeems once for all nodes.
pub fn take_challenge(
    ctx: &Context<'_>,
    mfa: &Mfa,
    r: &Request<'_>,
    state: &[u8],
    now_unix: u64,
) -> Result<(Pending, Nonce, u64), RejectReason> {
    let user = r.user.ok_or(RejectReason::NoUserName)?;
    let taken = ctx.conversations.take_any(state, r.client, user, now_unix);
    mfa.metrics.pending.store(
        ctx.conversations.len() as u64,
        std::sync::atomic::Ordering::Relaxed,
    );
    match taken {
        Ok(Taken::Here(Conversation::SecondFactor(p), nonce, expiry)) => Ok((p, nonce, expiry)),
        Ok(Taken::Here(Conversation::Eap(_), ..)) => Err(RejectReason::MfaStateInvalid),
        Ok(Taken::Sealed(payload, nonce, expiry)) => unseal_pending(&payload)
            .map(|p| (p, nonce, expiry))
            .ok_or(RejectReason::MfaStateInvalid),
        Err(e) => Err(refused(e)),
    }
}

/// The code answering a challenge taken for `pending`: checked here (TOTP) or by the HTTP
/// provider.
pub fn check_code(
    ctx: &Context<'_>,
    mfa: &Mfa,
    r: &Request<'_>,
    pending: Pending,
    code: Result<&[u8], RejectReason>,
    now_unix: u64,
) -> Result<Redeemed, RejectReason> {
    // The name the challenge was issued to: the User-Name, or an EAP tunnel's inner identity.
    let user = r.user.ok_or(RejectReason::NoUserName)?;
    let code = code.map_err(|_| RejectReason::MfaBadCode)?;
    match &mfa.config.provider {
        Provider::Totp => {
            let (name, secret) = ctx
                .users
                .totp_for(&pending.mfa_user, user)
                .ok_or(RejectReason::MfaNotEnrolled)?;
            mfa.check_totp(name, secret, code, now_unix)?;
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

/// Version of the sealed form of a [`Pending`].
const SEALED_V1: u8 = 1;

/// What a challenge remembers, in the form a sealed State carries (at most
/// [`MAX_PAYLOAD`] octets): version, source, method, the provider's user name, privacyIDEA's
/// transaction id, the groups, each length-prefixed. `None` when it does not fit, or holds
/// what only this node can keep (an NT key, a certificate, a source's reply attributes):
/// that challenge must then be answered on this node.
pub fn seal_pending(p: &Pending) -> Option<Vec<u8>> {
    if p.nt_key.is_some() || p.certificate.is_some() || p.granted.is_some() {
        return None;
    }
    fn put(out: &mut Vec<u8>, b: &[u8]) -> Option<()> {
        out.push(u8::try_from(b.len()).ok()?);
        out.extend_from_slice(b);
        Some(())
    }
    let mut out = vec![SEALED_V1];
    put(&mut out, p.source.label().as_bytes())?;
    put(&mut out, p.method.map_or("", Method::label).as_bytes())?;
    put(&mut out, p.mfa_user.as_bytes())?;
    put(
        &mut out,
        p.transaction_id.as_deref().unwrap_or("").as_bytes(),
    )?;
    out.push(u8::try_from(p.groups.len()).ok()?);
    for g in &p.groups {
        put(&mut out, g.as_bytes())?;
    }
    (out.len() <= MAX_PAYLOAD).then_some(out)
}

/// [`seal_pending`]'s form read back; `None` for anything else.
pub fn unseal_pending(b: &[u8]) -> Option<Pending> {
    fn take<'b>(b: &mut &'b [u8]) -> Option<&'b [u8]> {
        let (&n, rest) = b.split_first()?;
        let n = usize::from(n);
        let v = rest.get(..n)?;
        *b = &rest[n..];
        Some(v)
    }
    fn text(b: &mut &[u8]) -> Option<String> {
        Some(std::str::from_utf8(take(b)?).ok()?.to_string())
    }
    let (&version, mut rest) = b.split_first()?;
    if version != SEALED_V1 {
        return None;
    }
    let source = match take(&mut rest)? {
        b"local" => AuthSource::Local,
        b"ldap" => AuthSource::Ldap,
        b"nas" => AuthSource::Nas,
        b"certificate" => AuthSource::Certificate,
        b"proxy" => AuthSource::Proxy,
        b"sql" => AuthSource::Sql,
        _ => return None,
    };
    let method = match text(&mut rest)?.as_str() {
        "" => None,
        m => Some(Method::from_label(m)?),
    };
    let mfa_user = text(&mut rest)?;
    let transaction_id = Some(text(&mut rest)?).filter(|t| !t.is_empty());
    let (&count, mut rest) = rest.split_first()?;
    let groups = (0..count)
        .map(|_| text(&mut rest))
        .collect::<Option<Vec<_>>>()?;
    if !rest.is_empty() {
        return None;
    }
    Some(Pending {
        mfa_user,
        groups,
        source,
        method,
        transaction_id,
        nt_key: None,
        certificate: None,
        granted: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(groups: Vec<String>) -> Pending {
        Pending {
            mfa_user: "alice".into(),
            groups,
            source: AuthSource::Ldap,
            method: Some(Method::Pap),
            transaction_id: Some("123456789".into()),
            nt_key: None,
            certificate: None,
            granted: None,
        }
    }

    #[test]
    fn sealed_pending_round_trips() {
        let p = pending(vec!["staff".into(), "cn=vpn,ou=g,dc=x".into()]);
        let back = unseal_pending(&seal_pending(&p).expect("fits")).expect("reads");
        assert_eq!(back.mfa_user, "alice");
        assert_eq!(back.groups, p.groups);
        assert_eq!(back.source, AuthSource::Ldap);
        assert_eq!(back.method, Some(Method::Pap));
        assert_eq!(back.transaction_id.as_deref(), Some("123456789"));
        let none = Pending {
            transaction_id: None,
            method: None,
            ..pending(vec![])
        };
        let back = unseal_pending(&seal_pending(&none).expect("fits")).expect("reads");
        assert_eq!((back.transaction_id, back.method), (None, None));
    }

    #[test]
    fn what_does_not_fit_or_travel_is_not_sealed() {
        assert!(seal_pending(&pending(vec!["g".repeat(200)])).is_none());
        assert!(seal_pending(&pending((0..60).map(|i| format!("g{i}")).collect())).is_none());
        let granted = Pending {
            granted: Some(std::sync::Arc::new(super::super::SourceGrant::default())),
            ..pending(vec![])
        };
        assert!(seal_pending(&granted).is_none());
    }

    #[test]
    fn garbage_does_not_unseal() {
        let good = seal_pending(&pending(vec!["a".into()])).expect("fits");
        for n in 0..good.len() {
            assert!(unseal_pending(&good[..n]).is_none(), "truncated at {n}");
        }
        let mut longer = good.clone();
        longer.push(0);
        assert!(unseal_pending(&longer).is_none());
        let mut v2 = good;
        v2[0] = 2;
        assert!(unseal_pending(&v2).is_none());
    }
}
