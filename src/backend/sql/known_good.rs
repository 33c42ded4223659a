//! The "known good" passwords of the control list and their checks, as FreeRADIUS 3.2's
//! rlm_pap accepts them: Cleartext-Password, NT-Password, Crypt-Password (`$1$` MD5-crypt,
//! `$5$`/`$6$` SHA-crypt, `$2a$`/`$2b$`/`$2y$` bcrypt), MD5-Password, SMD5-Password,
//! SHA-Password, SSHA-Password, SHA2-Password (the digest length picks SHA-224/256/384/512),
//! SSHA2-224/256/384/512-Password, and Password-With-Header (`{ssha}…`, `{md5}…`, …, itself
//! possibly base64), normalised from hex or base64 as rlm_pap's `normalise = yes` does.
//! Not supported (a login against them is rejected, never accepted): DES and yescrypt
//! crypt, LM-Password, NS-MTA-MD5-Password, PBKDF2.

use md5::{Digest, Md5};
use sha1::Sha1;
use subtle::ConstantTimeEq;

use super::items::{Attr, Item, Server};

/// A known-good password, decoded. Its `Debug` shows only the kind; dropped, it is wiped.
#[derive(Clone, PartialEq, Eq)]
pub enum KnownGood {
    Cleartext(Vec<u8>),
    Nt(Vec<u8>),
    Crypt(Vec<u8>),
    Md5(Vec<u8>),
    Smd5(Vec<u8>),
    Sha1(Vec<u8>),
    Ssha1(Vec<u8>),
    Sha2(Vec<u8>),
    /// Salted SHA-2 with this digest length (28, 32, 48, 64).
    Ssha2(usize, Vec<u8>),
    /// A form radshard does not check (LM, NS-MTA-MD5, PBKDF2).
    Unsupported(&'static str),
}

impl std::fmt::Debug for KnownGood {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KnownGood({}, <redacted>)", self.kind())
    }
}

impl Drop for KnownGood {
    fn drop(&mut self) {
        if let Some(v) = self.bytes_mut() {
            crate::proto::wipe(v);
        }
    }
}

/// Why a known-good password cannot be checked (rlm_pap's `invalid`: the login is rejected).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unusable(pub &'static str);

impl KnownGood {
    pub fn kind(&self) -> &'static str {
        match self {
            KnownGood::Cleartext(_) => "Cleartext-Password",
            KnownGood::Nt(_) => "NT-Password",
            KnownGood::Crypt(_) => "Crypt-Password",
            KnownGood::Md5(_) => "MD5-Password",
            KnownGood::Smd5(_) => "SMD5-Password",
            KnownGood::Sha1(_) => "SHA-Password",
            KnownGood::Ssha1(_) => "SSHA-Password",
            KnownGood::Sha2(_) => "SHA2-Password",
            KnownGood::Ssha2(..) => "SSHA2-Password",
            KnownGood::Unsupported(k) => k,
        }
    }

    fn bytes_mut(&mut self) -> Option<&mut Vec<u8>> {
        match self {
            KnownGood::Cleartext(v)
            | KnownGood::Nt(v)
            | KnownGood::Crypt(v)
            | KnownGood::Md5(v)
            | KnownGood::Smd5(v)
            | KnownGood::Sha1(v)
            | KnownGood::Ssha1(v)
            | KnownGood::Sha2(v)
            | KnownGood::Ssha2(_, v) => Some(v),
            KnownGood::Unsupported(_) => None,
        }
    }

    /// The control item's password, normalised as rlm_pap does; `None` for an item that is
    /// not a password.
    pub fn from_item(item: &Item) -> Option<KnownGood> {
        let Attr::Server(s) = item.attr else {
            return None;
        };
        let v = &item.value;
        Some(match s {
            Server::CleartextPassword => KnownGood::Cleartext(v.clone()),
            Server::CryptPassword => KnownGood::Crypt(v.clone()),
            Server::NtPassword => KnownGood::Nt(normify(v, 16)),
            Server::Md5Password => KnownGood::Md5(normify(v, 16)),
            Server::Smd5Password => KnownGood::Smd5(normify(v, 16)),
            Server::ShaPassword => KnownGood::Sha1(normify(v, 20)),
            Server::SshaPassword => KnownGood::Ssha1(normify(v, 20)),
            Server::Sha2Password => KnownGood::Sha2(normify(v, 28)),
            Server::Ssha2_224Password => KnownGood::Ssha2(28, normify(v, 29)),
            Server::Ssha2_256Password => KnownGood::Ssha2(32, normify(v, 33)),
            Server::Ssha2_384Password => KnownGood::Ssha2(48, normify(v, 49)),
            Server::Ssha2_512Password => KnownGood::Ssha2(64, normify(v, 65)),
            Server::LmPassword => KnownGood::Unsupported("LM-Password"),
            Server::NsMtaMd5Password => KnownGood::Unsupported("NS-MTA-MD5-Password"),
            Server::Pbkdf2Password => KnownGood::Unsupported("PBKDF2-Password"),
            _ => return None,
        })
    }

    /// Crypt: milliseconds per check (bcrypt, SHA-crypt's rounds), so off the shard.
    pub fn is_slow(&self) -> bool {
        matches!(self, KnownGood::Crypt(_))
    }

    /// The cleartext, which CHAP needs.
    pub fn cleartext(&self) -> Option<&[u8]> {
        match self {
            KnownGood::Cleartext(p) => Some(p),
            _ => None,
        }
    }

    /// PAP: whether `password` is this one. Digests are compared in constant time.
    pub fn verify(&self, password: &[u8]) -> Result<bool, Unusable> {
        let eq = |a: &[u8], b: &[u8]| bool::from(a.ct_eq(b));
        match self {
            KnownGood::Cleartext(p) => Ok(eq(p, password)),
            KnownGood::Nt(h) => {
                let h = nt_hash_of(h)?;
                let mine = crate::auth::mschap::NtHash::of_password(password)
                    .ok_or(Unusable("User-Password is not UTF-8"))?;
                Ok(eq(&mine.0, &h))
            }
            KnownGood::Crypt(h) => crypt_check(password, h),
            KnownGood::Md5(h) if h.len() == 16 => Ok(eq(&Md5::digest(password), h)),
            KnownGood::Smd5(h) if h.len() > 16 => {
                let d = Md5::new()
                    .chain_update(password)
                    .chain_update(&h[16..])
                    .finalize();
                Ok(eq(&d, &h[..16]))
            }
            KnownGood::Sha1(h) if h.len() == 20 => Ok(eq(&Sha1::digest(password), h)),
            KnownGood::Ssha1(h) if h.len() > 20 => {
                let d = Sha1::new()
                    .chain_update(password)
                    .chain_update(&h[20..])
                    .finalize();
                Ok(eq(&d, &h[..20]))
            }
            KnownGood::Sha2(h) => {
                let d = sha2_digest(h.len(), password, &[])?;
                Ok(eq(&d, h))
            }
            KnownGood::Ssha2(n, h) if h.len() > *n => {
                let d = sha2_digest(*n, password, &h[*n..])?;
                Ok(eq(&d, &h[..*n]))
            }
            KnownGood::Unsupported(k) => Err(Unusable(k)),
            _ => Err(Unusable("known-good password has the wrong length")),
        }
    }
}

/// An NT-Password as rlm_mschap takes it: 16 octets (after normalisation).
pub fn nt_hash_of(h: &[u8]) -> Result<[u8; 16], Unusable> {
    h.try_into()
        .map_err(|_| Unusable("NT-Password is not 16 octets"))
}

fn sha2_digest(len: usize, password: &[u8], salt: &[u8]) -> Result<Vec<u8>, Unusable> {
    fn run<D: Digest>(p: &[u8], s: &[u8]) -> Vec<u8> {
        D::new().chain_update(p).chain_update(s).finalize().to_vec()
    }
    Ok(match len {
        28 => run::<sha2::Sha224>(password, salt),
        32 => run::<sha2::Sha256>(password, salt),
        48 => run::<sha2::Sha384>(password, salt),
        64 => run::<sha2::Sha512>(password, salt),
        _ => return Err(Unusable("SHA2-Password digest length matches no SHA-2")),
    })
}

/// rlm_pap's `normify`: hex (even length, at least twice `min`), else base64 decoding to at
/// least `min` octets, else the value as it is. Both decodings are bounded to 256 octets as
/// in FreeRADIUS.
pub fn normify(v: &[u8], min: usize) -> Vec<u8> {
    const MAX: usize = 256;
    if v.len() % 2 == 0 && v.len() >= 2 * min && v.len() / 2 <= MAX {
        if let Ok(d) = data_encoding::HEXLOWER_PERMISSIVE.decode(v) {
            return d;
        }
    }
    if v.len() * 3 >= min * 4 {
        let decoded = data_encoding::BASE64
            .decode(v)
            .or_else(|_| data_encoding::BASE64_NOPAD.decode(v));
        if let Ok(d) = decoded {
            if d.len() >= min && d.len() <= MAX {
                return d;
            }
        }
    }
    v.to_vec()
}

/// `crypt(3)` of the schemes radshard implements: the password hashed with the stored
/// hash's salt equals it.
fn crypt_check(password: &[u8], hash: &[u8]) -> Result<bool, Unusable> {
    let (Ok(pw), Ok(h)) = (std::str::from_utf8(password), std::str::from_utf8(hash)) else {
        return Ok(false);
    };
    if too_costly(h) {
        return Err(Unusable("Crypt-Password cost above radshard's bound"));
    }
    if let Some(rest) = h.strip_prefix("$1$") {
        let computed = md5_crypt(password, rest.as_bytes());
        return Ok(bool::from(computed.as_bytes().ct_eq(hash)));
    }
    if h.starts_with("$5$") {
        return Ok(sha_crypt::sha256_check(pw, h).is_ok());
    }
    if h.starts_with("$6$") {
        return Ok(sha_crypt::sha512_check(pw, h).is_ok());
    }
    if ["$2a$", "$2b$", "$2y$"].iter().any(|p| h.starts_with(p)) {
        return Ok(bcrypt::verify(password, h).unwrap_or(false));
    }
    Err(Unusable(
        "Crypt-Password scheme not supported (DES, yescrypt, …)",
    ))
}

/// Whether a hash asks for more work than a blocking thread should spend on one login
/// (the database is trusted for passwords, not for CPU): bcrypt cost above 15, SHA-crypt
/// above 1,000,000 rounds.
fn too_costly(h: &str) -> bool {
    if ["$2a$", "$2b$", "$2y$"].iter().any(|p| h.starts_with(p)) {
        return h
            .get(4..6)
            .and_then(|c| c.parse::<u32>().ok())
            .map_or(true, |c| c > 15);
    }
    match h.get(3..).and_then(|r| r.strip_prefix("rounds=")) {
        Some(r) if h.starts_with("$5$") || h.starts_with("$6$") => {
            let digits: String = r.chars().take_while(char::is_ascii_digit).collect();
            digits.parse::<u64>().map_or(true, |n| n > 1_000_000)
        }
        _ => false,
    }
}

/// Poul-Henning Kamp's MD5-crypt (`$1$salt$hash`), as glibc's `crypt` computes it: `salt`
/// is what follows `$1$` (up to 8 characters before the next `$`).
fn md5_crypt(pw: &[u8], salt: &[u8]) -> String {
    const ITOA64: &[u8] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let end = salt.iter().position(|&b| b == b'$').unwrap_or(salt.len());
    let salt = &salt[..end.min(8)];
    let alt = Md5::new()
        .chain_update(pw)
        .chain_update(salt)
        .chain_update(pw)
        .finalize();
    let mut ctx = Md5::new()
        .chain_update(pw)
        .chain_update(b"$1$")
        .chain_update(salt);
    let mut left = pw.len();
    while left > 0 {
        ctx.update(&alt[..left.min(16)]);
        left = left.saturating_sub(16);
    }
    let mut i = pw.len();
    while i > 0 {
        ctx.update(if i & 1 == 1 { &[0u8][..] } else { &pw[..1] });
        i >>= 1;
    }
    let mut fin = ctx.finalize();
    for i in 0..1000 {
        let mut c = Md5::new();
        if i & 1 == 1 {
            c.update(pw)
        } else {
            c.update(fin)
        }
        if i % 3 != 0 {
            c.update(salt);
        }
        if i % 7 != 0 {
            c.update(pw);
        }
        if i & 1 == 1 {
            c.update(fin)
        } else {
            c.update(pw)
        }
        fin = c.finalize();
    }
    let mut out = String::with_capacity(3 + salt.len() + 1 + 22);
    out.push_str("$1$");
    out.push_str(&String::from_utf8_lossy(salt));
    out.push('$');
    let mut to64 = |v: u32, n: usize| {
        let mut v = v;
        for _ in 0..n {
            out.push(char::from(ITOA64[(v & 0x3f) as usize]));
            v >>= 6;
        }
    };
    let f = |i: usize| u32::from(fin[i]);
    for (a, b, c) in [(0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)] {
        to64(f(a) << 16 | f(b) << 8 | f(c), 4);
    }
    to64(f(11), 2);
    out
}

/// Password-With-Header made into the password it names, as rlm_pap's authorize does
/// (`{ssha}…` → SSHA-Password, an unknown or missing header → Cleartext-Password, a value
/// that is base64 of a headed one decoded first). `None` for a header radshard recognises
/// but cannot check.
pub fn with_header(value: &[u8]) -> Item {
    let item = |s: Server, v: &[u8]| Item {
        attr: Attr::Server(s),
        op: super::rows::Op::Eq,
        text: String::from_utf8_lossy(v).into_owned(),
        value: v.to_vec(),
    };
    let headed = |v: &[u8]| -> Option<(Server, usize)> {
        let close = v.iter().position(|&b| b == b'}')?;
        let header = std::str::from_utf8(&v[..=close]).ok()?.to_ascii_lowercase();
        HEADERS
            .iter()
            .find(|(h, _)| *h == header)
            .map(|&(_, s)| (s, close + 1))
    };
    if value.contains(&b'}') {
        return match headed(value) {
            Some((s, at)) => item(s, &value[at..]),
            None => item(Server::CleartextPassword, value),
        };
    }
    let decoded = data_encoding::BASE64
        .decode(value)
        .or_else(|_| data_encoding::BASE64_NOPAD.decode(value));
    match decoded {
        Ok(d) if d.first() == Some(&b'{') && d.contains(&b'}') && d.len() <= 256 => {
            match headed(&d) {
                Some((s, at)) => item(s, &d[at..]),
                None => item(Server::CleartextPassword, &d),
            }
        }
        _ => item(Server::CleartextPassword, value),
    }
}

/// rlm_pap's `header_names` (compared case-insensitively).
const HEADERS: &[(&str, Server)] = &[
    ("{clear}", Server::CleartextPassword),
    ("{cleartext}", Server::CleartextPassword),
    ("{md5}", Server::Md5Password),
    ("{base64_md5}", Server::Md5Password),
    ("{smd5}", Server::Smd5Password),
    ("{crypt}", Server::CryptPassword),
    ("{sha2}", Server::Sha2Password),
    ("{sha224}", Server::Sha2Password),
    ("{sha256}", Server::Sha2Password),
    ("{sha384}", Server::Sha2Password),
    ("{sha512}", Server::Sha2Password),
    ("{ssha224}", Server::Ssha2_224Password),
    ("{ssha256}", Server::Ssha2_256Password),
    ("{ssha384}", Server::Ssha2_384Password),
    ("{ssha512}", Server::Ssha2_512Password),
    ("{x-pbkdf2}", Server::Pbkdf2Password),
    ("{pbkdf2-sha1}", Server::Pbkdf2Password),
    ("{pbkdf2-sha256}", Server::Pbkdf2Password),
    ("{pbkdf2-sha512}", Server::Pbkdf2Password),
    ("{pbkdf2_sha256}", Server::Pbkdf2Password),
    ("{sha}", Server::ShaPassword),
    ("{ssha}", Server::SshaPassword),
    ("{md4}", Server::NtPassword),
    ("{nt}", Server::NtPassword),
    ("{nthash}", Server::NtPassword),
    ("{x-nthash}", Server::NtPassword),
    ("{ns-mta-md5}", Server::NsMtaMd5Password),
    ("{x- orcllmv}", Server::LmPassword),
    ("{x- orclntv}", Server::NtPassword),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn kg(s: Server, v: &str) -> KnownGood {
        KnownGood::from_item(&Item {
            attr: Attr::Server(s),
            op: super::super::rows::Op::Set,
            text: v.into(),
            value: v.as_bytes().to_vec(),
        })
        .unwrap()
    }

    #[test]
    fn md5_crypt_matches_openssl() {
        // openssl passwd -1 -salt saltsalt password
        assert_eq!(
            md5_crypt(b"password", b"saltsalt"),
            "$1$saltsalt$qjXMvbEw8oaL.CzflDtaK/"
        );
        // openssl passwd -1 -salt ab 'pässwörd'
        assert_eq!(
            md5_crypt("pässwörd".as_bytes(), b"ab$whatever"),
            "$1$ab$bRZzLnQPD1ql12pSoshc71"
        );
    }

    #[test]
    fn every_supported_form_verifies() {
        use Server as S;
        let cases = [
            (S::CleartextPassword, "alice-pw".to_string()),
            (
                S::CryptPassword,
                "$1$saltsalt$qjXMvbEw8oaL.CzflDtaK/".into(),
            ),
            (
                S::CryptPassword,
                "$5$saltsalt$gOjOtoMpVhru2uyjeJSEc/JaLQWOXMNmlOnj6T4AtC.".into(),
            ),
            (S::Md5Password, "X4B+GBOVe9Irc1/dE0mpYQ==".into()),
            (
                S::ShaPassword,
                "83660360706197d47f75daad19ea7e8a900ee1a5".into(),
            ),
            (
                S::NtPassword,
                data_encoding::HEXUPPER.encode(
                    &crate::auth::mschap::NtHash::of_password(b"alice-pw")
                        .unwrap()
                        .0,
                ),
            ),
        ];
        for (s, v) in cases {
            let pw = if s == S::CryptPassword {
                "password"
            } else {
                "alice-pw"
            };
            let k = kg(s, &v);
            assert_eq!(k.verify(pw.as_bytes()), Ok(true), "{s:?}");
            assert_eq!(k.verify(b"wrong"), Ok(false), "{s:?}");
        }
        // Salted forms, made here: digest || salt, base64.
        let salt = b"NaCl";
        let ssha = [
            Sha1::new()
                .chain_update(b"pw")
                .chain_update(salt)
                .finalize()
                .to_vec(),
            salt.to_vec(),
        ]
        .concat();
        let k = kg(S::SshaPassword, &data_encoding::BASE64.encode(&ssha));
        assert_eq!(k.verify(b"pw"), Ok(true));
        let s256 = [
            sha2::Sha256::digest([&b"pw"[..], salt].concat()).to_vec(),
            salt.to_vec(),
        ]
        .concat();
        let k = kg(S::Ssha2_256Password, &data_encoding::HEXLOWER.encode(&s256));
        assert_eq!(k.verify(b"pw"), Ok(true));
        assert_eq!(k.verify(b"pW"), Ok(false));
        let k = kg(
            S::Sha2Password,
            &data_encoding::HEXLOWER.encode(&sha2::Sha384::digest(b"pw")),
        );
        assert_eq!(k.verify(b"pw"), Ok(true));
    }

    #[test]
    fn unusable_forms_are_errors_not_accepts() {
        assert!(kg(Server::CryptPassword, "abJnggxhB/yWI")
            .verify(b"x")
            .is_err());
        assert!(kg(Server::Md5Password, "short").verify(b"x").is_err());
        assert!(kg(Server::LmPassword, "00").verify(b"x").is_err());
        assert_eq!(kg(Server::CryptPassword, "$6$bad").verify(b"x"), Ok(false));
        assert!(kg(
            Server::CryptPassword,
            "$2b$31$abcdefghijklmnopqrstuuAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
        )
        .verify(b"x")
        .is_err());
        assert!(kg(Server::CryptPassword, "$6$rounds=999999999$salt$x")
            .verify(b"x")
            .is_err());
    }

    #[test]
    fn headers_name_the_form() {
        let h = with_header(b"{SSHA}abc");
        assert_eq!(h.attr, Attr::Server(Server::SshaPassword));
        assert_eq!(h.value, b"abc");
        let h = with_header(b"{unknown}abc");
        assert_eq!(h.attr, Attr::Server(Server::CleartextPassword));
        assert_eq!(h.value, b"{unknown}abc");
        let h = with_header(data_encoding::BASE64.encode(b"{clear}pw").as_bytes());
        assert_eq!(h.attr, Attr::Server(Server::CleartextPassword));
        assert_eq!(h.value, b"pw");
        assert_eq!(with_header(b"plain").value, b"plain");
        assert!(!format!("{:?}", kg(Server::CleartextPassword, "hunter2")).contains("hunter2"));
    }
}
