//! RADIUS over TLS (RadSec, RFC 6614) on TCP port 2083 and over plain TCP (RFC 6613),
//! server side: `[radsec]` and `[tcp]`, and one connection as a sans-IO state machine (TLS or
//! not, RFC 6613 stream framing, deadlines). The
//! shards run the connections ([`crate::dataplane::stream`]): a connection belongs to the
//! shard that accepted it, and its packets go through the same path as UDP datagrams.

pub mod config;
pub mod conn;
pub mod radius11;
