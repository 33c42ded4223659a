//! What EAP decides with, built from `[eap]`: the settings, the TLS configurations (shared by
//! every handshake worker, so TLS sessions and tickets resume on any shard), the cache of
//! what resumable sessions were authorized for, and the counters.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::config::EapConfig;
use crate::auth::second_factor::Pending;
use crate::cfg::ConfigError;
use crate::metrics::EapMetrics;
use crate::tls::ServerTls;

/// `[eap]`, ready to serve.
pub struct EapService {
    pub config: EapConfig,
    pub tls: ServerTls,
    /// Who each resumable session's login authorized, by the session's resumption token.
    pub authorized: Arc<Authorizations>,
    pub metrics: &'static EapMetrics,
}

impl std::fmt::Debug for EapService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EapService")
            .field("methods", &self.config.methods)
            .finish_non_exhaustive()
    }
}

impl EapService {
    /// Loads the certificates and keys; a failure names the `[eap.tls]` line.
    pub fn build(config: &EapConfig) -> Result<EapService, ConfigError> {
        Ok(EapService {
            tls: config.server_tls()?,
            authorized: Arc::new(Authorizations::new(config.tls.session_cache)),
            config: config.clone(),
            metrics: crate::metrics::eap(),
        })
    }
}

impl EapService {
    /// A reload: this service, freshly built, takes over `old`'s resumption state (its TLS
    /// session caches, ticket keys and authorizations) when the resumption settings are the
    /// same, so sessions made before the reload still resume (a reload for a renewed
    /// certificate or a new user does not turn every reconnect into a full handshake).
    /// Returns whether it did.
    pub fn continue_from(&mut self, old: &EapService) -> bool {
        let (new, was) = (&self.config.tls, &old.config.tls);
        let same = new.resumption
            && was.resumption
            && new.session_cache == was.session_cache
            && new.session_lifetime == was.session_lifetime;
        if !same {
            return false;
        }
        let carried = self.tls.carry_resumption(&old.tls);
        if carried {
            self.authorized = old.authorized.clone();
        }
        carried
    }
}

/// Length of a resumption token: random, kept by rustls with the session.
pub const TOKEN_LEN: usize = 16;

/// What a login inside a TLS session authorized, kept for as long as the session may be
/// resumed: a resumption skips the inner login only when this says it succeeded.
///
/// Bound: `capacity` entries (the TLS session cache's size); when full, the oldest entry goes
/// (first in, first out: a session resumed since was filed again under its own token, so what
/// goes is the least recently authorized), and a resumption of its session runs the inner
/// login again (PEAP) or fails (TTLS, whose peer skips it; EAP-TLS re-reads the certificate).
pub struct Authorizations {
    inner: Mutex<Filed>,
    capacity: usize,
}

#[derive(Default)]
struct Filed {
    map: HashMap<[u8; TOKEN_LEN], (u64, Pending)>,
    order: std::collections::VecDeque<[u8; TOKEN_LEN]>,
}

impl Authorizations {
    pub fn new(capacity: usize) -> Authorizations {
        Authorizations {
            inner: Mutex::new(Filed::default()),
            capacity: capacity.max(1),
        }
    }

    /// Remembers that the session under `token` authorized `who` until `expiry` (Unix s).
    pub fn insert(&self, token: [u8; TOKEN_LEN], who: Pending, expiry: u64, _now: u64) {
        let mut f = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        while f.map.len() >= self.capacity {
            let Some(oldest) = f.order.pop_front() else {
                break;
            };
            f.map.remove(&oldest);
        }
        if f.map.insert(token, (expiry, who)).is_none() {
            f.order.push_back(token);
        }
    }

    /// Who the session under `token` authorized, if that is still known.
    pub fn get(&self, token: &[u8], now: u64) -> Option<Pending> {
        let token: [u8; TOKEN_LEN] = token.try_into().ok()?;
        let f = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        f.map
            .get(&token)
            .filter(|(exp, _)| *exp > now)
            .map(|(_, p)| p.clone())
    }

    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::AuthSource;

    fn who(name: &str) -> Pending {
        Pending {
            mfa_user: name.into(),
            groups: Vec::new(),
            source: AuthSource::Local,
            method: None,
            transaction_id: None,
            nt_key: None,
            certificate: None,
            granted: None,
        }
    }

    #[test]
    fn full_drops_the_oldest_only_and_expiry_hides() {
        let a = Authorizations::new(3);
        for i in 0..5u8 {
            // All in the same second: the order of filing decides, not the expiry.
            a.insert([i; TOKEN_LEN], who(&format!("u{i}")), 100, 10);
        }
        assert_eq!(a.len(), 3);
        assert!(a.get(&[0; TOKEN_LEN], 10).is_none() && a.get(&[1; TOKEN_LEN], 10).is_none());
        assert_eq!(
            a.get(&[4; TOKEN_LEN], 10).map(|p| p.mfa_user),
            Some("u4".into())
        );
        assert!(a.get(&[4; TOKEN_LEN], 100).is_none(), "expired");
        assert!(a.get(b"short", 10).is_none());
    }
}
