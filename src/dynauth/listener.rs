//! The CoA listener: Disconnect-Requests and CoA-Requests from an authorised upstream (a
//! client with `dynauth_upstream = true`, e.g. a billing system) are verified with its
//! secret, matched to the session(s) in the session table, relayed to the owning NAS's DAS
//! with that DAS's secret, and the NAS's ACK or NAK (with its Error-Cause) is relayed back
//! signed with the upstream's secret.
//!
//! * No session → NAK, Error-Cause 503 (Session-Context-Not-Found).
//! * Several sessions: a Disconnect goes to each (ACK only if every NAS ACKs); a CoA is
//!   refused, NAK 508 (Multiple-Session-Selection-Unsupported).
//! * No session attribute at all → NAK 402 (Missing-Attribute).
//! * The NAS not reachable: NAK 502 (no DAS), 505 (no answer), 506 (we are overloaded).
//!
//! A bad authenticator, an unknown source or a code other than 40/43 is dropped and counted.
//! A retransmission of a request being forwarded is absorbed; one already answered gets the
//! same answer again for [`REPLY_TTL`].

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;

use super::error_cause::{ErrorCause, ERROR_CAUSE};
use super::metrics::ListenerDrop;
use super::outcome::{DasOutcome, DasResult};
use super::packet::{Kind, ACCT_MULTI_SESSION_ID, NAS_PORT_ID};
use super::Dispatcher;
use crate::proto::{
    verify_request, Code, Packet, PacketBuilder, Secret, Verified, ACCT_SESSION_ID,
    CALLED_STATION_ID, CALLING_STATION_ID, CHARGEABLE_USER_IDENTITY, EVENT_TIMESTAMP,
    FRAMED_IP_ADDRESS, MAX_PACKET_LEN, MESSAGE_AUTHENTICATOR, NAS_IDENTIFIER, NAS_IPV6_ADDRESS,
    NAS_IP_ADDRESS, NAS_PORT, PROXY_STATE, TUNNEL_PASSWORD, USER_NAME, USER_PASSWORD,
    VENDOR_SPECIFIC,
};
use crate::session::{SessionFilter, SessionStore, SessionView};

/// How long an answered upstream request's reply is kept for its retransmissions.
pub const REPLY_TTL: Duration = Duration::from_secs(30);
/// Upstream requests being forwarded or remembered at most; past it new ones are dropped
/// (the upstream retransmits) rather than memory growing.
pub const MAX_TRACKED: usize = 4096;

/// A client allowed to send us Disconnect and CoA requests.
#[derive(Debug, Clone)]
pub struct Upstream {
    pub name: String,
    pub secret: Secret,
}

/// Looks up the upstream a datagram's source address belongs to (clients with
/// `dynauth_upstream = true` only).
pub type UpstreamOf = Arc<dyn Fn(IpAddr) -> Option<Upstream> + Send + Sync>;

/// The running listener; its tasks stop when it is dropped.
pub struct Listener {
    addrs: Vec<SocketAddr>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

struct Ctx {
    sessions: Arc<SessionStore>,
    dispatcher: Arc<Dispatcher>,
    upstream_of: UpstreamOf,
    tracked: Mutex<HashMap<RequestKey, Tracked>>,
}

/// An upstream request as its retransmissions repeat it.
type RequestKey = (SocketAddr, u8, [u8; 16]);

enum Tracked {
    InProgress,
    Answered(Arc<Vec<u8>>, Instant),
}

impl Listener {
    /// Binds `addrs` and serves them on the dispatcher's runtime (the control runtime).
    pub fn bind(
        addrs: &[SocketAddr],
        sessions: Arc<SessionStore>,
        dispatcher: Arc<Dispatcher>,
        upstream_of: UpstreamOf,
    ) -> io::Result<Listener> {
        let handle = dispatcher.handle().clone();
        let ctx = Arc::new(Ctx {
            sessions,
            dispatcher,
            upstream_of,
            tracked: Mutex::new(HashMap::new()),
        });
        let mut bound = Vec::with_capacity(addrs.len());
        let mut sockets = Vec::with_capacity(addrs.len());
        {
            let _context = handle.enter();
            for a in addrs {
                let std_sock = std::net::UdpSocket::bind(a)?;
                std_sock.set_nonblocking(true)?;
                let s = UdpSocket::from_std(std_sock)?;
                bound.push(s.local_addr()?);
                sockets.push(Arc::new(s));
            }
        }
        let tasks = sockets
            .into_iter()
            .map(|s| handle.spawn(serve(ctx.clone(), s)))
            .collect();
        Ok(Listener {
            addrs: bound,
            tasks,
        })
    }

    /// The addresses bound (ports resolved).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Ctx {
    fn tracked(&self) -> MutexGuard<'_, HashMap<RequestKey, Tracked>> {
        self.tracked.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts tracking `key`; `Err` with what to do instead (replay, absorb, drop).
    fn track(&self, key: RequestKey, now: Instant) -> Result<(), Option<Arc<Vec<u8>>>> {
        let mut t = self.tracked();
        match t.get(&key) {
            Some(Tracked::InProgress) => return Err(None),
            Some(Tracked::Answered(reply, at)) if now.duration_since(*at) < REPLY_TTL => {
                return Err(Some(reply.clone()))
            }
            _ => {}
        }
        if t.len() >= MAX_TRACKED {
            t.retain(|_, v| match v {
                Tracked::InProgress => true,
                Tracked::Answered(_, at) => now.duration_since(*at) < REPLY_TTL,
            });
        }
        if t.len() >= MAX_TRACKED {
            return Err(None);
        }
        t.insert(key, Tracked::InProgress);
        Ok(())
    }

    fn answered(&self, key: RequestKey, reply: Option<Arc<Vec<u8>>>) {
        let mut t = self.tracked();
        match reply {
            Some(r) => t.insert(key, Tracked::Answered(r, Instant::now())),
            None => t.remove(&key),
        };
    }
}

async fn serve(ctx: Arc<Ctx>, sock: Arc<UdpSocket>) {
    let mut buf = vec![0u8; MAX_PACKET_LEN + 1];
    loop {
        let (n, from) = match sock.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, "dynauth listener: receive error");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let datagram = buf.get(..n).unwrap_or_default().to_vec();
        let (upstream, key) = match screen(&ctx, &datagram, from) {
            Ok(r) => r,
            Err(why) => {
                ctx.dispatcher.metrics().listener_dropped(why);
                tracing::debug!(from = %from, reason = why.label(), "dynauth listener: dropped");
                continue;
            }
        };
        match ctx.track(key, Instant::now()) {
            Ok(()) => {}
            Err(Some(reply)) => {
                ctx.dispatcher.metrics().listener_replayed();
                let _ = sock.send_to(&reply, from).await;
                continue;
            }
            Err(None) => {
                ctx.dispatcher
                    .metrics()
                    .listener_dropped(ListenerDrop::InProgress);
                continue;
            }
        }
        let (ctx, sock) = (ctx.clone(), sock.clone());
        // Forwarding waits for a NAS; the next datagram is not kept waiting for it.
        tokio::spawn(async move {
            let reply = handle(&ctx, &datagram, &upstream).await.map(Arc::new);
            if let Some(r) = &reply {
                if let Err(e) = sock.send_to(r, from).await {
                    tracing::debug!(to = %from, error = %e, "dynauth listener: cannot answer");
                }
            }
            ctx.answered(key, reply);
        });
    }
}

/// The checks before any work: framing, code, a known upstream, its secret.
fn screen(
    ctx: &Ctx,
    datagram: &[u8],
    from: SocketAddr,
) -> Result<(Upstream, RequestKey), ListenerDrop> {
    let p = Packet::parse(datagram).map_err(|_| ListenerDrop::Malformed)?;
    Kind::of_request(p.code()).ok_or(ListenerDrop::NotARequest)?;
    let ip = match from.ip() {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(from.ip(), IpAddr::V4),
        v4 => v4,
    };
    let upstream = (ctx.upstream_of)(ip).ok_or(ListenerDrop::UnknownUpstream)?;
    verify_request(p, &upstream.secret, false).map_err(|_| ListenerDrop::BadAuthenticator)?;
    Ok((upstream, (from, p.identifier(), *p.authenticator())))
}

/// The session identification an upstream request carries (RFC 5176 §3).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Identification {
    pub user_name: Option<String>,
    pub acct_session_id: Option<String>,
    pub acct_multi_session_id: Option<String>,
    pub framed_ip_address: Option<Ipv4Addr>,
    pub calling_station_id: Option<String>,
    pub nas_ip_address: Option<Ipv4Addr>,
    pub nas_identifier: Option<String>,
}

fn text(v: &[u8]) -> String {
    String::from_utf8_lossy(v).into_owned()
}

impl Identification {
    pub fn read(p: &Packet<'_>) -> Identification {
        let ipv4 = |v: &[u8]| <[u8; 4]>::try_from(v).ok().map(Ipv4Addr::from);
        Identification {
            user_name: p.attr(USER_NAME).map(text),
            acct_session_id: p.attr(ACCT_SESSION_ID).map(text),
            acct_multi_session_id: p.attr(ACCT_MULTI_SESSION_ID).map(text),
            framed_ip_address: p.attr(FRAMED_IP_ADDRESS).and_then(ipv4),
            calling_station_id: p.attr(CALLING_STATION_ID).map(text),
            nas_ip_address: p.attr(NAS_IP_ADDRESS).and_then(ipv4),
            nas_identifier: p.attr(NAS_IDENTIFIER).map(text),
        }
    }

    /// Whether it names a session at all (NAS identification alone does not).
    pub fn names_a_session(&self) -> bool {
        self.user_name.is_some()
            || self.acct_session_id.is_some()
            || self.acct_multi_session_id.is_some()
            || self.framed_ip_address.is_some()
            || self.calling_station_id.is_some()
    }

    /// Every attribute given matches the session. User-Name matches either the identity
    /// radshard authenticated or the name the NAS accounts under.
    pub fn matches(&self, s: &SessionView) -> bool {
        let eq = |want: &Option<String>, have: Option<&str>| {
            want.as_deref().map_or(true, |w| have == Some(w))
        };
        let user = self.user_name.as_deref().map_or(true, |u| {
            s.user == u || s.accounted_user.as_deref() == Some(u)
        });
        user && eq(&self.acct_session_id, Some(&s.acct_session_id))
            && eq(
                &self.acct_multi_session_id,
                s.acct_multi_session_id.as_deref(),
            )
            && eq(&self.calling_station_id, s.calling_station_id.as_deref())
            && self
                .framed_ip_address
                .map_or(true, |ip| s.framed_ip_address == Some(ip))
            && self
                .nas_ip_address
                .map_or(true, |ip| s.nas_ip_address == Some(ip))
            && eq(&self.nas_identifier, s.nas_identifier.as_deref())
    }

    /// The sessions it names. The table's user index is used when User-Name is the
    /// authenticated identity; otherwise (an outer, accounted name) the sessions are scanned,
    /// narrowed by Framed-IP-Address when given.
    pub fn find(&self, store: &SessionStore) -> Vec<SessionView> {
        let narrowed = SessionFilter {
            ip: self.framed_ip_address.map(IpAddr::V4),
            ..SessionFilter::default()
        };
        let mut found = match &self.user_name {
            Some(u) => store.list(&SessionFilter {
                user: Some(u.clone()),
                ..narrowed.clone()
            }),
            None => Vec::new(),
        };
        found.retain(|s| self.matches(s));
        if found.is_empty() {
            found = store.list(&narrowed);
            found.retain(|s| self.matches(s));
        }
        found
    }
}

/// The upstream's attributes that are kept when forwarding: its session identification is
/// replaced by the session's as its NAS knows it, the Message-Authenticator and
/// Event-Timestamp are made afresh, Proxy-State goes back to the upstream and hidden
/// attributes (hidden with the upstream's secret) are not forwarded.
pub fn forwarded_attributes(p: &Packet<'_>) -> Vec<u8> {
    const REPLACED: [u8; 17] = [
        USER_NAME,
        USER_PASSWORD,
        NAS_IP_ADDRESS,
        NAS_PORT,
        FRAMED_IP_ADDRESS,
        CALLED_STATION_ID,
        CALLING_STATION_ID,
        NAS_IDENTIFIER,
        PROXY_STATE,
        ACCT_SESSION_ID,
        ACCT_MULTI_SESSION_ID,
        EVENT_TIMESTAMP,
        TUNNEL_PASSWORD,
        MESSAGE_AUTHENTICATOR,
        NAS_PORT_ID,
        CHARGEABLE_USER_IDENTITY,
        NAS_IPV6_ADDRESS,
    ];
    let mut out = Vec::new();
    for a in p.attributes() {
        if REPLACED.contains(&a.typ) || (a.typ == VENDOR_SPECIFIC && is_microsoft(a.value)) {
            continue;
        }
        out.push(a.typ);
        out.push((2 + a.value.len()) as u8);
        out.extend_from_slice(a.value);
    }
    out
}

/// Microsoft VSAs carry MPPE keys hidden with the upstream's secret: not forwarded.
fn is_microsoft(value: &[u8]) -> bool {
    value.get(..4) == Some(&crate::proto::MICROSOFT.to_be_bytes()[..])
}

/// What the upstream is told, from the outcomes of the forwarded requests.
pub fn verdict(outcomes: &[DasOutcome]) -> (bool, Option<ErrorCause>) {
    match outcomes.iter().find(|o| !o.is_ack()) {
        None => (true, outcomes.iter().find_map(|o| o.error_cause)),
        Some(o) => (false, Some(nak_cause(o))),
    }
}

fn nak_cause(o: &DasOutcome) -> ErrorCause {
    match o.result {
        DasResult::Nak => o
            .error_cause
            .unwrap_or(ErrorCause::OTHER_PROXY_PROCESSING_ERROR),
        DasResult::NoDas | DasResult::Unroutable => ErrorCause::REQUEST_NOT_ROUTABLE,
        DasResult::Overloaded => ErrorCause::RESOURCES_UNAVAILABLE,
        DasResult::Invalid => ErrorCause::INVALID_REQUEST,
        DasResult::Timeout | DasResult::Ack => ErrorCause::OTHER_PROXY_PROCESSING_ERROR,
    }
}

/// Answers one screened upstream request; `None` if it no longer verifies (it did in
/// [`screen`]) or the answer cannot be built.
async fn handle(ctx: &Ctx, datagram: &[u8], upstream: &Upstream) -> Option<Vec<u8>> {
    let p = Packet::parse(datagram).ok()?;
    let verified = verify_request(p, &upstream.secret, false).ok()?;
    let kind = Kind::of_request(p.code())?;
    let metrics = ctx.dispatcher.metrics();
    metrics.listener_request(kind);
    let id = Identification::read(&p);
    let (ack, cause) = if !id.names_a_session() {
        (false, Some(ErrorCause::MISSING_ATTRIBUTE))
    } else {
        let sessions = id.find(&ctx.sessions);
        match (sessions.len(), kind) {
            (0, _) => (false, Some(ErrorCause::SESSION_CONTEXT_NOT_FOUND)),
            (n, Kind::Coa) if n > 1 => (
                false,
                Some(ErrorCause::MULTIPLE_SESSION_SELECTION_UNSUPPORTED),
            ),
            _ => {
                let extra = forwarded_attributes(&p);
                let outcomes = forward(ctx, kind, sessions, extra).await;
                verdict(&outcomes)
            }
        }
    };
    metrics.listener_answer(kind, ack);
    tracing::info!(upstream = %upstream.name, kind = kind.label(), ack, error_cause = %cause.map(|c| c.to_string()).unwrap_or_default(), "dynauth listener: answered");
    build_answer(&verified, kind, ack, cause)
}

/// Sends the request for every session concurrently (one NAS's retransmissions do not hold
/// up another's).
async fn forward(
    ctx: &Ctx,
    kind: Kind,
    sessions: Vec<SessionView>,
    extra: Vec<u8>,
) -> Vec<DasOutcome> {
    if let [s] = sessions.as_slice() {
        let o = ctx.dispatcher.send(kind, s, &extra).await;
        super::log_outcome(kind, s, &o);
        return vec![o];
    }
    let extra = Arc::new(extra);
    let mut set = tokio::task::JoinSet::new();
    for s in sessions {
        let (d, extra) = (ctx.dispatcher.clone(), extra.clone());
        set.spawn(async move {
            let o = d.send(kind, &s, &extra).await;
            super::log_outcome(kind, &s, &o);
            o
        });
    }
    let mut outcomes = Vec::new();
    while let Some(r) = set.join_next().await {
        outcomes.push(r.unwrap_or_else(|_| DasOutcome::unsent(DasResult::Unroutable, None)));
    }
    outcomes
}

/// ACK or NAK to `request`, with the Error-Cause, a Message-Authenticator and the request's
/// Proxy-States, signed with the upstream's secret (the request's).
pub fn build_answer(
    request: &Verified<'_>,
    kind: Kind,
    ack: bool,
    cause: Option<ErrorCause>,
) -> Option<Vec<u8>> {
    let code: Code = if ack { kind.ack() } else { kind.nak() };
    let mut buf = [0u8; MAX_PACKET_LEN];
    let mut b = PacketBuilder::reply(&mut buf, code, request).ok()?;
    b.message_authenticator().ok()?;
    if let Some(c) = cause {
        b.attr(ERROR_CAUSE, &c.code.to_be_bytes()).ok()?;
    }
    Some(b.finish(request.secret()).ok()?.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dynauth::packet::tests::{secret, session};
    use crate::proto::verify_response;

    fn outcome(result: DasResult, cause: Option<u32>) -> DasOutcome {
        DasOutcome {
            result,
            error_cause: cause.map(ErrorCause::from_code),
            das: None,
            attempts: 1,
        }
    }

    #[test]
    fn verdict_relays_the_first_refusal_and_maps_unsent_results() {
        assert_eq!(verdict(&[outcome(DasResult::Ack, None)]), (true, None));
        assert_eq!(
            verdict(&[
                outcome(DasResult::Ack, Some(201)),
                outcome(DasResult::Ack, None)
            ]),
            (true, Some(ErrorCause::RESIDUAL_SESSION_CONTEXT_REMOVED))
        );
        assert_eq!(
            verdict(&[
                outcome(DasResult::Ack, None),
                outcome(DasResult::Nak, Some(504))
            ]),
            (false, Some(ErrorCause::SESSION_CONTEXT_NOT_REMOVABLE))
        );
        assert_eq!(
            verdict(&[outcome(DasResult::Timeout, None)]).1,
            Some(ErrorCause::OTHER_PROXY_PROCESSING_ERROR)
        );
        assert_eq!(
            verdict(&[outcome(DasResult::NoDas, None)]).1,
            Some(ErrorCause::REQUEST_NOT_ROUTABLE)
        );
    }

    fn request(attrs: &[(u8, &[u8])], s: &Secret) -> Vec<u8> {
        let mut buf = [0u8; 4096];
        let mut b = PacketBuilder::request(&mut buf, Code::CoaRequest, 9, &[0; 16]).unwrap();
        for (t, v) in attrs {
            b.attr(*t, v).unwrap();
        }
        b.finish(s).unwrap().to_vec()
    }

    #[test]
    fn identification_matches_either_user_and_every_given_attribute() {
        let s = secret("up");
        let bytes = request(
            &[
                (USER_NAME, b"anonymous@example.org"),
                (ACCT_SESSION_ID, b"S-1"),
                (27, &3600u32.to_be_bytes()),
                (PROXY_STATE, b"ps"),
            ],
            &s,
        );
        let p = Packet::parse(&bytes).unwrap();
        let id = Identification::read(&p);
        assert!(id.names_a_session());
        let mut sess = session();
        assert!(id.matches(&sess));
        sess.acct_session_id = "S-2".into();
        assert!(!id.matches(&sess));
        let by_identity = Identification {
            user_name: Some("alice@example.org".into()),
            ..Identification::default()
        };
        assert!(by_identity.matches(&session()));
        assert!(!Identification {
            nas_identifier: Some("x".into()),
            ..Identification::default()
        }
        .names_a_session());
        // Session-Timeout is kept; identification, Proxy-State are not.
        let kept = forwarded_attributes(&p);
        assert_eq!(kept, [27, 6, 0, 0, 14, 16]);
    }

    #[test]
    fn answers_are_signed_for_the_upstream_with_its_proxy_state() {
        let s = secret("upstream-secret");
        let bytes = request(&[(ACCT_SESSION_ID, b"S-1"), (PROXY_STATE, b"ps1")], &s);
        let p = Packet::parse(&bytes).unwrap();
        let v = verify_request(p, &s, false).unwrap();
        let nak = build_answer(
            &v,
            Kind::Coa,
            false,
            Some(ErrorCause::SESSION_CONTEXT_NOT_FOUND),
        )
        .expect("builds");
        let r = Packet::parse(&nak).unwrap();
        assert_eq!(r.code(), Code::CoaNak);
        verify_response(&r, p.authenticator(), &s).expect("verifies with the upstream's secret");
        assert_eq!(r.attr(ERROR_CAUSE), Some(&503u32.to_be_bytes()[..]));
        assert_eq!(r.attr(PROXY_STATE), Some(&b"ps1"[..]));
    }
}
