//! Attributes whose values are hidden with the shared secret and the Request Authenticator
//! (User-Password, Tunnel-Password, MS-MPPE-Send/Recv-Key, MS-CHAP-MPPE-Keys), and moving a
//! packet's attributes from one way of hiding to another.
//!
//! Two places need that, with one mechanism ([`transcribe`]):
//! * a proxy relays between two secrets: revealed with the home server's, hidden again with
//!   the NAS's (and a request's User-Password the other way);
//! * a RADIUS/1.1 connection (RFC 9765 §5.1) carries these values in the clear, so its edge
//!   reveals what the pipeline hid, or hides what the peer sent in the clear.
//!
//! Every other attribute is copied as it is.

use super::attr::{
    MICROSOFT, MS_CHAP_MPPE_KEYS, MS_MPPE_RECV_KEY, MS_MPPE_SEND_KEY, TUNNEL_PASSWORD,
    USER_PASSWORD, VENDOR_SPECIFIC,
};
use super::attributes::{Attribute, VendorAttribute};
use super::builder::PacketBuilder;
use super::crypto::mschap::V1_MPPE_KEYS_LEN;
use super::crypto::{mppe, tunnel_password, user_password, CryptoError};
use super::error::BuildError;
use super::radius11::Builder11;
use super::secret::{wipe, Secret};
use super::AUTH_LEN;

/// How one packet's hidden attributes are written.
#[derive(Clone, Copy)]
pub enum Hiding<'a> {
    /// RADIUS over UDP, TCP and TLS (1.0): MD5 with the shared secret and the request's
    /// authenticator (the request's own for User-Password; the answered request's for replies).
    Md5 {
        secret: &'a Secret,
        authenticator: &'a [u8; AUTH_LEN],
    },
    /// RADIUS/1.1: the values as they are.
    Clear,
}

/// An attribute hidden with the Request Authenticator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HiddenAttribute {
    UserPassword,
    TunnelPassword,
    MppeSendKey,
    MppeRecvKey,
    MsChapMppeKeys,
}

/// Why a packet's attributes could not be moved to the other hiding.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum TranscribeError {
    /// A hidden attribute does not reveal (malformed).
    #[error("{attribute:?} does not decrypt: {source}")]
    Hidden {
        attribute: HiddenAttribute,
        source: CryptoError,
    },
    /// A Microsoft Vendor-Specific attribute whose sub-attributes do not parse: its keys (if
    /// any) cannot be found to re-hide, and passing them as they are would hand the peer
    /// garbage keys.
    #[error("malformed Microsoft Vendor-Specific attribute")]
    MalformedMicrosoftVsa,
    #[error("building the packet: {0}")]
    Build(#[from] BuildError),
}

impl TranscribeError {
    /// Stable metrics label.
    pub const fn label(&self) -> &'static str {
        match self {
            TranscribeError::Hidden { .. } => "bad_hidden_attribute",
            TranscribeError::MalformedMicrosoftVsa => "malformed_microsoft_vsa",
            TranscribeError::Build(e) => e.label(),
        }
    }
}

/// Where transcribed attributes are written: a packet being built, with its own hiding.
pub trait Sink {
    fn attr(&mut self, typ: u8, value: &[u8]) -> Result<(), BuildError>;
    /// One Vendor-Specific attribute holding one sub-attribute.
    fn vsa(&mut self, vendor: u32, vtype: u8, value: &[u8]) -> Result<(), BuildError>;
    /// A hidden attribute's plain value. `tag` is Tunnel-Password's (0 for the others);
    /// `salt` the source's where it had one (a relay keeps it), else the sink draws one.
    fn hidden(
        &mut self,
        attribute: HiddenAttribute,
        tag: u8,
        salt: Option<u16>,
        plain: &[u8],
    ) -> Result<(), BuildError>;
}

/// A [`PacketBuilder`] with the secret its hidden attributes are written with.
pub struct Md5Sink<'x, 'b, 'r> {
    pub builder: &'x mut PacketBuilder<'b, 'r>,
    pub secret: &'x Secret,
}

impl Sink for Md5Sink<'_, '_, '_> {
    fn attr(&mut self, typ: u8, value: &[u8]) -> Result<(), BuildError> {
        self.builder.attr(typ, value)
    }

    fn vsa(&mut self, vendor: u32, vtype: u8, value: &[u8]) -> Result<(), BuildError> {
        self.builder.vsa(vendor, vtype, value)
    }

    fn hidden(
        &mut self,
        attribute: HiddenAttribute,
        tag: u8,
        salt: Option<u16>,
        plain: &[u8],
    ) -> Result<(), BuildError> {
        let (b, s) = (&mut *self.builder, self.secret);
        let salt = salt.unwrap_or_else(rand::random);
        match attribute {
            HiddenAttribute::UserPassword => b.user_password(s, plain),
            HiddenAttribute::TunnelPassword => b.tunnel_password(s, tag, salt, plain),
            HiddenAttribute::MppeSendKey => b.mppe_key(s, MS_MPPE_SEND_KEY, salt, plain),
            HiddenAttribute::MppeRecvKey => b.mppe_key(s, MS_MPPE_RECV_KEY, salt, plain),
            HiddenAttribute::MsChapMppeKeys => {
                // LM-Key 8 and NT-Key 16, then padding: a RADIUS/1.1 peer may send the 24
                // octets without it.
                let mut keys = [0u8; V1_MPPE_KEYS_LEN];
                let dst = keys
                    .get_mut(..plain.len())
                    .filter(|_| plain.len() >= 24)
                    .ok_or(BuildError::Crypto(CryptoError::BadLength))?;
                dst.copy_from_slice(plain);
                let r = b.ms_chap_mppe_keys(s, &keys);
                wipe(&mut keys);
                r
            }
        }
    }
}

impl Sink for Builder11<'_, '_> {
    fn attr(&mut self, typ: u8, value: &[u8]) -> Result<(), BuildError> {
        Builder11::attr(self, typ, value)
    }

    fn vsa(&mut self, vendor: u32, vtype: u8, value: &[u8]) -> Result<(), BuildError> {
        Builder11::vsa(self, vendor, vtype, value)
    }

    /// RFC 9765 §5.1: each value as its underlying type; Tunnel-Password as a tagged string
    /// (the tag octet, then the password: no salt, no length octet).
    fn hidden(
        &mut self,
        attribute: HiddenAttribute,
        tag: u8,
        _salt: Option<u16>,
        plain: &[u8],
    ) -> Result<(), BuildError> {
        match attribute {
            HiddenAttribute::UserPassword => Builder11::attr(self, USER_PASSWORD, plain),
            HiddenAttribute::TunnelPassword => {
                let mut v = [0u8; 1 + tunnel_password::MAX_PASSWORD_LEN];
                let n = plain.len();
                let dst = v
                    .get_mut(1..1 + n)
                    .ok_or(BuildError::Crypto(CryptoError::BadLength))?;
                dst.copy_from_slice(plain);
                v[0] = tag;
                let r = Builder11::attr(self, TUNNEL_PASSWORD, &v[..1 + n]);
                wipe(&mut v);
                r
            }
            HiddenAttribute::MppeSendKey => {
                Builder11::vsa(self, MICROSOFT, MS_MPPE_SEND_KEY, plain)
            }
            HiddenAttribute::MppeRecvKey => {
                Builder11::vsa(self, MICROSOFT, MS_MPPE_RECV_KEY, plain)
            }
            HiddenAttribute::MsChapMppeKeys => {
                Builder11::vsa(self, MICROSOFT, MS_CHAP_MPPE_KEYS, plain)
            }
        }
    }
}

/// Writes `attributes` (those the caller chose) into `to`, every hidden value revealed from
/// `from` and hidden again as `to` hides. Microsoft VSAs holding keys are written one
/// sub-attribute per VSA (the builders' layout); other VSAs as they are.
pub fn transcribe<'a>(
    attributes: impl Iterator<Item = Attribute<'a>>,
    from: Hiding<'_>,
    to: &mut impl Sink,
) -> Result<(), TranscribeError> {
    for a in attributes {
        match a.typ {
            USER_PASSWORD => move_hidden(HiddenAttribute::UserPassword, a.value, from, to)?,
            TUNNEL_PASSWORD => move_hidden(HiddenAttribute::TunnelPassword, a.value, from, to)?,
            VENDOR_SPECIFIC => match ms_vsa(a.value) {
                MsVsa::Other => to.attr(VENDOR_SPECIFIC, a.value)?,
                MsVsa::Malformed => return Err(TranscribeError::MalformedMicrosoftVsa),
                MsVsa::Keys(v) => {
                    for s in v.sub_attributes() {
                        let hidden = match s.vtype {
                            MS_MPPE_SEND_KEY => HiddenAttribute::MppeSendKey,
                            MS_MPPE_RECV_KEY => HiddenAttribute::MppeRecvKey,
                            MS_CHAP_MPPE_KEYS => HiddenAttribute::MsChapMppeKeys,
                            vtype => {
                                to.vsa(MICROSOFT, vtype, s.value)?;
                                continue;
                            }
                        };
                        move_hidden(hidden, s.value, from, to)?;
                    }
                }
            },
            typ => to.attr(typ, a.value)?,
        }
    }
    Ok(())
}

/// Reveals one hidden value and hands it to the sink; the plaintext is wiped after.
fn move_hidden(
    attribute: HiddenAttribute,
    value: &[u8],
    from: Hiding<'_>,
    to: &mut impl Sink,
) -> Result<(), TranscribeError> {
    let mut out = [0u8; 256];
    let revealed = reveal(attribute, value, from, &mut out);
    let result = match revealed {
        Ok((tag, salt, plain)) => to.hidden(attribute, tag, salt, plain).map_err(Into::into),
        Err(source) => Err(TranscribeError::Hidden { attribute, source }),
    };
    wipe(&mut out);
    result
}

/// The plain value of a hidden attribute (and its tag and salt, where it has them).
fn reveal<'o>(
    attribute: HiddenAttribute,
    value: &'o [u8],
    from: Hiding<'_>,
    out: &'o mut [u8; 256],
) -> Result<(u8, Option<u16>, &'o [u8]), CryptoError> {
    let Hiding::Md5 {
        secret,
        authenticator: ra,
    } = from
    else {
        return Ok(match attribute {
            // A tagged string: the tag octet first (RFC 2868 §3.5 puts it there too).
            HiddenAttribute::TunnelPassword => {
                let (&tag, pw) = value.split_first().ok_or(CryptoError::BadLength)?;
                (tag, None, pw)
            }
            _ => (0, None, value),
        });
    };
    let salt = |at: usize| {
        value
            .get(at..at + 2)
            .map(|s| u16::from_be_bytes([s[0], s[1]]))
    };
    let buf: &'o mut [u8; 240] = (&mut out[..240])
        .try_into()
        .map_err(|_| CryptoError::BadLength)?;
    Ok(match attribute {
        HiddenAttribute::UserPassword => {
            let mut up = [0u8; user_password::MAX_LEN];
            let n = user_password::unhide(secret, ra, value, &mut up)?.len();
            buf[..n].copy_from_slice(&up[..n]);
            wipe(&mut up);
            (0, None, &buf[..n])
        }
        HiddenAttribute::TunnelPassword => {
            let s = salt(1).ok_or(CryptoError::BadLength)?;
            let (tag, pw) = tunnel_password::decrypt(secret, ra, value, buf)?;
            (tag, Some(s), pw)
        }
        HiddenAttribute::MppeSendKey | HiddenAttribute::MppeRecvKey => {
            let s = salt(0).ok_or(CryptoError::BadLength)?;
            (0, Some(s), mppe::decrypt(secret, ra, value, buf)?)
        }
        HiddenAttribute::MsChapMppeKeys => {
            if value.len() != V1_MPPE_KEYS_LEN {
                return Err(CryptoError::BadLength);
            }
            let mut up = [0u8; user_password::MAX_LEN];
            // unhide strips trailing NULs, which are part of the 32 octets: put them back.
            let n = user_password::unhide(secret, ra, value, &mut up)?.len();
            buf[..n].copy_from_slice(&up[..n]);
            buf[n..V1_MPPE_KEYS_LEN].fill(0);
            wipe(&mut up);
            (0, None, &buf[..V1_MPPE_KEYS_LEN])
        }
    })
}

/// What a Vendor-Specific value is to [`transcribe`].
enum MsVsa<'a> {
    /// Not Microsoft's, or Microsoft's without a hidden key: copied as is.
    Other,
    /// Microsoft's, well formed, with a hidden key.
    Keys(VendorAttribute<'a>),
    /// Microsoft's but not in the RFC 2865 §5.26 layout Microsoft always uses.
    Malformed,
}

fn ms_vsa(value: &[u8]) -> MsVsa<'_> {
    let Some(v) = VendorAttribute::from_value(value) else {
        return MsVsa::Other;
    };
    if v.vendor != MICROSOFT {
        return MsVsa::Other;
    }
    if !v.is_well_formed() {
        return MsVsa::Malformed;
    }
    let hidden = v.sub_attributes().any(|s| {
        matches!(
            s.vtype,
            MS_MPPE_SEND_KEY | MS_MPPE_RECV_KEY | MS_CHAP_MPPE_KEYS
        )
    });
    if hidden {
        MsVsa::Keys(v)
    } else {
        MsVsa::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::radius11::Packet11;
    use crate::proto::{Code, Packet, MAX_PACKET_LEN, MESSAGE_AUTHENTICATOR};

    /// Every hidden kind, hidden with `s` for a reply to a request with authenticator `ra`.
    fn reply10(s: &Secret, ra: &[u8; 16], buf: &mut [u8; MAX_PACKET_LEN]) -> Vec<u8> {
        let mut b =
            PacketBuilder::answer(&mut buf[..], Code::AccessAccept, Code::AccessRequest, 1, ra)
                .expect("ok");
        b.tunnel_password(s, 3, 0x8111, b"tunnel").expect("ok");
        b.mppe_key(s, MS_MPPE_SEND_KEY, 0x8222, &[5; 32])
            .expect("ok");
        b.ms_chap_mppe_keys(s, &[6; 32]).expect("ok");
        b.vsa(MICROSOFT, 26, b"not hidden").expect("ok");
        b.finish(s).expect("ok").to_vec()
    }

    #[test]
    fn md5_to_clear_and_back_keeps_every_value() {
        let (s, ra) = (Secret::new("one").expect("ok"), [9u8; 16]);
        let mut buf = [0u8; MAX_PACKET_LEN];
        let r10 = reply10(&s, &ra, &mut buf);
        let p = Packet::parse(&r10).expect("parses");
        let mut out = [0u8; MAX_PACKET_LEN];
        let mut b = Builder11::answer(&mut out, Code::AccessAccept, [0; 4]).expect("ok");
        let from = Hiding::Md5 {
            secret: &s,
            authenticator: &ra,
        };
        let attrs = p.attributes().filter(|a| a.typ != MESSAGE_AUTHENTICATOR);
        transcribe(attrs, from, &mut b).expect("reveals");
        let clear = b.finish().expect("ok").to_vec();
        let c = Packet11::parse(&clear).expect("parses");
        assert_eq!(c.attr(TUNNEL_PASSWORD), Some(&b"\x03tunnel"[..]));
        let subs: Vec<(u8, Vec<u8>)> = c
            .attributes()
            .filter_map(|a| VendorAttribute::from_value(a.value))
            .flat_map(|v| v.sub_attributes().map(|s| (s.vtype, s.value.to_vec())))
            .collect();
        assert_eq!(
            subs,
            vec![
                (MS_MPPE_SEND_KEY, vec![5; 32]),
                (MS_CHAP_MPPE_KEYS, vec![6; 32]),
                (26, b"not hidden".to_vec()),
            ]
        );

        // And into another secret: what a NAS would decrypt.
        let (s2, ra2) = (Secret::new("two").expect("ok"), [7u8; 16]);
        let mut out2 = [0u8; MAX_PACKET_LEN];
        let mut b2 =
            PacketBuilder::answer(&mut out2, Code::AccessAccept, Code::AccessRequest, 1, &ra2)
                .expect("ok");
        transcribe(
            c.attributes(),
            Hiding::Clear,
            &mut Md5Sink {
                builder: &mut b2,
                secret: &s2,
            },
        )
        .expect("hides");
        let again = b2.finish(&s2).expect("ok").to_vec();
        let p2 = Packet::parse(&again).expect("parses");
        let mut k = [0u8; 240];
        let tp = p2.attr(TUNNEL_PASSWORD).expect("present");
        assert_eq!(
            tunnel_password::decrypt(&s2, &ra2, tp, &mut k),
            Ok((3, &b"tunnel"[..]))
        );
        let key = p2
            .vendor_attr(MICROSOFT, MS_MPPE_SEND_KEY)
            .expect("present");
        assert_eq!(mppe::decrypt(&s2, &ra2, key, &mut k), Ok(&[5u8; 32][..]));
    }

    #[test]
    fn short_clear_ms_chap_keys_are_padded_and_garbage_is_refused() {
        let (s, ra) = (Secret::new("one").expect("ok"), [9u8; 16]);
        let mut out = [0u8; MAX_PACKET_LEN];
        let mut b =
            PacketBuilder::answer(&mut out, Code::AccessAccept, Code::AccessRequest, 1, &ra)
                .expect("ok");
        let mut sink = Md5Sink {
            builder: &mut b,
            secret: &s,
        };
        assert!(sink
            .hidden(HiddenAttribute::MsChapMppeKeys, 0, None, &[1; 24])
            .is_ok());
        assert!(sink
            .hidden(HiddenAttribute::MsChapMppeKeys, 0, None, &[1; 10])
            .is_err());
        // A hidden value that is no ciphertext at all does not reveal.
        let mut v = MICROSOFT.to_be_bytes().to_vec();
        v.extend_from_slice(&[MS_MPPE_SEND_KEY, 5, 1, 2, 3]);
        let attr = Attribute {
            typ: VENDOR_SPECIFIC,
            value: &v,
        };
        let from = Hiding::Md5 {
            secret: &s,
            authenticator: &ra,
        };
        let mut out11 = [0u8; MAX_PACKET_LEN];
        let mut b11 = Builder11::answer(&mut out11, Code::AccessAccept, [0; 4]).expect("ok");
        assert!(matches!(
            transcribe(std::iter::once(attr), from, &mut b11),
            Err(TranscribeError::Hidden {
                attribute: HiddenAttribute::MppeSendKey,
                ..
            })
        ));
    }
}
