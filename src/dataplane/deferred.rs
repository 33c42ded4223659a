//! Work a shard answers later: slow password hashes, directory (backend pool) results, second
//! factors (privacyIDEA checks, held pushes). Each runs as a glommio task on the shard that
//! received the request, which stays marked in progress in the duplicate cache meanwhile, so
//! retransmissions are absorbed; the task builds, sends and caches the reply itself through
//! its [`Held`] request.
//! Also here: the decision helpers these paths share with the shard's fast path (policies,
//! second-factor step).

use std::time::{Duration, Instant};

use futures_channel::oneshot::Receiver;
use tracing::{debug, info, warn};

use super::clients::Client;
use super::held::Held;
use super::mfa::{self, PasswordRead, Primary, Second};
use super::runtime::Runtime;
use crate::auth::local::LocalUser;
use crate::auth::{Method, RejectReason};
use crate::backend::mfa::state::STATE_LEN;
use crate::backend::mfa::{Mfa, Pending, PiAnswer, PiError, Provider};
use crate::backend::Outcome;
use crate::config::ShedPolicy;
use crate::metrics::DropReason;
use crate::policy::{AuthSource, NetworkPolicy, PolicyInput, ReplyAttributes, Verdict};
use crate::proto::{
    BuildError, Code, PacketBuilder, Secret, Verified, CALLING_STATION_ID, MAX_PACKET_LEN,
    REPLY_MESSAGE,
};

use super::shard::{build_reply, log_decision};

impl Held {
    /// Checks a PAP password against a slow hash on a blocking thread, then answers.
    pub(super) fn spawn_slow_pap(self) {
        glommio::spawn_local(async move {
            let Some((client, req)) = self.verified() else {
                return self.deliver(None).await;
            };
            let rt = &self.rt;
            // The password part only, read as the shard read it (a code never reaches the hash).
            let mut pw = [0u8; 128];
            let candidate = mfa::read_password(rt, &req, client, Some(Method::Pap), &mut pw)
                .0
                .map(<[u8]>::to_vec)
                .unwrap_or_default();
            let name = req.user_name().unwrap_or_default().to_vec();
            let rt2 = rt.clone();
            let ok = glommio::executor()
                .spawn_blocking(move || {
                    rt2.users
                        .get(&name)
                        .is_some_and(|u| u.password.verify(&candidate))
                })
                .await;
            let user = req.user_name().and_then(|n| rt.users.get(n));
            let (_, read) = mfa::read_password(rt, &req, client, Some(Method::Pap), &mut pw);
            let (from, started) = (self.from(), self.started);
            let mut buf = [0u8; MAX_PACKET_LEN];
            let built = match (ok, user) {
                (true, Some(u)) => {
                    let (code, answer, outcome, reason) =
                        decide_local(rt, &req, client, u, Some(Method::Pap), read);
                    log_decision(
                        &req,
                        client,
                        from,
                        Some(Method::Pap),
                        outcome,
                        reason,
                        started,
                    );
                    if let Answer::Hold(hold) = answer {
                        let asked = ask_provider(
                            rt,
                            &req,
                            client,
                            &u.name,
                            &u.groups,
                            AuthSource::Local,
                            hold,
                        );
                        return self.hold_or_give_up(asked).await;
                    }
                    build_reply(&mut buf, &req, code, |b, s| answer.apply(b, s))
                }
                _ => {
                    log_decision(
                        &req,
                        client,
                        from,
                        Some(Method::Pap),
                        "reject",
                        Some(RejectReason::BadPassword),
                        started,
                    );
                    let msg = rt.reject_reply_message.as_deref();
                    build_reply(&mut buf, &req, Code::AccessReject, |b, _| {
                        msg.map_or(Ok(()), |m| b.attr(REPLY_MESSAGE, m))
                    })
                }
            };
            if let Err(e) = &built {
                warn!(error = %e, "cannot build reply");
            }
            self.deliver(built.ok().map(|len| &buf[..len])).await;
        })
        .detach();
    }

    /// Waits for the MFA provider `asked` ([`Held::spawn_mfa_check`]), or, if it could not be
    /// asked, gives the request up (no reply, so the NAS retries).
    async fn hold_or_give_up(self, asked: Option<Asked>) {
        match asked {
            Some(asked) => self.spawn_mfa_check(asked),
            None => self.deliver(None).await,
        }
    }
}

/// What a reply carries after policies: the code and the attributes to append.
pub(super) struct Fill<'a> {
    /// The network policy that decided, if any (its MFA flag is for the next stage).
    matched: Option<&'a NetworkPolicy>,
    user: Option<&'a ReplyAttributes>,
    policy: Option<&'a ReplyAttributes>,
    message: Option<&'a [u8]>,
}

impl Fill<'_> {
    pub(super) fn apply(
        &self,
        b: &mut PacketBuilder<'_, '_>,
        s: &Secret,
    ) -> Result<(), BuildError> {
        if let Some(m) = self.message {
            b.attr(REPLY_MESSAGE, m)?;
        }
        if let Some(r) = self.user {
            r.apply(b, s)?;
        }
        if let Some(r) = self.policy {
            r.apply(b, s)?;
        }
        Ok(())
    }
}

/// A reply's content: attributes after policies, or an MFA challenge.
pub(super) enum Answer<'a> {
    Fill(Fill<'a>),
    Challenge(&'a Mfa, [u8; STATE_LEN]),
    /// Hold the request for the MFA provider ([`ask_provider`]); nothing to build yet.
    Hold(Hold),
}

/// What a held request waits for.
pub(super) enum Hold {
    /// The user's answer to a push.
    Push,
    /// The HTTP provider's verdict on the code that came with the password.
    Check(String),
}

impl Answer<'_> {
    pub(super) fn apply(
        &self,
        b: &mut PacketBuilder<'_, '_>,
        s: &Secret,
    ) -> Result<(), BuildError> {
        match self {
            Answer::Fill(f) => f.apply(b, s),
            Answer::Challenge(m, state) => mfa::fill_challenge(m, state)(b, s),
            Answer::Hold(_) => Ok(()),
        }
    }
}

/// The second-factor stage after the policies decided `code`: a policy accept that requires
/// MFA becomes an Access-Challenge (or a reject, or an accept for unenrolled users, as
/// configured). Returns the reply's code and content and the decision's outcome and reason.
fn second_factor<'a>(
    rt: &'a Runtime,
    code: Code,
    fill: Fill<'a>,
    primary: Primary<'_>,
) -> (Code, Answer<'a>, &'static str, Option<RejectReason>) {
    let reject = |r: RejectReason| {
        (
            Code::AccessReject,
            Answer::Fill(Fill {
                matched: None,
                user: None,
                policy: None,
                message: rt.reject_reply_message.as_deref(),
            }),
            "reject",
            Some(r),
        )
    };
    if code != Code::AccessAccept {
        return (
            code,
            Answer::Fill(fill),
            "reject",
            Some(RejectReason::PolicyReject),
        );
    }
    match mfa::after_primary(rt, fill.matched, primary) {
        Second::NotRequired => (code, Answer::Fill(fill), "accept", None),
        Second::CodeOk => (code, Answer::Fill(fill), "accept", None),
        Second::Check(otp) => (code, Answer::Hold(Hold::Check(otp)), "mfa_check", None),
        Second::AcceptUnenrolled => (code, Answer::Fill(fill), "accept_mfa_unenrolled", None),
        Second::Exempt(why) => (code, Answer::Fill(fill), why, None),
        Second::Challenge(state) => match rt.mfa.as_deref() {
            Some(m) => (
                Code::AccessChallenge,
                Answer::Challenge(m, state),
                "challenge",
                None,
            ),
            None => reject(RejectReason::MfaStateInvalid),
        },
        Second::Push => (code, Answer::Hold(Hold::Push), "push", None),
        // privacyIDEA's trigger: held like a push (it may be one), challenged if a code token.
        Second::Trigger => (code, Answer::Hold(Hold::Push), "trigger", None),
        Second::Reject(r) => reject(r),
    }
}

/// The MFA provider was asked about a held request: what the request then waits for.
pub(super) struct Asked {
    /// What the primary authentication found, for the policies once the answer is in.
    pub(super) pending: Pending,
    pub(super) rx: Receiver<Result<PiAnswer, PiError>>,
    /// The answer is that of privacyIDEA's triggered challenge (an Access-Challenge for a
    /// code token, the push's answer for a push token).
    pub(super) trigger: bool,
}

/// Asks the MFA provider about a request whose primary authentication passed: the user's
/// push answer (one push per (client, user) however many copies arrive), or the verdict on a
/// code that came with the password; [`Held::spawn_mfa_check`] then waits for the answer.
/// `None` if the provider could not be asked.
pub(super) fn ask_provider(
    rt: &Runtime,
    req: &Verified<'_>,
    client: &Client,
    mfa_user: &str,
    groups: &[String],
    source: AuthSource,
    hold: Hold,
) -> Option<Asked> {
    let store = rt.mfa.as_ref()?;
    // The device: a second device logging in as the same user gets its own push.
    let station = req.attr(CALLING_STATION_ID).unwrap_or_default();
    let client = client.name.as_str();
    // privacyIDEA with a service account: the trigger (and a push's wait) is held the same way.
    let trigger = matches!(hold, Hold::Push) && store.triggers();
    let rx = match hold {
        Hold::Push if trigger => store.submit_trigger(client, mfa_user, station),
        Hold::Push => store.submit_push(client, mfa_user, station),
        Hold::Check(code) => store.submit_check(mfa_user.to_string(), code, None),
    }?;
    let pending = Pending {
        mfa_user: mfa_user.to_string(),
        groups: groups.to_vec(),
        source,
        expiry: 0,
        transaction_id: None,
    };
    Some(Asked {
        pending,
        rx,
        trigger,
    })
}

/// A local user's password passed: the policies, then the second-factor stage.
pub(super) fn decide_local<'a>(
    rt: &'a Runtime,
    req: &Verified<'_>,
    client: &Client,
    user: &'a LocalUser,
    method: Option<Method>,
    read: PasswordRead<'_>,
) -> (Code, Answer<'a>, &'static str, Option<RejectReason>) {
    let input = || {
        PolicyInput::from_request(
            req,
            &client.name,
            client.group.as_deref(),
            &user.groups,
            method,
            AuthSource::Local,
        )
    };
    let (code, fill) = decide_policy(rt, input, Some(&user.reply));
    second_factor(
        rt,
        code,
        fill,
        Primary {
            client: &client.name,
            user: req.user_name().unwrap_or_default(),
            mfa_user: &user.name,
            groups: &user.groups,
            source: AuthSource::Local,
            method,
            read,
        },
    )
}

/// An MFA reject: the code, the reject's attributes, the reason, no policy.
pub(super) fn mfa_reject(rt: &Runtime, r: RejectReason) -> (Code, Fill<'_>, &'static str, String) {
    let fill = Fill {
        matched: None,
        user: None,
        policy: None,
        message: rt.reject_reply_message.as_deref(),
    };
    (Code::AccessReject, fill, r.label(), String::new())
}

/// After the second factor passed (or was waived with `why`): the policies again, with the
/// groups and source the primary authentication found and this request's NAS attributes.
pub(super) fn decide_after_second<'a>(
    rt: &'a Runtime,
    req: &Verified<'_>,
    client: &Client,
    pending: &Pending,
    why: &'static str,
) -> (Code, Fill<'a>, &'static str, String) {
    let input = || {
        PolicyInput::from_request(
            req,
            &client.name,
            client.group.as_deref(),
            &pending.groups,
            Some(Method::Pap),
            pending.source,
        )
    };
    let user_reply = req
        .user_name()
        .and_then(|n| rt.users.get(n))
        .filter(|_| pending.source == AuthSource::Local)
        .map(|u| &u.reply);
    let (code, fill) = decide_policy(rt, input, user_reply);
    let policy = fill.matched.map_or(String::new(), |p| p.name.clone());
    if code == Code::AccessAccept {
        (code, fill, why, policy)
    } else {
        let (c, f, r, _) = mfa_reject(rt, RejectReason::PolicyReject);
        (c, f, r, policy)
    }
}

impl Held {
    /// Awaits the MFA provider's answer to what it was `asked`, then answers like the local
    /// path would.
    pub(super) fn spawn_mfa_check(self, asked: Asked) {
        let Asked {
            pending,
            rx,
            trigger,
        } = asked;
        glommio::spawn_local(async move {
            let limit = match self
                .rt
                .mfa
                .as_deref()
                .map(|m| (&m.config.provider, m.push_wait()))
            {
                Some((_, Some(wait))) => wait,
                Some((Provider::PrivacyIdea(c), _)) => c.timeout + Duration::from_secs(1),
                _ => Duration::from_secs(5),
            };
            // None: no answer in time, or the store stopped.
            let answer = glommio::timer::timeout(limit, async { Ok(rx.await.ok()) })
                .await
                .ok()
                .flatten();
            // Everything after the answer (the verified request, the reply, the send) is a
            // boxed future made only now: a task's size is that of its largest state, and the
            // one that waits (10k-100k of them with pushes pending) should stay small.
            Box::pin(self.answer_mfa(answer, pending, trigger)).await;
        })
        .detach();
    }

    /// The second half of [`Held::spawn_mfa_check`]: decides and answers once the provider
    /// answered (`None`: it did not in time, or the store stopped).
    async fn answer_mfa(
        self,
        answer: Option<Result<PiAnswer, PiError>>,
        pending: Pending,
        trigger: bool,
    ) {
        self.shard_free().await;
        let rt = &self.rt;
        let decided = self
            .verified()
            .and_then(|(client, req)| Some((client, req, rt.mfa.as_deref()?)));
        let Some((client, req, store)) = decided else {
            return self.deliver(None).await;
        };
        let not_enrolled = || {
            if store.config.accept_unenrolled {
                decide_after_second(rt, &req, client, &pending, "mfa_not_enrolled_accepted")
            } else {
                mfa_reject(rt, RejectReason::MfaNotEnrolled)
            }
        };
        // The provider was asked before any challenge (privacyIDEA's trigger, Duo's
        // passcode preauth) and says the user must type a code: our own State (a
        // transaction id stays in the pending challenge) and the prompt.
        let challenges_after_hold =
            trigger || (store.config.provider.holds() && !store.config.provider.is_push());
        let mut challenge = None;
        let (code, fill, reason, policy) = match answer {
            Some(Ok(PiAnswer::Challenge { transaction_id, .. })) if challenges_after_hold => {
                match store.issue(
                    &client.name,
                    req.user_name().unwrap_or_default(),
                    &pending.mfa_user,
                    &pending.groups,
                    pending.source,
                    (!transaction_id.is_empty()).then_some(transaction_id),
                    mfa::now_secs(),
                ) {
                    Ok(state) => {
                        challenge = Some(state);
                        let (_, f, _, _) = mfa_reject(rt, RejectReason::MfaBadCode);
                        (Code::AccessChallenge, f, "challenge", String::new())
                    }
                    Err(r) => mfa_reject(rt, r),
                }
            }
            Some(Ok(PiAnswer::Accept)) => decide_after_second(rt, &req, client, &pending, ""),
            // Duo preauth `allow`: Duo itself waives the second factor for this user.
            Some(Ok(PiAnswer::Bypass)) => {
                decide_after_second(rt, &req, client, &pending, "mfa_duo_bypass")
            }
            Some(Ok(PiAnswer::Refused)) => mfa_reject(rt, RejectReason::MfaDenied),
            Some(Ok(PiAnswer::Reject { .. })) if store.config.provider.is_push() || trigger => {
                mfa_reject(rt, RejectReason::MfaPushDenied)
            }
            Some(Ok(PiAnswer::Reject { .. })) | Some(Ok(PiAnswer::Challenge { .. })) => {
                mfa_reject(rt, RejectReason::MfaBadCode)
            }
            Some(Ok(PiAnswer::NoToken)) => not_enrolled(),
            // privacyIDEA answered with an error (typically ERR904: user not in the realm).
            Some(Err(PiError::Server { code, .. })) => {
                warn!(code, "privacyIDEA refused the check");
                not_enrolled()
            }
            // A push nobody answered within the wait is a denial, whatever on_unreachable
            // says.
            None if store.config.provider.is_push() => mfa_reject(rt, RejectReason::MfaPushDenied),
            other => {
                let error = match &other {
                    Some(Err(e)) => e.to_string(),
                    _ => "no answer in time".to_string(),
                };
                warn!(%error, "MFA provider unavailable");
                if store.config.accept_unreachable {
                    decide_after_second(rt, &req, client, &pending, "mfa_unavailable_failsafe")
                } else {
                    mfa_reject(rt, RejectReason::MfaUnavailable)
                }
            }
        };
        let outcome = match code {
            Code::AccessAccept => "accept",
            Code::AccessChallenge => "challenge",
            _ => "reject",
        };
        // A challenge is not an outcome yet (as on the fast path): its follow-up is.
        if challenge.is_none() {
            store
                .metrics
                .outcome(if reason.is_empty() { outcome } else { reason });
        }
        mfa::log(
            &req,
            client,
            self.from(),
            outcome,
            reason,
            &policy,
            self.started,
        );
        // On the heap, allocated only now: a held request's task stays small while it waits.
        let mut buf = vec![0u8; MAX_PACKET_LEN];
        let built = match &challenge {
            Some(state) => build_reply(&mut buf, &req, code, |b, s| {
                mfa::fill_challenge(store, state)(b, s)
            }),
            None => build_reply(&mut buf, &req, code, |b, s| fill.apply(b, s)),
        };
        if let Err(e) = &built {
            warn!(error = %e, "cannot build reply");
        }
        self.deliver(built.ok().map(|len| &buf[..len])).await;
    }

    /// Awaits the backend pool's answer for a PAP request to the directory, runs the
    /// policies, then answers.
    pub(super) fn spawn_backend(self, deadline: Instant, rx: Receiver<Outcome>) {
        glommio::spawn_local(async move {
            // The pool answers every job by its deadline once it runs it; a job still queued
            // behind a stuck directory is answered here when its deadline passes. A dropped
            // sender means the pool stopped.
            let left = deadline.saturating_duration_since(Instant::now());
            let outcome = glommio::timer::timeout(left, async {
                Ok(rx.await.unwrap_or(Outcome::Unavailable))
            })
            .await
            .unwrap_or(Outcome::Unavailable);
            // A cached answer is ready at once.
            self.shard_free().await;
            let Some((client, req)) = self.verified() else {
                return self.deliver(None).await;
            };
            let (rt, from, started) = (&self.rt, self.from(), self.started);
            let method = Some(Method::Pap);
            let mut buf = [0u8; MAX_PACKET_LEN];
            let reject = |buf: &mut [u8], reason: RejectReason, msg: Option<&[u8]>| {
                log_decision(&req, client, from, method, "reject", Some(reason), started);
                let fill = Fill {
                    matched: None,
                    user: None,
                    policy: None,
                    message: msg,
                };
                build_reply(buf, &req, Code::AccessReject, |b, s| fill.apply(b, s))
            };
            let built = match &outcome {
                Outcome::Accept(id) => {
                    let input = || {
                        PolicyInput::from_request(
                            &req,
                            &client.name,
                            client.group.as_deref(),
                            &id.groups,
                            method,
                            AuthSource::Ldap,
                        )
                    };
                    let (code, fill) = decide_policy(rt, input, None);
                    // The code that came with the password, if the shard split one off.
                    let mut pw = [0u8; 128];
                    let (_, read) = mfa::read_password(rt, &req, client, method, &mut pw);
                    let policy_name = fill.matched.map_or("", |p| p.name.as_str());
                    let mfa_required = fill.matched.is_some_and(|p| p.mfa);
                    let (code, answer, outcome, reason) = second_factor(
                        rt,
                        code,
                        fill,
                        Primary {
                            client: &client.name,
                            user: req.user_name().unwrap_or_default(),
                            mfa_user: &id.presented,
                            groups: &id.groups,
                            source: AuthSource::Ldap,
                            method,
                            read,
                        },
                    );
                    if code != Code::AccessReject {
                        info!(
                            target: "radshard::auth",
                            user = %String::from_utf8_lossy(req.user_name().unwrap_or_default()),
                            presented = %id.presented,
                            client = %client.name,
                            nas = %from,
                            method = "pap",
                            source = "ldap",
                            outcome,
                            policy = policy_name,
                            mfa_required,
                            latency_us = started.elapsed().as_micros() as u64,
                            "decision"
                        );
                        if let Answer::Hold(hold) = answer {
                            let asked = ask_provider(
                                rt,
                                &req,
                                client,
                                &id.presented,
                                &id.groups,
                                AuthSource::Ldap,
                                hold,
                            );
                            return self.hold_or_give_up(asked).await;
                        }
                        build_reply(&mut buf, &req, code, |b, s| answer.apply(b, s))
                    } else {
                        reject(
                            &mut buf,
                            reason.unwrap_or(RejectReason::PolicyReject),
                            rt.reject_reply_message.as_deref(),
                        )
                    }
                }
                Outcome::Reject(reason) => {
                    let msg = rt
                        .ldap_reject_messages
                        .get(reason.label())
                        .map(String::as_bytes)
                        .or(rt.reject_reply_message.as_deref());
                    reject(&mut buf, *reason, msg)
                }
                Outcome::Unavailable | Outcome::Shed => {
                    let (policy, reason, drop_reason) = match outcome {
                        Outcome::Shed => (
                            rt.backend.as_ref().map(|b| b.config.on_overload),
                            RejectReason::Overloaded,
                            DropReason::BackendOverloaded,
                        ),
                        _ => (
                            rt.backend.as_ref().map(|b| b.config.on_unavailable),
                            RejectReason::DirectoryUnavailable,
                            DropReason::BackendUnavailable,
                        ),
                    };
                    if policy == Some(ShedPolicy::Reject) {
                        reject(&mut buf, reason, rt.reject_reply_message.as_deref())
                    } else {
                        log_decision(&req, client, from, method, "drop", Some(reason), started);
                        {
                            let s = self.me.borrow();
                            s.metrics.count_drop(drop_reason);
                            if let Some(c) = s.client_metrics.get(self.client_index()) {
                                c.dropped.inc();
                            }
                        }
                        return self.deliver(None).await;
                    }
                }
            };
            if let Err(e) = &built {
                warn!(error = %e, "cannot build reply");
            }
            self.deliver(built.ok().map(|len| &buf[..len])).await;
        })
        .detach();
    }
}

/// Runs the network policies for an authenticated user.
fn decide_policy<'a, 'i>(
    rt: &'a Runtime,
    input: impl FnOnce() -> PolicyInput<'i>,
    user_reply: Option<&'a ReplyAttributes>,
) -> (Code, Fill<'a>) {
    // Without policies (the common local-only setup) the request is not even looked at.
    let verdict = if rt.policies.is_empty() {
        Verdict::Accept(None)
    } else {
        rt.policies.decide(&input())
    };
    match verdict {
        Verdict::Accept(p) => {
            if let Some(p) = p {
                debug!(policy = %p.name, mfa = p.mfa, "network policy matched");
            }
            (
                Code::AccessAccept,
                Fill {
                    matched: p,
                    user: user_reply,
                    policy: p.map(|p| &p.reply),
                    message: None,
                },
            )
        }
        Verdict::Reject(p) => {
            debug!(
                policy = p.map_or("(none matched)", |p| p.name.as_str()),
                "network policy rejects"
            );
            (
                Code::AccessReject,
                Fill {
                    matched: p,
                    user: None,
                    policy: None,
                    message: rt.reject_reply_message.as_deref(),
                },
            )
        }
    }
}
