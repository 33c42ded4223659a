//! One RadSec connection, sans-IO: fed the bytes read from the socket and the time, it yields
//! whole RADIUS packets and takes replies; what it wants written is drained by the caller.
//!
//! ```text
//!  receive(bytes, now) ──▶ rustls ──▶ plaintext ──▶ StreamDecoder ──▶ next_packet()
//!  send(reply) ──▶ rustls ──▶ write_tls(out) ──▶ the socket
//!  deadline(): handshake_timeout from accept while handshaking, then idle_timeout from the
//!  last packet received
//! ```
//!
//! Memory per connection is fixed: rustls's buffers (capped by `set_buffer_limit`), the
//! decoder's 4 KiB and a 16 KiB plaintext buffer.

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::{ServerConfig, ServerConnection};

use crate::metrics::StreamClose;
use crate::proto::stream::{StreamDecoder, StreamError};
use crate::proto::MAX_PACKET_LEN;

/// Plaintext read out of rustls at once (one TLS record's worth).
const PLAIN: usize = 16 * 1024;
/// TLS bytes rustls may buffer each way before it pushes back: a few dozen full packets.
const TLS_BUFFER_LIMIT: usize = 256 * 1024;

/// Why a connection ends. Every one closes it.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
    #[error("{0}")]
    Framing(#[from] StreamError),
    /// The peer's certificate is not one its client entry pins.
    #[error("the client certificate is not one of the pinned fingerprints")]
    Fingerprint,
    /// The peer sent close_notify.
    #[error("closed by the peer")]
    Closed,
    /// More TLS data buffered than allowed (the peer does not read its replies).
    #[error("TLS buffers full")]
    Backlog,
    /// The handshake workers' queue is full.
    #[error("the handshake workers are busy")]
    Overloaded,
}

impl ConnError {
    /// What the connection's end is counted as.
    pub fn reason(&self) -> StreamClose {
        match self {
            ConnError::Tls(rustls::Error::InvalidCertificate(_))
            | ConnError::Tls(rustls::Error::NoCertificatesPresented) => StreamClose::BadCertificate,
            ConnError::Tls(_) => StreamClose::TlsError,
            ConnError::Framing(_) => StreamClose::BadFraming,
            ConnError::Fingerprint => StreamClose::FingerprintMismatch,
            ConnError::Closed => StreamClose::PeerClosed,
            ConnError::Backlog => StreamClose::Backlog,
            ConnError::Overloaded => StreamClose::HandshakeOverload,
        }
    }
}

/// A RadSec server connection, or (RFC 6613, RADIUS over TCP) a plain one: the same framing
/// and deadlines without TLS.
pub struct Connection {
    /// `None`: plain TCP.
    tls: Option<ServerConnection>,
    /// Plain TCP: replies not yet handed out by [`Connection::write_tls`].
    outbound: Vec<u8>,
    decoder: StreamDecoder,
    plain: Box<[u8; PLAIN]>,
    /// `plain[start..end]` is read from TLS and not yet framed.
    start: usize,
    end: usize,
    accepted: Instant,
    last_packet: Option<Instant>,
    handshake_timeout: Duration,
    idle_timeout: Duration,
}

impl Connection {
    pub fn new(
        config: Arc<ServerConfig>,
        now: Instant,
        handshake_timeout: Duration,
        idle_timeout: Duration,
    ) -> Result<Connection, ConnError> {
        let mut tls = ServerConnection::new(config)?;
        tls.set_buffer_limit(Some(TLS_BUFFER_LIMIT));
        Ok(Connection::with(
            Some(tls),
            now,
            handshake_timeout,
            idle_timeout,
        ))
    }

    /// A RADIUS/TCP connection (RFC 6613): no TLS, so no handshake.
    pub fn plain(now: Instant, idle_timeout: Duration) -> Connection {
        Connection::with(None, now, Duration::ZERO, idle_timeout)
    }

    fn with(
        tls: Option<ServerConnection>,
        now: Instant,
        handshake_timeout: Duration,
        idle_timeout: Duration,
    ) -> Connection {
        Connection {
            tls,
            outbound: Vec::new(),
            decoder: StreamDecoder::new(),
            plain: Box::new([0; PLAIN]),
            start: 0,
            end: 0,
            accepted: now,
            last_packet: None,
            handshake_timeout,
            idle_timeout,
        }
    }

    /// Bytes read from the socket. A TLS error is fatal; rustls may have queued an alert
    /// for the peer, which [`Connection::write_tls`] still hands out.
    pub fn receive(&mut self, mut bytes: &[u8]) -> Result<(), ConnError> {
        let Some(tls) = self.tls.as_mut() else {
            // Plain: straight into the buffer framing reads from (emptied by next_packet,
            // the decoder keeps a straddling packet itself).
            if self.start == self.end {
                (self.start, self.end) = (0, 0);
            }
            let room = self.plain.get_mut(self.end..).ok_or(ConnError::Backlog)?;
            let dst = room.get_mut(..bytes.len()).ok_or(ConnError::Backlog)?;
            dst.copy_from_slice(bytes);
            self.end += bytes.len();
            return Ok(());
        };
        while !bytes.is_empty() {
            match tls.read_tls(&mut bytes) {
                Ok(0) => break,
                Ok(_) => {}
                // rustls's buffers are full (TLS_BUFFER_LIMIT): the peer sends faster than
                // its replies are read back.
                Err(_) => return Err(ConnError::Backlog),
            }
            tls.process_new_packets()?;
        }
        Ok(())
    }

    pub fn is_handshaking(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.is_handshaking())
    }

    /// The client's leaf certificate (DER), once the handshake is done.
    pub fn peer_certificate(&self) -> Option<&[u8]> {
        self.tls
            .as_ref()?
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.as_ref())
    }

    /// Checks the leaf against the client's pinned SHA-256 fingerprints (none: any).
    pub fn check_fingerprints(&self, pinned: &[[u8; 32]]) -> Result<(), ConnError> {
        if pinned.is_empty() {
            return Ok(());
        }
        use sha2::Digest;
        let leaf = self.peer_certificate().ok_or(ConnError::Fingerprint)?;
        let got: [u8; 32] = sha2::Sha256::digest(leaf).into();
        // Certificates are public: an ordinary comparison leaks nothing.
        if pinned.contains(&got) {
            Ok(())
        } else {
            Err(ConnError::Fingerprint)
        }
    }

    /// The next whole RADIUS packet received, copied into `out`; `None` until more bytes
    /// arrive.
    pub fn next_packet<'o>(
        &mut self,
        out: &'o mut [u8; MAX_PACKET_LEN],
        now: Instant,
    ) -> Result<Option<&'o [u8]>, ConnError> {
        loop {
            if self.start < self.end {
                let d = self.decoder.decode(&self.plain[self.start..self.end])?;
                self.start += d.consumed;
                if let Some(p) = d.packet {
                    let n = p.len();
                    out[..n].copy_from_slice(p);
                    self.last_packet = Some(now);
                    return Ok(Some(&out[..n]));
                }
            }
            self.start = 0;
            self.end = 0;
            let Some(tls) = self.tls.as_mut() else {
                return Ok(None);
            };
            match tls.reader().read(&mut self.plain[..]) {
                Ok(0) => return Err(ConnError::Closed),
                Ok(n) => self.end = n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(_) => return Err(ConnError::Closed),
            }
        }
    }

    /// Queues a reply (encrypted on [`Connection::write_tls`]).
    pub fn send(&mut self, packet: &[u8]) -> Result<(), ConnError> {
        let Some(tls) = self.tls.as_mut() else {
            if self.outbound.len() + packet.len() > TLS_BUFFER_LIMIT {
                return Err(ConnError::Backlog);
            }
            self.outbound.extend_from_slice(packet);
            return Ok(());
        };
        tls.writer()
            .write_all(packet)
            .map_err(|_| ConnError::Backlog)
    }

    pub fn wants_write(&self) -> bool {
        self.tls
            .as_ref()
            .map_or(!self.outbound.is_empty(), |t| t.wants_write())
    }

    /// Drains what is to be sent (TLS records, or plain packets) into `out`.
    pub fn write_tls(&mut self, out: &mut Vec<u8>) {
        let Some(tls) = self.tls.as_mut() else {
            out.append(&mut self.outbound);
            return;
        };
        while tls.wants_write() {
            if tls.write_tls(out).is_err() {
                break;
            }
        }
    }

    /// Sends close_notify (then drain with [`Connection::write_tls`]).
    pub fn close(&mut self) {
        if let Some(tls) = self.tls.as_mut() {
            tls.send_close_notify();
        }
    }

    /// When the connection is closed unless something arrives: the handshake's deadline
    /// while handshaking, then idle_timeout after the last packet (or the handshake).
    pub fn deadline(&self) -> Instant {
        if self.is_handshaking() {
            return self.accepted + self.handshake_timeout;
        }
        self.last_packet.unwrap_or(self.accepted) + self.idle_timeout
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{Code, PacketBuilder, Secret};
    use crate::tls::pki::{write_test_pki, KeyKind};
    use crate::tls::{ServerTls, TlsSettings};
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use rustls::ClientConnection;

    fn pair(dir: &std::path::Path) -> (Arc<ServerConfig>, Arc<rustls::ClientConfig>) {
        write_test_pki(dir, KeyKind::Ecdsa, false).expect("pki");
        let mut s = TlsSettings::new(dir.join("server.pem"), dir.join("server.key"));
        s.ca = Some(dir.join("ca.pem"));
        let server = ServerTls::build(&s)
            .expect("builds")
            .mutual
            .expect("mutual");
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_file(dir.join("ca.pem")).expect("ca"))
            .expect("root");
        let chain = vec![CertificateDer::from_pem_file(dir.join("client.pem")).expect("cert")];
        let key = PrivateKeyDer::from_pem_file(dir.join("client.key")).expect("key");
        let client = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .expect("client auth");
        (server, Arc::new(client))
    }

    /// Moves TLS bytes both ways until neither side has anything to say.
    fn pump(c: &mut ClientConnection, s: &mut Connection) {
        for _ in 0..10 {
            let mut to_server = Vec::new();
            while c.wants_write() {
                c.write_tls(&mut to_server).expect("client write");
            }
            s.receive(&to_server).expect("server receives");
            let mut to_client = Vec::new();
            s.write_tls(&mut to_client);
            let mut rd = &to_client[..];
            while !rd.is_empty() {
                c.read_tls(&mut rd).expect("client read");
                c.process_new_packets().expect("client process");
            }
            if to_server.is_empty() && to_client.is_empty() {
                break;
            }
        }
    }

    fn status_server(id: u8) -> Vec<u8> {
        let mut buf = [0u8; MAX_PACKET_LEN];
        PacketBuilder::request(&mut buf, Code::StatusServer, id, &[id; 16])
            .expect("ok")
            .finish(&Secret::new("radsec").expect("ok"))
            .expect("ok")
            .to_vec()
    }

    #[test]
    fn handshake_then_packets_split_and_joined_then_replies() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (server, client) = pair(dir.path());
        let t0 = Instant::now();
        let mut s = Connection::new(server, t0, Duration::from_secs(10), Duration::from_secs(60))
            .expect("conn");
        assert_eq!(s.deadline(), t0 + Duration::from_secs(10));
        let mut c =
            ClientConnection::new(client, "radius.test".try_into().expect("name")).expect("c");
        pump(&mut c, &mut s);
        assert!(!s.is_handshaking() && !c.is_handshaking());
        assert!(s.peer_certificate().is_some());
        assert!(s.check_fingerprints(&[]).is_ok());
        assert!(matches!(
            s.check_fingerprints(&[[0; 32]]),
            Err(ConnError::Fingerprint)
        ));

        // Two packets in one write, then one split across two writes.
        let (a, b, d) = (status_server(1), status_server(2), status_server(3));
        c.writer()
            .write_all(&[a.clone(), b.clone()].concat())
            .expect("w");
        c.writer().write_all(&d[..7]).expect("w");
        pump(&mut c, &mut s);
        let mut out = [0u8; MAX_PACKET_LEN];
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(s.next_packet(&mut out, t1).expect("ok"), Some(&a[..]));
        assert_eq!(s.next_packet(&mut out, t1).expect("ok"), Some(&b[..]));
        assert_eq!(s.next_packet(&mut out, t1).expect("ok"), None);
        c.writer().write_all(&d[7..]).expect("w");
        pump(&mut c, &mut s);
        assert_eq!(s.next_packet(&mut out, t1).expect("ok"), Some(&d[..]));
        assert_eq!(s.deadline(), t1 + Duration::from_secs(60));

        s.send(b"reply bytes").expect("send");
        pump(&mut c, &mut s);
        let mut got = [0u8; 32];
        let n = c.reader().read(&mut got).expect("plaintext");
        assert_eq!(&got[..n], b"reply bytes");

        // A bad Length loses framing: fatal.
        c.writer().write_all(&[1, 0, 0, 5]).expect("w");
        pump(&mut c, &mut s);
        assert!(matches!(
            s.next_packet(&mut out, t1),
            Err(ConnError::Framing(_))
        ));
    }

    #[test]
    fn a_client_without_a_certificate_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (server, _) = pair(dir.path());
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_file(dir.path().join("ca.pem")).expect("ca"))
            .expect("root");
        let anonymous = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        let mut c =
            ClientConnection::new(Arc::new(anonymous), "radius.test".try_into().expect("name"))
                .expect("c");
        let mut s = Connection::new(
            server,
            Instant::now(),
            Duration::from_secs(10),
            Duration::from_secs(60),
        )
        .expect("conn");
        let mut refused = None;
        for _ in 0..10 {
            let mut to_server = Vec::new();
            while c.wants_write() {
                c.write_tls(&mut to_server).expect("client write");
            }
            if let Err(e) = s.receive(&to_server) {
                refused = Some(e);
                break;
            }
            let mut to_client = Vec::new();
            s.write_tls(&mut to_client);
            let mut rd = &to_client[..];
            while !rd.is_empty() {
                c.read_tls(&mut rd).expect("client read");
                let _ = c.process_new_packets();
            }
        }
        let e = refused.expect("refused");
        assert_eq!(e.reason(), StreamClose::BadCertificate, "{e}");
    }
}
