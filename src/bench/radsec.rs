//! `radshard bench --radsec DIR`: the same requests over RadSec (RFC 6614). One thread per
//! TLS connection (`--sockets`), each keeping its share of `--window` requests in flight on
//! its connection (pipelined, identifiers 0..=255 of its own), every reply verified with the
//! connection's secret. TCP delivers or the connection fails, so there are no
//! retransmissions: a request without a reply by `--timeout` ends the connection's run and
//! every request still outstanding on it counts as timed out.
//!
//! `--radius11`: the connection must negotiate RADIUS/1.1 (RFC 9765); requests are built as
//! for RADIUS/1.0 and translated by the same edge radshard's proxy uses
//! ([`crate::radsec::radius11::ClientEdge`]), so every reply is still judged (code, expected
//! attributes); over RADIUS/1.1 only TLS authenticates it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::args::BenchArgs;
use super::error::BenchError;
use super::mschap::check_accept;
use super::report::{Counters, Report};
use super::request::{Built, RequestFactory, REQUEST_MAX};
use super::users::User;
use crate::proto::stream::StreamDecoder;
use crate::proto::{verify_response, Code, Packet, MAX_PACKET_LEN};
use crate::radsec::radius11::{ClientEdge, Radius11};
use crate::tls::client::{client_config, ClientTlsSettings};

const IDS: usize = 256;

pub fn run(args: &BenchArgs, dir: &Path, users: Vec<User>) -> Result<Report, BenchError> {
    if args.rate.is_some() || args.retries > 0 {
        return Err(BenchError::Invalid(
            "--radsec runs closed loop without retransmissions (no --rate, --retries)".into(),
        ));
    }
    if args.count.is_none() && args.duration.is_none() {
        return Err(BenchError::Invalid(
            "give --count or --duration: an unbounded run is refused".into(),
        ));
    }
    let connections = args.sockets.max(1);
    let window = args.window.clamp(connections, connections * IDS);
    let config = client_config(&ClientTlsSettings {
        ca: dir.join("ca.pem"),
        certificate: dir.join("client.pem"),
        private_key: dir.join("client.key"),
        alpn_protocols: if args.radius11 {
            Radius11::Require.alpn_protocols()
        } else {
            Vec::new()
        },
    })
    .map_err(|e| BenchError::Invalid(format!("--radsec {}: {e}", dir.display())))?;
    let name = rustls::pki_types::ServerName::try_from(args.tls_server_name.clone())
        .map_err(|_| BenchError::Invalid("--tls-server-name is not a DNS name".into()))?;
    let start = Instant::now();
    let mut threads = Vec::with_capacity(connections);
    for k in 0..connections {
        let factory = RequestFactory::new(args, users.clone())?;
        let share = Share {
            server: args.server,
            window: window / connections + usize::from(k < window % connections),
            count: args
                .count
                .map(|c| c / connections as u64 + u64::from((k as u64) < c % connections as u64)),
            stop: args.duration.map(|d| start + d),
            timeout: args.timeout,
            radius11: args.radius11,
        };
        let (config, name) = (config.clone(), name.clone());
        threads.push(std::thread::spawn(move || {
            connection(share, config, name, factory)
        }));
    }
    let mut counts = Counters::default();
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)
        .map_err(|e| BenchError::Invalid(e.to_string()))?;
    for t in threads {
        let (c, h) = t
            .join()
            .map_err(|_| BenchError::Invalid("a RadSec connection thread panicked".into()))??;
        counts.merge(&c);
        let _ = hist.add(&h);
    }
    let elapsed = start.elapsed().as_secs_f64();
    Ok(Report::new(args, window, elapsed, counts, &hist))
}

/// One connection's part of the run.
struct Share {
    server: std::net::SocketAddr,
    window: usize,
    count: Option<u64>,
    stop: Option<Instant>,
    timeout: Duration,
    radius11: bool,
}

type Outcome = Result<(Counters, Histogram<u64>), BenchError>;

fn connection(
    share: Share,
    config: Arc<rustls::ClientConfig>,
    name: rustls::pki_types::ServerName<'static>,
    mut factory: RequestFactory,
) -> Outcome {
    let io = |e: std::io::Error| BenchError::Invalid(format!("RadSec connection: {e}"));
    let tcp = TcpStream::connect(share.server).map_err(io)?;
    tcp.set_nodelay(true).map_err(io)?;
    tcp.set_read_timeout(Some(share.timeout)).map_err(io)?;
    let conn = rustls::ClientConnection::new(config, name)
        .map_err(|e| BenchError::Invalid(format!("TLS: {e}")))?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let mut edge = None;
    if share.radius11 {
        while tls.conn.is_handshaking() {
            tls.conn.complete_io(&mut tls.sock).map_err(io)?;
        }
        Radius11::Require
            .settle(&tls.conn)
            .map_err(|e| BenchError::Invalid(format!("--radius11: {e}")))?;
        edge = Some(ClientEdge::new(factory.secret().clone()));
    }
    let mut wire = [0u8; MAX_PACKET_LEN];
    let mut c = Counters::default();
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)
        .map_err(|e| BenchError::Invalid(e.to_string()))?;
    let mut slots: Vec<Option<(Built, Instant)>> = vec![None; IDS];
    let (mut next_id, mut outstanding) = (0usize, 0usize);
    let mut out = Vec::with_capacity(share.window * 128);
    let mut buf = [0u8; REQUEST_MAX];
    let mut rd = vec![0u8; 64 * 1024];
    let mut decoder = StreamDecoder::new();
    loop {
        let more = |c: &Counters| {
            share.count.map_or(true, |n| c.sent < n)
                && share.stop.map_or(true, |t| Instant::now() < t)
        };
        out.clear();
        while outstanding < share.window && more(&c) {
            while slots[next_id].is_some() {
                next_id = (next_id + 1) % IDS;
            }
            let built = factory.build(next_id as u8, &mut buf)?;
            match edge.as_mut() {
                None => out.extend_from_slice(&buf[..built.len]),
                Some(e) => out.extend_from_slice(
                    e.request(&buf[..built.len], Instant::now(), &mut wire)
                        .map_err(|e| BenchError::Invalid(format!("RADIUS/1.1: {e}")))?,
                ),
            }
            slots[next_id] = Some((built, Instant::now()));
            next_id = (next_id + 1) % IDS;
            outstanding += 1;
            c.sent += 1;
        }
        if !out.is_empty() && tls.write_all(&out).and_then(|_| tls.flush()).is_err() {
            c.send_errors += 1;
            c.timeouts += outstanding as u64;
            break;
        }
        if outstanding == 0 {
            break;
        }
        let n = match tls.read(&mut rd) {
            Ok(0) | Err(_) => {
                c.timeouts += outstanding as u64;
                break;
            }
            Ok(n) => n,
        };
        let now = Instant::now();
        let mut input = &rd[..n];
        loop {
            let d = match decoder.decode(input) {
                Ok(d) => d,
                Err(_) => {
                    c.malformed += 1;
                    c.timeouts += outstanding as u64;
                    return Ok((c, hist));
                }
            };
            let consumed = d.consumed;
            let Some(p) = d.packet else { break };
            let p = match edge.as_mut() {
                None => p,
                Some(e) => match e.reply(p, &mut wire) {
                    Ok(p) => p,
                    Err(_) => {
                        c.unmatched += 1;
                        input = &input[consumed..];
                        continue;
                    }
                },
            };
            outstanding -= reply(p, &mut slots, &factory, &mut c, &mut hist, now);
            input = &input[consumed..];
        }
    }
    tls.conn.send_close_notify();
    let _ = tls.flush();
    Ok((c, hist))
}

/// Judges one reply; 1 if it completed an outstanding request.
fn reply(
    bytes: &[u8],
    slots: &mut [Option<(Built, Instant)>],
    factory: &RequestFactory,
    c: &mut Counters,
    hist: &mut Histogram<u64>,
    now: Instant,
) -> usize {
    let Ok(packet) = Packet::parse(bytes) else {
        c.malformed += 1;
        return 0;
    };
    let id = usize::from(packet.identifier());
    let Some((built, sent)) = slots[id] else {
        c.unmatched += 1;
        return 0;
    };
    if verify_response(&packet, &built.authenticator, factory.secret()).is_err() {
        c.bad_authenticator += 1;
        return 0;
    }
    let code = packet.code();
    c.count_code(code);
    if code != built.expect {
        c.unexpected += 1;
    }
    if code == Code::AccessAccept {
        let judged = check_accept(built.check, &packet);
        c.bad_auth_response += u64::from(judged.bad_auth_response);
        c.no_mppe_keys += u64::from(judged.no_mppe_keys);
    }
    hist.saturating_record((now.saturating_duration_since(sent).as_micros() as u64).max(1));
    slots[id] = None;
    1
}
