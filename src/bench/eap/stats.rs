//! What an EAP run counts per login, on top of the per-packet [`crate::bench::Counters`].
//!
//! Every login started ends in exactly one of `ok`, `rejected` or `failed`.

use std::collections::BTreeMap;

use serde::Serialize;

use super::setup::Resume;

#[derive(Debug, Clone, Default, Serialize)]
pub struct EapStats {
    pub method: &'static str,
    /// The TLS version offered.
    pub tls_version: &'static str,
    /// `off`, `per-slot` (each window place resumes its previous login's session) or
    /// `shared` (one session cache for the loader).
    pub resume: &'static str,
    pub logins_started: u64,
    /// Access-Accept with EAP-Success after the whole method, MPPE keys equal to our MSK.
    pub logins_ok: u64,
    /// Access-Reject.
    pub logins_rejected: u64,
    /// Anything else: timeouts, protocol errors, bad keys (by reason in `failures`).
    pub logins_failed: u64,
    /// Accepts whose MS-MPPE-Recv-Key/Send-Key are missing or not the MSK's halves. A run
    /// with any is a failed run (non-zero exit).
    pub bad_keys: u64,
    /// Good logins whose TLS handshake resumed a session, and those with a full one.
    pub resumed: u64,
    pub full_handshakes: u64,
    /// Good logins that negotiated TLS 1.3.
    pub tls13: u64,
    /// Access-Request/reply round trips over the good logins, and per good login.
    pub rounds: u64,
    pub rounds_per_login: f64,
    pub rounds_min: u32,
    pub rounds_max: u32,
    /// Logins answered (good or rejected) per second of the run.
    pub logins_per_s: f64,
    /// CPU the loader's thread used over the run (user + system), and per answered login:
    /// what one login costs the client side, to set against the server's cost.
    pub loader_cpu_s: f64,
    pub loader_cpu_us_per_login: f64,
    pub failures: BTreeMap<&'static str, u64>,
    /// The first failure's description, to tell what went wrong without a debugger.
    pub first_failure: Option<String>,
}

impl EapStats {
    pub fn new(method: &'static str, tls_version: &'static str, resume: Resume) -> EapStats {
        EapStats {
            method,
            tls_version,
            resume: match resume {
                Resume::Off => "off",
                Resume::PerSlot => "per-slot",
                Resume::Shared => "shared",
            },
            ..EapStats::default()
        }
    }

    pub fn ok(&mut self, rounds: u32, resumed: bool, tls13: bool) {
        self.logins_ok += 1;
        self.rounds += u64::from(rounds);
        self.rounds_min = if self.logins_ok == 1 {
            rounds
        } else {
            self.rounds_min.min(rounds)
        };
        self.rounds_max = self.rounds_max.max(rounds);
        if resumed {
            self.resumed += 1;
        } else {
            self.full_handshakes += 1;
        }
        self.tls13 += u64::from(tls13);
    }

    pub fn fail(&mut self, label: &'static str, describe: impl FnOnce() -> String) {
        self.logins_failed += 1;
        *self.failures.entry(label).or_default() += 1;
        if self.first_failure.is_none() {
            self.first_failure = Some(format!("{} ({label})", describe()));
        }
    }

    /// Fills the rates once the run is over.
    pub fn finish(&mut self, elapsed_s: f64, loader_cpu_s: f64) {
        self.loader_cpu_s = loader_cpu_s;
        let answered = self.logins_ok + self.logins_rejected;
        if answered > 0 {
            self.loader_cpu_us_per_login = loader_cpu_s * 1e6 / answered as f64;
        }
        if self.logins_ok > 0 {
            self.rounds_per_login = self.rounds as f64 / self.logins_ok as f64;
        }
        if elapsed_s > 0.0 {
            self.logins_per_s = (self.logins_ok + self.logins_rejected) as f64 / elapsed_s;
        }
    }

    /// Whether the run must fail: a server whose keys do not match its MSK is broken.
    pub fn failed(&self) -> bool {
        self.bad_keys > 0
    }
}
