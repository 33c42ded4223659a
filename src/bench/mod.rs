//! `radshard bench`: the load generator.
//!
//! * [`args`]: the command line.
//! * [`users`]: the user population (file or `user%04d` patterns).
//! * [`request`]: building PAP/CHAP/MS-CHAP/accounting/Status-Server requests into buffers.
//! * [`mschap`]: MS-CHAP v1/v2 exchanges (precomputed) and the check of MS-CHAP2-Success.
//! * [`loadgen`]: the batched send/receive loop (closed or open loop, retransmissions, timeouts).
//! * [`poll`]: the loaders' idle wait (ppoll until a socket is readable or a timer is due).
//! * [`report`]: counters, hdrhistogram latency summary, table and JSON.
//! * [`responder`]: a trivial server, to show the loader is not the bottleneck.
//! * [`eap`]: EAP-TLS, PEAP and TTLS-PAP logins over RADIUS (`--mode eap-tls|peap|ttls-pap`).

pub mod args;
pub mod eap;
pub mod error;
pub mod loadgen;
pub mod mschap;
pub mod poll;
pub mod radsec;
pub mod report;
pub mod request;
pub mod responder;
pub mod users;

use std::process::ExitCode;

pub use args::{BenchArgs, Mode};
pub use error::BenchError;
pub use report::{Counters, Report};

/// Runs a load test as described by `args` and returns its report.
pub fn run(args: &BenchArgs) -> Result<Report, BenchError> {
    let users = match &args.users_file {
        Some(path) => users::from_file(path)?,
        None => users::from_patterns(&args.user_pattern, &args.password_pattern, args.users)?,
    };
    if let Some(method) = eap::method(args.mode) {
        return eap::run(args, method, users);
    }
    if let Some(dir) = &args.radsec {
        return radsec::run(args, dir, users);
    }
    let factory = request::RequestFactory::new(args, users)?;
    loadgen::run(args, factory)
}

/// The `radshard bench` command: runs, prints the table (or JSON), exits non-zero on errors.
pub fn main(args: &BenchArgs) -> ExitCode {
    if let Some(addr) = args.responder {
        return match responder::run(addr, &args.secret) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    match run(args) {
        Ok(report) => {
            let text = if args.json {
                report.to_json() + "\n"
            } else {
                report.to_table()
            };
            // A closed stdout (e.g. piped into `head`) is not worth a panic.
            let _ = std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes());
            if report.failed() {
                eprintln!("error: MPPE keys of some Access-Accepts do not match the MSK");
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
