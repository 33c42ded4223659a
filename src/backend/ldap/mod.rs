//! LDAP / Active Directory primary authentication: search the user with a service account,
//! then bind as the found DN with the user's password; groups from `memberOf` (nested on AD
//! with LDAP_MATCHING_RULE_IN_CHAIN).

pub mod ad;
pub mod config;
pub mod filter;
pub mod pool;

pub use config::{LdapConfig, RawLdap};
pub use pool::Directory;
