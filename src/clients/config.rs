//! `[[clients]]`: the RADIUS clients (NASes) allowed to talk to us, validated.

use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::Deserialize;
use toml::Spanned;

use crate::cfg::{ClientNet, ConfigError, SecretText};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClient {
    pub name: String,
    /// IP addresses or CIDR networks, IPv4 or IPv6.
    pub addresses: Vec<Spanned<ClientNet>>,
    pub secret: Spanned<String>,
    #[serde(default = "default_true")]
    pub require_message_authenticator: bool,
    #[serde(default = "default_true")]
    pub limit_proxy_state: bool,
    /// Requests per second accepted from this client (whole server); absent: unlimited.
    pub rate_limit: Option<Spanned<u32>>,
    /// A group name network policies can match (`client_groups`).
    pub group: Option<String>,
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
        let secret_line = at(c.secret.span());
        let secret = c.secret.into_inner();
        if secret.is_empty() {
            return Err(ConfigError::new(
                origin,
                secret_line,
                format!("client {:?}: secret must not be empty", c.name),
            ));
        }
        if secret.len() < 16 && secret != "testing123" {
            warnings.push(ConfigError::new(
                origin,
                secret_line,
                format!(
                    "client {:?}: secret is shorter than 16 characters; RFC 2865 advises at least 16",
                    c.name
                ),
            ));
        }
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
        if !c.require_message_authenticator {
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
        Ok(ClientConfig {
            name: c.name,
            networks: c.addresses.into_iter().map(|a| a.into_inner().0).collect(),
            secret: SecretText::new(secret),
            require_message_authenticator: c.require_message_authenticator,
            limit_proxy_state: c.limit_proxy_state,
            rate_limit,
            group: c.group,
            file: origin.to_path_buf(),
            line,
        })
    }
}

/// Refuses two clients with the same network (which one a packet came from would be ambiguous).
pub fn check_overlap(clients: &[ClientConfig]) -> Result<(), ConfigError> {
    for (i, c) in clients.iter().enumerate() {
        for net in &c.networks {
            if let Some(prev) = clients[..i].iter().find(|p| p.networks.contains(net)) {
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
