//! One EAP conversation as a sans-IO state machine: fed each EAP-Response (and, after a
//! handshake worker ran TLS, the result), it says what happens next ([`Round`]): send our next
//! request, hand the TLS work to a worker, run the inner login through the pipeline, accept
//! or reject. Every request we send is of the conversation's method (a Start, a fragment of
//! our TLS output, or an empty acknowledgement), so one writer serves them all.
//!
//! The method-specific tunnel steps (PEAP's phase 2, TTLS's AVPs) are in
//! [`tunnel`](super::tunnel); EAP-TLS has none.
//!
//! Bound: at most [`MAX_ROUNDS`] requests per conversation (a peer acknowledging forever is
//! cut off).

use std::sync::Arc;

use rustls::ServerConfig;

use super::config::InnerMethod;
use super::link::{eap_type, LinkError, Received, TlsLink};
use super::service::{EapService, TOKEN_LEN};
use crate::auth::conversation::state::STATE_LEN;
use crate::auth::second_factor::Pending;
use crate::metrics::EapMetrics;
use crate::proto::eap::tls::{flags, write_fragment, TlsFragment};
use crate::proto::eap::{EapCode, EapPacket, EapType};
use crate::tls::PeerCertificate;
use crate::vocab::{AuthSource, Method, RejectReason};

/// Requests one conversation may take at most (a full PEAP login with a 4 KB certificate
/// chain in 1 KB fragments takes about 12).
pub const MAX_ROUNDS: u8 = 64;

/// What happens after a round.
pub enum Round {
    /// Send our next request ([`EapSession::write_request`]) and keep the conversation.
    Send,
    /// Run TLS over the peer's message on a handshake worker ([`EapSession::handshake`]),
    /// then [`EapSession::after_tls`].
    Handshake,
    /// Run the inner login; then [`EapSession::inner_done`].
    Inner(InnerCredential),
    /// The login succeeded: [`EapSession::authorized`] says who.
    Accept,
    Reject(RejectReason),
}

/// What the inner login presents. Its `Debug` leaves out the password and the response.
pub enum InnerCredential {
    /// TTLS's User-Password or the EAP-GTC password (wiped on drop).
    Pap(Wiped),
    /// EAP-MSCHAPv2 (PEAP, TTLS) or TTLS's MS-CHAP2-Response AVP.
    MsChapV2(MsChapV2Exchange),
    /// The one-time code answering the challenge the inner login was given (wiped on drop).
    Code(Wiped),
}

/// What an inner login came to.
pub enum InnerResult<'p> {
    /// It passed: who.
    Accepted(Pending),
    /// A policy wants a one-time code: the challenge the pipeline opened (its State, in the
    /// conversation store) and the prompt to show.
    Code {
        state: [u8; STATE_LEN],
        prompt: &'p str,
    },
    Refused(RejectReason),
}

impl std::fmt::Debug for InnerCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InnerCredential::Pap(_) => f.write_str("Pap(<password>)"),
            InnerCredential::MsChapV2(_) => f.write_str("MsChapV2(<response>)"),
            InnerCredential::Code(_) => f.write_str("Code(<code>)"),
        }
    }
}

/// Octets wiped when dropped (an inner password on its way to the login).
pub struct Wiped(pub Vec<u8>);

impl Drop for Wiped {
    fn drop(&mut self) {
        crate::proto::wipe(&mut self.0);
    }
}

/// An inner MS-CHAPv2 exchange: our challenge and the peer's answer.
#[derive(Clone, Copy, Default)]
pub struct MsChapV2Exchange {
    pub ident: u8,
    pub authenticator_challenge: [u8; 16],
    pub peer_challenge: [u8; 16],
    pub nt_response: [u8; 24],
}

/// Where a conversation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Our Start is out; the peer's ClientHello (or a Nak) comes next.
    Started,
    /// The TLS handshake is under way.
    Handshake,
    /// Handshake done, our last flight out: on the peer's acknowledgement the login is
    /// accepted (EAP-TLS; a resumed TTLS).
    Finishing,
    /// PEAP: handshake done; phase 2 starts when the peer acknowledges our last flight.
    PeapEstablished,
    /// PEAP phase 2 waits for the inner Identity.
    InnerIdentity,
    /// Inner EAP (PEAP, TTLS): waiting for the answer to our inner method's request (the
    /// EAP-MSCHAPv2 Response, the EAP-GTC password) or a Nak naming another method.
    InnerResponse,
    /// … for the peer's acknowledgement of our EAP-MSCHAPv2 Success.
    InnerSuccessAck,
    /// … for the one-time code a policy asked for: a second EAP-GTC Response, or TTLS-PAP's
    /// next User-Password (after our Reply-Message).
    InnerCode,
    /// PEAP: waiting for the peer's Result TLV.
    PeapResult,
    /// TTLS waits for the peer's AVPs.
    TtlsAvps,
    /// TTLS: MS-CHAP2-Success sent; the peer acknowledges it.
    TtlsMsChapAck,
}

/// One conversation's state, kept in the conversation store between rounds.
pub struct EapSession {
    pub method: Method,
    /// EAP-Response/Identity (often anonymous): logged, and what EAP-TLS's certificate must
    /// name.
    pub outer: Box<[u8]>,
    /// Identifier of our last request: the peer's response must carry it.
    pub id: u8,
    pub(super) link: Option<Box<TlsLink>>,
    pub stage: Stage,
    /// Kept by rustls with the TLS session: on resumption it finds the authorization.
    pub token: [u8; TOKEN_LEN],
    /// The login succeeded as this (inner identity or certificate).
    pub authorized: Option<Pending>,
    /// The inner identity (PEAP's inner EAP Identity, TTLS's User-Name).
    pub inner_user: Box<[u8]>,
    /// The inner MS-CHAPv2 exchange under way.
    pub(super) exchange: Option<MsChapV2Exchange>,
    /// TTLS's inner method was EAP (EAP-Message AVPs) rather than AVPs.
    pub(super) inner_eap: bool,
    /// The inner EAP method proposed (PEAP, TTLS with inner EAP).
    pub(super) inner_method: InnerMethod,
    /// The challenge a policy opened for a one-time code, answered by the next inner round.
    pub(super) code_state: Option<[u8; STATE_LEN]>,
    /// TLS data per request.
    pub fragment: usize,
    rounds: u8,
    /// What the handshake worker's TLS run said, for [`EapSession::after_tls`].
    tls_result: Option<Result<(), RejectReason>>,
    /// The session was resumed.
    pub resumed: bool,
    /// PEAP crypto-binding as `[eap] peap_crypto_binding` says (set when the conversation
    /// opens).
    pub(super) peap_binding_mode: crate::proto::eap::peap_binding::BindingMode,
    /// PEAP: the inner method's key, kept from its success until the Result TLV is built.
    pub(super) peap_inner_key: Option<crate::proto::eap::peap_binding::InnerKey>,
    /// PEAP: the binding sent with the Result TLV (its keys and nonce), and whether the peer
    /// bound.
    pub(super) peap_binding: Option<crate::proto::eap::peap_binding::ServerBinding>,
}

impl std::fmt::Debug for EapSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EapSession")
            .field("method", &self.method)
            .field("stage", &self.stage)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl EapSession {
    /// A conversation opened by an EAP-Response/Identity with identifier `id`.
    pub fn new(method: Method, outer: &[u8], id: u8, fragment: usize) -> EapSession {
        EapSession {
            method,
            outer: outer.into(),
            id,
            link: None,
            stage: Stage::Started,
            token: rand::random(),
            authorized: None,
            inner_user: Box::default(),
            exchange: None,
            inner_eap: false,
            inner_method: InnerMethod::MsChapV2,
            code_state: None,
            fragment,
            rounds: 0,
            tls_result: None,
            resumed: false,
            peap_binding_mode: Default::default(),
            peap_inner_key: None,
            peap_binding: None,
        }
    }

    fn our_type(&self) -> EapType {
        EapType::from_u8(eap_type(self.method))
    }

    /// Writes our next request into `out`: a Start, the next fragment of our TLS output, or
    /// an empty acknowledgement. Its length (0 when it does not fit, which cannot happen with
    /// a fragment size checked at start-up).
    pub fn write_request(&mut self, out: &mut [u8]) -> usize {
        self.id = self.id.wrapping_add(1);
        self.rounds = self.rounds.saturating_add(1);
        let (ty, id, fragment) = (self.our_type(), self.id, self.fragment);
        let started = self.stage == Stage::Started;
        let (f, length, data) = match self.link.as_mut() {
            Some(link) if link.has_output() => link.next_fragment(fragment),
            _ if started => (flags::START, None, &[][..]),
            _ => (0, None, &[][..]),
        };
        write_fragment(out, EapCode::Request, id, ty, f, length, data).unwrap_or(0)
    }

    /// The peer's answer to our last request.
    pub fn respond(&mut self, pkt: &EapPacket<'_>, svc: &EapService, now: u64) -> Round {
        if pkt.identifier() != self.id {
            return Round::Reject(RejectReason::EapMalformed);
        }
        if self.rounds >= MAX_ROUNDS {
            return Round::Reject(RejectReason::EapMalformed);
        }
        match pkt.eap_type() {
            Some(EapType::Nak) if self.stage == Stage::Started => self.nak(pkt, svc),
            Some(t) if t == self.our_type() => match TlsFragment::parse(pkt.type_data()) {
                Ok(frag) => self.fragment(&frag, svc, now),
                Err(_) => Round::Reject(RejectReason::EapMalformed),
            },
            _ => Round::Reject(RejectReason::EapMalformed),
        }
    }

    /// A Nak to our Start: the first method it names that we offer, or the end.
    fn nak(&mut self, pkt: &EapPacket<'_>, svc: &EapService) -> Round {
        let chosen = pkt.type_data().iter().find_map(|&t| {
            svc.config
                .methods
                .iter()
                .copied()
                .find(|&m| eap_type(m) == t && m != self.method)
        });
        match chosen {
            Some(m) => {
                self.method = m;
                Round::Send
            }
            None => Round::Reject(RejectReason::EapNoMethod),
        }
    }

    fn config(&self, svc: &EapService) -> Option<Arc<ServerConfig>> {
        match self.method {
            Method::EapTls => svc.tls.mutual.clone(),
            _ => Some(svc.tls.tunnel.clone()),
        }
    }

    fn fragment(&mut self, frag: &TlsFragment<'_>, svc: &EapService, now: u64) -> Round {
        if self.link.is_none() {
            let Some(config) = self.config(svc) else {
                return Round::Reject(RejectReason::EapNoMethod);
            };
            match TlsLink::new(config, self.token) {
                Ok(l) => self.link = Some(Box::new(l)),
                Err(_) => return Round::Reject(RejectReason::TlsHandshakeFailed),
            }
            self.stage = Stage::Handshake;
        }
        let Some(link) = self.link.as_mut() else {
            return Round::Reject(RejectReason::EapMalformed);
        };
        match link.receive(frag) {
            Err(_) => Round::Reject(RejectReason::EapMalformed),
            Ok(Received::Partial) => Round::Send,
            Ok(Received::Ack) if link.has_output() => Round::Send,
            Ok(Received::Ack) => self.acknowledged(),
            Ok(Received::Complete) if link.is_handshaking() => Round::Handshake,
            Ok(Received::Complete) => {
                // Application data: symmetric crypto only, done here.
                self.tls_result = Some(link.process().map_err(|e| tls_reason(&e)));
                self.after_tls(svc, now)
            }
        }
    }

    /// Runs TLS over the peer's message: on a handshake worker, never on a shard.
    pub fn handshake(&mut self) {
        if let Some(link) = self.link.as_mut() {
            self.tls_result = Some(link.process().map_err(|e| tls_reason(&e)));
        }
    }

    /// After TLS ran over the peer's message.
    pub fn after_tls(&mut self, svc: &EapService, now: u64) -> Round {
        if let Some(Err(why)) = self.tls_result.take() {
            return Round::Reject(why);
        }
        let Some(link) = self.link.as_ref() else {
            return Round::Reject(RejectReason::EapMalformed);
        };
        if link.is_handshaking() {
            return Round::Send;
        }
        if self.stage == Stage::Handshake {
            if let Err(why) = self.established(svc, now) {
                return Round::Reject(why);
            }
        }
        let plain = match self.link.as_mut() {
            Some(l) => l.take_plaintext(),
            None => Vec::new(),
        };
        if !plain.is_empty() {
            return self.tunnel_data(&plain, svc);
        }
        if self.link.as_ref().is_some_and(|l| l.has_output()) {
            return Round::Send;
        }
        self.acknowledged()
    }

    /// The handshake just completed: resumption, the client certificate, the next stage.
    fn established(&mut self, svc: &EapService, now: u64) -> Result<(), RejectReason> {
        let Some(link) = self.link.as_mut() else {
            return Err(RejectReason::EapMalformed);
        };
        let m = svc.metrics;
        EapMetrics::bump(if link.resumed() {
            &m.handshakes_resumed
        } else {
            &m.handshakes_full
        });
        EapMetrics::bump(if link.is_tls13() { &m.tls13 } else { &m.tls12 });
        self.resumed = link.resumed();
        let cached = link
            .resumed_from()
            .and_then(|t| svc.authorized.get(&t, now));
        tracing::debug!(
            method = self.method.label(),
            resumed = link.resumed(),
            authorization_cached = cached.is_some(),
            "TLS handshake done"
        );
        match self.method {
            Method::EapTls => {
                let who = match cached {
                    Some(who) => who,
                    None => certificate_login(link, &self.outer, svc)?,
                };
                self.authorized = Some(who);
                // RFC 9190 §2.5: TLS 1.3 says the handshake is over with one octet of 0x00.
                if link.is_tls13() {
                    link.send(&[0])
                        .map_err(|_| RejectReason::TlsHandshakeFailed)?;
                }
                self.stage = Stage::Finishing;
            }
            Method::Peap => match cached {
                Some(who) => {
                    self.authorized = Some(who);
                    self.peap_result()?;
                }
                None => self.stage = Stage::PeapEstablished,
            },
            _ => match cached {
                Some(who) => {
                    self.authorized = Some(who);
                    self.stage = Stage::Finishing;
                }
                None => self.stage = Stage::TtlsAvps,
            },
        }
        Ok(())
    }

    /// The peer acknowledged our last flight (or there was nothing to send).
    fn acknowledged(&mut self) -> Round {
        match self.stage {
            Stage::Finishing | Stage::TtlsMsChapAck if self.authorized.is_some() => Round::Accept,
            Stage::PeapEstablished => match self.peap_start() {
                Ok(()) => Round::Send,
                Err(why) => Round::Reject(why),
            },
            // TTLS: the peer has not sent its AVPs yet; an empty request asks for them. A
            // resumed peer skips them (RFC 5281 §7.5): without the session's authorization
            // (lost with a reload, say) the login fails and the next one is a full one.
            Stage::TtlsAvps if !self.resumed => Round::Send,
            _ => Round::Reject(RejectReason::EapMalformed),
        }
    }

    /// The peer's application data, by method.
    fn tunnel_data(&mut self, plain: &[u8], svc: &EapService) -> Round {
        let step = match self.method {
            Method::Peap => self.peap_data(plain, svc),
            Method::Ttls => self.ttls_data(plain, svc),
            // EAP-TLS carries no application data from the peer.
            _ => Err(RejectReason::EapMalformed),
        };
        step.unwrap_or_else(Round::Reject)
    }

    /// The inner login's result.
    pub fn inner_done(&mut self, result: InnerResult<'_>) -> Round {
        let who = match result {
            InnerResult::Accepted(who) => who,
            InnerResult::Code { state, prompt } => {
                self.code_state = Some(state);
                return self.ask_code(prompt).unwrap_or_else(Round::Reject);
            }
            InnerResult::Refused(why) => return Round::Reject(why),
        };
        let step = match (self.stage, self.method) {
            (Stage::InnerResponse | Stage::InnerCode, Method::Peap) => {
                self.peap_inner_accepted(&who)
            }
            (Stage::InnerResponse | Stage::InnerCode | Stage::TtlsAvps, Method::Ttls) => {
                self.ttls_inner_accepted(&who)
            }
            _ => Err(RejectReason::EapMalformed),
        };
        self.code_state = None;
        // Who passed is kept only when the tunnel goes on with it (a refused step ends here).
        if step.is_ok() {
            self.authorized = Some(who);
        }
        step.unwrap_or_else(Round::Reject)
    }

    /// Sends `data` inside the tunnel.
    pub(super) fn send_inner(&mut self, data: &[u8]) -> Result<(), RejectReason> {
        self.link
            .as_mut()
            .ok_or(RejectReason::EapMalformed)?
            .send(data)
            .map_err(|_| RejectReason::TlsHandshakeFailed)
    }

    /// The identifier our next request will carry (inner packets use it too).
    pub(super) fn next_id(&self) -> u8 {
        self.id.wrapping_add(1)
    }

    /// The MSK of the finished session: the tunnel's, or, once a PEAP peer bound, the compound
    /// session key's (hostap's `eap_peap_getKey` with `crypto_binding_used`).
    pub fn msk(&self) -> Option<[u8; 64]> {
        if let Some(msk) = self.peap_binding.as_ref().and_then(|b| b.msk()) {
            return Some(msk);
        }
        self.link.as_ref()?.msk(self.method).ok()
    }

    /// "1.2" / "1.3".
    pub fn tls_version(&self) -> &'static str {
        self.link.as_ref().map_or("none", |l| l.version_label())
    }
}

/// EAP-TLS: the verified client certificate must name the EAP identity.
fn certificate_login(
    link: &TlsLink,
    outer: &[u8],
    svc: &EapService,
) -> Result<Pending, RejectReason> {
    let der = link
        .peer_certificate()
        .ok_or(RejectReason::CertificateRejected)?;
    let cert = PeerCertificate::parse(der).map_err(|_| RejectReason::CertificateRejected)?;
    let identity =
        std::str::from_utf8(outer).map_err(|_| RejectReason::CertificateIdentityMismatch)?;
    if !svc.config.identity.matches(&cert, identity) {
        return Err(RejectReason::CertificateIdentityMismatch);
    }
    Ok(Pending {
        mfa_user: identity.to_string(),
        groups: Vec::new(),
        source: AuthSource::Certificate,
        method: Some(Method::EapTls),
        transaction_id: None,
        nt_key: None,
        certificate: Some(Box::new(cert)),
        granted: None,
    })
}

/// Why a TLS run failed, as a reject reason.
fn tls_reason(e: &LinkError) -> RejectReason {
    match e {
        LinkError::Tls(rustls::Error::InvalidCertificate(_))
        | LinkError::Tls(rustls::Error::NoCertificatesPresented) => {
            RejectReason::CertificateRejected
        }
        LinkError::Tls(_) | LinkError::Io(_) => RejectReason::TlsHandshakeFailed,
        LinkError::OutOfOrder | LinkError::TooLong | LinkError::LengthMismatch => {
            RejectReason::EapMalformed
        }
    }
}
