//! The proxy as a stage of the pipeline: the realm decides whether a request is answered
//! here (under its stripped name), refused, or forwarded to a pool of home servers; a
//! forwarded request is an [`Await`] on the home server's answer, and the answer goes
//! through the network policies like any source's, so a policy can add a guest VLAN to a
//! visitor's accept (and the pool can drop the home server's own Tunnel-* attributes).

use std::time::Instant;

use super::context::{Context, Request};
use super::decision::{Decision, Outcome, Reply};
use super::pipeline::{policies, Await, Continuation, Job, JobResult, Step};
use super::{Identity, RejectReason};
use crate::proto::{Code, Verified, CALLING_STATION_ID, EAP_MESSAGE};
use crate::proxy::config::{pool_deadline, ProxyConfig};
use crate::proxy::engine::{Failure, PoolId};
use crate::proxy::forward::ForwardError;
use crate::proxy::pool::{balance_key, Fallback};
use crate::proxy::realm::{AcctAction, AuthAction, RouteReject};
use crate::vocab::AuthSource;

/// What the realm makes of an Access-Request.
#[allow(clippy::large_enum_variant)] // as `Step` (the Class inline): moved, never boxed
pub(super) enum Routed<'a> {
    /// Answered here, as this request (its User-Name stripped of the realm if the realm says).
    Local(Request<'a>),
    /// Refused or forwarded: the step is taken.
    Step(Step<'a>),
}

/// Routes `r` by its realm. Inner logins of an EAP tunnel are never routed: their tunnel
/// was answered here already.
pub(super) fn route<'a>(ctx: &Context<'a>, r: &Request<'a>) -> Routed<'a> {
    let Some(proxy) = ctx.proxy else {
        return Routed::Local(*r);
    };
    if r.tunnel.is_some() {
        return Routed::Local(*r);
    }
    let Some(name) = r.user else {
        return Routed::Local(*r);
    };
    let is_eap = r.packet.attr(EAP_MESSAGE).is_some();
    let route = proxy.realms.route(name, is_eap);
    match route.auth {
        AuthAction::Local => Routed::Local(Request {
            user: Some(route.user_name),
            ..*r
        }),
        AuthAction::Reject(why) => Routed::Step(Step::Reply(Decision::reject(
            route_reason(why),
            ctx.reject_message,
        ))),
        AuthAction::Pool(pool) => Routed::Step(match proxy.pool_id(pool) {
            Some(pool) => forward(proxy, r, pool, name, route.user_name),
            None => Step::Reply(Decision::reject(
                RejectReason::NoRealmRoute,
                ctx.reject_message,
            )),
        }),
    }
}

/// The name the local sources see: the route's, for a request answered here (`resume` of a
/// request `route` kept local).
pub(super) fn local_view<'a>(ctx: &Context<'a>, r: &Request<'a>) -> Request<'a> {
    match route(ctx, r) {
        Routed::Local(local) => local,
        Routed::Step(_) => *r,
    }
}

fn route_reason(why: RouteReject) -> RejectReason {
    match why {
        RouteReject::InvalidNai(_) => RejectReason::InvalidNai,
        RouteReject::RealmRejected => RejectReason::RealmRejected,
        RouteReject::NoRoute => RejectReason::NoRealmRoute,
    }
}

fn forward<'a>(
    proxy: &ProxyConfig,
    r: &Request<'a>,
    pool: PoolId,
    sent_name: &'a [u8],
    user_name: &'a [u8],
) -> Step<'a> {
    Step::Await(Await {
        job: Job::Proxy {
            request: r.packet,
            pool,
            user_name: (user_name != sent_name).then_some(user_name),
            key: balance_key(r.packet.attr(CALLING_STATION_ID), Some(sent_name)),
        },
        deadline: Some(r.arrived + pool_deadline(proxy, pool)),
        then: Continuation::Proxy { pool },
    })
}

/// Where an Accounting-Request goes: `Some` job when its realm forwards accounting to a
/// pool, `None` when it is recorded here (the caller's ordinary path).
pub fn route_accounting<'a>(
    proxy: &ProxyConfig,
    req: &'a Verified<'a>,
    arrived: Instant,
) -> Option<Await<'a>> {
    let name = req.user_name().unwrap_or_default();
    let route = proxy.realms.route(name, false);
    let AcctAction::Pool(pool) = route.acct else {
        return None;
    };
    let pool = proxy.pool_id(pool)?;
    Some(Await {
        job: Job::Proxy {
            request: req,
            pool,
            user_name: (route.user_name != name).then_some(route.user_name),
            key: balance_key(req.attr(CALLING_STATION_ID), Some(name)),
        },
        deadline: Some(arrived + pool_deadline(proxy, pool)),
        then: Continuation::Proxy { pool },
    })
}

/// The home server answered (or did not): the decision.
pub(super) fn answered<'a>(
    ctx: &Context<'a>,
    r: &Request<'a>,
    pool: PoolId,
    result: JobResult,
) -> Step<'a> {
    let outcome = match result {
        JobResult::Proxy(o) => o,
        _ => {
            tracing::error!("a job result does not fit its continuation: request dropped");
            return Step::Drop(RejectReason::Overloaded);
        }
    };
    let reject = |why| Step::Reply(proxied_reject(ctx, why));
    let answer = match outcome {
        Ok(a) => a,
        Err(Failure::NoHomeServer(Fallback::Reject)) => return reject(RejectReason::NoHomeServer),
        Err(Failure::NoHomeServer(Fallback::Drop)) => {
            return Step::Drop(RejectReason::NoHomeServer)
        }
        // The NAS retransmits; the next attempt may find another (or the same) server.
        Err(Failure::NoAnswer) => return Step::Drop(RejectReason::HomeServerTimeout),
        Err(Failure::Busy | Failure::Overloaded) => return Step::Drop(RejectReason::Overloaded),
        Err(Failure::Forward(ForwardError::Loop { .. })) => return reject(RejectReason::ProxyLoop),
        Err(Failure::Forward(_) | Failure::Unverified) => return reject(RejectReason::ProxyFailed),
    };
    let Some(drop) = ctx.proxy.and_then(|p| p.drop_reply_attributes.get(pool.0)) else {
        return reject(RejectReason::ProxyFailed);
    };
    let code = answer.code();
    let relayed = |outcome, policy| Decision {
        outcome,
        reply: Reply::Proxied {
            answer: Box::new(answer),
            drop,
            policy,
        },
        policy: None,
        source: Some(AuthSource::Proxy),
        method: None,
        session: None,
    };
    match code {
        Code::AccessAccept => {
            let id = Identity {
                source: AuthSource::Proxy,
                method: None,
                presented: std::str::from_utf8(r.user_name()).unwrap_or_default(),
                groups: &[],
                nt_key: None,
                certificate: None,
                granted: None,
            };
            // The network policies have the last word on a visitor, as on our own users.
            match policies(ctx, r, &id) {
                (p, Ok(d)) => Step::Reply(Decision {
                    policy: p.map(|p| p.name.as_str()),
                    // Simultaneous-Use and our Class hold for visitors too.
                    session: d.session,
                    ..relayed(Outcome::Accept, p.map(|p| &p.reply))
                }),
                (_, Err(why)) => reject(why),
            }
        }
        Code::AccessChallenge => Step::Reply(relayed(Outcome::Challenge, None)),
        Code::AccessReject => Step::Reply(relayed(
            Outcome::Reject(RejectReason::HomeServerReject),
            None,
        )),
        // Accounting-Response: acknowledged by the home server.
        _ => Step::Reply(relayed(Outcome::Accept, None)),
    }
}

fn proxied_reject<'a>(ctx: &Context<'a>, why: RejectReason) -> Decision<'a> {
    Decision {
        source: Some(AuthSource::Proxy),
        ..Decision::reject(why, ctx.reject_message)
    }
}
