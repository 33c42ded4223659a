//! The RADIUS/1.1 edge of a RadSec connection (RFC 9765): the peer speaks RADIUS/1.1 (a
//! Token instead of the Identifier and the authenticators, no MD5 hiding, no
//! Message-Authenticator), the rest of radshard speaks RADIUS/1.0. Each packet is translated
//! as it crosses, so the shard's pipeline and the proxy engine stay as they are: one
//! mechanism for both versions, and the version a property of the connection alone.
//!
//! * [`ServerEdge`] (a NAS or proxy is our client): a request arriving in 1.1 becomes a 1.0
//!   request under a free Identifier and a fresh Request Authenticator, its User-Password
//!   hidden and the packet signed with the client's secret; the shard's 1.0 reply becomes
//!   the 1.1 reply with the request's Token, its hidden attributes revealed.
//! * [`ClientEdge`] (a home server is ours): the engine's 1.0 request becomes a 1.1 request
//!   whose Token carries the Identifier; the home server's 1.1 reply becomes the 1.0 reply
//!   the engine verifies as from any home server, hidden attributes hidden and signed with
//!   the home server's secret and our Request Authenticator.
//!
//! Bounds: 256 requests outstanding per connection, one per Identifier, each way. On the
//! server side a request the shard never answers (dropped: overload, no home server alive)
//! holds its Identifier for [`STALE`], after which the Identifier may be reused; a request
//! arriving while all 256 are held is refused ([`EdgeError::Outstanding`]). A reply is
//! matched by its Identifier (client side: by its whole Token); under an Identifier taken
//! back so, it is also checked against the authenticator of the request it answers, so a
//! late reply for the stale request never reaches the new one. Nothing allocates after
//! construction.

use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::proto::crypto::authenticator::md5_authenticator_ok;
use crate::proto::hidden::{transcribe, Hiding, Md5Sink, TranscribeError};
use crate::proto::radius11::{Builder11, Packet11, ALPN_RADIUS_1_0, ALPN_RADIUS_1_1, TOKEN_LEN};
use crate::proto::{
    BuildError, Code, DecodeError, Packet, PacketBuilder, Secret, AUTH_LEN, EAP_MESSAGE,
    MAX_PACKET_LEN, MESSAGE_AUTHENTICATOR, PROXY_STATE,
};

/// `radius_1_1` on `[radsec]` and on a TLS home server: RFC 9765 §3.3's configuration flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Radius11 {
    /// No ALPN at all: RADIUS/TLS as RFC 6614 has it.
    Forbid,
    /// RADIUS/1.1 when the peer offers (or accepts) it, RADIUS/1.0 otherwise: the RFC's
    /// default.
    #[default]
    Allow,
    /// RADIUS/1.1 or nothing: a peer that does not negotiate it is closed.
    Require,
}

/// What a connection speaks once its handshake is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// RADIUS/TLS as in RFC 6614 (ALPN `radius/1.0`, or none).
    V1_0,
    /// RADIUS/1.1 (ALPN `radius/1.1`).
    V1_1,
}

/// Why a finished handshake is not served.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum AlpnError {
    #[error("radius_1_1 = \"require\" and the peer did not negotiate radius/1.1")]
    Required,
    /// RFC 9765 §3.4: RADIUS/1.1 only over TLS 1.3 or later.
    #[error("radius/1.1 was negotiated over TLS 1.2 (it needs TLS 1.3)")]
    OldTls,
}

impl Radius11 {
    /// The ALPN names offered (client) or accepted (server), most preferred first.
    pub fn alpn_protocols(self) -> Vec<Vec<u8>> {
        match self {
            Radius11::Forbid => Vec::new(),
            Radius11::Allow => vec![ALPN_RADIUS_1_1.to_vec(), ALPN_RADIUS_1_0.to_vec()],
            Radius11::Require => vec![ALPN_RADIUS_1_1.to_vec()],
        }
    }

    /// What a connection whose handshake is done speaks (its ALPN and TLS version).
    pub fn settle(self, tls: &rustls::CommonState) -> Result<Version, AlpnError> {
        let tls13 = tls.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3);
        self.negotiated(tls.alpn_protocol(), tls13)
    }

    /// What a connection whose handshake chose `alpn` over TLS 1.3 (or not) speaks.
    pub fn negotiated(self, alpn: Option<&[u8]>, tls13: bool) -> Result<Version, AlpnError> {
        match alpn {
            Some(ALPN_RADIUS_1_1) if self != Radius11::Forbid => {
                if tls13 {
                    Ok(Version::V1_1)
                } else {
                    Err(AlpnError::OldTls)
                }
            }
            _ if self == Radius11::Require => Err(AlpnError::Required),
            _ => Ok(Version::V1_0),
        }
    }
}

/// Requests outstanding on one connection at most: one per RADIUS/1.0 Identifier.
pub const MAX_OUTSTANDING: usize = 256;
/// How long an unanswered request holds its Identifier: longer than any NAS waits for an
/// answer (retries included) and than a push second factor is given.
pub const STALE: Duration = Duration::from_secs(120);

/// Why one packet could not be translated. The packet is dropped; the connection goes on.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum EdgeError {
    #[error("malformed packet: {0}")]
    Decode(#[from] DecodeError),
    /// A reply code where a request was expected, or the other way round.
    #[error("{0:?} where the other direction was expected")]
    WrongDirection(Code),
    /// All 256 Identifiers are waiting for replies.
    #[error("{MAX_OUTSTANDING} requests outstanding on the connection")]
    Outstanding,
    /// A reply to no request outstanding (or to one whose Identifier was reused since).
    #[error("reply to no outstanding request")]
    Unmatched,
    #[error(transparent)]
    Transcribe(#[from] TranscribeError),
}

impl From<BuildError> for EdgeError {
    fn from(e: BuildError) -> Self {
        EdgeError::Transcribe(TranscribeError::Build(e))
    }
}

/// A request the other side of the edge still owes a reply to.
#[derive(Clone, Copy)]
struct Pending {
    code: Code,
    token: [u8; TOKEN_LEN],
    /// The RADIUS/1.0 request's authenticator: what its reply is signed and hidden with.
    authenticator: [u8; AUTH_LEN],
    /// When it crossed.
    since: Instant,
    /// Its Identifier was taken back from a request left unanswered for [`STALE`]: a reply
    /// under it may still be that one's, so replies are checked against `authenticator`.
    reused: bool,
}

/// Outstanding requests by RADIUS/1.0 Identifier.
struct Outstanding {
    by_id: Box<[Option<Pending>; MAX_OUTSTANDING]>,
    /// Where the search for a free Identifier starts: round robin, so an Identifier is
    /// reused as late as possible.
    next: u8,
}

impl Outstanding {
    fn new() -> Self {
        Outstanding {
            by_id: Box::new([None; MAX_OUTSTANDING]),
            next: 0,
        }
    }

    /// A free Identifier, or else the one held longest if it is [`STALE`]; and whether it
    /// was taken back so.
    fn free_id(&mut self, now: Instant) -> Option<(u8, bool)> {
        let ids = (0..=255u8).map(|i| self.next.wrapping_add(i));
        let free = ids
            .clone()
            .find(|&id| self.by_id[usize::from(id)].is_none());
        let (id, reused) = match free {
            Some(id) => (id, false),
            None => {
                let oldest = ids.min_by_key(|&id| self.by_id[usize::from(id)].map(|p| p.since))?;
                let p = self.by_id[usize::from(oldest)]?;
                if now.saturating_duration_since(p.since) < STALE {
                    return None;
                }
                (oldest, true)
            }
        };
        self.next = id.wrapping_add(1);
        Some((id, reused))
    }
}

/// Translates for one server connection whose peer negotiated RADIUS/1.1.
pub struct ServerEdge {
    /// The client entry's secret: what the shard verifies and signs with.
    secret: Secret,
    /// When an Access-Request gets a Message-Authenticator: what the client entry makes the
    /// shard insist on. TLS clients need none by default (TLS authenticates every packet,
    /// and each one costs the shard an HMAC).
    ma: MaNeeds,
    outstanding: Outstanding,
}

/// What makes the shard insist on a Message-Authenticator in a client's Access-Requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaNeeds {
    /// `require_message_authenticator`: in every one.
    pub always: bool,
    /// `limit_proxy_state`: in every one that carries a Proxy-State.
    pub with_proxy_state: bool,
}

impl ServerEdge {
    pub fn new(secret: Secret, ma: MaNeeds) -> Self {
        ServerEdge {
            secret,
            ma,
            outstanding: Outstanding::new(),
        }
    }

    /// A request received as RADIUS/1.1, written into `out` as the RADIUS/1.0 request the
    /// shard handles.
    pub fn request<'o>(
        &mut self,
        wire: &[u8],
        now: Instant,
        out: &'o mut [u8; MAX_PACKET_LEN],
    ) -> Result<&'o [u8], EdgeError> {
        let p = Packet11::parse(wire)?;
        let code = p.code();
        if !code.is_request() {
            return Err(EdgeError::WrongDirection(code));
        }
        let (id, reused) = self
            .outstanding
            .free_id(now)
            .ok_or(EdgeError::Outstanding)?;
        // Never on the wire, but it seeds what the shard hides replies with and is what its
        // duplicate detection keys on: fresh per request.
        let nonce: [u8; AUTH_LEN] = rand::random();
        let mut b = PacketBuilder::request(&mut out[..], code, id, &nonce)?;
        // RFC 3579 §3.2: EAP-Message always travels with one, and the shard enforces it.
        let needs_ma = self.ma.always
            || p.attr(EAP_MESSAGE).is_some()
            || (self.ma.with_proxy_state && p.attr(PROXY_STATE).is_some());
        if code == Code::AccessRequest && needs_ma {
            b.message_authenticator()?;
        }
        transcribe(
            p.attributes(),
            Hiding::Clear,
            &mut Md5Sink {
                builder: &mut b,
                secret: &self.secret,
            },
        )?;
        let bytes = b.finish(&self.secret)?;
        let mut authenticator = [0u8; AUTH_LEN];
        authenticator.copy_from_slice(&bytes[4..4 + AUTH_LEN]);
        self.outstanding.by_id[usize::from(id)] = Some(Pending {
            code,
            token: p.token(),
            authenticator,
            since: now,
            reused,
        });
        Ok(bytes)
    }

    /// The shard's RADIUS/1.0 reply, written into `out` as the RADIUS/1.1 reply to send.
    pub fn reply<'o>(
        &mut self,
        reply: &[u8],
        out: &'o mut [u8; MAX_PACKET_LEN],
    ) -> Result<&'o [u8], EdgeError> {
        let p = Packet::parse(reply)?;
        if p.code().is_request() {
            return Err(EdgeError::WrongDirection(p.code()));
        }
        let slot = &mut self.outstanding.by_id[usize::from(p.identifier())];
        let pending = slot.ok_or(EdgeError::Unmatched)?;
        // Under a reused Identifier, only a reply signed with this request's authenticator is
        // its own (the shard signs every reply; one for the stale request may come late).
        if pending.reused
            && !md5_authenticator_ok(&self.secret, p.as_bytes(), &pending.authenticator)
        {
            return Err(EdgeError::Unmatched);
        }
        *slot = None;
        let mut b = Builder11::answer(&mut out[..], p.code(), pending.token)?;
        let from = Hiding::Md5 {
            secret: &self.secret,
            authenticator: &pending.authenticator,
        };
        let attributes = p.attributes().filter(|a| a.typ != MESSAGE_AUTHENTICATOR);
        transcribe(attributes, from, &mut b)?;
        Ok(b.finish()?)
    }

    /// Requests the shard has not answered yet.
    pub fn outstanding(&self) -> usize {
        self.outstanding.by_id.iter().flatten().count()
    }
}

/// Translates for one connection to a home server that negotiated RADIUS/1.1.
pub struct ClientEdge {
    /// The home server's secret: what the engine signs requests and verifies replies with.
    secret: Secret,
    outstanding: Outstanding,
    /// Makes each Token unique on the connection (RFC 9765 §4.2.1: a new Token for every
    /// new packet), with the Identifier in its low octet.
    sent: u32,
}

impl ClientEdge {
    pub fn new(secret: Secret) -> Self {
        ClientEdge {
            secret,
            outstanding: Outstanding::new(),
            sent: rand::random(),
        }
    }

    /// The engine's RADIUS/1.0 request, written into `out` as the RADIUS/1.1 request to send.
    pub fn request<'o>(
        &mut self,
        packet: &[u8],
        now: Instant,
        out: &'o mut [u8; MAX_PACKET_LEN],
    ) -> Result<&'o [u8], EdgeError> {
        let p = Packet::parse(packet)?;
        let code = p.code();
        if !code.is_request() {
            return Err(EdgeError::WrongDirection(code));
        }
        self.sent = self.sent.wrapping_add(1);
        let id = p.identifier();
        let token = ((self.sent << 8) | u32::from(id)).to_be_bytes();
        let mut b = Builder11::request(&mut out[..], code, token)?;
        let from = Hiding::Md5 {
            secret: &self.secret,
            authenticator: p.authenticator(),
        };
        let attributes = p.attributes().filter(|a| a.typ != MESSAGE_AUTHENTICATOR);
        transcribe(attributes, from, &mut b)?;
        let bytes = b.finish()?;
        // The engine keeps one request per Identifier outstanding on a connection: a new one
        // under the same Identifier replaces what it has given up on.
        self.outstanding.by_id[usize::from(id)] = Some(Pending {
            code,
            token,
            authenticator: *p.authenticator(),
            since: now,
            reused: false,
        });
        Ok(bytes)
    }

    /// A reply received as RADIUS/1.1, written into `out` as the RADIUS/1.0 reply the engine
    /// verifies: signed (Response Authenticator and, on Access replies and Status-Server
    /// answers, Message-Authenticator) with the home server's secret.
    pub fn reply<'o>(
        &mut self,
        wire: &[u8],
        out: &'o mut [u8; MAX_PACKET_LEN],
    ) -> Result<&'o [u8], EdgeError> {
        let p = Packet11::parse(wire)?;
        if p.code().is_request() {
            return Err(EdgeError::WrongDirection(p.code()));
        }
        let token = p.token();
        let id = token[TOKEN_LEN - 1];
        let slot = &mut self.outstanding.by_id[usize::from(id)];
        let pending = slot
            .filter(|s| s.token == token)
            .ok_or(EdgeError::Unmatched)?;
        *slot = None;
        let mut b = PacketBuilder::answer(
            &mut out[..],
            p.code(),
            pending.code,
            id,
            &pending.authenticator,
        )?;
        transcribe(
            p.attributes(),
            Hiding::Clear,
            &mut Md5Sink {
                builder: &mut b,
                secret: &self.secret,
            },
        )?;
        Ok(b.finish(&self.secret)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{
        verify_request, verify_response, MICROSOFT, MS_MPPE_RECV_KEY, MS_MPPE_SEND_KEY,
        PROXY_STATE, TUNNEL_PASSWORD, USER_NAME, USER_PASSWORD,
    };

    fn secret() -> Secret {
        Secret::new("radsec").expect("non-empty")
    }

    const TOKEN: [u8; 4] = [9, 8, 7, 6];
    const ALWAYS: MaNeeds = MaNeeds {
        always: true,
        with_proxy_state: true,
    };

    fn request11(buf: &mut [u8; MAX_PACKET_LEN], code: Code, token: [u8; 4]) -> Vec<u8> {
        let mut b = Builder11::request(&mut buf[..], code, token).expect("ok");
        b.attr(USER_NAME, b"bob").expect("ok");
        if code == Code::AccessRequest {
            b.attr(USER_PASSWORD, b"correct horse").expect("ok");
        }
        b.attr(PROXY_STATE, b"nas-ps").expect("ok");
        b.finish().expect("ok").to_vec()
    }

    #[test]
    fn negotiation_follows_the_rfcs_table() {
        use Radius11::*;
        let v11 = Some(ALPN_RADIUS_1_1);
        let v10 = Some(ALPN_RADIUS_1_0);
        assert_eq!(Allow.negotiated(v11, true), Ok(Version::V1_1));
        assert_eq!(Allow.negotiated(v10, true), Ok(Version::V1_0));
        assert_eq!(Allow.negotiated(None, true), Ok(Version::V1_0));
        assert_eq!(Require.negotiated(v11, true), Ok(Version::V1_1));
        assert_eq!(Require.negotiated(None, true), Err(AlpnError::Required));
        assert_eq!(Require.negotiated(v10, true), Err(AlpnError::Required));
        assert_eq!(Allow.negotiated(v11, false), Err(AlpnError::OldTls));
        assert_eq!(Forbid.negotiated(None, true), Ok(Version::V1_0));
        assert!(Forbid.alpn_protocols().is_empty());
        assert_eq!(Require.alpn_protocols(), vec![b"radius/1.1".to_vec()]);
    }

    #[test]
    fn a_server_edge_request_verifies_as_radius_1_0_and_its_reply_goes_back_in_the_clear() {
        let mut edge = ServerEdge::new(secret(), ALWAYS);
        let mut buf = [0u8; MAX_PACKET_LEN];
        let wire = request11(&mut buf, Code::AccessRequest, TOKEN);
        let mut out = [0u8; MAX_PACKET_LEN];
        let r10 = edge
            .request(&wire, Instant::now(), &mut out)
            .expect("translates")
            .to_vec();
        let s = secret();
        let v = verify_request(Packet::parse(&r10).expect("parses"), &s, true).expect("verifies");
        let mut pw = [0u8; 128];
        assert_eq!(v.user_password(&mut pw), Ok(&b"correct horse"[..]));
        assert_eq!(v.attr(PROXY_STATE), Some(&b"nas-ps"[..]));
        assert_eq!(edge.outstanding(), 1);

        // The shard's Access-Accept with keys and a Tunnel-Password, hidden as for RADIUS/1.0.
        let mut rbuf = [0u8; MAX_PACKET_LEN];
        let mut b = PacketBuilder::reply(&mut rbuf, Code::AccessAccept, &v).expect("ok");
        b.mppe_key(&s, MS_MPPE_SEND_KEY, 0x8001, &[1; 32])
            .expect("ok");
        b.mppe_key(&s, MS_MPPE_RECV_KEY, 0x8002, &[2; 32])
            .expect("ok");
        b.tunnel_password(&s, 1, 0x8003, b"tunnel-pw").expect("ok");
        let reply10 = b.finish(&s).expect("ok").to_vec();
        let mut out11 = [0u8; MAX_PACKET_LEN];
        let reply11 = edge.reply(&reply10, &mut out11).expect("translates");
        let p = Packet11::parse(reply11).expect("parses");
        assert_eq!(p.code(), Code::AccessAccept);
        assert_eq!(p.token(), TOKEN);
        assert!(!p.had_message_authenticator(), "no Message-Authenticator");
        assert_eq!(&reply11[8..20], &[0; 12]);
        assert_eq!(reply11[1], 0, "Reserved-1");
        assert_eq!(p.attr(TUNNEL_PASSWORD), Some(&b"\x01tunnel-pw"[..]));
        assert_eq!(p.attr(PROXY_STATE), Some(&b"nas-ps"[..]));
        let keys: Vec<_> = p
            .attributes()
            .filter_map(|a| crate::proto::VendorAttribute::from_value(a.value))
            .filter(|v| v.vendor == MICROSOFT)
            .flat_map(|v| v.sub_attributes().map(|s| (s.vtype, s.value.to_vec())))
            .collect();
        assert_eq!(
            keys,
            vec![
                (MS_MPPE_SEND_KEY, vec![1; 32]),
                (MS_MPPE_RECV_KEY, vec![2; 32])
            ]
        );
        assert_eq!(edge.outstanding(), 0);
        // The same reply again answers nothing.
        assert_eq!(
            edge.reply(&reply10, &mut out11).err(),
            Some(EdgeError::Unmatched)
        );
    }

    #[test]
    fn a_message_authenticator_only_where_the_client_entry_needs_one() {
        let has_ma = |ma: MaNeeds, proxy_state: bool| {
            let mut edge = ServerEdge::new(secret(), ma);
            let mut buf = [0u8; MAX_PACKET_LEN];
            let mut b = Builder11::request(&mut buf, Code::AccessRequest, TOKEN).expect("ok");
            b.attr(USER_NAME, b"bob").expect("ok");
            if proxy_state {
                b.attr(PROXY_STATE, b"upstream").expect("ok");
            }
            let wire = b.finish().expect("ok").to_vec();
            let mut out = [0u8; MAX_PACKET_LEN];
            let r = edge.request(&wire, Instant::now(), &mut out).expect("ok");
            let p = Packet::parse(r).expect("parses");
            verify_request(p, &secret(), false).expect("verifies");
            p.message_authenticator_offset().is_some()
        };
        let tls_default = MaNeeds {
            always: false,
            with_proxy_state: true,
        };
        assert!(
            !has_ma(tls_default, false),
            "a NAS's own request: none needed"
        );
        assert!(
            has_ma(tls_default, true),
            "a proxied one: limit_proxy_state"
        );
        assert!(has_ma(ALWAYS, false));
        let never = MaNeeds {
            always: false,
            with_proxy_state: false,
        };
        assert!(!has_ma(never, true));
    }

    #[test]
    fn a_server_edge_accounting_request_gets_its_computed_authenticator() {
        let mut edge = ServerEdge::new(secret(), ALWAYS);
        let mut buf = [0u8; MAX_PACKET_LEN];
        let wire = request11(&mut buf, Code::AccountingRequest, TOKEN);
        let mut out = [0u8; MAX_PACKET_LEN];
        let r10 = edge
            .request(&wire, Instant::now(), &mut out)
            .expect("translates");
        let s = secret();
        verify_request(Packet::parse(r10).expect("parses"), &s, false).expect("verifies");
    }

    #[test]
    fn at_most_256_outstanding_and_a_reply_for_a_reused_identifier_is_refused() {
        let mut edge = ServerEdge::new(secret(), ALWAYS);
        let mut buf = [0u8; MAX_PACKET_LEN];
        let mut first = Vec::new();
        for i in 0..MAX_OUTSTANDING as u32 {
            let wire = request11(&mut buf, Code::StatusServer, i.to_be_bytes());
            let mut out = [0u8; MAX_PACKET_LEN];
            let r = edge
                .request(&wire, Instant::now(), &mut out)
                .expect("room")
                .to_vec();
            if i == 0 {
                first = r;
            }
        }
        let wire = request11(&mut buf, Code::StatusServer, [1; 4]);
        let mut out = [0u8; MAX_PACKET_LEN];
        assert_eq!(
            edge.request(&wire, Instant::now(), &mut out).err(),
            Some(EdgeError::Outstanding)
        );
        let s = secret();
        let v = verify_request(Packet::parse(&first).expect("parses"), &s, true).expect("ok");
        let mut rbuf = [0u8; MAX_PACKET_LEN];
        assert_eq!(edge.outstanding(), MAX_OUTSTANDING);
        // Unanswered for STALE: the longest-held Identifier is taken again.
        let later = Instant::now() + STALE;
        let wire = request11(&mut buf, Code::StatusServer, [2; 4]);
        let r = edge
            .request(&wire, later, &mut out)
            .expect("a stale Identifier reused")
            .to_vec();
        assert_eq!(r[1], first[1]);
        // The first request's reply, late, no longer matches (signed for its authenticator);
        // the new request's own does.
        let late = PacketBuilder::reply(&mut rbuf, Code::AccessAccept, &v)
            .expect("ok")
            .finish(&s)
            .expect("ok")
            .to_vec();
        assert_eq!(
            edge.reply(&late, &mut out).err(),
            Some(EdgeError::Unmatched)
        );
        let v2 = verify_request(Packet::parse(&r).expect("parses"), &s, true).expect("ok");
        let own = PacketBuilder::reply(&mut rbuf, Code::AccessAccept, &v2)
            .expect("ok")
            .finish(&s)
            .expect("ok")
            .to_vec();
        let back = edge.reply(&own, &mut out).expect("its own reply");
        assert_eq!(Packet11::parse(back).expect("parses").token(), [2; 4]);
    }

    #[test]
    fn a_client_edge_round_trip_verifies_as_the_home_servers_reply() {
        let s = Secret::new("home-secret").expect("ok");
        let mut edge = ClientEdge::new(Secret::new("home-secret").expect("ok"));
        // The engine's request, hidden and signed as for a RADIUS/1.0 home server.
        let ra = [0x5a; 16];
        let mut buf = [0u8; MAX_PACKET_LEN];
        let mut b = PacketBuilder::request(&mut buf, Code::AccessRequest, 42, &ra).expect("ok");
        b.message_authenticator().expect("ok");
        b.attr(USER_NAME, b"bob").expect("ok");
        b.user_password(&s, b"correct horse").expect("ok");
        b.attr(PROXY_STATE, b"ours").expect("ok");
        let req10 = b.finish(&s).expect("ok").to_vec();
        let mut out = [0u8; MAX_PACKET_LEN];
        let req11 = edge
            .request(&req10, Instant::now(), &mut out)
            .expect("translates")
            .to_vec();
        let p = Packet11::parse(&req11).expect("parses");
        assert_eq!(p.user_password(), Some(&b"correct horse"[..]));
        assert!(!p.had_message_authenticator());
        assert_eq!(p.token()[3], 42, "the Identifier in the Token's low octet");

        // The home server's 1.1 reply: keys in the clear.
        let mut rbuf = [0u8; MAX_PACKET_LEN];
        let mut b = Builder11::reply(&mut rbuf, Code::AccessAccept, &p).expect("ok");
        b.vsa(MICROSOFT, MS_MPPE_RECV_KEY, &[3; 32]).expect("ok");
        b.attr(TUNNEL_PASSWORD, b"\x02secret-tunnel").expect("ok");
        let reply11 = b.finish().expect("ok").to_vec();
        let mut out10 = [0u8; MAX_PACKET_LEN];
        let reply10 = edge.reply(&reply11, &mut out10).expect("translates");
        let v = Packet::parse(reply10).expect("parses");
        assert_eq!(v.identifier(), 42);
        verify_response(&v, &ra, &s).expect("verifies as the home server's reply");
        assert!(v.message_authenticator_offset().is_some());
        let mut k = [0u8; 240];
        let sub = v.vendor_attr(MICROSOFT, MS_MPPE_RECV_KEY).expect("present");
        assert_eq!(
            crate::proto::crypto::mppe::decrypt(&s, &ra, sub, &mut k),
            Ok(&[3u8; 32][..])
        );
        let tp = v.attr(TUNNEL_PASSWORD).expect("present");
        assert_eq!(
            crate::proto::crypto::tunnel_password::decrypt(&s, &ra, tp, &mut k),
            Ok((2, &b"secret-tunnel"[..]))
        );
        assert_eq!(v.attr(PROXY_STATE), Some(&b"ours"[..]));
        // A second copy answers nothing.
        assert_eq!(
            edge.reply(&reply11, &mut out10).err(),
            Some(EdgeError::Unmatched)
        );
    }
}
