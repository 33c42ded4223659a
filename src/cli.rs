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
