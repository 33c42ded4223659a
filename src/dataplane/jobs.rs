//! Hands the pipeline's jobs to the workers that do them, never on the shard: slow hashes to
//! glommio's blocking pool, directory binds and SQL lookups to the backend pool, second factors to the MFA
//! provider's runtime. Each becomes one future that ends with the job's result, or with its
//! "no answer" at the job's deadline.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use futures_channel::oneshot::Receiver;

use super::inflight::Waiting;
use super::runtime::Runtime;
use crate::auth::{Job, JobResult};
use crate::backend::{AuthRequest, Outcome, Submitted};

/// A copy of a password for a blocking thread, wiped when the check is done.
struct Wiped(Vec<u8>);

impl Drop for Wiped {
    fn drop(&mut self) {
        crate::proto::wipe(&mut self.0);
    }
}

/// Submits `job` (for a request from `client`) and returns what to await. Submission happens
/// now, while the job's borrowed request is alive; only owned state goes into the future.
pub(super) fn submit(
    rt: &Arc<Runtime>,
    client: &str,
    job: Job<'_>,
    deadline: Option<Instant>,
) -> Waiting {
    let no_answer = JobResult::timed_out(&job);
    match job {
        Job::VerifyHash { user, password } => {
            let (rt, user, password) = (rt.clone(), user.to_vec(), Wiped(password.to_vec()));
            Box::pin(async move {
                let ok = glommio::executor()
                    .spawn_blocking(move || {
                        rt.users
                            .get(&user)
                            .is_some_and(|u| u.password.verify(&password.0))
                    })
                    .await;
                JobResult::Hash(ok)
            })
        }
        Job::SqlHash { known, password } => {
            let password = Wiped(password.to_vec());
            Box::pin(async move {
                let ok = glommio::executor()
                    .spawn_blocking(move || known.verify(&password.0).unwrap_or(false))
                    .await;
                JobResult::Hash(ok)
            })
        }
        Job::Sql { user } => {
            use crate::backend::sql::Lookup;
            let Some(store) = rt.sql.as_ref() else {
                return ready(no_answer);
            };
            // The store answers every lookup by its deadline; the shard's own wait is the
            // backstop.
            let deadline = deadline.unwrap_or_else(Instant::now);
            let rx = store.submit(user, deadline);
            until(Some(deadline), no_answer, async move {
                // A dropped sender means the store's runtime stopped.
                JobResult::Sql(rx.await.unwrap_or(Lookup::Unavailable))
            })
        }
        Job::RedeemState { nonce, expiry } => {
            use crate::backend::sql::Redemption;
            let Some(store) = rt.sql.as_ref() else {
                return ready(no_answer);
            };
            let deadline = deadline.unwrap_or_else(Instant::now);
            let rx = store.redeem_state(nonce, expiry, deadline);
            until(Some(deadline), no_answer, async move {
                JobResult::StateRedeemed(rx.await.unwrap_or(Redemption::Unavailable))
            })
        }
        Job::Lease(req) => {
            use crate::backend::sql::ippool::Lease;
            let Some((store, pool)) = rt
                .sql
                .as_ref()
                .and_then(|s| Some((s, s.config().ip_pool.as_ref()?)))
            else {
                return ready(no_answer);
            };
            let deadline = deadline.unwrap_or_else(Instant::now);
            let rx = store.lease(pool, req, deadline);
            until(Some(deadline), no_answer, async move {
                JobResult::Leased(rx.await.unwrap_or(Lease::Unavailable))
            })
        }
        Job::CountSessions { user } => {
            let Some(store) = rt.sql.as_ref() else {
                return ready(no_answer);
            };
            let deadline = deadline.unwrap_or_else(Instant::now);
            let rx = store.count_sessions(user, deadline);
            until(Some(deadline), no_answer, async move {
                JobResult::SessionsOpen(rx.await.ok().flatten())
            })
        }
        Job::Directory { user, proof } => {
            let Some(backend) = rt.backend.as_ref() else {
                return ready(no_answer);
            };
            let submitted = backend.submit(AuthRequest {
                client,
                user,
                proof,
                // The pool answers every job by its deadline once it runs it; a job still
                // queued behind a stuck directory is answered here when it passes.
                deadline: deadline.unwrap_or_else(|| Instant::now() + backend.config.deadline),
            });
            match submitted {
                Submitted::Pending(rx) => until(deadline, no_answer, async move {
                    // A dropped sender means the pool stopped.
                    JobResult::Directory(rx.await.unwrap_or(Outcome::Unavailable))
                }),
                Submitted::Shed => ready(JobResult::Directory(Outcome::Shed)),
            }
        }
        Job::Push {
            client,
            user,
            station,
        } => provider(
            rt.mfa
                .as_ref()
                .and_then(|m| m.submit_push(client, &user, station)),
            deadline,
        ),
        Job::Trigger {
            client,
            user,
            station,
        } => provider(
            rt.mfa
                .as_ref()
                .and_then(|m| m.submit_trigger(client, &user, station)),
            deadline,
        ),
        Job::Check {
            user,
            code,
            transaction_id,
        } => provider(
            rt.mfa
                .as_ref()
                .and_then(|m| m.submit_check(user, code, transaction_id)),
            deadline,
        ),
        Job::Tls(mut session) => {
            let Some(pool) = rt.crypto.as_ref() else {
                return ready(no_answer);
            };
            match pool.submit(move || {
                session.handshake();
                session
            }) {
                Some(rx) => until(
                    deadline,
                    no_answer,
                    async move { JobResult::Tls(rx.await.ok()) },
                ),
                None => ready(no_answer),
            }
        }
        Job::Proxy {
            request,
            pool,
            user_name,
            key,
        } => {
            use crate::proxy::engine::{Failure, Request};
            let Some(client) = rt.proxy_client.as_ref() else {
                return ready(JobResult::Proxy(Err(Failure::Overloaded)));
            };
            let rx = client.submit(Request {
                pool,
                nas: request.to_owned_request(),
                user_name: user_name.map(Into::into),
                key,
                // The engine answers by then itself; the shard's own wait is the backstop.
                deadline: deadline.unwrap_or_else(Instant::now),
                waiter: (),
            });
            until(deadline, no_answer, async move {
                // A dropped sender means the proxy client stopped.
                JobResult::Proxy(rx.await.unwrap_or(Err(Failure::Overloaded)))
            })
        }
    }
}

type ProviderAnswer = Result<crate::backend::mfa::PiAnswer, crate::backend::mfa::PiError>;

/// The MFA provider's answer (`None`: it could not be asked, or did not answer in time).
fn provider(rx: Option<Receiver<ProviderAnswer>>, deadline: Option<Instant>) -> Waiting {
    let Some(rx) = rx else {
        return ready(JobResult::SecondFactor(None));
    };
    until(deadline, JobResult::SecondFactor(None), async move {
        JobResult::SecondFactor(rx.await.ok())
    })
}

fn ready(result: JobResult) -> Waiting {
    Box::pin(std::future::ready(result))
}

/// `work`, or `no_answer` once `deadline` passes.
fn until(
    deadline: Option<Instant>,
    no_answer: JobResult,
    work: impl Future<Output = JobResult> + 'static,
) -> Waiting {
    let Some(deadline) = deadline else {
        return Box::pin(work);
    };
    Box::pin(async move {
        let left = deadline.saturating_duration_since(Instant::now());
        glommio::timer::timeout(left, async { Ok(work.await) })
            .await
            .unwrap_or(no_answer)
    })
}
