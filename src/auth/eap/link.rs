//! TLS carried in EAP fragments (RFC 5216 §3.1–3.2, shared by TTLS and PEAP): rustls's server
//! connection driven over in-memory buffers, the peer's fragments reassembled into whole
//! messages, ours cut into fragments of at most the conversation's fragment size, each
//! acknowledged before the next.
//!
//! Sans-IO: [`TlsLink::process`] is where the handshake's public-key crypto happens, so the
//! caller decides where it runs (a handshake worker while handshaking; application data, cheap
//! symmetric crypto, anywhere).
//!
//! Bound: a peer message is reassembled up to [`MAX_TLS_MESSAGE`] octets (the largest
//! certificate flight we accept); past it the conversation fails.

use std::io::{Read, Write};
use std::sync::Arc;

use rustls::{HandshakeKind, ProtocolVersion, ServerConfig, ServerConnection};

use crate::proto::eap::peap_binding::TK_LEN;
use crate::proto::eap::tls::{flags, TlsFragment};
use crate::tls::resumption::processing;
use crate::vocab::Method;

/// Largest TLS message (all fragments of one flight) a peer may send.
pub const MAX_TLS_MESSAGE: usize = 64 * 1024;

/// What a peer's fragment was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// An acknowledgement of one of our fragments (or of our last flight).
    Ack,
    /// A fragment of a longer message: acknowledge it and wait for the rest.
    Partial,
    /// The last fragment of a message: run TLS over it.
    Complete,
}

/// Why the link failed.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("a fragment arrived while ours were still being sent")]
    OutOfOrder,
    #[error("a TLS message longer than {MAX_TLS_MESSAGE} octets")]
    TooLong,
    #[error("TLS Message Length does not match the fragments")]
    LengthMismatch,
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
    #[error("TLS I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// One conversation's TLS session and the fragments in flight.
pub struct TlsLink {
    conn: ServerConnection,
    /// The peer's message being reassembled.
    incoming: Vec<u8>,
    /// Its TLS Message Length, when the first fragment said.
    expected: Option<usize>,
    /// Our TLS output; `sent` octets of it are out.
    outgoing: Vec<u8>,
    sent: usize,
    /// Application data the peer sent, not yet taken.
    plain: Vec<u8>,
    /// Ours, kept with the session (and in its tickets).
    token: [u8; 16],
    /// The token of the session a TLS 1.2 resumption looked up (rustls hands TLS 1.3's back
    /// itself).
    earlier: Option<[u8; 16]>,
}

impl TlsLink {
    /// A new server session under `config`; `resumption` is kept with the session (and in
    /// its tickets) and handed back when the peer resumes it.
    pub fn new(config: Arc<ServerConfig>, token: [u8; 16]) -> Result<TlsLink, LinkError> {
        let mut conn = ServerConnection::new(config)?;
        conn.set_resumption_data(&token);
        Ok(TlsLink {
            conn,
            incoming: Vec::new(),
            expected: None,
            outgoing: Vec::new(),
            sent: 0,
            plain: Vec::new(),
            token,
            earlier: None,
        })
    }

    /// Takes a peer fragment.
    pub fn receive(&mut self, frag: &TlsFragment<'_>) -> Result<Received, LinkError> {
        if frag.is_ack() {
            if !self.incoming.is_empty() {
                return Err(LinkError::OutOfOrder);
            }
            return Ok(Received::Ack);
        }
        if self.has_output() {
            return Err(LinkError::OutOfOrder);
        }
        if self.incoming.is_empty() {
            if let Some(len) = frag.message_length {
                let len = len as usize;
                if len > MAX_TLS_MESSAGE {
                    return Err(LinkError::TooLong);
                }
                self.expected = Some(len);
            }
        }
        if self.incoming.len() + frag.data.len() > MAX_TLS_MESSAGE {
            return Err(LinkError::TooLong);
        }
        self.incoming.extend_from_slice(frag.data);
        let len = self.incoming.len();
        match (frag.more(), self.expected) {
            (_, Some(e)) if len > e => Err(LinkError::LengthMismatch),
            (true, _) => Ok(Received::Partial),
            (false, Some(e)) if len != e => Err(LinkError::LengthMismatch),
            (false, _) => Ok(Received::Complete),
        }
    }

    /// Runs TLS over the reassembled message: the handshake's crypto, or the decryption of
    /// application data. Output (and an alert, on failure) is queued for sending.
    pub fn process(&mut self) -> Result<(), LinkError> {
        let input = std::mem::take(&mut self.incoming);
        self.expected = None;
        let mut rest = &input[..];
        let result = (|| {
            while !rest.is_empty() {
                if self.conn.read_tls(&mut rest)? == 0 {
                    break;
                }
                let conn = &mut self.conn;
                let (done, earlier) =
                    processing(&self.token, || conn.process_new_packets().map(|_| ()));
                done?;
                self.earlier = self.earlier.or(earlier);
                self.drain_plaintext()?;
            }
            Ok(())
        })();
        self.flush();
        result
    }

    fn drain_plaintext(&mut self) -> Result<(), LinkError> {
        let mut buf = [0u8; 2048];
        loop {
            match self.conn.reader().read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => {
                    if self.plain.len() + n > MAX_TLS_MESSAGE {
                        return Err(LinkError::TooLong);
                    }
                    self.plain.extend_from_slice(&buf[..n]);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Moves rustls's pending output into our fragment queue.
    fn flush(&mut self) {
        if !self.has_output() {
            self.outgoing.clear();
            self.sent = 0;
        }
        while self.conn.wants_write() {
            if self.conn.write_tls(&mut self.outgoing).is_err() {
                break;
            }
        }
    }

    /// Encrypts `data` for the peer (after the handshake) and queues it.
    pub fn send(&mut self, data: &[u8]) -> Result<(), LinkError> {
        self.conn.writer().write_all(data)?;
        self.flush();
        Ok(())
    }

    /// The application data the peer sent since the last call.
    pub fn take_plaintext(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.plain)
    }

    /// Output not yet sent.
    pub fn has_output(&self) -> bool {
        self.sent < self.outgoing.len()
    }

    /// The next fragment of our output (at most `max` octets of TLS data): its flags, TLS
    /// Message Length (on the first fragment of a message that takes several) and data.
    pub fn next_fragment(&mut self, max: usize) -> (u8, Option<u32>, &[u8]) {
        let (start, total) = (self.sent, self.outgoing.len());
        let end = start.saturating_add(max.max(1)).min(total);
        let more = end < total;
        let mut f = 0;
        let mut length = None;
        if more {
            f |= flags::MORE;
            if start == 0 {
                f |= flags::LENGTH;
                length = u32::try_from(total).ok();
            }
        }
        self.sent = end;
        (f, length, &self.outgoing[start..end])
    }

    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// The session was resumed (abbreviated handshake).
    pub fn resumed(&self) -> bool {
        self.conn.handshake_kind() == Some(HandshakeKind::Resumed)
    }

    /// The token of the session this one resumed ([`TlsLink::new`]'s `token` then), if it
    /// was resumed.
    pub fn resumed_from(&self) -> Option<[u8; 16]> {
        if !self.resumed() {
            return None;
        }
        self.conn
            .received_resumption_data()
            .and_then(|d| <[u8; 16]>::try_from(d).ok())
            .or(self.earlier)
    }

    pub fn is_tls13(&self) -> bool {
        self.conn.protocol_version() == Some(ProtocolVersion::TLSv1_3)
    }

    /// "1.2" or "1.3", for logs and metrics.
    pub fn version_label(&self) -> &'static str {
        match self.conn.protocol_version() {
            Some(ProtocolVersion::TLSv1_3) => "1.3",
            Some(ProtocolVersion::TLSv1_2) => "1.2",
            _ => "none",
        }
    }

    /// The peer's certificate (leaf first), if it sent one.
    pub fn peer_certificate(&self) -> Option<&[u8]> {
        Some(self.conn.peer_certificates()?.first()?.as_ref())
    }

    /// The MSK (64 octets) of `method`: TLS 1.2 the PRF over the master secret with the
    /// method's label (RFC 5216 §2.3, RFC 5281 §8, MS-PEAP §3.1.5.5 — what RFC 5705's exporter
    /// without context computes); TLS 1.3 the exporter of RFC 9190 §2.3 / RFC 9427 §2.1 with
    /// the EAP Type as context.
    pub fn msk(&self, method: Method) -> Result<[u8; 64], LinkError> {
        let mut msk = [0u8; 64];
        if self.is_tls13() {
            let mut km = [0u8; 128];
            let ty = [eap_type(method)];
            self.conn.export_keying_material(
                &mut km,
                b"EXPORTER_EAP_TLS_Key_Material",
                Some(&ty),
            )?;
            msk.copy_from_slice(&km[..64]);
            crate::proto::wipe(&mut km);
        } else {
            let label: &[u8] = match method {
                Method::Ttls => b"ttls keying material",
                _ => b"client EAP encryption",
            };
            self.conn.export_keying_material(&mut msk, label, None)?;
        }
        Ok(msk)
    }

    /// PEAP's tunnel key for crypto-binding (MS-PEAP §3.1.5.5.2): the first 60 octets of the
    /// keying material the MSK comes from. Both peers (hostap's `key_data`) export it at the
    /// MSK's length and cut it: on TLS 1.3 the exporter's output depends on the length asked,
    /// so this must come from exactly the export [`TlsLink::msk`] does.
    pub fn peap_tk(&self) -> Result<[u8; TK_LEN], LinkError> {
        let mut msk = self.msk(Method::Peap)?;
        let mut tk = [0u8; TK_LEN];
        tk.copy_from_slice(&msk[..TK_LEN]);
        crate::proto::wipe(&mut msk);
        Ok(tk)
    }

    /// TTLS's implicit MS-CHAP challenge (RFC 5281 §11.2.4): 16 octets of challenge and the
    /// identifier, from the keying material with the label "ttls challenge".
    pub fn ttls_challenge(&self) -> Result<[u8; 17], LinkError> {
        Ok(self
            .conn
            .export_keying_material([0u8; 17], b"ttls challenge", None)?)
    }
}

/// The EAP Type number of an EAP method.
pub fn eap_type(method: Method) -> u8 {
    match method {
        Method::Ttls => 21,
        Method::Peap => 25,
        _ => 13,
    }
}
