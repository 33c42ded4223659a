//! Accounting: every Accounting-Request becomes one JSON line in a daily log file, and is on
//! disk (written and fdatasync'ed) before its Accounting-Response leaves. Group commit keeps
//! that fast: while one batch is being synced, the next accumulates.

pub mod log;
pub mod record;
pub mod ship;
pub mod time;

pub use log::AccountingLog;
