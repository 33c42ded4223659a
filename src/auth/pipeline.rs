//! The authentication pipeline: one sans-IO state machine every transport drives.
//!
//! [`start`] is fed a verified Access-Request and the time and answers a [`Step`]: a decided
//! reply, a request to drop, or slow work to do ([`Job`]) and where to pick up after it
//! ([`Continuation`]). The driver does the job (a slow hash on a blocking thread, a directory
//! bind, a second factor over HTTP) and feeds the result back with [`resume`], which answers
//! the next step. No sockets, tasks or clocks in here: a test drives it with a fake clock and
//! scripted job results.
//!
//! Inside: the method's credential ([`credential`](super::credential)) → the sources in order
//! ([`sources`](super::sources)) → the network policies over the [`Identity`] → the second
//! factor ([`second_factor`](super::second_factor)) → a [`Decision`].

use std::time::{Duration, Instant};

use super::context::{Context, Now, Request};
use super::credential::{extract, Credential, Extracted, PasswordBuf, PasswordRead};
use super::decision::{Decision, Outcome, Reply, Waiver};
use super::mschap::MsChap;
use super::second_factor::{self, after_primary, Pending, Redeemed, Second};
use super::sources::{local_verified, Source, SourceStep};
use super::{Identity, Method, RejectReason};
use crate::backend::mfa::{Mfa, PiAnswer, PiError, Provider};
use crate::backend::ShedPolicy;
use crate::backend::{Outcome as DirectoryOutcome, Proof};
use crate::policy::{PolicyInput, Verdict};
use crate::proto::{CALLING_STATION_ID, EAP_MESSAGE, STATE};
use crate::vocab::AuthSource;

/// What the driver does next with a request.
// A decided reply carries its Class inline (a session's, up to 253 octets): a Step is moved a
// few times per request on the stack, where boxing it would allocate per Access-Accept.
#[allow(clippy::large_enum_variant)]
pub enum Step<'a> {
    /// Send this reply.
    Reply(Decision<'a>),
    /// Do this work, then [`resume`].
    Await(Await<'a>),
    /// Send nothing (the NAS retries): the directory or provider is overloaded or unavailable
    /// and the configuration says drop.
    Drop(RejectReason),
}

/// Slow work a request waits for.
pub struct Await<'a> {
    pub job: Job<'a>,
    /// When the driver gives up waiting and resumes with the job's "no answer"
    /// ([`JobResult::timed_out`]). `None`: the job always ends by itself (a slow hash).
    pub deadline: Option<Instant>,
    /// Where the pipeline picks up; owned, it is all a waiting request keeps of its decision.
    pub then: Continuation,
}

/// Work the driver does off the shard. Borrows the request: the driver submits it before the
/// request goes out of scope. Its `Debug` leaves out passwords and codes.
pub enum Job<'a> {
    /// Check a local user's password against its slow hash.
    VerifyHash { user: &'a [u8], password: &'a [u8] },
    /// Have the directory (a bind, its NT hash, or winbind) check `user`'s proof.
    Directory { user: &'a str, proof: Proof<'a> },
    /// Read `user`'s rows from the SQL store.
    Sql { user: &'a str },
    /// Check a password against a slow known-good form the SQL store holds (Crypt-Password).
    SqlHash {
        known: crate::backend::sql::known_good::KnownGood,
        password: &'a [u8],
    },
    /// Hold the request for a push to `user` (the name the provider knows; single-flight
    /// per client, user and device).
    Push {
        client: &'a str,
        user: String,
        station: &'a [u8],
    },
    /// Have privacyIDEA trigger `user`'s challenge (a code token) or push (a push token).
    Trigger {
        client: &'a str,
        user: String,
        station: &'a [u8],
    },
    /// Have the HTTP provider check `code` for `user`.
    Check {
        user: String,
        code: String,
        transaction_id: Option<String>,
    },
    /// Run a TLS handshake step of this EAP conversation on a handshake worker.
    Tls(Box<super::eap::EapSession>),
    /// Several nodes: redeem a challenge's State once for all of them (its nonce into
    /// `radshard_state_redeemed`; a conflict is a replay).
    RedeemState {
        nonce: super::conversation::state::Nonce,
        expiry: u64,
    },
    /// Forward `request` to a home server of `pool` (with `user_name` in place of the NAS's
    /// when the realm is stripped; `key` keeps a keyed-balance conversation on one server).
    Proxy {
        request: &'a crate::proto::Verified<'a>,
        pool: crate::proxy::engine::PoolId,
        user_name: Option<&'a [u8]>,
        key: u64,
    },
    /// Lease an address of `[sql] ip_pool` for an Access-Accept.
    Lease(crate::backend::sql::ippool::LeaseRequest),
    /// `[sql] sessions`: count `user`'s open sessions in `radacct`.
    CountSessions { user: String },
}

impl std::fmt::Debug for Job<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let user = |u: &[u8]| String::from_utf8_lossy(u).into_owned();
        match self {
            Job::VerifyHash { user: u, .. } => f
                .debug_struct("VerifyHash")
                .field("user", &user(u))
                .finish_non_exhaustive(),
            Job::Directory { user, proof } => f
                .debug_struct("Directory")
                .field("user", user)
                .field("proof", proof)
                .finish(),
            Job::Sql { user } => f.debug_struct("Sql").field("user", user).finish(),
            Job::SqlHash { known, .. } => f
                .debug_struct("SqlHash")
                .field("known", known)
                .finish_non_exhaustive(),
            Job::Push { client, user, .. } => f
                .debug_struct("Push")
                .field("client", client)
                .field("user", user)
                .finish_non_exhaustive(),
            Job::Trigger { client, user, .. } => f
                .debug_struct("Trigger")
                .field("client", client)
                .field("user", user)
                .finish_non_exhaustive(),
            Job::Check { user, .. } => f
                .debug_struct("Check")
                .field("user", user)
                .finish_non_exhaustive(),
            Job::Tls(s) => f.debug_struct("Tls").field("method", &s.method).finish(),
            // Never the nonce (a part of the State).
            Job::RedeemState { expiry, .. } => f
                .debug_struct("RedeemState")
                .field("expiry", expiry)
                .finish_non_exhaustive(),
            Job::Proxy { pool, .. } => f
                .debug_struct("Proxy")
                .field("pool", pool)
                .finish_non_exhaustive(),
            Job::Lease(l) => f.debug_tuple("Lease").field(l).finish(),
            Job::CountSessions { user } => {
                f.debug_struct("CountSessions").field("user", user).finish()
            }
        }
    }
}

/// A job's result, fed back to [`resume`].
#[derive(Debug)]
pub enum JobResult {
    Hash(bool),
    Directory(DirectoryOutcome),
    /// The SQL store's rows for the user, or why there are none.
    Sql(crate::backend::sql::Lookup),
    /// The provider's answer; `None`: none by the deadline, or it could not be asked.
    SecondFactor(Option<Result<PiAnswer, PiError>>),
    /// The conversation after its handshake step; `None`: the workers were full or did not
    /// answer in time.
    Tls(Option<Box<super::eap::EapSession>>),
    /// The home server's verified answer, or why there is none.
    Proxy(crate::proxy::client::Outcome),
    /// Whether the database redeemed a State now (first time on any node).
    StateRedeemed(crate::backend::sql::Redemption),
    /// The address leased for an Access-Accept, or why there is none.
    Leased(crate::backend::sql::ippool::Lease),
    /// The user's open sessions in `radacct`; `None`: no answer.
    SessionsOpen(Option<u64>),
}

impl JobResult {
    /// What a job that did not answer by its deadline is taken to have said.
    pub fn timed_out(job: &Job<'_>) -> JobResult {
        match job {
            Job::VerifyHash { .. } | Job::SqlHash { .. } => JobResult::Hash(false),
            Job::Sql { .. } => JobResult::Sql(crate::backend::sql::Lookup::Unavailable),
            Job::Directory { .. } => JobResult::Directory(DirectoryOutcome::Unavailable),
            Job::Push { .. } | Job::Trigger { .. } | Job::Check { .. } => {
                JobResult::SecondFactor(None)
            }
            Job::Tls(_) => JobResult::Tls(None),
            Job::RedeemState { .. } => {
                JobResult::StateRedeemed(crate::backend::sql::Redemption::Unavailable)
            }
            Job::Proxy { .. } => JobResult::Proxy(Err(crate::proxy::engine::Failure::NoAnswer)),
            Job::Lease(_) => JobResult::Leased(crate::backend::sql::ippool::Lease::Unavailable),
            Job::CountSessions { .. } => JobResult::SessionsOpen(None),
        }
    }
}

/// Where the pipeline picks up after a job.
#[derive(Debug)]
pub enum Continuation {
    /// A source's slow work: its answer is the primary authentication.
    Source(Source),
    /// A slow known-good password of the SQL store's user, whose rows are decided again
    /// with the check's answer.
    SqlHash(std::sync::Arc<crate::backend::sql::eval::UserRows>),
    /// The second factor, for what the primary authentication found. `trigger`: the answer is
    /// that of privacyIDEA's triggered challenge (an Access-Challenge for a code token).
    SecondFactor { pending: Pending, trigger: bool },
    /// An EAP conversation: after its handshake step, or its inner login's job.
    Eap(super::eap::EapThen),
    /// A request forwarded to a home server of `pool`.
    Proxy { pool: crate::proxy::engine::PoolId },
    /// A challenge taken by its State, waiting for the database to redeem the State once for
    /// all nodes; then its code is checked.
    Redeem(Pending),
    /// An Access-Accept waiting for the database: its open sessions counted (`[sql]
    /// sessions`), then its address leased (`[sql] ip_pool`).
    Lease(Box<Leasing>),
}

/// An Access-Accept decided, waiting for its address: all it will carry, owned (the
/// attributes of the user, the source and the policy in one list, in that order).
#[derive(Debug)]
pub struct Leasing {
    outcome: Outcome,
    reply: crate::policy::ReplyAttributes,
    method_reply: Option<super::mschap::MethodReply>,
    policy: Option<String>,
    source: Option<AuthSource>,
    method: Option<Method>,
    session: Option<crate::session::Grant>,
    /// `[sql] sessions`: the Simultaneous-Use cap and the user whose open sessions in
    /// `radacct` are counted first.
    count: Option<(u32, String)>,
    /// `[sql] ip_pool`: the lease to ask for.
    lease: Option<crate::backend::sql::ippool::LeaseRequest>,
    /// The lease was asked for.
    leasing: bool,
}

/// Decides a new Access-Request. `buf` receives the revealed User-Password (wiped when the
/// caller drops it).
pub fn start<'a>(
    ctx: &Context<'a>,
    r: &Request<'a>,
    now: Now,
    buf: &'a mut PasswordBuf,
) -> Step<'a> {
    let r = match super::proxied::route(ctx, r) {
        super::proxied::Routed::Local(local) => local,
        super::proxied::Routed::Step(step) => return step,
    };
    let step = with_method_error(&r, decide(ctx, &r, now, buf));
    with_pool(ctx, &r, step)
}

/// Picks up after a job: `then` is where [`start`] (or an earlier `resume`) left off.
pub fn resume<'a>(
    ctx: &Context<'a>,
    r: &Request<'a>,
    then: Continuation,
    result: JobResult,
    now: Now,
    buf: &'a mut PasswordBuf,
) -> Step<'a> {
    if let Continuation::Proxy { pool } = then {
        return super::proxied::answered(ctx, r, pool, result);
    }
    let r = super::proxied::local_view(ctx, r);
    if let Continuation::Lease(leasing) = then {
        return with_method_error(&r, leased(ctx, r.arrived, *leasing, result));
    }
    let step = with_method_error(&r, pick_up(ctx, &r, then, result, now, buf));
    with_pool(ctx, &r, step)
}

/// An Access-Accept of ours (not a home server's, not an EAP tunnel's inner one) may wait
/// for the database before it is sent: `[sql] sessions` counts the user's open sessions in
/// `radacct` against a Simultaneous-Use cap, then `[sql] ip_pool` leases an address when the
/// reply has no Framed-IP-Address or Framed-IPv6-Prefix.
fn with_pool<'a>(ctx: &Context<'a>, r: &Request<'a>, step: Step<'a>) -> Step<'a> {
    use crate::backend::sql::ippool::{nas_of, LeaseRequest, PoolKey, FRAMED_IPV6_PREFIX};
    if ctx.ip_pool.is_none() && ctx.session_count.is_none() {
        return step;
    }
    let Step::Reply(d) = step else {
        return step;
    };
    let Reply::Attributes {
        message,
        user,
        source,
        policy,
        method,
    } = &d.reply
    else {
        return Step::Reply(d);
    };
    if r.tunnel.is_some() || d.code() != crate::proto::Code::AccessAccept {
        return Step::Reply(d);
    }
    let count = d
        .session
        .and_then(|g| g.count_in_db)
        .filter(|_| ctx.session_count.is_some());
    let sets = |t| {
        user.is_some_and(|u| u.sets(t))
            || source.as_ref().is_some_and(|g| g.reply.sets(t))
            || policy.is_some_and(|p| p.sets(t))
    };
    let lease = ctx
        .ip_pool
        .filter(|_| !sets(crate::proto::FRAMED_IP_ADDRESS) && !sets(FRAMED_IPV6_PREFIX));
    if count.is_none() && lease.is_none() {
        return Step::Reply(d);
    }
    let mut reply = crate::policy::ReplyAttributes::default();
    if let Some(m) = message {
        reply.push(crate::proto::REPLY_MESSAGE, m);
    }
    for a in [*user, source.as_ref().map(|g| &g.reply), *policy]
        .into_iter()
        .flatten()
    {
        reply.extend(a);
    }
    let text = |t| String::from_utf8_lossy(r.packet.attr(t).unwrap_or_default()).into_owned();
    let lease = lease.map(|pool| {
        let nas = nas_of(r.packet.packet(), r.nas.ip());
        let key = match pool.pool.key {
            PoolKey::CallingStationId => text(CALLING_STATION_ID),
            PoolKey::UserName => String::from_utf8_lossy(r.user_name()).into_owned(),
            PoolKey::NasPort => {
                let port = r
                    .packet
                    .attr(crate::proto::NAS_PORT)
                    .and_then(|v| <[u8; 4]>::try_from(v).ok())
                    .map(u32::from_be_bytes);
                port.map_or_else(String::new, |p| format!("{nas}:{p}"))
            }
        };
        // The user's Pool-Name, else the policy's, else the configured one.
        let pool_name = source
            .as_ref()
            .and_then(|g| g.pool_name.clone())
            .or_else(|| {
                d.policy
                    .and_then(|n| ctx.policies.named(n))
                    .and_then(|p| p.ip_pool.clone())
            })
            .unwrap_or_else(|| pool.pool.name.clone());
        LeaseRequest {
            pool: pool_name,
            key,
            user: String::from_utf8_lossy(r.user_name()).into_owned(),
            nas,
            station: text(CALLING_STATION_ID),
        }
    });
    let then = Leasing {
        outcome: d.outcome,
        reply,
        method_reply: *method,
        policy: d.policy.map(str::to_string),
        source: d.source,
        method: d.method,
        session: d.session,
        count: count.map(|cap| (cap, String::from_utf8_lossy(r.user_name()).into_owned())),
        lease,
        leasing: false,
    };
    next_wait(ctx, r.arrived, then)
}

/// The next database step of an Access-Accept waiting in `then`, or the Accept itself.
fn next_wait<'a>(ctx: &Context<'a>, arrived: Instant, mut then: Leasing) -> Step<'a> {
    if let Some((_, user)) = &then.count {
        let deadline = ctx.session_count.map_or(Duration::ZERO, |c| c.deadline);
        return Step::Await(Await {
            job: Job::CountSessions { user: user.clone() },
            deadline: Some(arrived + deadline),
            then: Continuation::Lease(Box::new(then)),
        });
    }
    if let Some(req) = then.lease.take() {
        let deadline = ctx.ip_pool.map_or(Duration::ZERO, |p| p.deadline);
        // The lease is asked for once: `then.lease` is empty when it answers.
        then.leasing = true;
        return Step::Await(Await {
            job: Job::Lease(req),
            deadline: Some(arrived + deadline),
            then: Continuation::Lease(Box::new(then)),
        });
    }
    Step::Reply(accept_of(ctx, then))
}

/// The Access-Accept that waited in `then`.
fn accept_of<'a>(ctx: &Context<'a>, then: Leasing) -> Decision<'a> {
    Decision {
        outcome: then.outcome,
        reply: Reply::Attributes {
            message: None,
            user: None,
            source: Some(std::sync::Arc::new(super::SourceGrant {
                reply: then.reply,
                simultaneous_use: None,
                pool_name: None,
            })),
            policy: None,
            method: then.method_reply,
        },
        policy: then
            .policy
            .as_deref()
            .and_then(|n| ctx.policies.named(n))
            .map(|p| p.name.as_str()),
        source: then.source,
        method: then.method,
        session: then.session,
    }
}

/// The database answered an Access-Accept waiting in `then` (its open sessions counted, or
/// its address leased).
fn leased<'a>(
    ctx: &Context<'a>,
    arrived: Instant,
    mut then: Leasing,
    result: JobResult,
) -> Step<'a> {
    use crate::backend::sql::ippool::{Lease, OnExhausted};
    let policy = then
        .policy
        .as_deref()
        .and_then(|n| ctx.policies.named(n))
        .map(|p| p.name.as_str());
    // An EAP conversation's Access-Reject carries its EAP-Failure.
    let failure = match then.method_reply {
        Some(super::mschap::MethodReply::EapSuccess { identifier, .. }) => {
            Some(super::mschap::MethodReply::EapFailure { identifier })
        }
        _ => None,
    };
    let refused = |why| {
        let d = Decision {
            policy,
            ..Decision::reject(why, ctx.reject_message).with_method(then.method, then.source)
        };
        Step::Reply(match failure {
            Some(f) => d.with_method_reply(f),
            None => d,
        })
    };
    let unavailable = |on: Option<ShedPolicy>| match on {
        Some(ShedPolicy::Reject) => refused(RejectReason::SqlUnavailable),
        _ => Step::Drop(RejectReason::SqlUnavailable),
    };
    match result {
        JobResult::SessionsOpen(open) => {
            let Some((cap, _)) = then.count.take() else {
                return Step::Drop(RejectReason::SqlUnavailable);
            };
            match open {
                Some(n) if n >= u64::from(cap) => {
                    if let Some(store) = ctx.sessions {
                        store
                            .counters
                            .limit_rejects
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    return refused(RejectReason::SimultaneousUse);
                }
                Some(_) => {}
                None => return unavailable(ctx.session_count.map(|c| c.on_unavailable)),
            }
        }
        JobResult::Leased(lease) if then.leasing => {
            then.leasing = false;
            let Some(pool) = ctx.ip_pool else {
                return Step::Drop(RejectReason::SqlUnavailable);
            };
            match lease {
                Lease::Leased(framed) => {
                    let (t, v) = framed.attribute();
                    then.reply.push(t, &v);
                }
                Lease::Exhausted => {
                    tracing::warn!(pool = %pool.pool.name, "ip pool exhausted");
                    if pool.pool.on_exhausted == OnExhausted::Reject {
                        return refused(RejectReason::IpPoolExhausted);
                    }
                }
                Lease::Unavailable => return unavailable(Some(pool.on_unavailable)),
            }
        }
        _ => return Step::Drop(RejectReason::SqlUnavailable),
    }
    next_wait(ctx, arrived, then)
}

/// An MS-CHAP reject tells the peer why in MS-CHAP-Error (its accept attributes are added
/// with the policies', see [`policies`]); every reject, wherever decided, passes here.
fn with_method_error<'a>(r: &Request<'a>, step: Step<'a>) -> Step<'a> {
    let Step::Reply(mut d) = step else {
        return step;
    };
    match (d.outcome, d.method) {
        (Outcome::Reject(RejectReason::PasswordChangeUnsupported), _) => {
            if let Some(e) = MsChap::change_refused(r.packet) {
                d = d.with_method_reply(e);
            }
        }
        (Outcome::Reject(why), Some(method)) => {
            if let Ok(exchange) = MsChap::read(r.packet, method) {
                d = d.with_method_reply(exchange.rejected(why));
            }
        }
        _ => {}
    }
    Step::Reply(d)
}

fn decide<'a>(ctx: &Context<'a>, r: &Request<'a>, now: Now, buf: &'a mut PasswordBuf) -> Step<'a> {
    // EAP carries its own conversation (and State) from the first round on.
    if r.packet.attr(EAP_MESSAGE).is_some() {
        return super::eap::start(ctx, r, now, buf);
    }
    // Without [mfa] the State is not even looked for.
    if let Some((mfa, state)) = ctx.mfa.and_then(|m| Some((m, r.packet.attr(STATE)?))) {
        return follow_up(ctx, r, mfa, state, now, buf);
    }
    let cred = extract(ctx, r, buf);
    if let Credential::Pap(Err(RejectReason::MfaBadCode)) = cred.credential {
        // Cannot hold a password and a code: refused before any source is asked.
        if let Some(mfa) = ctx.mfa {
            mfa.metrics.outcome(RejectReason::MfaBadCode.label());
        }
        return reject(ctx, RejectReason::MfaBadCode, &cred);
    }
    primary(ctx, r, &cred, now)
}

/// The primary sources in order over the method's credential, then (on success) the policies
/// and the second factor. An EAP tunnel's inner login enters here too.
pub(super) fn primary<'a>(
    ctx: &Context<'a>,
    r: &Request<'a>,
    cred: &Extracted<'a>,
    now: Now,
) -> Step<'a> {
    primary_from(ctx, r, cred, now, 0)
}

/// The sources after `source` (which did not know the user), as [`primary`].
pub(super) fn primary_after<'a>(
    ctx: &Context<'a>,
    r: &Request<'a>,
    cred: &Extracted<'a>,
    now: Now,
    source: Source,
) -> Step<'a> {
    let next = Source::CHAIN
        .iter()
        .position(|s| *s == source)
        .map_or(Source::CHAIN.len(), |i| i + 1);
    primary_from(ctx, r, cred, now, next)
}

fn primary_from<'a>(
    ctx: &Context<'a>,
    r: &Request<'a>,
    cred: &Extracted<'a>,
    now: Now,
    first: usize,
) -> Step<'a> {
    let mut skipped = RejectReason::UnknownUser;
    for source in Source::CHAIN.into_iter().skip(first) {
        match source.authenticate(ctx, r, cred, now) {
            SourceStep::Skip(why) => {
                if skipped == RejectReason::UnknownUser {
                    skipped = why;
                }
            }
            SourceStep::Done(Ok(id)) => return accepted(ctx, r, &id, cred.read, now),
            SourceStep::Done(Err(why)) => return reject(ctx, why, cred),
            SourceStep::Decided(step) => return step,
            SourceStep::Await(job) => {
                let deadline = match job {
                    Job::Directory { .. } => ctx.directory.map(|d| r.arrived + d.deadline),
                    Job::Sql { .. } => ctx.sql.map(|s| r.arrived + s.deadline),
                    _ => None,
                };
                return Step::Await(Await {
                    job,
                    deadline,
                    then: Continuation::Source(source),
                });
            }
        }
    }
    reject(ctx, skipped, cred)
}

fn pick_up<'a>(
    ctx: &Context<'a>,
    r: &Request<'a>,
    then: Continuation,
    result: JobResult,
    now: Now,
    buf: &'a mut PasswordBuf,
) -> Step<'a> {
    if let Continuation::Eap(then) = then {
        return super::eap::resume(ctx, r, then, result, now, buf);
    }
    if let Continuation::Redeem(pending) = then {
        return state_redeemed(ctx, r, pending, result, now, buf);
    }
    let cred = extract(ctx, r, buf);
    pick_up_with(ctx, r, then, result, now, &cred)
}

/// [`resume`] with the credential already read (an EAP tunnel's inner login brings its own).
pub(super) fn pick_up_with<'a>(
    ctx: &Context<'a>,
    r: &Request<'a>,
    then: Continuation,
    result: JobResult,
    now: Now,
    cred: &Extracted<'a>,
) -> Step<'a> {
    match (then, result) {
        (Continuation::Source(Source::Local), JobResult::Hash(ok)) => {
            match local_verified(ctx, r).filter(|_| ok) {
                Some(id) => accepted(ctx, r, &id, cred.read, now),
                None => reject(ctx, RejectReason::BadPassword, cred),
            }
        }
        (Continuation::Source(Source::Directory), JobResult::Directory(outcome)) => {
            directory_answered(ctx, r, outcome, cred, now)
        }
        (Continuation::Source(Source::Sql), JobResult::Sql(lookup)) => {
            super::sql::answered(ctx, r, lookup, cred, now)
        }
        (Continuation::SqlHash(rows), JobResult::Hash(ok)) => {
            super::sql::decide(ctx, r, &rows, cred, now, Some(ok))
        }
        (Continuation::SecondFactor { pending, trigger }, JobResult::SecondFactor(answer)) => {
            factor_answered(ctx, r, pending, trigger, answer, now)
        }
        // A driver that feeds the wrong result is a bug; nothing can be decided from it.
        (_, _) => {
            tracing::error!("a job result does not fit its continuation: request dropped");
            Step::Drop(RejectReason::Overloaded)
        }
    }
}

/// An Access-Reject for `why` after the method read `cred`.
pub(super) fn reject<'a>(ctx: &Context<'a>, why: RejectReason, cred: &Extracted<'_>) -> Step<'a> {
    Step::Reply(
        Decision::reject(why, ctx.reject_message).with_method(cred.credential.method(), None),
    )
}

fn directory_answered<'a>(
    ctx: &Context<'a>,
    r: &Request<'a>,
    outcome: DirectoryOutcome,
    cred: &Extracted<'_>,
    now: Now,
) -> Step<'a> {
    let method = cred.credential.method();
    let (policy, why) = match outcome {
        DirectoryOutcome::Accept(found) => {
            let id = Identity {
                source: AuthSource::Ldap,
                method,
                presented: &found.presented,
                groups: &found.groups,
                nt_key: found.nt_key,
                certificate: None,
                granted: None,
            };
            return accepted(ctx, r, &id, cred.read, now);
        }
        DirectoryOutcome::Reject(why) => {
            let message = ctx
                .directory_reject_messages
                .get(why.label())
                .map(String::as_bytes)
                .or(ctx.reject_message);
            return Step::Reply(
                Decision::reject(why, message).with_method(method, Some(AuthSource::Ldap)),
            );
        }
        DirectoryOutcome::Shed => (
            ctx.directory.map(|d| d.on_overload),
            RejectReason::Overloaded,
        ),
        DirectoryOutcome::Unavailable => (
            ctx.directory.map(|d| d.on_unavailable),
            RejectReason::DirectoryUnavailable,
        ),
    };
    match policy {
        Some(ShedPolicy::Reject) => reject(ctx, why, cred),
        _ => Step::Drop(why),
    }
}

/// The policies, over what the primary authentication found.
pub(super) fn policies<'a>(
    ctx: &Context<'a>,
    r: &Request<'_>,
    id: &Identity<'_>,
) -> (
    Option<&'a crate::policy::NetworkPolicy>,
    Result<Decision<'a>, RejectReason>,
) {
    // Without policies (the common local-only setup) the request is not even looked at.
    let verdict = if ctx.policies.is_empty() {
        Verdict::Accept(None)
    } else {
        ctx.policies.decide(&PolicyInput {
            certificate: id.certificate,
            ..PolicyInput::from_request(
                r.packet,
                r.client,
                r.client_group,
                id.groups,
                r.method_seen(id.method),
                id.source,
            )
        })
    };
    match verdict {
        // A NAS that did the primary authentication is trusted only by a policy that says so.
        Verdict::Accept(p)
            if id.source == AuthSource::Nas && !p.is_some_and(|p| p.primary_by_nas) =>
        {
            (p, Err(RejectReason::PolicyReject))
        }
        Verdict::Accept(p) => {
            if let Some(p) = p {
                tracing::debug!(policy = %p.name, mfa = p.mfa, "network policy matched");
            }
            let local = (id.source == AuthSource::Local)
                .then(|| r.user.and_then(|n| ctx.users.get(n)))
                .flatten();
            let user = local.map(|u| &u.reply);
            let session = match ctx.sessions {
                // Counted in radacct (all nodes) before the Accept is sent: the cap only.
                _ if ctx.session_count.is_some() => {
                    let limit = session_limit(p, local, id.granted.map(|g| &**g));
                    let identity = r.user.unwrap_or(id.presented.as_bytes());
                    let g = ctx
                        .sessions
                        .and_then(|store| crate::session::grant(store, identity, None).ok())
                        .unwrap_or_default();
                    Some(crate::session::Grant {
                        count_in_db: limit.map(|l| l.cap),
                        ..g
                    })
                }
                None => None,
                Some(store) => {
                    let limit = session_limit(p, local, id.granted.map(|g| &**g));
                    let identity = r.user.unwrap_or(id.presented.as_bytes());
                    match crate::session::grant(store, identity, limit) {
                        Ok(g) => Some(g),
                        Err(why) => return (p, Err(why)),
                    }
                }
            };
            // MS-CHAP: S= and the MPPE keys, from the NT key the source proved.
            let method = id.method.zip(id.nt_key).and_then(|(m, key)| {
                Some(
                    MsChap::read(r.packet, m)
                        .ok()?
                        .accepted(r.user_name(), &key),
                )
            });
            (
                p,
                Ok(Decision {
                    outcome: Outcome::Accept,
                    reply: Reply::Attributes {
                        message: None,
                        user,
                        source: id.granted.cloned(),
                        policy: p.map(|p| &p.reply),
                        method,
                    },
                    policy: p.map(|p| p.name.as_str()),
                    source: Some(id.source),
                    method: r.method_seen(id.method),
                    session,
                }),
            )
        }
        Verdict::Reject(p) => {
            tracing::debug!(
                policy = p.map_or("(none matched)", |p| p.name.as_str()),
                "network policy rejects"
            );
            (p, Err(RejectReason::PolicyReject))
        }
    }
}

/// The Simultaneous-Use cap of a login: the policy's, else the local user's (rejecting at it).
fn session_limit(
    policy: Option<&crate::policy::NetworkPolicy>,
    local: Option<&super::local::LocalUser>,
    granted: Option<&super::SourceGrant>,
) -> Option<crate::session::SessionLimit> {
    policy.and_then(|p| p.simultaneous_use).or_else(|| {
        local
            .and_then(|u| u.simultaneous_use)
            .or_else(|| granted.and_then(|g| g.simultaneous_use))
            .map(|cap| crate::session::SessionLimit {
                cap,
                at_cap: crate::session::AtCap::Reject,
            })
    })
}

/// A reject decided after the policies (it names the policy and the source).
pub(super) fn rejected<'a>(
    ctx: &Context<'a>,
    why: RejectReason,
    policy: Option<&'a crate::policy::NetworkPolicy>,
    id: &Identity<'_>,
) -> Decision<'a> {
    Decision {
        policy: policy.map(|p| p.name.as_str()),
        ..Decision::reject(why, ctx.reject_message).with_method(id.method, Some(id.source))
    }
}

/// The primary authentication passed: the policies, then the second factor.
pub(super) fn accepted<'a>(
    ctx: &Context<'a>,
    r: &Request<'a>,
    id: &Identity<'_>,
    read: PasswordRead<'_>,
    now: Now,
) -> Step<'a> {
    let (matched, decided) = policies(ctx, r, id);
    let accept = match decided {
        Ok(d) => d,
        Err(why) => return Step::Reply(rejected(ctx, why, matched, id)),
    };
    let second = after_primary(ctx, r, matched, id, read, now.unix);
    // An EAP tunnel finishes its own rounds before the NAS hears: it keeps who passed.
    let keep = || {
        if let Some(t) = r.tunnel {
            t.authorized.set(Some(second_factor::pending(id, None)));
        }
    };
    let waived = |w, accept: Decision<'a>| {
        Step::Reply(Decision {
            outcome: Outcome::AcceptWaived(w),
            ..accept
        })
    };
    let held = |job, trigger| {
        Step::Await(Await {
            job,
            deadline: ctx.mfa.map(|m| now.instant + hold_limit(m)),
            then: Continuation::SecondFactor {
                pending: second_factor::pending(id, None),
                trigger,
            },
        })
    };
    let station = r.packet.attr(CALLING_STATION_ID).unwrap_or_default();
    let push = |trigger| {
        Job::Push {
            client: r.client,
            user: id.presented.to_string(),
            station,
        }
        .triggered(trigger)
    };
    match second {
        Second::NotRequired | Second::CodeOk => {
            keep();
            Step::Reply(accept)
        }
        Second::Waived(w) => {
            keep();
            waived(w, accept)
        }
        Second::Challenge(state) => Step::Reply(challenge(ctx, accept, state)),
        Second::Push => held(push(false), false),
        Second::Trigger => held(push(true), true),
        Second::Check(code) => held(
            Job::Check {
                user: id.presented.to_string(),
                code,
                transaction_id: None,
            },
            false,
        ),
        Second::Reject(why) => Step::Reply(rejected(ctx, why, matched, id)),
    }
}

impl<'a> Job<'a> {
    /// A push job as privacyIDEA's trigger, when `trigger`.
    fn triggered(self, trigger: bool) -> Job<'a> {
        match self {
            Job::Push {
                client,
                user,
                station,
            } if trigger => Job::Trigger {
                client,
                user,
                station,
            },
            other => other,
        }
    }
}

/// An Access-Challenge carrying `state` and the configured prompt.
fn challenge<'a>(
    ctx: &Context<'a>,
    base: Decision<'a>,
    state: super::conversation::state::StateBuf,
) -> Decision<'a> {
    let prompt = ctx.mfa.map_or("", |m| m.config.prompt.as_str());
    Decision {
        outcome: Outcome::Challenge,
        reply: Reply::Challenge { state, prompt },
        ..base
    }
}

/// How long a held request may wait for its provider: a push's wait, else one HTTP request.
fn hold_limit(mfa: &Mfa) -> Duration {
    match (&mfa.config.provider, mfa.push_wait()) {
        (_, Some(wait)) => wait,
        (Provider::PrivacyIdea(c), _) => c.timeout + Duration::from_secs(1),
        _ => Duration::from_secs(5),
    }
}

/// A follow-up carrying a State: the answer to one of our challenges. State and code, then
/// the policies again with what the primary authentication found (the password is not sent
/// twice).
fn follow_up<'a>(
    ctx: &Context<'a>,
    r: &Request<'a>,
    mfa: &'a Mfa,
    state: &[u8],
    now: Now,
    buf: &'a mut PasswordBuf,
) -> Step<'a> {
    let code = r
        .packet
        .user_password(buf.bytes())
        .map_err(|_| RejectReason::MfaBadCode);
    redeemed(ctx, r, mfa, state, code, now)
}

/// An EAP tunnel's inner login answers the challenge `state` a policy opened with `code` (a
/// second EAP-GTC round, TTLS-PAP's next User-Password): checked as an outer follow-up is.
pub(super) fn answer_code<'a>(
    ctx: &Context<'a>,
    r: &Request<'a>,
    state: &[u8],
    code: &[u8],
    now: Now,
) -> Step<'a> {
    match ctx.mfa {
        Some(mfa) => redeemed(ctx, r, mfa, state, Ok(code), now),
        None => Step::Reply(Decision::reject(
            RejectReason::MfaStateInvalid,
            ctx.reject_message,
        )),
    }
}

/// The State of a challenge and the code answering it: accept, reject, or the provider's
/// check off the shard.
fn redeemed<'a>(
    ctx: &Context<'a>,
    r: &Request<'a>,
    mfa: &'a Mfa,
    state: &[u8],
    code: Result<&[u8], RejectReason>,
    now: Now,
) -> Step<'a> {
    // Several nodes: the challenge is taken here or unsealed from the State, then the
    // database redeems the State once for all of them before the code is looked at. An EAP
    // tunnel's challenge stays on its node (its conversation does).
    if let Some(cluster) = ctx.cluster.filter(|c| c.shared_state && r.tunnel.is_none()) {
        let why = match second_factor::take_challenge(ctx, mfa, r, state, now.unix) {
            Ok((pending, nonce, expiry)) => {
                return Step::Await(Await {
                    job: Job::RedeemState { nonce, expiry },
                    deadline: Some(r.arrived + cluster.deadline),
                    then: Continuation::Redeem(pending),
                })
            }
            Err(why) => why,
        };
        let d = Decision::reject(why, ctx.reject_message)
            .with_method(r.method_seen(Method::of(r.packet)), None);
        mfa.metrics.outcome(d.mfa_label());
        return Step::Reply(d);
    }
    let checked = second_factor::redeem(ctx, mfa, r, state, code, now.unix);
    code_checked(ctx, r, mfa, checked, now)
}

/// The database answered whether the State of `pending`'s challenge was redeemed now: its
/// code is checked then, else the follow-up is refused (a replay on some node, or no answer:
/// fail-secure).
fn state_redeemed<'a>(
    ctx: &Context<'a>,
    r: &Request<'a>,
    pending: Pending,
    result: JobResult,
    now: Now,
    buf: &'a mut PasswordBuf,
) -> Step<'a> {
    use crate::backend::sql::Redemption;
    let Some(mfa) = ctx.mfa else {
        return Step::Drop(RejectReason::MfaUnavailable);
    };
    let why = match result {
        JobResult::StateRedeemed(Redemption::Fresh) => None,
        JobResult::StateRedeemed(Redemption::Replayed) => Some(RejectReason::MfaStateReplayed),
        _ => Some(RejectReason::SqlUnavailable),
    };
    if let Some(why) = why {
        let d = Decision::reject(why, ctx.reject_message)
            .with_method(pending.method, Some(pending.source));
        mfa.metrics.outcome(d.mfa_label());
        return Step::Reply(d);
    }
    let code = r
        .packet
        .user_password(buf.bytes())
        .map_err(|_| RejectReason::MfaBadCode);
    let checked = second_factor::check_code(ctx, mfa, r, pending, code, now.unix);
    code_checked(ctx, r, mfa, checked, now)
}

/// A challenge's code checked: accept, reject, or the provider's check off the shard.
fn code_checked<'a>(
    ctx: &Context<'a>,
    r: &Request<'a>,
    mfa: &'a Mfa,
    checked: Result<Redeemed, RejectReason>,
    now: Now,
) -> Step<'a> {
    let step = match checked {
        Ok(Redeemed::Done(pending)) => after_second(ctx, r, &pending, None),
        // Checked by the HTTP provider off the shard.
        Ok(Redeemed::Remote(pending, code)) => {
            let job = Job::Check {
                user: pending.mfa_user.clone(),
                code,
                transaction_id: pending.transaction_id.clone(),
            };
            return Step::Await(Await {
                job,
                deadline: Some(now.instant + hold_limit(mfa)),
                then: Continuation::SecondFactor {
                    pending,
                    trigger: false,
                },
            });
        }
        // Who the user was is in the conversation, which this State did not open.
        Err(why) => Decision::reject(why, ctx.reject_message)
            .with_method(r.method_seen(Method::of(r.packet)), None),
    };
    mfa.metrics.outcome(step.mfa_label());
    Step::Reply(step)
}

/// After the second factor passed (or was waived with `waiver`): the policies again, with
/// the groups, source and method the primary authentication found and this request's NAS
/// attributes.
fn after_second<'a>(
    ctx: &Context<'a>,
    r: &Request<'a>,
    pending: &Pending,
    waiver: Option<Waiver>,
) -> Decision<'a> {
    let id = Identity {
        source: pending.source,
        method: pending.method,
        presented: &pending.mfa_user,
        groups: &pending.groups,
        nt_key: pending.nt_key,
        certificate: pending.certificate.as_deref(),
        granted: pending.granted.as_ref(),
    };
    match policies(ctx, r, &id) {
        (_, Ok(d)) => {
            if let Some(t) = r.tunnel {
                t.authorized.set(Some(pending.clone()));
            }
            Decision {
                outcome: waiver.map_or(Outcome::Accept, Outcome::AcceptWaived),
                ..d
            }
        }
        (matched, Err(why)) => rejected(ctx, why, matched, &id),
    }
}

/// The provider answered a held request (`None`: it did not in time, or could not be asked).
fn factor_answered<'a>(
    ctx: &Context<'a>,
    r: &Request<'a>,
    pending: Pending,
    trigger: bool,
    answer: Option<Result<PiAnswer, PiError>>,
    now: Now,
) -> Step<'a> {
    let Some(mfa) = ctx.mfa else {
        return Step::Drop(RejectReason::MfaUnavailable);
    };
    let reject = |why| {
        Decision::reject(why, ctx.reject_message).with_method(pending.method, Some(pending.source))
    };
    let not_enrolled = || {
        if mfa.config.accept_unenrolled {
            after_second(ctx, r, &pending, Some(Waiver::NotEnrolledAccepted))
        } else {
            reject(RejectReason::MfaNotEnrolled)
        }
    };
    // The provider was asked before any challenge (privacyIDEA's trigger, Duo's passcode
    // preauth) and says the user must type a code: our own State (a transaction id stays in
    // the pending challenge) and the prompt.
    let challenges_after_hold =
        trigger || (mfa.config.provider.holds() && !mfa.config.provider.is_push());
    let decision = match answer {
        Some(Ok(PiAnswer::Challenge { transaction_id, .. })) if challenges_after_hold => {
            let txid = (!transaction_id.is_empty()).then_some(transaction_id);
            let pending = Pending {
                transaction_id: txid,
                ..pending
            };
            match second_factor::open_challenge(ctx, mfa, r, pending, now.unix) {
                // Not an outcome yet (its follow-up is): not counted.
                Ok(state) => {
                    return Step::Reply(challenge(ctx, reject(RejectReason::MfaBadCode), state))
                }
                Err(why) => reject(why),
            }
        }
        Some(Ok(PiAnswer::Accept)) => after_second(ctx, r, &pending, None),
        // Duo preauth `allow`: Duo itself waives the second factor for this user.
        Some(Ok(PiAnswer::Bypass)) => after_second(ctx, r, &pending, Some(Waiver::DuoBypass)),
        Some(Ok(PiAnswer::Refused)) => reject(RejectReason::MfaDenied),
        Some(Ok(PiAnswer::Reject { .. })) if mfa.config.provider.is_push() || trigger => {
            reject(RejectReason::MfaPushDenied)
        }
        Some(Ok(PiAnswer::Reject { .. })) | Some(Ok(PiAnswer::Challenge { .. })) => {
            reject(RejectReason::MfaBadCode)
        }
        Some(Ok(PiAnswer::NoToken)) => not_enrolled(),
        // privacyIDEA answered with an error (typically ERR904: user not in the realm).
        Some(Err(PiError::Server { code, .. })) => {
            tracing::warn!(code, "privacyIDEA refused the check");
            not_enrolled()
        }
        // A push nobody answered within the wait is a denial, whatever on_unreachable says.
        None if mfa.config.provider.is_push() => reject(RejectReason::MfaPushDenied),
        other => {
            let error = match &other {
                Some(Err(e)) => e.to_string(),
                _ => "no answer in time".to_string(),
            };
            tracing::warn!(%error, "MFA provider unavailable");
            if mfa.config.accept_unreachable {
                after_second(ctx, r, &pending, Some(Waiver::UnavailableFailsafe))
            } else {
                reject(RejectReason::MfaUnavailable)
            }
        }
    };
    mfa.metrics.outcome(decision.mfa_label());
    Step::Reply(decision)
}
