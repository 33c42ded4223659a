//! PEAPv0's inner conversation, the peer's side: inner EAP-Identity, EAP-MSCHAPv2 (RFC 2759
//! inside draft-kamath-pppext-eap-mschapv2) with the server's `S=` checked, the Success
//! acknowledgement, then the Result TLV (MS-PEAP §2.2.8.1) answered in kind. Inner packets
//! travel without their 4-octet EAP header except Type-33 (Extensions) packets, as MS-PEAP
//! §3.1.5 says; [`crate::proto::eap::peap`] does that framing.
//!
//! Fed one decrypted inner packet at a time; writes the answer (still to be encrypted) into a
//! caller's buffer. No I/O, no clock.

use rand::RngCore;
use subtle::ConstantTimeEq;

use crate::proto::crypto::mschap::{
    authenticator_response, generate_nt_response, nt_password_hash, nt_password_hash_hash,
    strip_domain, HASH_LEN,
};
use crate::proto::eap::mschapv2::{self, Message, OP_FAILURE, OP_SUCCESS};
use crate::proto::eap::peap::{
    is_extensions_packet, read_extensions, with_header, without_header, write_result, TlvResult,
};
use crate::proto::eap::{write_packet, EapCode, EapError, EapPacket, EapType};
use crate::proto::wipe;

/// Room for an inner packet, ours or the server's (an MS-CHAPv2 Response with a 128-octet
/// name is 187 octets; a Failure message or a Challenge with a long server name more).
const INNER_MAX: usize = 1024;
/// `S=` and 40 hex digits.
const AUTH_STRING: usize = 42;

/// A user's MS-CHAPv2 secrets, hashed once per run (MD4 of the password, and MD4 of that).
pub struct NtHashes {
    nt: [u8; HASH_LEN],
    nt_hash: [u8; HASH_LEN],
}

impl Drop for NtHashes {
    fn drop(&mut self) {
        wipe(&mut self.nt);
        wipe(&mut self.nt_hash);
    }
}

impl NtHashes {
    /// `None` when the password is not UTF-8 or too long for MS-CHAP.
    pub fn of_password(password: &[u8]) -> Option<NtHashes> {
        let nt = nt_password_hash(password)?;
        Some(NtHashes {
            nt_hash: nt_password_hash_hash(&nt),
            nt,
        })
    }
}

/// Who the inner method authenticates.
pub struct InnerUser<'a> {
    pub name: &'a [u8],
    pub hashes: &'a NtHashes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InnerError {
    #[error("malformed inner EAP: {0}")]
    Eap(#[from] EapError),
    #[error("the server's MS-CHAPv2 Success does not carry the authenticator response the password gives")]
    BadAuthenticatorResponse,
    #[error("unexpected inner packet: {0}")]
    Unexpected(&'static str),
    #[error("an inner packet too large for our buffer")]
    TooLarge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Nothing inner yet (an Identity request comes first; on a resumed session the Result).
    Start,
    /// Our identity went; the MS-CHAPv2 Challenge is due.
    Challenge,
    /// Our Response went; Success (or Failure) is due.
    Success,
    /// The server proved it knows the password; its Result TLV is due.
    Result,
    /// We answered a success Result: the outer EAP-Success may come.
    Done,
    /// The server said failure (MS-CHAPv2 Failure or a failure Result).
    Failed,
}

/// The inner state of one PEAP login.
pub struct PeapPeer {
    stage: Stage,
    /// The authenticator response a server knowing the password sends back.
    expected: [u8; 20],
}

impl Default for PeapPeer {
    fn default() -> Self {
        PeapPeer {
            stage: Stage::Start,
            expected: [0; 20],
        }
    }
}

impl PeapPeer {
    pub fn reset(&mut self) {
        self.stage = Stage::Start;
        wipe(&mut self.expected);
    }

    /// Whether we answered the server's success Result (the only state an Accept may follow).
    pub fn done(&self) -> bool {
        self.stage == Stage::Done
    }

    /// Handles one decrypted inner packet and appends our answer to `out`. `outer_id` is the
    /// identifier of the outer EAP-Request that carried it (header-less packets take it, as
    /// hostap's peer does); `resumed` allows a Result with no inner method before it (servers
    /// skip phase 2 on a resumed session).
    pub fn handle(
        &mut self,
        inner: &[u8],
        outer_id: u8,
        resumed: bool,
        user: &InnerUser<'_>,
        rng: &mut impl RngCore,
        out: &mut Vec<u8>,
    ) -> Result<(), InnerError> {
        let InnerUser { name, hashes } = *user;
        let mut buf = [0u8; INNER_MAX];
        if is_extensions_packet(inner) {
            let p = EapPacket::parse(inner)?;
            if p.code() != EapCode::Request {
                return Err(InnerError::Unexpected(
                    "an Extensions packet that is not a Request",
                ));
            }
            // A Crypto-Binding TLV (MS-PEAP §2.2.8.2) is not answered: servers that require
            // it (NPS with cryptobinding enforced) are out of scope for this loader.
            let result = read_extensions(p.type_data())?.result;
            let ok_now = self.stage == Stage::Result || (resumed && self.stage == Stage::Start);
            let answer = match result {
                TlvResult::Success if ok_now => {
                    self.stage = Stage::Done;
                    TlvResult::Success
                }
                TlvResult::Success => {
                    return Err(InnerError::Unexpected(
                        "a success Result before MS-CHAPv2 finished",
                    ))
                }
                TlvResult::Failure => {
                    self.stage = Stage::Failed;
                    TlvResult::Failure
                }
            };
            let n = write_result(&mut buf, EapCode::Response, p.identifier(), answer)
                .ok_or(InnerError::TooLarge)?;
            out.extend_from_slice(&buf[..n]);
            return Ok(());
        }

        let mut whole = [0u8; INNER_MAX];
        let n = with_header(&mut whole, EapCode::Request, outer_id, inner)
            .ok_or(InnerError::TooLarge)?;
        let p = EapPacket::parse(&whole[..n])?;
        if p.code() != EapCode::Request {
            return Err(InnerError::Unexpected(
                "an inner packet that is not a Request",
            ));
        }
        let id = p.identifier();
        let n = match p.eap_type() {
            // A repeated Identity request (a lost answer) is answered again.
            Some(EapType::Identity) if matches!(self.stage, Stage::Start | Stage::Challenge) => {
                self.stage = Stage::Challenge;
                write_packet(&mut buf, EapCode::Response, id, EapType::Identity, name)
            }
            Some(EapType::MsChapV2) => {
                return self.mschapv2(p.type_data(), id, name, hashes, rng, out);
            }
            // Another inner method first (a server's default_eap_type): ask for MS-CHAPv2.
            Some(_) if self.stage == Stage::Challenge => write_packet(
                &mut buf,
                EapCode::Response,
                id,
                EapType::Nak,
                &[EapType::MsChapV2.to_u8()],
            ),
            _ => return Err(InnerError::Unexpected("an inner Request out of turn")),
        }
        .ok_or(InnerError::TooLarge)?;
        out.extend_from_slice(without_header(&buf[..n]));
        Ok(())
    }

    fn mschapv2(
        &mut self,
        type_data: &[u8],
        id: u8,
        name: &[u8],
        hashes: &NtHashes,
        rng: &mut impl RngCore,
        out: &mut Vec<u8>,
    ) -> Result<(), InnerError> {
        let mut buf = [0u8; INNER_MAX];
        let n = match mschapv2::parse(EapCode::Request, type_data)? {
            Message::Challenge(c) if self.stage == Stage::Challenge => {
                let mut peer_challenge = [0u8; 16];
                rng.fill_bytes(&mut peer_challenge);
                // RFC 2759 §4: the challenge hash is over the account name without `DOMAIN\`.
                let account = strip_domain(name);
                let nt_response =
                    generate_nt_response(c.challenge, &peer_challenge, account, &hashes.nt);
                self.expected = authenticator_response(
                    &hashes.nt_hash,
                    &nt_response,
                    &peer_challenge,
                    c.challenge,
                    account,
                );
                self.stage = Stage::Success;
                mschapv2::write_response(&mut buf, id, c.ms_id, &peer_challenge, &nt_response, name)
            }
            Message::Success { message, .. } if self.stage == Stage::Success => {
                if !authenticator_string_is(message, &self.expected) {
                    return Err(InnerError::BadAuthenticatorResponse);
                }
                self.stage = Stage::Result;
                mschapv2::write_ack(&mut buf, id, OP_SUCCESS)
            }
            Message::Failure { .. } if self.stage == Stage::Success => {
                self.stage = Stage::Failed;
                mschapv2::write_ack(&mut buf, id, OP_FAILURE)
            }
            _ => return Err(InnerError::Unexpected("an MS-CHAPv2 packet out of turn")),
        }
        .ok_or(InnerError::TooLarge)?;
        out.extend_from_slice(without_header(&buf[..n]));
        Ok(())
    }
}

/// Whether a Success message (`S=<40 upper-case hex> M=...` or just `S=...`) carries
/// `expected`, compared in constant time.
fn authenticator_string_is(message: &[u8], expected: &[u8; 20]) -> bool {
    let (Some(head), rest) = (message.get(..AUTH_STRING), message.get(AUTH_STRING..)) else {
        return false;
    };
    if !matches!(rest, Some([] | [b' ', ..])) {
        return false;
    }
    let Some(hex) = head.strip_prefix(b"S=") else {
        return false;
    };
    let mut got = [0u8; 20];
    match data_encoding::HEXUPPER.decode_mut(hex, &mut got) {
        Ok(20) => bool::from(got.ct_eq(expected)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;
    use crate::proto::crypto::mschap::verify_nt_response;

    const NAME: &[u8] = b"alice";

    /// Plays FreeRADIUS's side of the inner exchange, header-less as on the wire.
    fn challenge(ms_id: u8, ch: &[u8; 16]) -> Vec<u8> {
        let mut b = [0u8; 128];
        let n = mschapv2::write_challenge(&mut b, 9, ms_id, ch, b"srv").unwrap();
        without_header(&b[..n]).to_vec()
    }

    fn success(ms_id: u8, digest: &[u8; 20]) -> Vec<u8> {
        let mut msg = b"S=".to_vec();
        msg.extend_from_slice(data_encoding::HEXUPPER.encode(digest).as_bytes());
        msg.extend_from_slice(b" M=hello");
        let mut b = [0u8; 128];
        let n = mschapv2::write_success(&mut b, 10, ms_id, &msg).unwrap();
        without_header(&b[..n]).to_vec()
    }

    fn result(r: TlvResult) -> Vec<u8> {
        let mut b = [0u8; 16];
        let n = write_result(&mut b, EapCode::Request, 11, r).unwrap();
        b[..n].to_vec()
    }

    /// alice's side of the inner exchange: the peer under test, her hashes, the random source.
    struct Alice {
        peer: PeapPeer,
        hashes: NtHashes,
        rng: StdRng,
    }

    impl Alice {
        fn new(seed: u64) -> Alice {
            Alice {
                peer: PeapPeer::default(),
                hashes: NtHashes::of_password(b"alicepw").unwrap(),
                rng: StdRng::seed_from_u64(seed),
            }
        }

        /// Hands `inner` (outer EAP identifier `outer_id`) to the peer; what it answered.
        fn handle(
            &mut self,
            inner: &[u8],
            outer_id: u8,
            resumed: bool,
        ) -> Result<Vec<u8>, InnerError> {
            let user = InnerUser {
                name: NAME,
                hashes: &self.hashes,
            };
            let mut out = Vec::new();
            self.peer
                .handle(inner, outer_id, resumed, &user, &mut self.rng, &mut out)?;
            Ok(out)
        }

        /// A new peer through identity and challenge; returns the response it sent and the
        /// challenge.
        fn run_to_response(&mut self) -> (Vec<u8>, [u8; 16]) {
            self.peer = PeapPeer::default();
            assert_eq!(self.handle(&[1], 7, false).unwrap(), b"\x01alice");
            let ch = [0x42u8; 16];
            (self.handle(&challenge(3, &ch), 8, false).unwrap(), ch)
        }
    }

    #[test]
    fn full_inner_exchange() {
        let mut a = Alice::new(1);
        let (resp, ch) = a.run_to_response();
        let hashes = &a.hashes;
        // The server's view: put the header back, parse, verify the NT-Response.
        let mut whole = [0u8; 128];
        let n = with_header(&mut whole, EapCode::Response, 8, &resp).unwrap();
        let e = EapPacket::parse(&whole[..n]).unwrap();
        let Message::Response(r) = mschapv2::parse(EapCode::Response, e.type_data()).unwrap()
        else {
            panic!("not a response");
        };
        assert_eq!((r.ms_id, r.name), (3, NAME));
        assert!(verify_nt_response(
            &ch,
            r.peer_challenge,
            NAME,
            &hashes.nt,
            r.nt_response
        ));
        let digest =
            authenticator_response(&hashes.nt_hash, r.nt_response, r.peer_challenge, &ch, NAME);
        assert!(!a.peer.done());
        assert_eq!(
            a.handle(&success(3, &digest), 9, false).unwrap(),
            [26, OP_SUCCESS]
        );
        assert_eq!(
            a.handle(&result(TlvResult::Success), 10, false).unwrap(),
            result_response(TlvResult::Success)
        );
        assert!(a.peer.done());
    }

    fn result_response(r: TlvResult) -> Vec<u8> {
        let mut b = [0u8; 16];
        let n = write_result(&mut b, EapCode::Response, 11, r).unwrap();
        b[..n].to_vec()
    }

    #[test]
    fn wrong_s_and_failures() {
        let mut a = Alice::new(2);
        a.run_to_response();
        assert_eq!(
            a.handle(&success(3, &[0; 20]), 9, false),
            Err(InnerError::BadAuthenticatorResponse)
        );

        // MS-CHAPv2 Failure is acknowledged, then a failure Result is answered in kind.
        a.run_to_response();
        let mut b = [0u8; 128];
        let n = mschapv2::write_failure(&mut b, 9, 3, b"E=691 R=0 C=00 V=3 M=no").unwrap();
        assert_eq!(
            a.handle(without_header(&b[..n]), 9, false).unwrap(),
            [26, OP_FAILURE]
        );
        assert_eq!(
            a.handle(&result(TlvResult::Failure), 10, false).unwrap(),
            result_response(TlvResult::Failure)
        );
        assert!(!a.peer.done());

        // A success Result with no inner method: only on a resumed session.
        a.peer = PeapPeer::default();
        assert!(a.handle(&result(TlvResult::Success), 1, false).is_err());
        a.peer = PeapPeer::default();
        a.handle(&result(TlvResult::Success), 1, true).unwrap();
        assert!(a.peer.done());
    }

    #[test]
    fn authenticator_strings() {
        let d = [0xABu8; 20];
        let s = format!("S={}", data_encoding::HEXUPPER.encode(&d));
        assert!(authenticator_string_is(s.as_bytes(), &d));
        assert!(authenticator_string_is(format!("{s} M=ok").as_bytes(), &d));
        assert!(!authenticator_string_is(format!("{s}X").as_bytes(), &d));
        assert!(!authenticator_string_is(s.to_lowercase().as_bytes(), &d));
        assert!(!authenticator_string_is(&s.as_bytes()[..41], &d));
        assert!(!authenticator_string_is(s.as_bytes(), &[0xAA; 20]));
    }
}
