//! What the pipeline decides with: the read-only tables (users, policies, the second factor's
//! store, directory settings), the request being decided, and the time.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::conversation::{Conversation, Conversations};
use super::local::LocalUsers;
use crate::backend::mfa::Mfa;
use crate::backend::ShedPolicy;
use crate::policy::NetworkPolicies;
use crate::proto::Verified;

/// The directory settings the pipeline needs (the pool itself is the driver's).
#[derive(Debug, Clone, Copy)]
pub struct DirectorySettings {
    /// How long a request may wait for the directory, from its arrival.
    pub deadline: std::time::Duration,
    pub on_overload: ShedPolicy,
    pub on_unavailable: ShedPolicy,
    /// PAP passwords can be checked (an LDAP bind).
    pub passwords: bool,
    /// MS-CHAP responses can be checked (winbind, or an NT hash attribute in LDAP).
    pub ms_chap: bool,
}

/// The SQL user store's settings the pipeline needs (its lookups are the driver's jobs).
#[derive(Debug, Clone, Copy)]
pub struct SqlSettings<'a> {
    /// The store, read here only for rows it has cached (lookups are jobs).
    pub store: &'a crate::backend::sql::SqlStore,
    /// How long a request may wait for the database, from its arrival.
    pub deadline: std::time::Duration,
    pub on_overload: ShedPolicy,
    pub on_unavailable: ShedPolicy,
}

/// Several radshard nodes on one PostgreSQL (`[sql] shared_state`, `sessions`).
#[derive(Debug, Clone, Copy)]
pub struct ClusterSettings {
    /// MFA challenges: their State carries what they remember (sealed under the shared
    /// `[mfa] state_key_file` key), so any node finishes them, and each is redeemed once for
    /// all nodes in the database (`radshard_state_redeemed`).
    pub shared_state: bool,
    /// How long a request may wait for the database, from its arrival.
    pub deadline: std::time::Duration,
}

/// `[sql] ip_pool`: an address leased for every Access-Accept that has none.
#[derive(Debug, Clone, Copy)]
pub struct PoolSettings<'a> {
    pub pool: &'a crate::backend::sql::ippool::IpPoolConfig,
    /// How long a request may wait for the database, from its arrival.
    pub deadline: std::time::Duration,
    /// No answer by the deadline: `[backend] on_unavailable`.
    pub on_unavailable: ShedPolicy,
}

/// `[sql] sessions`: Simultaneous-Use counts the user's open sessions in `radacct`.
#[derive(Debug, Clone, Copy)]
pub struct SessionCount {
    pub deadline: std::time::Duration,
    pub on_unavailable: ShedPolicy,
}

/// Everything the pipeline reads but never writes (the second factor's store has its own
/// interior state: pending challenges, used codes).
#[derive(Clone, Copy)]
pub struct Context<'a> {
    pub users: &'a LocalUsers,
    pub policies: &'a NetworkPolicies,
    /// `[mfa]`: the provider and its settings.
    pub mfa: Option<&'a Mfa>,
    /// Open conversations (MFA challenges), keyed by their State; shared by every shard.
    pub conversations: &'a Conversations<Conversation>,
    /// `[sessions]`: open sessions, for Simultaneous-Use and the Class an Accept carries.
    pub sessions: Option<&'a crate::session::SessionStore>,
    /// A directory is configured (users not defined locally are looked up there).
    pub directory: Option<DirectorySettings>,
    /// `[sql]` with `users = true`: users not defined locally are looked up in the database
    /// (before the directory).
    pub sql: Option<SqlSettings<'a>>,
    /// Several nodes on one database; `None`: this node alone (no database needed).
    pub cluster: Option<ClusterSettings>,
    /// `[sql] ip_pool`: Access-Accepts get an address from `radippool`.
    pub ip_pool: Option<PoolSettings<'a>>,
    /// `[sql] sessions`: Simultaneous-Use counted in `radacct` (every node's sessions).
    pub session_count: Option<SessionCount>,
    /// The dictionary: the SQL store's rows name attributes by it.
    pub dict: &'a crate::dict::Dictionary,
    /// Reply-Message on every Access-Reject, if configured.
    pub reject_message: Option<&'a [u8]>,
    /// Reply-Message per directory reject reason (label), if configured.
    pub directory_reject_messages: &'a BTreeMap<String, String>,
    /// `[eap]`: EAP-TLS, PEAP, TTLS.
    pub eap: Option<&'a super::eap::EapService>,
    /// `[proxy]`: realms routed here, refused, or forwarded to pools of home servers.
    pub proxy: Option<&'a crate::proxy::config::ProxyConfig>,
}

/// The request being decided: verified, and whom it came from.
#[derive(Clone, Copy)]
pub struct Request<'r> {
    pub packet: &'r Verified<'r>,
    /// The name being authenticated: the User-Name, or inside an EAP tunnel the inner
    /// identity.
    pub user: Option<&'r [u8]>,
    /// Set when this is the inner login of an EAP tunnel.
    pub tunnel: Option<Tunnel<'r>>,
    /// The client's configured name and group.
    pub client: &'r str,
    pub client_group: Option<&'r str>,
    /// Where it came from (for the decision log).
    pub nas: SocketAddr,
    /// When it arrived: deadlines and the logged latency count from here.
    pub arrived: Instant,
}

impl<'r> Request<'r> {
    /// A request as the NAS sent it: its User-Name is who is authenticated.
    pub fn new(
        packet: &'r Verified<'r>,
        client: &'r str,
        client_group: Option<&'r str>,
        nas: SocketAddr,
        arrived: Instant,
    ) -> Request<'r> {
        Request {
            packet,
            user: packet.user_name(),
            tunnel: None,
            client,
            client_group,
            nas,
            arrived,
        }
    }

    pub fn user_name(&self) -> &'r [u8] {
        self.user.unwrap_or_default()
    }

    /// The method the policies and the log see: the EAP method of a tunnel, else `method`.
    pub fn method_seen(
        &self,
        method: Option<crate::vocab::Method>,
    ) -> Option<crate::vocab::Method> {
        self.tunnel.map(|t| t.method).or(method)
    }
}

/// What an inner login knows of the EAP tunnel it runs in.
#[derive(Clone, Copy)]
pub struct Tunnel<'r> {
    /// The outer method (PEAP, TTLS, EAP-TLS).
    pub method: crate::vocab::Method,
    /// The outer identity (often anonymous), for the log.
    pub outer: &'r [u8],
    /// Where the pipeline leaves who the inner login authenticated when it accepts: the tunnel
    /// finishes its own rounds first and answers the NAS later.
    pub authorized: &'r std::cell::Cell<Option<super::second_factor::Pending>>,
}

/// The time, as the pipeline is told it: a monotonic instant for deadlines and Unix seconds
/// for State expiry and TOTP steps.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    pub instant: Instant,
    pub unix: u64,
}

impl Now {
    /// The system's clocks (the driver's; tests make their own).
    pub fn system() -> Now {
        Now {
            instant: Instant::now(),
            unix: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        }
    }
}
