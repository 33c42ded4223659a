//! The table shared by every shard and the control plane: one lock around a
//! [`SessionTable`], held only for a lookup or an update (never across I/O), plus the
//! Class seal and the counters.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use serde::Deserialize;

use super::class::ClassSeal;
use super::config::SessionsConfig;
use super::table::{Applied, SessionTable};
use super::update::Update;
use super::{SessionView, UniqueId};

/// What a list of sessions is narrowed by (the admin API's query string).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionFilter {
    /// The authenticated identity (or the accounted User-Name), exactly.
    pub user: Option<String>,
    /// The client's name, its source address, NAS-IP-Address or NAS-Identifier.
    pub nas: Option<String>,
    /// Framed-IP-Address.
    pub ip: Option<IpAddr>,
}

impl SessionFilter {
    pub fn matches(&self, s: &SessionView) -> bool {
        let user = self.user.as_deref().map_or(true, |u| s.user == u);
        let nas = self.nas.as_deref().map_or(true, |n| {
            s.client == n
                || s.nas_address.to_string() == n
                || s.nas_ip_address.is_some_and(|ip| ip.to_string() == n)
                || s.nas_identifier.as_deref() == Some(n)
        });
        let ip = self
            .ip
            .map_or(true, |ip| s.framed_ip_address.map(IpAddr::V4) == Some(ip));
        user && nas && ip
    }
}

/// Whether one more session may start for a user with a Simultaneous-Use cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Under the cap.
    Admit,
    /// At the cap: this is the user's oldest session (for "disconnect the oldest").
    AtCap { oldest: UniqueId, open: usize },
}

/// Counters the control plane renders with `/metrics`.
#[derive(Debug, Default)]
pub struct SessionCounters {
    pub started: AtomicU64,
    pub stopped: AtomicU64,
    /// Closed by Accounting-On/Off.
    pub nas_reset: AtomicU64,
    /// Closed for want of updates (a synthetic stop).
    pub stale: AtomicU64,
    /// Not tracked: the table was at `max_sessions`.
    pub untracked: AtomicU64,
    /// Accounting records without an Acct-Session-Id (nothing to key a session by).
    pub unkeyed: AtomicU64,
    /// Refused or displaced by a Simultaneous-Use cap.
    pub limit_rejects: AtomicU64,
    pub limit_displaced: AtomicU64,
}

pub struct SessionStore {
    table: Mutex<SessionTable>,
    pub seal: ClassSeal,
    pub config: SessionsConfig,
    pub counters: SessionCounters,
}

impl SessionStore {
    pub fn new(config: SessionsConfig) -> SessionStore {
        SessionStore {
            table: Mutex::new(SessionTable::new(config.max_sessions)),
            seal: ClassSeal::random(),
            counters: SessionCounters::default(),
            config,
        }
    }

    fn lock(&self) -> MutexGuard<'_, SessionTable> {
        // A panic while holding the lock leaves a table that is still consistent per entry.
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies one accounting record (live, or replayed from the log).
    pub fn apply(&self, u: &Update<'_>) -> Applied {
        let applied = self.lock().apply(u);
        self.count(applied);
        applied
    }

    fn count(&self, a: Applied) {
        let c = &self.counters;
        let counter = match a {
            Applied::Started => &c.started,
            Applied::Stopped => &c.stopped,
            Applied::NasReset(n) => {
                c.nas_reset.fetch_add(n as u64, Ordering::Relaxed);
                return;
            }
            Applied::Untracked => &c.untracked,
            Applied::Unkeyed => &c.unkeyed,
            Applied::Updated | Applied::Ignored => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether the identity `user` may open one more session under a cap of `cap`.
    pub fn admission(&self, user: &str, cap: u32) -> Admission {
        let t = self.lock();
        let open = t.count_user(user);
        if open < cap as usize {
            return Admission::Admit;
        }
        match t.oldest_of(user) {
            Some(oldest) => Admission::AtCap { oldest, open },
            None => Admission::Admit,
        }
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, id: &str) -> Option<SessionView> {
        let id = UniqueId::from_hex(id)?;
        self.lock().view(&id)
    }

    pub fn get_id(&self, id: &UniqueId) -> Option<SessionView> {
        self.lock().view(id)
    }

    /// The open sessions the filter matches, oldest first.
    pub fn list(&self, filter: &SessionFilter) -> Vec<SessionView> {
        let mut v = match filter.user.as_deref() {
            // The common filter is answered from the user index, not a scan.
            Some(user) => {
                let mut v = self.lock().views_of(user);
                v.retain(|s| filter.matches(s));
                v
            }
            None => self.lock().views(|s| filter.matches(s)),
        };
        v.sort_by(|a, b| a.started.cmp(&b.started).then_with(|| a.id.cmp(&b.id)));
        v
    }

    /// Closes the sessions with no update for too long (see [`SessionsConfig::stale_after`])
    /// as of `now` (Unix seconds), logging each as a synthetic stop.
    pub fn sweep(&self, now: i64) -> usize {
        let closed = self.lock().sweep(now, &self.config);
        for s in &closed {
            tracing::info!(
                session = %s.id,
                user = %s.user,
                client = %s.client,
                acct_session_id = %s.acct_session_id,
                last_update = s.last_update,
                "session closed: no accounting update in time (synthetic stop)"
            );
        }
        self.counters
            .stale
            .fetch_add(closed.len() as u64, Ordering::Relaxed);
        closed.len()
    }

    /// Open sessions per client name, for `/metrics`.
    pub fn open_by_client(&self) -> Vec<(String, usize)> {
        self.lock().open_by_client()
    }

    /// The Prometheus text of the session counters and gauges.
    pub fn render_metrics(&self, out: &mut String) {
        use std::fmt::Write;
        let c = &self.counters;
        let _ = writeln!(
            out,
            "# HELP radshard_sessions_open Sessions open, by client (NAS).\n# TYPE radshard_sessions_open gauge"
        );
        for (client, n) in self.open_by_client() {
            let _ = writeln!(
                out,
                "radshard_sessions_open{{client=\"{}\"}} {n}",
                crate::metrics::prometheus::escape_label(&client)
            );
        }
        let _ = writeln!(
            out,
            "# HELP radshard_sessions_closed_total Sessions closed, by how.\n# TYPE radshard_sessions_closed_total counter"
        );
        for (how, v) in [
            ("stop", &c.stopped),
            ("nas_reset", &c.nas_reset),
            ("stale", &c.stale),
        ] {
            let _ = writeln!(
                out,
                "radshard_sessions_closed_total{{how=\"{how}\"}} {}",
                v.load(Ordering::Relaxed)
            );
        }
        for (name, help, v) in [
            (
                "radshard_sessions_started_total",
                "Sessions opened.",
                &c.started,
            ),
            (
                "radshard_sessions_untracked_total",
                "Session starts not tracked: the table was full (max_sessions).",
                &c.untracked,
            ),
            (
                "radshard_sessions_unkeyed_total",
                "Accounting records without an Acct-Session-Id.",
                &c.unkeyed,
            ),
            (
                "radshard_sessions_limit_rejects_total",
                "Access-Requests refused by a Simultaneous-Use cap.",
                &c.limit_rejects,
            ),
            (
                "radshard_sessions_limit_displaced_total",
                "Sessions disconnected to admit a login over a Simultaneous-Use cap.",
                &c.limit_displaced,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                v.load(Ordering::Relaxed)
            );
        }
    }
}
