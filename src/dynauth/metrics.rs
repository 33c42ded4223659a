//! The dynamic-authorization counters, rendered with `/metrics`: requests by kind, their
//! ends by result and Error-Cause, retransmissions, dropped answers, and the listener's.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::client::Dropped;
use super::error_cause::{ErrorCause, KNOWN};
use super::outcome::{DasOutcome, DasResult};
use super::packet::Kind;

/// Error-Cause slots: the RFC values, one for an unassigned value, one for none.
const CAUSES: usize = KNOWN.len() + 2;
const NO_CAUSE: usize = KNOWN.len() + 1;
const RESULTS: usize = DasResult::ALL.len();
const KINDS: usize = Kind::ALL.len();
const DROPS: usize = Dropped::ALL_LABELS.len();

/// Why the listener dropped a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerDrop {
    Malformed,
    /// Not a Disconnect-Request or CoA-Request.
    NotARequest,
    /// No client with `dynauth_upstream = true` at the source address.
    UnknownUpstream,
    BadAuthenticator,
    /// A retransmission of a request still being forwarded.
    InProgress,
    /// Too many upstream requests being forwarded at once.
    Busy,
}

impl ListenerDrop {
    pub const ALL: [ListenerDrop; 6] = [
        ListenerDrop::Malformed,
        ListenerDrop::NotARequest,
        ListenerDrop::UnknownUpstream,
        ListenerDrop::BadAuthenticator,
        ListenerDrop::InProgress,
        ListenerDrop::Busy,
    ];

    pub const fn label(self) -> &'static str {
        match self {
            ListenerDrop::Malformed => "malformed",
            ListenerDrop::NotARequest => "not_a_request",
            ListenerDrop::UnknownUpstream => "unknown_upstream",
            ListenerDrop::BadAuthenticator => "bad_authenticator",
            ListenerDrop::InProgress => "in_progress",
            ListenerDrop::Busy => "busy",
        }
    }
}

#[derive(Debug)]
pub struct DynAuthMetrics {
    requests: [AtomicU64; KINDS],
    retransmissions: [AtomicU64; KINDS],
    /// kind × result × Error-Cause.
    answers: Vec<AtomicU64>,
    dropped: [AtomicU64; DROPS],
    /// The listener: verified requests by kind, answers by kind × ack/nak, drops by reason.
    listener_requests: [AtomicU64; KINDS],
    listener_answers: [[AtomicU64; 2]; KINDS],
    listener_replayed: AtomicU64,
    listener_dropped: [AtomicU64; ListenerDrop::ALL.len()],
    pub(crate) in_flight: AtomicU64,
    pub(crate) queued: AtomicU64,
}

impl Default for DynAuthMetrics {
    fn default() -> DynAuthMetrics {
        DynAuthMetrics {
            requests: Default::default(),
            retransmissions: Default::default(),
            answers: (0..KINDS * RESULTS * CAUSES)
                .map(|_| AtomicU64::new(0))
                .collect(),
            dropped: Default::default(),
            listener_requests: Default::default(),
            listener_answers: Default::default(),
            listener_replayed: AtomicU64::new(0),
            listener_dropped: Default::default(),
            in_flight: AtomicU64::new(0),
            queued: AtomicU64::new(0),
        }
    }
}

fn cause_index(c: Option<&ErrorCause>) -> usize {
    c.map_or(NO_CAUSE, ErrorCause::index)
}

fn cause_label(i: usize) -> &'static str {
    match KNOWN.get(i) {
        Some((_, name)) => name,
        None if i == NO_CAUSE => "none",
        None => "other",
    }
}

impl DynAuthMetrics {
    /// A request made (submitted: sent, queued or refused).
    pub fn request(&self, kind: Kind) {
        self.requests[kind.index()].fetch_add(1, Relaxed);
    }

    pub fn retransmission(&self, kind: Kind) {
        self.retransmissions[kind.index()].fetch_add(1, Relaxed);
    }

    pub fn outcome(&self, kind: Kind, o: &DasOutcome) {
        let i = (kind.index() * RESULTS + o.result.index()) * CAUSES
            + cause_index(o.error_cause.as_ref());
        if let Some(c) = self.answers.get(i) {
            c.fetch_add(1, Relaxed);
        }
    }

    pub fn dropped(&self, why: &Dropped) {
        if let Some(i) = Dropped::ALL_LABELS.iter().position(|l| *l == why.label()) {
            self.dropped[i].fetch_add(1, Relaxed);
        }
    }

    pub fn listener_request(&self, kind: Kind) {
        self.listener_requests[kind.index()].fetch_add(1, Relaxed);
    }

    pub fn listener_answer(&self, kind: Kind, ack: bool) {
        self.listener_answers[kind.index()][usize::from(!ack)].fetch_add(1, Relaxed);
    }

    pub fn listener_replayed(&self) {
        self.listener_replayed.fetch_add(1, Relaxed);
    }

    pub fn listener_dropped(&self, why: ListenerDrop) {
        self.listener_dropped[why as usize].fetch_add(1, Relaxed);
    }

    /// How many requests of `kind` ended with `result` (any Error-Cause).
    pub fn answers(&self, kind: Kind, result: DasResult) -> u64 {
        let base = (kind.index() * RESULTS + result.index()) * CAUSES;
        self.answers[base..base + CAUSES]
            .iter()
            .map(|c| c.load(Relaxed))
            .sum()
    }

    pub fn requests(&self, kind: Kind) -> u64 {
        self.requests[kind.index()].load(Relaxed)
    }

    pub fn dropped_total(&self, label: &str) -> u64 {
        Dropped::ALL_LABELS
            .iter()
            .position(|l| *l == label)
            .map_or(0, |i| self.dropped[i].load(Relaxed))
    }

    pub fn listener_dropped_total(&self, why: ListenerDrop) -> u64 {
        self.listener_dropped[why as usize].load(Relaxed)
    }

    /// Prometheus text exposition; zero series of `answers` are left out (there are 266).
    pub fn render(&self, out: &mut String) {
        let _ = writeln!(out, "# HELP radshard_dynauth_requests_total Disconnect-Requests and CoA-Requests made, by kind.\n# TYPE radshard_dynauth_requests_total counter");
        for k in Kind::ALL {
            let _ = writeln!(
                out,
                "radshard_dynauth_requests_total{{kind=\"{}\"}} {}",
                k.label(),
                self.requests[k.index()].load(Relaxed)
            );
        }
        let _ = writeln!(out, "# HELP radshard_dynauth_retransmissions_total Requests sent again for want of an answer, by kind.\n# TYPE radshard_dynauth_retransmissions_total counter");
        for k in Kind::ALL {
            let _ = writeln!(
                out,
                "radshard_dynauth_retransmissions_total{{kind=\"{}\"}} {}",
                k.label(),
                self.retransmissions[k.index()].load(Relaxed)
            );
        }
        let _ = writeln!(out, "# HELP radshard_dynauth_answers_total How requests ended: ack, nak, timeout, or not sent (no_das, unroutable, overloaded, invalid), by kind and Error-Cause.\n# TYPE radshard_dynauth_answers_total counter");
        for k in Kind::ALL {
            for r in DasResult::ALL {
                for c in 0..CAUSES {
                    let i = (k.index() * RESULTS + r.index()) * CAUSES + c;
                    let v = self.answers.get(i).map_or(0, |a| a.load(Relaxed));
                    if v > 0 {
                        let _ = writeln!(
                            out,
                            "radshard_dynauth_answers_total{{kind=\"{}\",result=\"{}\",error_cause=\"{}\"}} {v}",
                            k.label(),
                            r.label(),
                            cause_label(c)
                        );
                    }
                }
            }
        }
        let _ = writeln!(out, "# HELP radshard_dynauth_replies_dropped_total Datagrams on the sender's sockets that answered nothing, by reason.\n# TYPE radshard_dynauth_replies_dropped_total counter");
        for (i, l) in Dropped::ALL_LABELS.iter().enumerate() {
            let _ = writeln!(
                out,
                "radshard_dynauth_replies_dropped_total{{reason=\"{l}\"}} {}",
                self.dropped[i].load(Relaxed)
            );
        }
        for (name, help, v) in [
            (
                "radshard_dynauth_in_flight",
                "Requests sent and not yet answered.",
                &self.in_flight,
            ),
            (
                "radshard_dynauth_queued",
                "Requests waiting for a free slot.",
                &self.queued,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {}",
                v.load(Relaxed)
            );
        }
        let _ = writeln!(out, "# HELP radshard_dynauth_listener_requests_total Verified requests from upstreams on the CoA listener, by kind.\n# TYPE radshard_dynauth_listener_requests_total counter");
        for k in Kind::ALL {
            let _ = writeln!(
                out,
                "radshard_dynauth_listener_requests_total{{kind=\"{}\"}} {}",
                k.label(),
                self.listener_requests[k.index()].load(Relaxed)
            );
        }
        let _ = writeln!(out, "# HELP radshard_dynauth_listener_answers_total Answers the CoA listener sent upstream, by kind and result.\n# TYPE radshard_dynauth_listener_answers_total counter");
        for k in Kind::ALL {
            for (j, r) in ["ack", "nak"].iter().enumerate() {
                let _ = writeln!(
                    out,
                    "radshard_dynauth_listener_answers_total{{kind=\"{}\",result=\"{r}\"}} {}",
                    k.label(),
                    self.listener_answers[k.index()][j].load(Relaxed)
                );
            }
        }
        let _ = writeln!(out, "# HELP radshard_dynauth_listener_replayed_total Upstream retransmissions answered from the reply cache.\n# TYPE radshard_dynauth_listener_replayed_total counter\nradshard_dynauth_listener_replayed_total {}", self.listener_replayed.load(Relaxed));
        let _ = writeln!(out, "# HELP radshard_dynauth_listener_dropped_total Datagrams the CoA listener dropped, by reason.\n# TYPE radshard_dynauth_listener_dropped_total counter");
        for w in ListenerDrop::ALL {
            let _ = writeln!(
                out,
                "radshard_dynauth_listener_dropped_total{{reason=\"{}\"}} {}",
                w.label(),
                self.listener_dropped[w as usize].load(Relaxed)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_answers_by_result_and_error_cause() {
        let m = DynAuthMetrics::default();
        m.request(Kind::Disconnect);
        let nak = DasOutcome {
            result: DasResult::Nak,
            error_cause: Some(ErrorCause::SESSION_CONTEXT_NOT_FOUND),
            das: None,
            attempts: 1,
        };
        m.outcome(Kind::Disconnect, &nak);
        m.outcome(Kind::Coa, &DasOutcome::unsent(DasResult::Timeout, None));
        m.outcome(
            Kind::Coa,
            &DasOutcome {
                error_cause: Some(ErrorCause::from_code(999)),
                ..nak.clone()
            },
        );
        let mut out = String::new();
        m.render(&mut out);
        assert!(
            out.contains("radshard_dynauth_requests_total{kind=\"disconnect\"} 1"),
            "{out}"
        );
        assert!(out.contains("radshard_dynauth_answers_total{kind=\"disconnect\",result=\"nak\",error_cause=\"Session-Context-Not-Found\"} 1"), "{out}");
        assert!(out.contains("radshard_dynauth_answers_total{kind=\"coa\",result=\"timeout\",error_cause=\"none\"} 1"), "{out}");
        assert!(out.contains("radshard_dynauth_answers_total{kind=\"coa\",result=\"nak\",error_cause=\"other\"} 1"), "{out}");
        assert!(
            !out.contains("radshard_dynauth_answers_total{kind=\"disconnect\",result=\"ack\""),
            "zero series are left out"
        );
        assert_eq!(m.answers(Kind::Coa, DasResult::Nak), 1);
    }
}
