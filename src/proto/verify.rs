//! The trust boundary: checking a packet against its shared secret.

use super::attr::EAP_MESSAGE;
use super::code::Code;
use super::crypto::authenticator::{
    md5_authenticator_ok, message_authenticator_ok, ZERO_AUTHENTICATOR,
};
use super::error::VerifyError;
use super::packet::Packet;
use super::secret::Secret;
use super::verified::Verified;

/// Authenticates a request from a client whose secret is `secret`.
///
/// * Access-Request: a Message-Authenticator, if present, must verify. It
///   is mandatory when `require_message_authenticator` is set (BlastRADIUS
///   mitigation) or when EAP-Message is present (RFC 3579 §3.3).
/// * Status-Server: Message-Authenticator is always mandatory (RFC 5997 §3).
/// * Accounting-, CoA- and Disconnect-Request: the Request Authenticator
///   must equal MD5(header with zero authenticator + attributes + secret)
///   (RFC 2866 §3, RFC 5176 §3.5); a Message-Authenticator, if present, is
///   checked too, computed over a zero Authenticator (RFC 5176 §3.1).
/// * Anything else: [`VerifyError::NotARequest`].
///
/// All comparisons are constant time.
pub fn verify_request<'a>(
    packet: Packet<'a>,
    secret: &'a Secret,
    require_message_authenticator: bool,
) -> Result<Verified<'a>, VerifyError> {
    let bytes = packet.as_bytes();
    let ma = packet.message_authenticator_offset();
    match packet.code() {
        Code::AccessRequest | Code::StatusServer => {
            match ma {
                Some(off) => {
                    if !message_authenticator_ok(secret, bytes, packet.authenticator(), off) {
                        return Err(VerifyError::BadMessageAuthenticator);
                    }
                }
                None => {
                    // Only pay for the EAP scan when MA is absent.
                    let required = require_message_authenticator
                        || packet.code() == Code::StatusServer
                        || packet.attr(EAP_MESSAGE).is_some();
                    if required {
                        return Err(VerifyError::MissingMessageAuthenticator);
                    }
                }
            }
        }
        Code::AccountingRequest | Code::CoaRequest | Code::DisconnectRequest => {
            if !md5_authenticator_ok(secret, bytes, &ZERO_AUTHENTICATOR) {
                return Err(VerifyError::BadRequestAuthenticator);
            }
            if let Some(off) = ma {
                if !message_authenticator_ok(secret, bytes, &ZERO_AUTHENTICATOR, off) {
                    return Err(VerifyError::BadMessageAuthenticator);
                }
            }
        }
        _ => return Err(VerifyError::NotARequest),
    }
    Ok(Verified::new(packet, secret))
}

/// Client side: authenticates `reply` to a request that carried
/// `request_authenticator`.
///
/// Checks the Response Authenticator, MD5(Code + ID + Length +
/// RequestAuth + Attributes + Secret) (RFC 2865 §3), and, if present, the
/// reply's Message-Authenticator, computed with the Request Authenticator in
/// the header field (RFC 3579 §3.2). Request codes are refused with
/// [`VerifyError::NotAResponse`].
pub fn verify_response(
    reply: &Packet<'_>,
    request_authenticator: &[u8; 16],
    secret: &Secret,
) -> Result<(), VerifyError> {
    if reply.code().is_request() {
        return Err(VerifyError::NotAResponse);
    }
    let bytes = reply.as_bytes();
    if !md5_authenticator_ok(secret, bytes, request_authenticator) {
        return Err(VerifyError::BadResponseAuthenticator);
    }
    if let Some(off) = reply.message_authenticator_offset() {
        if !message_authenticator_ok(secret, bytes, request_authenticator, off) {
            return Err(VerifyError::BadMessageAuthenticator);
        }
    }
    Ok(())
}
