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
    /// A directory is configured (users not defined locally are looked up there).
    pub directory: Option<DirectorySettings>,
    /// Reply-Message on every Access-Reject, if configured.
    pub reject_message: Option<&'a [u8]>,
    /// Reply-Message per directory reject reason (label), if configured.
    pub directory_reject_messages: &'a BTreeMap<String, String>,
}

/// The request being decided: verified, and whom it came from.
#[derive(Clone, Copy)]
pub struct Request<'r> {
    pub packet: &'r Verified<'r>,
    /// The client's configured name and group.
    pub client: &'r str,
    pub client_group: Option<&'r str>,
    /// Where it came from (for the decision log).
    pub nas: SocketAddr,
    /// When it arrived: deadlines and the logged latency count from here.
    pub arrived: Instant,
}

impl<'r> Request<'r> {
    pub fn user_name(&self) -> &'r [u8] {
        self.packet.user_name().unwrap_or_default()
    }
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
