//! CHAP (RFC 1994 via RFC 2865 §5.3): response = MD5(ident + password + challenge).

use md5::{Digest, Md5};
use subtle::ConstantTimeEq;

/// Computes the CHAP response a peer with `password` would send.
pub fn chap_response(ident: u8, password: &[u8], challenge: &[u8]) -> [u8; 16] {
    let mut h = Md5::new();
    h.update([ident]);
    h.update(password);
    h.update(challenge);
    h.finalize().into()
}

/// Checks a CHAP response in constant time.
pub fn chap_verify(ident: u8, password: &[u8], challenge: &[u8], response: &[u8; 16]) -> bool {
    bool::from(chap_response(ident, password, challenge).ct_eq(response))
}
