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
//! **Status**: `[mfa] provider = "privacyidea"` sends the code typed after radshard's own
//! Access-Challenge as `pass` without a `transaction_id` (works with privacyIDEA's
//! `otppin = none` policy or PIN+code typed by the user). Triggering privacyIDEA's challenge at
//! primary authentication (step 1, for PIN-protected challenge-response tokens and push) is not
//! wired yet. Tested against a test double speaking privacyIDEA 3.x's JSON, not a real server.
//!
//! reqwest runs on rustls with the aws-lc-rs provider, as ldap3 does (one provider per process).

use std::time::Duration;

use serde::Deserialize;

/// Where privacyIDEA is and how to ask it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivacyIdeaConfig {
    /// Base URL, e.g. `https://pi.example.org` (the API paths are appended).
    pub url: String,
    /// The realm sent with every check; empty: privacyIDEA's default realm.
    pub realm: String,
    /// Per HTTP request.
    pub timeout: Duration,
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

#[derive(Deserialize)]
struct ErrorPart {
    #[serde(default)]
    code: i64,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize, Default)]
struct Detail {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    transaction_id: Option<String>,
}

/// Parses a `/validate/check` body.
pub fn parse_check(body: &[u8]) -> Result<PiAnswer, PiError> {
    let r: Response = serde_json::from_slice(body).map_err(|e| PiError::Protocol(e.to_string()))?;
    if !r.result.status {
        let e = r.result.error.unwrap_or(ErrorPart {
            code: 0,
            message: String::new(),
        });
        return Err(PiError::Server {
            code: e.code,
            message: e.message,
        });
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
        Ok(PrivacyIdea { config, http })
    }

    /// `POST /validate/check`. `pass` is the PIN, the code, or PIN+code; never logged.
    pub async fn check(
        &self,
        user: &str,
        pass: &str,
        transaction_id: Option<&str>,
    ) -> Result<PiAnswer, PiError> {
        let url = format!("{}/validate/check", self.config.url.trim_end_matches('/'));
        let mut form: Vec<(&str, &str)> = vec![
            ("user", user),
            ("realm", &self.config.realm),
            ("pass", pass),
        ];
        if let Some(t) = transaction_id {
            form.push(("transaction_id", t));
        }
        let resp = self
            .http
            .post(&url)
            .form(&form)
            .send()
            .await
            .map_err(|e| PiError::Unreachable(e.without_url().to_string()))?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| PiError::Unreachable(e.without_url().to_string()))?;
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

    /// A one-thread HTTP/1.1 server: for each request records the form and answers like
    /// privacyIDEA with an HOTP token (PIN 1234, next code 755224).
    type Seen = Arc<Mutex<Vec<HashMap<String, String>>>>;

    fn test_double() -> (String, Seen) {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", l.local_addr().expect("addr"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(mut conn) = conn else { return };
                let mut r = BufReader::new(conn.try_clone().expect("clone"));
                let mut line = String::new();
                let mut len = 0usize;
                let mut path = String::new();
                loop {
                    line.clear();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    if path.is_empty() {
                        path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                    }
                    let lower = line.to_ascii_lowercase();
                    if let Some(v) = lower.strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                    if line == "\r\n" {
                        break;
                    }
                }
                let mut body = vec![0u8; len];
                let _ = r.read_exact(&mut body);
                let form = form_decode(&String::from_utf8_lossy(&body));
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
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                    answer.len()
                );
            }
        });
        (url, seen)
    }

    #[test]
    fn challenge_then_code_against_the_test_double() {
        let (url, seen) = test_double();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let pi = PrivacyIdea::new(PrivacyIdeaConfig {
            url: url.clone(),
            realm: "ldaprealm".into(),
            timeout: Duration::from_secs(5),
        })
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
        let dead = PrivacyIdea::new(PrivacyIdeaConfig {
            url: "http://127.0.0.1:1".into(),
            realm: String::new(),
            timeout: Duration::from_secs(2),
        })
        .expect("client");
        let r = rt.block_on(dead.check("alice", "1234", None));
        assert!(matches!(r, Err(PiError::Unreachable(_))), "{r:?}");
    }
}
