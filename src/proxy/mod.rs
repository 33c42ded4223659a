//! Proxying by realm to pools of home servers (issue #14): the sans-IO core.
//!
//! Nothing here owns a socket or reads a clock: time comes in as an `Instant`, bytes as
//! slices, and every table says its bound and what happens at it. The runtime (sockets per
//! source slot, timers, the in-flight entry of the NAS request) drives these pieces; that
//! wiring is `client` and the pipeline stage `auth::proxied`; RadSec, RADIUS/1.1 and
//! NAS-retransmit resends are not wired yet.
//!
//! * [`realm`]: NAI parsing and validation (RFC 7542) and the realm routing table.
//! * [`home`]: one home server's liveness (alive → zombie → dead) with FreeRADIUS semantics.
//! * [`pool`]: picking a home server from a pool (fail-over, load-balance, keyed-balance).
//! * [`ids`]: upstream identifiers over several source slots, outstanding entries, expiry.
//! * [`forward`]: the upstream request built from a verified NAS request, and the home
//!   server's reply verified and turned back into the NAS's reply.

pub mod client;
pub mod config;
pub mod engine;
pub mod forward;
pub mod home;
pub mod ids;
pub mod pool;

pub mod realm;
mod stream;

#[cfg(test)]
mod tests;
