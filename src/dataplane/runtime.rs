//! Everything a shard reads but never writes: clients, users, dictionary, reply settings.
//! Built once from a [`Config`] (and again on reload); shared by all shards behind an `Arc`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::collections::BTreeMap;

use crate::auth::conversation::state::StateKey;
use crate::auth::conversation::{Conversation, Conversations};
use crate::auth::local::LocalUsers;
use crate::backend::BackendPool;
use crate::cfg::ConfigError;
use crate::clients::ClientTable;
use crate::config::Config;
use crate::dict::Dictionary;
use crate::policy::NetworkPolicies;

/// The shared key material (`[mfa] state_key_file`), if configured.
fn shared_key(config: &Config) -> Option<&crate::auth::conversation::state::KeyMaterial> {
    config.mfa.as_ref().and_then(|m| m.state_key.as_ref())
}

/// Open conversations at most without `[mfa] max_pending`.
const DEFAULT_CONVERSATIONS: usize = 100_000;

pub struct Runtime {
    pub clients: ClientTable,
    pub users: LocalUsers,
    pub dict: Dictionary,
    pub reject_reply_message: Option<Vec<u8>>,
    pub accounting_dir: PathBuf,
    pub reply_cache_ttl: Duration,
    pub reply_cache_entries: usize,
    /// Network policies every authenticated user goes through.
    pub policies: NetworkPolicies,
    /// The pool serving users not defined locally (a directory is configured); set by
    /// `dataplane::start`, kept across reloads.
    pub backend: Option<Arc<BackendPool>>,
    /// `[sql]`: the SQL store (its connections live on the backend pool's runtime); set by
    /// `dataplane::start`, kept across reloads.
    pub sql: Option<Arc<crate::backend::sql::SqlStore>>,
    /// The clients read from the SQL store's `nas` table (`[sql] clients = true`), already in
    /// `clients`; kept for a reload that cannot read the table.
    pub sql_clients: Vec<crate::clients::ClientConfig>,
    /// The MFA challenge store, when `[mfa]` is configured; set by `dataplane::start`, kept
    /// across reloads (pending challenges survive a SIGHUP).
    pub mfa: Option<Arc<crate::backend::mfa::Mfa>>,
    /// Open conversations (MFA challenges) by State: one per process, kept across reloads
    /// (`dataplane::start` hands a reloaded runtime the running one's).
    pub conversations: Arc<Conversations<Conversation>>,
    /// `[sessions]`: who is online, from accounting; shared by every shard and the control
    /// plane, and kept across reloads.
    pub sessions: Option<Arc<crate::session::SessionStore>>,
    /// Sends Disconnect-Request and CoA-Request to NASes (on the control thread); set at
    /// start, kept across reloads.
    pub dynauth: Option<Arc<crate::dynauth::Dispatcher>>,
    /// Reply-Message per directory reject reason (label), if configured.
    pub ldap_reject_messages: BTreeMap<String, String>,
    /// `[eap]`: its settings and TLS configurations (rebuilt on reload: new certificates
    /// take effect; the session caches and ticket keys carry over, see [`Runtime::continue_from`]).
    pub eap: Option<Arc<crate::auth::eap::EapService>>,
    /// The handshake workers, when `[eap]` is configured; set by `dataplane::start`, kept
    /// across reloads.
    pub crypto: Option<Arc<crate::backend::crypto::CryptoPool>>,
    /// `[proxy]`: realms, pools and home servers (rebuilt on reload; see
    /// [`Runtime::continue_from`] for when the running proxy client is kept).
    pub proxy: Option<Arc<crate::proxy::config::ProxyConfig>>,
    /// The proxy client (its thread, sockets and home servers' liveness); set by
    /// `dataplane::start`.
    pub proxy_client: Option<Arc<crate::proxy::client::ProxyClient>>,
    /// `[radsec]`: the TLS configuration new connections use (rebuilt on reload: new
    /// certificates take effect for new connections) and the limits.
    pub radsec: Option<Arc<StreamRuntime>>,
    /// `[tcp]`: RADIUS/TCP's limits.
    pub tcp: Option<Arc<StreamRuntime>>,
}

/// `[radsec]` or `[tcp]` ready to serve.
#[derive(Debug)]
pub struct StreamRuntime {
    /// RadSec: the TLS configuration; `None` for plain TCP.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub handshake_timeout: Duration,
    pub idle_timeout: Duration,
    /// Open connections at most on one shard (the whole server's bound over the shards).
    pub max_connections: usize,
    /// Whether RADIUS/1.1 may, must or must not be spoken (RadSec; TCP: forbid).
    pub radius11: crate::radsec::radius11::Radius11,
}

impl Runtime {
    /// What the authentication pipeline decides with.
    pub fn auth(&self) -> crate::auth::Context<'_> {
        crate::auth::Context {
            users: &self.users,
            policies: &self.policies,
            mfa: self.mfa.as_deref(),
            conversations: &self.conversations,
            sessions: self.sessions.as_deref(),
            directory: self
                .backend
                .as_ref()
                .map(|b| crate::auth::DirectorySettings {
                    deadline: b.config.deadline,
                    on_overload: b.config.on_overload,
                    on_unavailable: b.config.on_unavailable,
                    passwords: b.checks_passwords(),
                    ms_chap: b.checks_ms_chap(),
                }),
            sql: self.sql.as_ref().filter(|s| s.config().users).map(|s| {
                let backend = self
                    .backend
                    .as_ref()
                    .map(|b| b.config.clone())
                    .unwrap_or_default();
                crate::auth::SqlSettings {
                    store: s,
                    deadline: s.config().deadline.unwrap_or(backend.deadline),
                    on_overload: backend.on_overload,
                    on_unavailable: backend.on_unavailable,
                }
            }),
            cluster: self
                .sql
                .as_ref()
                .filter(|s| s.config().shared_state)
                .map(|s| crate::auth::ClusterSettings {
                    shared_state: true,
                    deadline: s.config().deadline.unwrap_or(
                        self.backend
                            .as_ref()
                            .map_or(std::time::Duration::from_secs(3), |b| b.config.deadline),
                    ),
                }),
            ip_pool: self.sql.as_ref().and_then(|s| {
                Some(crate::auth::PoolSettings {
                    pool: s.config().ip_pool.as_ref()?,
                    deadline: s.config().deadline.unwrap_or(
                        self.backend
                            .as_ref()
                            .map_or(std::time::Duration::from_secs(3), |b| b.config.deadline),
                    ),
                    on_unavailable: self
                        .backend
                        .as_ref()
                        .map_or(crate::backend::ShedPolicy::Drop, |b| {
                            b.config.on_unavailable
                        }),
                })
            }),
            session_count: self.sql.as_ref().filter(|s| s.config().sessions).map(|s| {
                crate::auth::SessionCount {
                    deadline: s.config().deadline.unwrap_or(
                        self.backend
                            .as_ref()
                            .map_or(std::time::Duration::from_secs(3), |b| b.config.deadline),
                    ),
                    on_unavailable: self
                        .backend
                        .as_ref()
                        .map_or(crate::backend::ShedPolicy::Drop, |b| {
                            b.config.on_unavailable
                        }),
                }
            }),
            dict: &self.dict,
            reject_message: self.reject_reply_message.as_deref(),
            directory_reject_messages: &self.ldap_reject_messages,
            eap: self.eap.as_deref(),
            proxy: self.proxy.as_deref(),
        }
    }

    /// Builds the runtime tables, resolving dictionary names; everything `serve` needs to
    /// know is right is checked here, so `check-config` calls it too.
    /// A reload: this runtime, freshly built, keeps what outlives a configuration of `current`:
    /// the backend pool (its threads and directory connections; its settings need a restart),
    /// the MFA provider, the handshake workers, the conversation store, and the TLS sessions
    /// (they still resume, when the resumption settings did not change).
    pub fn continue_from(&mut self, current: &Runtime) {
        self.backend = current.backend.clone();
        self.sql = current.sql.clone();
        self.mfa = current.mfa.clone();
        self.crypto = current.crypto.clone();
        self.conversations = current.conversations.clone();
        self.sessions = current.sessions.clone();
        self.dynauth = current.dynauth.clone();
        // The running client keeps its liveness and outstanding requests when the home
        // servers and pools are unchanged; otherwise the routes stay the running ones too
        // (they name its pools) and the change waits for a restart.
        match (&self.proxy, &current.proxy) {
            (Some(new), Some(old)) if new.same_engine(old) => {
                self.proxy_client = current.proxy_client.clone();
            }
            (_, old) => {
                self.proxy = old.clone();
                self.proxy_client = current.proxy_client.clone();
            }
        }
        if let (Some(new), Some(old)) = (self.eap.as_mut().and_then(Arc::get_mut), &current.eap) {
            new.continue_from(old);
        }
    }

    pub fn build(config: &Config) -> Result<Runtime, ConfigError> {
        Runtime::build_with(config, Vec::new())
    }

    /// [`Runtime::build`] with clients read from the SQL store's `nas` table besides the
    /// configured ones (those already skip networks the configuration names).
    pub fn build_with(
        config: &Config,
        sql_clients: Vec<crate::clients::ClientConfig>,
    ) -> Result<Runtime, ConfigError> {
        let mut dict = Dictionary::builtin();
        for d in &config.server.dictionaries {
            dict.load_file(&d.value).map_err(|e| {
                d.error(format!("cannot load dictionary {}: {e}", d.value.display()))
            })?;
        }
        let reject_reply_message = config
            .reject_reply_message
            .as_ref()
            .map(|m| m.as_bytes().to_vec());
        if reject_reply_message.as_ref().is_some_and(|m| m.len() > 253) {
            return Err(ConfigError::new(
                &config.path,
                0,
                "reject_reply_message is longer than 253 octets",
            ));
        }
        let all_clients: Vec<_> = config.clients.iter().chain(&sql_clients).cloned().collect();
        Ok(Runtime {
            clients: ClientTable::build(&all_clients)?,
            sql: None,
            sql_clients,
            users: LocalUsers::build(&config.users, &dict)?,
            policies: NetworkPolicies::build(&config.policies, &dict)?,
            dict,
            backend: None,
            mfa: None,
            // MFA challenges and EAP conversations share the store: room for both bounds.
            conversations: Arc::new(
                Conversations::with_key(
                    match (&config.mfa, &config.eap) {
                        (None, None) => DEFAULT_CONVERSATIONS,
                        (m, e) => {
                            m.as_ref().map_or(0, |m| m.max_pending)
                                + e.as_ref().map_or(0, |e| e.max_conversations)
                        }
                    },
                    // A shared key file: every node verifies the States of the others.
                    shared_key(config)
                        .map_or_else(StateKey::random, |k| StateKey::from_material(k.bytes())),
                )
                .on_expired(Conversation::expired),
            ),
            dynauth: None,
            sessions: config.sessions.enabled.then(|| {
                let mut store = crate::session::SessionStore::new(config.sessions.clone());
                // A shared key file: a Class sealed on one node opens on every other (the
                // NAS may send its accounting to any of them).
                if let Some(k) = shared_key(config) {
                    store.seal =
                        crate::session::class::ClassSeal::with_key(&k.derive(b"radshard class v1"));
                }
                Arc::new(store)
            }),
            eap: config
                .eap
                .as_ref()
                .map(|e| crate::auth::eap::EapService::build(e).map(Arc::new))
                .transpose()?,
            crypto: None,
            proxy: config.proxy.clone().map(Arc::new),
            proxy_client: None,
            radsec: config
                .radsec
                .as_ref()
                .map(|r| {
                    Ok::<_, ConfigError>(Arc::new(StreamRuntime {
                        tls: Some(r.server_config()?),
                        handshake_timeout: r.handshake_timeout,
                        idle_timeout: r.idle_timeout,
                        max_connections: r.max_connections.div_ceil(shards_of(config)),
                        radius11: r.radius11,
                    }))
                })
                .transpose()?,
            tcp: config.tcp.as_ref().map(|t| {
                Arc::new(StreamRuntime {
                    tls: None,
                    handshake_timeout: Duration::ZERO,
                    idle_timeout: t.idle_timeout,
                    max_connections: t.max_connections.div_ceil(shards_of(config)),
                    radius11: crate::radsec::radius11::Radius11::Forbid,
                })
            }),
            ldap_reject_messages: config
                .ldap
                .as_ref()
                .map(|l| l.reject_messages.clone())
                .unwrap_or_default(),
            reject_reply_message,
            accounting_dir: config.accounting.directory.clone(),
            reply_cache_ttl: config.server.reply_cache_ttl,
            reply_cache_entries: config.server.reply_cache_entries,
        })
    }
}

/// The current runtime, replaceable while shards run (SIGHUP). Shards compare the generation
/// once per batch, a read of a cache line that is written only on reload, and take the lock
/// only when it changed.
pub struct RuntimeCell {
    generation: AtomicU64,
    current: Mutex<Arc<Runtime>>,
}

impl RuntimeCell {
    pub fn new(rt: Arc<Runtime>) -> RuntimeCell {
        RuntimeCell {
            generation: AtomicU64::new(1),
            current: Mutex::new(rt),
        }
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The current runtime and its generation.
    pub fn load(&self) -> (u64, Arc<Runtime>) {
        let rt = self.current.lock().unwrap_or_else(|e| e.into_inner());
        // Read under the lock so the pair is consistent with `store`.
        (self.generation.load(Ordering::Acquire), rt.clone())
    }

    pub fn store(&self, rt: Arc<Runtime>) {
        let mut cur = self.current.lock().unwrap_or_else(|e| e.into_inner());
        *cur = rt;
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

/// The shard count `serve` will use (a per-shard share of a whole-server bound needs it).
fn shards_of(config: &Config) -> usize {
    config
        .server
        .shards
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1)
}
