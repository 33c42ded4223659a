//! Generic REST push, asynchronous so that a pending push holds no connection (unless the
//! service long-polls):
//!
//! * `POST {url}` with `{user_field: …, client_field: …, extra…}` sends the push and answers at
//!   once: a decision at `decision_pointer` (`true`/`false`, or a value of the `approved` /
//!   `denied` lists), or else the push's id at `id_pointer` (pending);
//! * `GET status_url` (`{id}` URL-encoded) answers a value at `status_pointer`, one of the
//!   `approved`, `denied` or `pending` lists; polled every `poll_interval` until `wait` has
//!   passed (then the push counts as denied), or with `long_poll` asked again as soon as it
//!   answers pending, the service holding each request open up to `long_poll_timeout`.
//!
//! The defaults are the original fixed protocol: `{"user","client"}` → `{"id"}` or
//! `{"approved": bool}`; `GET {url}/{id}` → `{"status": "pending"|"approved"|"denied"}`.
//!
//! Answers share privacyIDEA's types: approved → `Accept`, denied → `Reject`.

use std::time::Duration;

use tokio::sync::Semaphore;

use super::config::{RestPushConfig, StatusValue};
use super::privacyidea::{PiAnswer, PiError};

pub struct RestPush {
    config: RestPushConfig,
    http: reqwest::Client,
    /// The POST body's constant part (`extra`); user and client are added per push.
    body: serde_json::Map<String, serde_json::Value>,
}

impl std::fmt::Debug for RestPush {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestPush")
            .field("url", &self.config.url)
            .finish_non_exhaustive()
    }
}

/// One HTTP request's time limit (the push itself may wait much longer).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Ids longer than this are not a push id but a misconfigured `id_pointer`.
const MAX_ID: usize = 256;

fn not_answered() -> PiAnswer {
    PiAnswer::Reject {
        message: "push not answered in time".into(),
    }
}

fn denied() -> PiAnswer {
    PiAnswer::Reject {
        message: "push denied".into(),
    }
}

/// Why one HTTP exchange gave no answer.
enum Fetch {
    /// The request's own time limit passed: for a long poll, "still pending".
    TimedOut,
    Failed(PiError),
}

impl From<PiError> for Fetch {
    fn from(e: PiError) -> Fetch {
        Fetch::Failed(e)
    }
}

fn fetch_error(e: reqwest::Error) -> Fetch {
    if e.is_timeout() {
        Fetch::TimedOut
    } else {
        Fetch::Failed(PiError::Unreachable(e.without_url().to_string()))
    }
}

/// `id` for a URL path segment or query value: unreserved characters as they are, every other
/// byte percent-encoded (RFC 3986).
fn url_encode(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// What a status (or immediate decision) value means.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Approved,
    Denied,
    Pending,
}

impl RestPush {
    pub fn new(config: RestPushConfig) -> Result<RestPush, String> {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let mut headers = reqwest::header::HeaderMap::new();
        for (name, value) in &config.headers {
            let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("header name {name:?} is invalid"))?;
            let mut value = reqwest::header::HeaderValue::from_str(value.expose())
                .map_err(|_| format!("header {name} has an invalid value"))?;
            // Redacted wherever reqwest or hyper would print it.
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT.min(config.wait))
            .default_headers(headers)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let body = config.extra.iter().cloned().collect();
        Ok(RestPush { config, http, body })
    }

    /// One request's JSON answer. `slots` limits the requests in flight; a long poll (`None`)
    /// takes none, since it is meant to stay open for every pending push at once.
    async fn json(
        &self,
        req: reqwest::RequestBuilder,
        slots: Option<&Semaphore>,
    ) -> Result<serde_json::Value, Fetch> {
        // A slot per HTTP request, not per push: polled pushes hold nothing but a timer.
        let _permit = match slots {
            Some(s) => Some(
                s.acquire()
                    .await
                    .map_err(|_| PiError::Unreachable("stopping".into()))?,
            ),
            None => None,
        };
        let resp = req.send().await.map_err(fetch_error)?;
        let status = resp.status();
        // A long poll the service ended without news (204 No Content, 408 Request Timeout) is
        // "still pending", like our own time limit.
        if slots.is_none() && matches!(status.as_u16(), 204 | 408) {
            return Err(Fetch::TimedOut);
        }
        if !status.is_success() {
            return Err(PiError::Http(status.as_u16()).into());
        }
        let body = resp.bytes().await.map_err(fetch_error)?;
        serde_json::from_slice(&body).map_err(|e| PiError::Protocol(e.to_string()).into())
    }

    fn verdict(&self, v: &StatusValue) -> Option<Verdict> {
        let c = &self.config;
        if c.approved.contains(v) {
            Some(Verdict::Approved)
        } else if c.denied.contains(v) {
            Some(Verdict::Denied)
        } else if c.pending.contains(v) {
            Some(Verdict::Pending)
        } else {
            None
        }
    }

    /// The POST answer: a decision already, or the id to ask the status of.
    fn started(&self, answer: &serde_json::Value) -> Result<Result<PiAnswer, String>, PiError> {
        let decision = answer
            .pointer(&self.config.decision_pointer)
            .and_then(StatusValue::of);
        // A boolean at the decision pointer is an "approved?" flag; other values are looked up
        // in the lists (a pending one, or none, means: go on with the id).
        match decision.as_ref().map(|d| (d, self.verdict(d))) {
            Some((_, Some(Verdict::Approved))) | Some((StatusValue::Bool(true), None)) => {
                return Ok(Ok(PiAnswer::Accept))
            }
            Some((_, Some(Verdict::Denied))) | Some((StatusValue::Bool(false), None)) => {
                return Ok(Ok(denied()))
            }
            _ => {}
        }
        let id = match answer.pointer(&self.config.id_pointer) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Number(n)) => n.to_string(),
            _ => return Err(PiError::Protocol("neither id nor decision".into())),
        };
        if id.is_empty() || id.len() > MAX_ID {
            return Err(PiError::Protocol(format!("push id of {} bytes", id.len())));
        }
        Ok(Err(self
            .config
            .status_url
            .replace("{id}", &url_encode(&id))))
    }

    /// Sends one push and waits (polling or long-polling) for the user's decision, at most
    /// `wait`.
    pub async fn push(
        &self,
        user: &str,
        client: &str,
        slots: &Semaphore,
    ) -> Result<PiAnswer, PiError> {
        let deadline = tokio::time::Instant::now() + self.config.wait;
        let mut body = self.body.clone();
        body.insert(self.config.user_field.clone(), user.into());
        body.insert(self.config.client_field.clone(), client.into());
        let post = self.http.post(&self.config.url).json(&body);
        drop(body);
        // Boxed: the HTTP futures live only while a request runs, so a pending push's task is
        // not sized for them while it sleeps.
        let answer = match Box::pin(self.json(post, Some(slots))).await {
            Ok(a) => a,
            Err(Fetch::Failed(e)) => return Err(e),
            Err(Fetch::TimedOut) => return Err(PiError::Unreachable("timed out".into())),
        };
        let status_url = match self.started(&answer)? {
            Ok(decided) => return Ok(decided),
            Err(url) => url,
        };
        drop(answer);
        let mut asked = tokio::time::Instant::now();
        loop {
            // Polling waits poll_interval between requests; a long poll asks again at once,
            // but never more often than poll_interval (a service that does not hold the
            // request open must not turn this into a busy loop).
            let next = asked + self.config.poll_interval;
            if next >= deadline {
                tokio::time::sleep_until(deadline).await;
                return Ok(not_answered());
            }
            tokio::time::sleep_until(next).await;
            asked = tokio::time::Instant::now();
            let get = self.http.get(&status_url);
            let (get, slots) = match self.config.long_poll {
                // Bounded by what is left of wait: the push ends then anyway.
                Some(t) => (
                    get.timeout(t.min(deadline.saturating_duration_since(asked))),
                    None,
                ),
                None => (get, Some(slots)),
            };
            let answer = match Box::pin(self.json(get, slots)).await {
                Ok(a) => a,
                Err(Fetch::TimedOut) if self.config.long_poll.is_some() => continue,
                Err(Fetch::TimedOut) => return Err(PiError::Unreachable("timed out".into())),
                Err(Fetch::Failed(e)) => return Err(e),
            };
            let value = answer.pointer(&self.config.status_pointer);
            match value
                .and_then(StatusValue::of)
                .and_then(|v| self.verdict(&v))
            {
                Some(Verdict::Pending) => continue,
                Some(Verdict::Approved) => return Ok(PiAnswer::Accept),
                Some(Verdict::Denied) => return Ok(denied()),
                None => {
                    return Err(PiError::Protocol(format!(
                        "push status {}",
                        value.map_or("missing".into(), |v| v.to_string())
                    )))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> RestPushConfig {
        RestPushConfig {
            url: "https://push.example.org/p".into(),
            wait: Duration::from_secs(60),
            poll_interval: Duration::from_secs(1),
            user_field: "user".into(),
            client_field: "client".into(),
            extra: Vec::new(),
            headers: Vec::new(),
            id_pointer: "/id".into(),
            decision_pointer: "/approved".into(),
            status_url: "https://push.example.org/p/{id}".into(),
            status_pointer: "/status".into(),
            approved: vec![StatusValue::Text("approved".into())],
            denied: vec![StatusValue::Text("denied".into())],
            pending: vec![StatusValue::Text("pending".into())],
            long_poll: None,
        }
    }

    fn started(c: RestPushConfig, answer: serde_json::Value) -> Result<Result<bool, String>, ()> {
        let p = RestPush::new(c).expect("client");
        match p.started(&answer) {
            Ok(Ok(PiAnswer::Accept)) => Ok(Ok(true)),
            Ok(Ok(_)) => Ok(Ok(false)),
            Ok(Err(url)) => Ok(Err(url)),
            Err(_) => Err(()),
        }
    }

    #[test]
    fn post_answers_map_to_a_decision_or_a_status_url() {
        use serde_json::json;
        assert_eq!(started(config(), json!({"approved": true})), Ok(Ok(true)));
        assert_eq!(started(config(), json!({"approved": false})), Ok(Ok(false)));
        assert_eq!(
            started(config(), json!({"id": "a b/ü"})),
            Ok(Err("https://push.example.org/p/a%20b%2F%C3%BC".into())),
            "the id percent-encoded"
        );
        assert_eq!(
            started(config(), json!({"id": 42})),
            Ok(Err("https://push.example.org/p/42".into()))
        );
        assert_eq!(started(config(), json!({"id": ""})), Err(()));
        assert_eq!(started(config(), json!({"other": 1})), Err(()));

        // Mapped: a listed string at the decision pointer decides; a pending one goes on.
        let mut c = config();
        c.decision_pointer = "/result/state".into();
        c.id_pointer = "/result/ref".into();
        c.approved = vec![StatusValue::Text("OK".into())];
        c.pending = vec![StatusValue::Text("WAIT".into())];
        assert_eq!(
            started(c.clone(), json!({"result": {"state": "OK"}})),
            Ok(Ok(true))
        );
        assert_eq!(
            started(c.clone(), json!({"result": {"state": "denied"}})),
            Ok(Ok(false))
        );
        assert_eq!(
            started(c, json!({"result": {"state": "WAIT", "ref": "r1"}})),
            Ok(Err("https://push.example.org/p/r1".into()))
        );
    }

    #[test]
    fn status_values_tell_strings_from_booleans() {
        let mut c = config();
        c.approved = vec![StatusValue::Bool(true)];
        c.denied = vec![StatusValue::Bool(false)];
        c.pending = vec![StatusValue::Text("wait".into())];
        let p = RestPush::new(c).expect("client");
        let of = |v: serde_json::Value| StatusValue::of(&v).and_then(|s| p.verdict(&s));
        assert_eq!(of(serde_json::json!(true)), Some(Verdict::Approved));
        assert_eq!(of(serde_json::json!(false)), Some(Verdict::Denied));
        assert_eq!(
            of(serde_json::json!("true")),
            None,
            "a string is not a boolean"
        );
        assert_eq!(of(serde_json::json!("wait")), Some(Verdict::Pending));
        assert_eq!(of(serde_json::json!(1)), None);
        assert_eq!(of(serde_json::Value::Null), None);
    }

    /// A pending push is this future (boxed) and little else: the mapping must not make it
    /// grow (debug build: 328 bytes before it, 312 with it).
    #[test]
    fn push_future_stays_small() {
        let p = RestPush::new(config()).expect("client");
        let slots = Semaphore::new(1);
        let f = p.push("alice", "nas", &slots);
        assert!(
            std::mem::size_of_val(&f) <= 400,
            "{}",
            std::mem::size_of_val(&f)
        );
    }
}
