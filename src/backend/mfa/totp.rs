//! Built-in TOTP (RFC 6238): HMAC-SHA-1, 30-second steps, 6 digits, one step of clock skew
//! either way. Reuse of a code is refused by the caller remembering the last step accepted.

use hmac::{Hmac, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;

pub const STEP_SECONDS: u64 = 30;
pub const DIGITS: u32 = 6;
/// Steps accepted either side of the current one.
pub const WINDOW: u64 = 1;

/// A decoded shared secret; never shown in Debug output.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpSecret(Vec<u8>);

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret(<redacted>)")
    }
}

impl TotpSecret {
    /// From RFC 4648 base32 (case-insensitive, spaces and padding ignored), as authenticator
    /// apps show it. At least 80 bits (RFC 4226 §4 asks for 128, recommends 160).
    pub fn from_base32(text: &str) -> Result<TotpSecret, String> {
        let cleaned: String = text
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '=')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let spec = {
            let mut s = data_encoding::Specification::new();
            s.symbols.push_str("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567");
            s.check_trailing_bits = false;
            s.encoding().map_err(|e| e.to_string())?
        };
        let bytes = spec
            .decode(cleaned.as_bytes())
            .map_err(|_| "totp_secret is not valid base32".to_string())?;
        if bytes.len() < 10 {
            return Err("totp_secret is shorter than 80 bits".into());
        }
        Ok(TotpSecret(bytes))
    }

    pub fn from_bytes(bytes: Vec<u8>) -> TotpSecret {
        TotpSecret(bytes)
    }

    /// The code for time step `step` (RFC 4226 HOTP with counter = step).
    pub fn code_at_step(&self, step: u64, digits: u32) -> u32 {
        let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(&self.0).expect("any key length");
        mac.update(&step.to_be_bytes());
        let h = mac.finalize().into_bytes();
        let off = usize::from(h[19] & 0x0f);
        let bin = u32::from_be_bytes([h[off] & 0x7f, h[off + 1], h[off + 2], h[off + 3]]);
        bin % 10u32.pow(digits)
    }

    /// The step of `code` within ±[`WINDOW`] steps of `unix`, if it matches one; every
    /// candidate is computed and compared (no early exit on the digits).
    pub fn matching_step(&self, code: &[u8], unix: u64) -> Option<u64> {
        if code.len() != DIGITS as usize || !code.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let now = unix / STEP_SECONDS;
        let mut found = None;
        for step in now.saturating_sub(WINDOW)..=now + WINDOW {
            let want = format!(
                "{:0width$}",
                self.code_at_step(step, DIGITS),
                width = DIGITS as usize
            );
            if bool::from(want.as_bytes().ct_eq(code)) && found.is_none() {
                found = Some(step);
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA-1 column (8 digits), seed "12345678901234567890".
    #[test]
    fn rfc6238_vectors() {
        let s = TotpSecret::from_bytes(b"12345678901234567890".to_vec());
        for (t, want) in [
            (59u64, 94287082u32),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
            (20000000000, 65353130),
        ] {
            assert_eq!(s.code_at_step(t / STEP_SECONDS, 8), want, "T = {t}");
        }
    }

    #[test]
    fn base32_matches_raw() {
        // "12345678901234567890" in base32.
        let s = TotpSecret::from_base32("gezd gnbv gy3t qojq gezd gnbv gy3t qojq").expect("valid");
        assert_eq!(s, TotpSecret::from_bytes(b"12345678901234567890".to_vec()));
        assert!(TotpSecret::from_base32("not base32!").is_err());
        assert!(TotpSecret::from_base32("GEZDGNBV").is_err(), "too short");
    }

    #[test]
    fn window_of_one_step() {
        let s = TotpSecret::from_bytes(b"12345678901234567890".to_vec());
        let t = 1111111111u64;
        let step = t / STEP_SECONDS;
        let code = |st: u64| format!("{:06}", s.code_at_step(st, 6));
        assert_eq!(s.matching_step(code(step).as_bytes(), t), Some(step));
        assert_eq!(
            s.matching_step(code(step - 1).as_bytes(), t),
            Some(step - 1)
        );
        assert_eq!(
            s.matching_step(code(step + 1).as_bytes(), t),
            Some(step + 1)
        );
        assert_eq!(s.matching_step(code(step - 2).as_bytes(), t), None);
        assert_eq!(s.matching_step(code(step + 2).as_bytes(), t), None);
        assert_eq!(s.matching_step(b"12345", t), None);
        assert_eq!(s.matching_step(b"12345a", t), None);
    }
}
