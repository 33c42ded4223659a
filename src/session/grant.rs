//! What an Access-Accept carries for the session it opens, decided with the policies.

use super::class::ClassTag;
use super::config::{AtCap, SessionLimit};
use super::store::{Admission, SessionStore};
use super::UniqueId;
use crate::vocab::RejectReason;

#[derive(Debug, Clone, Copy, Default)]
pub struct Grant {
    /// Our Class naming the identity (`[sessions] class`), which ties the NAS's accounting
    /// to this login.
    pub class: Option<ClassTag>,
    /// Simultaneous-Use `disconnect_oldest`: the session to disconnect once the Accept is
    /// sent.
    pub displace: Option<UniqueId>,
    /// `[sql] sessions`: the Simultaneous-Use cap, checked against the user's open sessions
    /// in `radacct` before the Accept is sent (the in-memory table is not asked).
    pub count_in_db: Option<u32>,
}

/// The grant of an Access-Accept for `identity`, or the reject a Simultaneous-Use cap asks
/// for.
pub fn grant(
    store: &SessionStore,
    identity: &[u8],
    limit: Option<SessionLimit>,
) -> Result<Grant, RejectReason> {
    let displace = match limit {
        None => None,
        Some(limit) => {
            // Valid UTF-8 (the common case) is borrowed, not copied.
            let name = String::from_utf8_lossy(identity);
            match (store.admission(&name, limit.cap), limit.at_cap) {
                (Admission::Admit, _) => None,
                (Admission::AtCap { .. }, AtCap::Reject) => {
                    bump(&store.counters.limit_rejects);
                    return Err(RejectReason::SimultaneousUse);
                }
                (Admission::AtCap { oldest, .. }, AtCap::DisconnectOldest) => Some(oldest),
            }
        }
    };
    let class = if store.config.class {
        store.seal.seal(identity)
    } else {
        None
    };
    Ok(Grant {
        class,
        displace,
        count_in_db: None,
    })
}

fn bump(c: &std::sync::atomic::AtomicU64) {
    c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}
