//! The admin API's routes (described by `openapi.yaml`):
//!
//! * `GET  /api/v1/openapi.yaml`: this API's description (no token needed: it is public).
//! * `GET  /api/v1/sessions?user=&nas=&ip=`: `{"sessions": [SessionView...]}`.
//! * `GET  /api/v1/sessions/{id}`: `{"session": SessionView}`.
//! * `POST /api/v1/sessions/{id}/disconnect`: `{"session": id, "outcome": DasOutcome}`.
//! * `POST /api/v1/sessions/{id}/coa`, body `{"attributes": [["Filter-Id", "x"], ...]}`:
//!   `{"session": id, "outcome": DasOutcome}`.
//! * `POST /api/v1/users/{name}/disconnect`: every session of the user, concurrently:
//!   `{"user": name, "results": [{"session": id, "outcome": DasOutcome}, ...]}`.
//!
//! Everything but the description needs `Authorization: Bearer <token>`; without a valid one
//! the answer is 401 before the request is looked at any further, so nothing is done. Errors
//! are `{"error": "..."}`. Neither the token nor the Authorization header is ever logged.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ALLOW, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::tokens::TokenSet;
use super::AdminState;
use crate::session::{SessionFilter, SessionStore};

/// The largest request body read (a CoA's attributes); larger ones get 413.
pub const MAX_BODY: usize = 64 * 1024;
/// A body must arrive within this (after the headers, which hyper bounds).
const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// The attributes one CoA-Request may carry from the API (a RADIUS packet holds ~4 KiB).
const MAX_COA_ATTRIBUTES: usize = 64;
const PREFIX: &str = "/api/v1/";

/// The API's counters, for `/metrics`.
#[derive(Debug, Default)]
pub struct AdminMetrics {
    /// Requests answered, by class.
    pub ok: AtomicU64,
    pub unauthorized: AtomicU64,
    pub client_error: AtomicU64,
    pub server_error: AtomicU64,
    /// Disconnect-Requests and CoA-Requests the API asked the dispatcher for.
    pub disconnects: AtomicU64,
    pub coas: AtomicU64,
}

impl AdminMetrics {
    fn count(&self, status: StatusCode) {
        let c = match status.as_u16() {
            401 => &self.unauthorized,
            s if s < 400 => &self.ok,
            s if s < 500 => &self.client_error,
            _ => &self.server_error,
        };
        c.fetch_add(1, Relaxed);
    }

    pub fn render(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP radshard_admin_requests_total Admin API requests answered, by outcome.\n# TYPE radshard_admin_requests_total counter"
        );
        for (label, c) in [
            ("ok", &self.ok),
            ("unauthorized", &self.unauthorized),
            ("client_error", &self.client_error),
            ("server_error", &self.server_error),
        ] {
            let _ = writeln!(
                out,
                "radshard_admin_requests_total{{outcome=\"{label}\"}} {}",
                c.load(Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP radshard_admin_dynauth_requested_total Disconnect and CoA requests made through the admin API, by kind.\n# TYPE radshard_admin_dynauth_requested_total counter"
        );
        for (label, c) in [("disconnect", &self.disconnects), ("coa", &self.coas)] {
            let _ = writeln!(
                out,
                "radshard_admin_dynauth_requested_total{{kind=\"{label}\"}} {}",
                c.load(Relaxed)
            );
        }
    }
}

/// The router and what it needs.
pub(crate) struct Api {
    state: AdminState,
    tokens: Arc<Mutex<Arc<TokenSet>>>,
}

type Reply = Response<Full<Bytes>>;

fn json_reply(status: StatusCode, body: &serde_json::Value) -> Reply {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn error(status: StatusCode, message: impl Into<String>) -> Reply {
    json_reply(status, &json!({ "error": message.into() }))
}

fn unauthorized() -> Reply {
    let mut r = error(
        StatusCode::UNAUTHORIZED,
        "a valid bearer token is required (Authorization: Bearer <token>)",
    );
    r.headers_mut().insert(
        WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"radshard\""),
    );
    r
}

fn method_not_allowed(allow: &'static str) -> Reply {
    let mut r = error(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("this endpoint takes {allow}"),
    );
    r.headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    r
}

/// The token of an `Authorization: Bearer <token>` header (the scheme is case-insensitive,
/// RFC 7235 §2.1).
fn bearer<B>(req: &Request<B>) -> Option<&str> {
    let v = req.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The path's segments after `/api/v1/`, percent-decoded; `None` if one is not UTF-8.
fn segments(path: &str) -> Option<Vec<String>> {
    path.strip_prefix(PREFIX)
        .unwrap_or_default()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .ok()
                .map(|c| c.into_owned())
        })
        .collect()
}

/// A CoA request's body: the attributes by dictionary name, in order (a list, so that an
/// attribute may repeat, as Cisco-AVPair often does).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CoaBody {
    attributes: Vec<(String, AttrValue)>,
}

/// A value as a string or, for convenience, a JSON number (`["Session-Timeout", 3600]`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum AttrValue {
    Text(String),
    Number(serde_json::Number),
}

impl AttrValue {
    fn text(&self) -> String {
        match self {
            AttrValue::Text(s) => s.clone(),
            AttrValue::Number(n) => n.to_string(),
        }
    }
}

impl Api {
    pub(crate) fn new(state: AdminState, tokens: Arc<Mutex<Arc<TokenSet>>>) -> Api {
        Api { state, tokens }
    }

    fn authorized<B>(&self, req: &Request<B>) -> bool {
        let tokens = self
            .tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        bearer(req).is_some_and(|t| tokens.verify(t))
    }

    pub(crate) async fn handle(&self, req: Request<Incoming>, peer: SocketAddr) -> Reply {
        let method = req.method().clone();
        // The path only: a query string is a filter, which is the operator's business.
        let path = req.uri().path().to_string();
        let reply = self.route(req, peer).await;
        self.state.metrics.count(reply.status());
        tracing::debug!(%peer, %method, path = %path, status = reply.status().as_u16(), "admin API request");
        reply
    }

    async fn route(&self, req: Request<Incoming>, peer: SocketAddr) -> Reply {
        let path = req.uri().path();
        if path == "/api/v1/openapi.yaml" {
            if req.method() != Method::GET {
                return method_not_allowed("GET");
            }
            let mut r = Response::new(Full::new(Bytes::from_static(super::OPENAPI.as_bytes())));
            r.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/yaml"));
            return r;
        }
        // Before anything else is looked at: without a token, nothing is done.
        if !self.authorized(&req) {
            tracing::info!(%peer, "admin API: request refused: missing or invalid bearer token");
            return unauthorized();
        }
        if !path.starts_with(PREFIX) {
            return error(
                StatusCode::NOT_FOUND,
                "no such endpoint (the API is under /api/v1/)",
            );
        }
        let Some(seg) = segments(path) else {
            return error(StatusCode::BAD_REQUEST, "the path is not valid UTF-8");
        };
        let seg: Vec<&str> = seg.iter().map(String::as_str).collect();
        // Every endpoint is about sessions.
        let Some(store) = self.state.sessions.as_deref() else {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "sessions are not tracked: configure [sessions]",
            );
        };
        let get = req.method() == Method::GET;
        let post = req.method() == Method::POST;
        match seg.as_slice() {
            ["sessions"] if get => list(store, req.uri().query()),
            ["sessions"] => method_not_allowed("GET"),
            ["sessions", id] if get => match store.get(id) {
                Some(s) => json_reply(StatusCode::OK, &json!({ "session": s })),
                None => no_session(),
            },
            ["sessions", _] => method_not_allowed("GET"),
            ["sessions", id, "disconnect"] if post => self.disconnect_session(store, id).await,
            ["sessions", id, "coa"] if post => {
                let id = id.to_string();
                self.coa(store, &id, req).await
            }
            ["sessions", _, "disconnect" | "coa"] => method_not_allowed("POST"),
            ["users", name, "disconnect"] if post => self.disconnect_user(store, name).await,
            ["users", _, "disconnect"] => method_not_allowed("POST"),
            _ => error(StatusCode::NOT_FOUND, "no such endpoint"),
        }
    }

    async fn disconnect_session(&self, store: &SessionStore, id: &str) -> Reply {
        let Some(session) = store.get(id) else {
            return no_session();
        };
        let Some(dispatcher) = self.state.dispatcher.as_ref() else {
            return no_dynauth();
        };
        self.state.metrics.disconnects.fetch_add(1, Relaxed);
        let outcome = dispatcher.disconnect(&session).await;
        tracing::info!(session = %session.id, user = %session.user, client = %session.client, %outcome, "admin API: disconnect");
        json_reply(
            StatusCode::OK,
            &json!({ "session": session.id, "outcome": outcome }),
        )
    }

    async fn coa(&self, store: &SessionStore, id: &str, req: Request<Incoming>) -> Reply {
        if store.get(id).is_none() {
            return no_session();
        }
        let body = match read_body(req).await {
            Ok(b) => b,
            Err(e) => return e.reply(),
        };
        let body: CoaBody = match serde_json::from_slice(&body) {
            Ok(b) => b,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "the body must be {{\"attributes\": [[\"Name\", \"value\"], ...]}}: {e}"
                    ),
                )
            }
        };
        if body.attributes.is_empty() {
            return error(
                StatusCode::BAD_REQUEST,
                "a CoA-Request needs at least one attribute to change",
            );
        }
        if body.attributes.len() > MAX_COA_ATTRIBUTES {
            return error(
                StatusCode::BAD_REQUEST,
                format!("at most {MAX_COA_ATTRIBUTES} attributes in one CoA-Request"),
            );
        }
        let rt = self.state.runtime.load().1;
        let mut attrs = Vec::with_capacity(body.attributes.len());
        for (name, value) in &body.attributes {
            match rt.dict.encode(name, &value.text()) {
                Ok(a) => attrs.push(a),
                Err(e) => {
                    return json_reply(
                        StatusCode::BAD_REQUEST,
                        &json!({ "error": e.to_string(), "attribute": name }),
                    )
                }
            }
        }
        drop(rt);
        let Some(dispatcher) = self.state.dispatcher.clone() else {
            return no_dynauth();
        };
        let Some(session) = store.get(id) else {
            return no_session();
        };
        self.state.metrics.coas.fetch_add(1, Relaxed);
        let names: Vec<&str> = body.attributes.iter().map(|(n, _)| n.as_str()).collect();
        // Names only: a value may be something the operator would rather not see in a log.
        let outcome = dispatcher.coa(&session, &attrs).await;
        tracing::info!(session = %session.id, user = %session.user, client = %session.client, attributes = ?names, %outcome, "admin API: CoA");
        json_reply(
            StatusCode::OK,
            &json!({ "session": session.id, "outcome": outcome }),
        )
    }

    async fn disconnect_user(&self, store: &SessionStore, user: &str) -> Reply {
        let filter = SessionFilter {
            user: Some(user.to_string()),
            ..SessionFilter::default()
        };
        let sessions = store.list(&filter);
        if sessions.is_empty() {
            return no_session();
        }
        let Some(dispatcher) = self.state.dispatcher.as_ref() else {
            return no_dynauth();
        };
        self.state
            .metrics
            .disconnects
            .fetch_add(sessions.len() as u64, Relaxed);
        tracing::info!(user = %user, sessions = sessions.len(), "admin API: disconnect of all of a user's sessions requested");
        // Concurrently: each waits for its own NAS, which may be slow or retransmitting.
        let mut tasks = tokio::task::JoinSet::new();
        for (i, s) in sessions.into_iter().enumerate() {
            let d = dispatcher.clone();
            tasks.spawn(async move {
                let outcome = d.disconnect(&s).await;
                tracing::info!(session = %s.id, user = %s.user, client = %s.client, %outcome, "admin API: disconnect");
                (i, s, outcome)
            });
        }
        let mut results = Vec::new();
        while let Some(done) = tasks.join_next().await {
            match done {
                Ok((i, s, outcome)) => {
                    results.push((i, json!({ "session": s.id, "outcome": outcome })))
                }
                Err(e) => {
                    tracing::error!(error = %e, "admin API: a disconnect task failed");
                    return error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "a disconnect task failed",
                    );
                }
            }
        }
        results.sort_by_key(|(i, _)| *i);
        let results: Vec<_> = results.into_iter().map(|(_, r)| r).collect();
        json_reply(StatusCode::OK, &json!({ "user": user, "results": results }))
    }
}

fn list(store: &SessionStore, query: Option<&str>) -> Reply {
    let filter: SessionFilter = match serde_urlencoded::from_str(query.unwrap_or("")) {
        Ok(f) => f,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("bad query (user, nas and ip filter sessions): {e}"),
            )
        }
    };
    let sessions = store.list(&filter);
    json_reply(StatusCode::OK, &json!({ "sessions": sessions }))
}

fn no_dynauth() -> Reply {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "dynamic authorization is not configured: no Disconnect or CoA can be sent",
    )
}

fn no_session() -> Reply {
    error(StatusCode::NOT_FOUND, "no session")
}

/// Reads a request body, bounded in size and time.
async fn read_body(req: Request<Incoming>) -> Result<Bytes, BodyError> {
    let limited = Limited::new(req.into_body(), MAX_BODY);
    match tokio::time::timeout(BODY_TIMEOUT, limited.collect()).await {
        Ok(Ok(b)) => Ok(b.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(BodyError::TooLarge),
        Ok(Err(_)) => Err(BodyError::Unreadable),
        Err(_) => Err(BodyError::Slow),
    }
}

#[derive(Debug, thiserror::Error)]
enum BodyError {
    #[error("the body is larger than {MAX_BODY} bytes")]
    TooLarge,
    #[error("the body could not be read")]
    Unreadable,
    #[error("the body did not arrive in time")]
    Slow,
}

impl BodyError {
    fn reply(&self) -> Reply {
        let status = match self {
            BodyError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::Unreadable => StatusCode::BAD_REQUEST,
            BodyError::Slow => StatusCode::REQUEST_TIMEOUT,
        };
        error(status, self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(auth: Option<&str>) -> Request<()> {
        let mut b = Request::builder().uri("/api/v1/sessions");
        if let Some(a) = auth {
            b = b.header(AUTHORIZATION, a);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn bearer_tokens_are_read_from_the_header_only() {
        assert_eq!(bearer(&req(Some("Bearer abc"))), Some("abc"));
        assert_eq!(bearer(&req(Some("bearer  abc "))), Some("abc"));
        assert_eq!(bearer(&req(Some("Basic abc"))), None);
        assert_eq!(bearer(&req(Some("Bearer "))), None);
        assert_eq!(bearer(&req(Some("Bearerabc"))), None);
        assert_eq!(bearer(&req(None)), None);
    }

    #[test]
    fn path_segments_are_percent_decoded() {
        assert_eq!(
            segments("/api/v1/users/alice%40example.org/disconnect").unwrap(),
            vec!["users", "alice@example.org", "disconnect"]
        );
        assert_eq!(segments("/api/v1/sessions/").unwrap(), vec!["sessions"]);
        assert!(segments("/api/v1/users/%ff/disconnect").is_none());
    }

    #[test]
    fn coa_bodies_are_a_list_of_pairs() {
        let b: CoaBody = serde_json::from_str(
            r#"{"attributes": [["Session-Timeout", 3600], ["Filter-Id", "gold"]]}"#,
        )
        .unwrap();
        let texts: Vec<(String, String)> = b
            .attributes
            .iter()
            .map(|(n, v)| (n.clone(), v.text()))
            .collect();
        assert_eq!(
            texts,
            vec![
                ("Session-Timeout".to_string(), "3600".to_string()),
                ("Filter-Id".to_string(), "gold".to_string())
            ]
        );
        assert!(serde_json::from_str::<CoaBody>(r#"{"attributes": {"a": "b"}}"#).is_err());
    }

    #[test]
    fn unauthorized_says_bearer() {
        let r = unauthorized();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert!(r.headers()[WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .starts_with("Bearer"));
    }
}
