//! The data plane: one shard per core, each with its own sockets, duplicate cache and counters.
//!
//! [`start`] binds every listen address as a reuseport group (one socket per shard, steered by
//! the Request Authenticator, see [`socket`]), then starts one glommio executor per shard,
//! pinned to its core, running [`shard::run`].

pub mod acct_batch;
pub mod batch;
/// The client table lives in [`crate::clients`]; re-exported so `super::clients` keeps working.
pub use crate::clients;
pub mod dedup;
mod inflight;
mod jobs;
mod notify;
pub mod runtime;
pub mod shard;
pub mod socket;
mod stream;

use std::cell::RefCell;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use glommio::{LocalExecutorBuilder, Placement};

use crate::backend::BackendPool;
use crate::cfg::ConfigError;
use crate::config::Config;
use crate::metrics::ShardMetrics;
use runtime::{Runtime, RuntimeCell};
use shard::{Listener, ListenerIo, Shard};
use socket::{bind_group, Role};

/// Raised once to stop every shard.
#[derive(Debug, Default)]
pub struct StopSignal(AtomicBool);

impl StopSignal {
    pub fn raise(&self) {
        self.0.store(true, Ordering::Release)
    }

    pub fn is_raised(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot create accounting directory {}: {source}", dir.display())]
    AccountingDir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "io_uring is unavailable ({0}): radshard needs Linux 5.8+ with io_uring enabled \
         (sysctl kernel.io_uring_disabled=0) and enough locked memory (ulimit -l unlimited, or LimitMEMLOCK=infinity under systemd)"
    )]
    IoUring(String),
    #[error("cannot start the backend pool: {0}")]
    Backend(String),
    #[error("cannot rebuild the session table from the accounting log in {}: {source}", dir.display())]
    Sessions {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start the control thread: {0}")]
    Control(std::io::Error),
    #[error("cannot start shard {shard}: {reason}")]
    Shard { shard: usize, reason: String },
}

/// A running server.
pub struct ServerHandle {
    pub shards: usize,
    pub auth_addrs: Vec<SocketAddr>,
    pub acct_addrs: Vec<SocketAddr>,
    /// The RadSec listeners' bound addresses (`[radsec] listen`, real ports).
    pub radsec_addrs: Vec<SocketAddr>,
    /// The RADIUS/TCP listeners' bound addresses (`[tcp] listen`).
    pub tcp_addrs: Vec<SocketAddr>,
    pub metrics: Vec<Arc<ShardMetrics>>,
    /// The backend pool, when a directory is configured.
    pub backend: Option<Arc<BackendPool>>,
    /// The control plane's thread: the admin API, `/metrics`, dynamic authorization and the
    /// session table's sweeps run on it.
    pub control: crate::control::ControlRuntime,
    /// `[sessions]`: the session table (rebuilt from the accounting log at start).
    pub sessions: Option<Arc<crate::session::SessionStore>>,
    /// Sends Disconnect-Request and CoA-Request to the NASes' DASes.
    pub dispatcher: Arc<crate::dynauth::Dispatcher>,
    /// `[dynauth] listen`: CoA and Disconnect from upstreams, relayed to the sessions' NASes.
    pub dynauth_listener: Option<crate::dynauth::listener::Listener>,
    /// `[sql] accounting`: the shipper into radacct (stopped when the handle is dropped).
    pub shipper: Option<crate::accounting::ship::ShipHandle>,
    stop: Arc<StopSignal>,
    joins: Vec<glommio::ExecutorJoinHandle<()>>,
    /// The running configuration's tables (replaced on reload).
    pub cell: Arc<RuntimeCell>,
    /// What a reload cannot change without a restart.
    fixed: Fixed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Fixed {
    shards: usize,
    listen_auth: Vec<SocketAddr>,
    listen_acct: Vec<SocketAddr>,
    /// `[radsec] listen`, then `[tcp] listen` (the stream listeners are bound at start).
    listen_streams: (Vec<SocketAddr>, Vec<SocketAddr>),
    accounting_dir: PathBuf,
    reply_cache: (Duration, usize),
    /// Backend and directory settings, compared by their Debug form (no secrets in it).
    backend: String,
    /// `[mfa]`, by its Debug form: the challenge store (and its key) lives for the process.
    mfa: String,
    /// `[sessions]`: the table (and its Class key) lives for the process.
    sessions: crate::session::SessionsConfig,
}

impl Fixed {
    fn of(config: &Config, shards: usize) -> Fixed {
        Fixed {
            shards,
            listen_auth: config.server.listen_auth.clone(),
            listen_acct: config.server.listen_acct.clone(),
            listen_streams: (
                config
                    .radsec
                    .iter()
                    .flat_map(|r| r.listen.clone())
                    .collect(),
                config.tcp.iter().flat_map(|t| t.listen.clone()).collect(),
            ),
            accounting_dir: config.accounting.directory.clone(),
            reply_cache: (
                config.server.reply_cache_ttl,
                config.server.reply_cache_entries,
            ),
            backend: format!("{:?} {:?} {:?}", config.backend, config.ldap, config.sql),
            mfa: format!("{:?}", config.mfa),
            sessions: config.sessions.clone(),
        }
    }
}

impl ServerHandle {
    /// The running proxy client's counters, when `[proxy]` is configured.
    pub fn proxy_metrics(&self) -> Option<Arc<crate::proxy::client::ProxyMetrics>> {
        let (_, current) = self.cell.load();
        current.proxy_client.as_ref().map(|c| c.metrics.clone())
    }

    /// Replaces clients, users, dictionaries and reply settings without dropping a packet:
    /// sockets stay open and each shard switches between two batches; work in flight finishes
    /// under the runtime it started with. A config that does not build is refused and the
    /// running one stays. Returns the settings that changed but need a restart.
    pub fn reload(&self, config: &Config) -> Result<Vec<&'static str>, ConfigError> {
        let (_, current) = self.cell.load();
        let sql_clients = match current.sql.as_deref() {
            Some(store) if config.sql.as_ref().is_some_and(|s| s.clients) => {
                nas_clients(store, config).unwrap_or_else(|| current.sql_clients.clone())
            }
            _ => Vec::new(),
        };
        let mut rt = Runtime::build_with(config, sql_clients)?;
        rt.continue_from(&current);
        let new = Fixed::of(
            config,
            config.server.shards.unwrap_or(self.fixed.shards).max(1),
        );
        let mut ignored = Vec::new();
        if new.shards != self.fixed.shards {
            ignored.push("server.shards");
        }
        if new.listen_auth != self.fixed.listen_auth || new.listen_acct != self.fixed.listen_acct {
            ignored.push("server.listen_auth/listen_acct");
        }
        if new.listen_streams != self.fixed.listen_streams {
            ignored.push("radsec.listen/tcp.listen");
        }
        if new.accounting_dir != self.fixed.accounting_dir {
            ignored.push("accounting.directory");
        }
        if new.backend != self.fixed.backend {
            ignored.push("backend/ldap/sql");
        }
        if new.mfa != self.fixed.mfa {
            ignored.push("mfa");
        }
        if new.reply_cache != self.fixed.reply_cache {
            ignored.push("server.reply_cache_ttl/reply_cache_entries");
        }
        if new.sessions != self.fixed.sessions {
            ignored.push("sessions");
        }
        self.cell.store(Arc::new(rt));
        Ok(ignored)
    }

    pub fn stop_signal(&self) -> Arc<StopSignal> {
        self.stop.clone()
    }

    /// Raises the stop signal and waits for every shard to drain.
    pub fn stop(self) {
        self.stop.raise();
        self.join();
    }

    /// Waits for the shards to finish (after someone raised the stop signal).
    pub fn join(self) {
        for j in self.joins {
            let _ = j.join();
        }
    }
}

/// How long a stopping shard waits for in-flight work before it gives up on it.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Starts the data plane for `config`.
pub fn start(config: &Config) -> Result<ServerHandle, StartError> {
    let mut rt = Runtime::build(config)?;
    if config.ldap.is_some() || config.winbind.is_some() || config.sql.is_some() {
        rt.backend = Some(
            BackendPool::start(
                &config.backend,
                config.ldap.as_ref(),
                config.winbind.as_ref(),
            )
            .map_err(|e| StartError::Backend(e.to_string()))?,
        );
    }
    if let (Some(sql), Some(backend)) = (&config.sql, &rt.backend) {
        let handle = backend
            .handle()
            .ok_or_else(|| StartError::Backend("the backend runtime is gone".into()))?;
        let store = Arc::new(
            crate::backend::sql::SqlStore::new(sql.clone(), handle, config.backend.max_in_flight)
                .with_metrics(backend.metrics().clone()),
        );
        if sql.clients {
            // The nas table's clients join the configured ones; without the database at
            // start only the configured ones serve (a reload reads the table again).
            let clients = nas_clients(&store, config).unwrap_or_default();
            let backend = rt.backend.take();
            rt = Runtime::build_with(config, clients)?;
            rt.backend = backend;
        }
        rt.sql = Some(store);
    }
    // EAP's handshakes and RadSec's share the workers ([eap] workers and queue when EAP is
    // configured; else one per core and 1024).
    if config.eap.is_some() || config.radsec.is_some() {
        let (workers, queue) = config
            .eap
            .as_ref()
            .map_or((0, 1024), |e| (e.workers, e.queue));
        rt.crypto = Some(Arc::new(
            crate::backend::crypto::CryptoPool::start_beside(workers, queue, &shard_cpus(config))
                .map_err(|e| StartError::Backend(format!("cannot start the TLS workers: {e}")))?,
        ));
    }
    if let Some(proxy) = &rt.proxy {
        rt.proxy_client = Some(
            crate::proxy::client::ProxyClient::start(proxy)
                .map_err(|e| StartError::Backend(format!("cannot start the proxy client: {e}")))?,
        );
    }
    if let Some(mfa) = &config.mfa {
        rt.mfa = Some(
            crate::backend::mfa::Mfa::new(
                mfa.clone(),
                rt.backend.as_ref().and_then(|b| b.handle()),
            )
            .map_err(|e| StartError::Backend(e.to_string()))?,
        );
    }
    start_with(config, Arc::new(rt))
}

/// The `nas` table's rows as clients, or `None` (logged) when the table cannot be read.
fn nas_clients(
    store: &crate::backend::sql::SqlStore,
    config: &Config,
) -> Option<Vec<crate::clients::ClientConfig>> {
    match store.load_nas() {
        Ok(rows) => {
            let clients = crate::backend::sql::nas::clients_from(&rows, &config.clients);
            tracing::info!(
                rows = rows.len(),
                clients = clients.len(),
                "clients read from the sql nas table"
            );
            Some(clients)
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot read the sql nas table: its clients are not (re)loaded");
            None
        }
    }
}

/// The cores the shards are pinned to (none when there are more shards than cores: then the
/// kernel places them); the same rule as in [`start_with`].
fn shard_cpus(config: &Config) -> Vec<usize> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let shards = config.server.shards.unwrap_or(cpus).max(1);
    if shards <= cpus {
        (0..shards).collect()
    } else {
        Vec::new()
    }
}

pub fn start_with(config: &Config, mut rt: Arc<Runtime>) -> Result<ServerHandle, StartError> {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let shards = config.server.shards.unwrap_or(cpus).max(1);

    // Probe io_uring here, where a failure can be reported as one clear line, rather than
    // inside a shard thread.
    LocalExecutorBuilder::new(Placement::Unbound)
        .make()
        .map_err(|e| StartError::IoUring(e.to_string()))?;

    std::fs::create_dir_all(&rt.accounting_dir).map_err(|source| StartError::AccountingDir {
        dir: rt.accounting_dir.clone(),
        source,
    })?;

    let mut groups = Vec::new();
    for (addrs, role) in [
        (&config.server.listen_auth, Role::Auth),
        (&config.server.listen_acct, Role::Acct),
    ] {
        for &addr in addrs {
            groups.push(
                bind_group(addr, role, shards)
                    .map_err(|source| StartError::Bind { addr, source })?,
            );
        }
    }
    let auth_addrs = groups
        .iter()
        .filter(|g| g.role == Role::Auth)
        .map(|g| g.addr)
        .collect();
    let acct_addrs = groups
        .iter()
        .filter(|g| g.role == Role::Acct)
        .map(|g| g.addr)
        .collect();

    // Hand socket k of every group to shard k.
    let mut per_shard: Vec<Vec<(Role, socket2::Socket)>> =
        (0..shards).map(|_| Vec::new()).collect();
    for g in groups {
        for (k, s) in g.sockets.into_iter().enumerate() {
            per_shard[k].push((g.role, s));
        }
    }
    // Stream listeners: RadSec, then plain TCP; each shard tells them apart by `tls_listener`
    // (one tag per listen address, in the order their sockets were pushed).
    let mut radsec_addrs = Vec::new();
    let mut tcp_addrs = Vec::new();
    let mut tls_listener = Vec::new();
    let radsec_listen = config.radsec.iter().flat_map(|r| &r.listen);
    let tcp_listen = config.tcp.iter().flat_map(|t| &t.listen);
    for (&addr, tls) in radsec_listen
        .map(|a| (a, true))
        .chain(tcp_listen.map(|a| (a, false)))
    {
        let (bound, sockets) = socket::bind_tcp_group(addr, shards)
            .map_err(|source| StartError::Bind { addr, source })?;
        if tls {
            radsec_addrs.push(bound);
        } else {
            tcp_addrs.push(bound);
        }
        tls_listener.push(tls);
        for (k, s) in sockets.into_iter().enumerate() {
            per_shard[k].push((Role::Both, s));
        }
    }

    let control = crate::control::ControlRuntime::start().map_err(StartError::Control)?;
    if let Some(store) = &rt.sessions {
        restore_sessions(store, &rt.accounting_dir)?;
        control.handle().spawn(sweep_sessions(store.clone()));
    }
    let shipper = match config.sql.as_ref().filter(|s| s.accounting) {
        // The log stays the point of acknowledgement; the shipper follows it on a thread of
        // its own (never a shard).
        Some(sql) => {
            let ship =
                crate::accounting::ship::ShipConfig::new(sql.clone(), rt.accounting_dir.clone());
            let handle = crate::accounting::ship::spawn(ship).map_err(StartError::Control)?;
            crate::metrics::register_ship(handle.metrics.clone());
            Some(handle)
        }
        None => None,
    };
    let sessions = rt.sessions.clone();
    let backend = rt.backend.clone();
    // The DAS of a session's client is looked up in the running configuration at send time,
    // so a reload that changes a `das` applies to the next request.
    let cell_slot: Arc<std::sync::OnceLock<std::sync::Weak<RuntimeCell>>> = Arc::default();
    let das_of = {
        let slot = cell_slot.clone();
        Arc::new(move |client: &str| {
            let cell = slot.get()?.upgrade()?;
            let (_, rt) = cell.load();
            rt.clients.das_of(client)
        })
    };
    let dispatcher = crate::dynauth::Dispatcher::new(
        control.handle().clone(),
        config.dynauth.clone().unwrap_or_default(),
        das_of,
    )
    .map_err(StartError::Control)?;
    if let Some(rt) = Arc::get_mut(&mut rt) {
        rt.dynauth = Some(dispatcher.clone());
    }
    let cell = Arc::new(RuntimeCell::new(rt));
    let _ = cell_slot.set(Arc::downgrade(&cell));
    let dynauth_listener = coa_listener(config, &cell, sessions.as_ref(), &dispatcher)?;
    let stop = Arc::new(StopSignal::default());
    let metrics: Vec<Arc<ShardMetrics>> = (0..shards)
        .map(|_| Arc::new(ShardMetrics::default()))
        .collect();
    let mut joins = Vec::with_capacity(shards);
    for (id, sockets) in per_shard.into_iter().enumerate() {
        // Pin when there is a core per shard; with more shards than cores let the kernel place.
        let placement = if shards <= cpus {
            Placement::Fixed(id)
        } else {
            Placement::Unbound
        };
        let (cell, stop, m) = (cell.clone(), stop.clone(), metrics[id].clone());
        let tls_listener = tls_listener.clone();
        let join = LocalExecutorBuilder::new(placement)
            .name(&format!("shard-{id}"))
            .spawn(move || async move {
                let mut stream_kind = tls_listener.into_iter();
                let listeners = sockets
                    .into_iter()
                    .map(|(role, s)| {
                        let fd = s.into_raw_fd();
                        let io = if role == Role::Both {
                            // SAFETY: `fd` is a listening TCP socket we own; glommio takes
                            // ownership.
                            let l = Rc::new(unsafe { glommio::net::TcpListener::from_raw_fd(fd) });
                            if stream_kind.next().unwrap_or(true) {
                                ListenerIo::Tls(l)
                            } else {
                                ListenerIo::Tcp(l)
                            }
                        } else {
                            // SAFETY: `fd` is a bound UDP socket we own; glommio takes
                            // ownership.
                            let socket = unsafe { glommio::net::UdpSocket::from_raw_fd(fd) };
                            ListenerIo::Udp {
                                socket: Rc::new(socket),
                                fd,
                            }
                        };
                        Listener { role, io }
                    })
                    .collect();
                let shard = Rc::new(RefCell::new(Shard::new(id, shards, &cell, listeners, m)));
                shard::run(shard, cell, stop, STOP_GRACE).await;
            })
            .map_err(|e| StartError::Shard {
                shard: id,
                reason: e.to_string(),
            })?;
        joins.push(join);
    }
    Ok(ServerHandle {
        fixed: Fixed::of(config, shards),
        cell,
        shards,
        auth_addrs,
        acct_addrs,
        radsec_addrs,
        tcp_addrs,
        metrics,
        backend,
        control,
        sessions,
        dispatcher,
        dynauth_listener,
        shipper,
        stop,
        joins,
    })
}

/// `[dynauth] listen`: the CoA listener, which finds sessions in the table (so it needs one)
/// and its upstreams in the running client table.
fn coa_listener(
    config: &Config,
    cell: &Arc<RuntimeCell>,
    sessions: Option<&Arc<crate::session::SessionStore>>,
    dispatcher: &Arc<crate::dynauth::Dispatcher>,
) -> Result<Option<crate::dynauth::listener::Listener>, StartError> {
    let Some(listen) = config
        .dynauth
        .as_ref()
        .map(|d| &d.listen)
        .filter(|l| !l.is_empty())
    else {
        return Ok(None);
    };
    let Some(sessions) = sessions else {
        return Err(StartError::Config(ConfigError::new(
            &config.path,
            0,
            "dynauth.listen needs the session table ([sessions] enabled = true): requests are routed by the sessions they name",
        )));
    };
    let weak = Arc::downgrade(cell);
    let upstream_of: crate::dynauth::listener::UpstreamOf = Arc::new(move |ip| {
        let cell = weak.upgrade()?;
        let (_, rt) = cell.load();
        rt.clients.dynauth_upstream(ip)
    });
    crate::dynauth::listener::Listener::bind(
        listen,
        sessions.clone(),
        dispatcher.clone(),
        upstream_of,
    )
    .map(Some)
    .map_err(|source| StartError::Bind {
        addr: listen[0],
        source,
    })
}

/// Rebuilds the session table from the accounting log before any shard serves.
fn restore_sessions(
    store: &crate::session::SessionStore,
    dir: &std::path::Path,
) -> Result<(), StartError> {
    let now = crate::accounting::time::now_unix().0;
    let report = crate::session::rebuild::rebuild(store, dir, now).map_err(|source| {
        StartError::Sessions {
            dir: dir.to_path_buf(),
            source,
        }
    })?;
    tracing::info!(
        files = report.files,
        records = report.records,
        unreadable = report.unreadable,
        open = report.open,
        stale = report.stale,
        ms = report.elapsed.as_millis() as u64,
        "session table rebuilt from the accounting log"
    );
    Ok(())
}

/// How often the session table is swept for sessions that stopped sending updates.
const SWEEP_EVERY: Duration = Duration::from_secs(15);

async fn sweep_sessions(store: Arc<crate::session::SessionStore>) {
    let mut tick = tokio::time::interval(SWEEP_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        store.sweep(crate::accounting::time::now_unix().0);
    }
}
