//! RADIUS packet codes (RFC 2865 §3, RFC 2866, RFC 5176, RFC 5997).

/// The Code field of a RADIUS packet. Only codes the server understands are
/// representable; anything else is rejected by [`crate::proto::Packet::parse`].
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Code {
    AccessRequest = 1,
    AccessAccept = 2,
    AccessReject = 3,
    AccountingRequest = 4,
    AccountingResponse = 5,
    AccessChallenge = 11,
    StatusServer = 12,
    StatusClient = 13,
    DisconnectRequest = 40,
    DisconnectAck = 41,
    DisconnectNak = 42,
    CoaRequest = 43,
    CoaAck = 44,
    CoaNak = 45,
}

impl Code {
    /// Maps a wire octet to a known code.
    pub const fn from_u8(v: u8) -> Option<Code> {
        Some(match v {
            1 => Code::AccessRequest,
            2 => Code::AccessAccept,
            3 => Code::AccessReject,
            4 => Code::AccountingRequest,
            5 => Code::AccountingResponse,
            11 => Code::AccessChallenge,
            12 => Code::StatusServer,
            13 => Code::StatusClient,
            40 => Code::DisconnectRequest,
            41 => Code::DisconnectAck,
            42 => Code::DisconnectNak,
            43 => Code::CoaRequest,
            44 => Code::CoaAck,
            45 => Code::CoaNak,
            _ => return None,
        })
    }

    /// The wire octet.
    pub const fn as_u8(self) -> u8 {
        self as u8
    }

    /// True for codes a client sends to a server (or a dynamic-authorization
    /// server's peer sends to a NAS). Status-Client (13) is counted as a
    /// response: RFC 5997 leaves it unused and no server should accept it as
    /// a request.
    pub const fn is_request(self) -> bool {
        matches!(
            self,
            Code::AccessRequest
                | Code::AccountingRequest
                | Code::StatusServer
                | Code::DisconnectRequest
                | Code::CoaRequest
        )
    }

    /// The RFC spelling, for logs and metrics.
    pub const fn name(self) -> &'static str {
        match self {
            Code::AccessRequest => "Access-Request",
            Code::AccessAccept => "Access-Accept",
            Code::AccessReject => "Access-Reject",
            Code::AccountingRequest => "Accounting-Request",
            Code::AccountingResponse => "Accounting-Response",
            Code::AccessChallenge => "Access-Challenge",
            Code::StatusServer => "Status-Server",
            Code::StatusClient => "Status-Client",
            Code::DisconnectRequest => "Disconnect-Request",
            Code::DisconnectAck => "Disconnect-ACK",
            Code::DisconnectNak => "Disconnect-NAK",
            Code::CoaRequest => "CoA-Request",
            Code::CoaAck => "CoA-ACK",
            Code::CoaNak => "CoA-NAK",
        }
    }

    /// Codes whose Request Authenticator is an MD5 over the packet (RFC 2866
    /// §3, RFC 5176 §3.5) rather than a random nonce.
    pub(crate) const fn has_computed_request_authenticator(self) -> bool {
        matches!(
            self,
            Code::AccountingRequest | Code::DisconnectRequest | Code::CoaRequest
        )
    }
}

impl core::fmt::Display for Code {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_octet() {
        for v in 0..=255u8 {
            if let Some(c) = Code::from_u8(v) {
                assert_eq!(c.as_u8(), v);
                assert!(!c.name().is_empty());
            }
        }
        assert_eq!(Code::from_u8(0), None);
        assert_eq!(Code::from_u8(46), None);
        assert!(Code::AccessRequest.is_request());
        assert!(!Code::AccessAccept.is_request());
        assert_eq!(Code::CoaNak.name(), "CoA-NAK");
    }
}
