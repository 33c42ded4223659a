//! EAP-MSCHAPv2 (EAP Type 26, draft-kamath-pppext-eap-mschapv2-02): the MS-CHAPv2 exchange
//! (RFC 2759) framed in EAP, the usual inner method of PEAP and a TTLS option. Both
//! directions, for the server and for the load generator.
//!
//! The Type-Data, after the EAP Type octet:
//!
//! ```text
//! OpCode(1) MS-CHAPv2-ID(1) MS-Length(2) Value-Size(1) Value Name     Challenge, Response
//! OpCode(1) MS-CHAPv2-ID(1) MS-Length(2) Message                     Request Success, Failure
//! OpCode(1)                                                          Response Success, Failure
//! ```
//!
//! MS-Length counts from the OpCode to the end, i.e. the EAP Length minus 5; it is checked
//! strictly. A Challenge's Value is the 16-octet authenticator challenge; a Response's is 49
//! octets: peer challenge (16), reserved (8, zero), NT-Response (24), flags (1). The layout of
//! hostap's eap_server_mschapv2.c and eap_mschapv2.c, the de-facto reference, is the same.
//!
//! The crypto (challenge hash, NT-Response, authenticator response) is not here: it is
//! `proto::crypto`'s, these are only the bytes.

use super::{EapCode, EapError, EapType};

pub const OP_CHALLENGE: u8 = 1;
pub const OP_RESPONSE: u8 = 2;
pub const OP_SUCCESS: u8 = 3;
pub const OP_FAILURE: u8 = 4;
pub const OP_CHANGE_PASSWORD: u8 = 7;

/// OpCode, MS-CHAPv2-ID, MS-Length.
const MS_HEADER: usize = 4;
/// Value-Size of a Challenge: the authenticator challenge.
const CHALLENGE_VALUE: u8 = 16;
/// Value-Size of a Response: peer challenge, reserved, NT-Response, flags.
const RESPONSE_VALUE: u8 = 49;
/// EAP header and Type octet, before the MS-CHAPv2 header.
const EAP_HEADER: usize = 5;

/// The server's Request: a fresh authenticator challenge and the server's name.
#[derive(Clone, Copy)]
pub struct Challenge<'a> {
    pub ms_id: u8,
    pub challenge: &'a [u8; 16],
    pub name: &'a [u8],
}

impl std::fmt::Debug for Challenge<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Challenge")
            .field("ms_id", &self.ms_id)
            .field("name", &String::from_utf8_lossy(self.name))
            .finish_non_exhaustive()
    }
}

/// The peer's answer. Its NT-Response is a function of the password's hash and can be
/// attacked offline, so it is never printed.
#[derive(Clone, Copy)]
pub struct Response<'a> {
    pub ms_id: u8,
    pub peer_challenge: &'a [u8; 16],
    pub nt_response: &'a [u8; 24],
    pub flags: u8,
    pub name: &'a [u8],
}

impl std::fmt::Debug for Response<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Response")
            .field("ms_id", &self.ms_id)
            .field("flags", &self.flags)
            .field("name", &String::from_utf8_lossy(self.name))
            .finish_non_exhaustive()
    }
}

/// One EAP-MSCHAPv2 packet. A Request carries Challenge, Success or Failure; a Response
/// carries Response, the one-octet acks of Success and Failure, or Change-Password (whose
/// body, the encrypted new password, is not read: this server does not offer the change).
#[derive(Debug, Clone, Copy)]
pub enum Message<'a> {
    Challenge(Challenge<'a>),
    Response(Response<'a>),
    /// The authenticator response and message, e.g. `S=<40 hex> M=OK`.
    Success {
        ms_id: u8,
        message: &'a [u8],
    },
    /// The error, e.g. `E=691 R=0 C=<32 hex> V=3 M=...`.
    Failure {
        ms_id: u8,
        message: &'a [u8],
    },
    SuccessAck,
    FailureAck,
    ChangePassword {
        ms_id: u8,
    },
}

/// Reads `type_data`, what follows the EAP Type octet of an EAP packet with Code `code`.
/// Request-side Success and Failure carry MS-CHAPv2-ID, MS-Length and a message;
/// Response-side Success and Failure are one OpCode octet (acks). An OpCode foreign to the
/// direction (a Challenge in a Response, say) is [`EapError::UnexpectedOpCode`].
pub fn parse(code: EapCode, type_data: &[u8]) -> Result<Message<'_>, EapError> {
    let &opcode = type_data.first().ok_or(EapError::BadMsChapV2)?;
    match (code, opcode) {
        (EapCode::Response, OP_SUCCESS | OP_FAILURE) => {
            if type_data.len() != 1 {
                return Err(EapError::BadMsChapV2);
            }
            Ok(if opcode == OP_SUCCESS {
                Message::SuccessAck
            } else {
                Message::FailureAck
            })
        }
        (EapCode::Request, OP_CHALLENGE) => {
            let (ms_id, body) = framed(type_data)?;
            let (challenge, name) = value(body, CHALLENGE_VALUE)?;
            let challenge = challenge.try_into().map_err(|_| EapError::BadMsChapV2)?;
            Ok(Message::Challenge(Challenge {
                ms_id,
                challenge,
                name,
            }))
        }
        (EapCode::Response, OP_RESPONSE) => {
            let (ms_id, body) = framed(type_data)?;
            let (v, name) = value(body, RESPONSE_VALUE)?;
            // Reserved (v[16..24]) must be zero by RFC 2759 §4 but, as hostap does, is not
            // checked: it carries nothing we use.
            let peer_challenge = v[..16].try_into().map_err(|_| EapError::BadMsChapV2)?;
            let nt_response = v[24..48].try_into().map_err(|_| EapError::BadMsChapV2)?;
            Ok(Message::Response(Response {
                ms_id,
                peer_challenge,
                nt_response,
                flags: v[48],
                name,
            }))
        }
        (EapCode::Request, OP_SUCCESS) => {
            let (ms_id, message) = framed(type_data)?;
            Ok(Message::Success { ms_id, message })
        }
        (EapCode::Request, OP_FAILURE) => {
            let (ms_id, message) = framed(type_data)?;
            Ok(Message::Failure { ms_id, message })
        }
        (EapCode::Response, OP_CHANGE_PASSWORD) => {
            let (ms_id, _) = framed(type_data)?;
            Ok(Message::ChangePassword { ms_id })
        }
        (EapCode::Request | EapCode::Response, _) => Err(EapError::UnexpectedOpCode(opcode)),
        // EAP Success and Failure have no Type, hence no MS-CHAPv2.
        (EapCode::Success | EapCode::Failure, _) => Err(EapError::BadMsChapV2),
    }
}

/// The MS-CHAPv2-ID and what follows MS-Length, once MS-Length matches the octets.
fn framed(type_data: &[u8]) -> Result<(u8, &[u8]), EapError> {
    let (header, body) = type_data
        .split_first_chunk::<MS_HEADER>()
        .ok_or(EapError::BadMsChapV2)?;
    let ms_length = u16::from_be_bytes([header[2], header[3]]);
    if usize::from(ms_length) != type_data.len() {
        return Err(EapError::BadMsLength);
    }
    Ok((header[1], body))
}

/// Value-Size (which must be `size`), the Value, and the Name after it.
fn value(body: &[u8], size: u8) -> Result<(&[u8], &[u8]), EapError> {
    let (&value_size, rest) = body.split_first().ok_or(EapError::BadMsChapV2)?;
    if value_size != size {
        return Err(EapError::BadMsChapV2);
    }
    if rest.len() < usize::from(size) {
        return Err(EapError::BadMsChapV2);
    }
    Ok(rest.split_at(usize::from(size)))
}

/// Writes the EAP header, Type 26, the MS-CHAPv2 header and `parts` in order: the length, or
/// `None` when it does not fit `out` or an EAP Length.
fn write_framed(
    out: &mut [u8],
    code: EapCode,
    eap_id: u8,
    opcode: u8,
    ms_id: u8,
    parts: &[&[u8]],
) -> Option<usize> {
    let body = parts
        .iter()
        .try_fold(0usize, |acc, p| acc.checked_add(p.len()))?;
    let ms_length = MS_HEADER.checked_add(body)?;
    let len = EAP_HEADER.checked_add(ms_length)?;
    let declared = u16::try_from(len).ok()?;
    // ms_length < len, so it fits too.
    let ms_declared = u16::try_from(ms_length).ok()?;
    let dst = out.get_mut(..len)?;
    dst[0] = code.to_u8();
    dst[1] = eap_id;
    dst[2..4].copy_from_slice(&declared.to_be_bytes());
    dst[4] = EapType::MsChapV2.to_u8();
    dst[5] = opcode;
    dst[6] = ms_id;
    dst[7..9].copy_from_slice(&ms_declared.to_be_bytes());
    let mut at = EAP_HEADER + MS_HEADER;
    for p in parts {
        dst[at..at + p.len()].copy_from_slice(p);
        at += p.len();
    }
    Some(len)
}

/// A whole EAP-Request/MSCHAPv2 Challenge.
pub fn write_challenge(
    out: &mut [u8],
    eap_id: u8,
    ms_id: u8,
    challenge: &[u8; 16],
    name: &[u8],
) -> Option<usize> {
    write_framed(
        out,
        EapCode::Request,
        eap_id,
        OP_CHALLENGE,
        ms_id,
        &[&[CHALLENGE_VALUE], challenge, name],
    )
}

/// A whole EAP-Response/MSCHAPv2 Response (reserved octets and flags zero).
pub fn write_response(
    out: &mut [u8],
    eap_id: u8,
    ms_id: u8,
    peer_challenge: &[u8; 16],
    nt_response: &[u8; 24],
    name: &[u8],
) -> Option<usize> {
    write_framed(
        out,
        EapCode::Response,
        eap_id,
        OP_RESPONSE,
        ms_id,
        &[
            &[RESPONSE_VALUE],
            peer_challenge,
            &[0; 8],
            nt_response,
            &[0],
            name,
        ],
    )
}

/// A whole EAP-Request/MSCHAPv2 Success, `message` e.g. `S=<40 hex> M=OK`.
pub fn write_success(out: &mut [u8], eap_id: u8, ms_id: u8, message: &[u8]) -> Option<usize> {
    write_framed(out, EapCode::Request, eap_id, OP_SUCCESS, ms_id, &[message])
}

/// A whole EAP-Request/MSCHAPv2 Failure, `message` e.g. `E=691 R=0 C=<32 hex> V=3 M=...`.
pub fn write_failure(out: &mut [u8], eap_id: u8, ms_id: u8, message: &[u8]) -> Option<usize> {
    write_framed(out, EapCode::Request, eap_id, OP_FAILURE, ms_id, &[message])
}

/// A whole EAP-Response/MSCHAPv2 acknowledging a Success or a Failure: the OpCode alone.
/// `None` for another `opcode`, or when `out` is too small.
pub fn write_ack(out: &mut [u8], eap_id: u8, opcode: u8) -> Option<usize> {
    if opcode != OP_SUCCESS && opcode != OP_FAILURE {
        return None;
    }
    let dst = out.get_mut(..6)?;
    dst.copy_from_slice(&[
        EapCode::Response.to_u8(),
        eap_id,
        0,
        6,
        EapType::MsChapV2.to_u8(),
        opcode,
    ]);
    Some(6)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::eap::EapPacket;
    use proptest::prelude::*;

    // RFC 2759 §9.2's test values.
    const AUTH_CHALLENGE: [u8; 16] = [
        0x5B, 0x5D, 0x7C, 0x7D, 0x7B, 0x3F, 0x2F, 0x3E, 0x3C, 0x2C, 0x60, 0x21, 0x32, 0x26, 0x26,
        0x28,
    ];
    const PEER_CHALLENGE: [u8; 16] = [
        0x21, 0x40, 0x23, 0x24, 0x25, 0x5E, 0x26, 0x2A, 0x28, 0x29, 0x5F, 0x2B, 0x3A, 0x33, 0x7C,
        0x7E,
    ];
    const NT_RESPONSE: [u8; 24] = [
        0x82, 0x30, 0x9E, 0xCD, 0x8D, 0x70, 0x8B, 0x5E, 0xA0, 0x8F, 0xAA, 0x39, 0x81, 0xCD, 0x83,
        0x54, 0x42, 0x33, 0x11, 0x4A, 0x3D, 0x85, 0xD6, 0xDF,
    ];
    const SUCCESS: &[u8] = b"S=407A5589115FD0D6209F510FE9C04566932CDA56 M=OK";

    fn concat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    fn type_data(packet: &[u8]) -> (EapCode, &[u8]) {
        let p = EapPacket::parse(packet).unwrap();
        assert_eq!(p.eap_type(), Some(EapType::MsChapV2));
        (p.code(), p.type_data())
    }

    /// RFC 2759 §9.2's values laid out as draft-kamath-pppext-eap-mschapv2-02 §2 and hostap's
    /// eap_server_mschapv2.c (Challenge with server name "hostapd") and eap_mschapv2.c
    /// (Response with the peer's identity "User") frame them.
    #[test]
    fn known_vectors() {
        let challenge = concat(&[
            &[0x01, 0x07, 0x00, 0x21, 0x1a], // Request, id 7, length 33, Type 26
            &[0x01, 0x03, 0x00, 0x1c, 0x10], // Challenge, ms_id 3, MS-Length 28, size 16
            &AUTH_CHALLENGE,
            b"hostapd",
        ]);
        let mut buf = [0u8; 128];
        let n = write_challenge(&mut buf, 7, 3, &AUTH_CHALLENGE, b"hostapd").unwrap();
        assert_eq!(buf[..n], challenge[..]);
        let (code, td) = type_data(&challenge);
        let Ok(Message::Challenge(c)) = parse(code, td) else {
            panic!("not a challenge");
        };
        assert_eq!(
            (c.ms_id, c.challenge, c.name),
            (3, &AUTH_CHALLENGE, &b"hostapd"[..])
        );

        let response = concat(&[
            &[0x02, 0x07, 0x00, 0x3f, 0x1a], // Response, id 7, length 63, Type 26
            &[0x02, 0x03, 0x00, 0x3a, 0x31], // Response, ms_id 3, MS-Length 58, size 49
            &PEER_CHALLENGE,
            &[0; 8],
            &NT_RESPONSE,
            &[0x00],
            b"User",
        ]);
        let n = write_response(&mut buf, 7, 3, &PEER_CHALLENGE, &NT_RESPONSE, b"User").unwrap();
        assert_eq!(buf[..n], response[..]);
        let (code, td) = type_data(&response);
        let Ok(Message::Response(r)) = parse(code, td) else {
            panic!("not a response");
        };
        assert_eq!(r.ms_id, 3);
        assert_eq!(r.peer_challenge, &PEER_CHALLENGE);
        assert_eq!(r.nt_response, &NT_RESPONSE);
        assert_eq!((r.flags, r.name), (0, &b"User"[..]));

        let success = concat(&[
            &[0x01, 0x08, 0x00, 0x38, 0x1a], // Request, id 8, length 56, Type 26
            &[0x03, 0x03, 0x00, 0x33],       // Success, ms_id 3, MS-Length 51
            SUCCESS,
        ]);
        let n = write_success(&mut buf, 8, 3, SUCCESS).unwrap();
        assert_eq!(buf[..n], success[..]);
        let (code, td) = type_data(&success);
        let Ok(Message::Success { ms_id: 3, message }) = parse(code, td) else {
            panic!("not a success");
        };
        assert_eq!(message, SUCCESS);

        let ack = [0x02, 0x08, 0x00, 0x06, 0x1a, 0x03];
        assert_eq!(write_ack(&mut buf, 8, OP_SUCCESS), Some(6));
        assert_eq!(buf[..6], ack);
        assert!(matches!(
            parse(EapCode::Response, &ack[5..]),
            Ok(Message::SuccessAck)
        ));
    }

    #[test]
    fn failure_round_trips() {
        let msg = b"E=691 R=0 C=00112233445566778899AABBCCDDEEFF V=3 M=bad password";
        let mut buf = [0u8; 128];
        let n = write_failure(&mut buf, 9, 4, msg).unwrap();
        let (code, td) = type_data(&buf[..n]);
        let Ok(Message::Failure { ms_id: 4, message }) = parse(code, td) else {
            panic!("not a failure");
        };
        assert_eq!(message, msg);
        let n = write_ack(&mut buf, 9, OP_FAILURE).unwrap();
        let (code, td) = type_data(&buf[..n]);
        assert!(matches!(parse(code, td), Ok(Message::FailureAck)));
        // Empty messages and names are fine.
        let n = write_success(&mut buf, 1, 1, b"").unwrap();
        assert_eq!(n, 9);
        let (code, td) = type_data(&buf[..n]);
        assert!(matches!(
            parse(code, td),
            Ok(Message::Success { message: b"", .. })
        ));
        let n = write_challenge(&mut buf, 1, 1, &[0; 16], b"").unwrap();
        let (code, td) = type_data(&buf[..n]);
        assert!(matches!(parse(code, td), Ok(Message::Challenge(c)) if c.name.is_empty()));
    }

    #[test]
    fn change_password_gives_its_id() {
        // 4 header + 516 encrypted password + 16 encrypted hash + 16 peer challenge
        // + 8 reserved + 24 NT-Response + 2 flags = 586 (RFC 2759 §7, hostap's layout).
        let mut td = vec![0u8; 586];
        td[0] = OP_CHANGE_PASSWORD;
        td[1] = 5;
        td[2..4].copy_from_slice(&586u16.to_be_bytes());
        assert!(matches!(
            parse(EapCode::Response, &td),
            Ok(Message::ChangePassword { ms_id: 5 })
        ));
        td[3] ^= 1;
        assert!(matches!(
            parse(EapCode::Response, &td),
            Err(EapError::BadMsLength)
        ));
    }

    #[test]
    fn bad_packets_are_errors() {
        use EapCode::{Failure, Request, Response, Success};
        let mut challenge = [0u8; 64];
        let n = write_challenge(&mut challenge, 1, 1, &[7; 16], b"srv").unwrap();
        let ch = &challenge[5..n];
        let mut resp = [0u8; 64];
        let n = write_response(&mut resp, 1, 1, &[1; 16], &[2; 24], b"u").unwrap();
        let rs = &resp[5..n];
        let with_len = |td: &[u8], ms_len: u16| {
            let mut v = td.to_vec();
            v[2..4].copy_from_slice(&ms_len.to_be_bytes());
            v
        };
        let mut bad_size = ch.to_vec();
        bad_size[4] = 15;
        let mut bad_rsize = rs.to_vec();
        bad_rsize[4] = 48;
        // Value-Size 16 and MS-Length right, but the value cut short.
        let short_value = [OP_CHALLENGE, 1, 0, 10, 16, 1, 2, 3, 4, 5];
        let short_resp = [OP_RESPONSE, 1, 0, 6, 49, 0];
        let cases: &[(EapCode, &[u8], EapError)] = &[
            (Request, &[], EapError::BadMsChapV2),
            (Response, &[], EapError::BadMsChapV2),
            (Request, &[OP_SUCCESS, 1, 0], EapError::BadMsChapV2),
            (Request, &[OP_CHALLENGE, 1, 0, 4], EapError::BadMsChapV2),
            (
                Request,
                &with_len(ch, ch.len() as u16 + 1),
                EapError::BadMsLength,
            ),
            (
                Request,
                &with_len(ch, ch.len() as u16 - 1),
                EapError::BadMsLength,
            ),
            (Response, &with_len(rs, 0), EapError::BadMsLength),
            (Request, &[OP_FAILURE, 1, 0, 6, b'E'], EapError::BadMsLength),
            (Request, &bad_size, EapError::BadMsChapV2),
            (Response, &bad_rsize, EapError::BadMsChapV2),
            (Request, &short_value, EapError::BadMsChapV2),
            (Response, &short_resp, EapError::BadMsChapV2),
            // Acks are one octet.
            (Response, &[OP_SUCCESS, 0], EapError::BadMsChapV2),
            (Response, &[OP_FAILURE, 1, 0, 4], EapError::BadMsChapV2),
            // Wrong direction.
            (Response, ch, EapError::UnexpectedOpCode(OP_CHALLENGE)),
            (Request, rs, EapError::UnexpectedOpCode(OP_RESPONSE)),
            (
                Request,
                &[OP_CHANGE_PASSWORD, 1, 0, 4],
                EapError::UnexpectedOpCode(7),
            ),
            (Request, &[5, 1, 0, 4], EapError::UnexpectedOpCode(5)),
            (Success, ch, EapError::BadMsChapV2),
            (Failure, &[OP_FAILURE], EapError::BadMsChapV2),
        ];
        for (code, td, want) in cases {
            assert_eq!(parse(*code, td).map(|_| ()), Err(*want), "{code:?} {td:?}");
        }
    }

    #[test]
    fn write_limits() {
        let mut buf = vec![0u8; 70_000];
        // 5 + 4 + message = 65535 is the largest EAP Length.
        assert_eq!(write_success(&mut buf, 1, 1, &[b'x'; 65526]), Some(65535));
        assert_eq!(write_success(&mut buf, 1, 1, &[b'x'; 65527]), None);
        let (code, td) = type_data(&buf[..65535]);
        assert!(parse(code, td).is_ok());
        // 5 + 4 + 1 + 16 + name.
        assert_eq!(
            write_challenge(&mut buf, 1, 1, &[0; 16], &[b'n'; 65509]),
            Some(65535)
        );
        assert_eq!(
            write_challenge(&mut buf, 1, 1, &[0; 16], &[b'n'; 65510]),
            None
        );
        // The buffer exactly fits, then is one octet short.
        let mut exact = [0u8; 26];
        assert_eq!(write_challenge(&mut exact, 1, 1, &[0; 16], b""), Some(26));
        assert_eq!(write_challenge(&mut exact, 1, 1, &[0; 16], b"n"), None);
        assert_eq!(write_ack(&mut exact[..5], 1, OP_SUCCESS), None);
        assert_eq!(write_ack(&mut exact, 1, OP_CHALLENGE), None);
    }

    #[test]
    fn debug_hides_the_nt_response() {
        let mut buf = [0u8; 80];
        let n = write_response(&mut buf, 1, 1, &[0xAB; 16], &[0xCD; 24], b"alice").unwrap();
        let m = parse(EapCode::Response, &buf[5..n]).unwrap();
        let s = format!("{m:?}");
        assert!(
            s.contains("alice") && !s.contains("205") && !s.contains("171"),
            "{s}"
        );
    }

    proptest! {
        #[test]
        fn parse_never_panics(
            response in any::<bool>(),
            bytes in proptest::collection::vec(any::<u8>(), 0..96),
        ) {
            let code = if response { EapCode::Response } else { EapCode::Request };
            let _ = parse(code, &bytes);
        }

        #[test]
        fn response_round_trips(
            id in any::<u8>(),
            pc in any::<[u8; 16]>(),
            nt in any::<[u8; 24]>(),
            name in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let mut buf = [0u8; 160];
            let n = write_response(&mut buf, 9, id, &pc, &nt, &name).unwrap();
            let Ok(Message::Response(r)) = parse(EapCode::Response, &buf[5..n]) else {
                return Err(TestCaseError::fail("no response"));
            };
            prop_assert_eq!((r.ms_id, r.peer_challenge, r.nt_response), (id, &pc, &nt));
            prop_assert_eq!(r.name, &name[..]);
        }
    }
}
