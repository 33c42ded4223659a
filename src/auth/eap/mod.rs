//! EAP (RFC 3748 over RADIUS, RFC 3579) as the pipeline's methods EAP-TLS, PEAPv0 and TTLS.
//!
//! A request carrying EAP-Message comes here from the pipeline. Without a State it must be
//! an EAP-Response/Identity: a conversation ([`EapSession`]) opens and our Start goes out in
//! an Access-Challenge whose State names it. With one, the conversation is taken from the
//! shared store (single use: each round is re-filed under a fresh State, so a follow-up may
//! land on any shard) and fed the response. What it says next ([`Round`]) is carried out
//! here: another challenge; TLS work handed to a handshake worker through the pipeline's
//! await path ([`Job::Tls`]); the inner login, which runs through the same sources, policies
//! and second factor as an outer request, named by the inner identity; or the end: the
//! policies run once more over who logged in and their attributes go into the Access-Accept
//! with EAP-Success and the MPPE keys from the TLS session's MSK.
//!
//! Bound: conversations live in the conversation store (its capacity; when full, new ones
//! are refused and counted while open ones finish), each at most `idle_timeout` between
//! rounds and [`session::MAX_ROUNDS`] rounds.

pub mod config;
pub mod link;
pub mod service;
pub mod session;
mod tunnel;

use std::cell::Cell;
use std::time::Duration;

pub use service::EapService;
pub use session::{EapSession, Round};

use super::context::{Context, Now, Request, Tunnel};
use super::conversation::Conversation;
use super::credential::{Credential, Extracted, PasswordBuf, PasswordRead, TunnelBuf};
use super::decision::{Decision, Outcome, Reply};
use super::mschap::{MethodReply, MsChap};
use super::pipeline::{self, Await, Continuation, Job, JobResult, Step};
use super::second_factor::Pending;
use super::Identity;
use crate::metrics::EapMetrics;
use crate::proto::eap::{reassemble, EapCode, EapType, MAX_EAP_LEN};
use crate::proto::{FRAMED_MTU, STATE};
use crate::vocab::{MfaMode, RejectReason};
use session::{InnerCredential, InnerResult};

/// How long a handshake step may wait for a worker.
const HANDSHAKE_DEADLINE: Duration = Duration::from_secs(5);

/// Where an EAP request picks up after a job.
pub enum EapThen {
    /// The handshake worker ran TLS; the conversation comes back in [`JobResult::Tls`].
    Handshake,
    /// The inner login waits for `then` (a directory bind, a slow hash, a push).
    Inner {
        session: Box<EapSession>,
        then: Box<Continuation>,
    },
}

impl std::fmt::Debug for EapThen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EapThen::Handshake => f.write_str("Handshake"),
            EapThen::Inner { then, .. } => f.debug_struct("Inner").field("then", then).finish(),
        }
    }
}

/// The room one call borrows from the driver's [`PasswordBuf`]: the inner login's pieces and
/// the reply's EAP packet, apart, so a step borrowing the first still leaves the second.
struct Scratch<'a> {
    inner: InnerRoom<'a>,
    out: &'a mut [u8],
}

/// Where an inner login's name and credential are copied for the pipeline to borrow, and
/// where the pipeline leaves who it authenticated.
struct InnerRoom<'a> {
    user: &'a mut [u8; 256],
    password: &'a mut [u8; 256],
    exchange: &'a mut [u8; 56],
    authorized: &'a Cell<Option<Pending>>,
}

fn scratch(buf: &mut PasswordBuf) -> Scratch<'_> {
    let TunnelBuf {
        user,
        password,
        exchange,
        out,
        authorized,
    } = buf.tunnel();
    Scratch {
        inner: InnerRoom {
            user,
            password,
            exchange,
            authorized,
        },
        out: &mut out[..],
    }
}

/// An Access-Request carrying EAP-Message.
pub fn start<'a>(
    ctx: &Context<'a>,
    r: &Request<'a>,
    now: Now,
    buf: &'a mut PasswordBuf,
) -> Step<'a> {
    let s = scratch(buf);
    let Some(svc) = ctx.eap else {
        return failure(ctx, r, None, RejectReason::NoSupportedCredentials, 0);
    };
    let mut message = [0u8; MAX_EAP_LEN];
    let pkt = match reassemble(r.packet, &mut message) {
        Ok(p) if p.code() == EapCode::Response => p,
        Ok(p) => return failure(ctx, r, None, RejectReason::EapMalformed, p.identifier()),
        Err(_) => return failure(ctx, r, None, RejectReason::EapMalformed, 0),
    };
    let Some(state) = r.packet.attr(STATE) else {
        // A new conversation: EAP-Response/Identity, answered with our first method's Start.
        if pkt.eap_type() != Some(EapType::Identity) {
            return failure(ctx, r, None, RejectReason::EapMalformed, pkt.identifier());
        }
        let Some(&method) = svc.config.methods.first() else {
            return failure(ctx, r, None, RejectReason::EapNoMethod, pkt.identifier());
        };
        let mut session = EapSession::new(
            method,
            pkt.type_data(),
            pkt.identifier(),
            fragment_size(svc, r),
        );
        session.peap_binding_mode = svc.config.peap_crypto_binding;
        return challenge(ctx, r, Box::new(session), now, s.out);
    };
    let mut session = match ctx
        .conversations
        .take(state, r.client, r.user_name(), now.unix)
    {
        Ok(Conversation::Eap(session)) => session,
        _ => {
            return failure(
                ctx,
                r,
                None,
                RejectReason::EapUnknownConversation,
                pkt.identifier(),
            )
        }
    };
    let round = session.respond(&pkt, svc, now.unix);
    drive(ctx, r, session, round, now, s)
}

/// Picks up an EAP request after its job.
pub fn resume<'a>(
    ctx: &Context<'a>,
    r: &Request<'a>,
    then: EapThen,
    result: JobResult,
    now: Now,
    buf: &'a mut PasswordBuf,
) -> Step<'a> {
    let s = scratch(buf);
    let Some(svc) = ctx.eap else {
        return failure(ctx, r, None, RejectReason::NoSupportedCredentials, 0);
    };
    match (then, result) {
        (EapThen::Handshake, JobResult::Tls(Some(mut session))) => {
            let round = session.after_tls(svc, now.unix);
            drive(ctx, r, session, round, now, s)
        }
        (EapThen::Handshake, _) => {
            // Queue full or no answer in time: the conversation is gone with the job.
            let id = request_identifier(r);
            failure(ctx, r, None, RejectReason::TlsOverloaded, id)
        }
        (EapThen::Inner { session, then }, result) => {
            let authorized = s.inner.authorized;
            let (inner_r, cred) = inner_request(r, &session, None, s.inner);
            let step = pipeline::pick_up_with(ctx, &inner_r, *then, result, now, &cred);
            settle(ctx, r, session, step, now, s.out, authorized)
        }
    }
}

/// Carries out what the conversation said.
fn drive<'a>(
    ctx: &Context<'a>,
    r: &Request<'a>,
    session: Box<EapSession>,
    round: Round,
    now: Now,
    s: Scratch<'a>,
) -> Step<'a> {
    match round {
        Round::Send => challenge(ctx, r, session, now, s.out),
        Round::Handshake => Step::Await(Await {
            job: Job::Tls(session),
            deadline: Some(now.instant + HANDSHAKE_DEADLINE),
            then: Continuation::Eap(EapThen::Handshake),
        }),
        Round::Inner(cred) => {
            let authorized = s.inner.authorized;
            let state = session.code_state;
            let (inner_r, extracted) = inner_request(r, &session, Some(&cred), s.inner);
            let step = match (&cred, state) {
                // The answer to the challenge a policy opened: redeemed as an outer one is.
                (InnerCredential::Code(code), Some(state)) => {
                    pipeline::answer_code(ctx, &inner_r, &state, &code.0, now)
                }
                (InnerCredential::Code(_), None) => Step::Reply(Decision::reject(
                    RejectReason::MfaStateInvalid,
                    ctx.reject_message,
                )),
                _ => pipeline::primary(ctx, &inner_r, &extracted, now),
            };
            settle(ctx, r, session, step, now, s.out, authorized)
        }
        Round::Accept => accept(ctx, r, &session, now),
        Round::Reject(why) => {
            let id = session.id;
            failure(ctx, r, Some(&session), why, id)
        }
    }
}

/// What the inner login's pipeline step means for the tunnel.
fn settle<'a>(
    ctx: &Context<'a>,
    r: &Request<'a>,
    mut session: Box<EapSession>,
    step: Step<'a>,
    now: Now,
    out: &'a mut [u8],
    authorized: &'a Cell<Option<Pending>>,
) -> Step<'a> {
    let result = match step {
        Step::Await(a) => {
            return Step::Await(Await {
                job: a.job,
                deadline: a.deadline,
                then: Continuation::Eap(EapThen::Inner {
                    session,
                    then: Box::new(a.then),
                }),
            })
        }
        Step::Reply(d) => match (d.outcome, d.reply) {
            (Outcome::Accept | Outcome::AcceptWaived(_), _) => authorized
                .take()
                .map_or(InnerResult::Refused(RejectReason::PolicyReject), |who| {
                    InnerResult::Accepted(who)
                }),
            (Outcome::Reject(why), _) => InnerResult::Refused(why),
            // A tunnel's challenge is node-local (never sealed): its State is 56 octets.
            (Outcome::Challenge, Reply::Challenge { state, prompt }) => {
                match state.as_slice().try_into() {
                    Ok(state) => InnerResult::Code { state, prompt },
                    Err(_) => InnerResult::Refused(RejectReason::InnerChallengeUnsupported),
                }
            }
            (Outcome::Challenge, _) => {
                InnerResult::Refused(RejectReason::InnerChallengeUnsupported)
            }
        },
        // A directory that cannot answer ends the conversation (its State is spent).
        Step::Drop(why) => InnerResult::Refused(why),
    };
    if let InnerResult::Refused(why) = &result {
        tracing::debug!(reason = why.label(), "EAP inner login refused");
    }
    let round = session.inner_done(result);
    match round {
        Round::Send => challenge(ctx, r, session, now, out),
        Round::Accept => accept(ctx, r, &session, now),
        Round::Reject(why) => {
            let id = session.id;
            failure(ctx, r, Some(&session), why, id)
        }
        // The tunnel asks nothing else of an inner login.
        Round::Handshake | Round::Inner(_) => {
            let id = session.id;
            failure(ctx, r, Some(&session), RejectReason::EapMalformed, id)
        }
    }
}

/// The inner login's request: the outer one, named by the inner identity, with its
/// credential copied into the driver's buffer.
fn inner_request<'a>(
    r: &Request<'a>,
    session: &EapSession,
    cred: Option<&InnerCredential>,
    room: InnerRoom<'a>,
) -> (Request<'a>, Extracted<'a>) {
    let InnerRoom {
        user,
        password,
        exchange,
        authorized,
    } = room;
    let n = session.inner_user.len().min(user.len());
    user[..n].copy_from_slice(&session.inner_user[..n]);
    let user: &'a [u8] = &user[..n];
    let x = match cred {
        Some(InnerCredential::MsChapV2(x)) => Some(*x),
        Some(InnerCredential::Pap(_) | InnerCredential::Code(_)) => None,
        // Resumed after a job: the exchange (if any) is the session's.
        None => session.exchange,
    };
    let credential = match (cred, x) {
        (Some(InnerCredential::Pap(pw)), _) => {
            let len = pw.0.len().min(password.len());
            password[..len].copy_from_slice(&pw.0[..len]);
            Credential::Pap(Ok(&password[..len]))
        }
        (_, Some(x)) => {
            exchange[..16].copy_from_slice(&x.authenticator_challenge);
            exchange[16..32].copy_from_slice(&x.peer_challenge);
            exchange[32..56].copy_from_slice(&x.nt_response);
            let exchange: &'a [u8; 56] = exchange;
            let (a, rest) = exchange.split_at(16);
            let (p, nt) = rest.split_at(16);
            match (a.try_into(), p.try_into(), nt.try_into()) {
                (Ok(a), Ok(p), Ok(nt)) => Credential::MsChap(Ok(MsChap::V2 {
                    ident: x.ident,
                    authenticator_challenge: a,
                    peer_challenge: p,
                    nt_response: nt,
                })),
                _ => Credential::MsChap(Err(RejectReason::MalformedMsChap)),
            }
        }
        // A PAP login resumed after its job: the password is no longer needed.
        _ => Credential::Pap(Err(RejectReason::NoPassword)),
    };
    let read = match credential {
        Credential::Pap(_) => PasswordRead::Whole,
        _ => PasswordRead::NotPap,
    };
    let inner = Request {
        user: Some(user),
        tunnel: Some(Tunnel {
            method: session.method,
            outer: r.user_name(),
            authorized,
        }),
        ..*r
    };
    (
        inner,
        Extracted {
            credential,
            read,
            mode: MfaMode::Challenge,
        },
    )
}

/// Files the conversation under a fresh State and answers with our next request.
fn challenge<'a>(
    ctx: &Context<'a>,
    r: &Request<'a>,
    mut session: Box<EapSession>,
    now: Now,
    out: &'a mut [u8],
) -> Step<'a> {
    let Some(svc) = ctx.eap else {
        return failure(ctx, r, None, RejectReason::NoSupportedCredentials, 0);
    };
    let n = session.write_request(out);
    if n == 0 {
        let id = session.id;
        return failure(ctx, r, Some(&session), RejectReason::EapMalformed, id);
    }
    let method = session.method;
    let fresh = session.stage == session::Stage::Started && session.link.is_none();
    let ttl = svc.config.idle_timeout.as_secs().max(1);
    let state = match ctx.conversations.open_within(
        r.client,
        r.user_name(),
        Conversation::Eap(session),
        ttl,
        now.unix,
        svc.config.max_per_client,
    ) {
        Ok(state) => state,
        Err(_) => {
            EapMetrics::bump(&svc.metrics.conversations_refused);
            let id = out.get(1).copied().unwrap_or(0);
            return failure(ctx, r, None, RejectReason::EapConversationsFull, id);
        }
    };
    if fresh {
        EapMetrics::bump(&svc.metrics.conversations_opened);
    }
    Step::Reply(Decision {
        outcome: Outcome::Challenge,
        reply: Reply::EapChallenge {
            state,
            eap: &out[..n],
        },
        policy: None,
        source: None,
        method: Some(method),
        session: None,
    })
}

/// The login succeeded: the policies once more over who logged in (their attributes into the
/// Access-Accept), EAP-Success, the MPPE keys; the authorization is kept for resumption.
fn accept<'a>(ctx: &Context<'a>, r: &Request<'a>, session: &EapSession, now: Now) -> Step<'a> {
    let (Some(svc), Some(who), Some(msk)) = (ctx.eap, session.authorized.as_ref(), session.msk())
    else {
        return failure(
            ctx,
            r,
            Some(session),
            RejectReason::EapMalformed,
            session.id,
        );
    };
    let authorized = Cell::new(None);
    let named = Request {
        user: Some(who.mfa_user.as_bytes()),
        tunnel: Some(Tunnel {
            method: session.method,
            outer: r.user_name(),
            authorized: &authorized,
        }),
        ..*r
    };
    let id = Identity {
        source: who.source,
        method: Some(session.method),
        presented: &who.mfa_user,
        groups: &who.groups,
        nt_key: None,
        certificate: who.certificate.as_deref(),
        granted: who.granted.as_ref(),
    };
    match pipeline::policies(ctx, &named, &id) {
        (_, Ok(d)) => {
            let lifetime = svc.config.tls.session_lifetime.as_secs();
            svc.authorized
                .insert(session.token, who.clone(), now.unix + lifetime, now.unix);
            svc.metrics.accepted(session.method);
            log_login(r, session, "accept", "");
            let reply = MethodReply::EapSuccess {
                identifier: session.id,
                msk,
            };
            Step::Reply(d.with_method_reply(reply))
        }
        (matched, Err(why)) => {
            svc.metrics.reject(why.label());
            log_login(r, session, "reject", why.label());
            let d = pipeline::rejected(ctx, why, matched, &id);
            Step::Reply(d.with_method_reply(MethodReply::EapFailure {
                identifier: session.id,
            }))
        }
    }
}

/// An Access-Reject with EAP-Failure.
fn failure<'a>(
    ctx: &Context<'a>,
    r: &Request<'a>,
    session: Option<&EapSession>,
    why: RejectReason,
    identifier: u8,
) -> Step<'a> {
    if let Some(svc) = ctx.eap {
        svc.metrics.reject(why.label());
    }
    if let Some(s) = session {
        log_login(r, s, "reject", why.label());
    }
    let method = session.map(|s| s.method);
    Step::Reply(
        Decision::reject(why, ctx.reject_message)
            .with_method(method, None)
            .with_method_reply(MethodReply::EapFailure { identifier }),
    )
}

/// One line per finished EAP login, beside the decision line: both identities, the TLS
/// version, whether resumed. Never a key or a password.
fn log_login(r: &Request<'_>, s: &EapSession, outcome: &str, reason: &str) {
    tracing::info!(
        target: "radshard::eap",
        outer = %String::from_utf8_lossy(&s.outer),
        inner = %String::from_utf8_lossy(&s.inner_user),
        user_name = %String::from_utf8_lossy(r.user_name()),
        client = r.client,
        method = s.method.label(),
        tls = s.tls_version(),
        resumed = s.resumed,
        outcome,
        reason,
        "eap login"
    );
}

/// TLS data per request: the configured size, smaller when the NAS's Framed-MTU says so
/// (the EAP header, Type, flags and TLS Message Length take 10 octets).
fn fragment_size(svc: &EapService, r: &Request<'_>) -> usize {
    let configured = svc.config.fragment_size;
    let mtu = r
        .packet
        .attr(FRAMED_MTU)
        .and_then(|v| <[u8; 4]>::try_from(v).ok())
        .map(|v| u32::from_be_bytes(v) as usize);
    match mtu {
        Some(mtu) => configured.min(mtu.saturating_sub(10)).max(64),
        None => configured,
    }
}

/// The identifier of the request's EAP packet (for an EAP-Failure after the conversation is
/// gone).
fn request_identifier(r: &Request<'_>) -> u8 {
    let mut message = [0u8; MAX_EAP_LEN];
    reassemble(r.packet, &mut message).map_or(0, |p| p.identifier())
}
