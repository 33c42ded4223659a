//! Reply attributes, encoded once when the configuration is loaded so that building a reply
//! is a memcpy plus, for the few encrypted attributes, their per-reply crypto.

use crate::cfg::{ConfigError, Located};
use crate::dict::{Dictionary, Encrypt};
use crate::proto::{
    BuildError, PacketBuilder, Secret, MICROSOFT, MS_MPPE_RECV_KEY, MS_MPPE_SEND_KEY,
    TUNNEL_PASSWORD,
};

/// Attributes whose value must be encrypted with each reply's Request Authenticator.
#[derive(Clone)]
enum Encrypted {
    TunnelPassword { tag: u8, plaintext: Vec<u8> },
    MppeKey { vtype: u8, key: Vec<u8> },
}

/// A set of reply attributes, ready to append to any reply.
#[derive(Clone, Default)]
pub struct ReplyAttributes {
    /// Complete TLVs, in configuration order.
    wire: Vec<u8>,
    encrypted: Vec<Encrypted>,
}

impl std::fmt::Debug for ReplyAttributes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Encrypted values (tunnel passwords, keys) are secrets: show only their count.
        f.debug_struct("ReplyAttributes")
            .field("wire_len", &self.wire.len())
            .field("encrypted", &self.encrypted.len())
            .finish()
    }
}

impl ReplyAttributes {
    /// Encodes `(name, value)` pairs with `dict`; errors carry each pair's file and line.
    pub fn compile(
        items: &[Located<(String, String)>],
        dict: &Dictionary,
    ) -> Result<ReplyAttributes, ConfigError> {
        let mut out = ReplyAttributes::default();
        for item in items {
            let (name, value) = &item.value;
            let enc = dict
                .encode(name, value)
                .map_err(|e| item.error(format!("reply attribute {name}: {e}")))?;
            match enc.encrypt {
                Encrypt::None => enc
                    .to_wire(&mut out.wire)
                    .map_err(|e| item.error(format!("reply attribute {name}: {e}")))?,
                Encrypt::TunnelPassword
                    if enc.key.vendor == 0 && enc.key.code == u32::from(TUNNEL_PASSWORD) =>
                {
                    out.encrypted.push(Encrypted::TunnelPassword {
                        tag: enc.tag.unwrap_or(0),
                        plaintext: enc.value,
                    })
                }
                Encrypt::TunnelPassword
                    if enc.key.vendor == MICROSOFT
                        && (enc.key.code == u32::from(MS_MPPE_SEND_KEY)
                            || enc.key.code == u32::from(MS_MPPE_RECV_KEY)) =>
                {
                    out.encrypted.push(Encrypted::MppeKey {
                        vtype: enc.key.code as u8,
                        key: enc.value,
                    })
                }
                other => {
                    return Err(item.error(format!(
                        "reply attribute {name}: encryption {other:?} is not supported in replies"
                    )))
                }
            }
            if out.wire.len() > 4000 {
                return Err(item.error("reply attributes exceed what fits in one RADIUS packet"));
            }
        }
        Ok(out)
    }

    /// Whether these attributes set the standard attribute `typ` (a relayed reply's own of
    /// that type gives way). Vendor-Specific is never "set" as a whole: one vendor's
    /// attribute says nothing about another's.
    pub fn sets(&self, typ: u8) -> bool {
        if typ == crate::proto::VENDOR_SPECIFIC {
            return false;
        }
        if typ == TUNNEL_PASSWORD
            && self
                .encrypted
                .iter()
                .any(|e| matches!(e, Encrypted::TunnelPassword { .. }))
        {
            return true;
        }
        let mut rest = &self.wire[..];
        while let [t, len, ..] = *rest {
            if t == typ {
                return true;
            }
            rest = rest.get(usize::from(len).max(2)..).unwrap_or_default();
        }
        false
    }

    /// Appends the attributes of `other` after these.
    pub fn extend(&mut self, other: &ReplyAttributes) {
        self.wire.extend_from_slice(&other.wire);
        self.encrypted.extend(other.encrypted.iter().cloned());
    }

    /// Appends the standard attribute `typ` (a value longer than 253 octets is cut).
    pub fn push(&mut self, typ: u8, value: &[u8]) {
        let value = &value[..value.len().min(253)];
        self.wire.push(typ);
        self.wire.push(value.len() as u8 + 2);
        self.wire.extend_from_slice(value);
    }

    pub fn is_empty(&self) -> bool {
        self.wire.is_empty() && self.encrypted.is_empty()
    }

    /// Appends the attributes to a reply. `salt` supplies the per-attribute salt that RFC 2868
    /// and RFC 2548 require to be unique within a reply (the builder sets the high bit).
    pub fn apply(&self, b: &mut PacketBuilder<'_, '_>, secret: &Secret) -> Result<(), BuildError> {
        b.raw(&self.wire)?;
        for (i, e) in self.encrypted.iter().enumerate() {
            let salt = rand::random::<u16>().wrapping_add(i as u16);
            match e {
                Encrypted::TunnelPassword { tag, plaintext } => {
                    b.tunnel_password(secret, *tag, salt, plaintext)?
                }
                Encrypted::MppeKey { vtype, key } => b.mppe_key(secret, *vtype, salt, key)?,
            }
        }
        Ok(())
    }
}
