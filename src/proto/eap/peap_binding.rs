//! PEAPv0 crypto-binding ([MS-PEAP] §2.2.8.1.1, §3.1.5.5, §3.2.5.3, §3.3.5.3): the
//! Cryptobinding TLV that travels beside the Result TLV, and the compound keys that tie the
//! inner method to the TLS tunnel, so that a man in the middle who relays the inner login
//! into a tunnel of his own cannot finish it.
//!
//! Keys, as hostap's PEAP server and peer derive them (eap_server_peap.c / eap_peap.c):
//!
//! * TK: the first 60 octets of the tunnel's keying material, the one the MSK comes from
//!   ("client EAP encryption" on TLS 1.2; the RFC 9427 exporter with context 25 on TLS 1.3).
//! * ISK: the inner method's MSK, 32 octets, zero-padded; zeros for a method with no key.
//!   EAP-MSCHAPv2's is the server's MS-MPPE-Recv-Key then its MS-MPPE-Send-Key.
//! * IPMK (40) | CMK (20) = PRF+(TK[..40], "Inner Methods Compound Keys" | ISK, 60) — or, on a
//!   resumed session that skipped phase 2 ("fast reconnect"), TK itself: IPMK = TK[..40],
//!   CMK = TK[40..60].
//! * Compound MAC = HMAC-SHA1(CMK, the 60-octet TLV with the MAC zeroed | 25).
//! * With binding used, the MSK is the first 64 octets of
//!   CSK = PRF+(IPMK, "Session Key Generating Function" | 0x00, 128); no EMSK.
//!
//! PRF+ of PEAPv0: T1 = HMAC-SHA1(K, S | 0x01 0x00 0x00), Tn = HMAC-SHA1(K, Tn-1 | S | n 0x00
//! 0x00), S being label | seed. Sans-IO, allocation-free; secrets are wiped on drop and never
//! printed by `Debug`.

use hmac::{Hmac, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;

use super::peap::TLV_CRYPTO_BINDING;
use crate::proto::wipe;

/// The whole TLV: its 4-octet header and its 56-octet value.
pub const TLV_LEN: usize = 60;
/// The value's length, the TLV header's Length.
pub const VALUE_LEN: usize = 56;
pub const NONCE_LEN: usize = 32;
pub const MAC_LEN: usize = 20;
/// What the tunnel gives: IPMK and CMK on fast reconnect, the PRF+ key (first 40) otherwise.
pub const TK_LEN: usize = 60;
pub const ISK_LEN: usize = 32;
const IPMK_LEN: usize = 40;
/// Where the MAC starts in the whole TLV: header, Reserved/Version/RecvVersion/SubType, Nonce.
const MAC_AT: usize = 4 + 4 + NONCE_LEN;
/// The outer method's EAP Type the MAC covers ([MS-PEAP] §3.1.5.5.1).
const EAP_TYPE_PEAP: u8 = 25;
/// We speak PEAPv0 only.
const PEAP_VERSION: u8 = 0;

const IPMK_LABEL: &[u8] = b"Inner Methods Compound Keys";
/// hostap notes that Microsoft's peers hash this label with a terminating NUL (given here as
/// the one-octet seed), unlike the IPMK one.
const CSK_LABEL: &[u8] = b"Session Key Generating Function";

/// `[eap] peap_crypto_binding`: whether we send a Cryptobinding TLV and what a response
/// without a valid one means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BindingMode {
    /// Never sent; the MSK is the tunnel's.
    Off,
    /// Sent; a response without one is accepted (with the tunnel's MSK), a bad one refused.
    #[default]
    Optional,
    /// Sent; a response without a valid one is refused.
    Required,
}

impl BindingMode {
    pub const ALL: [BindingMode; 3] = [
        BindingMode::Off,
        BindingMode::Optional,
        BindingMode::Required,
    ];

    pub fn label(self) -> &'static str {
        match self {
            BindingMode::Off => "off",
            BindingMode::Optional => "optional",
            BindingMode::Required => "required",
        }
    }

    pub fn from_label(label: &str) -> Option<BindingMode> {
        BindingMode::ALL.into_iter().find(|m| m.label() == label)
    }
}

/// Request (server → peer) or Response (peer → server).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubType {
    Request,
    Response,
}

impl SubType {
    fn to_u8(self) -> u8 {
        match self {
            SubType::Request => 0,
            SubType::Response => 1,
        }
    }
}

/// Why a Cryptobinding TLV was refused (or was missing where it was required).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BindingError {
    #[error("the Cryptobinding TLV's value is not 56 octets")]
    Length,
    #[error("the Cryptobinding TLV names another PEAP version")]
    Version,
    #[error("the Cryptobinding TLV has the wrong SubType")]
    SubType,
    #[error("the Cryptobinding TLV's nonce is not the one we sent")]
    Nonce,
    #[error("the Cryptobinding TLV's Compound MAC is wrong")]
    Mac,
    #[error("no Cryptobinding TLV where one is required")]
    Missing,
}

/// What the inner method contributes to the compound keys.
#[derive(Clone, PartialEq, Eq)]
pub enum InnerKey {
    /// Phase 2 was skipped on a resumed session: IPMK | CMK come from TK alone.
    FastReconnect,
    /// The inner method's key (zeros when it has none).
    Isk([u8; ISK_LEN]),
}

impl Drop for InnerKey {
    fn drop(&mut self) {
        if let InnerKey::Isk(k) = self {
            wipe(k);
        }
    }
}

impl std::fmt::Debug for InnerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InnerKey::FastReconnect => f.write_str("FastReconnect"),
            InnerKey::Isk(_) => f.write_str("Isk(<redacted>)"),
        }
    }
}

/// EAP-MSCHAPv2's ISK from the server's MPPE keys: Recv-Key then Send-Key (hostap's server
/// `eap_mschapv2_getKey`: "MSK = server MS-MPPE-Recv-Key | MS-MPPE-Send-Key"; the peer's own
/// Send-Key then Recv-Key, the same octets).
pub fn mschapv2_isk(recv: &[u8; 16], send: &[u8; 16]) -> [u8; ISK_LEN] {
    let mut isk = [0u8; ISK_LEN];
    isk[..16].copy_from_slice(recv);
    isk[16..].copy_from_slice(send);
    isk
}

/// IPMK and CMK of one binding.
#[derive(Clone)]
pub struct CompoundKeys {
    ipmk: [u8; IPMK_LEN],
    cmk: [u8; MAC_LEN],
}

impl Drop for CompoundKeys {
    fn drop(&mut self) {
        wipe(&mut self.ipmk);
        wipe(&mut self.cmk);
    }
}

impl std::fmt::Debug for CompoundKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CompoundKeys(<redacted>)")
    }
}

impl CompoundKeys {
    /// IPMK | CMK from the tunnel key and what the inner method gave.
    pub fn derive(tk: &[u8; TK_LEN], inner: &InnerKey) -> CompoundKeys {
        let mut imck = [0u8; IPMK_LEN + MAC_LEN];
        match inner {
            InnerKey::FastReconnect => imck.copy_from_slice(tk),
            InnerKey::Isk(isk) => prf_plus(&tk[..IPMK_LEN], IPMK_LABEL, isk, &mut imck),
        }
        let mut keys = CompoundKeys {
            ipmk: [0; IPMK_LEN],
            cmk: [0; MAC_LEN],
        };
        keys.ipmk.copy_from_slice(&imck[..IPMK_LEN]);
        keys.cmk.copy_from_slice(&imck[IPMK_LEN..]);
        wipe(&mut imck);
        keys
    }

    /// The MSK once binding was used: the first 64 octets of the compound session key (PRF+ is
    /// a stream, so these are CSK's first 64 whatever length is asked).
    pub fn session_msk(&self) -> [u8; 64] {
        let mut msk = [0u8; 64];
        prf_plus(&self.ipmk, CSK_LABEL, &[0], &mut msk);
        msk
    }

    /// The Compound MAC over `tlv` (its MAC field is ignored: taken as zeros).
    fn mac(&self, tlv: &[u8; TLV_LEN]) -> [u8; MAC_LEN] {
        let mut zeroed = *tlv;
        zeroed[MAC_AT..].fill(0);
        let mut h = hmac_sha1(&self.cmk);
        h.update(&zeroed);
        h.update(&[EAP_TYPE_PEAP]);
        h.finalize().into_bytes().into()
    }

    /// A whole Cryptobinding TLV of `sub` with `nonce`, MAC'ed with our CMK.
    pub fn write_tlv(
        &self,
        sub: SubType,
        recv_version: u8,
        nonce: &[u8; NONCE_LEN],
    ) -> [u8; TLV_LEN] {
        let mut tlv = [0u8; TLV_LEN];
        // [MS-PEAP] §2.2.8.1.1: M = 0, R = 0, type 12, length 56.
        tlv[..2].copy_from_slice(&TLV_CRYPTO_BINDING.to_be_bytes());
        tlv[2..4].copy_from_slice(&(VALUE_LEN as u16).to_be_bytes());
        // tlv[4]: Reserved.
        tlv[5] = PEAP_VERSION;
        tlv[6] = recv_version;
        tlv[7] = sub.to_u8();
        tlv[8..MAC_AT].copy_from_slice(nonce);
        let mac = self.mac(&tlv);
        tlv[MAC_AT..].copy_from_slice(&mac);
        tlv
    }

    /// Checks a received TLV's value (what [`super::peap::read_extensions`] hands back): 56
    /// octets, PEAPv0, SubType `sub`, the nonce `nonce` (the request's: the peer echoes it,
    /// [MS-PEAP] §3.2.5.3), and the Compound MAC (constant-time). Returns the nonce it carries.
    pub fn verify(
        &self,
        value: &[u8],
        sub: SubType,
        nonce: Option<&[u8; NONCE_LEN]>,
    ) -> Result<[u8; NONCE_LEN], BindingError> {
        let value: &[u8; VALUE_LEN] = value.try_into().map_err(|_| BindingError::Length)?;
        // The header as [MS-PEAP] fixes it (hostap MACs the header as received; both peers
        // send exactly this one).
        let mut tlv = [0u8; TLV_LEN];
        tlv[..2].copy_from_slice(&TLV_CRYPTO_BINDING.to_be_bytes());
        tlv[2..4].copy_from_slice(&(VALUE_LEN as u16).to_be_bytes());
        tlv[4..].copy_from_slice(value);
        if tlv[5] != PEAP_VERSION {
            return Err(BindingError::Version);
        }
        if tlv[7] != sub.to_u8() {
            return Err(BindingError::SubType);
        }
        let mut received = [0u8; NONCE_LEN];
        received.copy_from_slice(&tlv[8..MAC_AT]);
        if nonce.is_some_and(|n| *n != received) {
            return Err(BindingError::Nonce);
        }
        let mac = self.mac(&tlv);
        if bool::from(mac.ct_eq(&tlv[MAC_AT..])) {
            Ok(received)
        } else {
            Err(BindingError::Mac)
        }
    }
}

/// The server's side of one binding: what it sent, and whether the peer bound.
#[derive(Debug)]
pub struct ServerBinding {
    keys: CompoundKeys,
    nonce: [u8; NONCE_LEN],
    used: bool,
}

impl ServerBinding {
    /// Derives the keys and writes the request TLV (with a fresh `nonce`).
    pub fn request(
        tk: &[u8; TK_LEN],
        inner: &InnerKey,
        nonce: [u8; NONCE_LEN],
    ) -> (ServerBinding, [u8; TLV_LEN]) {
        let keys = CompoundKeys::derive(tk, inner);
        // RecvVersion: the version the peer sent, which a PEAPv0 server only accepts as 0.
        let tlv = keys.write_tlv(SubType::Request, PEAP_VERSION, &nonce);
        (
            ServerBinding {
                keys,
                nonce,
                used: false,
            },
            tlv,
        )
    }

    /// The peer's answer under `mode`: its Cryptobinding TLV's value, if it sent one. A bad
    /// one is always refused (hostap's server does so too, even when binding is optional); a
    /// missing one only under [`BindingMode::Required`].
    pub fn response(
        &mut self,
        mode: BindingMode,
        value: Option<&[u8]>,
    ) -> Result<(), BindingError> {
        match value {
            Some(v) => {
                self.keys.verify(v, SubType::Response, Some(&self.nonce))?;
                self.used = true;
                Ok(())
            }
            None if mode == BindingMode::Required => Err(BindingError::Missing),
            None => Ok(()),
        }
    }

    /// The MSK once the peer bound; `None` (the tunnel's MSK stands) otherwise.
    pub fn msk(&self) -> Option<[u8; 64]> {
        self.used.then(|| self.keys.session_msk())
    }
}

/// PRF+ of PEAPv0 (see the module's doc) filling `out`.
pub fn prf_plus(key: &[u8], label: &[u8], seed: &[u8], out: &mut [u8]) {
    let mut last = [0u8; MAC_LEN];
    for (i, chunk) in out.chunks_mut(MAC_LEN).enumerate() {
        let mut h = hmac_sha1(key);
        if i > 0 {
            h.update(&last);
        }
        h.update(label);
        h.update(seed);
        // The counter is one octet; 255 blocks (5100 octets) is far past any use here.
        h.update(&[(i as u8).wrapping_add(1), 0, 0]);
        last = h.finalize().into_bytes().into();
        chunk.copy_from_slice(&last[..chunk.len()]);
    }
    wipe(&mut last);
}

/// HMAC-SHA1 keyed with `key`. HMAC takes a key of any length (RFC 2104 §2), so
/// `new_from_slice` never fails for it; the other arm only satisfies the type (a MAC under
/// another key could never match a peer's).
fn hmac_sha1(key: &[u8]) -> Hmac<Sha1> {
    match <Hmac<Sha1> as Mac>::new_from_slice(key) {
        Ok(h) => h,
        Err(_) => <Hmac<Sha1> as Mac>::new(&Default::default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::crypto::mschap::{
        asymmetric_start_key, master_key, nt_password_hash, nt_password_hash_hash, server_mppe_keys,
    };

    /// The peer's side, written from [MS-PEAP] and hostap's peer independently of the code
    /// above: a plain loop over HMAC-SHA1 with the counter and two zero octets.
    fn peer_prf(key: &[u8], s: &[u8], len: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut t: Vec<u8> = Vec::new();
        let mut n = 1u8;
        while out.len() < len {
            let mut m = Hmac::<Sha1>::new_from_slice(key).unwrap();
            m.update(&[t.as_slice(), s, &[n, 0, 0]].concat());
            t = m.finalize().into_bytes().to_vec();
            out.extend_from_slice(&t);
            n += 1;
        }
        out.truncate(len);
        out
    }

    fn peer_mac(cmk: &[u8], tlv: &[u8]) -> Vec<u8> {
        let mut data = tlv.to_vec();
        data[40..60].fill(0);
        data.push(25);
        let mut m = Hmac::<Sha1>::new_from_slice(cmk).unwrap();
        m.update(&data);
        m.finalize().into_bytes().to_vec()
    }

    /// The peer's ISK for MSCHAPv2, from its own side's keys (peer Send | peer Recv).
    fn peer_isk(password: &[u8], nt_response: &[u8; 24]) -> [u8; 32] {
        let hh = nt_password_hash_hash(&nt_password_hash(password).unwrap());
        let mk = master_key(&hh, nt_response);
        let send: [u8; 16] = asymmetric_start_key(&mk, true, false);
        let recv: [u8; 16] = asymmetric_start_key(&mk, false, false);
        let mut isk = [0u8; 32];
        isk[..16].copy_from_slice(&send);
        isk[16..].copy_from_slice(&recv);
        isk
    }

    #[test]
    fn prf_plus_matches_the_plain_loop() {
        for len in [1, 19, 20, 21, 60, 64, 128] {
            let mut out = vec![0u8; len];
            prf_plus(b"k3y", b"label", b"seed", &mut out);
            assert_eq!(out, peer_prf(b"k3y", b"labelseed", len), "{len}");
        }
        // A stream: a shorter output is a prefix of a longer one (what session_msk relies on).
        let (mut a, mut b) = ([0u8; 64], [0u8; 128]);
        prf_plus(&[7; 40], CSK_LABEL, &[0], &mut a);
        prf_plus(&[7; 40], CSK_LABEL, &[0], &mut b);
        assert_eq!(a, b[..64]);
    }

    #[test]
    fn a_round_trip_with_the_peer_side() {
        let tk: [u8; TK_LEN] = core::array::from_fn(|i| i as u8 * 3);
        let nt_response = [0x5a; 24];
        let hh = nt_password_hash_hash(&nt_password_hash(b"alice-pw").unwrap());
        let keys = server_mppe_keys(&hh, &nt_response);
        let isk = mschapv2_isk(&keys.recv, &keys.send);
        assert_eq!(isk, peer_isk(b"alice-pw", &nt_response));

        let nonce = [0xab; NONCE_LEN];
        let (mut server, req) = ServerBinding::request(&tk, &InnerKey::Isk(isk), nonce);
        // The peer: IPMK | CMK, checks the request's MAC, answers with the nonce echoed.
        let imck = peer_prf(&tk[..40], &[IPMK_LABEL, &isk].concat(), 60);
        let (ipmk, cmk) = imck.split_at(40);
        assert_eq!(&req[..8], [0x00, 0x0c, 0x00, 0x38, 0, 0, 0, 0]);
        assert_eq!(req[8..40], nonce);
        assert_eq!(peer_mac(cmk, &req), req[40..]);
        let mut resp = req;
        resp[7] = 1;
        let mac = peer_mac(cmk, &resp);
        resp[40..].copy_from_slice(&mac);

        assert_eq!(server.msk(), None, "not bound before the response");
        server
            .response(BindingMode::Optional, Some(&resp[4..]))
            .expect("the peer's response verifies");
        let csk = peer_prf(ipmk, &[CSK_LABEL, &[0]].concat(), 128);
        assert_eq!(server.msk().expect("bound").to_vec(), csk[..64]);
    }

    #[test]
    fn fast_reconnect_takes_the_keys_from_tk() {
        let tk: [u8; TK_LEN] = core::array::from_fn(|i| i as u8);
        let k = CompoundKeys::derive(&tk, &InnerKey::FastReconnect);
        assert_eq!(k.ipmk, tk[..40]);
        assert_eq!(k.cmk, tk[40..]);
        // Zeros for an inner method with no key is not the same thing.
        let z = CompoundKeys::derive(&tk, &InnerKey::Isk([0; ISK_LEN]));
        assert_ne!(z.cmk, k.cmk);
    }

    fn bound() -> (ServerBinding, [u8; TLV_LEN]) {
        let tk = [9u8; TK_LEN];
        let (server, req) = ServerBinding::request(&tk, &InnerKey::Isk([1; ISK_LEN]), [2; 32]);
        let peer = CompoundKeys::derive(&tk, &InnerKey::Isk([1; ISK_LEN]));
        peer.verify(&req[4..], SubType::Request, None)
            .expect("request verifies");
        let resp = peer.write_tlv(SubType::Response, 0, &[2; 32]);
        (server, resp)
    }

    #[test]
    fn bad_responses_are_refused_in_every_mode() {
        for mode in BindingMode::ALL {
            let (mut s, good) = bound();
            let mut bad_mac = good;
            bad_mac[59] ^= 1;
            assert_eq!(
                s.response(mode, Some(&bad_mac[4..])),
                Err(BindingError::Mac)
            );
            let mut bad_nonce = good;
            bad_nonce[8] ^= 1;
            assert_eq!(
                s.response(mode, Some(&bad_nonce[4..])),
                Err(BindingError::Nonce)
            );
            let mut version = good;
            version[5] = 1;
            assert_eq!(
                s.response(mode, Some(&version[4..])),
                Err(BindingError::Version)
            );
            // The request echoed back is not a response.
            let mut sub = good;
            sub[7] = 0;
            assert_eq!(
                s.response(mode, Some(&sub[4..])),
                Err(BindingError::SubType)
            );
            assert_eq!(
                s.response(mode, Some(&good[4..59])),
                Err(BindingError::Length)
            );
            assert_eq!(s.msk(), None, "{mode:?}: never bound by a bad TLV");
            s.response(mode, Some(&good[4..])).expect("good");
            assert!(s.msk().is_some());
        }
    }

    #[test]
    fn a_missing_response_by_mode() {
        let (mut s, _) = bound();
        assert_eq!(
            s.response(BindingMode::Required, None),
            Err(BindingError::Missing)
        );
        for mode in [BindingMode::Optional, BindingMode::Off] {
            let (mut s, _) = bound();
            assert_eq!(s.response(mode, None), Ok(()));
            assert_eq!(s.msk(), None, "{mode:?}: the tunnel's MSK stands");
        }
    }

    #[test]
    fn labels_round_trip_and_secrets_stay_out_of_debug() {
        for m in BindingMode::ALL {
            assert_eq!(BindingMode::from_label(m.label()), Some(m));
        }
        assert_eq!(BindingMode::from_label("yes"), None);
        assert_eq!(BindingMode::default(), BindingMode::Optional);
        let (s, _) = bound();
        let text = format!("{s:?} {:?}", InnerKey::Isk([0x77; 32]));
        assert!(!text.contains("119") && !text.contains("77"), "{text}");
    }
}
