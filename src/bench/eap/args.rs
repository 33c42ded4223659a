//! The command-line flags only the EAP modes read (`--mode eap-tls|peap|ttls-pap`), flattened
//! into `radshard bench`'s own.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

/// Default octets of TLS data per EAP fragment we send (FreeRADIUS's `fragment_size` too).
pub const FRAGMENT_DEFAULT: usize = 1024;

/// The TLS version offered (exactly one, so a run measures what it says).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TlsVersion {
    #[value(name = "1.2")]
    Tls12,
    #[value(name = "1.3")]
    Tls13,
}

impl TlsVersion {
    pub fn label(self) -> &'static str {
        match self {
            TlsVersion::Tls12 => "1.2",
            TlsVersion::Tls13 => "1.3",
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct EapArgs {
    /// EAP modes: CA certificate(s) (PEM) the server's certificate must chain to.
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// EAP modes: the name the server's certificate must carry (also sent as SNI).
    #[arg(
        long = "server-name",
        default_value = "radius.test",
        value_name = "NAME"
    )]
    pub server_name: String,
    /// eap-tls: the client certificate chain (PEM, leaf first).
    #[arg(long = "client-cert", value_name = "FILE")]
    pub client_cert: Option<PathBuf>,
    /// eap-tls: the client certificate's private key (PEM, unencrypted).
    #[arg(long = "client-key", value_name = "FILE")]
    pub client_key: Option<PathBuf>,
    /// EAP modes: the TLS version offered.
    #[arg(long = "tls-version", value_enum, default_value = "1.2")]
    pub tls_version: TlsVersion,
    /// EAP modes: resume TLS sessions. Each place in the window keeps the session of its
    /// previous login and resumes it, as a device re-authenticating does (many sessions, each
    /// resumed by one login at a time). The report counts resumed logins.
    #[arg(long)]
    pub resume: bool,
    /// EAP modes: resume from one session cache shared by the whole loader instead: every
    /// login offers the latest session, so many resume the same one at once (a server's
    /// session cache under contention; FreeRADIUS 3.2.1 crashes under it). Implies --resume.
    #[arg(long = "resume-shared")]
    pub resume_shared: bool,
    /// EAP modes: octets of TLS data per EAP fragment we send (a longer flight is sent in
    /// fragments, each after the server's acknowledgement).
    #[arg(long = "eap-fragment", default_value_t = FRAGMENT_DEFAULT, value_name = "OCTETS")]
    pub eap_fragment: usize,
    /// peap, ttls-pap: the outer EAP identity (and User-Name) instead of the user's name, e.g.
    /// `anonymous`; the inner identity is always the user's name.
    #[arg(long = "outer-identity", value_name = "NAME")]
    pub outer_identity: Option<String>,
}
