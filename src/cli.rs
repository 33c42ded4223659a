//! Command line. Flags given here override the config file's values.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{LogFormat, Overrides};

#[derive(Debug, Parser)]
#[command(
    name = "radshard",
    version,
    about = "A high-performance, multi-core RADIUS server"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Parsed once at start-up, so the size of its largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Validate a configuration the way `serve` would, print warnings, and exit.
    CheckConfig(ConfigArg),
    /// Generate RADIUS load against a server and report throughput and latency.
    Bench(crate::bench::BenchArgs),
    /// Write a throwaway test PKI (CA, server and client certificates) for EAP.
    Certs(CertsArgs),
    /// List open sessions (through the admin API of a running server).
    Sessions(SessionsArgs),
    /// Disconnect a session, or all of a user's (Disconnect-Request to the NAS). Exits 0 only
    /// when every NAS acknowledged; 1 on a NAK (its Error-Cause is printed), a timeout or no
    /// session; 2 when the API could not be asked.
    Disconnect(DisconnectArgs),
    /// Change a session's authorization (CoA-Request to the NAS), e.g.
    /// `radshard coa --session ID Session-Timeout=3600`. Exit codes as for disconnect.
    Coa(CoaArgs),
}

/// How the CLI reaches the admin API: `[admin]` of the config names the address, TLS and the
/// token file.
#[derive(Debug, Args)]
pub struct ApiArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// The bearer token [default: $RADSHARD_ADMIN_TOKEN, else the first plain token of
    /// [admin] token_file]. Prefer those two: a command line is visible to other users.
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,
    /// With [admin.tls]: trust the API's certificate if it chains to this CA (PEM) instead of
    /// pinning the configured certificate itself.
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// With --ca: the name the certificate must carry [default: its first DNS name].
    #[arg(long = "server-name", value_name = "NAME")]
    pub server_name: Option<String>,
}

#[derive(Debug, Args)]
pub struct SessionsArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// Only the sessions of this (authenticated) user.
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// Only the sessions of this NAS: client name, address, NAS-IP-Address or NAS-Identifier.
    #[arg(long, value_name = "NAS")]
    pub nas: Option<String>,
    /// Only the session with this Framed-IP-Address.
    #[arg(long, value_name = "IP")]
    pub ip: Option<std::net::IpAddr>,
    /// Print the API's JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("target").required(true).args(["user", "session"]))]
pub struct DisconnectArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// Every session of this user.
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// The session with this id (Acct-Unique-Session-Id, as `radshard sessions` shows).
    #[arg(long, value_name = "ID")]
    pub session: Option<String>,
    /// Print the API's JSON answer.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CoaArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// The session to change.
    #[arg(long, value_name = "ID")]
    pub session: String,
    /// Attributes by dictionary name, e.g. Session-Timeout=3600 Filter-Id=gold.
    #[arg(value_name = "ATTR=VALUE", required = true, value_parser = parse_attr)]
    pub attributes: Vec<(String, String)>,
    /// Print the API's JSON answer.
    #[arg(long)]
    pub json: bool,
}

fn parse_attr(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((n, v)) if !n.trim().is_empty() => Ok((n.trim().to_string(), v.to_string())),
        _ => Err(format!("{s:?}: expected ATTR=VALUE")),
    }
}

#[derive(Debug, Args)]
pub struct CertsArgs {
    /// Directory to write ca.pem, ca.key, server.pem, server.key, client.pem, client.key into.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Key type of every certificate: RSA-2048 or ECDSA P-256.
    #[arg(long, value_parser = parse_key_kind, value_name = "rsa|ecdsa", default_value = "rsa")]
    pub key: crate::tls::pki::KeyKind,
    /// Overwrite files that already exist.
    #[arg(long)]
    pub force: bool,
}

fn parse_key_kind(s: &str) -> Result<crate::tls::pki::KeyKind, String> {
    crate::tls::pki::KeyKind::from_label(s).ok_or_else(|| format!("{s:?}: expected rsa or ecdsa"))
}

#[derive(Debug, Args)]
pub struct ConfigArg {
    /// Configuration file [default: config/radshard.toml, or the embedded default if absent]
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Number of shards (one per core); 0 = one per available core.
    #[arg(long, value_name = "N")]
    pub shards: Option<usize>,
    /// Authentication listen address; repeat for several. Replaces server.listen_auth.
    #[arg(long = "listen-auth", value_name = "ADDR:PORT")]
    pub listen_auth: Vec<SocketAddr>,
    /// Accounting listen address; repeat for several. Replaces server.listen_acct.
    #[arg(long = "listen-acct", value_name = "ADDR:PORT")]
    pub listen_acct: Vec<SocketAddr>,
    /// Prometheus metrics endpoint.
    #[arg(long = "metrics-listen", value_name = "ADDR:PORT")]
    pub metrics_listen: Option<SocketAddr>,
    /// Log level or tracing filter (e.g. `info`, `radshard=debug`).
    #[arg(long = "log-level", value_name = "FILTER")]
    pub log_level: Option<String>,
    /// Log format.
    #[arg(long = "log-format", value_parser = parse_log_format, value_name = "text|json")]
    pub log_format: Option<LogFormat>,
    /// Directory for the accounting log.
    #[arg(long = "accounting-dir", value_name = "DIR")]
    pub accounting_dir: Option<PathBuf>,
}

impl ServeArgs {
    pub fn overrides(&self) -> Overrides {
        Overrides {
            shards: self.shards,
            listen_auth: self.listen_auth.clone(),
            listen_acct: self.listen_acct.clone(),
            metrics_listen: self.metrics_listen,
            log_level: self.log_level.clone(),
            log_format: self.log_format,
            accounting_directory: self.accounting_dir.clone(),
        }
    }
}

fn parse_log_format(s: &str) -> Result<LogFormat, String> {
    match s {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err(format!("{s:?}: expected text or json")),
    }
}
