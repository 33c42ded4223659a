//! EAP-TTLS with inner PAP, the peer's side: once the handshake is done, User-Name and
//! User-Password as Diameter AVPs (RFC 5281 §11.2.5) in one TLS record. The password is
//! padded with NULs to a multiple of 16 octets, as hostap's peer sends it (the server strips
//! them).

use crate::proto::eap::ttls::{code, write_avp};
use crate::proto::wipe;

/// AVP header (8) plus a name or a padded password of at most 128 octets, each padded to 4.
const AVPS_MAX: usize = 2 * (8 + 128 + 3);

/// Appends the User-Name and User-Password AVPs to `out`; `None` if a field is longer than
/// [`crate::bench::users::MAX_FIELD`].
pub fn write_pap_avps(name: &[u8], password: &[u8], out: &mut Vec<u8>) -> Option<()> {
    let mut buf = [0u8; AVPS_MAX];
    let mut padded = [0u8; 128];
    let plen = password.len().div_ceil(16).max(1) * 16;
    let pw = padded.get_mut(..plen)?;
    pw.get_mut(..password.len())?.copy_from_slice(password);
    let n = write_avp(&mut buf, code::USER_NAME, None, true, name)?;
    let m = write_avp(&mut buf[n..], code::USER_PASSWORD, None, true, pw);
    wipe(&mut padded);
    let m = m?;
    out.extend_from_slice(&buf[..n + m]);
    wipe(&mut buf);
    Some(())
}

/// Appends a User-Password AVP carrying `code` (padded as [`write_pap_avps`] pads): the answer
/// to a server's Reply-Message.
pub fn write_password_avp(code: &[u8], out: &mut Vec<u8>) -> Option<()> {
    let mut buf = [0u8; 8 + 128];
    let mut padded = [0u8; 128];
    let plen = code.len().div_ceil(16).max(1) * 16;
    padded.get_mut(..code.len())?.copy_from_slice(code);
    let n = write_avp(
        &mut buf,
        code::USER_PASSWORD,
        None,
        true,
        padded.get(..plen)?,
    );
    wipe(&mut padded);
    out.extend_from_slice(buf.get(..n?)?);
    wipe(&mut buf);
    Some(())
}

/// Whether the server's AVPs carry a Reply-Message (a token code asked for).
pub fn asks_for_code(avps: &[u8]) -> bool {
    crate::proto::eap::ttls::avps(avps)
        .any(|a| a.is_ok_and(|a| a.vendor.is_none() && a.code == code::REPLY_MESSAGE))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::eap::ttls::{avps, password};

    #[test]
    fn avps_round_trip_with_padding() {
        let mut out = Vec::new();
        write_pap_avps(b"alice", b"alicepw", &mut out).unwrap();
        let got: Vec<_> = avps(&out).map(|a| a.unwrap()).collect();
        assert_eq!(got.len(), 2);
        assert_eq!(
            (got[0].code, got[0].mandatory, got[0].data),
            (1, true, &b"alice"[..])
        );
        assert_eq!((got[1].code, got[1].data.len()), (2, 16));
        assert_eq!(password(got[1].data), b"alicepw");
        // 16 octets stay 16; 17 become 32; too long is refused.
        out.clear();
        write_pap_avps(b"a", &[b'x'; 16], &mut out).unwrap();
        assert_eq!(avps(&out).nth(1).unwrap().unwrap().data.len(), 16);
        out.clear();
        write_pap_avps(b"a", &[b'x'; 17], &mut out).unwrap();
        assert_eq!(avps(&out).nth(1).unwrap().unwrap().data.len(), 32);
        assert!(write_pap_avps(b"a", &[b'x'; 129], &mut out).is_none());
    }
}
