//! The CLI's side of the admin API: `radshard sessions`, `radshard disconnect` and
//! `radshard coa` ask a running server through it.
//!
//! The address, TLS and token come from the config's `[admin]`, the same file the server
//! reads: the listen address (an unspecified one, `0.0.0.0`, is reached on loopback), the
//! token from `--token`, `$RADSHARD_ADMIN_TOKEN` or the first plain token of `token_file`.
//! With `[admin.tls]`, the API's certificate must be the configured certificate itself (it is
//! pinned: no CA or name needed), or with `--ca`, chain to that CA and name the server.
//!
//! Exit codes: 0 when everything asked for was done (every NAS acknowledged); 1 when a NAS
//! refused (its Error-Cause is printed), did not answer, or there was no such session; 2
//! when the API could not be asked at all (config, connection, token).

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{aws_lc_rs, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde_json::Value;

use super::tokens::{self, TokenError};
use crate::cli::{ApiArgs, CoaArgs, DisconnectArgs, SessionsArgs};
use crate::config::Config;
use crate::session::SessionView;

/// The environment variable the CLI takes its token from when `--token` is not given.
pub const TOKEN_ENV: &str = "RADSHARD_ADMIN_TOKEN";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longer than the server's connection lifetime would cut a request short anyway.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(130);

/// What is escaped in a path segment: all but RFC 3986's unreserved characters.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Why the API could not be asked. None of them carries the token.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(transparent)]
    Config(#[from] crate::cfg::ConfigError),
    #[error("{0} has no [admin] section: the server serves no admin API")]
    NoAdmin(PathBuf),
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("no token: give --token, set {TOKEN_ENV}, or put a plain token in {}", .0.display())]
    NoToken(PathBuf),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("cannot start the client runtime: {0}")]
    Runtime(std::io::Error),
    #[error("admin API at {url}: {source}")]
    Http {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("admin API answered {status}: {message}")]
    Status { status: u16, message: String },
}

/// A connection to the admin API, with its own current-thread runtime.
pub struct ApiClient {
    http: reqwest::Client,
    base: String,
    token: String,
    rt: tokio::runtime::Runtime,
}

/// What the API answered: its status and JSON body.
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl ApiClient {
    /// Reads the config `args` names and prepares a client for its `[admin]`.
    pub fn from_args(args: &ApiArgs) -> Result<ApiClient, ClientError> {
        let config = Config::load(args.config.config.as_deref())?;
        let admin = config
            .admin
            .as_ref()
            .ok_or_else(|| ClientError::NoAdmin(config.path.clone()))?;
        let token = match (&args.token, std::env::var(TOKEN_ENV)) {
            (Some(t), _) => t.clone(),
            (None, Ok(t)) if !t.trim().is_empty() => t.trim().to_string(),
            _ => tokens::first_plain_token(&admin.token_file)?
                .ok_or_else(|| ClientError::NoToken(admin.token_file.clone()))?,
        };
        let target = reachable(admin.listen);
        let mut builder = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            // The API is on this machine or named by the config: never through a proxy.
            .no_proxy();
        let base = match &admin.tls {
            None => format!("http://{target}"),
            Some(tls) => {
                let certificate = &tls.settings.certificate;
                let (verifier, name): (Arc<dyn ServerCertVerifier>, Option<String>) = match &args.ca
                {
                    None => (Arc::new(Pinned::load(certificate)?), None),
                    Some(ca) => {
                        let name = match &args.server_name {
                            Some(n) => Some(n.clone()),
                            None => first_dns_name(certificate),
                        };
                        (webpki_verifier(ca)?, name)
                    }
                };
                let tls = rustls::ClientConfig::builder_with_provider(provider())
                    .with_safe_default_protocol_versions()
                    .map_err(|e| ClientError::Tls(e.to_string()))?
                    .dangerous()
                    .with_custom_certificate_verifier(verifier)
                    .with_no_client_auth();
                builder = builder.tls_backend_preconfigured(tls);
                match name {
                    // Connect to the listen address but verify (and send SNI for) the name.
                    Some(n) if n.parse::<IpAddr>().is_err() => {
                        builder = builder.resolve(&n, target);
                        format!("https://{n}:{}", target.port())
                    }
                    _ => format!("https://{target}"),
                }
            }
        };
        let http = builder.build().map_err(|source| ClientError::Http {
            url: base.clone(),
            source,
        })?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(ClientError::Runtime)?;
        Ok(ApiClient {
            http,
            base,
            token,
            rt,
        })
    }

    fn send(&self, req: reqwest::RequestBuilder, url: &str) -> Result<Answer, ClientError> {
        let http = |source| ClientError::Http {
            url: url.to_string(),
            source,
        };
        self.rt.block_on(async {
            let resp = req.bearer_auth(&self.token).send().await.map_err(http)?;
            let status = resp.status().as_u16();
            let text = resp.text().await.map_err(http)?;
            let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
            if status == 401 || status >= 500 || (status >= 400 && status != 404) {
                return Err(ClientError::Status {
                    status,
                    message: error_text(&body),
                });
            }
            Ok(Answer { status, body })
        })
    }

    fn url(&self, segments: &[&str]) -> String {
        let mut url = format!("{}/api/v1", self.base);
        for s in segments {
            url.push('/');
            url.extend(percent_encoding::utf8_percent_encode(s, SEGMENT));
        }
        url
    }

    pub fn get(&self, segments: &[&str], query: &[(&str, String)]) -> Result<Answer, ClientError> {
        let mut url = self.url(segments);
        if !query.is_empty() {
            // Serialising string pairs cannot fail.
            let q = serde_urlencoded::to_string(query).unwrap_or_default();
            url.push('?');
            url.push_str(&q);
        }
        self.send(self.http.get(&url), &url)
    }

    pub fn post(&self, segments: &[&str], body: Option<Value>) -> Result<Answer, ClientError> {
        let url = self.url(segments);
        let req = self.http.post(&url);
        let req = match body {
            Some(b) => req.json(&b),
            None => req,
        };
        self.send(req, &url)
    }
}

/// An unspecified listen address is reached on the loopback of its family.
fn reachable(listen: SocketAddr) -> SocketAddr {
    match listen.ip() {
        IpAddr::V4(a) if a.is_unspecified() => (Ipv4Addr::LOCALHOST, listen.port()).into(),
        IpAddr::V6(a) if a.is_unspecified() => (Ipv6Addr::LOCALHOST, listen.port()).into(),
        _ => listen,
    }
}

fn error_text(body: &Value) -> String {
    match body.get("error").and_then(Value::as_str) {
        Some(e) => e.to_string(),
        None => body.to_string(),
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(aws_lc_rs::default_provider())
}

/// Accepts exactly the configured certificate (its leaf): the CLI reads the same config as the
/// server, so it knows which certificate the API must present, without a CA or a name.
#[derive(Debug)]
struct Pinned {
    leaf: CertificateDer<'static>,
    provider: Arc<CryptoProvider>,
}

impl Pinned {
    fn load(path: &Path) -> Result<Pinned, ClientError> {
        let leaf = CertificateDer::pem_file_iter(path)
            .map_err(|e| ClientError::Tls(format!("cannot read {}: {e}", path.display())))?
            .next()
            .ok_or_else(|| ClientError::Tls(format!("no certificate in {}", path.display())))?
            .map_err(|e| ClientError::Tls(format!("{}: {e}", path.display())))?;
        Ok(Pinned {
            leaf,
            provider: provider(),
        })
    }
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // A certificate is public: no constant-time compare needed.
        if end_entity.as_ref() == self.leaf.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    // The handshake signatures prove the server holds the pinned certificate's key.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Ordinary verification: chain to `ca`, the server name checked.
fn webpki_verifier(ca: &Path) -> Result<Arc<dyn ServerCertVerifier>, ClientError> {
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| ClientError::Tls(format!("cannot read --ca {}: {e}", ca.display())))?;
    for c in certs {
        roots
            .add(c)
            .map_err(|e| ClientError::Tls(format!("--ca {}: {e}", ca.display())))?;
    }
    if roots.is_empty() {
        return Err(ClientError::Tls(format!(
            "--ca {}: no certificate in it",
            ca.display()
        )));
    }
    let v =
        rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .map_err(|e| ClientError::Tls(e.to_string()))?;
    Ok(v)
}

/// The first DNS name of the configured certificate, if the CLI can read it.
fn first_dns_name(path: &Path) -> Option<String> {
    let der = CertificateDer::pem_file_iter(path).ok()?.next()?.ok()?;
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    let san = cert.subject_alternative_name().ok()??;
    san.value.general_names.iter().find_map(|n| match n {
        x509_parser::extensions::GeneralName::DNSName(d) => Some(d.to_string()),
        _ => None,
    })
}

fn fail(e: &ClientError) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(2)
}

/// `radshard sessions`.
pub fn sessions(args: &SessionsArgs) -> ExitCode {
    let client = match ApiClient::from_args(&args.api) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let mut query = Vec::new();
    if let Some(u) = &args.user {
        query.push(("user", u.clone()));
    }
    if let Some(n) = &args.nas {
        query.push(("nas", n.clone()));
    }
    if let Some(ip) = args.ip {
        query.push(("ip", ip.to_string()));
    }
    let answer = match client.get(&["sessions"], &query) {
        Ok(a) => a,
        Err(e) => return fail(&e),
    };
    if args.json {
        println!("{:#}", answer.body);
        return ExitCode::SUCCESS;
    }
    let sessions: Vec<SessionView> = match answer
        .body
        .get("sessions")
        .cloned()
        .map(serde_json::from_value)
    {
        Some(Ok(s)) => s,
        _ => {
            eprintln!("error: the API's answer is not a session list");
            return ExitCode::from(2);
        }
    };
    print!("{}", table(&sessions));
    ExitCode::SUCCESS
}

/// The sessions as a text table, one line each under a header.
pub fn table(sessions: &[SessionView]) -> String {
    let header = [
        "ID",
        "USER",
        "CLIENT",
        "NAS-PORT",
        "FRAMED-IP",
        "CALLING-STATION",
        "STARTED",
        "IN/OUT OCTETS",
    ];
    let dash = || "-".to_string();
    let rows: Vec<[String; 8]> = sessions
        .iter()
        .map(|s| {
            let mut started = Vec::new();
            crate::accounting::time::write_rfc3339(&mut started, s.started, 0);
            let mut started = String::from_utf8_lossy(&started).into_owned();
            // Seconds are enough in a table: drop ".000000".
            if let Some(dot) = started.find('.') {
                started.replace_range(dot..started.len() - 1, "");
            }
            [
                s.id.clone(),
                s.user.clone(),
                s.client.clone(),
                s.nas_port.map_or_else(dash, |p| p.to_string()),
                s.framed_ip_address.map_or_else(dash, |ip| ip.to_string()),
                s.calling_station_id.clone().unwrap_or_else(dash),
                started,
                format!("{}/{}", s.input_octets, s.output_octets),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[&str]| {
        let mut l = String::new();
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                l.push_str(c);
            } else {
                let _ = write!(l, "{c:<w$}  ");
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&header);
    for r in &rows {
        let cells: Vec<&str> = r.iter().map(String::as_str).collect();
        line(&cells);
    }
    out
}

/// One session's outcome in words, and whether the NAS acknowledged.
fn describe(outcome: &Value) -> (bool, String) {
    let result = outcome
        .get("result")
        .and_then(Value::as_str)
        .unwrap_or("unknown");
    if result == "ack" {
        return (true, "ACK".to_string());
    }
    let cause = outcome.get("error_cause").and_then(|c| {
        let code = c.get("code").and_then(Value::as_u64)?;
        Some(match c.get("name").and_then(Value::as_str) {
            Some(name) => format!("{name} ({code})"),
            None => code.to_string(),
        })
    });
    let text = match (result, cause) {
        ("nak", Some(c)) => format!("NAK {c}"),
        ("nak", None) => "NAK (no Error-Cause)".to_string(),
        (other, Some(c)) => format!("{other} {c}"),
        ("timeout", None) => "timeout: the DAS did not answer".to_string(),
        ("no_das", None) => "no_das: the session's client has no das configured".to_string(),
        ("overloaded", None) => "overloaded: too many requests in flight, not sent".to_string(),
        (other, None) => other.to_string(),
    };
    (false, text)
}

/// Prints a disconnect's or CoA's results and turns them into the exit code.
fn report(answer: &Answer, json: bool) -> ExitCode {
    if answer.status == 404 {
        if json {
            println!("{:#}", answer.body);
        }
        eprintln!("error: {}", error_text(&answer.body));
        return ExitCode::FAILURE;
    }
    if json {
        println!("{:#}", answer.body);
    }
    let results: Vec<(String, Value)> = match answer.body.get("results").and_then(Value::as_array) {
        Some(list) => list
            .iter()
            .map(|r| {
                (
                    r.get("session")
                        .and_then(Value::as_str)
                        .unwrap_or("?")
                        .to_string(),
                    r.get("outcome").cloned().unwrap_or(Value::Null),
                )
            })
            .collect(),
        None => vec![(
            answer
                .body
                .get("session")
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_string(),
            answer.body.get("outcome").cloned().unwrap_or(Value::Null),
        )],
    };
    let mut failures = Vec::new();
    for (session, outcome) in &results {
        let (ok, text) = describe(outcome);
        if !json {
            println!("{session}: {text}");
        }
        if !ok {
            failures.push(text);
        }
    }
    match failures.first() {
        None => ExitCode::SUCCESS,
        Some(first) => {
            eprintln!(
                "error: {} of {} not acknowledged: {first}",
                failures.len(),
                results.len()
            );
            ExitCode::FAILURE
        }
    }
}

/// `radshard disconnect`.
pub fn disconnect(args: &DisconnectArgs) -> ExitCode {
    let client = match ApiClient::from_args(&args.api) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let answer = match (&args.session, &args.user) {
        (Some(id), _) => client.post(&["sessions", id, "disconnect"], None),
        (None, Some(user)) => client.post(&["users", user, "disconnect"], None),
        // clap requires one of them.
        (None, None) => {
            eprintln!("error: give --user or --session");
            return ExitCode::from(2);
        }
    };
    match answer {
        Ok(a) => report(&a, args.json),
        Err(e) => fail(&e),
    }
}

/// `radshard coa`.
pub fn coa(args: &CoaArgs) -> ExitCode {
    let client = match ApiClient::from_args(&args.api) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let attributes: Vec<Value> = args
        .attributes
        .iter()
        .map(|(n, v)| serde_json::json!([n, v]))
        .collect();
    let body = serde_json::json!({ "attributes": attributes });
    match client.post(&["sessions", &args.session, "coa"], Some(body)) {
        Ok(a) => report(&a, args.json),
        Err(e) => fail(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn outcomes_read_as_the_operator_expects() {
        assert_eq!(describe(&json!({"result": "ack"})), (true, "ACK".into()));
        assert_eq!(
            describe(
                &json!({"result": "nak", "error_cause": {"code": 503, "name": "Session-Context-Not-Found"}})
            ),
            (false, "NAK Session-Context-Not-Found (503)".into())
        );
        assert_eq!(
            describe(&json!({"result": "timeout", "error_cause": null})),
            (false, "timeout: the DAS did not answer".into())
        );
    }

    #[test]
    fn unspecified_listen_addresses_are_reached_on_loopback() {
        assert_eq!(
            reachable("0.0.0.0:9813".parse().unwrap()),
            "127.0.0.1:9813".parse().unwrap()
        );
        assert_eq!(
            reachable("[::]:1".parse().unwrap()),
            "[::1]:1".parse().unwrap()
        );
        assert_eq!(
            reachable("10.0.0.1:1".parse().unwrap()),
            "10.0.0.1:1".parse().unwrap()
        );
    }
}
