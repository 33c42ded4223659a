//! What EAP decides with, built from `[eap]`: the settings, the TLS configurations (shared by
//! every handshake worker, so TLS sessions and tickets resume on any shard), the cache of
//! what resumable sessions were authorized for, and the counters.

use std::collections::HashMap;
use std::sync::Mutex;

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
    pub authorized: Authorizations,
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
            authorized: Authorizations::new(config.tls.session_cache),
            config: config.clone(),
            metrics: crate::metrics::eap(),
        })
    }
}

/// Length of a resumption token: random, kept by rustls with the session.
pub const TOKEN_LEN: usize = 16;

/// What a login inside a TLS session authorized, kept for as long as the session may be
/// resumed: a resumption skips the inner login only when this says it succeeded.
///
/// Bound: `capacity` entries (the TLS session cache's size); when full, expired entries are
/// swept and, failing that, the oldest half is dropped (those sessions resume into a full
/// inner login).
pub struct Authorizations {
    map: Mutex<HashMap<[u8; TOKEN_LEN], (u64, Pending)>>,
    capacity: usize,
}

impl Authorizations {
    pub fn new(capacity: usize) -> Authorizations {
        Authorizations {
            map: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    /// Remembers that the session under `token` authorized `who` until `expiry` (Unix s).
    pub fn insert(&self, token: [u8; TOKEN_LEN], who: Pending, expiry: u64, now: u64) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= self.capacity {
            map.retain(|_, (exp, _)| *exp > now);
            if map.len() >= self.capacity {
                let mut expiries: Vec<u64> = map.values().map(|(e, _)| *e).collect();
                expiries.sort_unstable();
                let cut = expiries[expiries.len() / 2];
                map.retain(|_, (exp, _)| *exp > cut);
            }
        }
        map.insert(token, (expiry, who));
    }

    /// Who the session under `token` authorized, if that is still known.
    pub fn get(&self, token: &[u8], now: u64) -> Option<Pending> {
        let token: [u8; TOKEN_LEN] = token.try_into().ok()?;
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&token)
            .filter(|(exp, _)| *exp > now)
            .map(|(_, p)| p.clone())
    }

    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
