//! The scrape endpoint: `GET /metrics` on its own listener, served by the admin API's HTTP
//! stack ([`crate::admin::server::serve_metrics`]) on the control runtime, so that a slow or
//! hostile scraper can never touch a shard. Anything but `GET /metrics` gets a 404.
//!
//! The page holds only counters, no session details, so it asks for no token, as
//! Prometheus scrapers expect; bind it where only the scraper can reach it.

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};

use crate::admin::AdminState;

const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The answer to one request on the metrics listener.
pub fn answer<B>(req: &Request<B>, state: &AdminState) -> Response<Full<Bytes>> {
    let (status, ctype, body) = if req.method() == Method::GET && req.uri().path() == "/metrics" {
        (StatusCode::OK, PROMETHEUS_TEXT, state.render_metrics())
    } else {
        (
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "try GET /metrics\n".to_string(),
        )
    };
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(ctype));
    r
}
