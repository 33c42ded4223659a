//! radshard: a high-performance, multi-core RADIUS server.
//!
//! The crate is split by concern, following a request's life:
//!
//! * [`proto`]: the sans-IO wire codec: packet views, verification, reply building, attribute crypto.
//! * [`dict`]: attribute dictionaries (built-in RFC set and FreeRADIUS-format files).
//! * [`cfg`]: config primitives every component's config uses (`FILE:LINE` errors, durations).
//! * [`config`]: the TOML configuration file, validated with `FILE:LINE: reason` errors; it
//!   aggregates the components' own config types (`clients::config`, `auth::config`, …).
//! * [`clients`]: the RADIUS clients (NASes) and the table the data plane looks them up in.
//! * [`auth`]: authentication methods (PAP, CHAP) over verified requests.
//! * [`dataplane`]: per-core shards, sockets, batching, duplicate detection.
//! * [`accounting`]: the durable accounting log.
//! * [`session`]: who is online: the session table fed by accounting, the Class that ties a
//!   session to the login, Simultaneous-Use, the rebuild from the log.
//! * [`dynauth`]: RFC 5176 CoA and Disconnect: the sans-IO sender, its driver, the listener.
//! * [`control`]: the control plane's thread (admin API, `/metrics`, dynamic authorization).
//! * [`admin`]: the authenticated admin API and the CLI commands on top of it.
//! * [`metrics`]: per-shard counters merged at scrape time.
//! * [`proxy`]: proxying by realm to home-server pools, the sans-IO core (routing, liveness,
//!   pool choice, upstream identifiers, forwarding); not yet wired into the pipeline.
//! * [`dynauth`]: RFC 5176 dynamic authorization: Disconnect/CoA to NASes, the CoA listener.
//! * [`tls`]: rustls server configurations, client certificate names, the test PKI.
//! * [`bench`]: the `radshard bench` load generator.

pub mod accounting;
pub mod admin;
pub mod auth;
pub mod backend;
pub mod bench;
pub mod cfg;
pub mod cli;
pub mod clients;
pub mod config;
pub mod control;
pub mod dataplane;
pub mod dict;
pub mod dynauth;
pub mod metrics;
pub mod policy;
pub mod proto;
pub mod proxy;
pub mod radsec;
pub mod session;
pub mod tls;
pub mod vocab;
