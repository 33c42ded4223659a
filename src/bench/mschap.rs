//! MS-CHAP v1 (RFC 2433) and v2 (RFC 2759) Access-Requests for the load generator, carried as
//! RFC 2548 Microsoft vendor attributes, and the check of what comes back.
//!
//! The loader plays the peer *and* the NAS: it holds each user's cleartext password, so it can
//! compute the NT-Response a real peer would send and, for v2, the authenticator response
//! (`S=…`) a correct server must return in MS-CHAP2-Success. A server that accepts but returns a
//! wrong or no `S=` would make a real peer drop the link, so that is counted
//! (`bad_auth_response`), not waved through as an accept.
//!
//! Cost: the MD4 password hashes are computed once per user at start-up. By default a pool of
//! complete exchanges (challenges, NT-Response, expected `S=`) is also computed then, so building
//! a request copies bytes and the hot loop runs no MS-CHAP crypto at all; the server's cost is
//! what is being measured and the loader must stay out of its way. `--mschap-pool 0` instead
//! draws fresh random challenges and computes every exchange per request (a few µs of SHA-1 and
//! DES), for when reusing challenges matters more than loader headroom.

use rand::rngs::StdRng;
use rand::RngCore;

use super::error::BenchError;
use super::users::User;
use crate::proto::attr::{
    MICROSOFT, MS_CHAP2_RESPONSE, MS_CHAP2_SUCCESS, MS_CHAP_CHALLENGE, MS_CHAP_MPPE_KEYS,
    MS_CHAP_RESPONSE, MS_MPPE_RECV_KEY, MS_MPPE_SEND_KEY,
};
use crate::proto::crypto::mschap::{
    authenticator_response, generate_nt_response, nt_challenge_response_v1, nt_password_hash,
    nt_password_hash_hash, strip_domain, MsChap2Response, MsChap2Success, MsChapResponse, HASH_LEN,
    RESPONSE_LEN,
};
use crate::proto::{BuildError, Packet, PacketBuilder};

/// Default number of precomputed exchanges per user (`--mschap-pool`).
pub const POOL_DEFAULT: usize = 16;
/// Upper bound on precomputed exchanges over all users (v2 entries are 76 octets: about 20 MB
/// at the cap). With a large user file each user gets fewer, at least one.
pub const POOL_MAX_ENTRIES: usize = 1 << 18;

/// What a verified Access-Accept for this request must carry beyond its code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyCheck {
    /// Nothing (PAP, CHAP, accounting, Status-Server, or a request expected to be rejected).
    None,
    /// MS-CHAP v1: nothing is required; MS-CHAP-MPPE-Keys is looked for (informational).
    MsChapV1,
    /// MS-CHAP v2: MS-CHAP2-Success must be `ident` ‖ `S=` + this digest in upper-case hex.
    MsChap2Success { ident: u8, response: [u8; 20] },
}

/// The judgement of one verified Access-Accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AcceptCheck {
    /// v2: MS-CHAP2-Success missing, malformed, for another Ident, or with the wrong `S=`.
    pub bad_auth_response: bool,
    /// No MPPE keys (v1: MS-CHAP-MPPE-Keys; v2: MS-MPPE-Send-Key and -Recv-Key). Not an
    /// error (a server may be configured without MPPE), but it changes what the server does per
    /// request, so comparisons should know.
    pub no_mppe_keys: bool,
}

/// Judges an Access-Accept (already verified as coming from the server) against `check`.
/// Every field is taken from untrusted input through fallible parsers: a malformed reply is a
/// counted failure, never a panic.
pub fn check_accept(check: ReplyCheck, reply: &Packet<'_>) -> AcceptCheck {
    match check {
        ReplyCheck::None => AcceptCheck::default(),
        ReplyCheck::MsChapV1 => AcceptCheck {
            bad_auth_response: false,
            no_mppe_keys: reply.vendor_attr(MICROSOFT, MS_CHAP_MPPE_KEYS).is_none(),
        },
        ReplyCheck::MsChap2Success { ident, response } => {
            let good = reply
                .vendor_attr(MICROSOFT, MS_CHAP2_SUCCESS)
                .and_then(|v| MsChap2Success::parse(v).ok())
                .is_some_and(|s| s.ident == ident && s.authenticator_response == response);
            AcceptCheck {
                bad_auth_response: !good,
                no_mppe_keys: reply.vendor_attr(MICROSOFT, MS_MPPE_SEND_KEY).is_none()
                    || reply.vendor_attr(MICROSOFT, MS_MPPE_RECV_KEY).is_none(),
            }
        }
    }
}

/// One complete v2 exchange.
#[derive(Clone, Copy)]
struct V2 {
    authenticator_challenge: [u8; 16],
    peer_challenge: [u8; 16],
    nt_response: [u8; RESPONSE_LEN],
    /// The digest a correct server puts after `S=`.
    auth_response: [u8; 20],
}

/// One complete v1 exchange.
#[derive(Clone, Copy)]
struct V1 {
    challenge: [u8; 8],
    nt_response: [u8; RESPONSE_LEN],
}

/// A user's password hashes, computed once.
struct Hashes {
    nt: [u8; HASH_LEN],
    nt_hash: [u8; HASH_LEN],
}

/// Per-user MS-CHAP state and the precomputed exchanges.
pub struct MsChap {
    hashes: Vec<Hashes>,
    /// Exchanges per user in `v1`/`v2`; 0: compute each request's exchange when it is built.
    per_user: usize,
    /// User `u`'s exchanges are `u * per_user .. (u + 1) * per_user`.
    v1: Vec<V1>,
    v2: Vec<V2>,
}

impl MsChap {
    /// Hashes every user's password and precomputes `pool` exchanges per user (capped by
    /// [`POOL_MAX_ENTRIES`]) of each version the run sends.
    pub fn new(
        users: &[User],
        pool: usize,
        want_v1: bool,
        want_v2: bool,
        rng: &mut StdRng,
    ) -> Result<MsChap, BenchError> {
        let mut hashes = Vec::with_capacity(users.len());
        for u in users {
            let nt = nt_password_hash(&u.password).ok_or_else(|| {
                BenchError::Invalid(format!(
                    "user {:?}: MS-CHAP needs a UTF-8 password of at most 256 UTF-16 units",
                    String::from_utf8_lossy(&u.name)
                ))
            })?;
            hashes.push(Hashes {
                nt,
                nt_hash: nt_password_hash_hash(&nt),
            });
        }
        let per_user = if pool == 0 {
            0
        } else {
            pool.min((POOL_MAX_ENTRIES / users.len().max(1)).max(1))
        };
        let mut m = MsChap {
            hashes,
            per_user,
            v1: Vec::new(),
            v2: Vec::new(),
        };
        if per_user > 0 {
            let total = users.len() * per_user;
            if want_v1 {
                m.v1.reserve_exact(total);
            }
            if want_v2 {
                m.v2.reserve_exact(total);
            }
            for (i, u) in users.iter().enumerate() {
                for _ in 0..per_user {
                    if want_v1 {
                        let e = m.fresh_v1(i, rng);
                        m.v1.push(e);
                    }
                    if want_v2 {
                        let e = m.fresh_v2(i, &u.name, rng);
                        m.v2.push(e);
                    }
                }
            }
        }
        Ok(m)
    }

    /// Exchanges precomputed per user (0: computed per request).
    pub fn per_user(&self) -> usize {
        self.per_user
    }

    fn fresh_v1(&self, user: usize, rng: &mut StdRng) -> V1 {
        let mut challenge = [0u8; 8];
        rng.fill_bytes(&mut challenge);
        V1 {
            challenge,
            nt_response: nt_challenge_response_v1(&challenge, &self.hashes[user].nt),
        }
    }

    fn fresh_v2(&self, user: usize, name: &[u8], rng: &mut StdRng) -> V2 {
        let mut authenticator_challenge = [0u8; 16];
        let mut peer_challenge = [0u8; 16];
        rng.fill_bytes(&mut authenticator_challenge);
        rng.fill_bytes(&mut peer_challenge);
        let h = &self.hashes[user];
        // RFC 2759 §4: only the account name is hashed, without a `DOMAIN\` prefix.
        let account = strip_domain(name);
        let nt_response =
            generate_nt_response(&authenticator_challenge, &peer_challenge, account, &h.nt);
        V2 {
            authenticator_challenge,
            peer_challenge,
            nt_response,
            auth_response: authenticator_response(
                &h.nt_hash,
                &nt_response,
                &peer_challenge,
                &authenticator_challenge,
                account,
            ),
        }
    }

    /// Index of the exchange for the `round`-th request of `user` (each user cycles its pool).
    fn slot(&self, user: usize, round: u64) -> usize {
        user * self.per_user + (round % self.per_user as u64) as usize
    }

    /// Appends MS-CHAP-Challenge and MS-CHAP2-Response for `user`'s `round`-th request.
    /// `wrong` sends an NT-Response with one bit flipped: to the server that is exactly a
    /// response computed from another password (it recomputes and compares), and it needs no
    /// second pool. Returns what the Accept must carry (nothing if a Reject is expected).
    #[allow(clippy::too_many_arguments)]
    pub fn write_v2(
        &self,
        b: &mut PacketBuilder<'_, '_>,
        user: usize,
        name: &[u8],
        round: u64,
        ident: u8,
        wrong: bool,
        rng: &mut StdRng,
    ) -> Result<ReplyCheck, BuildError> {
        let e = if self.per_user == 0 {
            self.fresh_v2(user, name, rng)
        } else {
            self.v2[self.slot(user, round)]
        };
        let mut value = [0u8; MsChap2Response::LEN];
        value[0] = ident;
        // value[1] Flags and value[18..26] Reserved stay zero (RFC 2548 §2.3.2).
        value[2..18].copy_from_slice(&e.peer_challenge);
        value[26..].copy_from_slice(&e.nt_response);
        if wrong {
            value[MsChap2Response::LEN - 1] ^= 0x01;
        }
        b.vsa(MICROSOFT, MS_CHAP_CHALLENGE, &e.authenticator_challenge)?;
        b.vsa(MICROSOFT, MS_CHAP2_RESPONSE, &value)?;
        Ok(if wrong {
            ReplyCheck::None
        } else {
            ReplyCheck::MsChap2Success {
                ident,
                response: e.auth_response,
            }
        })
    }

    /// Appends MS-CHAP-Challenge and MS-CHAP-Response (v1) for `user`'s `round`-th request;
    /// `wrong` as in [`MsChap::write_v2`].
    pub fn write_v1(
        &self,
        b: &mut PacketBuilder<'_, '_>,
        user: usize,
        round: u64,
        ident: u8,
        wrong: bool,
        rng: &mut StdRng,
    ) -> Result<ReplyCheck, BuildError> {
        let e = if self.per_user == 0 {
            self.fresh_v1(user, rng)
        } else {
            self.v1[self.slot(user, round)]
        };
        let mut value = [0u8; MsChapResponse::LEN];
        value[0] = ident;
        // Flags 1: use the NT-Response; the LM-Response (value[2..26]) stays zero, as modern
        // peers send it (the LM hash is not computed by anyone any more).
        value[1] = 0x01;
        value[26..].copy_from_slice(&e.nt_response);
        if wrong {
            value[MsChapResponse::LEN - 1] ^= 0x01;
        }
        b.vsa(MICROSOFT, MS_CHAP_CHALLENGE, &e.challenge)?;
        b.vsa(MICROSOFT, MS_CHAP_RESPONSE, &value)?;
        Ok(if wrong {
            ReplyCheck::None
        } else {
            ReplyCheck::MsChapV1
        })
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;
    use crate::proto::crypto::mschap::{verify_nt_response, verify_nt_response_v1};
    use crate::proto::{Code, Secret};

    fn users() -> Vec<User> {
        vec![
            User {
                name: b"alice".as_slice().into(),
                password: b"alice-pw".as_slice().into(),
            },
            User {
                name: b"CORP\\bob".as_slice().into(),
                password: "bøb-pw".as_bytes().into(),
            },
        ]
    }

    fn secret() -> Secret {
        Secret::new(b"testing123").expect("secret")
    }

    /// Builds a v2 request for user `u` and returns (request bytes, check).
    fn v2_request(m: &MsChap, u: usize, wrong: bool, rng: &mut StdRng) -> (Vec<u8>, ReplyCheck) {
        let mut buf = [0u8; 512];
        let mut b =
            PacketBuilder::request(&mut buf, Code::AccessRequest, 9, &[7; 16]).expect("builder");
        let name = users()[u].name.clone();
        b.attr(crate::proto::attr::USER_NAME, &name).expect("name");
        let check = m.write_v2(&mut b, u, &name, 3, 42, wrong, rng).expect("v2");
        (b.finish(&secret()).expect("finish").to_vec(), check)
    }

    /// A signed Access-Accept to `request` with `success` as MS-CHAP2-Success.
    fn accept_with(request: &[u8], success: Option<&[u8]>, mppe: bool) -> Vec<u8> {
        let s = secret();
        let req = Packet::parse(request).expect("parses");
        let verified = crate::proto::verify_request(req, &s, false).expect("verifies");
        let mut buf = [0u8; 512];
        let mut b = PacketBuilder::reply(&mut buf, Code::AccessAccept, &verified).expect("reply");
        if let Some(v) = success {
            b.vsa(MICROSOFT, MS_CHAP2_SUCCESS, v).expect("vsa");
        }
        if mppe {
            b.vsa(MICROSOFT, MS_MPPE_SEND_KEY, &[1; 34]).expect("vsa");
            b.vsa(MICROSOFT, MS_MPPE_RECV_KEY, &[2; 34]).expect("vsa");
        }
        b.finish(&s).expect("finish").to_vec()
    }

    /// Plays the server: checks the request with the password and returns the real success.
    fn server_success(request: &[u8], password: &[u8]) -> Option<[u8; MsChap2Success::LEN]> {
        let p = Packet::parse(request).ok()?;
        let name = p.attr(crate::proto::attr::USER_NAME)?;
        let challenge: &[u8; 16] = p
            .vendor_attr(MICROSOFT, MS_CHAP_CHALLENGE)?
            .try_into()
            .ok()?;
        let r = MsChap2Response::parse(p.vendor_attr(MICROSOFT, MS_CHAP2_RESPONSE)?).ok()?;
        let nt = nt_password_hash(password)?;
        let account = strip_domain(name);
        if !verify_nt_response(challenge, r.peer_challenge, account, &nt, r.nt_response) {
            return None;
        }
        let digest = authenticator_response(
            &nt_password_hash_hash(&nt),
            r.nt_response,
            r.peer_challenge,
            challenge,
            account,
        );
        Some(
            MsChap2Success {
                ident: r.ident,
                authenticator_response: digest,
            }
            .to_bytes(),
        )
    }

    #[test]
    fn v2_requests_verify_and_success_is_checked() {
        let mut rng = StdRng::seed_from_u64(1);
        for pool in [0, 4] {
            let m = MsChap::new(&users(), pool, false, true, &mut rng).expect("pool");
            assert_eq!(m.per_user(), pool);
            for (u, user) in users().iter().enumerate() {
                let (req, check) = v2_request(&m, u, false, &mut rng);
                let success = server_success(&req, &user.password).expect("server accepts");
                let accept = accept_with(&req, Some(&success), true);
                let p = Packet::parse(&accept).expect("parses");
                assert_eq!(check_accept(check, &p), AcceptCheck::default());

                // One hex digit of S= changed: a bad authenticator response.
                let mut tampered = success;
                tampered[10] = if tampered[10] == b'0' { b'1' } else { b'0' };
                let accept = accept_with(&req, Some(&tampered), true);
                let p = Packet::parse(&accept).expect("parses");
                assert!(check_accept(check, &p).bad_auth_response);

                // Another Ident, lower-case hex, truncated, absent: all bad.
                let mut other_ident = success;
                other_ident[0] ^= 0xff;
                let mut lower = success;
                lower[1..].make_ascii_lowercase();
                for bad in [&other_ident[..], &lower[..], &success[..20], &[][..]] {
                    let accept = accept_with(&req, Some(bad), true);
                    let p = Packet::parse(&accept).expect("parses");
                    assert!(check_accept(check, &p).bad_auth_response, "{bad:?}");
                }
                let accept = accept_with(&req, None, false);
                let p = Packet::parse(&accept).expect("parses");
                assert_eq!(
                    check_accept(check, &p),
                    AcceptCheck {
                        bad_auth_response: true,
                        no_mppe_keys: true
                    }
                );

                // A wrong password request does not verify and expects no success.
                let (req, check) = v2_request(&m, u, true, &mut rng);
                assert!(server_success(&req, &user.password).is_none());
                assert_eq!(check, ReplyCheck::None);
            }
        }
    }

    #[test]
    fn v1_requests_verify() {
        let mut rng = StdRng::seed_from_u64(2);
        let m = MsChap::new(&users(), 2, true, false, &mut rng).expect("pool");
        for wrong in [false, true] {
            let mut buf = [0u8; 512];
            let mut b = PacketBuilder::request(&mut buf, Code::AccessRequest, 1, &[0; 16])
                .expect("builder");
            let check = m.write_v1(&mut b, 0, 5, 3, wrong, &mut rng).expect("v1");
            let req = b.finish(&secret()).expect("finish").to_vec();
            let p = Packet::parse(&req).expect("parses");
            let challenge: &[u8; 8] = p
                .vendor_attr(MICROSOFT, MS_CHAP_CHALLENGE)
                .and_then(|c| c.try_into().ok())
                .expect("8-octet challenge");
            let r =
                MsChapResponse::parse(p.vendor_attr(MICROSOFT, MS_CHAP_RESPONSE).expect("resp"))
                    .expect("well-formed");
            assert!(r.uses_nt_response());
            assert_eq!(r.lm_response, &[0; 24]);
            let nt = nt_password_hash(b"alice-pw").expect("hash");
            assert_eq!(verify_nt_response_v1(challenge, &nt, r.nt_response), !wrong);
            assert_eq!(check == ReplyCheck::MsChapV1, !wrong);
        }
        let mut buf = [0u8; 512];
        let b = PacketBuilder::request(&mut buf, Code::AccessRequest, 1, &[0; 16]).expect("b");
        let req = b.finish(&secret()).expect("finish").to_vec();
        let accept = accept_with(&req, None, false);
        let p = Packet::parse(&accept).expect("parses");
        assert!(check_accept(ReplyCheck::MsChapV1, &p).no_mppe_keys);
        assert!(!check_accept(ReplyCheck::MsChapV1, &p).bad_auth_response);
    }

    #[test]
    fn pool_is_capped_and_bad_passwords_refused() {
        let mut rng = StdRng::seed_from_u64(3);
        let many: Vec<User> = (0..POOL_MAX_ENTRIES / 2 + 1)
            .map(|i| User {
                name: format!("u{i}").into_bytes().into(),
                password: b"p".as_slice().into(),
            })
            .collect();
        // Hashing this many users is quick; only one exchange each fits under the cap.
        let m = MsChap::new(&many, 16, false, false, &mut rng).expect("pool");
        assert_eq!(m.per_user(), 1);
        let bad = [User {
            name: b"x".as_slice().into(),
            password: b"\xff".as_slice().into(),
        }];
        assert!(MsChap::new(&bad, 1, true, true, &mut rng).is_err());
    }
}
