//! The admin API and the HTTP stack it shares with `/metrics`.
//!
//! * [`config`]: `[admin]` (listener, token file, optional TLS), validated with the config.
//! * [`tokens`]: bearer tokens, hashed at load and compared in constant time, never logged.
//! * [`server`]: the accept loops, plain or TLS, on hyper (HTTP/1.1), with bounded
//!   connections, header read time and request bodies; `/metrics` is served by the same code.
//! * [`api`]: the routes (`/api/v1/...`, described by `openapi.yaml` next to this file).
//! * [`client`]: the CLI's side (`radshard sessions`, `disconnect`, `coa`).
//!
//! Everything runs on the control runtime ([`crate::control::ControlRuntime`]), never on a
//! shard, so a slow API client or DAS cannot delay a RADIUS reply.

pub mod api;
pub mod client;
pub mod config;
pub mod server;
pub mod tokens;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::dataplane::runtime::RuntimeCell;
use crate::dynauth::Dispatcher;
use crate::metrics::ShardMetrics;
use crate::session::SessionStore;

pub use api::AdminMetrics;
pub use config::AdminConfig;
pub use server::{serve_admin, serve_metrics, AdminHandle};

/// The OpenAPI description of the API, served at `GET /api/v1/openapi.yaml`.
pub const OPENAPI: &str = include_str!("openapi.yaml");

/// What the API and `/metrics` read and act on; cheap to clone (all shared).
#[derive(Clone)]
pub struct AdminState {
    /// `None` without `[sessions]`: the session endpoints answer 503.
    pub sessions: Option<Arc<SessionStore>>,
    /// `None` when no dynamic authorization is configured: disconnect and CoA answer 503.
    pub dispatcher: Option<Arc<Dispatcher>>,
    /// The live runtime: its dictionary resolves CoA attributes by name.
    pub runtime: Arc<RuntimeCell>,
    pub shards: Vec<Arc<ShardMetrics>>,
    /// The API's own counters (requests by outcome), rendered with `/metrics`.
    pub metrics: Arc<AdminMetrics>,
}

impl AdminState {
    /// The whole `/metrics` text: the shards', then the sessions', the dispatcher's and the
    /// API's own.
    pub fn render_metrics(&self) -> String {
        let mut out = crate::metrics::prometheus::render(&self.shards);
        if let Some(s) = &self.sessions {
            s.render_metrics(&mut out);
        }
        if let Some(d) = &self.dispatcher {
            d.metrics().render(&mut out);
        }
        self.metrics.render(&mut out);
        out
    }
}

/// Why an HTTP listener could not start.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{}:{line}: admin API: cannot listen on {addr}: {source}", file.display())]
    BindAdmin {
        file: PathBuf,
        line: usize,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] crate::cfg::ConfigError),
}
