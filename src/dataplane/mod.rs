//! The data plane: one shard per core, each with its own sockets, duplicate cache and counters.

pub mod batch;
pub mod dedup;
pub mod socket;
