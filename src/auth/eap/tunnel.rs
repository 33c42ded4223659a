//! What travels inside the TLS tunnel of PEAP and TTLS, once the handshake is done.
//!
//! PEAPv0 (MS-PEAP): inner EAP packets without their header (except Type-33 TLV packets):
//! Identity → an inner method (EAP-MSCHAPv2 Challenge / Response → Success / ack, or EAP-GTC's
//! password) → Result TLV → EAP-Success.
//! TTLS (RFC 5281): Diameter AVPs — User-Name and User-Password (PAP), or MS-CHAP-Challenge
//! (the implicit challenge the TLS keys give, RFC 5281 §11.2.4) and MS-CHAP2-Response, or
//! EAP-Message carrying the same inner EAP methods as PEAP.
//!
//! A policy's one-time code is asked for inside the tunnel: a second EAP-GTC Request carrying
//! the prompt, or for TTLS-PAP a Reply-Message AVP the peer answers with a new User-Password
//! (RFC 5281 §11.2.5). Its answer redeems the challenge the pipeline opened, so the code is
//! checked exactly as an outer Access-Challenge's would be.
//!
//! Each step reads the peer's plaintext, queues ours, and says the next [`Round`]; the inner
//! login itself is the pipeline's ([`Round::Inner`]).

use super::config::InnerMethod;
use super::service::EapService;
use super::session::{EapSession, InnerCredential, MsChapV2Exchange, Round, Stage, Wiped};
use crate::auth::mschap::{MethodReply, MsChap, NtKey};
use crate::auth::second_factor::Pending;
use crate::proto::crypto::mschap::MsChap2Success;
use crate::proto::eap::mschapv2::{self, Message};
use crate::proto::eap::peap::{self, TlvResult};
use crate::proto::eap::peap_binding::{self, BindingMode, InnerKey, ServerBinding};
use crate::proto::eap::ttls::{self, code, VENDOR_MICROSOFT};
use crate::proto::eap::{EapCode, EapPacket, EapType};
use crate::vocab::{Method, RejectReason};

/// The name our EAP-MSCHAPv2 challenges carry.
const SERVER_NAME: &[u8] = b"radshard";

/// What our first EAP-GTC Request shows.
const GTC_PASSWORD_PROMPT: &[u8] = b"Password: ";

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
        self.stage = Stage::InnerIdentity;
        Ok(())
    }

    /// PEAP: the Result TLV saying the inner login succeeded, with a Cryptobinding TLV unless
    /// `peap_crypto_binding = "off"`.
    pub(super) fn peap_result(&mut self) -> Result<(), RejectReason> {
        let binding = self.peap_binding_request()?;
        let more: &[u8] = binding.as_ref().map_or(&[], |tlv| tlv);
        let mut out = [0u8; 16 + peap_binding::TLV_LEN];
        let n = peap::write_result_with(
            &mut out,
            EapCode::Request,
            self.next_id(),
            TlvResult::Success,
            more,
        )
        .ok_or(MALFORMED)?;
        self.send_inner(&out[..n])?;
        self.stage = Stage::PeapResult;
        Ok(())
    }

    /// PEAP: the peer's inner data.
    pub(super) fn peap_data(&mut self, plain: &[u8], svc: &EapService) -> Step {
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
        match (self.stage, inner.eap_type()) {
            (Stage::PeapResult, _) if inner.code() != EapCode::Response => Err(MALFORMED),
            (Stage::PeapResult, Some(t)) if t.to_u8() == peap::TYPE_EXTENSIONS => {
                let ext = peap::read_extensions(inner.type_data()).map_err(|_| MALFORMED)?;
                match ext.result {
                    TlvResult::Success if self.authorized.is_some() => {
                        self.peap_binding_response(ext.crypto_binding)?;
                        Ok(Round::Accept)
                    }
                    _ => Err(RejectReason::PolicyReject),
                }
            }
            (Stage::PeapResult, _) => Err(MALFORMED),
            _ => self.inner_eap(&inner, svc),
        }
    }

    /// PEAP: the inner login accepted. EAP-MSCHAPv2 answers with its Success (the
    /// authenticator response) and waits for the acknowledgement; EAP-GTC has nothing more to
    /// say: the Result TLV follows.
    pub(super) fn peap_inner_accepted(&mut self, who: &Pending) -> Step {
        if self.stage == Stage::InnerResponse && self.inner_method == InnerMethod::MsChapV2 {
            let passed = self.mschapv2_passed(who)?;
            // Crypto-binding's inner key; EAP-GTC has none (zeros, as the peers take it).
            if self.peap_binding_mode != BindingMode::Off {
                self.peap_inner_key = Some(InnerKey::Isk(peap_binding::mschapv2_isk(
                    &passed.recv,
                    &passed.send,
                )));
            }
            return self.send_mschapv2_success(&passed);
        }
        self.peap_result()?;
        Ok(Round::Send)
    }

    /// The peer's inner EAP packet (PEAP, or TTLS's EAP-Message): the inner method's rounds.
    fn inner_eap(&mut self, inner: &EapPacket<'_>, svc: &EapService) -> Step {
        if inner.code() != EapCode::Response {
            return Err(MALFORMED);
        }
        let data = inner.type_data();
        match (self.stage, inner.eap_type()) {
            (Stage::InnerIdentity | Stage::TtlsAvps, Some(EapType::Identity)) => {
                self.set_inner_user(data)?;
                let first = *svc
                    .config
                    .inner_methods
                    .first()
                    .ok_or(RejectReason::EapNoMethod)?;
                self.propose(first)
            }
            (Stage::InnerResponse, Some(EapType::Nak)) => self.inner_nak(data, svc),
            (Stage::InnerResponse, Some(EapType::MsChapV2))
                if self.inner_method == InnerMethod::MsChapV2 =>
            {
                self.mschapv2_response(inner)
            }
            (Stage::InnerResponse, Some(EapType::Gtc)) if self.inner_method == InnerMethod::Gtc => {
                Ok(Round::Inner(InnerCredential::Pap(Wiped(data.to_vec()))))
            }
            (Stage::InnerCode, Some(EapType::Gtc)) => {
                Ok(Round::Inner(InnerCredential::Code(Wiped(data.to_vec()))))
            }
            (Stage::InnerSuccessAck, Some(EapType::MsChapV2)) => {
                match mschapv2::parse(EapCode::Response, data) {
                    Ok(Message::SuccessAck) if self.method == Method::Peap => {
                        self.peap_result()?;
                        Ok(Round::Send)
                    }
                    Ok(Message::SuccessAck) if self.authorized.is_some() => Ok(Round::Accept),
                    _ => Err(MALFORMED),
                }
            }
            (_, Some(EapType::Nak)) => Err(RejectReason::EapNoMethod),
            _ => Err(MALFORMED),
        }
    }

    /// Proposes `method` as the inner method: its first request.
    fn propose(&mut self, method: InnerMethod) -> Step {
        self.inner_method = method;
        match method {
            InnerMethod::MsChapV2 => {
                let (out, n) = self.mschapv2_challenge()?;
                self.send_inner_eap(&out[..n])?;
            }
            InnerMethod::Gtc => {
                self.exchange = None;
                self.send_gtc(GTC_PASSWORD_PROMPT)?;
            }
        }
        self.stage = Stage::InnerResponse;
        Ok(Round::Send)
    }

    /// A Nak to our inner method: the first other configured one it names, or the end.
    fn inner_nak(&mut self, wanted: &[u8], svc: &EapService) -> Step {
        let current = self.inner_method;
        let chosen = svc
            .config
            .inner_methods
            .iter()
            .copied()
            .find(|&m| m != current && wanted.contains(&m.eap_type().to_u8()));
        match chosen {
            Some(m) => self.propose(m),
            None => Err(RejectReason::EapNoMethod),
        }
    }

    /// A policy wants a one-time code: ask for it inside the tunnel, with `prompt`.
    pub(super) fn ask_code(&mut self, prompt: &str) -> Step {
        let ttls_pap = self.method == Method::Ttls && !self.inner_eap && self.exchange.is_none();
        if ttls_pap {
            self.send_avp(code::REPLY_MESSAGE, None, prompt.as_bytes())?;
        } else if self.inner_method == InnerMethod::Gtc && self.exchange.is_none() {
            self.send_gtc(prompt.as_bytes())?;
        } else {
            // MS-CHAPv2 carries no code (the pipeline refuses it before a challenge).
            return Err(RejectReason::InnerChallengeUnsupported);
        }
        self.stage = Stage::InnerCode;
        Ok(Round::Send)
    }

    /// An EAP-GTC Request showing `text`.
    fn send_gtc(&mut self, text: &[u8]) -> Result<(), RejectReason> {
        let mut out = [0u8; INNER_MAX];
        let n = crate::proto::eap::write_packet(
            &mut out,
            EapCode::Request,
            self.next_id(),
            EapType::Gtc,
            text,
        )
        .ok_or(MALFORMED)?;
        self.send_inner_eap(&out[..n])
    }

    /// Sends a whole inner EAP packet the method's way: PEAP without its header, TTLS in an
    /// EAP-Message AVP.
    fn send_inner_eap(&mut self, packet: &[u8]) -> Result<(), RejectReason> {
        match self.method {
            Method::Peap => self.send_inner(peap::without_header(packet)),
            _ => self.send_avp(code::EAP_MESSAGE, None, packet),
        }
    }

    /// TTLS: the peer's AVPs.
    pub(super) fn ttls_data(&mut self, plain: &[u8], svc: &EapService) -> Step {
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
            Stage::TtlsAvps | Stage::InnerResponse | Stage::InnerSuccessAck
                if eap.is_some() || self.inner_eap =>
            {
                self.inner_eap = true;
                let inner = EapPacket::parse(eap.ok_or(MALFORMED)?).map_err(|_| MALFORMED)?;
                self.inner_eap(&inner, svc)
            }
            Stage::InnerCode if self.inner_eap => {
                let inner = EapPacket::parse(eap.ok_or(MALFORMED)?).map_err(|_| MALFORMED)?;
                self.inner_eap(&inner, svc)
            }
            // TTLS-PAP's answer to our Reply-Message: the code.
            Stage::InnerCode => {
                let code = password.ok_or(RejectReason::MfaBadCode)?;
                Ok(Round::Inner(InnerCredential::Code(Wiped(code.to_vec()))))
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

    /// TTLS: the inner login accepted.
    pub(super) fn ttls_inner_accepted(&mut self, who: &Pending) -> Step {
        match (self.exchange, self.inner_eap) {
            (Some(_), true) if self.stage == Stage::InnerResponse => {
                let passed = self.mschapv2_passed(who)?;
                self.send_mschapv2_success(&passed)
            }
            // PAP, EAP-GTC, or after a code: nothing more inside the tunnel.
            (None, _) | (Some(_), true) => Ok(Round::Accept),
            (Some(_), false) => {
                // MS-CHAP2-Success: Ident, then "S=…".
                let passed = self.mschapv2_passed(who)?;
                self.send_avp(
                    code::MS_CHAP2_SUCCESS,
                    Some(VENDOR_MICROSOFT),
                    &passed.success,
                )?;
                self.stage = Stage::TtlsMsChapAck;
                Ok(Round::Send)
            }
        }
    }

    /// The inner EAP-MSCHAPv2 login passed: its Success with the authenticator response.
    fn send_mschapv2_success(&mut self, passed: &MsChapV2Passed) -> Step {
        let mut out = [0u8; INNER_MAX];
        let n = mschapv2::write_success(
            &mut out,
            self.next_id(),
            self.next_id(),
            &passed.success[1..],
        )
        .ok_or(MALFORMED)?;
        self.send_inner_eap(&out[..n])?;
        self.stage = Stage::InnerSuccessAck;
        Ok(Round::Send)
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

    /// What the inner MS-CHAPv2 login `who` passed answers with, computed once: MS-CHAP2-Success
    /// (Ident, then "S=<authenticator response>") and the MPPE keys (crypto-binding's ISK).
    fn mschapv2_passed(&self, who: &Pending) -> Result<MsChapV2Passed, RejectReason> {
        let x = self.exchange.as_ref().ok_or(MALFORMED)?;
        let key: NtKey = who.nt_key.ok_or(RejectReason::MsChapNeedsNtHash)?;
        let exchange = MsChap::V2 {
            ident: x.ident,
            authenticator_challenge: &x.authenticator_challenge,
            peer_challenge: &x.peer_challenge,
            nt_response: &x.nt_response,
        };
        match exchange.accepted(&self.inner_user, &key) {
            MethodReply::MsChap2Success {
                success,
                send,
                recv,
            } => Ok(MsChapV2Passed {
                success,
                send,
                recv,
            }),
            _ => Err(MALFORMED),
        }
    }

    /// PEAP: the Cryptobinding TLV for our Result TLV, its keys kept to check the answer;
    /// `None` when binding is off.
    fn peap_binding_request(
        &mut self,
    ) -> Result<Option<[u8; peap_binding::TLV_LEN]>, RejectReason> {
        if self.peap_binding_mode == BindingMode::Off {
            self.peap_binding = None;
            return Ok(None);
        }
        let link = self.link.as_ref().ok_or(MALFORMED)?;
        let mut tk = link.peap_tk().map_err(|_| MALFORMED)?;
        // As hostap's peer decides: a resumed session that skipped phase 2 (no inner identity
        // came) binds with TK alone; an inner method without a key (or none kept) with zeros.
        let inner = match self.peap_inner_key.take() {
            Some(k) => k,
            None if self.resumed && self.inner_user.is_empty() => InnerKey::FastReconnect,
            None => InnerKey::Isk([0; peap_binding::ISK_LEN]),
        };
        let (binding, tlv) = ServerBinding::request(&tk, &inner, rand::random());
        crate::proto::wipe(&mut tk);
        self.peap_binding = Some(binding);
        Ok(Some(tlv))
    }

    /// PEAP: the peer's Cryptobinding TLV (or its absence) against what we sent.
    fn peap_binding_response(&mut self, value: Option<&[u8]>) -> Result<(), RejectReason> {
        let mode = self.peap_binding_mode;
        let Some(binding) = self.peap_binding.as_mut() else {
            // None sent (off): one the peer volunteers is ignored, as hostap's server does.
            return Ok(());
        };
        binding.response(mode, value).map_err(|e| {
            tracing::debug!(error = %e, "PEAP crypto-binding refused");
            RejectReason::PeapCryptoBindingFailed
        })
    }
}

/// An inner MS-CHAPv2 login's answer: MS-CHAP2-Success and the MPPE keys, wiped when dropped.
struct MsChapV2Passed {
    success: [u8; MsChap2Success::LEN],
    send: [u8; 16],
    recv: [u8; 16],
}

impl Drop for MsChapV2Passed {
    fn drop(&mut self) {
        crate::proto::wipe(&mut self.send);
        crate::proto::wipe(&mut self.recv);
    }
}
