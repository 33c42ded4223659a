//! The SQL store's I/O: a small pool of PostgreSQL connections on the backend's tokio
//! runtime, prepared statements, lookups pipelined on a connection, single-flight per user,
//! a short-lived cache of rows, bounded lookups in progress, and deadlines.
//!
//! Bounds: `pool` connections; at most `max_in_flight` lookups in progress (`[backend]`),
//! past which requests are shed; every query has a `LIMIT` ([`MAX_ROWS`] rows per user and
//! table, [`MAX_GROUPS`] groups); [`CACHE_MAX`] cached users; every lookup ends by its
//! deadline. User names go to the database only as parameters of prepared statements.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_channel::oneshot;
use tokio_postgres::{Client, NoTls, Row, Statement};
use tracing::{info, warn};

use super::config::SqlConfig;
use super::eval::{GroupRows, UserRows};
use super::ippool::{
    Framed, IpPoolConfig, Lease, LeaseRequest, LeaseUpdate, MAX_PENDING_UPDATES, Q_EXTEND, Q_LEASE,
    Q_RELEASE, Q_RELEASE_NAS,
};
use super::items::MAX_ROWS;
use super::rows::RawRow;

/// Most groups read for one user.
pub const MAX_GROUPS: usize = 64;
/// Most users whose rows are cached; past that expired entries go, then all.
pub const CACHE_MAX: usize = 100_000;
/// Most rows read from the `nas` table.
pub const MAX_NAS: usize = 10_000;

const Q_CHECK: &str =
    "SELECT attribute, op, value FROM radcheck WHERE username = $1 ORDER BY id LIMIT 257";
const Q_REPLY: &str =
    "SELECT attribute, op, value FROM radreply WHERE username = $1 ORDER BY id LIMIT 257";
/// FreeRADIUS orders by priority alone; ties are broken by id here, so the order is stable.
const Q_GROUPS: &str =
    "SELECT groupname FROM radusergroup WHERE username = $1 ORDER BY priority, id LIMIT 65";
const Q_GROUP_CHECK: &str = "SELECT groupname, attribute, op, value FROM radgroupcheck WHERE groupname = ANY($1) ORDER BY id LIMIT 16385";
const Q_GROUP_REPLY: &str = "SELECT groupname, attribute, op, value FROM radgroupreply WHERE groupname = ANY($1) ORDER BY id LIMIT 16385";
/// FreeRADIUS's `simul_count_query`.
const Q_SIMUL_COUNT: &str =
    "SELECT count(*) FROM radacct WHERE username = $1 AND acctstoptime IS NULL";
const Q_NAS: &str = "SELECT id, nasname, shortname, secret FROM nas ORDER BY id LIMIT 10001";

/// The table of States redeemed by any node (several nodes on one database), made if
/// missing; rows past their State's expiry are purged every [`PURGE_EVERY`].
const Q_STATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS radshard_state_redeemed (nonce bytea PRIMARY KEY, expires timestamptz NOT NULL)";
const Q_STATE_REDEEM: &str = "INSERT INTO radshard_state_redeemed (nonce, expires) VALUES ($1, to_timestamp($2::float8)) ON CONFLICT (nonce) DO NOTHING";
const Q_STATE_PURGE: &str = "DELETE FROM radshard_state_redeemed WHERE expires < now()";
/// How often, at most, expired redeemed States are purged.
const PURGE_EVERY: Duration = Duration::from_secs(60);

/// Whether a State was redeemed now, for the first time on any node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redemption {
    Fresh,
    /// Redeemed before (on this node or another): a replay.
    Replayed,
    /// No answer by the deadline, or the database refused.
    Unavailable,
}

/// A lookup's answer.
#[derive(Debug, Clone)]
pub enum Lookup {
    /// What the database holds for the user (nothing: an unknown user).
    Rows(Arc<UserRows>),
    /// No answer by the deadline, or the database refused the queries.
    Unavailable,
    /// Too many lookups in progress.
    Shed,
}

#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    #[error("cannot connect to {server}:{port}: {source}")]
    Connect {
        server: String,
        port: u16,
        source: tokio_postgres::Error,
    },
    #[error("timed out")]
    Timeout,
    #[error("query failed: {0}")]
    Query(#[from] tokio_postgres::Error),
    #[error("connection unavailable (reconnecting after a failure)")]
    Backoff,
    #[error("the {table} table has more than {max} rows for one lookup")]
    TooMany { table: &'static str, max: usize },
}

/// A connection with its prepared statements. Dropped, it stops its connection task.
struct Conn {
    client: Client,
    check: Statement,
    reply: Statement,
    groups: Statement,
    group_check: Statement,
    group_reply: Statement,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        // A connection stuck on a stalled server would otherwise keep its queued queries.
        self.task.abort();
    }
}

/// One pooled connection (made on first use, remade after a failure with backoff).
#[derive(Default)]
struct Slot {
    conn: tokio::sync::Mutex<Option<Arc<Conn>>>,
    /// Not before this instant, and the wait after the next failure.
    backoff: Mutex<(Option<Instant>, Duration)>,
}

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

struct Inner {
    config: SqlConfig,
    slots: Vec<Slot>,
    next: AtomicUsize,
    cache: Mutex<HashMap<String, (Instant, Arc<UserRows>)>>,
    inflight: Mutex<HashMap<String, Vec<oneshot::Sender<Lookup>>>>,
    running: AtomicUsize,
    max_running: usize,
    /// `radshard_state_redeemed` exists (made by this process, or found).
    state_table: tokio::sync::OnceCell<()>,
    /// When expired redeemed States were last purged.
    purged: Mutex<Option<Instant>>,
    /// Lease updates from accounting waiting for the database, and those dropped at
    /// [`MAX_PENDING_UPDATES`].
    pool_updates: AtomicUsize,
    pool_updates_dropped: AtomicU64,
    /// The backend pool's counters, where the dropped updates are counted for scrapes.
    metrics: Option<Arc<crate::metrics::BackendMetrics>>,
}

/// The SQL store. Lookups run on `handle` (the backend pool's runtime).
pub struct SqlStore {
    inner: Arc<Inner>,
    handle: tokio::runtime::Handle,
}

impl std::fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl SqlStore {
    /// A store for `config` on `handle`; at most `max_running` lookups at once. Connects
    /// lazily: a database that is down at start makes lookups unavailable, not the server.
    pub fn new(config: SqlConfig, handle: tokio::runtime::Handle, max_running: usize) -> SqlStore {
        let slots = (0..config.pool).map(|_| Slot::default()).collect();
        info!(server = %config.server, port = config.port, database = %config.database, pool = config.pool, users = config.users, clients = config.clients, "sql store configured");
        SqlStore {
            inner: Arc::new(Inner {
                config,
                slots,
                next: AtomicUsize::new(0),
                cache: Mutex::new(HashMap::new()),
                inflight: Mutex::new(HashMap::new()),
                running: AtomicUsize::new(0),
                max_running,
                state_table: tokio::sync::OnceCell::new(),
                purged: Mutex::new(None),
                pool_updates: AtomicUsize::new(0),
                pool_updates_dropped: AtomicU64::new(0),
                metrics: None,
            }),
            handle,
        }
    }

    /// The same store, counting into the backend pool's `metrics` too (before it is shared).
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::BackendMetrics>) -> SqlStore {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.metrics = Some(metrics);
        }
        self
    }

    pub fn config(&self) -> &SqlConfig {
        &self.inner.config
    }

    /// `user`'s rows if they are cached and fresh: what a shard decides on at once, without
    /// handing a job over (no copy of the request, no timer, no second verification).
    pub fn cached(&self, user: &str) -> Option<Arc<UserRows>> {
        self.inner.cached(user)
    }

    /// Looks `user` up without blocking: a cached answer at once, a lookup in flight joined,
    /// or a new one started that answers by `deadline`.
    pub fn submit(&self, user: &str, deadline: Instant) -> oneshot::Receiver<Lookup> {
        let (tx, rx) = oneshot::channel();
        let inner = &self.inner;
        if let Some(rows) = inner.cached(user) {
            let _ = tx.send(Lookup::Rows(rows));
            return rx;
        }
        {
            let mut inflight = inner.inflight.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(waiters) = inflight.get_mut(user) {
                waiters.push(tx);
                return rx;
            }
            if inner.running.load(Relaxed) >= inner.max_running {
                drop(inflight);
                let _ = tx.send(Lookup::Shed);
                return rx;
            }
            inflight.insert(user.to_string(), vec![tx]);
        }
        inner.running.fetch_add(1, Relaxed);
        let (inner, user) = (inner.clone(), user.to_string());
        self.handle.spawn(async move {
            let at = tokio::time::Instant::from_std(deadline);
            let answer = match tokio::time::timeout_at(at, inner.lookup(&user)).await {
                Ok(Ok(rows)) => Lookup::Rows(Arc::new(rows)),
                Ok(Err(e)) => {
                    warn!(target: "radshard::backend", error = %e, "sql lookup failed");
                    Lookup::Unavailable
                }
                Err(_) => {
                    warn!(target: "radshard::backend", "sql lookup did not answer within the deadline");
                    Lookup::Unavailable
                }
            };
            inner.running.fetch_sub(1, Relaxed);
            inner.finish(&user, answer);
        });
        rx
    }

    /// Redeems the State whose nonce is `nonce` (expiring at `expiry`, Unix seconds) once
    /// for every node on this database, answering by `deadline`. Bounded like lookups
    /// (`max_in_flight`; past it: unavailable, so refused).
    pub fn redeem_state(
        &self,
        nonce: [u8; 16],
        expiry: u64,
        deadline: Instant,
    ) -> oneshot::Receiver<Redemption> {
        let (tx, rx) = oneshot::channel();
        let inner = self.inner.clone();
        if inner.running.fetch_add(1, Relaxed) >= inner.max_running {
            inner.running.fetch_sub(1, Relaxed);
            let _ = tx.send(Redemption::Unavailable);
            return rx;
        }
        self.handle.spawn(async move {
            let at = tokio::time::Instant::from_std(deadline);
            let answer = match tokio::time::timeout_at(at, inner.redeem(&nonce, expiry)).await {
                Ok(Ok(true)) => Redemption::Fresh,
                Ok(Ok(false)) => Redemption::Replayed,
                Ok(Err(e)) => {
                    warn!(target: "radshard::backend", error = %e, "sql: cannot redeem a State");
                    Redemption::Unavailable
                }
                Err(_) => {
                    warn!(target: "radshard::backend", "sql: redeeming a State did not answer within the deadline");
                    Redemption::Unavailable
                }
            };
            inner.running.fetch_sub(1, Relaxed);
            let _ = tx.send(answer);
        });
        rx
    }

    /// Leases an address of `pool` for `req`, answering by `deadline`. Bounded like lookups
    /// (`max_in_flight`; past it: unavailable).
    pub fn lease(
        &self,
        pool: &IpPoolConfig,
        req: LeaseRequest,
        deadline: Instant,
    ) -> oneshot::Receiver<Lease> {
        let (tx, rx) = oneshot::channel();
        let inner = self.inner.clone();
        if inner.running.fetch_add(1, Relaxed) >= inner.max_running {
            inner.running.fetch_sub(1, Relaxed);
            let _ = tx.send(Lease::Unavailable);
            return rx;
        }
        let (name, lease) = (req.pool.clone(), pool.lease.as_secs() as i64);
        self.handle.spawn(async move {
            let at = tokio::time::Instant::from_std(deadline);
            let answer = match tokio::time::timeout_at(at, inner.lease(&name, lease, &req)).await
            {
                Ok(Ok(l)) => l,
                Ok(Err(e)) => {
                    warn!(target: "radshard::backend", error = %e, pool = %name, "sql: cannot lease an address");
                    Lease::Unavailable
                }
                Err(_) => {
                    warn!(target: "radshard::backend", pool = %name, "sql: leasing an address did not answer within the deadline");
                    Lease::Unavailable
                }
            };
            inner.running.fetch_sub(1, Relaxed);
            let _ = tx.send(answer);
        });
        rx
    }

    /// Applies an accounting request's `update` to `pool`'s leases, fire-and-forget (never
    /// delaying the Accounting-Response). At most [`MAX_PENDING_UPDATES`] wait at once; past
    /// that the update is dropped and counted ([`SqlStore::pool_updates_dropped`]) and the
    /// lease runs to its expiry.
    pub fn update_lease(&self, pool: &IpPoolConfig, update: LeaseUpdate) {
        let inner = self.inner.clone();
        if inner.pool_updates.fetch_add(1, Relaxed) >= MAX_PENDING_UPDATES {
            inner.pool_updates.fetch_sub(1, Relaxed);
            let n = inner.pool_updates_dropped.fetch_add(1, Relaxed) + 1;
            if let Some(m) = &inner.metrics {
                m.sql_lease_updates_dropped.fetch_add(1, Relaxed);
            }
            if n.is_power_of_two() {
                warn!(target: "radshard::backend", dropped = n, "sql: lease updates dropped (queue full); those leases run to their expiry");
            }
            return;
        }
        let (name, lease) = (pool.name.clone(), pool.lease.as_secs() as i64);
        let deadline = Duration::from_secs(10);
        self.handle.spawn(async move {
            match tokio::time::timeout(deadline, inner.update_lease(lease, &update)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    warn!(target: "radshard::backend", error = %e, pool = %name, "sql: cannot update a lease")
                }
                Err(_) => {
                    warn!(target: "radshard::backend", pool = %name, "sql: a lease update did not answer in 10 s")
                }
            }
            inner.pool_updates.fetch_sub(1, Relaxed);
        });
    }

    /// `[sql] sessions`: `user`'s open sessions in `radacct` (FreeRADIUS's
    /// `simul_count_query`), answering by `deadline` (`None`: no answer). Bounded like
    /// lookups.
    pub fn count_sessions(
        &self,
        user: String,
        deadline: Instant,
    ) -> oneshot::Receiver<Option<u64>> {
        let (tx, rx) = oneshot::channel();
        let inner = self.inner.clone();
        if inner.running.fetch_add(1, Relaxed) >= inner.max_running {
            inner.running.fetch_sub(1, Relaxed);
            let _ = tx.send(None);
            return rx;
        }
        self.handle.spawn(async move {
            let at = tokio::time::Instant::from_std(deadline);
            let count = async {
                let conn = inner.connection(inner.pick()).await?;
                let row = conn.client.query_one(Q_SIMUL_COUNT, &[&user]).await?;
                Ok::<i64, SqlError>(row.try_get(0)?)
            };
            let answer = match tokio::time::timeout_at(at, count).await {
                Ok(Ok(n)) => Some(n.max(0) as u64),
                Ok(Err(e)) => {
                    warn!(target: "radshard::backend", error = %e, "sql: cannot count open sessions");
                    None
                }
                Err(_) => {
                    warn!(target: "radshard::backend", "sql: counting open sessions did not answer within the deadline");
                    None
                }
            };
            inner.running.fetch_sub(1, Relaxed);
            let _ = tx.send(answer);
        });
        rx
    }

    /// Lease updates dropped because [`MAX_PENDING_UPDATES`] were waiting.
    pub fn pool_updates_dropped(&self) -> u64 {
        self.inner.pool_updates_dropped.load(Relaxed)
    }

    /// The `nas` table, for the client table (blocking: called at start and on reload from
    /// the main thread, never from a shard).
    pub fn load_nas(&self) -> Result<Vec<NasRow>, SqlError> {
        let inner = self.inner.clone();
        let limit = inner.config.connect_timeout + Duration::from_secs(5);
        self.handle.block_on(async move {
            tokio::time::timeout(limit, inner.nas())
                .await
                .map_err(|_| SqlError::Timeout)?
        })
    }
}

/// A row of the `nas` table. Its `Debug` leaves out the secret.
#[derive(Clone)]
pub struct NasRow {
    pub id: i32,
    pub nasname: String,
    pub shortname: Option<String>,
    pub secret: String,
}

impl std::fmt::Debug for NasRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NasRow")
            .field("id", &self.id)
            .field("nasname", &self.nasname)
            .field("shortname", &self.shortname)
            .finish_non_exhaustive()
    }
}

impl Inner {
    fn cached(&self, user: &str) -> Option<Arc<UserRows>> {
        if self.config.cache_ttl.is_zero() {
            return None;
        }
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        match cache.get(user) {
            Some((expires, rows)) if *expires > Instant::now() => Some(rows.clone()),
            _ => None,
        }
    }

    fn finish(&self, user: &str, answer: Lookup) {
        if let (Lookup::Rows(rows), false) = (&answer, self.config.cache_ttl.is_zero()) {
            let now = Instant::now();
            let mut c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if c.len() >= CACHE_MAX {
                c.retain(|_, (exp, _)| *exp > now);
                if c.len() >= CACHE_MAX {
                    c.clear();
                }
            }
            c.insert(
                user.to_string(),
                (now + self.config.cache_ttl, rows.clone()),
            );
        }
        let waiters = self
            .inflight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(user)
            .unwrap_or_default();
        for w in waiters {
            let _ = w.send(answer.clone());
        }
    }

    /// The user's rows; a connection that broke mid-query is remade and the lookup tried
    /// once more (the caller's deadline still applies).
    async fn lookup(&self, user: &str) -> Result<UserRows, SqlError> {
        let slot = self.pick();
        match self.lookup_on(slot, user).await {
            Err(SqlError::Query(e)) if broken(&e) => {
                self.invalidate(slot).await;
                self.lookup_on(slot, user).await
            }
            other => other,
        }
    }

    fn pick(&self) -> &Slot {
        let i = self.next.fetch_add(1, Relaxed) % self.slots.len();
        &self.slots[i]
    }

    async fn lookup_on(&self, slot: &Slot, user: &str) -> Result<UserRows, SqlError> {
        let conn = self.connection(slot).await?;
        let result = user_rows(&conn, user).await;
        if let Err(SqlError::Query(e)) = &result {
            if broken(e) || conn.client.is_closed() {
                drop(conn);
                self.invalidate(slot).await;
            }
        }
        result
    }

    /// The slot's connection, made now if it has none (not while backing off).
    async fn connection(&self, slot: &Slot) -> Result<Arc<Conn>, SqlError> {
        let mut guard = slot.conn.lock().await;
        if let Some(c) = guard.as_ref().filter(|c| !c.client.is_closed()) {
            return Ok(c.clone());
        }
        *guard = None;
        {
            let b = slot.backoff.lock().unwrap_or_else(|e| e.into_inner());
            if b.0.is_some_and(|t| Instant::now() < t) {
                return Err(SqlError::Backoff);
            }
        }
        match self.connect().await {
            Ok(c) => {
                *slot.backoff.lock().unwrap_or_else(|e| e.into_inner()) = (None, BACKOFF_MIN);
                let c = Arc::new(c);
                *guard = Some(c.clone());
                Ok(c)
            }
            Err(e) => {
                let mut b = slot.backoff.lock().unwrap_or_else(|e| e.into_inner());
                let wait = b.1.max(BACKOFF_MIN);
                *b = (Some(Instant::now() + wait), (wait * 2).min(BACKOFF_MAX));
                Err(e)
            }
        }
    }

    async fn invalidate(&self, slot: &Slot) {
        *slot.conn.lock().await = None;
    }

    async fn connect(&self) -> Result<Conn, SqlError> {
        let c = &self.config;
        let mut pg = tokio_postgres::Config::new();
        pg.host(&c.server)
            .port(c.port)
            .dbname(&c.database)
            .user(&c.login)
            .application_name("radshard")
            .connect_timeout(c.connect_timeout);
        if let Some(p) = &c.password {
            pg.password(p.expose());
        }
        let failed = |source| SqlError::Connect {
            server: c.server.clone(),
            port: c.port,
            source,
        };
        let (client, connection) = tokio::time::timeout(c.connect_timeout, pg.connect(NoTls))
            .await
            .map_err(|_| SqlError::Timeout)?
            .map_err(failed)?;
        let task = tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(target: "radshard::backend", error = %e, "sql connection closed");
            }
        });
        // Pipelined: the five statements are prepared in one round trip.
        let prepared = tokio::time::timeout(c.connect_timeout, async {
            tokio::try_join!(
                client.prepare(Q_CHECK),
                client.prepare(Q_REPLY),
                client.prepare(Q_GROUPS),
                client.prepare(Q_GROUP_CHECK),
                client.prepare(Q_GROUP_REPLY),
            )
        })
        .await;
        let (check, reply, groups, group_check, group_reply) = match prepared {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                task.abort();
                return Err(SqlError::Query(e));
            }
            Err(_) => {
                task.abort();
                return Err(SqlError::Timeout);
            }
        };
        info!(target: "radshard::backend", server = %c.server, port = c.port, "sql connection made");
        Ok(Conn {
            client,
            check,
            reply,
            groups,
            group_check,
            group_reply,
            task,
        })
    }

    /// Inserts the nonce; `true` when no node had (the row is new).
    async fn redeem(&self, nonce: &[u8; 16], expiry: u64) -> Result<bool, SqlError> {
        let conn = self.connection(self.pick()).await?;
        self.state_table
            .get_or_try_init(|| async {
                conn.client.batch_execute(Q_STATE_TABLE).await.map(|_| ())
            })
            .await?;
        let nonce: &[u8] = nonce;
        // Seconds since 1970 fit a float8 exactly (below 2^53).
        let expires = expiry as f64;
        let n = conn
            .client
            .execute(Q_STATE_REDEEM, &[&nonce, &expires])
            .await?;
        let purge = {
            let mut last = self.purged.lock().unwrap_or_else(|e| e.into_inner());
            let due = last.map_or(true, |t| t.elapsed() >= PURGE_EVERY);
            if due {
                *last = Some(Instant::now());
            }
            due
        };
        if purge {
            if let Err(e) = conn.client.execute(Q_STATE_PURGE, &[]).await {
                warn!(target: "radshard::backend", error = %e, "sql: cannot purge expired redeemed States");
            }
        }
        Ok(n == 1)
    }

    /// One statement: the key's previous address, else a free one.
    async fn lease(&self, pool: &str, lease: i64, r: &LeaseRequest) -> Result<Lease, SqlError> {
        let conn = self.connection(self.pick()).await?;
        let rows = conn
            .client
            .query(
                Q_LEASE,
                &[&pool, &r.key, &r.nas, &r.station, &r.user, &lease],
            )
            .await?;
        let Some(row) = rows.first() else {
            return Ok(Lease::Exhausted);
        };
        let host: String = row.try_get(0)?;
        let len: i32 = row.try_get(1)?;
        match Framed::parse(&host, len) {
            Some(f) => Ok(Lease::Leased(f)),
            None => {
                warn!(target: "radshard::backend", address = %host, "sql: radippool holds an address that is not one");
                Ok(Lease::Unavailable)
            }
        }
    }

    async fn update_lease(&self, lease: i64, update: &LeaseUpdate) -> Result<(), SqlError> {
        let conn = self.connection(self.pick()).await?;
        match update {
            LeaseUpdate::Extend { nas, address } => {
                conn.client
                    .execute(Q_EXTEND, &[nas, address, &lease])
                    .await?
            }
            LeaseUpdate::Release { nas, address } => {
                conn.client.execute(Q_RELEASE, &[nas, address]).await?
            }
            LeaseUpdate::ReleaseNas { nas } => conn.client.execute(Q_RELEASE_NAS, &[nas]).await?,
        };
        Ok(())
    }

    async fn nas(&self) -> Result<Vec<NasRow>, SqlError> {
        let conn = self.connection(self.pick()).await?;
        let rows = conn.client.query(Q_NAS, &[]).await?;
        if rows.len() > MAX_NAS {
            return Err(SqlError::TooMany {
                table: "nas",
                max: MAX_NAS,
            });
        }
        rows.iter()
            .map(|r| {
                Ok(NasRow {
                    id: r.try_get(0)?,
                    nasname: r.try_get(1)?,
                    shortname: r.try_get(2)?,
                    secret: r.try_get(3)?,
                })
            })
            .collect()
    }
}

/// Whether an error means the connection is gone: closed under us, or the server ending the
/// session (SQLSTATE class 57, e.g. `pg_terminate_backend` or a shutdown).
fn broken(e: &tokio_postgres::Error) -> bool {
    e.is_closed() || e.code().is_some_and(|c| c.code().starts_with("57"))
}

/// The user's rows in two round trips: radcheck, radreply and radusergroup pipelined, then
/// (when the user has groups) radgroupcheck and radgroupreply for all of them at once.
async fn user_rows(conn: &Conn, user: &str) -> Result<UserRows, SqlError> {
    let c = &conn.client;
    let by_user: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&user];
    let (check, reply, groups) = tokio::try_join!(
        c.query(&conn.check, &by_user),
        c.query(&conn.reply, &by_user),
        c.query(&conn.groups, &by_user),
    )?;
    let groups: Vec<String> = groups
        .iter()
        .map(|r| r.try_get::<_, String>(0))
        .collect::<Result<_, _>>()?;
    if groups.len() > MAX_GROUPS {
        return Err(SqlError::TooMany {
            table: "radusergroup",
            max: MAX_GROUPS,
        });
    }
    let mut out = UserRows {
        check: item_rows(&check, 0, "radcheck")?,
        reply: item_rows(&reply, 0, "radreply")?,
        groups: Vec::with_capacity(groups.len()),
    };
    if groups.is_empty() {
        return Ok(out);
    }
    let by_groups: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&groups];
    let (gcheck, greply) = tokio::try_join!(
        c.query(&conn.group_check, &by_groups),
        c.query(&conn.group_reply, &by_groups),
    )?;
    let gcheck = grouped(&gcheck, "radgroupcheck")?;
    let greply = grouped(&greply, "radgroupreply")?;
    for name in groups {
        out.groups.push(GroupRows {
            check: gcheck.get(&name).cloned().unwrap_or_default(),
            reply: greply.get(&name).cloned().unwrap_or_default(),
            name,
        });
    }
    Ok(out)
}

/// `attribute, op, value` rows from column `from` on.
fn item_rows(rows: &[Row], from: usize, table: &'static str) -> Result<Vec<RawRow>, SqlError> {
    if rows.len() > MAX_ROWS {
        return Err(SqlError::TooMany {
            table,
            max: MAX_ROWS,
        });
    }
    rows.iter().map(|r| raw_row(r, from)).collect()
}

fn raw_row(r: &Row, from: usize) -> Result<RawRow, SqlError> {
    Ok(RawRow {
        attribute: r.try_get::<_, Option<String>>(from)?.unwrap_or_default(),
        op: r.try_get(from + 1)?,
        value: r.try_get(from + 2)?,
    })
}

/// Group rows by group name, each group's in id order, at most [`MAX_ROWS`] per group.
fn grouped(rows: &[Row], table: &'static str) -> Result<HashMap<String, Vec<RawRow>>, SqlError> {
    if rows.len() > MAX_GROUPS * MAX_ROWS {
        return Err(SqlError::TooMany {
            table,
            max: MAX_GROUPS * MAX_ROWS,
        });
    }
    let mut out: HashMap<String, Vec<RawRow>> = HashMap::new();
    for r in rows {
        let name: String = r.try_get(0)?;
        let list = out.entry(name).or_default();
        if list.len() >= MAX_ROWS {
            return Err(SqlError::TooMany {
                table,
                max: MAX_ROWS,
            });
        }
        list.push(raw_row(r, 1)?);
    }
    Ok(out)
}
