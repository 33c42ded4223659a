//! An MS-CHAPv2 client of our own (RFC 2759 computed with `radshard::proto::crypto::mschap`)
//! and readers for the Microsoft attributes of a reply.

use radshard::proto::crypto::mppe;
use radshard::proto::crypto::mschap::{
    authenticator_response, generate_nt_response, nt_password_hash, nt_password_hash_hash,
    server_mppe_keys, MsChap2Success,
};
use radshard::proto::{
    attr, Code, Packet, PacketBuilder, Secret, MICROSOFT, MS_CHAP2_RESPONSE, MS_CHAP2_SUCCESS,
    MS_CHAP_CHALLENGE, MS_MPPE_RECV_KEY, MS_MPPE_SEND_KEY,
};

use super::{authenticator_of, random_authenticator};

/// One MS-CHAPv2 login as a client computes it.
pub struct V2 {
    pub auth_challenge: [u8; 16],
    pub peer_challenge: [u8; 16],
    pub nt_response: [u8; 24],
    pub ident: u8,
}

impl V2 {
    pub fn new(user: &str, password: &str) -> V2 {
        let auth_challenge: [u8; 16] = rand::random();
        let peer_challenge: [u8; 16] = rand::random();
        let hash = nt_password_hash(password.as_bytes()).expect("password");
        let name = user.rsplit('\\').next().unwrap_or(user);
        V2 {
            nt_response: generate_nt_response(
                &auth_challenge,
                &peer_challenge,
                name.as_bytes(),
                &hash,
            ),
            auth_challenge,
            peer_challenge,
            ident: rand::random(),
        }
    }

    pub fn response_value(&self) -> [u8; 50] {
        let mut v = [0u8; 50];
        v[0] = self.ident;
        v[2..18].copy_from_slice(&self.peer_challenge);
        v[26..].copy_from_slice(&self.nt_response);
        v
    }

    pub fn request(&self, secret: &Secret, id: u8, user: &str) -> Vec<u8> {
        let mut buf = [0u8; 4096];
        let mut b =
            PacketBuilder::request(&mut buf, Code::AccessRequest, id, &random_authenticator())
                .expect("header");
        b.message_authenticator().expect("fits");
        b.attr(attr::USER_NAME, user.as_bytes()).expect("fits");
        b.vsa(MICROSOFT, MS_CHAP_CHALLENGE, &self.auth_challenge)
            .expect("fits");
        b.vsa(MICROSOFT, MS_CHAP2_RESPONSE, &self.response_value())
            .expect("fits");
        b.finish(secret).expect("signs").to_vec()
    }
}

pub fn vsa(reply: &[u8], vtype: u8) -> Option<Vec<u8>> {
    Packet::parse(reply)
        .ok()?
        .vendor_attr(MICROSOFT, vtype)
        .map(<[u8]>::to_vec)
}

/// Decrypts an MS-MPPE key of `reply` (answering `request`).
pub fn mppe_key(reply: &[u8], request: &[u8], secret: &Secret, vtype: u8) -> Vec<u8> {
    let value = vsa(reply, vtype).unwrap_or_else(|| panic!("MPPE key {vtype} missing"));
    let mut out = [0u8; 240];
    mppe::decrypt(secret, &authenticator_of(request), &value, &mut out)
        .expect("decrypts")
        .to_vec()
}

impl V2 {
    /// Checks an Access-Accept for this login with `password`, the peer having hashed
    /// `hashed_as` (the name without `DOMAIN\\`): MS-CHAP2-Success with the same Ident and the
    /// RFC 2759 §8.7 authenticator response; MS-MPPE-Send/Recv-Key decrypting (RFC 2548
    /// §2.4.2) to RFC 3079's keys (server send = Magic3); the encryption policy and types.
    pub fn assert_accepted(
        &self,
        reply: &[u8],
        request: &[u8],
        secret: &Secret,
        password: &str,
        hashed_as: &str,
    ) {
        let nt_key = nt_password_hash_hash(&nt_password_hash(password.as_bytes()).expect("pw"));
        let success = MsChap2Success::parse(&vsa(reply, MS_CHAP2_SUCCESS).expect("S="))
            .expect("well-formed S=");
        assert_eq!(success.ident, self.ident, "same Ident as the response");
        assert_eq!(
            success.authenticator_response,
            authenticator_response(
                &nt_key,
                &self.nt_response,
                &self.peer_challenge,
                &self.auth_challenge,
                hashed_as.as_bytes()
            ),
            "S= for {hashed_as}"
        );
        let keys = server_mppe_keys(&nt_key, &self.nt_response);
        assert_eq!(
            &mppe_key(reply, request, secret, MS_MPPE_SEND_KEY)[..16],
            &keys.send
        );
        assert_eq!(
            &mppe_key(reply, request, secret, MS_MPPE_RECV_KEY)[..16],
            &keys.recv
        );
        assert_ne!(keys.send, keys.recv);
        assert_eq!(vsa(reply, 7).as_deref(), Some(&[0, 0, 0, 1][..]), "policy");
        assert_eq!(vsa(reply, 8).as_deref(), Some(&[0, 0, 0, 6][..]), "types");
    }
}
