//! What became of one Disconnect-Request or CoA-Request: what the API returns and the logs and
//! metrics report.

use std::net::SocketAddr;

use serde::Serialize;

use super::error_cause::ErrorCause;

/// The end of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DasResult {
    /// Disconnect-ACK or CoA-ACK.
    Ack,
    /// Disconnect-NAK or CoA-NAK (its Error-Cause in [`DasOutcome::error_cause`]).
    Nak,
    /// No verified answer after every retransmission.
    Timeout,
    /// The session's client has no `das` (or is no longer configured).
    NoDas,
    /// The request could not be sent (no route to the DAS, the sender stopped).
    Unroutable,
    /// `max_outstanding` in flight and `max_queued` waiting: refused, not sent.
    Overloaded,
    /// The request cannot be built (too long, an attribute that needs per-packet crypto).
    Invalid,
}

impl DasResult {
    pub const ALL: [DasResult; 7] = [
        DasResult::Ack,
        DasResult::Nak,
        DasResult::Timeout,
        DasResult::NoDas,
        DasResult::Unroutable,
        DasResult::Overloaded,
        DasResult::Invalid,
    ];

    /// The metrics label (the serialised spelling).
    pub const fn label(self) -> &'static str {
        match self {
            DasResult::Ack => "ack",
            DasResult::Nak => "nak",
            DasResult::Timeout => "timeout",
            DasResult::NoDas => "no_das",
            DasResult::Unroutable => "unroutable",
            DasResult::Overloaded => "overloaded",
            DasResult::Invalid => "invalid",
        }
    }

    /// Whether the DAS was reached and answered (ack, nak) or waited on (timeout): the
    /// `answers` metric; the others never left.
    pub const fn was_sent(self) -> bool {
        matches!(self, DasResult::Ack | DasResult::Nak | DasResult::Timeout)
    }

    pub const fn index(self) -> usize {
        self as usize
    }
}

/// The outcome of one request, as the admin API serialises it:
/// `{"result": "nak", "error_cause": {"code": 503, "name": "Session-Context-Not-Found"},
/// "das": "192.0.2.1:3799", "attempts": 1}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DasOutcome {
    pub result: DasResult,
    pub error_cause: Option<ErrorCause>,
    /// Where it went (or would have gone).
    pub das: Option<SocketAddr>,
    /// Transmissions made: 1 + retransmissions; 0 when nothing was sent.
    pub attempts: u32,
}

impl DasOutcome {
    /// An outcome without an answer.
    pub fn unsent(result: DasResult, das: Option<SocketAddr>) -> DasOutcome {
        DasOutcome {
            result,
            error_cause: None,
            das,
            attempts: 0,
        }
    }

    pub fn is_ack(&self) -> bool {
        self.result == DasResult::Ack
    }
}

impl std::fmt::Display for DasOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.result.label())?;
        if let Some(c) = &self.error_cause {
            write!(f, " {c}")?;
        }
        Ok(())
    }
}
