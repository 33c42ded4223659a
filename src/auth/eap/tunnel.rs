//! What travels inside the TLS tunnel of PEAP and TTLS, once the handshake is done.
//!
//! PEAPv0 (MS-PEAP): inner EAP packets without their header (except Type-33 TLV packets):
//! Identity → EAP-MSCHAPv2 Challenge / Response → Success / ack → Result TLV → EAP-Success.
//! TTLS (RFC 5281): Diameter AVPs — User-Name and User-Password (PAP), or MS-CHAP-Challenge
//! (the implicit challenge the TLS keys give, RFC 5281 §11.2.4) and MS-CHAP2-Response, or
//! EAP-Message carrying inner EAP-MSCHAPv2.
//!
//! Each step reads the peer's plaintext, queues ours, and says the next [`Round`]; the inner
//! login itself is the pipeline's ([`Round::Inner`]).

use super::session::{EapSession, InnerCredential, MsChapV2Exchange, Round, Stage, Wiped};
use crate::auth::mschap::{MethodReply, MsChap, NtKey};
use crate::auth::second_factor::Pending;
use crate::proto::eap::mschapv2::{self, Message};
use crate::proto::eap::peap::{self, TlvResult};
use crate::proto::eap::ttls::{self, code, VENDOR_MICROSOFT};
use crate::proto::eap::{EapCode, EapPacket, EapType};
use crate::vocab::RejectReason;

/// The name our EAP-MSCHAPv2 challenges carry.
const SERVER_NAME: &[u8] = b"radshard";

/// Largest inner packet we build.
const INNER_MAX: usize = 512;

type Step = Result<Round, RejectReason>;

const MALFORMED: RejectReason = RejectReason::EapMalformed;

impl EapSession {
    /// PEAP phase 2 begins: the inner EAP-Request/Identity.
    pub(super) fn peap_start(&mut self) -> Result<(), RejectReason> {
        let mut out = [0u8; 8];
        let n = crate::proto::eap::write_packet(
            &mut out,
            EapCode::Request,
            self.next_id(),
            EapType::Identity,
            &[],
        )
        .ok_or(MALFORMED)?;
        self.send_inner(peap::without_header(&out[..n]))?;
        self.stage = Stage::PeapIdentity;
        Ok(())
    }

    /// PEAP: the Result TLV saying the inner login succeeded.
    pub(super) fn peap_result(&mut self) -> Result<(), RejectReason> {
        let mut out = [0u8; 16];
        let n = peap::write_result(
            &mut out,
            EapCode::Request,
            self.next_id(),
            TlvResult::Success,
        )
        .ok_or(MALFORMED)?;
        self.send_inner(&out[..n])?;
        self.stage = Stage::PeapResult;
        Ok(())
    }

    /// PEAP: the peer's inner data.
    pub(super) fn peap_data(&mut self, plain: &[u8]) -> Step {
        let mut buf = [0u8; INNER_MAX + 4];
        let whole: &[u8] = if self.stage == Stage::PeapResult {
            // TLV packets keep their header.
            plain
        } else {
            let n =
                peap::with_header(&mut buf, EapCode::Response, self.id, plain).ok_or(MALFORMED)?;
            &buf[..n]
        };
        let inner = EapPacket::parse(whole).map_err(|_| MALFORMED)?;
        if inner.code() != EapCode::Response {
            return Err(MALFORMED);
        }
        match (self.stage, inner.eap_type()) {
            (Stage::PeapIdentity, Some(EapType::Identity)) => {
                self.set_inner_user(inner.type_data())?;
                let packet = self.mschapv2_challenge()?;
                self.send_inner(peap::without_header(&packet.0[..packet.1]))?;
                self.stage = Stage::PeapResponse;
                Ok(Round::Send)
            }
            (_, Some(EapType::Nak)) => Err(RejectReason::EapNoMethod),
            (Stage::PeapResponse, Some(EapType::MsChapV2)) => self.mschapv2_response(&inner),
            (Stage::PeapSuccessAck, Some(EapType::MsChapV2)) => {
                match mschapv2::parse(EapCode::Response, inner.type_data()) {
                    Ok(Message::SuccessAck) => {
                        self.peap_result()?;
                        Ok(Round::Send)
                    }
                    _ => Err(MALFORMED),
                }
            }
            (Stage::PeapResult, Some(t)) if t.to_u8() == peap::TYPE_EXTENSIONS => {
                match peap::read_result(inner.type_data()) {
                    Ok(TlvResult::Success) if self.authorized.is_some() => Ok(Round::Accept),
                    Ok(_) => Err(RejectReason::PolicyReject),
                    Err(_) => Err(MALFORMED),
                }
            }
            _ => Err(MALFORMED),
        }
    }

    /// PEAP: the inner login accepted: EAP-MSCHAPv2 Success with the authenticator response.
    pub(super) fn peap_inner_accepted(&mut self, who: &Pending) -> Step {
        let message = self.success_message(who)?;
        let mut out = [0u8; INNER_MAX];
        let n = mschapv2::write_success(&mut out, self.next_id(), self.next_id(), &message)
            .ok_or(MALFORMED)?;
        self.send_inner(peap::without_header(&out[..n]))?;
        self.stage = Stage::PeapSuccessAck;
        Ok(Round::Send)
    }

    /// TTLS: the peer's AVPs.
    pub(super) fn ttls_data(&mut self, plain: &[u8]) -> Step {
        let (mut user, mut password, mut challenge, mut response, mut eap) =
            (None, None, None, None, None);
        for avp in ttls::avps(plain) {
            let avp = avp.map_err(|_| MALFORMED)?;
            match (avp.vendor, avp.code) {
                (None, code::USER_NAME) => user = Some(avp.data),
                (None, code::USER_PASSWORD) => password = Some(ttls::password(avp.data)),
                (None, code::EAP_MESSAGE) => eap = Some(avp.data),
                (Some(VENDOR_MICROSOFT), code::MS_CHAP_CHALLENGE) => challenge = Some(avp.data),
                (Some(VENDOR_MICROSOFT), code::MS_CHAP2_RESPONSE) => response = Some(avp.data),
                // RFC 5281 §10.1: an unknown AVP with the M bit set fails the login.
                _ if avp.mandatory => return Err(RejectReason::NoSupportedCredentials),
                _ => {}
            }
        }
        match self.stage {
            // Resumed with a known authorization: a peer that sends its AVPs anyway (after TLS
            // 1.3's tickets) needs no second login.
            Stage::Finishing if self.authorized.is_some() => Ok(Round::Accept),
            Stage::TtlsAvps if eap.is_some() => self.ttls_eap(eap.unwrap_or_default()),
            Stage::TtlsEapResponse | Stage::TtlsEapSuccessAck => {
                self.ttls_eap(eap.ok_or(MALFORMED)?)
            }
            Stage::TtlsAvps => {
                self.set_inner_user(user.ok_or(RejectReason::NoUserName)?)?;
                match (password, challenge, response) {
                    (Some(pw), _, _) => Ok(Round::Inner(InnerCredential::Pap(Wiped(pw.to_vec())))),
                    (None, Some(c), Some(r)) => self.ttls_mschapv2(c, r),
                    _ => Err(RejectReason::NoSupportedCredentials),
                }
            }
            _ => Err(MALFORMED),
        }
    }

    /// TTLS's MS-CHAP-Challenge must be the one the TLS keys give (else a peer could replay
    /// a challenge-response pair captured elsewhere); MS-CHAP2-Response is Ident, Flags,
    /// Peer-Challenge, Reserved, NT-Response.
    fn ttls_mschapv2(&mut self, challenge: &[u8], response: &[u8]) -> Step {
        let expected = self
            .link
            .as_ref()
            .ok_or(MALFORMED)?
            .ttls_challenge()
            .map_err(|_| MALFORMED)?;
        let (ident, authenticator_challenge) = (expected[16], &expected[..16]);
        if challenge != authenticator_challenge || response.len() != 50 || response[0] != ident {
            return Err(RejectReason::MalformedMsChap);
        }
        let mut x = MsChapV2Exchange {
            ident,
            ..Default::default()
        };
        x.authenticator_challenge
            .copy_from_slice(authenticator_challenge);
        x.peer_challenge.copy_from_slice(&response[2..18]);
        x.nt_response.copy_from_slice(&response[26..50]);
        self.exchange = Some(x);
        Ok(Round::Inner(InnerCredential::MsChapV2(x)))
    }

    /// TTLS with inner EAP (EAP-MSCHAPv2 in EAP-Message AVPs).
    fn ttls_eap(&mut self, packet: &[u8]) -> Step {
        self.inner_eap = true;
        let inner = EapPacket::parse(packet).map_err(|_| MALFORMED)?;
        if inner.code() != EapCode::Response {
            return Err(MALFORMED);
        }
        match (self.stage, inner.eap_type()) {
            (Stage::TtlsAvps, Some(EapType::Identity)) => {
                self.set_inner_user(inner.type_data())?;
                let (out, n) = self.mschapv2_challenge()?;
                self.send_avp(code::EAP_MESSAGE, None, &out[..n])?;
                self.stage = Stage::TtlsEapResponse;
                Ok(Round::Send)
            }
            (_, Some(EapType::Nak)) => Err(RejectReason::EapNoMethod),
            (Stage::TtlsEapResponse, Some(EapType::MsChapV2)) => self.mschapv2_response(&inner),
            (Stage::TtlsEapSuccessAck, Some(EapType::MsChapV2)) => {
                match mschapv2::parse(EapCode::Response, inner.type_data()) {
                    Ok(Message::SuccessAck) if self.authorized.is_some() => Ok(Round::Accept),
                    _ => Err(MALFORMED),
                }
            }
            _ => Err(MALFORMED),
        }
    }

    /// TTLS: the inner login accepted.
    pub(super) fn ttls_inner_accepted(&mut self, who: &Pending) -> Step {
        match (self.exchange, self.inner_eap) {
            // PAP: nothing more inside the tunnel.
            (None, _) => Ok(Round::Accept),
            (Some(x), false) => {
                // MS-CHAP2-Success: Ident, then "S=…".
                let message = self.success_message(who)?;
                let mut value = [0u8; 64];
                value[0] = x.ident;
                value[1..=message.len()].copy_from_slice(&message);
                self.send_avp(
                    code::MS_CHAP2_SUCCESS,
                    Some(VENDOR_MICROSOFT),
                    &value[..=message.len()],
                )?;
                self.stage = Stage::TtlsMsChapAck;
                Ok(Round::Send)
            }
            (Some(_), true) => {
                let message = self.success_message(who)?;
                let mut out = [0u8; INNER_MAX];
                let n = mschapv2::write_success(&mut out, self.next_id(), self.next_id(), &message)
                    .ok_or(MALFORMED)?;
                self.send_avp(code::EAP_MESSAGE, None, &out[..n])?;
                self.stage = Stage::TtlsEapSuccessAck;
                Ok(Round::Send)
            }
        }
    }

    fn send_avp(
        &mut self,
        code: u32,
        vendor: Option<u32>,
        data: &[u8],
    ) -> Result<(), RejectReason> {
        let mut out = [0u8; INNER_MAX + 16];
        let n = ttls::write_avp(&mut out, code, vendor, true, data).ok_or(MALFORMED)?;
        self.send_inner(&out[..n])
    }

    fn set_inner_user(&mut self, name: &[u8]) -> Result<(), RejectReason> {
        if name.is_empty() || name.len() > 253 {
            return Err(RejectReason::NoUserName);
        }
        self.inner_user = name.into();
        Ok(())
    }

    /// A fresh EAP-MSCHAPv2 Challenge (whole packet) for the next request.
    fn mschapv2_challenge(&mut self) -> Result<([u8; INNER_MAX], usize), RejectReason> {
        let x = MsChapV2Exchange {
            ident: self.next_id(),
            authenticator_challenge: rand::random(),
            ..Default::default()
        };
        let mut out = [0u8; INNER_MAX];
        let n = mschapv2::write_challenge(
            &mut out,
            self.next_id(),
            x.ident,
            &x.authenticator_challenge,
            SERVER_NAME,
        )
        .ok_or(MALFORMED)?;
        self.exchange = Some(x);
        Ok((out, n))
    }

    /// The peer's EAP-MSCHAPv2 Response to our challenge: the inner login's credential.
    fn mschapv2_response(&mut self, inner: &EapPacket<'_>) -> Step {
        let Ok(Message::Response(r)) = mschapv2::parse(EapCode::Response, inner.type_data()) else {
            return Err(RejectReason::MalformedMsChap);
        };
        let x = self.exchange.as_mut().ok_or(MALFORMED)?;
        if r.ms_id != x.ident {
            return Err(RejectReason::MalformedMsChap);
        }
        x.peer_challenge = *r.peer_challenge;
        x.nt_response = *r.nt_response;
        Ok(Round::Inner(InnerCredential::MsChapV2(*x)))
    }

    /// "S=<authenticator response>" for the inner MS-CHAPv2 login `who` passed.
    fn success_message(&self, who: &Pending) -> Result<Vec<u8>, RejectReason> {
        let x = self.exchange.as_ref().ok_or(MALFORMED)?;
        let key: NtKey = who.nt_key.ok_or(RejectReason::MsChapNeedsNtHash)?;
        let exchange = MsChap::V2 {
            ident: x.ident,
            authenticator_challenge: &x.authenticator_challenge,
            peer_challenge: &x.peer_challenge,
            nt_response: &x.nt_response,
        };
        match exchange.accepted(&self.inner_user, &key) {
            MethodReply::MsChap2Success { success, .. } => Ok(success[1..].to_vec()),
            _ => Err(MALFORMED),
        }
    }
}
