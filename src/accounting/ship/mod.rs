//! The SQL shipper (`[sql] accounting = true`): moves the durable log's records into
//! FreeRADIUS's `radacct` table, exactly once per Acct-Unique-Session-Id, and resumes where
//! it stopped after a crash or a database outage.
//!
//! The log stays the point of acknowledgement: a record is fsync'ed before its
//! Accounting-Response, as without the shipper; the shipper only reads the files behind the
//! shards, on a thread of its own below the shards' priority (never a shard), so a slow or
//! dead database never delays a reply. Each
//! batch (at most `ship_batch` records) is written in one transaction together with the
//! shipper's position in the log (`radshard_ship_checkpoint`, one row per node): a crash
//! commits both or neither, and after a restart or a reconnect the position is read back
//! from the database. The statements are idempotent anyway (upserts on `acctuniqueid`, a
//! Stop never undone by an older Interim-Update).
//!
//! Split as everywhere: [`line`] reads a log line (fuzzed as `acct_ship`), [`row`] maps
//! records to rows and coalesces a batch (sans-IO, unit-tested), [`cursor`] finds the next
//! lines in the files, [`runtime`] is the thin tokio-postgres shell.
//!
//! radshard deletes no accounting file. A retention job of the operator's must not remove a
//! file the shipper has not passed: `radshard_sql_ship_lag_bytes` says how much is left,
//! and the checkpoint row names the file being shipped. A file deleted before it was
//! shipped is skipped (counted as `radshard_sql_ship_errors_total{kind="missing_file"}`).

pub mod cursor;
pub mod line;
pub mod row;
pub mod runtime;

pub use runtime::{spawn, ShipConfig, ShipHandle, ShipMetrics};
