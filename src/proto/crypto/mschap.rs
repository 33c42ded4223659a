//! MS-CHAP v1 (RFC 2433) and v2 (RFC 2759), server side, with the MPPE
//! keys a RADIUS server returns for them (RFC 2548 §2.4, RFC 3079).
//!
//! Sans-IO: every function is pure and works on fixed-size arrays, so the
//! only failure modes are the ones a type cannot rule out (a password that
//! is not UTF-8 or is too long; an attribute value of the wrong shape).
//!
//! The constructions are weak by modern standards (MD4, single DES with a
//! 16-octet hash split over three keys, the third of which has only two
//! secret octets). They are implemented because deployed peers speak them,
//! not because they are good.
//!
//! Every `user_name` parameter is the name *as hashed*: RFC 2759 §4 says
//! only the account name enters the hash, without any `DOMAIN\` prefix the
//! peer put in front of it. Pass [`strip_domain`] of the User-Name.

use des::cipher::{BlockEncrypt, KeyInit};
use des::Des;
use md4::Md4;
use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;

/// Longest password in UTF-16 code units: RFC 2759 §8 types passwords as
/// `0-to-256-unicode-char`, and the change-password PWBLOCK (§8.9) holds
/// exactly 256 two-octet characters.
pub const MAX_PASSWORD_UNITS: usize = 256;

/// Length of an NT password hash, of its hash, and of the MPPE master key.
pub const HASH_LEN: usize = 16;
/// Length of an NT-Response or LM-Response.
pub const RESPONSE_LEN: usize = 24;
/// Length of the authenticator response string `S=` + 40 hex digits.
pub const AUTH_STRING_LEN: usize = 42;

/// RFC 2759 §8.7 Magic1: "Magic server to client signing constant".
const AUTH_MAGIC1: &[u8; 39] = b"Magic server to client signing constant";
/// RFC 2759 §8.7 Magic2: "Pad to make it do more than one iteration".
const AUTH_MAGIC2: &[u8; 41] = b"Pad to make it do more than one iteration";

/// RFC 3079 §3.4 Magic1, for GetMasterKey.
const MPPE_MAGIC1: &[u8; 27] = b"This is the MPPE Master Key";
/// RFC 3079 §3.4 Magic2: the client's send key is the server's receive key.
const MPPE_MAGIC2: &[u8; 84] =
    b"On the client side, this is the send key; on the server side, it is the receive key.";
/// RFC 3079 §3.4 Magic3: the client's receive key is the server's send key.
const MPPE_MAGIC3: &[u8; 84] =
    b"On the client side, this is the receive key; on the server side, it is the send key.";
/// RFC 3079 §3.4 SHSpad1 (40 zero octets).
const SHS_PAD1: [u8; 40] = [0x00; 40];
/// RFC 3079 §3.4 SHSpad2 (40 octets of 0xF2).
const SHS_PAD2: [u8; 40] = [0xF2; 40];

// ---------------------------------------------------------------------------
// Password hashes (RFC 2759 §8.3, §8.4; RFC 2433 A.8)
// ---------------------------------------------------------------------------

/// NtPasswordHash: MD4 of the password in UTF-16LE, without a terminator.
///
/// The password arrives as UTF-8 (configuration, LDAP, a local user file);
/// `None` if it is not valid UTF-8 or is longer than
/// [`MAX_PASSWORD_UNITS`] UTF-16 code units, since no peer can have hashed
/// such a password and a silent truncation would make two passwords equal.
pub fn nt_password_hash(password_utf8: &[u8]) -> Option<[u8; HASH_LEN]> {
    let password = core::str::from_utf8(password_utf8).ok()?;
    // The UTF-16LE form is as secret as the password: built on the stack
    // and wiped afterwards rather than left in a freed heap block.
    let mut buf = Utf16Buf([0u8; 2 * MAX_PASSWORD_UNITS]);
    let mut n = 0;
    for unit in password.encode_utf16() {
        let slot = buf.0.get_mut(n..n + 2)?;
        slot.copy_from_slice(&unit.to_le_bytes());
        n += 2;
    }
    Some(Md4::digest(&buf.0[..n]).into())
}

/// HashNtPasswordHash: MD4 of the NT hash ([`nt_password_hash_hash`]). What a
/// successful exchange proves knowledge of, what winbind returns as the user
/// session key, and what `S=` and the MPPE keys are computed from. Not
/// password-equivalent, but keyed to every session of the user: its `Debug`
/// is redacted.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct NtKey(pub [u8; HASH_LEN]);

impl core::fmt::Debug for NtKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("NtKey(<redacted>)")
    }
}

/// An NT hash on the stack, wiped when dropped: password-equivalent for MS-CHAP.
pub struct NtHash(pub [u8; HASH_LEN]);

impl Drop for NtHash {
    fn drop(&mut self) {
        crate::proto::wipe(&mut self.0);
    }
}

impl NtHash {
    /// The NT hash of a cleartext password (`None`: not UTF-8, or too long for MS-CHAP).
    pub fn of_password(password: &[u8]) -> Option<NtHash> {
        nt_password_hash(password).map(NtHash)
    }

    pub fn nt_key(&self) -> NtKey {
        NtKey(nt_password_hash_hash(&self.0))
    }
}

/// Stack buffer for the UTF-16 password, zeroed on drop (also on the early
/// return for an over-long password).
struct Utf16Buf([u8; 2 * MAX_PASSWORD_UNITS]);

impl Drop for Utf16Buf {
    fn drop(&mut self) {
        crate::proto::wipe(&mut self.0);
    }
}

/// HashNtPasswordHash: MD4 of the NT hash. Used by the v2 authenticator
/// response and MPPE master key, and as the v1 NT-Key (RFC 3079 §2.3).
pub fn nt_password_hash_hash(password_hash: &[u8; HASH_LEN]) -> [u8; HASH_LEN] {
    Md4::digest(password_hash).into()
}

// ---------------------------------------------------------------------------
// DES response (RFC 2759 §8.5, §8.6; RFC 2433 A.5)
// ---------------------------------------------------------------------------

/// Spreads 56 key bits over 8 octets, 7 to an octet in the high bits, and
/// sets each low bit for odd parity (RFC 2759 §8.6 and §9.3). The DES crate
/// ignores parity, but setting it keeps the key equal to the RFC's worked
/// example, which the tests check.
fn des_key(raw: &[u8; 7]) -> [u8; 8] {
    let bits = raw.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    let mut key = [0u8; 8];
    for (i, k) in key.iter_mut().enumerate() {
        // Bits 55..49 for i = 0, down to 6..0 for i = 7; the mask makes the
        // narrowing lossless.
        let seven = ((bits >> (49 - 7 * i)) & 0x7F) as u8;
        let high = seven << 1;
        *k = high | u8::from(high.count_ones() % 2 == 0);
    }
    key
}

/// DesEncrypt: one DES-ECB block under a 7-octet key.
fn des_encrypt(clear: &[u8; 8], raw_key: &[u8; 7]) -> [u8; 8] {
    let cipher = Des::new(&des_key(raw_key).into());
    let mut block = (*clear).into();
    cipher.encrypt_block(&mut block);
    block.into()
}

/// ChallengeResponse: the 8-octet challenge DES-encrypted under the three
/// 7-octet thirds of the NT hash zero-padded to 21 octets. Shared by v1
/// (challenge = MS-CHAP-Challenge) and v2 (challenge = [`challenge_hash`]).
pub fn challenge_response(
    challenge: &[u8; 8],
    password_hash: &[u8; HASH_LEN],
) -> [u8; RESPONSE_LEN] {
    let mut z = [0u8; 21];
    z[..HASH_LEN].copy_from_slice(password_hash);
    let mut out = [0u8; RESPONSE_LEN];
    for (chunk, key) in out.chunks_exact_mut(8).zip(z.chunks_exact(7)) {
        let mut raw = [0u8; 7];
        raw.copy_from_slice(key);
        chunk.copy_from_slice(&des_encrypt(challenge, &raw));
    }
    out
}

// ---------------------------------------------------------------------------
// MS-CHAP v2 (RFC 2759 §8)
// ---------------------------------------------------------------------------

/// The account name without a Windows domain: everything after the last
/// backslash (RFC 2759 §4: "BIGCO\johndoe" hashes as "johndoe"). A name
/// without a backslash is returned as is.
pub fn strip_domain(user_name: &[u8]) -> &[u8] {
    match user_name.iter().rposition(|&b| b == b'\\') {
        Some(i) => &user_name[i + 1..],
        None => user_name,
    }
}

/// ChallengeHash: the first 8 octets of SHA-1(PeerChallenge ‖
/// AuthenticatorChallenge ‖ UserName); the DES plaintext of v2.
/// `user_name` must already be stripped of its domain ([`strip_domain`]).
pub fn challenge_hash(
    peer_challenge: &[u8; 16],
    authenticator_challenge: &[u8; 16],
    user_name: &[u8],
) -> [u8; 8] {
    let digest = Sha1::new()
        .chain_update(peer_challenge)
        .chain_update(authenticator_challenge)
        .chain_update(user_name)
        .finalize();
    let mut out = [0u8; 8];
    out.copy_from_slice(&digest[..8]);
    out
}

/// GenerateNTResponse, from the NT hash rather than the password so that a
/// server holding only NT hashes can use it.
pub fn generate_nt_response(
    authenticator_challenge: &[u8; 16],
    peer_challenge: &[u8; 16],
    user_name: &[u8],
    password_hash: &[u8; HASH_LEN],
) -> [u8; RESPONSE_LEN] {
    let challenge = challenge_hash(peer_challenge, authenticator_challenge, user_name);
    challenge_response(&challenge, password_hash)
}

/// Checks a peer's NT-Response in constant time.
pub fn verify_nt_response(
    authenticator_challenge: &[u8; 16],
    peer_challenge: &[u8; 16],
    user_name: &[u8],
    password_hash: &[u8; HASH_LEN],
    nt_response: &[u8; RESPONSE_LEN],
) -> bool {
    let expected = generate_nt_response(
        authenticator_challenge,
        peer_challenge,
        user_name,
        password_hash,
    );
    bool::from(expected.ct_eq(nt_response))
}

/// GenerateAuthenticatorResponse, as the raw 20-octet digest: proves to the
/// peer that the server knows the password too (mutual authentication).
pub fn authenticator_response(
    password_hash_hash: &[u8; HASH_LEN],
    nt_response: &[u8; RESPONSE_LEN],
    peer_challenge: &[u8; 16],
    authenticator_challenge: &[u8; 16],
    user_name: &[u8],
) -> [u8; 20] {
    let digest = Sha1::new()
        .chain_update(password_hash_hash)
        .chain_update(nt_response)
        .chain_update(AUTH_MAGIC1)
        .finalize();
    let challenge = challenge_hash(peer_challenge, authenticator_challenge, user_name);
    Sha1::new()
        .chain_update(digest)
        .chain_update(challenge)
        .chain_update(AUTH_MAGIC2)
        .finalize()
        .into()
}

/// The authenticator response as the peer expects it in the Success
/// message: `S=` and 40 hex digits, uppercase (RFC 2759 §5 says MUST).
pub fn authenticator_response_string(
    password_hash_hash: &[u8; HASH_LEN],
    nt_response: &[u8; RESPONSE_LEN],
    peer_challenge: &[u8; 16],
    authenticator_challenge: &[u8; 16],
    user_name: &[u8],
) -> [u8; AUTH_STRING_LEN] {
    let digest = authenticator_response(
        password_hash_hash,
        nt_response,
        peer_challenge,
        authenticator_challenge,
        user_name,
    );
    format_auth_string(&digest)
}

fn format_auth_string(digest: &[u8; 20]) -> [u8; AUTH_STRING_LEN] {
    let mut out = [0u8; AUTH_STRING_LEN];
    out[..2].copy_from_slice(b"S=");
    data_encoding::HEXUPPER.encode_mut(digest, &mut out[2..]);
    out
}

// ---------------------------------------------------------------------------
// MPPE keys for v2 (RFC 3079 §3.4; RFC 2548 §2.4.2–2.4.3)
// ---------------------------------------------------------------------------

/// GetMasterKey: first 16 octets of SHA-1(PasswordHashHash ‖ NT-Response ‖
/// Magic1). Both ends derive it; it never crosses the wire.
pub fn master_key(
    password_hash_hash: &[u8; HASH_LEN],
    nt_response: &[u8; RESPONSE_LEN],
) -> [u8; HASH_LEN] {
    let digest = Sha1::new()
        .chain_update(password_hash_hash)
        .chain_update(nt_response)
        .chain_update(MPPE_MAGIC1)
        .finalize();
    let mut out = [0u8; HASH_LEN];
    out.copy_from_slice(&digest[..HASH_LEN]);
    out
}

/// GetAsymmetricStartKey: the first `N` octets of SHA-1(MasterKey ‖
/// SHSpad1 ‖ Magic ‖ SHSpad2). `N` is the session key length, 8 (40- and
/// 56-bit MPPE) or 16 (128-bit); any other length fails to compile.
///
/// The magic is chosen so that one side's send key is the other side's
/// receive key: the server sends with Magic3 and receives with Magic2, the
/// client the other way round.
pub fn asymmetric_start_key<const N: usize>(
    master_key: &[u8; HASH_LEN],
    is_send: bool,
    is_server: bool,
) -> [u8; N] {
    const { assert!(N == 8 || N == 16, "MPPE session keys are 8 or 16 octets") };
    let magic = if is_send == is_server {
        MPPE_MAGIC3
    } else {
        MPPE_MAGIC2
    };
    let digest = Sha1::new()
        .chain_update(master_key)
        .chain_update(SHS_PAD1)
        .chain_update(magic)
        .chain_update(SHS_PAD2)
        .finalize();
    let mut out = [0u8; N];
    out.copy_from_slice(&digest[..N]);
    out
}

/// The two 16-octet keys a RADIUS server puts in MS-MPPE-Send-Key and
/// MS-MPPE-Recv-Key. Named from the NAS's side, which is the server side of
/// the PPP link (RFC 2548 §2.4.2: Send is "for encrypting packets sent from
/// the NAS to the remote host"). The NAS truncates them for 40/56-bit MPPE.
#[derive(Clone, PartialEq, Eq)]
pub struct MppeKeys {
    /// MS-MPPE-Send-Key: the server's send key (Magic3).
    pub send: [u8; HASH_LEN],
    /// MS-MPPE-Recv-Key: the server's receive key (Magic2).
    pub recv: [u8; HASH_LEN],
}

impl core::fmt::Debug for MppeKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("MppeKeys(<redacted>)")
    }
}

/// The server's MPPE key pair for a successful v2 exchange.
pub fn server_mppe_keys(
    password_hash_hash: &[u8; HASH_LEN],
    nt_response: &[u8; RESPONSE_LEN],
) -> MppeKeys {
    let mk = master_key(password_hash_hash, nt_response);
    MppeKeys {
        send: asymmetric_start_key::<16>(&mk, true, true),
        recv: asymmetric_start_key::<16>(&mk, false, true),
    }
}

// ---------------------------------------------------------------------------
// MS-CHAP v1 (RFC 2433) and its MPPE keys (RFC 2548 §2.4.1, RFC 3079 §2)
// ---------------------------------------------------------------------------

/// NtChallengeResponse (RFC 2433 A.5): [`challenge_response`] over the
/// 8-octet MS-CHAP-Challenge itself; v1 hashes in neither a peer challenge
/// nor the user name.
pub fn nt_challenge_response_v1(
    challenge: &[u8; 8],
    password_hash: &[u8; HASH_LEN],
) -> [u8; RESPONSE_LEN] {
    challenge_response(challenge, password_hash)
}

/// Checks a v1 NT-Response in constant time. LM-Responses are not
/// supported: the LM hash is broken beyond use and needs the password
/// upper-cased in an OEM code page.
pub fn verify_nt_response_v1(
    challenge: &[u8; 8],
    password_hash: &[u8; HASH_LEN],
    nt_response: &[u8; RESPONSE_LEN],
) -> bool {
    bool::from(nt_challenge_response_v1(challenge, password_hash).ct_eq(nt_response))
}

/// Length of the MS-CHAP-MPPE-Keys plaintext: LM-Key 8, NT-Key 16, padding 8.
pub const V1_MPPE_KEYS_LEN: usize = 32;

/// The MS-CHAP-MPPE-Keys plaintext (RFC 2548 §2.4.1): the first 8 octets of
/// the LM hash (zeros without one), the NT-Key, and 8 octets of zero
/// padding up to the 16-octet multiple the User-Password style encryption
/// needs. The NT-Key is HashNtPasswordHash of the NT hash
/// ([`nt_password_hash_hash`]; what winbind returns as the user session
/// key), the value RFC 3079 §2 feeds to the 128-bit v1 key derivation. The
/// caller encrypts it like User-Password (RFC 2865 §5.2) before sending.
pub fn v1_mppe_keys(
    lm_password_hash: Option<&[u8; HASH_LEN]>,
    nt_key: &[u8; HASH_LEN],
) -> [u8; V1_MPPE_KEYS_LEN] {
    let mut out = [0u8; V1_MPPE_KEYS_LEN];
    if let Some(lm) = lm_password_hash {
        out[..8].copy_from_slice(&lm[..8]);
    }
    out[8..24].copy_from_slice(nt_key);
    out
}

// ---------------------------------------------------------------------------
// RADIUS attribute values (RFC 2548 §2.1, §2.3)
// ---------------------------------------------------------------------------

/// Why an MS-CHAP vendor attribute value could not be parsed.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum MsChapError {
    /// The value is not the length its type fixes.
    #[error("MS-CHAP attribute value is {got} octets, expected {expected}")]
    BadLength {
        /// Octets received.
        got: usize,
        /// Octets the attribute type requires.
        expected: usize,
    },
    /// MS-CHAP-Challenge is 8 octets (v1) or 16 (v2), nothing else.
    #[error("MS-CHAP-Challenge is {0} octets, expected 8 or 16")]
    BadChallengeLength(usize),
    /// MS-CHAP-Error needs at least the Ident octet.
    #[error("MS-CHAP-Error value is empty")]
    Empty,
    /// MS-CHAP2-Success text is not `S=` and 40 uppercase hex digits.
    #[error("MS-CHAP2-Success is not S= followed by 40 uppercase hex digits")]
    BadAuthenticatorString,
}

impl MsChapError {
    /// Stable metrics label.
    pub const fn label(&self) -> &'static str {
        match self {
            MsChapError::BadLength { .. } => "mschap_bad_length",
            MsChapError::BadChallengeLength(_) => "mschap_bad_challenge_length",
            MsChapError::Empty => "mschap_empty",
            MsChapError::BadAuthenticatorString => "mschap_bad_authenticator_string",
        }
    }
}

/// Borrows `N` octets at `at` as an array; callers check the total length
/// first, so `None` only guards against a mistake here.
fn field<const N: usize>(value: &[u8], at: usize) -> Option<&[u8; N]> {
    value.get(at..at.checked_add(N)?)?.try_into().ok()
}

fn exact(value: &[u8], expected: usize) -> Result<(), MsChapError> {
    if value.len() == expected {
        Ok(())
    } else {
        Err(MsChapError::BadLength {
            got: value.len(),
            expected,
        })
    }
}

/// MS-CHAP-Challenge (vendor type 11): which version is in play follows
/// from its length.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum MsChapChallenge<'a> {
    /// 8 octets: the v1 challenge, used directly as the DES plaintext.
    V1(&'a [u8; 8]),
    /// 16 octets: the v2 authenticator challenge.
    V2(&'a [u8; 16]),
}

impl<'a> MsChapChallenge<'a> {
    /// Parses the attribute value.
    pub fn parse(value: &'a [u8]) -> Result<Self, MsChapError> {
        if let Ok(c) = <&[u8; 8]>::try_from(value) {
            Ok(Self::V1(c))
        } else if let Ok(c) = <&[u8; 16]>::try_from(value) {
            Ok(Self::V2(c))
        } else {
            Err(MsChapError::BadChallengeLength(value.len()))
        }
    }
}

impl core::fmt::Debug for MsChapChallenge<'_> {
    // Challenges are public, but printing them helps nobody and keeps
    // them out of logs that also carry responses.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::V1(_) => f.write_str("MsChapChallenge::V1(..)"),
            Self::V2(_) => f.write_str("MsChapChallenge::V2(..)"),
        }
    }
}

/// MS-CHAP-Response (vendor type 1, RFC 2548 §2.1.3).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct MsChapResponse<'a> {
    /// The PPP CHAP Identifier.
    pub ident: u8,
    /// Bit 0 set: use the NT-Response (RFC 2548 §2.1.3).
    pub flags: u8,
    /// LM-Response; zero-filled when absent.
    pub lm_response: &'a [u8; RESPONSE_LEN],
    /// NT-Response.
    pub nt_response: &'a [u8; RESPONSE_LEN],
}

impl<'a> MsChapResponse<'a> {
    /// Value length: Ident, Flags, LM-Response, NT-Response.
    pub const LEN: usize = 2 + 2 * RESPONSE_LEN;

    /// Parses the attribute value.
    pub fn parse(value: &'a [u8]) -> Result<Self, MsChapError> {
        exact(value, Self::LEN)?;
        let bad = MsChapError::BadLength {
            got: value.len(),
            expected: Self::LEN,
        };
        Ok(Self {
            ident: value[0],
            flags: value[1],
            lm_response: field(value, 2).ok_or(bad)?,
            nt_response: field(value, 2 + RESPONSE_LEN).ok_or(bad)?,
        })
    }

    /// Whether the peer sent an NT-Response. With Flags 0 only the
    /// LM-Response counts (RFC 2548 §2.1.3), which is not supported here.
    pub fn uses_nt_response(&self) -> bool {
        self.flags & 0x01 != 0
    }
}

impl core::fmt::Debug for MsChapResponse<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MsChapResponse")
            .field("ident", &self.ident)
            .field("flags", &self.flags)
            .finish_non_exhaustive()
    }
}

/// MS-CHAP2-Response (vendor type 25, RFC 2548 §2.3.2).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct MsChap2Response<'a> {
    /// The PPP MS-CHAP-V2 Identifier.
    pub ident: u8,
    /// Reserved, MUST be zero; not enforced, since a peer that sets it
    /// still computed the response the same way.
    pub flags: u8,
    /// The peer's 16-octet challenge.
    pub peer_challenge: &'a [u8; 16],
    /// Reserved, MUST be zero; not enforced, likewise.
    pub reserved: &'a [u8; 8],
    /// NT-Response.
    pub nt_response: &'a [u8; RESPONSE_LEN],
}

impl<'a> MsChap2Response<'a> {
    /// Value length: Ident, Flags, Peer-Challenge, Reserved, NT-Response.
    pub const LEN: usize = 2 + 16 + 8 + RESPONSE_LEN;

    /// Parses the attribute value.
    pub fn parse(value: &'a [u8]) -> Result<Self, MsChapError> {
        exact(value, Self::LEN)?;
        let bad = MsChapError::BadLength {
            got: value.len(),
            expected: Self::LEN,
        };
        Ok(Self {
            ident: value[0],
            flags: value[1],
            peer_challenge: field(value, 2).ok_or(bad)?,
            reserved: field(value, 18).ok_or(bad)?,
            nt_response: field(value, 26).ok_or(bad)?,
        })
    }
}

impl core::fmt::Debug for MsChap2Response<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MsChap2Response")
            .field("ident", &self.ident)
            .field("flags", &self.flags)
            .finish_non_exhaustive()
    }
}

/// MS-CHAP2-Success (vendor type 26, RFC 2548 §2.3.3): Ident ‖ the
/// 42-octet authenticator response string.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct MsChap2Success {
    /// The PPP MS-CHAP-V2 Identifier, copied from MS-CHAP2-Response.
    pub ident: u8,
    /// The decoded authenticator response.
    pub authenticator_response: [u8; 20],
}

impl MsChap2Success {
    /// Value length: Ident and the 42-octet string.
    pub const LEN: usize = 1 + AUTH_STRING_LEN;

    /// Formats the attribute value.
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[0] = self.ident;
        out[1..].copy_from_slice(&format_auth_string(&self.authenticator_response));
        out
    }

    /// Parses the attribute value (a proxy or a test peer checking it).
    pub fn parse(value: &[u8]) -> Result<Self, MsChapError> {
        exact(value, Self::LEN)?;
        let text = &value[1..];
        let hex = text
            .strip_prefix(b"S=")
            .ok_or(MsChapError::BadAuthenticatorString)?;
        let mut authenticator_response = [0u8; 20];
        match data_encoding::HEXUPPER.decode_mut(hex, &mut authenticator_response) {
            Ok(20) => Ok(Self {
                ident: value[0],
                authenticator_response,
            }),
            _ => Err(MsChapError::BadAuthenticatorString),
        }
    }
}

impl core::fmt::Debug for MsChap2Success {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MsChap2Success")
            .field("ident", &self.ident)
            .finish_non_exhaustive()
    }
}

/// The MS-CHAP failure codes of RFC 2433 §6 / RFC 2759 §6. All have three
/// digits, which keeps the formatted error a fixed size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MsChapErrorCode {
    /// 646 ERROR_RESTRICTED_LOGON_HOURS
    RestrictedLogonHours,
    /// 647 ERROR_ACCT_DISABLED
    AccountDisabled,
    /// 648 ERROR_PASSWD_EXPIRED
    PasswordExpired,
    /// 649 ERROR_NO_DIALIN_PERMISSION
    NoDialinPermission,
    /// 691 ERROR_AUTHENTICATION_FAILURE
    AuthenticationFailure,
    /// 709 ERROR_CHANGING_PASSWORD
    ChangingPassword,
}

impl MsChapErrorCode {
    /// The decimal code.
    pub const fn code(self) -> u16 {
        match self {
            Self::RestrictedLogonHours => 646,
            Self::AccountDisabled => 647,
            Self::PasswordExpired => 648,
            Self::NoDialinPermission => 649,
            Self::AuthenticationFailure => 691,
            Self::ChangingPassword => 709,
        }
    }

    fn digits(self) -> [u8; 3] {
        let c = self.code();
        // Three-digit codes: each quotient is below 10, so the narrowing
        // is lossless.
        [
            b'0' + (c / 100) as u8,
            b'0' + (c / 10 % 10) as u8,
            b'0' + (c % 10) as u8,
        ]
    }
}

/// Length of a v2 MS-CHAP-Error value: Ident ‖ `E=ddd R=r C=<32 hex> V=3`.
pub const V2_ERROR_LEN: usize = 1 + b"E=ddd R=r C=".len() + 32 + b" V=3".len();
/// Length of a v1 MS-CHAP-Error value: Ident ‖ `E=ddd R=r`.
pub const V1_ERROR_LEN: usize = 1 + b"E=ddd R=r".len();

/// The v2 MS-CHAP-Error value (RFC 2548 §2.1.5 carrying RFC 2759 §6's
/// message). `C=` is mandatory in v2 and is the authenticator challenge
/// the peer should answer if it retries; `V=3` says the server speaks the
/// v2 password change (which this server does not offer, but `V` is
/// required and 3 is what RFC 2759 says to send).
pub fn ms_chap2_error(
    ident: u8,
    code: MsChapErrorCode,
    retry: bool,
    authenticator_challenge: &[u8; 16],
) -> [u8; V2_ERROR_LEN] {
    let mut out = [0u8; V2_ERROR_LEN];
    out[0] = ident;
    out[1..3].copy_from_slice(b"E=");
    out[3..6].copy_from_slice(&code.digits());
    out[6..9].copy_from_slice(b" R=");
    out[9] = if retry { b'1' } else { b'0' };
    out[10..13].copy_from_slice(b" C=");
    data_encoding::HEXUPPER.encode_mut(authenticator_challenge, &mut out[13..45]);
    out[45..].copy_from_slice(b" V=3");
    out
}

/// The v1 MS-CHAP-Error value (RFC 2433 §6); `C=` and `V=` are optional
/// in v1 and left out.
pub fn ms_chap_error_v1(ident: u8, code: MsChapErrorCode, retry: bool) -> [u8; V1_ERROR_LEN] {
    let mut out = [0u8; V1_ERROR_LEN];
    out[0] = ident;
    out[1..3].copy_from_slice(b"E=");
    out[3..6].copy_from_slice(&code.digits());
    out[6..9].copy_from_slice(b" R=");
    out[9] = if retry { b'1' } else { b'0' };
    out
}

/// A received MS-CHAP-Error value (vendor type 2): Ident ‖ text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsChapErrorValue<'a> {
    /// The PPP Identifier.
    pub ident: u8,
    /// The `E=... R=... [C=...] [V=...] [M=...]` text, unparsed.
    pub text: &'a [u8],
}

impl<'a> MsChapErrorValue<'a> {
    /// Splits the attribute value; the text is not validated, because RFC
    /// 2759 §6 asks peers to cope with codes and fields they do not know.
    pub fn parse(value: &'a [u8]) -> Result<Self, MsChapError> {
        let (&ident, text) = value.split_first().ok_or(MsChapError::Empty)?;
        Ok(Self { ident, text })
    }

    /// The decimal code after a leading `E=`, if there is one that fits.
    pub fn error_code(&self) -> Option<u32> {
        let digits = self.text.strip_prefix(b"E=")?;
        let end = digits
            .iter()
            .position(|b| !b.is_ascii_digit())
            .unwrap_or(digits.len());
        let digits = digits.get(..end).filter(|d| !d.is_empty())?;
        digits.iter().try_fold(0u32, |acc, &d| {
            acc.checked_mul(10)?.checked_add(u32::from(d - b'0'))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex<const N: usize>(s: &str) -> [u8; N] {
        let mut out = [0u8; N];
        let n = data_encoding::HEXUPPER_PERMISSIVE
            .decode_mut(s.as_bytes(), &mut out)
            .expect("test vector is hex");
        assert_eq!(n, N, "test vector length");
        out
    }

    // RFC 2759 §9.2 (and RFC 3079 §3.5, which reuses these inputs).
    const USER: &[u8] = b"User";
    const PASSWORD: &[u8] = b"clientPass";
    fn auth_challenge() -> [u8; 16] {
        hex("5B5D7C7D7B3F2F3E3C2C602132262628")
    }
    fn peer_challenge() -> [u8; 16] {
        hex("21402324255E262A28295F2B3A337C7E")
    }
    fn nt_response() -> [u8; 24] {
        hex("82309ECD8D708B5EA08FAA3981CD83544233114A3D85D6DF")
    }

    #[test]
    fn rfc2759_9_2_hash_example() {
        let ph = nt_password_hash(PASSWORD).expect("valid password");
        assert_eq!(ph, hex("44EBBA8D5312B8D611474411F56989AE"));
        assert_eq!(
            challenge_hash(&peer_challenge(), &auth_challenge(), USER),
            hex("D02E4386BCE91226")
        );
        assert_eq!(
            generate_nt_response(&auth_challenge(), &peer_challenge(), USER, &ph),
            nt_response()
        );
        let phh = nt_password_hash_hash(&ph);
        assert_eq!(phh, hex("41C00C584BD2D91C4017A2A12FA59F3F"));
        assert_eq!(
            &authenticator_response_string(
                &phh,
                &nt_response(),
                &peer_challenge(),
                &auth_challenge(),
                USER
            ),
            b"S=407A5589115FD0D6209F510FE9C04566932CDA56"
        );
    }

    #[test]
    fn rfc2759_verify_nt_response() {
        let ph = nt_password_hash(PASSWORD).expect("valid password");
        let (ac, pc) = (auth_challenge(), peer_challenge());
        assert!(verify_nt_response(&ac, &pc, USER, &ph, &nt_response()));
        // Any one flipped bit in the response, a different name, or a
        // different password fails.
        let mut bad = nt_response();
        bad[23] ^= 0x01;
        assert!(!verify_nt_response(&ac, &pc, USER, &ph, &bad));
        assert!(!verify_nt_response(&ac, &pc, b"user", &ph, &nt_response()));
        let other = nt_password_hash(b"clientPasS").expect("valid password");
        assert!(!verify_nt_response(&ac, &pc, USER, &other, &nt_response()));
        // The domain does not enter the hash once stripped.
        assert!(verify_nt_response(
            &ac,
            &pc,
            strip_domain(b"BIGCO\\User"),
            &ph,
            &nt_response()
        ));
    }

    #[test]
    fn rfc2759_9_3_and_rfc2433_b3_des_keys() {
        // NT hash of "MyPw" and its two parity-corrected DES keys.
        let ph = nt_password_hash(b"MyPw").expect("valid password");
        assert_eq!(ph, hex("FC156AF7EDCD6C0EDDE3337D427F4EAC"));
        assert_eq!(des_key(&hex("FC156AF7EDCD6C")), hex("FD0B5B5E7F6E34D9"));
        assert_eq!(des_key(&hex("0EDDE3337D427F")), hex("0E6E796737EA08FE"));
    }

    #[test]
    fn rfc2433_b2_v1_response() {
        let ph = nt_password_hash(b"MyPw").expect("valid password");
        assert_eq!(ph, hex("FC156AF7EDCD6C0EDDE3337D427F4EAC"));
        let challenge = hex("102DB5DF085D3041");
        let expected: [u8; 24] = hex("4E9D3C8F9CFD385D5BF4D3246791956CA4C351AB409A3D61");
        assert_eq!(nt_challenge_response_v1(&challenge, &ph), expected);
        assert!(verify_nt_response_v1(&challenge, &ph, &expected));
        let mut bad = expected;
        bad[0] ^= 0x80;
        assert!(!verify_nt_response_v1(&challenge, &ph, &bad));
    }

    /// RFC 3078 GetNewKeyFromSHA, only to check RFC 3079's printed session
    /// key; deriving session keys is the NAS's job, not the server's.
    fn new_key_from_sha(start_key: &[u8; 16], session_key: &[u8; 16]) -> [u8; 16] {
        let d = Sha1::new()
            .chain_update(start_key)
            .chain_update(SHS_PAD1)
            .chain_update(session_key)
            .chain_update(SHS_PAD2)
            .finalize();
        let mut out = [0u8; 16];
        out.copy_from_slice(&d[..16]);
        out
    }

    #[test]
    fn rfc3079_3_5_3_128_bit_keys() {
        let ph = nt_password_hash(PASSWORD).expect("valid password");
        let phh = nt_password_hash_hash(&ph);
        let mk = master_key(&phh, &nt_response());
        assert_eq!(mk, hex("FDECE3717A8C838CB388E527AE3CDD31"));
        // SendStartKey128 is derived from the server's point of view.
        let send = asymmetric_start_key::<16>(&mk, true, true);
        assert_eq!(send, hex("8B7CDC149B993A1BA118CB153F56DCCB"));
        assert_eq!(
            new_key_from_sha(&send, &send),
            hex("405CB2247A7956E6E211007AE27B22D4"),
            "SendSessionKey128"
        );
        // The 64-bit start key is the prefix of the same digest.
        assert_eq!(
            asymmetric_start_key::<8>(&mk, true, true),
            hex("8B7CDC149B993A1B")
        );
        // The RFC prints no receive key; it is the Magic2 digest, which is
        // what the client sends with.
        let recv = asymmetric_start_key::<16>(&mk, false, true);
        assert_eq!(recv, asymmetric_start_key::<16>(&mk, true, false));
        assert_eq!(send, asymmetric_start_key::<16>(&mk, false, false));
        assert_eq!(recv, hex("D5F0E9521E3EA9589645E86051C82226"));
        assert_ne!(send, recv);

        let keys = server_mppe_keys(&phh, &nt_response());
        assert_eq!(keys.send, send);
        assert_eq!(keys.recv, recv);
        assert_eq!(format!("{keys:?}"), "MppeKeys(<redacted>)");
    }

    #[test]
    fn v1_mppe_keys_layout() {
        let ph = nt_password_hash(b"MyPw").expect("valid password");
        let nt_key = nt_password_hash_hash(&ph);
        let k = v1_mppe_keys(None, &nt_key);
        assert_eq!(&k[..8], &[0u8; 8]);
        assert_eq!(&k[8..24], &nt_key);
        assert_eq!(&k[24..], &[0u8; 8]);
        let lm = [0xAB; 16];
        assert_eq!(&v1_mppe_keys(Some(&lm), &nt_key)[..8], &[0xAB; 8]);
    }

    #[test]
    fn password_limits() {
        assert_eq!(nt_password_hash(b""), Some(Md4::digest(b"").into()));
        assert!(nt_password_hash(&[b'a'; 256]).is_some());
        assert!(nt_password_hash(&[b'a'; 257]).is_none());
        assert!(nt_password_hash(b"\xff\xfe").is_none());
        // 128 characters outside the BMP are 256 UTF-16 units: the limit.
        let astral = "\u{1F600}".repeat(128);
        assert!(nt_password_hash(astral.as_bytes()).is_some());
        let over = "\u{1F600}".repeat(129);
        assert!(nt_password_hash(over.as_bytes()).is_none());
        // Non-ASCII is hashed as UTF-16LE, not as its UTF-8 octets.
        let mut utf16 = Vec::new();
        for u in "pässwörd".encode_utf16() {
            utf16.extend_from_slice(&u.to_le_bytes());
        }
        assert_eq!(
            nt_password_hash("pässwörd".as_bytes()),
            Some(Md4::digest(&utf16).into())
        );
    }

    #[test]
    fn strips_domain() {
        assert_eq!(strip_domain(b"BIGCO\\johndoe"), b"johndoe");
        assert_eq!(strip_domain(b"a\\b\\c"), b"c");
        assert_eq!(strip_domain(b"johndoe"), b"johndoe");
        assert_eq!(strip_domain(b"trailing\\"), b"");
        assert_eq!(strip_domain(b""), b"");
    }

    #[test]
    fn parses_ms_chap2_response() {
        let mut v = vec![7u8, 0];
        v.extend_from_slice(&peer_challenge());
        v.extend_from_slice(&[0; 8]);
        v.extend_from_slice(&nt_response());
        let r = MsChap2Response::parse(&v).expect("well-formed");
        assert_eq!(r.ident, 7);
        assert_eq!(r.peer_challenge, &peer_challenge());
        assert_eq!(r.nt_response, &nt_response());
        assert_eq!(
            format!("{r:?}"),
            "MsChap2Response { ident: 7, flags: 0, .. }"
        );
        assert_eq!(
            MsChap2Response::parse(&v[..49]),
            Err(MsChapError::BadLength {
                got: 49,
                expected: 50
            })
        );
        v.push(0);
        assert!(MsChap2Response::parse(&v).is_err());
    }

    #[test]
    fn parses_ms_chap_response() {
        let mut v = vec![3u8, 1];
        v.extend_from_slice(&[0; 24]);
        v.extend_from_slice(&nt_response());
        let r = MsChapResponse::parse(&v).expect("well-formed");
        assert_eq!((r.ident, r.uses_nt_response()), (3, true));
        assert_eq!(r.lm_response, &[0; 24]);
        assert_eq!(r.nt_response, &nt_response());
        assert!(MsChapResponse::parse(&v[..10]).is_err());
    }

    #[test]
    fn parses_challenge() {
        let c8 = [1u8; 8];
        let c16 = [2u8; 16];
        assert_eq!(MsChapChallenge::parse(&c8), Ok(MsChapChallenge::V1(&c8)));
        assert_eq!(MsChapChallenge::parse(&c16), Ok(MsChapChallenge::V2(&c16)));
        assert_eq!(
            MsChapChallenge::parse(&[0; 15]),
            Err(MsChapError::BadChallengeLength(15))
        );
        assert!(MsChapChallenge::parse(&[]).is_err());
    }

    #[test]
    fn success_round_trip() {
        let ph = nt_password_hash(PASSWORD).expect("valid password");
        let digest = authenticator_response(
            &nt_password_hash_hash(&ph),
            &nt_response(),
            &peer_challenge(),
            &auth_challenge(),
            USER,
        );
        let s = MsChap2Success {
            ident: 9,
            authenticator_response: digest,
        };
        let bytes = s.to_bytes();
        assert_eq!(bytes[0], 9);
        assert_eq!(&bytes[1..], b"S=407A5589115FD0D6209F510FE9C04566932CDA56");
        assert_eq!(MsChap2Success::parse(&bytes), Ok(s));
        // Lowercase hex is refused: RFC 2759 §5 makes uppercase a MUST.
        let mut lower = bytes;
        lower[5] = b'a';
        assert_eq!(
            MsChap2Success::parse(&lower),
            Err(MsChapError::BadAuthenticatorString)
        );
        let mut no_prefix = bytes;
        no_prefix[1] = b'X';
        assert!(MsChap2Success::parse(&no_prefix).is_err());
        assert!(MsChap2Success::parse(&bytes[..42]).is_err());
    }

    #[test]
    fn formats_errors() {
        let e = ms_chap2_error(
            5,
            MsChapErrorCode::AuthenticationFailure,
            false,
            &auth_challenge(),
        );
        assert_eq!(e[0], 5);
        assert_eq!(&e[1..], b"E=691 R=0 C=5B5D7C7D7B3F2F3E3C2C602132262628 V=3");
        let parsed = MsChapErrorValue::parse(&e).expect("non-empty");
        assert_eq!(parsed.ident, 5);
        assert_eq!(parsed.error_code(), Some(691));

        let v1 = ms_chap_error_v1(6, MsChapErrorCode::PasswordExpired, true);
        assert_eq!(&v1[..], b"\x06E=648 R=1");
        assert_eq!(MsChapErrorCode::ChangingPassword.code(), 709);

        assert_eq!(MsChapErrorValue::parse(&[]), Err(MsChapError::Empty));
        let odd = MsChapErrorValue::parse(b"\x01E=").expect("non-empty");
        assert_eq!(odd.error_code(), None);
        let huge = MsChapErrorValue::parse(b"\x01E=99999999999 R=0").expect("non-empty");
        assert_eq!(huge.error_code(), None);
        let none = MsChapErrorValue::parse(b"\x01").expect("non-empty");
        assert_eq!(none.error_code(), None);
    }

    #[test]
    fn labels_are_distinct() {
        let all = [
            MsChapError::BadLength {
                got: 0,
                expected: 1,
            },
            MsChapError::BadChallengeLength(0),
            MsChapError::Empty,
            MsChapError::BadAuthenticatorString,
        ];
        let mut labels: Vec<_> = all.iter().map(MsChapError::label).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), all.len());
    }
}
