//! A RadSec client for tests: rustls over a std TcpStream, presenting a test PKI's client
//! certificate, and RFC 6613 framing of what it reads.

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A client configuration presenting `cert_dir`'s client certificate, trusting `ca_dir`'s CA.
pub fn client_config(ca_dir: &Path, cert_dir: &Path) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(ca_dir.join("ca.pem")).expect("ca"))
        .expect("root");
    let chain = vec![CertificateDer::from_pem_file(cert_dir.join("client.pem")).expect("cert")];
    let key = PrivateKeyDer::from_pem_file(cert_dir.join("client.key")).expect("key");
    Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .expect("client auth"),
    )
}

pub type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

pub fn connect(to: SocketAddr, config: Arc<rustls::ClientConfig>) -> Tls {
    let tcp = TcpStream::connect(to).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    let conn =
        rustls::ClientConnection::new(config, "radius.test".try_into().expect("name")).expect("c");
    rustls::StreamOwned::new(conn, tcp)
}

/// Reads one framed RADIUS packet.
pub fn read_packet(tls: &mut Tls) -> std::io::Result<Vec<u8>> {
    let mut head = [0u8; 4];
    tls.read_exact(&mut head)?;
    let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
    let mut p = head.to_vec();
    p.resize(len, 0);
    tls.read_exact(&mut p[4..])?;
    Ok(p)
}
