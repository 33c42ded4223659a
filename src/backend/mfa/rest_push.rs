//! Generic REST push, asynchronous so that a pending push holds no connection:
//!
//! * `POST {url}` with `{"user": …, "client": …}` sends the push and answers at once, either
//!   `{"id": "…"}` (pending) or `{"approved": true|false}` (already decided);
//! * `GET {url}/{id}` answers `{"status": "pending" | "approved" | "denied"}`, polled every
//!   `poll_interval` until `wait` has passed (then the push counts as denied).
//!
//! Answers share privacyIDEA's types: approved → `Accept`, denied → `Reject`.

use std::time::Duration;

use serde::Deserialize;
use tokio::sync::Semaphore;

use super::config::RestPushConfig;
use super::privacyidea::{PiAnswer, PiError};

pub struct RestPush {
    config: RestPushConfig,
    http: reqwest::Client,
}

impl std::fmt::Debug for RestPush {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestPush")
            .field("url", &self.config.url)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Started {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    approved: Option<bool>,
}

#[derive(Deserialize)]
struct Status {
    status: String,
}

/// One HTTP request's time limit (the push itself may wait much longer).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

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

fn unreachable(e: reqwest::Error) -> PiError {
    PiError::Unreachable(e.without_url().to_string())
}

impl RestPush {
    pub fn new(config: RestPushConfig) -> Result<RestPush, String> {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT.min(config.wait))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(RestPush { config, http })
    }

    async fn json<T: serde::de::DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
        slots: &Semaphore,
    ) -> Result<T, PiError> {
        // A slot per HTTP request, not per push: pending pushes hold nothing but a timer.
        let _permit = slots
            .acquire()
            .await
            .map_err(|_| PiError::Unreachable("stopping".into()))?;
        let resp = req.send().await.map_err(unreachable)?;
        let status = resp.status();
        if !status.is_success() {
            return Err(PiError::Http(status.as_u16()));
        }
        let body = resp.bytes().await.map_err(unreachable)?;
        serde_json::from_slice(&body).map_err(|e| PiError::Protocol(e.to_string()))
    }

    /// Sends one push and waits (polling) for the user's decision, at most `wait`.
    pub async fn push(
        &self,
        user: &str,
        client: &str,
        slots: &Semaphore,
    ) -> Result<PiAnswer, PiError> {
        let deadline = tokio::time::Instant::now() + self.config.wait;
        let post = self
            .http
            .post(&self.config.url)
            .json(&serde_json::json!({ "user": user, "client": client }));
        // Boxed: the HTTP futures live only while a request runs, so a pending push's task is
        // not sized for them while it sleeps.
        let started: Started = Box::pin(self.json(post, slots)).await?;
        let id = match (started.approved, started.id) {
            (Some(true), _) => return Ok(PiAnswer::Accept),
            (Some(false), _) => return Ok(denied()),
            (None, Some(id)) if !id.is_empty() && id.len() <= 256 => id,
            _ => return Err(PiError::Protocol("neither id nor approved".into())),
        };
        let status_url = format!(
            "{}/{}",
            self.config.url.trim_end_matches('/'),
            // An opaque id from the service, kept to URL-safe characters.
            id.replace(
                |c: char| !(c.is_ascii_alphanumeric() || "-_.~".contains(c)),
                ""
            )
        );
        loop {
            let next = tokio::time::Instant::now() + self.config.poll_interval;
            if next >= deadline {
                tokio::time::sleep_until(deadline).await;
                return Ok(not_answered());
            }
            tokio::time::sleep_until(next).await;
            let s: Status = Box::pin(self.json(self.http.get(&status_url), slots)).await?;
            match s.status.as_str() {
                "pending" => continue,
                "approved" => return Ok(PiAnswer::Accept),
                "denied" => return Ok(denied()),
                other => return Err(PiError::Protocol(format!("push status {other:?}"))),
            }
        }
    }
}
