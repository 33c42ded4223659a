//! The RADIUS side of an EAP login: an Access-Request carrying one EAP-Response (split into
//! 253-octet EAP-Message attributes, RFC 3579 §3.1) with the State of the previous
//! Access-Challenge, and the EAP packet and State read back out of a reply.

use crate::proto::eap::{EapError, EapPacket, MAX_EAP_LEN};
use crate::proto::{attr, BuildError, Code, Packet, PacketBuilder, Secret};

/// Longest State we carry back (one attribute's value).
pub const STATE_MAX: usize = 253;

/// What one Access-Request of a login carries besides its EAP-Response.
pub struct RequestFields<'a> {
    pub identifier: u8,
    pub authenticator: &'a [u8; 16],
    pub user_name: &'a [u8],
    pub state: Option<&'a [u8]>,
    pub nas_ip: [u8; 4],
    pub nas_port: u32,
}

/// Writes and signs the Access-Request into `buf`: its length.
pub fn write_request(
    buf: &mut [u8],
    f: &RequestFields<'_>,
    eap: &[u8],
    secret: &Secret,
) -> Result<usize, BuildError> {
    let mut b = PacketBuilder::request(buf, Code::AccessRequest, f.identifier, f.authenticator)?;
    // RFC 3579 §3.2: every packet with EAP-Message has a Message-Authenticator; first, as
    // BlastRADIUS guidance asks.
    b.message_authenticator()?;
    b.attr(attr::USER_NAME, f.user_name)?;
    if let Some(state) = f.state {
        b.attr(attr::STATE, state)?;
    }
    b.eap_message(eap)?;
    b.attr(attr::NAS_IP_ADDRESS, &f.nas_ip)?;
    b.attr(attr::NAS_PORT, &f.nas_port.to_be_bytes())?;
    Ok(b.finish(secret)?.len())
}

/// The reply's EAP-Message attributes concatenated into `out` and validated; `Missing` when
/// it has none.
pub fn read_eap<'o>(
    reply: &Packet<'_>,
    out: &'o mut [u8; MAX_EAP_LEN],
) -> Result<EapPacket<'o>, EapError> {
    let mut len = 0;
    for a in reply.attributes().filter(|a| a.typ == attr::EAP_MESSAGE) {
        if a.value.is_empty() {
            return Err(EapError::EmptyAttribute);
        }
        let end = len + a.value.len();
        out.get_mut(len..end)
            .ok_or(EapError::TooLong)?
            .copy_from_slice(a.value);
        len = end;
    }
    if len == 0 {
        return Err(EapError::Missing);
    }
    EapPacket::parse(&out[..len])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{verify_request, MESSAGE_AUTHENTICATOR};

    #[test]
    fn request_round_trips_through_a_server_view() {
        let s = Secret::new(b"testing123").unwrap();
        let eap: Vec<u8> = {
            let mut v = vec![2u8, 7, 0x03, 0x00, 13];
            v.resize(0x300, 0xAB);
            v
        };
        let mut buf = [0u8; 4096];
        let f = RequestFields {
            identifier: 5,
            authenticator: &[3; 16],
            user_name: b"alice",
            state: Some(b"st"),
            nas_ip: [127, 0, 0, 1],
            nas_port: 9,
        };
        let n = write_request(&mut buf, &f, &eap, &s).unwrap();
        let p = Packet::parse(&buf[..n]).unwrap();
        assert!(p.attr(MESSAGE_AUTHENTICATOR).is_some());
        assert_eq!(p.attr(attr::STATE), Some(&b"st"[..]));
        let v = verify_request(p, &s, true).unwrap();
        let mut out = [0u8; MAX_EAP_LEN];
        let e = crate::proto::eap::reassemble(&v, &mut out).unwrap();
        assert_eq!(e.as_bytes(), &eap[..]);
        // The same octets read back with the reply-side reader.
        let mut out2 = [0u8; MAX_EAP_LEN];
        assert_eq!(read_eap(&p, &mut out2).unwrap().as_bytes(), &eap[..]);
    }
}
