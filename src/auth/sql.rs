//! The SQL user store as a primary source: the rows are read off the shard (`Job::Sql`),
//! then decided here, on the shard, by the sans-IO rlm_sql evaluation
//! ([`crate::backend::sql::eval`], [`crate::backend::sql::authorize`]) over this request:
//! check items against its attributes, the known-good password against its credential
//! (PAP, CHAP with a Cleartext-Password, MS-CHAP with an NT-Password or a
//! Cleartext-Password); a Crypt-Password is checked on a blocking thread. A user the
//! database does not know passes to the next source.

use std::sync::Arc;

use tracing::warn;

use super::context::{Context, Now, Request};
use super::credential::{Credential, Extracted};
use super::mschap::{NtHash, NtKey};
use super::pipeline::{accepted, primary_after, reject, Await, Continuation, Job, Step};
use super::sources::{Source, SourceStep};
use super::{Identity, Method, RejectReason, SourceGrant};
use crate::backend::sql::authorize::{authorize, Decided, Passwords};
use crate::backend::sql::eval::{evaluate, RequestView, UserRows};
use crate::backend::sql::known_good::{nt_hash_of, KnownGood};
use crate::backend::sql::Lookup;
use crate::backend::ShedPolicy;
use crate::cfg::Located;
use crate::dict::AttrKey;
use crate::policy::ReplyAttributes;
use crate::proto::{chap_verify, USER_NAME, USER_PASSWORD, VENDOR_SPECIFIC};
use crate::vocab::AuthSource;

/// The source's step: the user's rows, decided at once when the store has them cached, else
/// read off the shard.
pub(super) fn source<'a>(
    ctx: &Context<'a>,
    r: &Request<'a>,
    cred: &Extracted<'a>,
    now: Now,
) -> SourceStep<'a> {
    let Some(sql) = ctx.sql else {
        return SourceStep::Skip(RejectReason::UnknownUser);
    };
    // rlm_sql looks up the User-Name as sent; one that is not text or is empty names no
    // row (and must not reach a query).
    match std::str::from_utf8(r.user_name()) {
        Ok(user) if !user.is_empty() => match sql.store.cached(user) {
            Some(rows) => SourceStep::Decided(decide(ctx, r, &rows, cred, now, None)),
            None => SourceStep::Await(Job::Sql { user }),
        },
        _ => SourceStep::Skip(RejectReason::UnknownUser),
    }
}

/// The store answered.
pub(super) fn answered<'a>(
    ctx: &Context<'a>,
    r: &Request<'a>,
    lookup: Lookup,
    cred: &Extracted<'a>,
    now: Now,
) -> Step<'a> {
    let Some(sql) = ctx.sql else {
        return Step::Drop(RejectReason::SqlUnavailable);
    };
    let (policy, why) = match lookup {
        Lookup::Rows(rows) => return decide(ctx, r, &rows, cred, now, None),
        Lookup::Shed => (sql.on_overload, RejectReason::Overloaded),
        Lookup::Unavailable => (sql.on_unavailable, RejectReason::SqlUnavailable),
    };
    match policy {
        ShedPolicy::Reject => Step::Reply(
            super::Decision::reject(why, ctx.reject_message)
                .with_method(cred.credential.method(), Some(AuthSource::Sql)),
        ),
        ShedPolicy::Drop => Step::Drop(why),
    }
}

/// The user's rows decided for this request. `hash_ok`: the answer of the slow check of a
/// Crypt-Password, when it ran.
pub(super) fn decide<'a>(
    ctx: &Context<'a>,
    r: &Request<'a>,
    rows: &Arc<UserRows>,
    cred: &Extracted<'a>,
    now: Now,
    hash_ok: Option<bool>,
) -> Step<'a> {
    let view = request_view(r, cred);
    let evaluated = match evaluate(rows, &view, ctx.dict, now.unix) {
        Ok(e) => e,
        Err(e) => return invalid(ctx, r, cred, &e.to_string()),
    };
    if !evaluated.found {
        return primary_after(ctx, r, cred, now, Source::Sql);
    }
    let a = authorize(evaluated, now.unix);
    let verified = match a.decided {
        Decided::Accept => Ok(None),
        Decided::Reject(why) => Err(why),
        Decided::Check(_) if hash_ok == Some(true) => Ok(None),
        Decided::Check(_) if hash_ok == Some(false) => Err(RejectReason::BadPassword),
        Decided::Check(p) => match check(&p, r, cred) {
            Checked::Done(v) => v,
            Checked::Slow(known, password) => {
                return Step::Await(Await {
                    job: Job::SqlHash { known, password },
                    deadline: None,
                    then: Continuation::SqlHash(rows.clone()),
                })
            }
        },
    };
    let nt_key = match verified {
        Ok(k) => k,
        Err(why) => return reject_sql(ctx, why, cred),
    };
    let reply = match reply_attributes(&a.reply, ctx.dict) {
        Ok(reply) => reply,
        Err(e) => return invalid(ctx, r, cred, &e),
    };
    let grant = Arc::new(SourceGrant {
        reply,
        simultaneous_use: a.simultaneous_use,
        pool_name: a.pool_name.clone(),
    });
    let id = Identity {
        source: AuthSource::Sql,
        method: cred.credential.method(),
        presented: std::str::from_utf8(r.user_name()).unwrap_or_default(),
        groups: &a.groups,
        nt_key,
        certificate: None,
        granted: Some(&grant),
    };
    accepted(ctx, r, &id, cred.read, now)
}

fn reject_sql<'a>(ctx: &Context<'a>, why: RejectReason, cred: &Extracted<'_>) -> Step<'a> {
    match reject(ctx, why, cred) {
        Step::Reply(d) => {
            Step::Reply(d.with_method(cred.credential.method(), Some(AuthSource::Sql)))
        }
        other => other,
    }
}

/// A row that cannot be used fails the lookup (as FreeRADIUS fails its query): rejected,
/// and said in the log (the attribute, never the value).
fn invalid<'a>(ctx: &Context<'a>, r: &Request<'_>, cred: &Extracted<'_>, why: &str) -> Step<'a> {
    warn!(target: "radshard::auth", user = %String::from_utf8_lossy(r.user_name()), error = why, "sql: the user's rows cannot be used");
    reject_sql(ctx, RejectReason::SqlInvalidRow, cred)
}

/// The request's attributes as check items see them: standard ones by type, vendor ones
/// (RFC 2865 layout) by vendor and type; User-Name as the login being decided (an EAP
/// tunnel's inner identity); User-Password revealed, or absent.
fn request_view<'r>(r: &Request<'r>, cred: &Extracted<'r>) -> RequestView<'r> {
    let mut attrs = Vec::new();
    if let Some(user) = r.user {
        attrs.push((AttrKey::standard(u32::from(USER_NAME)), user));
    }
    if let Credential::Pap(Ok(pw)) = cred.credential {
        attrs.push((AttrKey::standard(u32::from(USER_PASSWORD)), pw));
    }
    for a in r.packet.attributes() {
        match a.typ {
            USER_NAME | USER_PASSWORD => {}
            VENDOR_SPECIFIC => {
                if let Some(v) = crate::proto::VendorAttribute::from_value(a.value) {
                    for s in v.sub_attributes() {
                        attrs.push((AttrKey::new(v.vendor, u32::from(s.vtype)), s.value));
                    }
                }
            }
            t => attrs.push((AttrKey::standard(u32::from(t)), a.value)),
        }
    }
    RequestView { attrs }
}

/// The reply items encoded once for this accept (names and values were checked when the
/// rows were read; encryption of Tunnel-Password and MPPE keys is the builder's).
fn reply_attributes(
    reply: &[(String, String)],
    dict: &crate::dict::Dictionary,
) -> Result<ReplyAttributes, String> {
    let items: Vec<Located<(String, String)>> = reply
        .iter()
        .map(|(n, v)| Located {
            value: (n.clone(), v.clone()),
            file: "sql:radreply".into(),
            line: 0,
        })
        .collect();
    ReplyAttributes::compile(&items, dict).map_err(|e| e.reason)
}

/// A password check's answer: done (an MS-CHAP login's NT key), or a slow hash to check off
/// the shard.
enum Checked<'a> {
    Done(Result<Option<NtKey>, RejectReason>),
    Slow(KnownGood, &'a [u8]),
}

/// The credential against the known-good password its method takes (and the method
/// `Auth-Type` names, if it names one).
fn check<'a>(p: &Passwords, r: &Request<'_>, cred: &Extracted<'a>) -> Checked<'a> {
    let method = cred.credential.method();
    let wanted = |m: Method| match p.method {
        None => true,
        Some(Method::MsChapV2) => m.is_ms_chap(),
        Some(n) => n == m,
    };
    let done = |v| Checked::Done(v);
    match cred.credential {
        _ if method.is_some_and(|m| !wanted(m)) => done(Err(RejectReason::UnsupportedAuthType)),
        Credential::Pap(Err(why)) => done(Err(why)),
        Credential::Pap(Ok([])) => done(Err(RejectReason::EmptyPassword)),
        Credential::Pap(Ok(pw)) => match &p.pap {
            None => done(Err(RejectReason::NoPassword)),
            Some(k) if k.is_slow() => Checked::Slow(k.clone(), pw),
            Some(k) => done(match k.verify(pw) {
                Ok(true) => Ok(None),
                Ok(false) => Err(RejectReason::BadPassword),
                Err(_) => Err(RejectReason::UnsupportedHash),
            }),
        },
        Credential::Chap(chap) => done(
            match (p.cleartext.as_ref().and_then(KnownGood::cleartext), chap) {
                (None, _) => Err(RejectReason::ChapNeedsCleartext),
                (Some(_), None) => Err(RejectReason::MalformedPassword),
                (Some(pw), Some((ident, response, challenge))) => {
                    chap_verify(ident, pw, challenge, response)
                        .then_some(None)
                        .ok_or(RejectReason::BadPassword)
                }
            },
        ),
        Credential::MsChap(exchange) => done(ms_chap(p, r.user_name(), exchange)),
        Credential::None => done(Err(RejectReason::NoSupportedCredentials)),
    }
}

/// MS-CHAP against the NT-Password (or the NT hash of the Cleartext-Password).
fn ms_chap(
    p: &Passwords,
    name: &[u8],
    exchange: Result<super::mschap::MsChap<'_>, RejectReason>,
) -> Result<Option<NtKey>, RejectReason> {
    let exchange = exchange?;
    let hash = match &p.nt {
        None => return Err(RejectReason::MsChapNeedsNtHash),
        Some(KnownGood::Nt(h)) => NtHash(nt_hash_of(h).map_err(|_| RejectReason::UnsupportedHash)?),
        Some(k) => k
            .cleartext()
            .and_then(NtHash::of_password)
            .ok_or(RejectReason::MsChapNeedsNtHash)?,
    };
    if exchange.verify(name, &hash) {
        Ok(Some(hash.nt_key()))
    } else {
        Err(RejectReason::BadPassword)
    }
}
