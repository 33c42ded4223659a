//! Building requests straight into caller buffers. Everything here is prepared once (users,
//! secret key schedules, RNG, MS-CHAP exchanges); building request `n` then only writes bytes and
//! runs the MD5/HMAC the protocol requires. Nothing is allocated per request.

use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};

use super::args::{BenchArgs, Mode};
use super::error::BenchError;
use super::mschap::{MsChap, ReplyCheck};
use super::users::{User, MAX_FIELD};
use crate::proto::{attr, chap_response, Code, PacketBuilder, Secret};

/// Largest request we build (they are all well under 300 octets).
pub const REQUEST_MAX: usize = 512;

const ACCT_DELAY_TIME: u8 = 41;
const ACCT_INPUT_OCTETS: u8 = 42;
const ACCT_OUTPUT_OCTETS: u8 = 43;
const ACCT_SESSION_TIME: u8 = 46;
const ACCT_TERMINATE_CAUSE: u8 = 49;

/// The kinds a run can mix; the index is the position in [`Mix`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Pap = 0,
    Chap = 1,
    Acct = 2,
    Status = 3,
    MsChap = 4,
    MsChapV2 = 5,
}

const NKINDS: usize = 6;
const KINDS: [Kind; NKINDS] = [
    Kind::Pap,
    Kind::Chap,
    Kind::Acct,
    Kind::Status,
    Kind::MsChap,
    Kind::MsChapV2,
];

impl Kind {
    /// Accounting goes to the accounting port; everything else to the authentication port.
    pub fn is_acct(self) -> bool {
        self == Kind::Acct
    }
}

/// Deterministic weighted interleaving (smooth weighted round robin): with weights 80/20 every
/// window of five requests holds four of one and one of the other, so short runs and tests see
/// the configured ratio exactly rather than a random approximation of it.
#[derive(Debug, Clone)]
struct Mix {
    weights: [i64; NKINDS],
    current: [i64; NKINDS],
    total: i64,
}

impl Mix {
    fn single(kind: Kind) -> Mix {
        let mut weights = [0; NKINDS];
        weights[kind as usize] = 1;
        Mix {
            weights,
            current: [0; NKINDS],
            total: 1,
        }
    }

    fn parse(text: &str) -> Result<Mix, BenchError> {
        let mut weights = [0i64; NKINDS];
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let bad = || BenchError::Invalid(format!("--mix {part:?}: expected KIND=WEIGHT"));
            let (k, w) = part.split_once('=').ok_or_else(bad)?;
            let w: i64 = w.trim().parse().map_err(|_| bad())?;
            if !(0..=1_000_000).contains(&w) {
                return Err(bad());
            }
            let i = match k.trim() {
                "pap" => 0,
                "chap" => 1,
                "acct" => 2,
                "status" => 3,
                "mschap" => 4,
                "mschapv2" => 5,
                _ => {
                    return Err(BenchError::Invalid(format!(
                        "--mix: unknown kind {k:?} (pap, chap, acct, status, mschap, mschapv2)"
                    )))
                }
            };
            weights[i] = w;
        }
        let total = weights.iter().sum();
        if total == 0 {
            return Err(BenchError::Invalid("--mix: all weights are zero".into()));
        }
        Ok(Mix {
            weights,
            current: [0; NKINDS],
            total,
        })
    }

    fn next(&mut self) -> Kind {
        let mut best = 0;
        for i in 0..NKINDS {
            self.current[i] += self.weights[i];
            if self.current[i] > self.current[best] {
                best = i;
            }
        }
        self.current[best] -= self.total;
        KINDS[best]
    }

    fn has(&self, kind: Kind) -> bool {
        self.weights[kind as usize] > 0
    }
}

/// What was built: enough to send it, match its reply and judge that reply.
#[derive(Debug, Clone, Copy)]
pub struct Built {
    pub len: usize,
    pub kind: Kind,
    /// The reply code a correct server sends.
    pub expect: Code,
    /// The Request Authenticator the reply must be signed with.
    pub authenticator: [u8; 16],
    /// What an Access-Accept must carry besides (MS-CHAP2-Success for v2).
    pub check: ReplyCheck,
}

pub struct RequestFactory {
    secret: Secret,
    users: Vec<User>,
    mix: Mix,
    wrong_fraction: f64,
    message_authenticator: bool,
    rng: StdRng,
    /// Password hashes and precomputed exchanges, when the run sends MS-CHAP.
    mschap: Option<MsChap>,
    /// Access-Requests built so far (selects the user and whether the password is wrong).
    access_seq: u64,
    /// Accounting-Requests built so far (selects session and status type).
    acct_seq: u64,
    nas_ip: [u8; 4],
}

impl RequestFactory {
    pub fn new(args: &BenchArgs, users: Vec<User>) -> Result<RequestFactory, BenchError> {
        if !(0.0..=1.0).contains(&args.wrong_password) {
            return Err(BenchError::Invalid(
                "--wrong-password must be between 0 and 1".into(),
            ));
        }
        if users.is_empty() {
            return Err(BenchError::Invalid("no users".into()));
        }
        let mix = match args.mode {
            Mode::Pap => Mix::single(Kind::Pap),
            Mode::Chap => Mix::single(Kind::Chap),
            Mode::Acct => Mix::single(Kind::Acct),
            Mode::Status => Mix::single(Kind::Status),
            Mode::Mschap => Mix::single(Kind::MsChap),
            Mode::Mschapv2 => Mix::single(Kind::MsChapV2),
            Mode::Mixed => Mix::parse(&args.mix)?,
            // Conversations, not single requests: `bench::eap` builds those.
            Mode::EapTls | Mode::Peap | Mode::TtlsPap => {
                return Err(BenchError::Invalid(
                    "EAP modes are run by bench::eap".into(),
                ))
            }
        };
        // Request Authenticators only need to be unpredictable to an attacker; a CSPRNG
        // seeded once from the OS is both that and cheap (ChaCha, ~1 ns/byte).
        let mut rng = StdRng::from_entropy();
        let (v1, v2) = (mix.has(Kind::MsChap), mix.has(Kind::MsChapV2));
        let mschap = if v1 || v2 {
            Some(MsChap::new(&users, args.mschap_pool, v1, v2, &mut rng)?)
        } else {
            None
        };
        let nas_ip = match args.server.ip() {
            std::net::IpAddr::V4(v4) => v4.octets(),
            std::net::IpAddr::V6(_) => [127, 0, 0, 1],
        };
        Ok(RequestFactory {
            secret: Secret::new(args.secret.as_bytes())?,
            users,
            mix,
            wrong_fraction: args.wrong_password,
            message_authenticator: !args.no_message_authenticator,
            rng,
            mschap,
            access_seq: 0,
            acct_seq: 0,
            nas_ip,
        })
    }

    pub fn secret(&self) -> &Secret {
        &self.secret
    }

    pub fn sends_auth(&self) -> bool {
        [
            Kind::Pap,
            Kind::Chap,
            Kind::Status,
            Kind::MsChap,
            Kind::MsChapV2,
        ]
        .iter()
        .any(|k| self.mix.has(*k))
    }

    pub fn sends_acct(&self) -> bool {
        self.mix.has(Kind::Acct)
    }

    /// Whether Access-Request number `n` gets a wrong password. Spreads exactly
    /// `floor(n * fraction)` wrong ones over the first `n`, evenly.
    fn wrong(&self, n: u64) -> bool {
        let f = self.wrong_fraction;
        ((n + 1) as f64 * f).floor() > (n as f64 * f).floor()
    }

    /// Builds the next request with `identifier` into `buf`.
    pub fn build(&mut self, identifier: u8, buf: &mut [u8]) -> Result<Built, BenchError> {
        let kind = self.mix.next();
        let mut ra = [0u8; 16];
        if kind != Kind::Acct {
            self.rng.fill_bytes(&mut ra);
        }
        let (len, expect, check) = match kind {
            Kind::Pap | Kind::Chap | Kind::MsChap | Kind::MsChapV2 => {
                self.access(kind, identifier, &ra, buf)?
            }
            Kind::Acct => {
                let (len, expect) = self.accounting(identifier, buf)?;
                (len, expect, ReplyCheck::None)
            }
            Kind::Status => {
                let b = PacketBuilder::request(buf, Code::StatusServer, identifier, &ra)?;
                (
                    b.finish(&self.secret)?.len(),
                    Code::AccessAccept,
                    ReplyCheck::None,
                )
            }
        };
        // For accounting the authenticator is the MD5 `finish` just wrote into the header.
        if let Some(field) = buf.get(4..20) {
            ra.copy_from_slice(field);
        }
        Ok(Built {
            len,
            kind,
            expect,
            authenticator: ra,
            check,
        })
    }

    fn access(
        &mut self,
        kind: Kind,
        identifier: u8,
        ra: &[u8; 16],
        buf: &mut [u8],
    ) -> Result<(usize, Code, ReplyCheck), BenchError> {
        let n = self.access_seq;
        self.access_seq += 1;
        let wrong = self.wrong(n);
        let nusers = self.users.len() as u64;
        let ui = (n % nusers) as usize;
        let user = &self.users[ui];
        // A wrong password is the right one with its last octet flipped: same length, never equal.
        let mut pw = [0u8; MAX_FIELD];
        let plen = user.password.len().min(MAX_FIELD);
        pw[..plen].copy_from_slice(&user.password[..plen]);
        if wrong && plen > 0 {
            pw[plen - 1] ^= 0x01;
        }
        let password = &pw[..plen];

        let mut b = PacketBuilder::request(buf, Code::AccessRequest, identifier, ra)?;
        // First, as BlastRADIUS guidance asks of clients too.
        if self.message_authenticator {
            b.message_authenticator()?;
        }
        b.attr(attr::USER_NAME, &user.name)?;
        let mut check = ReplyCheck::None;
        match (kind, &self.mschap) {
            (Kind::Chap, _) => {
                let mut chap = [0u8; 17];
                chap[0] = identifier;
                chap[1..].copy_from_slice(&chap_response(identifier, password, ra));
                b.attr(attr::CHAP_PASSWORD, &chap)?;
            }
            // The PPP Ident is the RADIUS identifier: it changes per request, as a peer's does,
            // and the NT-Response does not depend on it, so pooled exchanges stay valid.
            (Kind::MsChapV2, Some(m)) => {
                check = m.write_v2(
                    &mut b,
                    ui,
                    &user.name,
                    n / nusers,
                    identifier,
                    wrong,
                    &mut self.rng,
                )?;
            }
            (Kind::MsChap, Some(m)) => {
                check = m.write_v1(&mut b, ui, n / nusers, identifier, wrong, &mut self.rng)?;
            }
            (Kind::MsChap | Kind::MsChapV2, None) => {
                // `new` builds the MS-CHAP state whenever the mix has either kind.
                return Err(BenchError::Invalid("MS-CHAP state missing".into()));
            }
            _ => b.user_password(&self.secret, password)?,
        }
        b.attr(attr::NAS_IP_ADDRESS, &self.nas_ip)?;
        b.attr(attr::NAS_PORT, &((n % 65536) as u32).to_be_bytes())?;
        let len = b.finish(&self.secret)?.len();
        let expect = if wrong {
            Code::AccessReject
        } else {
            Code::AccessAccept
        };
        Ok((len, expect, check))
    }

    fn accounting(&mut self, identifier: u8, buf: &mut [u8]) -> Result<(usize, Code), BenchError> {
        let n = self.acct_seq;
        self.acct_seq += 1;
        // Each session is Start, Interim-Update, Stop, in that order.
        let session = n / 3;
        let status: u32 = match n % 3 {
            0 => 1,
            1 => 3,
            _ => 2,
        };
        let user = &self.users[(session % self.users.len() as u64) as usize];
        let mut sid = [0u8; 16];
        hex16(session, &mut sid);

        let mut b = PacketBuilder::request(buf, Code::AccountingRequest, identifier, &[0; 16])?;
        b.attr(attr::ACCT_STATUS_TYPE, &status.to_be_bytes())?;
        b.attr(attr::ACCT_SESSION_ID, &sid)?;
        b.attr(attr::USER_NAME, &user.name)?;
        b.attr(attr::NAS_IP_ADDRESS, &self.nas_ip)?;
        b.attr(attr::NAS_PORT, &((session % 65536) as u32).to_be_bytes())?;
        let ip = (session as u32 & 0x00ff_ffff) | 0x0a00_0000;
        b.attr(attr::FRAMED_IP_ADDRESS, &ip.to_be_bytes())?;
        b.attr(ACCT_DELAY_TIME, &0u32.to_be_bytes())?;
        if status != 1 {
            b.attr(ACCT_SESSION_TIME, &60u32.to_be_bytes())?;
            b.attr(ACCT_INPUT_OCTETS, &((n as u32) << 10).to_be_bytes())?;
            b.attr(ACCT_OUTPUT_OCTETS, &((n as u32) << 12).to_be_bytes())?;
        }
        if status == 2 {
            b.attr(ACCT_TERMINATE_CAUSE, &1u32.to_be_bytes())?;
        }
        let len = b.finish(&self.secret)?.len();
        Ok((len, Code::AccountingResponse))
    }
}

/// Lower-case hex of `v`, 16 digits, without formatting machinery (no allocation).
fn hex16(v: u64, out: &mut [u8; 16]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, o) in out.iter_mut().enumerate() {
        *o = DIGITS[((v >> (60 - 4 * i)) & 0xf) as usize];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_is_exact() {
        let mut m = Mix::parse("pap=3,acct=1").expect("valid");
        let kinds: Vec<Kind> = (0..8).map(|_| m.next()).collect();
        assert_eq!(kinds.iter().filter(|k| **k == Kind::Acct).count(), 2);
        assert!(Mix::parse("bogus=1").is_err());
        assert!(Mix::parse("pap=0").is_err());
    }

    #[test]
    fn hex() {
        let mut b = [0u8; 16];
        hex16(0xabc, &mut b);
        assert_eq!(&b, b"0000000000000abc");
    }
}
