//! Primary sources, asked in order: the NAS itself (for clients a policy trusts with the
//! primary authentication), local users, the SQL store, the directory. Each says `Skip` (not my user, or a
//! credential I cannot verify), `Done` (an identity, or why not) or `Await` (slow work).

use super::context::{Context, Now, Request};
use super::credential::{Credential, Extracted};
use super::local::LocalUser;
use super::mschap::{MsChap, NtKey};
use super::pipeline::{Job, Step};
use super::{Identity, Method, RejectReason};
use crate::backend::{NtResponse, Proof};
use crate::proto::chap_verify;
use crate::vocab::{AuthSource, MfaMode};

/// A source's answer.
// As `Step`, which one variant carries: returned and matched once per source, never boxed
// (a box would be an allocation per request).
#[allow(clippy::large_enum_variant)]
pub enum SourceStep<'a> {
    /// Not this source's user (the reason is kept for a reject if no source knows the user).
    Skip(RejectReason),
    Done(Result<Identity<'a>, RejectReason>),
    /// The source needs slow work; the pipeline resumes in `Continuation::Source(source)`.
    Await(Job<'a>),
    /// The source's slow work was already done (the SQL store's cached rows): its next step,
    /// as the pipeline would have taken it on resuming.
    Decided(Step<'a>),
}

/// The sources, in the order they are asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A NAS that did the primary authentication itself (`[[policies]] primary = "nas"`): the
    /// request carries only the second factor.
    Nas,
    Local,
    /// The SQL user store (`[sql]`): FreeRADIUS's tables, read off the shard.
    Sql,
    Directory,
}

impl Source {
    pub const CHAIN: [Source; 4] = [Source::Nas, Source::Local, Source::Sql, Source::Directory];

    pub fn authenticate<'a>(
        self,
        ctx: &Context<'a>,
        r: &Request<'a>,
        cred: &Extracted<'a>,
        now: Now,
    ) -> SourceStep<'a> {
        match self {
            Source::Nas => nas(r, cred),
            Source::Local => local(ctx, r, cred),
            Source::Sql => super::sql::source(ctx, r, cred, now),
            Source::Directory => directory(ctx, r, cred),
        }
    }
}

fn nas<'a>(r: &Request<'a>, cred: &Extracted<'a>) -> SourceStep<'a> {
    // Only a policy with `primary = "nas"` reads a request in this mode, and check-config
    // allows one only for the clients it names.
    if cred.mode != MfaMode::CodeOnly {
        return SourceStep::Skip(RejectReason::UnknownUser);
    }
    let Ok(user) = std::str::from_utf8(r.user_name()) else {
        return SourceStep::Done(Err(RejectReason::NoUserName));
    };
    if user.is_empty() {
        return SourceStep::Done(Err(RejectReason::NoUserName));
    }
    SourceStep::Done(Ok(Identity {
        source: AuthSource::Nas,
        method: cred.credential.method(),
        presented: user,
        groups: &[],
        nt_key: None,
        certificate: None,
        granted: None,
    }))
}

fn local_identity<'a>(
    user: &'a LocalUser,
    method: Option<Method>,
    nt_key: Option<NtKey>,
) -> Identity<'a> {
    Identity {
        source: AuthSource::Local,
        method,
        presented: &user.name,
        groups: &user.groups,
        nt_key,
        certificate: None,
        granted: None,
    }
}

/// Local users: cleartext verifies PAP, CHAP and MS-CHAP; an NT hash PAP and MS-CHAP; a slow
/// hash verifies PAP off the shard.
fn local<'a>(ctx: &Context<'a>, r: &Request<'a>, cred: &Extracted<'a>) -> SourceStep<'a> {
    let Some(name) = r.user else {
        return SourceStep::Done(Err(RejectReason::NoUserName));
    };
    let Some(user) = ctx.users.get(name) else {
        return SourceStep::Skip(if ctx.users.is_mfa_only(name) {
            RejectReason::NoPassword
        } else {
            RejectReason::UnknownUser
        });
    };
    let method = cred.credential.method();
    if let Credential::MsChap(exchange) = cred.credential {
        return SourceStep::Done(
            local_ms_chap(user, name, exchange).map(|key| local_identity(user, method, Some(key))),
        );
    }
    let verified = match cred.credential {
        Credential::Pap(Err(r)) => Err(r),
        Credential::Pap(Ok(pw)) if user.password.is_slow() => {
            return SourceStep::Await(Job::VerifyHash {
                user: name,
                password: pw,
            })
        }
        Credential::Pap(Ok(pw)) => user
            .password
            .verify(pw)
            .then_some(())
            .ok_or(RejectReason::BadPassword),
        Credential::Chap(chap) => match (user.password.cleartext(), chap) {
            (None, _) => Err(RejectReason::ChapNeedsCleartext),
            (Some(_), None) => Err(RejectReason::MalformedPassword),
            (Some(pw), Some((ident, response, challenge))) => {
                chap_verify(ident, pw, challenge, response)
                    .then_some(())
                    .ok_or(RejectReason::BadPassword)
            }
        },
        Credential::MsChap(_) | Credential::None => Err(RejectReason::NoSupportedCredentials),
    };
    SourceStep::Done(verified.map(|()| local_identity(user, method, None)))
}

/// An MS-CHAP exchange against a local user's cleartext or NT hash: the NT key, or why not.
fn local_ms_chap(
    user: &LocalUser,
    name: &[u8],
    exchange: Result<MsChap<'_>, RejectReason>,
) -> Result<NtKey, RejectReason> {
    let exchange = exchange?;
    let hash = user
        .password
        .nt_hash()
        .ok_or(RejectReason::MsChapNeedsNtHash)?;
    if exchange.verify(name, &hash) {
        Ok(hash.nt_key())
    } else {
        Err(RejectReason::BadPassword)
    }
}

/// A local user whose slow hash verified.
pub fn local_verified<'a>(ctx: &Context<'a>, r: &Request<'a>) -> Option<Identity<'a>> {
    let user = ctx.users.get(r.user?)?;
    Some(local_identity(user, Some(Method::Pap), None))
}

/// The directory (LDAP / AD, winbind): PAP by a bind, MS-CHAP by winbind or the directory's
/// NT hash, off the shard.
fn directory<'a>(ctx: &Context<'a>, r: &Request<'a>, cred: &Extracted<'a>) -> SourceStep<'a> {
    let Some(dir) = ctx.directory else {
        return SourceStep::Skip(RejectReason::UnknownUser);
    };
    let Ok(user) = std::str::from_utf8(r.user_name()) else {
        return SourceStep::Done(Err(RejectReason::MalformedPassword));
    };
    let proof = match cred.credential {
        Credential::MsChap(_) if user.is_empty() => {
            return SourceStep::Done(Err(RejectReason::NoUserName))
        }
        Credential::Pap(Ok(password)) if dir.passwords => Proof::Password(password),
        Credential::MsChap(Ok(exchange)) if dir.ms_chap => Proof::NtResponse(NtResponse {
            challenge: exchange.challenge(r.user_name()),
            response: *exchange.nt_response(),
            v2: exchange.method() == Method::MsChapV2,
        }),
        Credential::Pap(Err(why)) | Credential::MsChap(Err(why)) => {
            return SourceStep::Done(Err(why))
        }
        _ => return SourceStep::Skip(RejectReason::UnknownUser),
    };
    SourceStep::Await(Job::Directory { user, proof })
}
