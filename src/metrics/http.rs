//! The scrape endpoint: `GET /metrics` over plain HTTP/1.1 on its own thread, so that a slow
//! or hostile scraper can never touch a shard. One request per connection, bounded reads and
//! timeouts; anything but `GET /metrics` gets a 404.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::ShardMetrics;

/// Binds `addr` and serves scrapes until the process exits. Returns the bound address.
pub fn serve(
    addr: SocketAddr,
    shards: Vec<Arc<ShardMetrics>>,
) -> io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind(addr)?;
    let local = listener.local_addr()?;
    let handle = std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            for conn in listener.incoming() {
                match conn {
                    Ok(stream) => {
                        if let Err(e) = answer(stream, &shards) {
                            tracing::debug!(error = %e, "metrics request failed");
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "metrics accept failed"),
                }
            }
        })?;
    Ok((local, handle))
}

fn answer(mut stream: TcpStream, shards: &[Arc<ShardMetrics>]) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut buf = [0u8; 4096];
    let mut len = 0;
    // Read the request head (bounded); the body of a GET is ignored.
    while len < buf.len() {
        let n = stream.read(&mut buf[len..])?;
        if n == 0 {
            break;
        }
        len += n;
        if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let head = &buf[..len];
    let path_ok = head.starts_with(b"GET /metrics ") || head.starts_with(b"GET /metrics?");
    let (status, ctype, body) = if path_ok {
        (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            super::prometheus::render(shards),
        )
    } else {
        (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "try GET /metrics\n".to_string(),
        )
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    stream.write_all(body.as_bytes())?;
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(addr: SocketAddr, path: &str) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn serves_metrics_and_404s_the_rest() {
        let m = Arc::new(ShardMetrics::default());
        m.received.add(7);
        let (addr, _h) = serve("127.0.0.1:0".parse().unwrap(), vec![m]).unwrap();
        let r = get(addr, "/metrics");
        assert!(r.starts_with("HTTP/1.1 200 OK"), "{r}");
        assert!(
            r.contains("radshard_datagrams_received_total{shard=\"0\"} 7"),
            "{r}"
        );
        let r = get(addr, "/");
        assert!(r.starts_with("HTTP/1.1 404"), "{r}");
    }
}
