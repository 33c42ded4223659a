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

use super::radius11::{AlpnError, EdgeError, MaNeeds, Radius11, ServerEdge, Version};
use crate::metrics::StreamClose;
use crate::proto::stream::{StreamDecoder, StreamError};
use crate::proto::{Secret, MAX_PACKET_LEN};

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
    /// The handshake did not settle on a RADIUS version `radius_1_1` allows.
    #[error("{0}")]
    Alpn(#[from] AlpnError),
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
            ConnError::Alpn(_) => StreamClose::AlpnMismatch,
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
    /// RADIUS/1.1 negotiated: the translation at the edge, and its scratch buffer.
    edge: Option<Box<(ServerEdge, [u8; MAX_PACKET_LEN])>>,
}

/// One packet out of [`Connection::next_packet`].
#[derive(Debug, PartialEq, Eq)]
pub enum Inbound<'o> {
    /// A RADIUS/1.0 packet for the shard (translated, on a RADIUS/1.1 connection).
    Packet(&'o [u8]),
    /// A RADIUS/1.1 packet that could not be translated: dropped, the connection goes on.
    Dropped(EdgeError),
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
            edge: None,
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

    /// Once the handshake is done: checks the leaf against the client's pinned SHA-256
    /// fingerprints (none: any) and settles the RADIUS version; from a RADIUS/1.1 peer,
    /// packets are translated with the client's `secret` from here on.
    pub fn established(
        &mut self,
        pinned: &[[u8; 32]],
        secret: &Secret,
        ma: MaNeeds,
        radius11: Radius11,
    ) -> Result<Version, ConnError> {
        if !pinned.is_empty() {
            use sha2::Digest;
            let leaf = self.peer_certificate().ok_or(ConnError::Fingerprint)?;
            let got: [u8; 32] = sha2::Sha256::digest(leaf).into();
            // Certificates are public: an ordinary comparison leaks nothing.
            if !pinned.contains(&got) {
                return Err(ConnError::Fingerprint);
            }
        }
        let Some(tls) = self.tls.as_ref() else {
            return Ok(Version::V1_0);
        };
        let version = radius11.settle(tls)?;
        if version == Version::V1_1 {
            self.edge = Some(Box::new((
                ServerEdge::new(secret.clone(), ma),
                [0; MAX_PACKET_LEN],
            )));
        }
        Ok(version)
    }

    /// The next whole RADIUS packet received, copied (or on RADIUS/1.1 translated) into
    /// `out`; `None` until more bytes arrive.
    pub fn next_packet<'o>(
        &mut self,
        out: &'o mut [u8; MAX_PACKET_LEN],
        now: Instant,
    ) -> Result<Option<Inbound<'o>>, ConnError> {
        loop {
            if self.start < self.end {
                let d = self.decoder.decode(&self.plain[self.start..self.end])?;
                self.start += d.consumed;
                if let Some(p) = d.packet {
                    self.last_packet = Some(now);
                    if let Some(edge) = self.edge.as_mut() {
                        return Ok(Some(match edge.0.request(p, now, out) {
                            Ok(p) => Inbound::Packet(p),
                            Err(e) => Inbound::Dropped(e),
                        }));
                    }
                    let n = p.len();
                    out[..n].copy_from_slice(p);
                    return Ok(Some(Inbound::Packet(&out[..n])));
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

    /// Queues a reply (encrypted on [`Connection::write_tls`]); on RADIUS/1.1, translated
    /// first.
    pub fn send(&mut self, packet: &[u8]) -> Result<(), ConnError> {
        let Connection {
            tls,
            outbound,
            edge,
            ..
        } = self;
        let packet = match edge.as_deref_mut() {
            None => packet,
            Some((edge, scratch)) => match edge.reply(packet, scratch) {
                Ok(p) => p,
                // Only a reply the shard built for a request this edge never handed it, or
                // one already answered: nothing the peer is waiting for.
                Err(e) => {
                    tracing::debug!(error = %e, "RADIUS/1.1 reply not translated");
                    return Ok(());
                }
            },
        };
        let Some(tls) = tls.as_mut() else {
            if outbound.len() + packet.len() > TLS_BUFFER_LIMIT {
                return Err(ConnError::Backlog);
            }
            outbound.extend_from_slice(packet);
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

    const NO_MA: MaNeeds = MaNeeds {
        always: false,
        with_proxy_state: false,
    };

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
        let secret = Secret::new("radsec").expect("ok");
        assert!(matches!(
            s.established(&[[0; 32]], &secret, NO_MA, Radius11::Allow),
            Err(ConnError::Fingerprint)
        ));
        // The client offered no ALPN: RADIUS/1.0, whatever allow permits.
        assert_eq!(
            s.established(&[], &secret, NO_MA, Radius11::Allow).ok(),
            Some(Version::V1_0)
        );

        // Two packets in one write, then one split across two writes.
        let (a, b, d) = (status_server(1), status_server(2), status_server(3));
        c.writer()
            .write_all(&[a.clone(), b.clone()].concat())
            .expect("w");
        c.writer().write_all(&d[..7]).expect("w");
        pump(&mut c, &mut s);
        let mut out = [0u8; MAX_PACKET_LEN];
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(
            s.next_packet(&mut out, t1).expect("ok"),
            Some(Inbound::Packet(&a[..]))
        );
        assert_eq!(
            s.next_packet(&mut out, t1).expect("ok"),
            Some(Inbound::Packet(&b[..]))
        );
        assert_eq!(s.next_packet(&mut out, t1).expect("ok"), None);
        c.writer().write_all(&d[7..]).expect("w");
        pump(&mut c, &mut s);
        assert_eq!(
            s.next_packet(&mut out, t1).expect("ok"),
            Some(Inbound::Packet(&d[..]))
        );
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

    /// Client and server offering radius/1.1 (`client_alpn`, `server`'s mode), handshaken.
    fn negotiate(
        client_alpn: Radius11,
        server: Radius11,
    ) -> (ClientConnection, Connection, Result<Version, ConnError>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let (server_config, client) = pair(dir.path());
        let mut sc = (*server_config).clone();
        sc.alpn_protocols = server.alpn_protocols();
        let mut cc = (*client).clone();
        cc.alpn_protocols = client_alpn.alpn_protocols();
        let t0 = Instant::now();
        let mut s = Connection::new(
            Arc::new(sc),
            t0,
            Duration::from_secs(10),
            Duration::from_secs(60),
        )
        .expect("conn");
        let mut c = ClientConnection::new(Arc::new(cc), "radius.test".try_into().expect("name"))
            .expect("c");
        pump(&mut c, &mut s);
        let secret = Secret::new("radsec").expect("ok");
        let v = s.established(&[], &secret, NO_MA, server);
        (c, s, v)
    }

    #[test]
    fn radius_1_1_is_negotiated_by_alpn_and_translated_both_ways() {
        use crate::proto::radius11::{Builder11, Packet11};
        use crate::proto::{verify_request, USER_NAME};
        let (mut c, mut s, v) = negotiate(Radius11::Allow, Radius11::Allow);
        assert_eq!(v.ok(), Some(Version::V1_1));
        assert_eq!(c.alpn_protocol(), Some(&b"radius/1.1"[..]));
        let mut buf = [0u8; MAX_PACKET_LEN];
        let mut b = Builder11::request(&mut buf, Code::AccessRequest, [1, 2, 3, 4]).expect("ok");
        b.attr(USER_NAME, b"bob").expect("ok");
        b.attr(crate::proto::USER_PASSWORD, b"pw").expect("ok");
        c.writer().write_all(b.finish().expect("ok")).expect("w");
        pump(&mut c, &mut s);
        let mut out = [0u8; MAX_PACKET_LEN];
        let Some(Inbound::Packet(p)) = s.next_packet(&mut out, Instant::now()).expect("ok") else {
            panic!("a translated packet");
        };
        let secret = Secret::new("radsec").expect("ok");
        let v = verify_request(
            crate::proto::Packet::parse(p).expect("parses"),
            &secret,
            // No Message-Authenticator was added: a TLS client needs none by default.
            false,
        )
        .expect("verifies as RADIUS/1.0");
        let mut pw = [0u8; 128];
        assert_eq!(v.user_password(&mut pw), Ok(&b"pw"[..]));
        let mut rbuf = [0u8; MAX_PACKET_LEN];
        let reply = PacketBuilder::reply(&mut rbuf, Code::AccessAccept, &v)
            .expect("ok")
            .finish(&secret)
            .expect("ok")
            .to_vec();
        s.send(&reply).expect("send");
        pump(&mut c, &mut s);
        let mut got = [0u8; 64];
        let n = c.reader().read(&mut got).expect("plaintext");
        let r = Packet11::parse(&got[..n]).expect("a RADIUS/1.1 reply");
        assert_eq!(r.code(), Code::AccessAccept);
        assert_eq!(r.token(), [1, 2, 3, 4]);
        assert!(!r.had_message_authenticator());

        // Something that is no packet at all is dropped; the connection goes on.
        c.writer()
            .write_all(&[2, 0, 0, 20, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
            .expect("w");
        pump(&mut c, &mut s);
        assert!(matches!(
            s.next_packet(&mut out, Instant::now()).expect("ok"),
            Some(Inbound::Dropped(_))
        ));
    }

    #[test]
    fn alpn_fallback_and_refusals() {
        // A client that forbids (no ALPN) with a server that allows: RADIUS/1.0.
        let (_, _, v) = negotiate(Radius11::Forbid, Radius11::Allow);
        assert_eq!(v.ok(), Some(Version::V1_0));
        // A server that forbids ignores the client's offer.
        let (c, _, v) = negotiate(Radius11::Allow, Radius11::Forbid);
        assert_eq!(v.ok(), Some(Version::V1_0));
        assert_eq!(c.alpn_protocol(), None);
        // A server that requires it closes a client that did not offer it.
        let (_, _, v) = negotiate(Radius11::Forbid, Radius11::Require);
        assert!(matches!(v, Err(ConnError::Alpn(AlpnError::Required))));
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
