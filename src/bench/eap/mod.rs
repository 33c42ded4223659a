//! `radshard bench --mode eap-tls|peap|ttls-pap`: an EAP load generator that speaks EAP over
//! RADIUS to any server, as a real supplicant + NAS pair would, and checks the MPPE keys of
//! every Access-Accept against the MSK its own TLS stack derived.
//!
//! eapol_test cannot load a server: it spends about five times the server's CPU per login
//! (a process per login, full debug formatting). Here one thread drives many logins at once,
//! each a sans-IO [`conversation::Conversation`] owning a `rustls::ClientConnection` over
//! memory buffers; what the loader spends per login is the TLS client's own cryptography.
//!
//! * [`args`]: the EAP flags (CA, client certificate, TLS version, resumption, fragment size).
//! * [`setup`]: the method and the rustls configuration every login shares (one session cache).
//! * [`conversation`]: one login's EAP state machine (Identity, Nak, Start, TLS fragments).
//! * [`fragment`]: TLS messages split into and reassembled from EAP fragments.
//! * [`peap`], [`ttls`]: the inner methods (EAP-MSCHAPv2 with `S=` checked; PAP AVPs).
//! * [`keys`]: the MSK by method and TLS version, and the MPPE key check.
//! * [`radius`]: Access-Requests with EAP-Message and State; EAP read back from replies.
//! * [`driver`]: sockets, the window of logins, timeouts.
//! * [`stats`]: per-login counters for the report.

pub mod args;
pub mod conversation;
pub mod driver;
pub mod fragment;
pub mod keys;
pub mod peap;
pub mod radius;
pub mod setup;
pub mod stats;
pub mod ttls;

pub use args::{EapArgs, TlsVersion};
pub use setup::{Method, Setup};
pub use stats::EapStats;

use super::args::{BenchArgs, Mode};
use super::error::BenchError;
use super::report::Report;
use super::users::User;

/// The EAP method of an EAP mode.
pub fn method(mode: Mode) -> Option<Method> {
    match mode {
        Mode::EapTls => Some(Method::EapTls),
        Mode::Peap => Some(Method::Peap),
        Mode::TtlsPap => Some(Method::TtlsPap),
        _ => None,
    }
}

/// Runs an EAP load test (`args.mode` must be an EAP mode).
pub fn run(args: &BenchArgs, method: Method, users: Vec<User>) -> Result<Report, BenchError> {
    let setup = Setup::new(method, &args.eap).map_err(|e| BenchError::Invalid(e.to_string()))?;
    driver::run(args, setup, users)
}
