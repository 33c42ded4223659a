//! `radshard bench` command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::cfg::parse_duration;

/// What each request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Access-Request with User-Password.
    Pap,
    /// Access-Request with CHAP-Password.
    Chap,
    /// Accounting-Request, cycling Start, Interim-Update, Stop per session.
    Acct,
    /// Status-Server (RFC 5997) to the authentication port.
    Status,
    /// Access-Request with MS-CHAP v1 (RFC 2433) attributes; needs cleartext passwords.
    Mschap,
    /// Access-Request with MS-CHAP v2 (RFC 2759) attributes; the Accept's MS-CHAP2-Success
    /// (`S=`) is checked against the expected authenticator response.
    Mschapv2,
    /// A mix of the above by `--mix` weights.
    Mixed,
    /// EAP-TLS logins (RFC 5216/9190) with a client certificate; every Accept's MPPE keys are
    /// checked against the MSK.
    EapTls,
    /// PEAPv0 / EAP-MSCHAPv2 logins; `S=` and the MPPE keys are checked.
    Peap,
    /// EAP-TTLS / PAP logins; the MPPE keys are checked.
    TtlsPap,
}

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Authentication server address (PAP, CHAP, Status-Server).
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:1812")]
    pub server: SocketAddr,
    /// Accounting server address [default: --server's host, port + 1].
    #[arg(long = "acct-server", value_name = "ADDR:PORT")]
    pub acct_server: Option<SocketAddr>,
    /// Shared secret.
    #[arg(long, default_value = "testing123")]
    pub secret: String,
    /// Request kind.
    #[arg(long, value_enum, default_value = "pap")]
    pub mode: Mode,
    /// Weights for `--mode mixed`, e.g. `pap=70,chap=10,acct=15,status=5` (also `mschap`,
    /// `mschapv2`).
    #[arg(long, value_name = "KIND=W,...", default_value = "pap=80,acct=20")]
    pub mix: String,

    /// Users, one `name password` (or `name:password`) per line; `#` starts a comment.
    #[arg(long = "users-file", value_name = "FILE")]
    pub users_file: Option<PathBuf>,
    /// User-Name pattern; one printf-style `%d` (e.g. `%04d`) is replaced by the user number.
    #[arg(long = "user-pattern", default_value = "user%04d")]
    pub user_pattern: String,
    /// Password pattern, numbered like --user-pattern.
    #[arg(long = "password-pattern", default_value = "pass%04d")]
    pub password_pattern: String,
    /// How many users the patterns generate (numbers 0..N).
    #[arg(long, default_value_t = 1000)]
    pub users: usize,
    /// Fraction (0..=1) of PAP/CHAP/MS-CHAP requests (PEAP, TTLS-PAP logins) sent with a wrong
    /// password (expect Access-Reject).
    #[arg(
        long = "wrong-password",
        default_value_t = 0.0,
        value_name = "FRACTION"
    )]
    pub wrong_password: f64,
    /// MS-CHAP exchanges precomputed per user at start-up and cycled through, so the hot loop
    /// runs no MS-CHAP crypto; 0 computes a fresh exchange (new random challenges) per request.
    #[arg(long = "mschap-pool", value_name = "N", default_value_t = super::mschap::POOL_DEFAULT)]
    pub mschap_pool: usize,
    /// Do not put a Message-Authenticator in Access-Requests.
    #[arg(long = "no-message-authenticator")]
    pub no_message_authenticator: bool,

    /// Closed loop: at most N requests outstanding (at most 256 per socket; EAP modes: N
    /// logins in flight).
    #[arg(long, default_value_t = 256)]
    pub window: usize,
    /// Open loop: send at this fixed rate (requests/s; EAP modes: logins/s) instead of keeping
    /// a window full.
    #[arg(long, value_name = "REQ/S")]
    pub rate: Option<f64>,
    /// Number of source sockets (each has its own 256 identifiers).
    #[arg(long, default_value_t = 1)]
    pub sockets: usize,
    /// Datagrams per sendmmsg/recvmmsg call.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,

    /// Stop after this many requests (first transmissions; EAP modes: logins started).
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Stop sending after this long (e.g. `5s`, `500ms`); outstanding requests are then drained.
    #[arg(long, value_parser = parse_dur, value_name = "DURATION")]
    pub duration: Option<Duration>,
    /// Time without a reply after which a request is retransmitted or counted as timed out.
    #[arg(long, value_parser = parse_dur, default_value = "1s", value_name = "DURATION")]
    pub timeout: Duration,
    /// Retransmissions (same identifier and authenticator) before a request times out.
    #[arg(long, default_value_t = 0)]
    pub retries: u32,

    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// No progress line on stderr.
    #[arg(long, short)]
    pub quiet: bool,

    /// RadSec (RFC 6614): send over TLS to --server, one connection per --sockets, with the
    /// test PKI `radshard certs` wrote in DIR (ca.pem, client.pem, client.key); use
    /// `--secret radsec`. Not with EAP modes, --rate or --retries.
    #[arg(long, value_name = "DIR")]
    pub radsec: Option<std::path::PathBuf>,
    /// RadSec: the name the server's certificate must carry.
    #[arg(long, default_value = "radius.test", value_name = "NAME")]
    pub tls_server_name: String,
    /// RadSec: speak RADIUS/1.1 (RFC 9765; ALPN `radius/1.1` required, the run fails on a
    /// server that does not negotiate it).
    #[arg(long, requires = "radsec")]
    pub radius11: bool,

    /// Instead of generating load, run a trivial responder on ADDR:PORT that answers every
    /// request with a signed Accept (or Accounting-Response) and nothing else; used to show
    /// the loader is not the bottleneck.
    #[arg(long, value_name = "ADDR:PORT", hide = true)]
    pub responder: Option<SocketAddr>,

    /// Flags of the EAP modes (eap-tls, peap, ttls-pap). Boxed: the CLI's command enum keeps
    /// its variants of similar size.
    #[command(flatten)]
    pub eap: Box<super::eap::EapArgs>,
}

fn parse_dur(s: &str) -> Result<Duration, String> {
    parse_duration(s)
}

impl BenchArgs {
    /// Where Accounting-Requests go.
    pub fn acct_addr(&self) -> SocketAddr {
        self.acct_server.unwrap_or_else(|| {
            let mut a = self.server;
            a.set_port(a.port().wrapping_add(1));
            a
        })
    }
}
