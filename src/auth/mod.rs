//! Authentication: the sans-IO decision path every request takes ([`pipeline`]), its
//! methods' credentials, its primary sources, the second-factor stage and the typed decision.

pub mod config;
pub mod context;
pub mod conversation;
pub mod credential;
pub mod decision;
pub mod eap;
pub mod local;
pub mod mschap;
pub mod password;
pub mod pipeline;
pub mod proxied;
pub mod second_factor;
pub mod sources;
pub mod sql;

pub use context::{
    ClusterSettings, Context, DirectorySettings, Now, PoolSettings, Request, SessionCount,
    SqlSettings,
};
pub use decision::{Decision, Outcome, Reply, Waiver};
pub use pipeline::{resume, start, Await, Continuation, Job, JobResult, Step};

pub use crate::vocab::{AuthSource, Method, RejectReason};

/// Who the primary authentication says the user is: what the policies and the second factor
/// decide on. The method travels with it, so every later stage sees how the user logged in.
#[derive(Debug, Clone, Copy)]
pub struct Identity<'i> {
    pub source: AuthSource,
    pub method: Option<Method>,
    /// The name later stages (the second factor's provider) know the user by: the
    /// directory's alternate login ID, the local user's name, or the User-Name as sent.
    pub presented: &'i str,
    /// Group names or DNs, for policies and MFA exemptions.
    pub groups: &'i [String],
    /// An MS-CHAP login's NT key, for the reply's `S=` and MPPE keys.
    pub nt_key: Option<mschap::NtKey>,
    /// EAP-TLS: the client certificate (policies match its issuer and names).
    pub certificate: Option<&'i crate::tls::PeerCertificate>,
    /// What a source that stores per-user attributes (SQL) grants with an accept.
    pub granted: Option<&'i std::sync::Arc<SourceGrant>>,
}

/// The reply attributes and Simultaneous-Use cap a source read for the user (the SQL
/// store's radreply and radgroupreply, its Simultaneous-Use check item).
#[derive(Debug, Default)]
pub struct SourceGrant {
    pub reply: crate::policy::ReplyAttributes,
    pub simultaneous_use: Option<u32>,
    /// The IP pool its Access-Accept's address comes from (SQL's Pool-Name), instead of
    /// `[sql] ip_pool`'s name.
    pub pool_name: Option<String>,
}
