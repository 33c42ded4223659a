//! The SQL user store: FreeRADIUS's PostgreSQL schema (`radcheck`, `radreply`,
//! `radusergroup`, `radgroupcheck`, `radgroupreply`, `nas`) read unchanged, with rlm_sql's
//! semantics.
//!
//! Split as everywhere: the backend runtime only reads rows ([`store`]: pool, prepared and
//! pipelined queries, single-flight, cache, deadline); the request is decided on the shard
//! by pure functions of the rows, the request and the time ([`eval`]: check items, reply
//! items, groups and Fall-Through; [`authorize`]: Expiration, Auth-Type, the known-good
//! password each method uses; [`known_good`]: the password forms). Rows are parsed with
//! [`rows`] and [`items`] (fuzzed as `sql_rows`); the `nas` table becomes clients in [`nas`].

pub mod authorize;
pub mod config;
pub mod date;
pub mod eval;
pub mod ippool;
pub mod items;
pub mod known_good;
pub mod nas;
pub mod rows;
pub mod store;

pub use config::{RawSql, SqlConfig};
pub use store::{Lookup, Redemption, SqlStore};
