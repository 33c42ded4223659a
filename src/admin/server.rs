//! The HTTP listeners: the admin API and `/metrics`, one hyper HTTP/1.1 stack for both, on the
//! control runtime.
//!
//! Every connection is bounded so that a slow or hostile client costs little and never
//! touches a shard: at most `max_connections` open per listener (more are closed at once),
//! request headers must arrive within [`HEADER_TIMEOUT`] (slowloris), a TLS handshake within
//! [`HANDSHAKE_TIMEOUT`], the whole connection lives at most [`CONNECTION_LIFETIME`], and one
//! request is served per connection (no keep-alive: the CLI and scrapers make one request,
//! and an idle kept-alive connection would hold a slot). Request bodies are bounded by the
//! API (`api::MAX_BODY`).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use super::api::Api;
use super::config::AdminConfig;
use super::tokens::TokenSet;
use super::{AdminError, AdminState};

pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Long enough for a disconnect of all of a user's sessions with DAS retransmissions.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(120);
/// The request line and headers, at most (hyper's buffer minimum is 8 KiB).
const MAX_HEAD: usize = 16 * 1024;
/// Scrapers and the API's clients beyond this many are turned away.
const METRICS_MAX_CONNECTIONS: usize = 64;
/// After a failed accept (out of descriptors), wait before the next instead of spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

pub(crate) type Body = Full<Bytes>;
type BoxFuture = Pin<Box<dyn Future<Output = Response<Body>> + Send>>;
/// What a listener does with a request: the API's router or the metrics page.
type Handler = Arc<dyn Fn(Request<Incoming>, SocketAddr) -> BoxFuture + Send + Sync>;

/// The running admin API: its bound address, and its tokens, replaceable on reload.
pub struct AdminHandle {
    pub addr: SocketAddr,
    tokens: Arc<Mutex<Arc<TokenSet>>>,
}

impl AdminHandle {
    /// Takes a reloaded token file's tokens: requests from now on are checked against them.
    pub fn set_tokens(&self, tokens: TokenSet) {
        *self.tokens.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(tokens);
    }
}

/// Binds `[admin] listen` and serves the API on `handle` (the control runtime).
pub fn serve_admin(
    handle: &Handle,
    config: &AdminConfig,
    state: AdminState,
) -> Result<AdminHandle, AdminError> {
    // Checked when the config was read; checked again here because this is the function that
    // opens the socket, and a token in the clear on a network is the one thing not to allow.
    if config.tls.is_none() && !config.listen.ip().is_loopback() {
        return Err(AdminError::BindAdmin {
            file: config.file.clone(),
            line: config.line,
            addr: config.listen,
            source: std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                "not a loopback address and no [admin.tls]",
            ),
        });
    }
    let tls = match &config.tls {
        Some(t) => {
            let built = crate::tls::config::server_tls(&t.settings, &t.lines, "admin.tls")?;
            let mut c = (*built.tunnel).clone();
            c.alpn_protocols = vec![b"http/1.1".to_vec()];
            Some(TlsAcceptor::from(Arc::new(c)))
        }
        None => None,
    };
    let listener = bind(handle, config.listen).map_err(|source| AdminError::BindAdmin {
        file: config.file.clone(),
        line: config.line,
        addr: config.listen,
        source,
    })?;
    let addr = listener.local_addr().map_err(|source| AdminError::Bind {
        addr: config.listen,
        source,
    })?;
    let tokens = Arc::new(Mutex::new(Arc::new(config.tokens.clone())));
    let api = Arc::new(Api::new(state, tokens.clone()));
    let handler: Handler = Arc::new(move |req, peer| {
        let api = api.clone();
        Box::pin(async move { api.handle(req, peer).await })
    });
    handle.spawn(accept_loop(
        listener,
        tls,
        Arc::new(Semaphore::new(config.max_connections)),
        handler,
        "admin",
    ));
    Ok(AdminHandle { addr, tokens })
}

/// Binds `addr` and serves `GET /metrics` (and a 404 for anything else) on `handle`.
pub fn serve_metrics(
    handle: &Handle,
    addr: SocketAddr,
    state: AdminState,
) -> Result<SocketAddr, AdminError> {
    let listener = bind(handle, addr).map_err(|source| AdminError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| AdminError::Bind { addr, source })?;
    let state = Arc::new(state);
    let handler: Handler = Arc::new(move |req, _peer| {
        let state = state.clone();
        Box::pin(async move { crate::metrics::http::answer(&req, &state) })
    });
    handle.spawn(accept_loop(
        listener,
        None,
        Arc::new(Semaphore::new(METRICS_MAX_CONNECTIONS)),
        handler,
        "metrics",
    ));
    Ok(bound)
}

/// Binds synchronously, so that the caller learns of a port in use before it goes on.
fn bind(handle: &Handle, addr: SocketAddr) -> std::io::Result<TcpListener> {
    let std = std::net::TcpListener::bind(addr)?;
    std.set_nonblocking(true)?;
    // Registering with the reactor needs the runtime's context.
    let _guard = handle.enter();
    TcpListener::from_std(std)
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    slots: Arc<Semaphore>,
    handler: Handler,
    name: &'static str,
) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(listener = name, error = %e, "accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::debug!(listener = name, %peer, "connection refused: too many open");
            continue;
        };
        let (tls, handler) = (tls.clone(), handler.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let _ = stream.set_nodelay(true);
            let served =
                tokio::time::timeout(CONNECTION_LIFETIME, connection(stream, peer, tls, handler))
                    .await;
            if served.is_err() {
                tracing::debug!(listener = name, %peer, "connection closed: lifetime exceeded");
            }
        });
    }
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    handler: Handler,
) {
    match tls {
        None => http(TokioIo::new(stream), peer, handler).await,
        Some(acceptor) => {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(s)) => http(TokioIo::new(s), peer, handler).await,
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        }
    }
}

async fn http<I>(io: I, peer: SocketAddr, handler: Handler)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| {
        let handler = handler.clone();
        async move { Ok::<_, Infallible>(handler(req, peer).await) }
    });
    let result = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(MAX_HEAD)
        .max_header_size(MAX_HEAD)
        .keep_alive(false)
        .serve_connection(io, service)
        .await;
    if let Err(e) = result {
        // hyper's errors describe the connection, never a header's value.
        tracing::debug!(%peer, error = %e, "HTTP connection failed");
    }
}
