//! One EAP login, the peer's side, as a sans-IO state machine: fed each EAP-Request the server
//! sends (out of its Access-Challenge), it writes the EAP-Response to send back; fed the final
//! Access-Accept's EAP packet, it says whether the method really finished and hands out the
//! MSK to check the MPPE keys against.
//!
//! It owns a `rustls::ClientConnection` driven over memory: the server's reassembled fragments
//! go in through `read_tls` + `process_new_packets`, our flight comes out of `write_tls` into
//! [`Outbound`], inner data goes through `writer()`/`reader()`. The buffers live as long as the
//! conversation slot and are reused by the next login on it.
//!
//! ```text
//! → Identity            ← other type? → Nak(method)       ← Start (S) → ClientHello
//! ← fragment (M)  → ack                                    ← fragment (last) → our flight
//! ← ack (while our flight is pending) → next fragment     … then the inner method …
//! ← Accept + EAP-Success: done (PEAP: Result answered; TTLS: AVPs sent; EAP-TLS 1.3:
//!   the 0x00 commitment seen)
//! ```

use std::io::{ErrorKind, Read, Write};

use std::sync::Arc;

use rand::RngCore;
use rustls::{ClientConfig, ClientConnection, HandshakeKind, ProtocolVersion};

use super::args::TlsVersion;
use super::fragment::{FragmentError, Inbound, Outbound, Progress};
use super::keys::{self, Msk};
use super::peap::{InnerError, InnerUser, NtHashes, PeapPeer};
use super::setup::{Method, Resume, Setup};
use super::ttls::{asks_for_code, write_pap_avps, write_password_avp};
use crate::proto::eap::tls::TlsFragment;
use crate::proto::eap::{write_packet, EapCode, EapError, EapPacket, EapType};
use crate::proto::wipe;

/// The largest EAP-Response we write: a fragment of [`super::setup::FRAGMENT_MAX`] octets and
/// its headers.
pub const EAP_OUT_MAX: usize = super::setup::FRAGMENT_MAX + 16;

/// What one login authenticates with. Passwords are wiped on drop and never printed.
pub struct Credentials {
    /// The inner identity (PEAP, TTLS) or the only one (EAP-TLS).
    pub name: Box<[u8]>,
    pub password: Box<[u8]>,
    /// PEAP only.
    pub hashes: Option<NtHashes>,
    /// TTLS-PAP: the one-time code a server's Reply-Message asks for (RFC 5281 §11.2.5).
    pub code: Option<Box<[u8]>>,
}

impl Drop for Credentials {
    fn drop(&mut self) {
        wipe(&mut self.password);
        if let Some(code) = self.code.as_mut() {
            wipe(code);
        }
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("name", &String::from_utf8_lossy(&self.name))
            .finish_non_exhaustive()
    }
}

/// Why a login failed on our side (the server's answer did not fit the method).
#[derive(Debug, thiserror::Error)]
pub enum ConvError {
    #[error("malformed EAP: {0}")]
    Eap(#[from] EapError),
    #[error("unexpected EAP: {0}")]
    Unexpected(&'static str),
    #[error("TLS fragments: {0}")]
    Fragment(#[from] FragmentError),
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
    #[error("TLS buffers: {0:?}")]
    TlsIo(ErrorKind),
    #[error("inner method: {0}")]
    Inner(#[from] InnerError),
    #[error("an Access-Accept without EAP-Success")]
    NoEapSuccess,
    #[error("an Access-Accept before {0}")]
    EarlyAccept(&'static str),
    #[error("a packet too large for our buffers")]
    TooLarge,
}

impl ConvError {
    /// Stable label for the report's failure counts.
    pub fn label(&self) -> &'static str {
        match self {
            ConvError::Eap(_) => "eap_malformed",
            ConvError::Unexpected(_) => "eap_unexpected",
            ConvError::Fragment(_) => "tls_fragments",
            ConvError::Tls(_) => "tls",
            ConvError::TlsIo(_) => "tls_buffers",
            ConvError::Inner(InnerError::BadAuthenticatorResponse) => "bad_mschapv2_success",
            ConvError::Inner(_) => "inner",
            ConvError::NoEapSuccess => "no_eap_success",
            ConvError::EarlyAccept(_) => "early_accept",
            ConvError::TooLarge => "too_large",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Our Identity went out; the server picks a method (we Nak others) and sends Start.
    Identity,
    /// The TLS handshake and, after it, the inner method.
    Tls,
}

pub struct Conversation {
    /// This window place's TLS configuration (its session cache, with per-slot resumption).
    config: Arc<ClientConfig>,
    stage: Stage,
    tls: Option<ClientConnection>,
    inbound: Inbound,
    outbound: Outbound,
    /// Decrypted data from the server; then our inner answer before it is encrypted.
    plain: Vec<u8>,
    reply: Vec<u8>,
    msk: Option<Msk>,
    resumed: bool,
    tls13: bool,
    peap: PeapPeer,
    /// TTLS: the AVPs went into the tunnel.
    avps_sent: bool,
    /// EAP-TLS over TLS 1.3: the server's one-octet 0x00 application data (RFC 9190 §2.5).
    committed: bool,
}

impl Conversation {
    pub fn new(config: Arc<ClientConfig>) -> Self {
        Conversation {
            config,
            stage: Stage::Identity,
            tls: None,
            inbound: Inbound::default(),
            outbound: Outbound::default(),
            plain: Vec::new(),
            reply: Vec::new(),
            msk: None,
            resumed: false,
            tls13: false,
            peap: PeapPeer::default(),
            avps_sent: false,
            committed: false,
        }
    }

    /// Starts a new login on this slot: forgets the previous one and writes the
    /// EAP-Response/Identity (identifier 0: the NAS's own Request/Identity is not seen by
    /// RADIUS) into `out`.
    pub fn begin(&mut self, identity: &[u8], out: &mut [u8]) -> Result<usize, ConvError> {
        self.stage = Stage::Identity;
        self.tls = None;
        self.inbound.clear();
        self.outbound.clear();
        self.plain.clear();
        self.reply.clear();
        self.msk = None;
        self.resumed = false;
        self.tls13 = false;
        self.peap.reset();
        self.avps_sent = false;
        self.committed = false;
        write_packet(out, EapCode::Response, 0, EapType::Identity, identity)
            .ok_or(ConvError::TooLarge)
    }

    /// Whether the TLS handshake of this login resumed a session.
    pub fn resumed(&self) -> bool {
        self.resumed
    }

    /// Whether this login negotiated TLS 1.3.
    pub fn tls13(&self) -> bool {
        self.tls13
    }

    /// Answers one EAP-Request of an Access-Challenge: the EAP-Response's length in `out`.
    pub fn on_request(
        &mut self,
        setup: &Setup,
        creds: &Credentials,
        identity: &[u8],
        rng: &mut impl RngCore,
        eap: &EapPacket<'_>,
        out: &mut [u8],
    ) -> Result<usize, ConvError> {
        if eap.code() != EapCode::Request {
            return Err(ConvError::Unexpected("a Challenge without an EAP-Request"));
        }
        let id = eap.identifier();
        let ours = setup.method.eap_type();
        let n = match eap.eap_type() {
            Some(t) if t == ours => return self.on_tls(setup, creds, rng, eap, out),
            // Asked again (a lost answer, or a server that starts over): same answer.
            Some(EapType::Identity) if self.stage == Stage::Identity => {
                write_packet(out, EapCode::Response, id, EapType::Identity, identity)
            }
            // RFC 3748 §5.2: a Notification is acknowledged with an empty Response.
            Some(EapType::Notification) => {
                write_packet(out, EapCode::Response, id, EapType::Notification, &[])
            }
            // The server's default method first (FreeRADIUS: md5): ask for ours.
            Some(_) if self.stage == Stage::Identity => {
                write_packet(out, EapCode::Response, id, EapType::Nak, &[ours.to_u8()])
            }
            _ => return Err(ConvError::Unexpected("another method's Request mid-method")),
        };
        n.ok_or(ConvError::TooLarge)
    }

    fn on_tls(
        &mut self,
        setup: &Setup,
        creds: &Credentials,
        rng: &mut impl RngCore,
        eap: &EapPacket<'_>,
        out: &mut [u8],
    ) -> Result<usize, ConvError> {
        let frag = TlsFragment::parse(eap.type_data())?;
        let (id, ours) = (eap.identifier(), setup.method.eap_type());
        // PEAPv0 and TTLSv0: whatever version the server offers, we answer 0 (the lower one
        // wins, MS-PEAP §3.1.5.1, RFC 5281 §9.1); EAP-TLS has no version bits.
        let version = 0;
        if frag.start() {
            if self.stage != Stage::Identity {
                return Err(ConvError::Unexpected("a second Start"));
            }
            self.stage = Stage::Tls;
            let mut conn = ClientConnection::new(self.config.clone(), setup.server_name.clone())?;
            write_all_tls(&mut conn, self.outbound.buffer())?;
            self.tls = Some(conn);
        } else if self.stage != Stage::Tls {
            return Err(ConvError::Unexpected("TLS data before Start"));
        } else if self.outbound.pending() {
            if !frag.is_ack() {
                return Err(ConvError::Unexpected(
                    "data while our fragments were pending",
                ));
            }
        } else {
            match self.inbound.push(&frag)? {
                // Acknowledged with an empty Response (Outbound is empty here).
                Progress::More => {}
                Progress::Complete => self.process(setup, creds, rng, id)?,
            }
        }
        self.outbound
            .next_fragment(out, id, ours, version, setup.fragment)
            .ok_or(ConvError::TooLarge)
    }

    /// Feeds the reassembled server message to TLS, runs the method on what comes out and
    /// leaves our next flight (possibly empty: an acknowledgement) in `outbound`.
    fn process(
        &mut self,
        setup: &Setup,
        creds: &Credentials,
        rng: &mut impl RngCore,
        id: u8,
    ) -> Result<(), ConvError> {
        let Some(conn) = self.tls.as_mut() else {
            return Err(ConvError::Unexpected("TLS data before Start"));
        };
        let was_done = !conn.is_handshaking();
        let mut data = self.inbound.data();
        while !data.is_empty() {
            let n = conn
                .read_tls(&mut data)
                .map_err(|e| ConvError::TlsIo(e.kind()))?;
            conn.process_new_packets()?;
            if n == 0 {
                return Err(ConvError::TlsIo(ErrorKind::WriteZero));
            }
        }
        self.inbound.clear();
        self.plain.clear();
        let mut chunk = [0u8; 4096];
        loop {
            match conn.reader().read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => self.plain.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => return Err(ConvError::TlsIo(e.kind())),
            }
        }
        wipe(&mut chunk);

        let done = !conn.is_handshaking();
        if done && self.msk.is_none() {
            self.tls13 = conn.protocol_version() == Some(ProtocolVersion::TLSv1_3);
            let version = if self.tls13 {
                TlsVersion::Tls13
            } else {
                TlsVersion::Tls12
            };
            self.msk = Some(keys::derive(conn, setup.method, version)?);
            self.resumed = conn.handshake_kind() == Some(HandshakeKind::Resumed);
        }

        // RFC 9190 §2.5: over TLS 1.3 the server ends the handshake with one octet 0x00 of
        // application data. FreeRADIUS 3.2 sends it in PEAP and TTLS too when it resumes a
        // session (it skips phase 2): it is never an inner packet.
        if self.tls13 && self.plain == [0] {
            self.committed = true;
            self.plain.clear();
        }
        self.reply.clear();
        match setup.method {
            Method::EapTls => {
                if !self.plain.is_empty() {
                    return Err(ConvError::Unexpected("application data in EAP-TLS"));
                }
            }
            Method::Peap => {
                if !self.plain.is_empty() {
                    let hashes = creds
                        .hashes
                        .as_ref()
                        .ok_or(ConvError::Unexpected("PEAP without MS-CHAPv2 hashes"))?;
                    let user = InnerUser {
                        name: &creds.name,
                        hashes,
                    };
                    self.peap
                        .handle(&self.plain, id, self.resumed, &user, rng, &mut self.reply)?;
                }
            }
            Method::TtlsPap => {
                // After a full handshake the AVPs go with (TLS 1.3) or after (1.2) our
                // Finished. After a resumed one, servers usually skip phase 2 and accept;
                // a server that asks again (another Request) gets them then. Over TLS 1.3
                // with resumption on, they wait for the server's next message too: it
                // carries the session tickets, which an Accept right after our Finished
                // would leave unsent.
                let now = !(self.resumed || self.tls13 && setup.resume != Resume::Off);
                if self.avps_sent && !self.plain.is_empty() {
                    // Our AVPs went out and the server asks for more: a one-time code.
                    if !asks_for_code(&self.plain) {
                        return Err(ConvError::Unexpected(
                            "TTLS data other than a Reply-Message",
                        ));
                    }
                    let code = creds
                        .code
                        .as_deref()
                        .ok_or(ConvError::Unexpected("a code asked for, none known"))?;
                    write_password_avp(code, &mut self.reply).ok_or(ConvError::TooLarge)?;
                } else if done && !self.avps_sent && (was_done || now) {
                    write_pap_avps(&creds.name, &creds.password, &mut self.reply)
                        .ok_or(ConvError::TooLarge)?;
                    self.avps_sent = true;
                }
            }
        }
        if !self.reply.is_empty() {
            let w = conn
                .writer()
                .write_all(&self.reply)
                .map_err(|e| ConvError::TlsIo(e.kind()));
            wipe(&mut self.reply);
            w?;
        }
        wipe(&mut self.plain);
        write_all_tls(conn, self.outbound.buffer())
    }

    /// Judges the Access-Accept's EAP packet: the method must have finished and the packet
    /// be an EAP-Success. Returns the MSK the MPPE keys must match.
    pub fn on_accept(
        &self,
        method: Method,
        eap: Option<&EapPacket<'_>>,
    ) -> Result<&Msk, ConvError> {
        if eap.map(|e| e.code()) != Some(EapCode::Success) {
            return Err(ConvError::NoEapSuccess);
        }
        let msk = self
            .msk
            .as_ref()
            .ok_or(ConvError::EarlyAccept("the TLS handshake finished"))?;
        match method {
            Method::EapTls if self.tls13 && !self.committed => {
                Err(ConvError::EarlyAccept("the TLS 1.3 commitment (0x00)"))
            }
            Method::Peap if !self.peap.done() => Err(ConvError::EarlyAccept("the PEAP Result TLV")),
            Method::TtlsPap if !self.avps_sent && !self.resumed => {
                Err(ConvError::EarlyAccept("the TTLS AVPs were sent"))
            }
            _ => Ok(msk),
        }
    }
}

/// Moves everything rustls wants to send into `out`.
fn write_all_tls(conn: &mut ClientConnection, out: &mut Vec<u8>) -> Result<(), ConvError> {
    while conn.wants_write() {
        conn.write_tls(out)
            .map_err(|e| ConvError::TlsIo(e.kind()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use rustls::pki_types::ServerName;

    use super::*;
    use crate::proto::eap::tls::{flags, write_fragment};

    /// A setup whose TLS never gets past the ClientHello (no server here): enough for the
    /// EAP framing, which is all these tests look at.
    fn setup(method: Method, fragment: usize) -> Setup {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS12])
            .unwrap()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        Setup {
            method,
            tls_version: TlsVersion::Tls12,
            config: Arc::new(config),
            server_name: ServerName::try_from("radius.test").unwrap(),
            fragment,
            outer_identity: None,
            resume: Resume::Off,
        }
    }

    fn creds() -> Credentials {
        Credentials {
            name: b"alice".as_slice().into(),
            password: b"alicepw".as_slice().into(),
            hashes: NtHashes::of_password(b"alicepw"),
            code: None,
        }
    }

    fn request(id: u8, t: EapType, data: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; 16 + data.len()];
        let n = write_packet(&mut b, EapCode::Request, id, t, data).unwrap();
        b.truncate(n);
        b
    }

    fn tls_request(id: u8, t: EapType, flags: u8, data: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; 16 + data.len()];
        let n = write_fragment(&mut b, EapCode::Request, id, t, flags, None, data).unwrap();
        b.truncate(n);
        b
    }

    struct Peer {
        conv: Conversation,
        setup: Setup,
        creds: Credentials,
        rng: StdRng,
    }

    impl Peer {
        fn new(method: Method, fragment: usize) -> Peer {
            let setup = setup(method, fragment);
            let mut conv = Conversation::new(setup.config.clone());
            let mut out = [0u8; EAP_OUT_MAX];
            let n = conv.begin(b"alice", &mut out).unwrap();
            assert_eq!(&out[..n], b"\x02\x00\x00\x0a\x01alice");
            Peer {
                conv,
                setup,
                creds: creds(),
                rng: StdRng::seed_from_u64(7),
            }
        }

        fn answer(&mut self, req: &[u8]) -> Result<Vec<u8>, ConvError> {
            let eap = EapPacket::parse(req).unwrap();
            let mut out = [0u8; EAP_OUT_MAX];
            let n = self.conv.on_request(
                &self.setup,
                &self.creds,
                b"alice",
                &mut self.rng,
                &eap,
                &mut out,
            )?;
            Ok(out[..n].to_vec())
        }
    }

    fn fragment_of(resp: &[u8]) -> (u8, u8, Option<u32>, Vec<u8>) {
        let p = EapPacket::parse(resp).unwrap();
        assert_eq!(p.code(), EapCode::Response);
        let f = TlsFragment::parse(p.type_data()).unwrap();
        (p.identifier(), f.flags, f.message_length, f.data.to_vec())
    }

    #[test]
    fn nak_then_start_then_client_hello_in_acknowledged_fragments() {
        let mut p = Peer::new(Method::Peap, 64);
        // FreeRADIUS's default_eap_type md5 first: we Nak it, asking for PEAP (25).
        let nak = p
            .answer(&request(1, EapType::Md5Challenge, &[16; 17]))
            .unwrap();
        assert_eq!(nak, [2, 1, 0, 6, 3, 25]);
        // A repeated Identity request gets the identity again; a Notification an empty answer.
        assert_eq!(
            p.answer(&request(2, EapType::Identity, b"")).unwrap(),
            b"\x02\x02\x00\x0a\x01alice"
        );
        assert_eq!(
            p.answer(&request(3, EapType::Notification, b"hi")).unwrap(),
            [2, 3, 0, 5, 2]
        );
        // Start: the ClientHello, here in 64-octet fragments, each after the server's ack.
        let first = p
            .answer(&tls_request(4, EapType::Peap, flags::START, b""))
            .unwrap();
        let (id, fl, total, mut hello) = fragment_of(&first);
        assert_eq!(id, 4);
        assert!(fl & flags::MORE != 0 && fl & flags::VERSION == 0);
        let total = total.expect("L on the first fragment") as usize;
        assert!(total > 64 && hello.len() == 64);
        let mut id = 5;
        while hello.len() < total {
            let resp = p.answer(&tls_request(id, EapType::Peap, 0, b"")).unwrap();
            let (rid, fl, len, data) = fragment_of(&resp);
            assert_eq!((rid, len), (id, None));
            assert_eq!(fl & flags::MORE != 0, hello.len() + data.len() < total);
            hello.extend_from_slice(&data);
            id += 1;
        }
        assert_eq!(hello.len(), total);
        // A TLS handshake record holding a ClientHello.
        assert_eq!((hello[0], hello[5]), (0x16, 0x01));
        // Another method's Request now is an error, so is a second Start.
        assert!(p.answer(&request(9, EapType::Md5Challenge, &[0])).is_err());
        assert!(p
            .answer(&tls_request(9, EapType::Peap, flags::START, b""))
            .is_err());
    }

    #[test]
    fn server_fragments_are_acknowledged_and_bad_tls_fails() {
        let mut p = Peer::new(Method::TtlsPap, 1024);
        let hello = p
            .answer(&tls_request(1, EapType::Ttls, flags::START, b""))
            .unwrap();
        assert!(fragment_of(&hello).1 & flags::MORE == 0);
        // A first server fragment with M: acknowledged with an empty Response.
        let mut b = [0u8; 64];
        let n = write_fragment(
            &mut b,
            EapCode::Request,
            2,
            EapType::Ttls,
            flags::MORE,
            Some(20),
            &[0x16; 10],
        )
        .unwrap();
        let ack = p.answer(&b[..n]).unwrap();
        assert_eq!(ack, [2, 2, 0, 6, 21, 0]);
        // The rest: not a TLS record rustls accepts.
        let n = write_fragment(
            &mut b,
            EapCode::Request,
            3,
            EapType::Ttls,
            0,
            None,
            &[0x16; 10],
        )
        .unwrap();
        assert!(matches!(p.answer(&b[..n]), Err(ConvError::Tls(_))));
    }

    #[test]
    fn accept_is_judged() {
        let p = Peer::new(Method::EapTls, 1024);
        let success = result_packet_bytes(true);
        let failure = result_packet_bytes(false);
        let s = EapPacket::parse(&success).unwrap();
        let f = EapPacket::parse(&failure).unwrap();
        assert!(matches!(
            p.conv.on_accept(Method::EapTls, None),
            Err(ConvError::NoEapSuccess)
        ));
        assert!(matches!(
            p.conv.on_accept(Method::EapTls, Some(&f)),
            Err(ConvError::NoEapSuccess)
        ));
        assert!(matches!(
            p.conv.on_accept(Method::EapTls, Some(&s)),
            Err(ConvError::EarlyAccept(_))
        ));
        // TLS data before any Start; an EAP-Success inside a Challenge.
        let mut q = Peer::new(Method::EapTls, 1024);
        assert!(matches!(
            q.answer(&tls_request(1, EapType::Tls, 0, &[1])),
            Err(ConvError::Unexpected(_))
        ));
        assert!(matches!(
            q.answer(&result_packet_bytes(true)),
            Err(ConvError::Unexpected(_))
        ));
    }

    fn result_packet_bytes(success: bool) -> [u8; 4] {
        crate::proto::eap::result_packet(success, 9)
    }
}
