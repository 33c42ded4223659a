//! The pipeline's answer to a request: a typed [`Decision`] (code, reply content, why), logged
//! in one format by [`log`].

use tracing::info;

use super::context::Request;
use super::conversation::state::STATE_LEN;
use super::mschap::MethodReply;
use super::{Method, RejectReason};
use crate::policy::ReplyAttributes;
use crate::proto::{
    BuildError, Code, PacketBuilder, Secret, CALLING_STATION_ID, CHARGEABLE_USER_IDENTITY, CLASS,
    REPLY_MESSAGE, STATE,
};
use crate::vocab::AuthSource;

/// Why an Access-Accept was given without the second factor a policy asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waiver {
    /// `[mfa] exempt_clients`.
    ExemptClient,
    /// `[mfa] exempt_groups`.
    ExemptGroup,
    /// No second factor enrolled and `unenrolled = "accept"` (known before asking a provider).
    Unenrolled,
    /// The provider said the user has no token and `unenrolled = "accept"`.
    NotEnrolledAccepted,
    /// The provider could not be asked and `on_unreachable = "accept"`.
    UnavailableFailsafe,
    /// Duo's preauth answered `allow`.
    DuoBypass,
}

impl Waiver {
    pub fn label(self) -> &'static str {
        match self {
            Waiver::ExemptClient => "accept_mfa_exempt_client",
            Waiver::ExemptGroup => "accept_mfa_exempt_group",
            Waiver::Unenrolled => "accept_unenrolled",
            Waiver::NotEnrolledAccepted => "mfa_not_enrolled_accepted",
            Waiver::UnavailableFailsafe => "mfa_unavailable_failsafe",
            Waiver::DuoBypass => "mfa_duo_bypass",
        }
    }
}

/// What a decided reply carries. Its `Debug` leaves out the State.
#[derive(Clone)]
pub enum Reply<'a> {
    /// Access-Accept or Access-Reject: an optional Reply-Message, then the user's and the
    /// deciding policy's attributes.
    Attributes {
        message: Option<&'a [u8]>,
        user: Option<&'a ReplyAttributes>,
        /// The attributes a source read for the user (SQL's radreply and radgroupreply).
        source: Option<std::sync::Arc<super::SourceGrant>>,
        policy: Option<&'a ReplyAttributes>,
        /// The method's own attributes (MS-CHAP's success or error, MPPE keys).
        method: Option<MethodReply>,
    },
    /// Access-Challenge: the State of the conversation and the prompt.
    Challenge {
        state: super::conversation::state::StateBuf,
        prompt: &'a str,
    },
    /// Access-Challenge of an EAP conversation: its State and our next EAP request.
    EapChallenge {
        state: [u8; STATE_LEN],
        eap: &'a [u8],
    },
    /// A home server's answer, relayed: its attributes but those of the types in `drop`
    /// (and those the policy sets), then the deciding policy's.
    Proxied {
        answer: Box<crate::proxy::engine::Answer>,
        drop: &'a [u8],
        policy: Option<&'a ReplyAttributes>,
    },
}

impl std::fmt::Debug for Reply<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reply::Attributes {
                message,
                user,
                source,
                policy,
                method,
            } => f
                .debug_struct("Attributes")
                .field("message", &message.map(String::from_utf8_lossy))
                .field("user", user)
                .field("source", &source.as_ref().map(|s| &s.reply))
                .field("policy", policy)
                .field("method", method)
                .finish(),
            Reply::Challenge { prompt, .. } => f
                .debug_struct("Challenge")
                .field("prompt", prompt)
                .finish_non_exhaustive(),
            Reply::EapChallenge { eap, .. } => f
                .debug_struct("EapChallenge")
                .field("eap_len", &eap.len())
                .finish_non_exhaustive(),
            Reply::Proxied { answer, .. } => f
                .debug_struct("Proxied")
                .field("code", &answer.code())
                .finish_non_exhaustive(),
        }
    }
}

/// How the request was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Accept,
    /// Accepted although the policy asked for a second factor.
    AcceptWaived(Waiver),
    Challenge,
    Reject(RejectReason),
}

/// The pipeline's answer: what to send and why.
#[derive(Debug, Clone)]
pub struct Decision<'a> {
    pub outcome: Outcome,
    pub reply: Reply<'a>,
    /// The network policy that decided, if any.
    pub policy: Option<&'a str>,
    /// Where the user was authenticated, once known.
    pub source: Option<AuthSource>,
    pub method: Option<Method>,
    /// An Access-Accept's session: our Class, and the session Simultaneous-Use displaces.
    pub session: Option<crate::session::Grant>,
}

impl<'a> Decision<'a> {
    /// An Access-Reject for `reason` with the configured reject message.
    pub fn reject(reason: RejectReason, message: Option<&'a [u8]>) -> Decision<'a> {
        Decision {
            outcome: Outcome::Reject(reason),
            reply: Reply::Attributes {
                message,
                user: None,
                source: None,
                policy: None,
                method: None,
            },
            policy: None,
            source: None,
            method: None,
            session: None,
        }
    }

    pub fn code(&self) -> Code {
        if let Reply::Proxied { answer, .. } = &self.reply {
            // Accounting-Response, or the home server's own code.
            if answer.code() == Code::AccountingResponse {
                return Code::AccountingResponse;
            }
        }
        match self.outcome {
            Outcome::Accept | Outcome::AcceptWaived(_) => Code::AccessAccept,
            Outcome::Challenge => Code::AccessChallenge,
            Outcome::Reject(_) => Code::AccessReject,
        }
    }

    pub fn reason(&self) -> Option<RejectReason> {
        match self.outcome {
            Outcome::Reject(r) => Some(r),
            _ => None,
        }
    }

    /// The label the second factor's outcome counter books this decision under.
    pub fn mfa_label(&self) -> &'static str {
        match self.outcome {
            Outcome::Accept => "accept",
            Outcome::AcceptWaived(w) => w.label(),
            Outcome::Challenge => "challenge",
            Outcome::Reject(r) => r.label(),
        }
    }

    /// The same decision with the method's own attributes (replacing any).
    pub fn with_method_reply(mut self, reply: MethodReply) -> Self {
        if let Reply::Attributes { method, .. } = &mut self.reply {
            *method = Some(reply);
        }
        self
    }

    pub fn with_method(mut self, method: Option<Method>, source: Option<AuthSource>) -> Self {
        self.method = method;
        self.source = source;
        self
    }

    /// Appends the reply's attributes (the builder adds the Message-Authenticator).
    pub fn apply(&self, b: &mut PacketBuilder<'_, '_>, s: &Secret) -> Result<(), BuildError> {
        self.apply_reply(b, s)?;
        if let Some(class) = self.granted().and_then(|g| g.class.as_ref()) {
            b.attr(CLASS, class.as_bytes())?;
        }
        Ok(())
    }

    /// The session an Access-Accept opens. A challenge made from an accept on its way (a
    /// second factor still to come) grants nothing yet.
    pub fn granted(&self) -> Option<&crate::session::Grant> {
        self.session
            .as_ref()
            .filter(|_| self.code() == Code::AccessAccept)
    }

    fn apply_reply(&self, b: &mut PacketBuilder<'_, '_>, s: &Secret) -> Result<(), BuildError> {
        match &self.reply {
            Reply::Attributes {
                message,
                user,
                source,
                policy,
                method,
            } => {
                if let Some(m) = method {
                    m.apply(b, s)?;
                }
                if let Some(m) = message {
                    b.attr(REPLY_MESSAGE, m)?;
                }
                if let Some(r) = user {
                    r.apply(b, s)?;
                }
                if let Some(g) = source {
                    g.reply.apply(b, s)?;
                }
                if let Some(r) = policy {
                    r.apply(b, s)?;
                }
                Ok(())
            }
            Reply::Challenge { state, prompt } => {
                b.attr(STATE, state.as_slice())?;
                b.attr(REPLY_MESSAGE, prompt.as_bytes())
            }
            Reply::EapChallenge { state, eap } => {
                b.eap_message(eap)?;
                b.attr(STATE, state)
            }
            Reply::Proxied {
                answer,
                drop,
                policy,
            } => {
                use crate::proxy::forward::{relay_attributes, trusted_reply, RelayError};
                let reply =
                    trusted_reply(&answer.reply, &answer.sent).ok_or(BuildError::MalformedRaw)?;
                let keep = |t: u8| !drop.contains(&t) && !policy.is_some_and(|p| p.sets(t));
                relay_attributes(b, &reply, &answer.sent, &answer.secret, s, keep).map_err(
                    |e| match e {
                        RelayError::Build(e) => e,
                        RelayError::Hidden { source, .. } => BuildError::Crypto(source),
                        RelayError::MalformedMicrosoftVsa => BuildError::MalformedRaw,
                    },
                )?;
                match policy {
                    Some(p) => p.apply(b, s),
                    None => Ok(()),
                }
            }
        }
    }
}

/// What the decision log says happened to a request.
#[derive(Debug, Clone, Copy)]
pub enum Logged<'d> {
    Decided(&'d Decision<'d>),
    /// Held for slow work (a directory, a slow hash, a second factor): the stage it waits in.
    Held(&'static str),
    /// Dropped without a reply (the NAS retries): why.
    Dropped(RejectReason),
}

/// The one decision-log line: who, from where, how, what and why. Never a password, code,
/// State or hash.
pub fn log(r: &Request<'_>, what: Logged<'_>) {
    let (outcome, reason, policy, method, source) = match what {
        Logged::Decided(d) => {
            let (outcome, reason) = match d.outcome {
                Outcome::Accept => ("accept", ""),
                Outcome::AcceptWaived(w) => ("accept", w.label()),
                Outcome::Challenge => ("challenge", ""),
                Outcome::Reject(r) => ("reject", r.label()),
            };
            (outcome, reason, d.policy, d.method, d.source)
        }
        Logged::Held(stage) => ("held", stage, None, None, None),
        Logged::Dropped(r) => ("drop", r.label(), None, None, None),
    };
    let outer = r.tunnel.map(|t| String::from_utf8_lossy(t.outer));
    info!(
        target: "radshard::auth",
        user = %String::from_utf8_lossy(r.user_name()),
        outer = outer.as_deref().unwrap_or(""),
        client = r.client,
        nas = %r.nas,
        method = method.map_or("none", Method::label),
        source = source.map_or("none", AuthSource::label),
        outcome,
        reason,
        policy = policy.unwrap_or(""),
        latency_us = r.arrived.elapsed().as_micros() as u64,
        "decision"
    );
    // The line's fields take a parse of the home server's reply: only when it is wanted.
    if r.packet.code() == Code::AccessRequest
        && source == Some(AuthSource::Proxy)
        && tracing::enabled!(target: "radshard::proxy", tracing::Level::INFO)
    {
        let answer = match what {
            Logged::Decided(Decision {
                reply: Reply::Proxied { answer, .. },
                ..
            }) => Some(&**answer),
            _ => None,
        };
        proxied_login(r, answer, outcome, reason);
    }
}

/// The line eduroam asks of a visited site for every proxied login: the outer identity as
/// the NAS sent it, the station, which home server answered, the result, and the
/// Chargeable-User-Identity the home server returned (a pseudonym meant for the visited
/// site, so it may be logged; the password never is).
fn proxied_login(
    r: &Request<'_>,
    answer: Option<&crate::proxy::engine::Answer>,
    outcome: &str,
    reason: &str,
) {
    fn text(v: Option<&[u8]>) -> std::borrow::Cow<'_, str> {
        v.map(String::from_utf8_lossy).unwrap_or_default()
    }
    let reply = answer.and_then(|a| crate::proto::Packet::parse(&a.reply).ok());
    let cui = reply
        .as_ref()
        .and_then(|p| p.attr(CHARGEABLE_USER_IDENTITY))
        .filter(|v| *v != [0]);
    info!(
        target: "radshard::proxy",
        outer = %text(r.packet.user_name()),
        calling_station_id = %text(r.packet.attr(CALLING_STATION_ID)),
        home = answer.map_or("", |a| &*a.home_name),
        outcome,
        reason,
        cui = %text(cui),
        "proxied login"
    );
}
