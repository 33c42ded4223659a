//! The shipper's I/O: one tokio-postgres connection on a low-priority thread of its own, the
//! log read on its blocking threads, one transaction per batch with the checkpoint in it, reconnects
//! with bounded backoff.
//!
//! Bounds: at most `ship_batch` records per transaction (so at most that many rows per
//! statement), at most [`super::cursor::MAX_CHUNK`] bytes read at once, one batch in memory;
//! a reconnect waits [`BACKOFF_MIN`] doubling up to [`BACKOFF_MAX`]; a transaction that
//! does not finish within [`STATEMENT_LIMIT`] is abandoned (rolled back by the server when
//! the connection closes) and retried.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::{Client, NoTls};
use tracing::{info, warn};

use super::cursor::{read_chunk, Chunk, Position};
use super::row::{AcctRow, Batch, Statement};
use crate::backend::sql::SqlConfig;

pub const BACKOFF_MIN: Duration = Duration::from_millis(100);
pub const BACKOFF_MAX: Duration = Duration::from_secs(5);
pub const STATEMENT_LIMIT: Duration = Duration::from_secs(30);

/// What the shipper needs to run.
#[derive(Debug, Clone)]
pub struct ShipConfig {
    pub sql: SqlConfig,
    /// The accounting directory.
    pub dir: PathBuf,
    /// The checkpoint row's key: `<host name>:<accounting directory>`, so two servers (or
    /// two directories) shipping into one database keep their own positions.
    pub node: String,
}

impl ShipConfig {
    pub fn new(sql: SqlConfig, dir: PathBuf) -> ShipConfig {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "radshard".into());
        let abs = std::fs::canonicalize(&dir).unwrap_or_else(|_| dir.clone());
        ShipConfig {
            node: format!("{host}:{}", abs.display()),
            sql,
            dir,
        }
    }
}

/// The shipper's counters and gauges (rendered as `radshard_sql_ship_*`).
#[derive(Debug, Default)]
pub struct ShipMetrics {
    pub records: AtomicU64,
    pub rows: AtomicU64,
    pub batches: AtomicU64,
    /// Bytes of the log not yet shipped.
    pub lag_bytes: AtomicU64,
    /// Age of the oldest record not yet shipped (0 when caught up).
    pub lag_seconds: AtomicU64,
    pub errors_connect: AtomicU64,
    pub errors_write: AtomicU64,
    pub errors_read: AtomicU64,
    pub unreadable: AtomicU64,
    pub missing_file: AtomicU64,
}

impl ShipMetrics {
    /// `(kind, count)` for `radshard_sql_ship_errors_total{kind}`.
    pub fn errors(&self) -> [(&'static str, u64); 5] {
        [
            ("connect", self.errors_connect.load(Relaxed)),
            ("write", self.errors_write.load(Relaxed)),
            ("read", self.errors_read.load(Relaxed)),
            ("unreadable_line", self.unreadable.load(Relaxed)),
            ("missing_file", self.missing_file.load(Relaxed)),
        ]
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ShipError {
    #[error("cannot connect to {server}:{port}: {source}")]
    Connect {
        server: String,
        port: u16,
        source: tokio_postgres::Error,
    },
    #[error("the database did not answer within {0:?}")]
    Timeout(Duration),
    #[error("statement failed: {0}")]
    Query(#[from] tokio_postgres::Error),
    #[error("cannot read the accounting log: {0}")]
    Read(#[from] std::io::Error),
}

/// The nice value of the shipper's threads: below the shards, so that on a busy core the
/// acknowledgements come first and the shipper takes what is left (its lag shows it).
pub const SHIP_NICE: i32 = 10;

/// The running shipper; dropping it stops it (a transaction in flight is abandoned, which
/// the database rolls back: the checkpoint says where to resume).
pub struct ShipHandle {
    pub metrics: Arc<ShipMetrics>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// Starts the shipper on a thread of its own (never a shard's), at [`SHIP_NICE`], with a
/// single-threaded tokio runtime; its blocking reads run on that runtime's blocking threads,
/// which inherit the nice value.
pub fn spawn(config: ShipConfig) -> std::io::Result<ShipHandle> {
    let metrics = Arc::new(ShipMetrics::default());
    info!(node = %config.node, batch = config.sql.ship_batch, "sql accounting shipper started");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let m = metrics.clone();
    std::thread::Builder::new()
        .name("acct-ship".into())
        .spawn(move || {
            // SAFETY: setpriority(2) on the calling thread (Linux: a thread id is a `who`
            // of PRIO_PROCESS); it only lowers this thread's priority.
            unsafe {
                libc::setpriority(libc::PRIO_PROCESS as _, libc::gettid() as _, SHIP_NICE);
            }
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .max_blocking_threads(2)
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!(error = %e, "cannot start the sql accounting shipper");
                    return;
                }
            };
            rt.block_on(async {
                tokio::select! {
                    _ = run(config, m) => {}
                    _ = stopped => {}
                }
            });
        })?;
    Ok(ShipHandle {
        metrics,
        _stop: stop,
    })
}

async fn run(config: ShipConfig, m: Arc<ShipMetrics>) {
    let mut backoff = BACKOFF_MIN;
    let mut last_known = Position::default();
    loop {
        let (client, task) = match connect(&config).await {
            Ok(c) => c,
            Err(e) => {
                m.errors_connect.fetch_add(1, Relaxed);
                warn!(target: "radshard::accounting", error = %e, retry_in = ?backoff, "sql shipper cannot reach the database; the log keeps every record");
                note_lag(&config, &last_known, &m).await;
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        match ship_on(&config, client, &m, &mut last_known, &mut backoff).await {
            Ok(()) => {}
            Err(e) => {
                let kind = match e {
                    ShipError::Read(_) => &m.errors_read,
                    _ => &m.errors_write,
                };
                kind.fetch_add(1, Relaxed);
                warn!(target: "radshard::accounting", error = %e, retry_in = ?backoff, "sql shipper interrupted; resuming from the database's checkpoint");
            }
        }
        task.abort();
        note_lag(&config, &last_known, &m).await;
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Keeps the lag gauges moving while the database is away.
async fn note_lag(config: &ShipConfig, at: &Position, m: &ShipMetrics) {
    let (dir, at) = (config.dir.clone(), at.clone());
    if let Ok(Ok(c)) = tokio::task::spawn_blocking(move || read_chunk(&dir, &at, 1)).await {
        m.lag_bytes.store(c.behind + c.taken, Relaxed);
        m.lag_seconds.store(age(&c), Relaxed);
    }
}

fn age(c: &Chunk) -> u64 {
    let now = crate::accounting::time::now_unix().0;
    c.records
        .iter()
        .map(|r| r.received)
        .min()
        .map_or(0, |t| now.saturating_sub(t).max(0) as u64)
}

async fn connect(config: &ShipConfig) -> Result<(Client, tokio::task::JoinHandle<()>), ShipError> {
    let c = &config.sql;
    let mut pg = tokio_postgres::Config::new();
    pg.host(&c.server)
        .port(c.port)
        .dbname(&c.database)
        .user(&c.login)
        .application_name("radshard-shipper")
        .connect_timeout(c.connect_timeout);
    if let Some(p) = &c.password {
        pg.password(p.expose());
    }
    let (client, connection) = tokio::time::timeout(c.connect_timeout, pg.connect(NoTls))
        .await
        .map_err(|_| ShipError::Timeout(c.connect_timeout))?
        .map_err(|source| ShipError::Connect {
            server: c.server.clone(),
            port: c.port,
            source,
        })?;
    let task = tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(target: "radshard::accounting", error = %e, "sql shipper connection closed");
        }
    });
    Ok((client, task))
}

const CREATE_CHECKPOINT: &str = "CREATE TABLE IF NOT EXISTS radshard_ship_checkpoint (\
     node text PRIMARY KEY, file text NOT NULL, \"offset\" bigint NOT NULL, \
     updated timestamp with time zone NOT NULL DEFAULT now())";
const READ_CHECKPOINT: &str =
    "SELECT file, \"offset\" FROM radshard_ship_checkpoint WHERE node = $1";
const WRITE_CHECKPOINT: &str =
    "INSERT INTO radshard_ship_checkpoint (node, file, \"offset\", updated) \
     VALUES ($1, $2, $3, now()) ON CONFLICT (node) DO UPDATE \
     SET file = excluded.file, \"offset\" = excluded.\"offset\", updated = now()";

/// FreeRADIUS's Accounting-On/Off query (`accounting_onoff_query`).
const CLOSE_NAS: &str = "UPDATE radacct SET acctstoptime = to_timestamp($2), \
     acctupdatetime = to_timestamp($2), \
     acctsessiontime = $2 - CAST(EXTRACT(EPOCH FROM acctstarttime) AS bigint), \
     acctterminatecause = $3 \
     WHERE acctstoptime IS NULL AND nasipaddress = CAST($1::text AS inet) \
     AND acctstarttime <= to_timestamp($2)";

/// The batch's rows as arrays (one per column), merged with radacct's rows by the rules of
/// [`super::row`]: kind 1 Start, 2 Stop, 3 Interim-Update. The UPDATE sees the rows that
/// exist; the INSERT (same snapshot) adds those that do not.
const UPSERT: &str = "WITH v AS (SELECT * FROM unnest(\
     $1::int4[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], \
     $8::int8[], $9::int8[], $10::int8[], $11::int8[], $12::int8[], \
     $13::text[], $14::text[], $15::text[], $16::int8[], $17::int8[], \
     $18::text[], $19::text[], $20::text[], $21::text[], $22::text[], \
     $23::text[], $24::text[], $25::text[], $26::text[], $27::text[], $28::text[]) \
     AS v(kind, sid, uid, username, nasip, nasportid, nasporttype, \
          t_start, t_update, t_stop, acctinterval, sessiontime, \
          authentic, ci_start, ci_stop, inoct, outoct, \
          called, calling, cause, service, fproto, \
          fip, fip6, fprefix, fifid, dprefix, class)), \
   upd AS (UPDATE radacct r SET \
     acctstarttime = CASE WHEN v.kind = 1 THEN to_timestamp(v.t_start) ELSE r.acctstarttime END, \
     acctupdatetime = to_timestamp(v.t_update), \
     acctstoptime = CASE WHEN v.kind = 2 THEN to_timestamp(v.t_stop) ELSE r.acctstoptime END, \
     acctinterval = CASE WHEN v.kind = 3 THEN v.t_update - CAST(EXTRACT(EPOCH FROM COALESCE(r.acctupdatetime, r.acctstarttime)) AS bigint) ELSE r.acctinterval END, \
     acctsessiontime = CASE WHEN v.kind = 1 THEN r.acctsessiontime \
       WHEN v.kind = 2 THEN COALESCE(v.sessiontime, v.t_stop - CAST(EXTRACT(EPOCH FROM r.acctstarttime) AS bigint)) \
       ELSE COALESCE(v.sessiontime, r.acctsessiontime) END, \
     connectinfo_start = CASE WHEN v.kind = 1 THEN v.ci_start ELSE r.connectinfo_start END, \
     connectinfo_stop = CASE WHEN v.kind = 2 THEN v.ci_stop ELSE r.connectinfo_stop END, \
     acctinputoctets = CASE WHEN v.kind = 1 THEN r.acctinputoctets ELSE v.inoct END, \
     acctoutputoctets = CASE WHEN v.kind = 1 THEN r.acctoutputoctets ELSE v.outoct END, \
     acctterminatecause = CASE WHEN v.kind = 2 THEN v.cause ELSE r.acctterminatecause END, \
     framedipaddress = CASE WHEN v.kind = 1 THEN r.framedipaddress ELSE CAST(v.fip AS inet) END, \
     framedipv6address = CASE WHEN v.kind = 1 THEN r.framedipv6address ELSE CAST(v.fip6 AS inet) END, \
     framedipv6prefix = CASE WHEN v.kind = 1 THEN r.framedipv6prefix ELSE CAST(v.fprefix AS inet) END, \
     framedinterfaceid = CASE WHEN v.kind = 1 THEN r.framedinterfaceid ELSE v.fifid END, \
     delegatedipv6prefix = CASE WHEN v.kind = 1 THEN r.delegatedipv6prefix ELSE CAST(v.dprefix AS inet) END \
     FROM v WHERE r.acctuniqueid = v.uid AND (r.acctstoptime IS NULL OR v.kind = 2) RETURNING 1) \
   INSERT INTO radacct (acctsessionid, acctuniqueid, username, realm, nasipaddress, nasportid, \
     nasporttype, acctstarttime, acctupdatetime, acctstoptime, acctinterval, acctsessiontime, \
     acctauthentic, connectinfo_start, connectinfo_stop, acctinputoctets, acctoutputoctets, \
     calledstationid, callingstationid, acctterminatecause, servicetype, framedprotocol, \
     framedipaddress, framedipv6address, framedipv6prefix, framedinterfaceid, \
     delegatedipv6prefix, class) \
   SELECT v.sid, v.uid, v.username, NULL, CAST(v.nasip AS inet), v.nasportid, v.nasporttype, \
     to_timestamp(v.t_start), to_timestamp(v.t_update), to_timestamp(v.t_stop), v.acctinterval, \
     v.sessiontime, v.authentic, v.ci_start, v.ci_stop, v.inoct, v.outoct, v.called, v.calling, \
     v.cause, v.service, v.fproto, CAST(v.fip AS inet), CAST(v.fip6 AS inet), \
     CAST(v.fprefix AS inet), v.fifid, CAST(v.dprefix AS inet), v.class \
   FROM v WHERE NOT EXISTS (SELECT 1 FROM radacct r WHERE r.acctuniqueid = v.uid) \
   ON CONFLICT (acctuniqueid) DO NOTHING";

/// Ships on one connection until it fails. The position is read from the database first: a
/// transaction whose COMMIT was cut off is known by the checkpoint it did or did not write.
async fn ship_on(
    config: &ShipConfig,
    client: Client,
    m: &ShipMetrics,
    last_known: &mut Position,
    backoff: &mut Duration,
) -> Result<(), ShipError> {
    tokio::time::timeout(STATEMENT_LIMIT, client.batch_execute(CREATE_CHECKPOINT))
        .await
        .map_err(|_| ShipError::Timeout(STATEMENT_LIMIT))??;
    let row = tokio::time::timeout(
        STATEMENT_LIMIT,
        client.query_opt(READ_CHECKPOINT, &[&config.node]),
    )
    .await
    .map_err(|_| ShipError::Timeout(STATEMENT_LIMIT))??;
    let mut pos = match row {
        Some(r) => Position {
            file: r.try_get(0)?,
            offset: u64::try_from(r.try_get::<_, i64>(1)?).unwrap_or(0),
        },
        None => Position::default(),
    };
    *last_known = pos.clone();
    let (upsert, close, checkpoint, begin, commit) = tokio::try_join!(
        client.prepare(UPSERT),
        client.prepare(CLOSE_NAS),
        client.prepare(WRITE_CHECKPOINT),
        client.prepare("BEGIN"),
        client.prepare("COMMIT"),
    )?;
    info!(target: "radshard::accounting", file = %pos.file, offset = pos.offset, "sql shipper connected; resuming");
    // The next chunk is read while the current transaction commits.
    let mut next = read_next(config, &pos);
    loop {
        let chunk = next
            .await
            .map_err(|e| ShipError::Read(std::io::Error::other(e)))??;
        m.unreadable.fetch_add(chunk.unreadable, Relaxed);
        m.missing_file.fetch_add(chunk.missing, Relaxed);
        m.lag_bytes.store(chunk.behind + chunk.taken, Relaxed);
        m.lag_seconds.store(age(&chunk), Relaxed);
        if chunk.end == pos {
            // Caught up.
            m.lag_bytes.store(chunk.behind, Relaxed);
            m.lag_seconds.store(0, Relaxed);
            tokio::time::sleep(config.sql.ship_interval).await;
            next = read_next(config, &pos);
            continue;
        }
        let mut batch = Batch::default();
        for r in &chunk.records {
            batch.push(r);
        }
        let end = chunk.end.clone();
        next = read_next(config, &end);
        // One round trip: BEGIN, the statements, the checkpoint and COMMIT pipelined on the
        // connection, in that order. A failed statement aborts the transaction (its COMMIT
        // only rolls back) and its error ends this connection.
        let offset = i64::try_from(end.offset).unwrap_or(i64::MAX);
        let columns: Vec<Option<Columns>> = batch
            .statements()
            .iter()
            .map(|s| match s {
                Statement::Upsert(rows) => Some(Columns::of(rows)),
                Statement::CloseNas { .. } => None,
            })
            .collect();
        let closes: Vec<Option<(String, f64)>> = batch
            .statements()
            .iter()
            .map(|s| match s {
                Statement::CloseNas { nas, at, .. } => Some((nas.to_string(), *at as f64)),
                Statement::Upsert(_) => None,
            })
            .collect();
        let mut work: Vec<Pending<'_>> = Vec::with_capacity(columns.len() + 3);
        work.push(Box::pin(client.execute(&begin, &[])));
        for (i, s) in batch.statements().iter().enumerate() {
            match (s, &columns[i], &closes[i]) {
                (Statement::Upsert(_), Some(c), _) => {
                    work.push(Box::pin(client.execute_raw(&upsert, c.params())))
                }
                (Statement::CloseNas { cause, .. }, _, Some((nas, at))) => {
                    let p: [&(dyn tokio_postgres::types::ToSql + Sync); 3] = [nas, at, cause];
                    work.push(Box::pin(client.execute_raw(&close, p)))
                }
                _ => {}
            }
        }
        let ck: [&(dyn tokio_postgres::types::ToSql + Sync); 3] =
            [&config.node, &end.file, &offset];
        work.push(Box::pin(client.execute_raw(&checkpoint, ck)));
        work.push(Box::pin(client.execute(&commit, &[])));
        tokio::time::timeout(STATEMENT_LIMIT, pipelined(work))
            .await
            .map_err(|_| ShipError::Timeout(STATEMENT_LIMIT))??;
        m.records.fetch_add(batch.records as u64, Relaxed);
        m.rows.fetch_add(batch.rows() as u64, Relaxed);
        m.batches.fetch_add(1, Relaxed);
        pos = end;
        *last_known = pos.clone();
        *backoff = BACKOFF_MIN;
    }
}

type Pending<'a> = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<u64, tokio_postgres::Error>> + Send + 'a>,
>;

/// Runs `work` concurrently, first polled in order (so its messages go out in order: the
/// connection pipelines them); the first error, once all have finished.
async fn pipelined(mut work: Vec<Pending<'_>>) -> Result<(), tokio_postgres::Error> {
    let mut done = vec![false; work.len()];
    let mut first_err = None;
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, d) in work.iter_mut().zip(done.iter_mut()) {
            if *d {
                continue;
            }
            match f.as_mut().poll(cx) {
                std::task::Poll::Ready(r) => {
                    *d = true;
                    if let Err(e) = r {
                        first_err.get_or_insert(e);
                    }
                }
                std::task::Poll::Pending => pending = true,
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    first_err.map_or(Ok(()), Err)
}

type ChunkJob = tokio::task::JoinHandle<std::io::Result<Chunk>>;

fn read_next(config: &ShipConfig, pos: &Position) -> ChunkJob {
    let (dir, pos, max) = (config.dir.clone(), pos.clone(), config.sql.ship_batch);
    tokio::task::spawn_blocking(move || read_chunk(&dir, &pos, max))
}

/// A batch's rows as one array per column.
#[derive(Default)]
struct Columns {
    kind: Vec<i32>,
    sid: Vec<String>,
    uid: Vec<String>,
    username: Vec<String>,
    nasip: Vec<String>,
    nasportid: Vec<Option<String>>,
    nasporttype: Vec<String>,
    t_start: Vec<i64>,
    t_update: Vec<i64>,
    t_stop: Vec<Option<i64>>,
    interval: Vec<Option<i64>>,
    sessiontime: Vec<Option<i64>>,
    authentic: Vec<String>,
    ci_start: Vec<String>,
    ci_stop: Vec<Option<String>>,
    inoct: Vec<i64>,
    outoct: Vec<i64>,
    called: Vec<String>,
    calling: Vec<String>,
    cause: Vec<Option<String>>,
    service: Vec<String>,
    fproto: Vec<String>,
    fip: Vec<Option<String>>,
    fip6: Vec<Option<String>>,
    fprefix: Vec<Option<String>>,
    fifid: Vec<Option<String>>,
    dprefix: Vec<Option<String>>,
    class: Vec<Option<String>>,
}

impl Columns {
    fn of(rows: &[AcctRow]) -> Columns {
        let mut c = Columns::default();
        for r in rows {
            c.kind.push(r.kind.code());
            c.sid.push(r.acctsessionid.clone());
            c.uid.push(r.acctuniqueid.clone());
            c.username.push(r.username.clone());
            c.nasip.push(r.nasipaddress.to_string());
            c.nasportid.push(r.nasportid.clone());
            c.nasporttype.push(r.nasporttype.clone());
            c.t_start.push(r.acctstarttime);
            c.t_update.push(r.acctupdatetime);
            c.t_stop.push(r.acctstoptime);
            c.interval.push(r.acctinterval);
            c.sessiontime.push(r.acctsessiontime);
            c.authentic.push(r.acctauthentic.clone());
            c.ci_start.push(r.connectinfo_start.clone());
            c.ci_stop.push(r.connectinfo_stop.clone());
            c.inoct.push(r.acctinputoctets);
            c.outoct.push(r.acctoutputoctets);
            c.called.push(r.calledstationid.clone());
            c.calling.push(r.callingstationid.clone());
            c.cause.push(r.acctterminatecause.clone());
            c.service.push(r.servicetype.clone());
            c.fproto.push(r.framedprotocol.clone());
            c.fip.push(r.framedipaddress.map(|a| a.to_string()));
            c.fip6.push(r.framedipv6address.map(|a| a.to_string()));
            c.fprefix.push(r.framedipv6prefix.clone());
            c.fifid.push(r.framedinterfaceid.clone());
            c.dprefix.push(r.delegatedipv6prefix.clone());
            c.class.push(r.class.clone());
        }
        c
    }

    fn params(&self) -> [&(dyn tokio_postgres::types::ToSql + Sync); 28] {
        // (execute_raw takes the parameters by value: an array of references.)
        [
            &self.kind,
            &self.sid,
            &self.uid,
            &self.username,
            &self.nasip,
            &self.nasportid,
            &self.nasporttype,
            &self.t_start,
            &self.t_update,
            &self.t_stop,
            &self.interval,
            &self.sessiontime,
            &self.authentic,
            &self.ci_start,
            &self.ci_stop,
            &self.inoct,
            &self.outoct,
            &self.called,
            &self.calling,
            &self.cause,
            &self.service,
            &self.fproto,
            &self.fip,
            &self.fip6,
            &self.fprefix,
            &self.fifid,
            &self.dprefix,
            &self.class,
        ]
    }
}
