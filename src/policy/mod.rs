//! Policy: what goes into a reply. Per-user reply attributes, and network policies (ordered
//! rules matching NAS, groups, method) that build on the same [`ReplyAttributes`].

pub mod config;
pub mod network;
pub mod reply;

pub use config::PolicyConfig;
pub use network::{AuthSource, MfaMode, NetworkPolicies, NetworkPolicy, PolicyInput, Verdict};
pub use reply::ReplyAttributes;
