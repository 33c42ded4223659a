//! The MSK a TLS-based EAP method exports, and the check of the MPPE keys an Access-Accept
//! carries against it.
//!
//! MSK (64 octets), by method and TLS version:
//!
//! | method | TLS 1.2 (RFC 5216 §2.3, RFC 5281 §8, MS-PEAP) | TLS 1.3 (RFC 9190 §2.3, RFC 9427 §2.1) |
//! |---|---|---|
//! | EAP-TLS | PRF(master, "client EAP encryption", randoms) | Exporter("EXPORTER_EAP_TLS_Key_Material", 0x0D, 128)[..64] |
//! | PEAPv0  | PRF(master, "client EAP encryption", randoms) | Exporter("EXPORTER_EAP_TLS_Key_Material", 0x19, 128)[..64] |
//! | TTLS    | PRF(master, "ttls keying material", randoms)  | Exporter("EXPORTER_EAP_TLS_Key_Material", 0x15, 128)[..64] |
//!
//! In TLS 1.2 the RFC 5705 exporter without a context is exactly that PRF over
//! client_random ‖ server_random, so rustls's `export_keying_material` serves both. In TLS 1.3
//! the requested length enters the derivation: 128 octets must be asked for, then cut.
//!
//! The Accept's MS-MPPE-Recv-Key must be MSK[0..32] and MS-MPPE-Send-Key MSK[32..64] (the
//! server's names: it receives with what the peer sends with), salt-encrypted (RFC 2548
//! §2.4.2) with the shared secret and the Request Authenticator of the request it answers.

use subtle::ConstantTimeEq;

use super::args::TlsVersion;
use super::setup::Method;
use crate::proto::attr::{MICROSOFT, MS_MPPE_RECV_KEY, MS_MPPE_SEND_KEY};
use crate::proto::crypto::mppe;
use crate::proto::{wipe, Packet, Secret};

pub const MSK_LEN: usize = 64;
const TLS13_LABEL: &[u8] = b"EXPORTER_EAP_TLS_Key_Material";
const TLS13_KEY_MATERIAL: usize = 128;

/// The Master Session Key of one login. Wiped on drop, never printed.
pub struct Msk([u8; MSK_LEN]);

impl Drop for Msk {
    fn drop(&mut self) {
        wipe(&mut self.0);
    }
}

impl std::fmt::Debug for Msk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Msk(..)")
    }
}

impl Msk {
    pub fn from_bytes(bytes: [u8; MSK_LEN]) -> Msk {
        Msk(bytes)
    }

    /// What the server calls MS-MPPE-Recv-Key.
    pub fn recv_key(&self) -> &[u8] {
        &self.0[..32]
    }

    /// What the server calls MS-MPPE-Send-Key.
    pub fn send_key(&self) -> &[u8] {
        &self.0[32..]
    }
}

/// The TLS 1.2 PRF label of `method`.
fn tls12_label(method: Method) -> &'static [u8] {
    match method {
        Method::EapTls | Method::Peap => b"client EAP encryption",
        Method::TtlsPap => b"ttls keying material",
    }
}

/// Exports the MSK of a finished handshake.
pub fn derive(
    conn: &rustls::ClientConnection,
    method: Method,
    version: TlsVersion,
) -> Result<Msk, rustls::Error> {
    match version {
        TlsVersion::Tls12 => {
            let out = conn.export_keying_material([0u8; MSK_LEN], tls12_label(method), None)?;
            Ok(Msk(out))
        }
        TlsVersion::Tls13 => {
            let context = [method.eap_type().to_u8()];
            let mut km = conn.export_keying_material(
                [0u8; TLS13_KEY_MATERIAL],
                TLS13_LABEL,
                Some(&context),
            )?;
            let mut msk = [0u8; MSK_LEN];
            msk.copy_from_slice(&km[..MSK_LEN]);
            wipe(&mut km);
            Ok(Msk(msk))
        }
    }
}

/// The judgement of an Accept's MPPE keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyCheck {
    Good,
    /// MS-MPPE-Recv-Key or -Send-Key absent (a peer then has no keys: the login is useless).
    Missing,
    /// Present but not decryptable, or not the MSK's halves.
    Mismatch,
}

/// Decrypts the Accept's MPPE keys with `secret` and the Request Authenticator of the request
/// it answers, and compares them with `msk` in constant time.
pub fn check_mppe(
    reply: &Packet<'_>,
    request_authenticator: &[u8; 16],
    secret: &Secret,
    msk: &Msk,
) -> KeyCheck {
    let (Some(recv), Some(send)) = (
        reply.vendor_attr(MICROSOFT, MS_MPPE_RECV_KEY),
        reply.vendor_attr(MICROSOFT, MS_MPPE_SEND_KEY),
    ) else {
        return KeyCheck::Missing;
    };
    let good = key_is(secret, request_authenticator, recv, msk.recv_key())
        & key_is(secret, request_authenticator, send, msk.send_key());
    if good {
        KeyCheck::Good
    } else {
        KeyCheck::Mismatch
    }
}

fn key_is(secret: &Secret, ra: &[u8; 16], value: &[u8], want: &[u8]) -> bool {
    let mut out = [0u8; 240];
    let good = match mppe::decrypt(secret, ra, value, &mut out) {
        Ok(key) => key.len() == want.len() && bool::from(key.ct_eq(want)),
        Err(_) => false,
    };
    wipe(&mut out);
    good
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{verify_request, Code, PacketBuilder};

    fn accept(secret: &Secret, ra: &[u8; 16], recv: Option<&[u8]>, send: Option<&[u8]>) -> Vec<u8> {
        let mut req = [0u8; 256];
        let b = PacketBuilder::request(&mut req, Code::AccessRequest, 1, ra).unwrap();
        let req = b.finish(secret).unwrap().to_vec();
        let p = Packet::parse(&req).unwrap();
        let v = verify_request(p, secret, false).unwrap();
        let mut buf = [0u8; 512];
        let mut b = PacketBuilder::reply(&mut buf, Code::AccessAccept, &v).unwrap();
        let mut enc = [0u8; mppe::MAX_VALUE_LEN];
        if let Some(k) = recv {
            let v = mppe::encrypt(secret, ra, 0x8001, k, &mut enc).unwrap();
            b.vsa(MICROSOFT, MS_MPPE_RECV_KEY, v).unwrap();
        }
        if let Some(k) = send {
            let v = mppe::encrypt(secret, ra, 0x8002, k, &mut enc).unwrap();
            b.vsa(MICROSOFT, MS_MPPE_SEND_KEY, v).unwrap();
        }
        b.finish(secret).unwrap().to_vec()
    }

    #[test]
    fn keys_are_the_msk_halves() {
        let s = Secret::new(b"testing123").unwrap();
        let ra = [9u8; 16];
        let mut m = [0u8; MSK_LEN];
        for (i, b) in m.iter_mut().enumerate() {
            *b = i as u8;
        }
        let msk = Msk::from_bytes(m);
        let check = |bytes: Vec<u8>, ra: &[u8; 16]| {
            check_mppe(&Packet::parse(&bytes).unwrap(), ra, &s, &msk)
        };
        let good = accept(&s, &ra, Some(&m[..32]), Some(&m[32..]));
        assert_eq!(check(good.clone(), &ra), KeyCheck::Good);
        // Another request's authenticator decrypts to garbage.
        assert_eq!(check(good, &[8; 16]), KeyCheck::Mismatch);
        // Swapped halves, one octet off, a short key, one key absent.
        let swapped = accept(&s, &ra, Some(&m[32..]), Some(&m[..32]));
        assert_eq!(check(swapped, &ra), KeyCheck::Mismatch);
        let mut off = m;
        off[40] ^= 1;
        assert_eq!(
            check(accept(&s, &ra, Some(&off[..32]), Some(&off[32..])), &ra),
            KeyCheck::Mismatch
        );
        assert_eq!(
            check(accept(&s, &ra, Some(&m[..31]), Some(&m[32..])), &ra),
            KeyCheck::Mismatch
        );
        assert_eq!(
            check(accept(&s, &ra, None, Some(&m[32..])), &ra),
            KeyCheck::Missing
        );
        assert_eq!(format!("{msk:?}"), "Msk(..)");
    }
}
