//! The result of a run: counters, throughput and the latency summary, as a table or as JSON.

use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::args::{BenchArgs, Mode};
use crate::proto::Code;

/// Everything the loader counts. Replies are only counted by code once they verified.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Counters {
    /// Requests sent (first transmissions).
    pub sent: u64,
    pub retransmissions: u64,
    /// Replies that verified and matched an outstanding request.
    pub replies: u64,
    pub access_accept: u64,
    pub access_reject: u64,
    pub access_challenge: u64,
    pub accounting_response: u64,
    pub other_code: u64,
    /// Requests that got no verified reply after all retransmissions.
    pub timeouts: u64,
    /// Replies with a wrong Response Authenticator or Message-Authenticator.
    pub bad_authenticator: u64,
    /// Datagrams that are not well-formed RADIUS.
    pub malformed: u64,
    /// Replies for no outstanding request (late after a timeout, duplicates, wrong source).
    pub unmatched: u64,
    /// Verified replies whose code is not the one expected (e.g. Accept for a wrong password).
    pub unexpected: u64,
    /// Access-Accept/Reject without Message-Authenticator (BlastRADIUS-unsafe server).
    pub missing_message_authenticator: u64,
    /// MS-CHAP v2 Access-Accepts whose MS-CHAP2-Success is missing, malformed or not the
    /// authenticator response the password gives (a real peer would drop the link). Such a reply
    /// is still counted by its code: a run is only good when this is 0.
    pub bad_auth_response: u64,
    /// MS-CHAP Access-Accepts without MPPE keys (v1 MS-CHAP-MPPE-Keys, v2 MS-MPPE-Send-Key and
    /// -Recv-Key). Informational: servers may be configured without them, but the work differs.
    pub no_mppe_keys: u64,
    /// Datagrams the kernel refused to send (left to the retransmission timer).
    pub send_errors: u64,
    pub recv_errors: u64,
}

impl Counters {
    /// Adds `o`'s counts to these (runs of several connections).
    pub fn merge(&mut self, o: &Counters) {
        let fields = [
            (&mut self.sent, o.sent),
            (&mut self.retransmissions, o.retransmissions),
            (&mut self.replies, o.replies),
            (&mut self.access_accept, o.access_accept),
            (&mut self.access_reject, o.access_reject),
            (&mut self.access_challenge, o.access_challenge),
            (&mut self.accounting_response, o.accounting_response),
            (&mut self.other_code, o.other_code),
            (&mut self.timeouts, o.timeouts),
            (&mut self.bad_authenticator, o.bad_authenticator),
            (&mut self.malformed, o.malformed),
            (&mut self.unmatched, o.unmatched),
            (&mut self.unexpected, o.unexpected),
            (
                &mut self.missing_message_authenticator,
                o.missing_message_authenticator,
            ),
            (&mut self.bad_auth_response, o.bad_auth_response),
            (&mut self.no_mppe_keys, o.no_mppe_keys),
            (&mut self.send_errors, o.send_errors),
            (&mut self.recv_errors, o.recv_errors),
        ];
        for (mine, theirs) in fields {
            *mine += theirs;
        }
    }

    pub fn count_code(&mut self, code: Code) {
        self.replies += 1;
        match code {
            Code::AccessAccept => self.access_accept += 1,
            Code::AccessReject => self.access_reject += 1,
            Code::AccessChallenge => self.access_challenge += 1,
            Code::AccountingResponse => self.accounting_response += 1,
            _ => self.other_code += 1,
        }
    }

    /// Replies that could not be trusted or placed.
    pub fn bad(&self) -> u64 {
        self.bad_authenticator + self.malformed + self.unmatched
    }
}

/// Latency in microseconds, from the first transmission (closed loop) or from when the request
/// was due (open loop) to its verified reply.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub min: u64,
    pub mean: f64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub mode: String,
    pub server: String,
    pub acct_server: String,
    /// `closed` (window) or `open` (fixed rate).
    pub load: &'static str,
    pub window: usize,
    pub offered_rate: Option<f64>,
    pub sockets: usize,
    pub message_authenticator: bool,
    pub wrong_password_fraction: f64,
    /// From the first send to the last reply (or the end of sending if none came).
    pub elapsed_s: f64,
    /// Verified replies per second over `elapsed_s`.
    pub requests_per_s: f64,
    pub counts: Counters,
    /// Per request; per login (first request to the final Accept or Reject) in EAP modes.
    pub latency_us: Latency,
    /// EAP modes: per-login counts, logins/s, rounds/login, resumption, MPPE key checks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eap: Option<super::eap::EapStats>,
}

impl Report {
    pub fn new(
        args: &BenchArgs,
        window: usize,
        elapsed_s: f64,
        counts: Counters,
        hist: &Histogram<u64>,
    ) -> Report {
        let mode = match args.mode {
            Mode::Pap => "pap".to_string(),
            Mode::Chap => "chap".to_string(),
            Mode::Acct => "acct".to_string(),
            Mode::Status => "status".to_string(),
            Mode::Mschap => "mschap".to_string(),
            Mode::Mschapv2 => "mschapv2".to_string(),
            Mode::Mixed => format!("mixed({})", args.mix),
            Mode::EapTls => "eap-tls".to_string(),
            Mode::Peap => "peap".to_string(),
            Mode::TtlsPap => "ttls-pap".to_string(),
        };
        let q = |p: f64| {
            if hist.is_empty() {
                0
            } else {
                hist.value_at_quantile(p)
            }
        };
        Report {
            mode,
            server: args.server.to_string(),
            acct_server: args.acct_addr().to_string(),
            load: if args.rate.is_some() {
                "open"
            } else {
                "closed"
            },
            window,
            offered_rate: args.rate,
            sockets: args.sockets,
            message_authenticator: !args.no_message_authenticator,
            wrong_password_fraction: args.wrong_password,
            elapsed_s,
            requests_per_s: if elapsed_s > 0.0 {
                counts.replies as f64 / elapsed_s
            } else {
                0.0
            },
            latency_us: Latency {
                min: if hist.is_empty() { 0 } else { hist.min() },
                mean: if hist.is_empty() { 0.0 } else { hist.mean() },
                p50: q(0.50),
                p90: q(0.90),
                p99: q(0.99),
                p999: q(0.999),
                max: if hist.is_empty() { 0 } else { hist.max() },
            },
            counts,
            eap: None,
        }
    }

    /// Whether the run must exit non-zero: an EAP server whose MPPE keys are wrong.
    pub fn failed(&self) -> bool {
        self.eap.as_ref().is_some_and(|e| e.failed())
    }

    pub fn to_json(&self) -> String {
        // Serialising plain numbers and strings cannot fail; fall back to an empty object anyway.
        serde_json::to_string_pretty(self).unwrap_or_else(|_| "{}".into())
    }

    pub fn to_table(&self) -> String {
        let c = &self.counts;
        let l = &self.latency_us;
        let mut s = String::new();
        let load = match self.offered_rate {
            Some(r) if self.eap.is_some() => format!("open loop, {r:.0} logins/s offered"),
            Some(r) => format!("open loop, {r:.0} req/s offered"),
            None => format!("closed loop, window {}", self.window),
        };
        let _ = writeln!(
            s,
            "radshard bench: {} → {} (acct {}), {load}, {} socket(s), Message-Authenticator {}",
            self.mode,
            self.server,
            self.acct_server,
            self.sockets,
            if self.message_authenticator {
                "on"
            } else {
                "off"
            },
        );
        let row = |s: &mut String, k: &str, v: String| {
            let _ = writeln!(s, "  {k:<22} {v}");
        };
        row(&mut s, "elapsed", format!("{:.3} s", self.elapsed_s));
        row(
            &mut s,
            "throughput",
            format!("{:.0} requests/s", self.requests_per_s),
        );
        row(
            &mut s,
            "sent",
            format!("{} (+{} retransmissions)", c.sent, c.retransmissions),
        );
        row(&mut s, "replies (verified)", c.replies.to_string());
        for (k, v) in [
            ("  Access-Accept", c.access_accept),
            ("  Access-Reject", c.access_reject),
            ("  Access-Challenge", c.access_challenge),
            ("  Accounting-Response", c.accounting_response),
            ("  other codes", c.other_code),
        ] {
            if v > 0 {
                row(&mut s, k, v.to_string());
            }
        }
        row(&mut s, "timeouts", c.timeouts.to_string());
        row(
            &mut s,
            "bad replies",
            format!(
                "{} (authenticator {}, malformed {}, unmatched {})",
                c.bad(),
                c.bad_authenticator,
                c.malformed,
                c.unmatched
            ),
        );
        row(&mut s, "unexpected code", c.unexpected.to_string());
        if self.mode.contains("mschapv2") || c.bad_auth_response > 0 {
            row(
                &mut s,
                "bad MS-CHAP2-Success",
                c.bad_auth_response.to_string(),
            );
        }
        if c.no_mppe_keys > 0 {
            row(&mut s, "accepts w/o MPPE keys", c.no_mppe_keys.to_string());
        }
        if c.missing_message_authenticator > 0 {
            row(
                &mut s,
                "no Message-Authenticator",
                c.missing_message_authenticator.to_string(),
            );
        }
        if c.send_errors + c.recv_errors > 0 {
            row(
                &mut s,
                "socket errors",
                format!("send {} recv {}", c.send_errors, c.recv_errors),
            );
        }
        if let Some(e) = &self.eap {
            eap_rows(&mut s, e);
        }
        let _ = writeln!(
            s,
            "  {:<22} min {}  p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  mean {:.1}",
            if self.eap.is_some() {
                "latency/login (µs)"
            } else {
                "latency (µs)"
            },
            l.min,
            l.p50,
            l.p90,
            l.p99,
            l.p999,
            l.max,
            l.mean
        );
        s
    }
}

/// The EAP modes' rows of the table.
fn eap_rows(s: &mut String, e: &super::eap::EapStats) {
    let row = |s: &mut String, k: &str, v: String| {
        let _ = writeln!(s, "  {k:<22} {v}");
    };
    row(
        s,
        "logins",
        format!(
            "{} started: {} ok, {} rejected, {} failed (TLS {}, resumption {})",
            e.logins_started,
            e.logins_ok,
            e.logins_rejected,
            e.logins_failed,
            e.tls_version,
            e.resume
        ),
    );
    row(s, "logins/s", format!("{:.1}", e.logins_per_s));
    row(
        s,
        "rounds/login",
        format!(
            "{:.2} (min {} max {})",
            e.rounds_per_login, e.rounds_min, e.rounds_max
        ),
    );
    row(
        s,
        "handshakes",
        format!(
            "{} full, {} resumed, {} TLS 1.3",
            e.full_handshakes, e.resumed, e.tls13
        ),
    );
    row(s, "bad MPPE keys", e.bad_keys.to_string());
    row(
        s,
        "loader CPU",
        format!(
            "{:.3} s, {:.0} µs/login",
            e.loader_cpu_s, e.loader_cpu_us_per_login
        ),
    );
    if !e.failures.is_empty() {
        let list: Vec<String> = e.failures.iter().map(|(k, v)| format!("{k} {v}")).collect();
        row(s, "failures", list.join(", "));
    }
    if let Some(f) = &e.first_failure {
        row(s, "first failure", f.clone());
    }
}
