//! Generic REST push: `POST {url}` with `{"user": …, "client": …}`; the service notifies the
//! user and answers `{"approved": true}` or `{"approved": false}` once they decided (a long
//! poll, held up to `wait`). Answers share privacyIDEA's types: approved → `Accept`.

use serde::Deserialize;

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
struct Answer {
    approved: bool,
}

fn not_answered() -> PiAnswer {
    PiAnswer::Reject {
        message: "push not answered in time".into(),
    }
}

impl RestPush {
    pub fn new(config: RestPushConfig) -> Result<RestPush, String> {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(config.wait)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(RestPush { config, http })
    }

    pub fn wait(&self) -> std::time::Duration {
        self.config.wait
    }

    /// Sends one push and waits for the user's decision.
    pub async fn push(&self, user: &str, client: &str) -> Result<PiAnswer, PiError> {
        let resp = self
            .http
            .post(&self.config.url)
            .json(&serde_json::json!({ "user": user, "client": client }))
            .send()
            .await;
        let resp = match resp {
            Ok(r) => r,
            // Held for the whole wait: the user did not answer. A denial, never "unreachable"
            // (which a fail-safe policy would turn into an accept).
            Err(e) if e.is_timeout() => return Ok(not_answered()),
            Err(e) => return Err(PiError::Unreachable(e.without_url().to_string())),
        };
        let status = resp.status();
        if !status.is_success() {
            return Err(PiError::Http(status.as_u16()));
        }
        let body = match resp.bytes().await {
            Ok(b) => b,
            Err(e) if e.is_timeout() => return Ok(not_answered()),
            Err(e) => return Err(PiError::Unreachable(e.without_url().to_string())),
        };
        let a: Answer =
            serde_json::from_slice(&body).map_err(|e| PiError::Protocol(e.to_string()))?;
        Ok(if a.approved {
            PiAnswer::Accept
        } else {
            PiAnswer::Reject {
                message: "push denied".into(),
            }
        })
    }
}
