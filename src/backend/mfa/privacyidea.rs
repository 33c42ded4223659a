//! privacyIDEA client: `POST /validate/check` (form: `user`, `realm`, `pass`, and
//! `transaction_id` when answering a challenge), the flow privacyIDEA's own RADIUS and
//! credential-provider plugins use:
//!
//! 1. `pass` = the token PIN (or nothing, per the server's `otppin`/challenge-response
//!    policies) → `result.authentication = "CHALLENGE"` with `detail.transaction_id`;
//! 2. `pass` = the one-time code with that `transaction_id` → `"ACCEPT"` / `"REJECT"`.
//!
//! A plain `/validate/check` with `pass` = PIN+OTP (no challenge) answers ACCEPT/REJECT at once.
//!
//! **Status**: without a service account, `[mfa] provider = "privacyidea"` sends the code typed
//! after radshard's own Access-Challenge as `pass` without a `transaction_id` (PIN+code, or
//! the code alone with privacyIDEA's `otppin = none` policy). With `service_user` and
//! `service_password`, step 1 is `POST /validate/triggerchallenge` (admin JWT from `POST /auth`,
//! cached): a code token's `transaction_id` is checked with the code (no PIN); a push token is
//! polled with `GET /validate/polltransaction` and finalized with `/validate/check`
//! (`pass` empty + `transaction_id`). Tested against a real privacyIDEA 3.14
//! (`tests/mfa_privacyidea_trigger.rs`) and the wire-format samples below.
//!
//! reqwest runs on rustls with the aws-lc-rs provider, as ldap3 does (one provider per process).

use std::time::Duration;

use serde::Deserialize;

/// Where privacyIDEA is and how to ask it.
#[derive(Clone, PartialEq, Eq)]
pub struct PrivacyIdeaConfig {
    /// Base URL, e.g. `https://pi.example.org` (the API paths are appended).
    pub url: String,
    /// The realm sent with every check; empty: privacyIDEA's default realm.
    pub realm: String,
    /// Per HTTP request.
    pub timeout: Duration,
    /// The admin account radshard triggers challenges with (`/validate/triggerchallenge`
    /// needs an admin JWT). None: radshard issues its own challenge and sends PIN+code.
    pub service: Option<ServiceAccount>,
    /// How long a request is held for a push token's answer.
    pub push_wait: Duration,
    /// How often `/validate/polltransaction` is asked during a push.
    pub poll_interval: Duration,
    /// A user with both a push token and a code token: hold for the push (true) or challenge
    /// for the code (false).
    pub prefer_push: bool,
}

/// Credentials of privacyIDEA's service account; the password never appears in Debug output.
#[derive(Clone, PartialEq, Eq)]
pub struct ServiceAccount {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl std::fmt::Debug for PrivacyIdeaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrivacyIdeaConfig")
            .field("url", &self.url)
            .field("realm", &self.realm)
            .field("timeout", &self.timeout)
            .field("service", &self.service)
            .field("push_wait", &self.push_wait)
            .field("poll_interval", &self.poll_interval)
            .field("prefer_push", &self.prefer_push)
            .finish()
    }
}

impl PrivacyIdeaConfig {
    /// A config with the defaults for everything but where privacyIDEA is.
    pub fn new(url: &str, realm: &str, timeout: Duration) -> PrivacyIdeaConfig {
        PrivacyIdeaConfig {
            url: url.to_string(),
            realm: realm.to_string(),
            timeout,
            service: None,
            push_wait: Duration::from_secs(60),
            poll_interval: Duration::from_secs(1),
            prefer_push: true,
        }
    }
}

/// What `/validate/triggerchallenge` started for a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Triggered {
    /// A code token (HOTP, TOTP, SMS, email…): the user types the code, which is checked with
    /// this transaction id.
    Otp {
        transaction_id: String,
        message: String,
    },
    /// A push token: privacyIDEA sent a push; poll this transaction id.
    Push { transaction_id: String },
    /// No challenge-capable token.
    NoToken,
}

/// What `/validate/polltransaction` says of a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollStatus {
    Accepted,
    /// Declined ("not me") or cancelled on the phone.
    Refused,
    Pending,
}

/// What privacyIDEA decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PiAnswer {
    Accept,
    Reject {
        message: String,
    },
    /// A challenge was triggered: answer it with the code and this transaction id.
    Challenge {
        transaction_id: String,
        message: String,
    },
    /// The user has no token (privacyIDEA rejects; the caller applies `unenrolled`).
    NoToken,
    /// The provider waives the second factor for this user (Duo preauth `allow`).
    Bypass,
    /// The provider refuses this user outright (Duo preauth `deny`).
    Refused,
}

/// The provider (privacyIDEA, or any HTTP provider sharing these types) could not be asked,
/// or did not answer sensibly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PiError {
    #[error("MFA provider unreachable: {0}")]
    Unreachable(String),
    #[error("MFA provider answered HTTP {0}")]
    Http(u16),
    #[error("privacyIDEA error {code}: {message}")]
    Server { code: i64, message: String },
    #[error("unexpected MFA provider response: {0}")]
    Protocol(String),
}

#[derive(Deserialize)]
struct Response {
    result: ResultPart,
    #[serde(default)]
    detail: Option<Detail>,
}

#[derive(Deserialize)]
struct ResultPart {
    status: bool,
    #[serde(default)]
    value: Option<bool>,
    /// "ACCEPT", "REJECT", "CHALLENGE" (privacyIDEA ≥ 3.8); older ones only have `value`.
    #[serde(default)]
    authentication: Option<String>,
    #[serde(default)]
    error: Option<ErrorPart>,
}

#[derive(Deserialize, Default)]
struct ErrorPart {
    #[serde(default)]
    code: i64,
    #[serde(default)]
    message: String,
}

/// A privacyIDEA body, parsed as `T`.
fn json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, PiError> {
    serde_json::from_slice(body).map_err(|e| PiError::Protocol(e.to_string()))
}

/// The error privacyIDEA reported with `result.status` false (code 0 if it sent none).
fn refused(error: Option<ErrorPart>) -> PiError {
    let e = error.unwrap_or_default();
    PiError::Server {
        code: e.code,
        message: e.message,
    }
}

#[derive(Deserialize, Default)]
struct Detail {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    transaction_id: Option<String>,
}

#[derive(Deserialize)]
struct TriggerResponse {
    result: TriggerResult,
    #[serde(default)]
    detail: Option<TriggerDetail>,
}

#[derive(Deserialize)]
struct TriggerResult {
    status: bool,
    #[serde(default)]
    error: Option<ErrorPart>,
}

#[derive(Deserialize, Default)]
struct TriggerDetail {
    #[serde(default)]
    multi_challenge: Vec<OneChallenge>,
}

#[derive(Deserialize)]
struct OneChallenge {
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    transaction_id: String,
    #[serde(default)]
    message: String,
}

/// Parses a `/validate/triggerchallenge` body. Its `result.value` is the number of challenges
/// (not a bool as in `/validate/check`), so only `detail.multi_challenge` is relied on: one
/// entry per token challenged, all sharing one transaction id.
pub fn parse_trigger(body: &[u8], prefer_push: bool) -> Result<Triggered, PiError> {
    let r: TriggerResponse = json(body)?;
    if !r.result.status {
        return Err(refused(r.result.error));
    }
    let all = r.detail.unwrap_or_default().multi_challenge;
    let usable = |c: &&OneChallenge| !c.transaction_id.is_empty();
    let push = all.iter().filter(usable).find(|c| c.kind == "push");
    let code = all.iter().filter(usable).find(|c| c.kind != "push");
    let chosen = match (push, code) {
        (Some(p), Some(_)) if prefer_push => Some(p),
        (_, Some(c)) => Some(c),
        (Some(p), None) => Some(p),
        (None, None) => None,
    };
    Ok(match chosen {
        None => Triggered::NoToken,
        Some(c) if c.kind == "push" => Triggered::Push {
            transaction_id: c.transaction_id.clone(),
        },
        Some(c) => Triggered::Otp {
            transaction_id: c.transaction_id.clone(),
            message: c.message.clone(),
        },
    })
}

#[derive(Deserialize)]
struct PollResponse {
    result: ResultPart,
    #[serde(default)]
    detail: Option<PollDetail>,
}

#[derive(Deserialize, Default)]
struct PollDetail {
    #[serde(default)]
    challenge_status: Option<String>,
}

/// Parses a `/validate/polltransaction` body: `result.value` true once the push was approved;
/// `detail.challenge_status` "declined"/"cancelled" once refused (privacyIDEA ≥ 3.8).
pub fn parse_poll(body: &[u8]) -> Result<PollStatus, PiError> {
    let r: PollResponse = json(body)?;
    if !r.result.status {
        return Err(refused(r.result.error));
    }
    if r.result.value == Some(true) {
        return Ok(PollStatus::Accepted);
    }
    let status = r.detail.unwrap_or_default().challenge_status;
    Ok(match status.as_deref() {
        Some("declined") | Some("cancelled") => PollStatus::Refused,
        _ => PollStatus::Pending,
    })
}

/// Parses a `/validate/check` body.
pub fn parse_check(body: &[u8]) -> Result<PiAnswer, PiError> {
    let r: Response = json(body)?;
    if !r.result.status {
        return Err(refused(r.result.error));
    }
    let detail = r.detail.unwrap_or_default();
    let message = detail.message.unwrap_or_default();
    let auth = r.result.authentication.as_deref();
    let value = r.result.value.unwrap_or(false);
    if value || auth == Some("ACCEPT") {
        // Both must agree when both are present.
        return if value && auth.map_or(true, |a| a == "ACCEPT") {
            Ok(PiAnswer::Accept)
        } else {
            Err(PiError::Protocol(
                "value and authentication disagree".into(),
            ))
        };
    }
    if let Some(tid) = detail.transaction_id.filter(|t| !t.is_empty()) {
        if auth.map_or(true, |a| a == "CHALLENGE") {
            return Ok(PiAnswer::Challenge {
                transaction_id: tid,
                message,
            });
        }
    }
    if message.contains("has no tokens assigned") {
        return Ok(PiAnswer::NoToken);
    }
    Ok(PiAnswer::Reject { message })
}

pub struct PrivacyIdea {
    config: PrivacyIdeaConfig,
    http: reqwest::Client,
    /// The service account's JWT and when it was fetched; never logged.
    token: std::sync::Mutex<Option<(String, std::time::Instant)>>,
}

/// A service JWT older than this is fetched again before use (privacyIDEA's default validity
/// is an hour; a 401 also refreshes it).
const TOKEN_MAX_AGE: Duration = Duration::from_secs(600);

#[derive(Deserialize)]
struct AuthResponse {
    result: AuthResult,
}

#[derive(Deserialize)]
struct AuthResult {
    status: bool,
    #[serde(default)]
    value: Option<AuthValue>,
}

#[derive(Deserialize)]
struct AuthValue {
    token: String,
}

/// Sends one request and reads the whole answer; the URL is left out of errors (it may carry
/// a transaction id).
async fn send(req: reqwest::RequestBuilder) -> Result<(reqwest::StatusCode, Vec<u8>), PiError> {
    let unreachable = |e: reqwest::Error| PiError::Unreachable(e.without_url().to_string());
    let resp = req.send().await.map_err(unreachable)?;
    let status = resp.status();
    let body = resp.bytes().await.map_err(unreachable)?;
    Ok((status, body.to_vec()))
}

/// One of the provider's request slots (closed only when the store stops).
async fn slot(slots: &tokio::sync::Semaphore) -> Result<tokio::sync::SemaphorePermit<'_>, PiError> {
    slots
        .acquire()
        .await
        .map_err(|_| PiError::Unreachable("stopping".into()))
}

impl std::fmt::Debug for PrivacyIdea {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrivacyIdea")
            .field("url", &self.config.url)
            .finish_non_exhaustive()
    }
}

impl PrivacyIdea {
    pub fn new(config: PrivacyIdeaConfig) -> Result<PrivacyIdea, String> {
        // Same provider as ldap3: the process default, installed before any TLS config is built.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(PrivacyIdea {
            config,
            http,
            token: std::sync::Mutex::new(None),
        })
    }

    pub fn config(&self) -> &PrivacyIdeaConfig {
        &self.config
    }

    fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.config.url.trim_end_matches('/'))
    }

    /// The service account's JWT: cached, fetched with `POST /auth` when missing, old, or
    /// `fresh` (the cached one was refused).
    async fn service_token(&self, fresh: bool) -> Result<String, PiError> {
        let Some(account) = &self.config.service else {
            return Err(PiError::Protocol("no service account configured".into()));
        };
        if !fresh {
            let cached = self.token.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((t, at)) = cached.as_ref() {
                if at.elapsed() < TOKEN_MAX_AGE {
                    return Ok(t.clone());
                }
            }
        }
        let form = [
            ("username", account.user.as_str()),
            ("password", account.password.as_str()),
        ];
        let (status, body) = self.post(&self.endpoint("/auth"), &form, None).await?;
        // A refused service account is reported as an HTTP error, not a privacyIDEA verdict
        // on the user: it leads to `on_unreachable`, never to `unenrolled`.
        if !status.is_success() {
            return Err(PiError::Http(status.as_u16()));
        }
        let r: AuthResponse = serde_json::from_slice(&body)
            .map_err(|_| PiError::Protocol("unreadable /auth answer".into()))?;
        match (r.result.status, r.result.value) {
            (true, Some(v)) if !v.token.is_empty() => {
                *self.token.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some((v.token.clone(), std::time::Instant::now()));
                Ok(v.token)
            }
            _ => Err(PiError::Protocol("/auth answered without a token".into())),
        }
    }

    async fn post(
        &self,
        url: &str,
        form: &[(&str, &str)],
        authorization: Option<&str>,
    ) -> Result<(reqwest::StatusCode, Vec<u8>), PiError> {
        let mut req = self.http.post(url).form(form);
        if let Some(a) = authorization {
            req = req.header(reqwest::header::AUTHORIZATION, a);
        }
        send(req).await
    }

    /// `POST /validate/triggerchallenge` for `user` with the service account; a refused
    /// (expired) JWT is fetched again once.
    pub async fn trigger(&self, user: &str) -> Result<Triggered, PiError> {
        let url = self.endpoint("/validate/triggerchallenge");
        let form = [("user", user), ("realm", self.config.realm.as_str())];
        let mut fresh = false;
        loop {
            let token = self.service_token(fresh).await?;
            let (status, body) = self.post(&url, &form, Some(&token)).await?;
            if status == reqwest::StatusCode::UNAUTHORIZED && !fresh {
                fresh = true;
                continue;
            }
            return match parse_trigger(&body, self.config.prefer_push) {
                Ok(t) if status.is_success() => Ok(t),
                // The user is not in the realm (ERR904): the caller applies `unenrolled`.
                Err(e @ PiError::Server { code: 904, .. }) => Err(e),
                // Anything else refused (service account without the right, still 401, …) is
                // privacyIDEA not answering the question: `on_unreachable`, never `unenrolled`.
                Err(e) if status.is_success() => Err(e),
                _ => Err(PiError::Http(status.as_u16())),
            };
        }
    }

    /// `GET /validate/polltransaction` (anonymous).
    pub async fn poll(&self, transaction_id: &str) -> Result<PollStatus, PiError> {
        // privacyIDEA's transaction ids are digits; anything else is not put in a URL.
        if transaction_id.is_empty() || !transaction_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(PiError::Protocol("unexpected transaction id".into()));
        }
        let url = self.endpoint(&format!(
            "/validate/polltransaction?transaction_id={transaction_id}"
        ));
        let (status, body) = send(self.http.get(url)).await?;
        match parse_poll(&body) {
            Ok(p) if status.is_success() => Ok(p),
            Ok(_) => Err(PiError::Http(status.as_u16())),
            Err(PiError::Protocol(_)) if !status.is_success() => {
                Err(PiError::Http(status.as_u16()))
            }
            Err(e) => Err(e),
        }
    }

    /// Triggers the user's challenge; for a push, waits for the phone's answer (polling at
    /// most `push_wait`) and finalizes it with `/validate/check` pass="" + transaction id.
    /// Answers `Challenge` for a code token, `Accept`/`Reject` for a push, `NoToken`.
    /// Each HTTP request takes one of `slots`; none is held between polls.
    pub async fn trigger_flow(
        &self,
        user: &str,
        slots: &tokio::sync::Semaphore,
    ) -> Result<PiAnswer, PiError> {
        let permit = slot(slots).await?;
        let triggered = self.trigger(user).await?;
        drop(permit);
        let transaction_id = match triggered {
            Triggered::NoToken => return Ok(PiAnswer::NoToken),
            Triggered::Otp {
                transaction_id,
                message,
            } => {
                return Ok(PiAnswer::Challenge {
                    transaction_id,
                    message,
                })
            }
            Triggered::Push { transaction_id } => transaction_id,
        };
        let until = tokio::time::Instant::now() + self.config.push_wait;
        loop {
            tokio::time::sleep(self.config.poll_interval).await;
            if tokio::time::Instant::now() >= until {
                return Ok(PiAnswer::Reject {
                    message: "push not answered in time".into(),
                });
            }
            let status = {
                let _permit = slot(slots).await?;
                self.poll(&transaction_id).await
            };
            match status {
                Ok(PollStatus::Pending) => continue,
                Ok(PollStatus::Refused) => {
                    return Ok(PiAnswer::Reject {
                        message: "push declined".into(),
                    })
                }
                Ok(PollStatus::Accepted) => break,
                // A poll lost on the way is asked again at the next interval; the wait bounds it.
                Err(PiError::Unreachable(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        let _permit = slot(slots).await?;
        // Approved on the phone: the documented way to get the final answer is a check with
        // an empty pass and the transaction id.
        self.check(user, "", Some(&transaction_id)).await
    }

    /// `POST /validate/check`. `pass` is the PIN, the code, or PIN+code; never logged.
    pub async fn check(
        &self,
        user: &str,
        pass: &str,
        transaction_id: Option<&str>,
    ) -> Result<PiAnswer, PiError> {
        let url = self.endpoint("/validate/check");
        let mut form: Vec<(&str, &str)> = vec![
            ("user", user),
            ("realm", &self.config.realm),
            ("pass", pass),
        ];
        if let Some(t) = transaction_id {
            form.push(("transaction_id", t));
        }
        let (status, body) = self.post(&url, &form, None).await?;
        // privacyIDEA answers errors (unknown user, …) with a JSON error body and a 4xx status:
        // that error is the better report.
        match parse_check(&body) {
            Ok(a) if status.is_success() => Ok(a),
            Ok(_) => Err(PiError::Http(status.as_u16())),
            Err(PiError::Protocol(_)) if !status.is_success() => {
                Err(PiError::Http(status.as_u16()))
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    //! The test double below speaks privacyIDEA 3.x's `/validate/check` wire format: form-encoded
    //! POST in; JSON out with `result.{status,value,authentication,error}` and
    //! `detail.{message,transaction_id,multi_challenge,serial,type}`, as the real server sends
    //! (samples from privacyIDEA 3.14 with an HOTP token, challenge-response enabled for hotp,
    //! PIN 1234, RFC 4226 key "12345678901234567890").
    use super::*;
    use std::collections::HashMap;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};

    const CHALLENGE: &str = r#"{"detail":{"attributes":null,"message":"please enter otp: ","messages":["please enter otp: "],"multi_challenge":[{"attributes":null,"client_mode":"interactive","message":"please enter otp: ","serial":"HOTP-ALICE","transaction_id":"02659936574063359702","type":"hotp"}],"serial":"HOTP-ALICE","threadid":140236470531840,"transaction_id":"02659936574063359702","transaction_ids":["02659936574063359702"],"type":"hotp"},"id":2,"jsonrpc":"2.0","result":{"authentication":"CHALLENGE","status":true,"value":false},"time":1764129000.59,"version":"privacyIDEA 3.14","signature":"rsa_sha256_pss:00"}"#;
    const ACCEPT: &str = r#"{"detail":{"message":"Found matching challenge","serial":"HOTP-ALICE","threadid":140236470531840,"type":"hotp"},"id":2,"jsonrpc":"2.0","result":{"authentication":"ACCEPT","status":true,"value":true},"time":1764129001.2,"version":"privacyIDEA 3.14","signature":"rsa_sha256_pss:00"}"#;
    const REJECT: &str = r#"{"detail":{"message":"Response did not match the challenge.","threadid":140236470531840},"id":2,"jsonrpc":"2.0","result":{"authentication":"REJECT","status":true,"value":false},"time":1764129001.2,"version":"privacyIDEA 3.14","signature":"rsa_sha256_pss:00"}"#;
    const NO_TOKEN: &str = r#"{"detail":{"message":"The user has no tokens assigned","threadid":1},"id":2,"jsonrpc":"2.0","result":{"authentication":"REJECT","status":true,"value":false},"version":"privacyIDEA 3.14"}"#;
    const NO_USER: &str = r#"{"detail":null,"id":2,"jsonrpc":"2.0","result":{"error":{"code":904,"message":"ERR904: The user can not be found in any resolver in this realm!"},"status":false},"version":"privacyIDEA 3.14"}"#;

    #[test]
    fn parses_the_wire_format() {
        assert_eq!(
            parse_check(CHALLENGE.as_bytes()),
            Ok(PiAnswer::Challenge {
                transaction_id: "02659936574063359702".into(),
                message: "please enter otp: ".into()
            })
        );
        assert_eq!(parse_check(ACCEPT.as_bytes()), Ok(PiAnswer::Accept));
        assert_eq!(
            parse_check(REJECT.as_bytes()),
            Ok(PiAnswer::Reject {
                message: "Response did not match the challenge.".into()
            })
        );
        assert_eq!(parse_check(NO_TOKEN.as_bytes()), Ok(PiAnswer::NoToken));
        assert!(matches!(
            parse_check(NO_USER.as_bytes()),
            Err(PiError::Server { code: 904, .. })
        ));
        // Pre-3.8 servers: no `authentication`, `value` decides.
        assert_eq!(
            parse_check(br#"{"result":{"status":true,"value":true}}"#),
            Ok(PiAnswer::Accept)
        );
        assert!(matches!(parse_check(b"<html>"), Err(PiError::Protocol(_))));
        assert!(matches!(
            parse_check(br#"{"result":{"status":true,"value":true,"authentication":"REJECT"}}"#),
            Err(PiError::Protocol(_))
        ));
    }

    // Answers of a real privacyIDEA 3.14 to /validate/triggerchallenge and
    // /validate/polltransaction (signatures and thread ids shortened).
    const TRIGGER_HOTP: &str = r#"{"detail": {"client_mode": "interactive", "message": "please enter otp: ", "messages": ["please enter otp: "], "multi_challenge": [{"client_mode": "interactive", "message": "please enter otp: ", "serial": "HOTP-DAVE", "transaction_id": "06677557847498088431", "type": "hotp"}], "preferred_client_mode": "interactive", "serial": "HOTP-DAVE", "threadid": 1, "transaction_id": "06677557847498088431", "transaction_ids": ["06677557847498088431"], "type": "hotp"}, "id": 2, "jsonrpc": "2.0", "result": {"authentication": "CHALLENGE", "status": true, "value": 1}, "signature": "rsa_sha256_pss:7d", "time": 1795668844.8, "version": "privacyIDEA 3.14", "versionnumber": "3.14"}"#;
    const TRIGGER_NONE: &str = r#"{"detail": {"messages": [], "multi_challenge": [], "threadid": 1, "transaction_ids": []}, "id": 2, "jsonrpc": "2.0", "result": {"authentication": "REJECT", "status": true, "value": 0}, "signature": "rsa_sha256_pss:a1", "version": "privacyIDEA 3.14"}"#;
    const TRIGGER_BOTH: &str = r#"{"detail": {"multi_challenge": [{"client_mode": "interactive", "message": "please enter otp: ", "serial": "HOTP-ALICE", "transaction_id": "16823296317733266301", "type": "hotp"}, {"attributes": {"hideResponseInput": true}, "client_mode": "poll", "message": "Please confirm the authentication on your mobile device!", "serial": "PUSH-ALICE", "transaction_id": "16823296317733266301", "type": "push"}], "transaction_id": "16823296317733266301"}, "id": 2, "jsonrpc": "2.0", "result": {"authentication": "CHALLENGE", "status": true, "value": 2}, "version": "privacyIDEA 3.14"}"#;
    const NOT_ADMIN: &str = r#"{"detail": {}, "id": 1, "jsonrpc": "2.0", "result": {"error": {"code": 4033, "message": "Authentication failure. Missing Authorization header."}, "status": false}, "version": "privacyIDEA 3.14"}"#;
    const POLL_PENDING: &str = r#"{"detail": {"challenge_status": "pending", "threadid": 1}, "id": 2, "jsonrpc": "2.0", "result": {"status": true, "value": false}, "version": "privacyIDEA 3.14"}"#;
    const POLL_ACCEPT: &str = r#"{"detail": {"challenge_status": "accept", "threadid": 1}, "id": 2, "jsonrpc": "2.0", "result": {"status": true, "value": true}, "version": "privacyIDEA 3.14"}"#;
    const POLL_DECLINED: &str = r#"{"detail": {"challenge_status": "declined", "threadid": 1}, "id": 2, "jsonrpc": "2.0", "result": {"status": true, "value": false}, "version": "privacyIDEA 3.14"}"#;

    #[test]
    fn parses_trigger_and_poll() {
        assert_eq!(
            parse_trigger(TRIGGER_HOTP.as_bytes(), true),
            Ok(Triggered::Otp {
                transaction_id: "06677557847498088431".into(),
                message: "please enter otp: ".into()
            })
        );
        assert_eq!(
            parse_trigger(TRIGGER_NONE.as_bytes(), true),
            Ok(Triggered::NoToken)
        );
        assert_eq!(
            parse_trigger(TRIGGER_BOTH.as_bytes(), true),
            Ok(Triggered::Push {
                transaction_id: "16823296317733266301".into()
            })
        );
        assert!(matches!(
            parse_trigger(TRIGGER_BOTH.as_bytes(), false),
            Ok(Triggered::Otp { .. })
        ));
        assert!(matches!(
            parse_trigger(NOT_ADMIN.as_bytes(), true),
            Err(PiError::Server { code: 4033, .. })
        ));
        assert!(matches!(
            parse_trigger(b"<html>", true),
            Err(PiError::Protocol(_))
        ));
        assert_eq!(parse_poll(POLL_PENDING.as_bytes()), Ok(PollStatus::Pending));
        assert_eq!(parse_poll(POLL_ACCEPT.as_bytes()), Ok(PollStatus::Accepted));
        assert_eq!(
            parse_poll(POLL_DECLINED.as_bytes()),
            Ok(PollStatus::Refused)
        );
    }

    #[test]
    fn service_password_is_redacted() {
        let mut c = PrivacyIdeaConfig::new("https://pi", "r", Duration::from_secs(1));
        c.service = Some(ServiceAccount {
            user: "svc".into(),
            password: "hunter2-secret".into(),
        });
        let dbg = format!("{c:?}");
        assert!(dbg.contains("svc") && !dbg.contains("hunter2"), "{dbg}");
    }

    fn form_decode(s: &str) -> HashMap<String, String> {
        let dec = |v: &str| {
            let v = v.replace('+', " ");
            let b = v.as_bytes();
            let mut out = Vec::new();
            let mut i = 0;
            while i < b.len() {
                if b[i] == b'%' && i + 2 < b.len() {
                    let h = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("00");
                    out.push(u8::from_str_radix(h, 16).unwrap_or(0));
                    i += 3;
                } else {
                    out.push(b[i]);
                    i += 1;
                }
            }
            String::from_utf8_lossy(&out).into_owned()
        };
        s.split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (dec(k), dec(v)))
            .collect()
    }

    /// A one-thread HTTP/1.1 server on loopback: each request's path, Authorization header
    /// and body go to `answer`, which returns the status line and the JSON body.
    fn http_double(
        mut answer: impl FnMut(&str, &str, &[u8]) -> (&'static str, String) + Send + 'static,
    ) -> String {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", l.local_addr().expect("addr"));
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(mut conn) = conn else { return };
                let mut r = BufReader::new(conn.try_clone().expect("clone"));
                let (mut line, mut len, mut path, mut auth) =
                    (String::new(), 0usize, String::new(), String::new());
                loop {
                    line.clear();
                    if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if path.is_empty() {
                        path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                    }
                    let lower = line.to_ascii_lowercase();
                    if let Some(v) = lower.strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                    if lower.starts_with("authorization:") {
                        auth = line[14..].trim().to_string();
                    }
                }
                let mut body = vec![0u8; len];
                let _ = r.read_exact(&mut body);
                let (status, json) = answer(&path, &auth, &body);
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
                    json.len()
                );
            }
        });
        url
    }

    /// `/validate/check` answered like privacyIDEA with an HOTP token (PIN 1234, next code
    /// 755224); records each request's form.
    type Seen = Arc<Mutex<Vec<HashMap<String, String>>>>;

    fn test_double() -> (String, Seen) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let url = http_double(move |path, _, body| {
            let form = form_decode(&String::from_utf8_lossy(body));
            let (status, answer) = if path != "/validate/check" {
                ("404 NOT FOUND", "{}")
            } else {
                match (
                    form.get("user").map(String::as_str),
                    form.get("pass").map(String::as_str),
                    form.get("transaction_id").map(String::as_str),
                ) {
                    (Some("alice"), Some("1234"), None) => ("200 OK", CHALLENGE),
                    (Some("alice"), Some("755224"), Some("02659936574063359702")) => {
                        ("200 OK", ACCEPT)
                    }
                    (Some("alice"), _, _) => ("200 OK", REJECT),
                    (Some("erin"), _, _) => ("200 OK", NO_TOKEN),
                    _ => ("400 BAD REQUEST", NO_USER),
                }
            };
            log.lock().expect("lock").push(form);
            (status, answer.to_string())
        });
        (url, seen)
    }

    /// A double of `/auth` and `/validate/triggerchallenge`: each `/auth` hands out a new
    /// token (T1, T2, …); only the latest one is accepted (an expired JWT gets privacyIDEA's
    /// 401). Records (path, Authorization) per request.
    type Requests = Arc<Mutex<Vec<(String, String)>>>;

    fn auth_double() -> (String, Requests) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let mut issued = 0;
        let url = http_double(move |path, auth, _| {
            let answer = match path {
                "/auth" => {
                    issued += 1;
                    (
                        "200 OK",
                        format!(
                            r#"{{"result":{{"status":true,"value":{{"token":"T{issued}"}}}}}}"#
                        ),
                    )
                }
                "/validate/triggerchallenge" if auth == format!("T{issued}") => {
                    ("200 OK", TRIGGER_HOTP.to_string())
                }
                _ => ("401 UNAUTHORIZED", NOT_ADMIN.to_string()),
            };
            log.lock()
                .expect("lock")
                .push((path.to_string(), auth.to_string()));
            answer
        });
        (url, seen)
    }

    #[test]
    fn service_token_is_cached_and_refreshed_on_401() {
        let (url, seen) = auth_double();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let mut c = PrivacyIdeaConfig::new(&url, "r", Duration::from_secs(5));
        c.service = Some(ServiceAccount {
            user: "svc".into(),
            password: "pw".into(),
        });
        let pi = PrivacyIdea::new(c).expect("client");
        let otp = || {
            Ok(Triggered::Otp {
                transaction_id: "06677557847498088431".into(),
                message: "please enter otp: ".into(),
            })
        };
        rt.block_on(async {
            assert_eq!(pi.trigger("alice").await, otp());
            // Cached: no second /auth.
            assert_eq!(pi.trigger("alice").await, otp());
            // privacyIDEA no longer takes T1 (as after its expiry): one 401, a fresh token.
            pi.token
                .lock()
                .expect("lock")
                .replace(("T0".into(), std::time::Instant::now()));
            assert_eq!(pi.trigger("alice").await, otp());
        });
        let seen = seen.lock().expect("lock");
        let paths: Vec<&str> = seen.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/auth",
                "/validate/triggerchallenge",
                "/validate/triggerchallenge",
                "/validate/triggerchallenge",
                "/auth",
                "/validate/triggerchallenge"
            ]
        );
        assert_eq!(seen[3].1, "T0");
        assert_eq!(seen[5].1, "T2");
    }

    #[test]
    fn challenge_then_code_against_the_test_double() {
        let (url, seen) = test_double();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let pi = PrivacyIdea::new(PrivacyIdeaConfig::new(
            &url,
            "ldaprealm",
            Duration::from_secs(5),
        ))
        .expect("client");
        rt.block_on(async {
            let a = pi.check("alice", "1234", None).await;
            let Ok(PiAnswer::Challenge { transaction_id, .. }) = a else {
                panic!("expected a challenge, got {a:?}");
            };
            assert_eq!(
                pi.check("alice", "755224", Some(&transaction_id)).await,
                Ok(PiAnswer::Accept)
            );
            assert!(matches!(
                pi.check("alice", "000000", Some(&transaction_id)).await,
                Ok(PiAnswer::Reject { .. })
            ));
            assert_eq!(pi.check("erin", "1", None).await, Ok(PiAnswer::NoToken));
            assert!(matches!(
                pi.check("nobody", "1", None).await,
                Err(PiError::Server { code: 904, .. })
            ));
        });
        let seen = seen.lock().expect("lock");
        assert_eq!(seen.len(), 5);
        assert_eq!(seen[0].get("realm").map(String::as_str), Some("ldaprealm"));
        assert_eq!(seen[0].get("transaction_id"), None);
        assert_eq!(
            seen[1].get("transaction_id").map(String::as_str),
            Some("02659936574063359702")
        );

        // Nothing listening: unreachable, reported as such (for fail-secure / fail-safe).
        let dead = PrivacyIdea::new(PrivacyIdeaConfig::new(
            "http://127.0.0.1:1",
            "",
            Duration::from_secs(2),
        ))
        .expect("client");
        let r = rt.block_on(dead.check("alice", "1234", None));
        assert!(matches!(r, Err(PiError::Unreachable(_))), "{r:?}");
    }
}
