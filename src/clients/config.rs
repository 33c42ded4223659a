//! `[[clients]]`: the RADIUS clients (NASes) allowed to talk to us, validated.

use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::Deserialize;
use toml::Spanned;

use super::Transport;
use crate::cfg::{ClientNet, ConfigError, SecretText};

/// RFC 6614 §2.3: the shared secret of RADIUS over TLS, whose integrity TLS provides.
pub const RADSEC_SECRET: &str = "radsec";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClient {
    pub name: String,
    /// IP addresses or CIDR networks, IPv4 or IPv6.
    pub addresses: Vec<Spanned<ClientNet>>,
    /// Required over UDP; over TLS `"radsec"` unless given.
    pub secret: Option<Spanned<String>>,
    /// `"udp"` (default), `"tcp"` (RFC 6613, `[tcp]` listener) or `"tls"`: a RadSec peer,
    /// whose certificate must chain to `[radsec.tls] ca` (and match `fingerprints` when given).
    pub transport: Option<Spanned<String>>,
    /// TLS: SHA-256 fingerprints of the only client certificates accepted (hex, colons
    /// optional, `sha256:` prefix optional).
    #[serde(default)]
    pub fingerprints: Vec<Spanned<String>>,
    /// Default: true over UDP (BlastRADIUS), false over TLS (TLS protects the packet).
    pub require_message_authenticator: Option<bool>,
    #[serde(default = "default_true")]
    pub limit_proxy_state: bool,
    /// Requests per second accepted from this client (whole server); absent: unlimited.
    pub rate_limit: Option<Spanned<u32>>,
    /// A group name network policies can match (`client_groups`).
    pub group: Option<String>,
    /// Where Disconnect-Requests and CoA-Requests for this NAS's sessions go (RFC 5176).
    pub das: Option<Spanned<crate::dynauth::RawDas>>,
    /// May send Disconnect/CoA requests to the `[dynauth] listen` CoA listener (a billing
    /// system, an upstream proxy).
    #[serde(default)]
    pub dynauth_upstream: bool,
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub name: String,
    pub networks: Vec<IpNet>,
    pub secret: SecretText,
    pub require_message_authenticator: bool,
    pub limit_proxy_state: bool,
    pub rate_limit: Option<u32>,
    pub group: Option<String>,
    pub transport: Transport,
    /// TLS: the client certificates accepted (SHA-256 of their DER); empty: any the CA signed.
    pub fingerprints: Vec<[u8; 32]>,
    /// Its DAS (RFC 5176): where Disconnect and CoA requests for its sessions go.
    pub das: Option<crate::dynauth::DasConfig>,
    /// May send Disconnect/CoA requests to our CoA listener.
    pub dynauth_upstream: bool,
    pub file: PathBuf,
    pub line: usize,
}

impl ClientConfig {
    /// Validates one `[[clients]]` entry written at `line` of `origin`; `at` maps a span to its
    /// line. Things that work but deserve attention are pushed onto `warnings`.
    pub fn from_raw(
        c: RawClient,
        origin: &Path,
        line: usize,
        at: &impl Fn(std::ops::Range<usize>) -> usize,
        warnings: &mut Vec<ConfigError>,
    ) -> Result<ClientConfig, ConfigError> {
        let transport = match c
            .transport
            .as_ref()
            .map(|t| (t.get_ref().as_str(), t.span()))
        {
            None | Some(("udp", _)) => Transport::Udp,
            Some(("tcp", _)) => Transport::Tcp,
            Some(("tls", _)) => Transport::Tls,
            Some((other, span)) => {
                return Err(ConfigError::new(
                    origin,
                    at(span),
                    format!(
                        "client {:?}: transport {other:?} is not \"udp\", \"tcp\" or \"tls\"",
                        c.name
                    ),
                ))
            }
        };
        let (secret, secret_line) = match (c.secret, transport) {
            (Some(s), _) => {
                let line = at(s.span());
                (s.into_inner(), line)
            }
            (None, Transport::Tls) => (RADSEC_SECRET.to_string(), line),
            (None, _) => {
                return Err(ConfigError::new(
                    origin,
                    line,
                    format!("client {:?}: a UDP or TCP client needs a secret", c.name),
                ))
            }
        };
        if secret.is_empty() {
            return Err(ConfigError::new(
                origin,
                secret_line,
                format!("client {:?}: secret must not be empty", c.name),
            ));
        }
        if transport != Transport::Tls && secret.len() < 16 && secret != "testing123" {
            warnings.push(ConfigError::new(
                origin,
                secret_line,
                format!(
                    "client {:?}: secret is shorter than 16 characters; RFC 2865 advises at least 16",
                    c.name
                ),
            ));
        }
        let mut fingerprints = Vec::with_capacity(c.fingerprints.len());
        for f in &c.fingerprints {
            if transport != Transport::Tls {
                return Err(ConfigError::new(
                    origin,
                    at(f.span()),
                    format!(
                        "client {:?}: fingerprints are for transport = \"tls\"",
                        c.name
                    ),
                ));
            }
            fingerprints.push(parse_fingerprint(f.get_ref()).ok_or_else(|| {
                ConfigError::new(
                    origin,
                    at(f.span()),
                    format!(
                        "client {:?}: fingerprint {:?} is not a SHA-256 in hex (64 digits, colons allowed)",
                        c.name,
                        f.get_ref()
                    ),
                )
            })?);
        }
        let require_message_authenticator = c
            .require_message_authenticator
            .unwrap_or(transport != Transport::Tls);
        if c.addresses.is_empty() {
            return Err(ConfigError::new(
                origin,
                line,
                format!(
                    "client {:?}: addresses must list at least one address or network",
                    c.name
                ),
            ));
        }
        if !require_message_authenticator && transport != Transport::Tls {
            warnings.push(ConfigError::new(
                origin,
                line,
                format!(
                    "client {:?}: require_message_authenticator = false leaves this client open to BlastRADIUS (CVE-2024-3596) forgeries",
                    c.name
                ),
            ));
        }
        let rate_limit = match c.rate_limit {
            Some(r) if *r.get_ref() == 0 => {
                return Err(ConfigError::new(
                    origin,
                    at(r.span()),
                    format!(
                        "client {:?}: rate_limit must be positive (omit it for no limit)",
                        c.name
                    ),
                ))
            }
            r => r.map(Spanned::into_inner),
        };
        if c.dynauth_upstream && transport != Transport::Udp {
            return Err(ConfigError::new(
                origin,
                line,
                format!(
                    "client {:?}: dynauth_upstream is for UDP clients (the CoA listener is UDP)",
                    c.name
                ),
            ));
        }
        let networks: Vec<IpNet> = c.addresses.into_iter().map(|a| a.into_inner().0).collect();
        let das = c
            .das
            .map(|d| {
                let das_line = at(d.span());
                crate::dynauth::DasConfig::from_raw(
                    d.into_inner(),
                    &c.name,
                    &networks,
                    origin,
                    das_line,
                    at,
                )
            })
            .transpose()?;
        Ok(ClientConfig {
            name: c.name,
            networks,
            secret: SecretText::new(secret),
            require_message_authenticator,
            limit_proxy_state: c.limit_proxy_state,
            rate_limit,
            group: c.group,
            transport,
            fingerprints,
            das,
            dynauth_upstream: c.dynauth_upstream,
            file: origin.to_path_buf(),
            line,
        })
    }
}

/// `AB:CD:…`, `abcd…` or `sha256:…`: 32 bytes.
fn parse_fingerprint(text: &str) -> Option<[u8; 32]> {
    let hex: String = text
        .strip_prefix("sha256:")
        .unwrap_or(text)
        .chars()
        .filter(|c| *c != ':')
        .collect();
    let bytes = data_encoding::HEXLOWER_PERMISSIVE
        .decode(hex.as_bytes())
        .ok()?;
    bytes.try_into().ok()
}

/// Refuses two clients of one transport with the same network (which one a packet came from
/// would be ambiguous). A UDP and a TLS client may share one: the transport tells them apart.
pub fn check_overlap(clients: &[ClientConfig]) -> Result<(), ConfigError> {
    for (i, c) in clients.iter().enumerate() {
        for net in &c.networks {
            if let Some(prev) = clients[..i]
                .iter()
                .find(|p| p.transport == c.transport && p.networks.contains(net))
            {
                return Err(ConfigError::new(
                    &c.file,
                    c.line,
                    format!(
                        "client {:?}: network {net} is already used by client {:?} (line {})",
                        c.name, prev.name, prev.line
                    ),
                ));
            }
        }
    }
    Ok(())
}
