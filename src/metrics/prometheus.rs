//! Prometheus text exposition (format 0.0.4) of every shard's counters, summed at scrape time.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::{
    code_name, BackendMetrics, Counter, DropReason, DuplicateKind, Histogram, ShardMetrics,
    StreamClose, CODES, LATENCY_BUCKETS_US,
};

/// Renders all metrics. Names start with `radshard_`.
pub fn render(shards: &[Arc<ShardMetrics>]) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let sum = |f: &dyn Fn(&ShardMetrics) -> u64| shards.iter().map(|s| f(s)).sum::<u64>();

    header(
        &mut out,
        "radshard_shards",
        "gauge",
        "Number of data-plane shards.",
    );
    let _ = writeln!(out, "radshard_shards {}", shards.len());

    header(
        &mut out,
        "radshard_datagrams_received_total",
        "counter",
        "Datagrams received, per shard.",
    );
    for (i, s) in shards.iter().enumerate() {
        let _ = writeln!(
            out,
            "radshard_datagrams_received_total{{shard=\"{i}\"}} {}",
            s.received.get()
        );
    }

    header(
        &mut out,
        "radshard_dropped_total",
        "counter",
        "Datagrams dropped without a reply, by reason.",
    );
    for r in DropReason::ALL {
        let _ = writeln!(
            out,
            "radshard_dropped_total{{reason=\"{}\"}} {}",
            r.label(),
            sum(&|s| s.dropped(*r))
        );
    }

    header(
        &mut out,
        "radshard_radsec_connections_accepted_total",
        "counter",
        "RadSec (RADIUS over TLS) connections accepted.",
    );
    let _ = writeln!(
        out,
        "radshard_radsec_connections_accepted_total {}",
        sum(&|s| s.radsec_accepted.get())
    );
    header(
        &mut out,
        "radshard_radsec_connections_open",
        "gauge",
        "RadSec connections open now.",
    );
    let _ = writeln!(
        out,
        "radshard_radsec_connections_open {}",
        sum(&|s| s.radsec_open.get())
    );
    header(
        &mut out,
        "radshard_radsec_connections_radius11_total",
        "counter",
        "RadSec connections established speaking RADIUS/1.1 (ALPN radius/1.1, RFC 9765).",
    );
    let _ = writeln!(
        out,
        "radshard_radsec_connections_radius11_total {}",
        sum(&|s| s.radsec_radius11.get())
    );
    header(
        &mut out,
        "radshard_radsec_connections_closed_total",
        "counter",
        "RadSec connections closed or refused, by reason.",
    );
    for r in StreamClose::ALL {
        let _ = writeln!(
            out,
            "radshard_radsec_connections_closed_total{{reason=\"{}\"}} {}",
            r.label(),
            sum(&|s| s.radsec_closed[*r as usize].get())
        );
    }

    header(
        &mut out,
        "radshard_duplicates_total",
        "counter",
        "Retransmissions absorbed (in progress) or answered from the reply cache.",
    );
    for k in DuplicateKind::ALL {
        let _ = writeln!(
            out,
            "radshard_duplicates_total{{kind=\"{}\"}} {}",
            k.label(),
            sum(&|s| s.duplicates[*k as usize].get())
        );
    }

    // Per client and code, merged over shards by client name.
    let mut clients: BTreeMap<String, ([u64; CODES.len() + 1], [u64; CODES.len() + 1], u64)> =
        BTreeMap::new();
    for s in shards {
        let list = s.clients.lock().unwrap_or_else(|e| e.into_inner());
        for (name, c) in list.iter() {
            let e = clients.entry(name.clone()).or_insert((
                [0; CODES.len() + 1],
                [0; CODES.len() + 1],
                0,
            ));
            add_into(&mut e.0, &c.requests);
            add_into(&mut e.1, &c.replies);
            e.2 += c.dropped.get();
        }
    }
    header(
        &mut out,
        "radshard_requests_total",
        "counter",
        "Verified requests by client and code.",
    );
    for (name, (req, _, _)) in &clients {
        for (slot, v) in req.iter().enumerate().filter(|(_, v)| **v > 0) {
            let _ = writeln!(
                out,
                "radshard_requests_total{{client=\"{}\",code=\"{}\"}} {v}",
                escape(name),
                code_name(slot)
            );
        }
    }
    header(
        &mut out,
        "radshard_replies_total",
        "counter",
        "Replies sent by client and code (cached replays included).",
    );
    for (name, (_, rep, _)) in &clients {
        for (slot, v) in rep.iter().enumerate().filter(|(_, v)| **v > 0) {
            let _ = writeln!(
                out,
                "radshard_replies_total{{client=\"{}\",code=\"{}\"}} {v}",
                escape(name),
                code_name(slot)
            );
        }
    }
    header(
        &mut out,
        "radshard_client_dropped_total",
        "counter",
        "Datagrams from a known client dropped (bad authenticator, rate limit, …).",
    );
    for (name, (_, _, d)) in &clients {
        let _ = writeln!(
            out,
            "radshard_client_dropped_total{{client=\"{}\"}} {d}",
            escape(name)
        );
    }

    header(
        &mut out,
        "radshard_send_errors_total",
        "counter",
        "Replies the kernel refused to send.",
    );
    let _ = writeln!(
        out,
        "radshard_send_errors_total {}",
        sum(&|s| s.send_errors.get())
    );
    header(
        &mut out,
        "radshard_reply_cache_entries",
        "gauge",
        "Answered requests held for retransmissions.",
    );
    let _ = writeln!(
        out,
        "radshard_reply_cache_entries {}",
        sum(&|s| s.reply_cache_entries.get())
    );
    header(
        &mut out,
        "radshard_reply_cache_evicted_early_total",
        "counter",
        "Cached replies evicted before their TTL for lack of room.",
    );
    let _ = writeln!(
        out,
        "radshard_reply_cache_evicted_early_total {}",
        sum(&|s| s.reply_cache_evicted_early.get())
    );
    header(
        &mut out,
        "radshard_requests_in_progress",
        "gauge",
        "Requests being processed (slow path or waiting for accounting fsync).",
    );
    let _ = writeln!(
        out,
        "radshard_requests_in_progress {}",
        sum(&|s| s.in_progress.get())
    );
    header(
        &mut out,
        "radshard_accounting_records_total",
        "counter",
        "Accounting records made durable.",
    );
    let _ = writeln!(
        out,
        "radshard_accounting_records_total {}",
        sum(&|s| s.accounting_records.get())
    );
    header(
        &mut out,
        "radshard_accounting_fsyncs_total",
        "counter",
        "Accounting group commits.",
    );
    let _ = writeln!(
        out,
        "radshard_accounting_fsyncs_total {}",
        sum(&|s| s.accounting_fsyncs.get())
    );

    histogram(
        &mut out,
        "radshard_accounting_fsync_seconds",
        "Time to write and fdatasync one accounting batch.",
        shards.iter().map(|s| &s.accounting_fsync_latency),
    );
    if let Some(b) = super::backend() {
        render_backend(&mut out, &b);
    }
    if let Some(m) = super::mfa() {
        render_mfa(&mut out, &m);
    }
    if let Some(e) = super::eap_if_used() {
        render_eap(&mut out, e);
    }
    if let Some(p) = super::proxy() {
        render_proxy(&mut out, &p);
    }
    if let Some(s) = super::ship() {
        render_ship(&mut out, &s);
    }
    out
}

/// The SQL accounting shipper: what it shipped, how far behind it is, what went wrong.
fn render_ship(out: &mut String, s: &crate::accounting::ship::ShipMetrics) {
    let get = |a: &AtomicU64| a.load(Relaxed);
    for (name, kind, help, v) in [
        (
            "radshard_sql_ship_records_total",
            "counter",
            "Accounting log records shipped to the database.",
            get(&s.records),
        ),
        (
            "radshard_sql_ship_rows_total",
            "counter",
            "radacct rows written (records of one session in one batch are one row).",
            get(&s.rows),
        ),
        (
            "radshard_sql_ship_batches_total",
            "counter",
            "Shipping transactions committed.",
            get(&s.batches),
        ),
        (
            "radshard_sql_ship_lag_bytes",
            "gauge",
            "Bytes of the accounting log not yet shipped.",
            get(&s.lag_bytes),
        ),
        (
            "radshard_sql_ship_lag_seconds",
            "gauge",
            "Age of the oldest accounting record not yet shipped (0: caught up).",
            get(&s.lag_seconds),
        ),
    ] {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
        );
    }
    let name = "radshard_sql_ship_errors_total";
    let _ = writeln!(
        out,
        "# HELP {name} Shipping failures by kind (connect, write, read, unreadable_line, missing_file).\n# TYPE {name} counter"
    );
    for (kind, v) in s.errors() {
        let _ = writeln!(out, "{name}{{kind=\"{kind}\"}} {v}");
    }
}

/// The proxy client: each home server's state and traffic, refused replies and failures.
fn render_proxy(out: &mut String, p: &crate::proxy::client::ProxyMetrics) {
    let homes = p.homes.lock().unwrap_or_else(|e| e.into_inner()).clone();
    header(
        out,
        "radshard_proxy_home_state",
        "gauge",
        "1 for each home server's current state (alive, zombie, dead).",
    );
    for h in &homes {
        for state in ["alive", "zombie", "dead"] {
            let v = u8::from(h.state == state);
            let _ = writeln!(
                out,
                "radshard_proxy_home_state{{home=\"{}\",state=\"{state}\"}} {v}",
                h.name
            );
        }
    }
    type Field = fn(&crate::proxy::client::HomeSnapshot) -> u64;
    let fields: [(&str, &str, &str, Field); 7] = [
        (
            "radshard_proxy_home_outstanding",
            "gauge",
            "Requests outstanding to the home server.",
            |h| h.outstanding,
        ),
        (
            "radshard_proxy_home_requests_total",
            "counter",
            "Requests forwarded to the home server.",
            |h| h.requests,
        ),
        (
            "radshard_proxy_home_answers_total",
            "counter",
            "Verified answers from the home server.",
            |h| h.answers,
        ),
        (
            "radshard_proxy_home_timeouts_total",
            "counter",
            "Forwarded requests the home server did not answer in its response window.",
            |h| h.timeouts,
        ),
        (
            "radshard_proxy_home_retransmits_total",
            "counter",
            "Forwarded requests sent again because the NAS retransmitted.",
            |h| h.retransmits,
        ),
        (
            "radshard_proxy_status_checks_sent_total",
            "counter",
            "Status-Server checks sent to the home server.",
            |h| h.status_sent,
        ),
        (
            "radshard_proxy_status_checks_answered_total",
            "counter",
            "Status-Server checks the home server answered.",
            |h| h.status_answered,
        ),
    ];
    for (name, kind, help, f) in fields {
        header(out, name, kind, help);
        for h in &homes {
            let _ = writeln!(out, "{name}{{home=\"{}\"}} {}", h.name, f(h));
        }
    }
    for (name, help, map) in [
        (
            "radshard_proxy_replies_refused_total",
            "Home server replies dropped because they do not verify, by reason.",
            &p.refused,
        ),
        (
            "radshard_proxy_failures_total",
            "Proxied requests that got no home server answer, by reason.",
            &p.failures,
        ),
    ] {
        header(out, name, "counter", help);
        let m = map.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for (reason, v) in m {
            let _ = writeln!(out, "{name}{{reason=\"{reason}\"}} {v}");
        }
    }
    header(
        out,
        "radshard_proxy_replies_unmatched_total",
        "counter",
        "Home server datagrams that answer nothing outstanding (late or duplicate).",
    );
    let _ = writeln!(
        out,
        "radshard_proxy_replies_unmatched_total {}",
        p.unmatched.load(Relaxed)
    );
}

/// EAP: conversations, handshakes by kind and TLS version, logins by outcome and reason.
fn render_eap(out: &mut String, e: &super::EapMetrics) {
    let get = |c: &std::sync::atomic::AtomicU64| c.load(Relaxed);
    for (name, help, v) in [
        (
            "radshard_eap_conversations_opened_total",
            "EAP conversations opened (an EAP-Response/Identity answered).",
            get(&e.conversations_opened),
        ),
        (
            "radshard_eap_conversations_refused_total",
            "EAP rounds refused because the conversation store (or the client's share) was full.",
            get(&e.conversations_refused),
        ),
        (
            "radshard_eap_conversations_expired_total",
            "EAP conversations dropped after the idle timeout with no round (abandoned by the peer or the NAS).",
            get(&e.conversations_expired),
        ),
        (
            "radshard_eap_accepts_total",
            "EAP logins accepted.",
            get(&e.accepts),
        ),
    ] {
        header(out, name, "counter", help);
        let _ = writeln!(out, "{name} {v}");
    }
    header(
        out,
        "radshard_eap_handshakes_total",
        "counter",
        "TLS handshakes completed, by kind and TLS version.",
    );
    for (kind, v) in [
        ("full", get(&e.handshakes_full)),
        ("resumed", get(&e.handshakes_resumed)),
    ] {
        let _ = writeln!(out, "radshard_eap_handshakes_total{{kind=\"{kind}\"}} {v}");
    }
    header(
        out,
        "radshard_eap_tls_versions_total",
        "counter",
        "TLS handshakes completed, by TLS version.",
    );
    for (version, v) in [("1.2", get(&e.tls12)), ("1.3", get(&e.tls13))] {
        let _ = writeln!(
            out,
            "radshard_eap_tls_versions_total{{version=\"{version}\"}} {v}"
        );
    }
    header(
        out,
        "radshard_eap_accepts_by_method_total",
        "counter",
        "EAP logins accepted, by EAP method.",
    );
    for (method, c) in super::EapMetrics::METHODS.iter().zip(&e.accepts_by_method) {
        let _ = writeln!(
            out,
            "radshard_eap_accepts_by_method_total{{method=\"{}\"}} {}",
            method.label(),
            get(c)
        );
    }
    header(
        out,
        "radshard_eap_rejects_total",
        "counter",
        "EAP logins rejected, by reason.",
    );
    let rejects = e.rejects.lock().unwrap_or_else(|p| p.into_inner());
    for (reason, v) in rejects.iter() {
        let _ = writeln!(out, "radshard_eap_rejects_total{{reason=\"{reason}\"}} {v}");
    }
}

/// The second factor: challenges issued, pending, outcomes.
fn render_mfa(out: &mut String, m: &super::MfaMetrics) {
    header(
        out,
        "radshard_mfa_challenges_issued_total",
        "counter",
        "Access-Challenges issued for a second factor.",
    );
    let _ = writeln!(
        out,
        "radshard_mfa_challenges_issued_total {}",
        m.challenges_issued.load(Relaxed)
    );
    header(
        out,
        "radshard_mfa_pending",
        "gauge",
        "Second-factor challenges issued and not yet answered (expired ones until purged).",
    );
    let _ = writeln!(out, "radshard_mfa_pending {}", m.pending.load(Relaxed));
    for (name, kind, help, v) in [
        (
            "radshard_mfa_pushes_pending",
            "gauge",
            "Pushes sent and not yet answered (requests held for them).",
            m.pushes_pending.load(Relaxed),
        ),
        (
            "radshard_mfa_pushes_sent_total",
            "counter",
            "Pushes sent to the provider.",
            m.pushes_sent.load(Relaxed),
        ),
        (
            "radshard_mfa_push_joined_total",
            "counter",
            "Copies of an attempt that joined a pending push instead of sending another.",
            m.push_joined.load(Relaxed),
        ),
    ] {
        header(out, name, kind, help);
        let _ = writeln!(out, "{name} {v}");
    }
    header(
        out,
        "radshard_mfa_outcomes_total",
        "counter",
        "Second-factor decisions by outcome (accept, accept_unenrolled, or the reject reason).",
    );
    for (label, v) in m.outcomes.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        let _ = writeln!(
            out,
            "radshard_mfa_outcomes_total{{outcome=\"{label}\"}} {v}"
        );
    }
}

/// The backend pool: queue, sheds, single-flight, caches, directory outcomes and latency.
fn render_backend(out: &mut String, b: &BackendMetrics) {
    let get = |a: &AtomicU64| a.load(Relaxed);
    for (name, kind, help, v) in [
        (
            "radshard_backend_queue_depth",
            "gauge",
            "Jobs waiting in the backend queue.",
            get(&b.queue_depth),
        ),
        (
            "radshard_backend_queue_capacity",
            "gauge",
            "Capacity of the backend queue.",
            get(&b.queue_capacity),
        ),
        (
            "radshard_backend_in_flight",
            "gauge",
            "Backend jobs running at a directory.",
            get(&b.in_flight),
        ),
        (
            "radshard_backend_jobs_total",
            "counter",
            "Jobs queued for the backend pool.",
            get(&b.submitted),
        ),
        (
            "radshard_backend_joined_total",
            "counter",
            "Requests that joined an identical attempt in flight (single-flight).",
            get(&b.joined),
        ),
        (
            "radshard_backend_shed_total",
            "counter",
            "Requests shed because the backend queue was full.",
            get(&b.shed),
        ),
        (
            "radshard_backend_deadline_exceeded_total",
            "counter",
            "Backend jobs whose deadline passed.",
            get(&b.deadline_exceeded),
        ),
        (
            "radshard_ldap_user_binds_total",
            "counter",
            "Simple binds sent as users.",
            get(&b.ldap_user_binds),
        ),
        (
            "radshard_winbind_calls_total",
            "counter",
            "MS-CHAP checks sent to winbindd.",
            get(&b.winbind_calls),
        ),
        (
            "radshard_ldap_connects_total",
            "counter",
            "Connections opened to directory servers.",
            get(&b.ldap_connects),
        ),
        (
            "radshard_ldap_server_failures_total",
            "counter",
            "Directory server failures (connect, timeout, I/O) that caused a failover.",
            get(&b.ldap_server_failures),
        ),
        (
            "radshard_sql_lease_updates_dropped_total",
            "counter",
            "IP pool lease updates from accounting dropped (queue full); those leases run to their expiry.",
            get(&b.sql_lease_updates_dropped),
        ),
    ] {
        header(out, name, kind, help);
        let _ = writeln!(out, "{name} {v}");
    }
    header(
        out,
        "radshard_backend_cache_hits_total",
        "counter",
        "Answers served from the backend result cache.",
    );
    let _ = writeln!(
        out,
        "radshard_backend_cache_hits_total{{kind=\"positive\"}} {}",
        get(&b.cache_hits_positive)
    );
    let _ = writeln!(
        out,
        "radshard_backend_cache_hits_total{{kind=\"negative\"}} {}",
        get(&b.cache_hits_negative)
    );
    header(
        out,
        "radshard_ldap_outcomes_total",
        "counter",
        "Directory authentication outcomes by result.",
    );
    for (label, v) in b.outcomes.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        let _ = writeln!(
            out,
            "radshard_ldap_outcomes_total{{outcome=\"{label}\"}} {v}"
        );
    }
    let buckets: Vec<u64> = b.latency.buckets.iter().map(get).collect();
    histogram_values(
        out,
        "radshard_backend_latency_seconds",
        "Backend job latency, from queueing to answer.",
        &buckets,
        get(&b.latency.sum_us),
        get(&b.latency.count),
    );
}

fn add_into(acc: &mut [u64], counters: &[Counter]) {
    for (a, c) in acc.iter_mut().zip(counters) {
        *a += c.get();
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn histogram<'a>(
    out: &mut String,
    name: &str,
    help: &str,
    hs: impl Iterator<Item = &'a Histogram>,
) {
    let mut buckets = [0u64; LATENCY_BUCKETS_US.len() + 1];
    let (mut sum_us, mut count) = (0u64, 0u64);
    for h in hs {
        add_into(&mut buckets, &h.buckets);
        sum_us += h.sum_us.get();
        count += h.count.get();
    }
    histogram_values(out, name, help, &buckets, sum_us, count);
}

fn histogram_values(
    out: &mut String,
    name: &str,
    help: &str,
    buckets: &[u64],
    sum_us: u64,
    count: u64,
) {
    header(out, name, "histogram", help);
    let mut cumulative = 0;
    for (i, b) in LATENCY_BUCKETS_US.iter().enumerate() {
        cumulative += buckets[i];
        let _ = writeln!(
            out,
            "{name}_bucket{{le=\"{}\"}} {cumulative}",
            *b as f64 / 1e6
        );
    }
    cumulative += buckets[LATENCY_BUCKETS_US.len()];
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
    let _ = writeln!(out, "{name}_sum {}", sum_us as f64 / 1e6);
    let _ = writeln!(out, "{name}_count {count}");
}

/// Escapes a label value (backslash, quote, newline).
/// A label value with `\\`, `"` and newlines escaped.
pub fn escape_label(v: &str) -> String {
    escape(v)
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_backend_pool() {
        let b = BackendMetrics::default();
        b.shed.fetch_add(3, Relaxed);
        b.queue_capacity.store(64, Relaxed);
        b.outcome("bad_password");
        b.outcome("accept");
        b.outcome("accept");
        b.latency.observe_us(4_000);
        let mut out = String::new();
        render_backend(&mut out, &b);
        for line in [
            "radshard_backend_shed_total 3",
            "radshard_backend_queue_capacity 64",
            "radshard_ldap_outcomes_total{outcome=\"accept\"} 2",
            "radshard_ldap_outcomes_total{outcome=\"bad_password\"} 1",
            "radshard_backend_latency_seconds_bucket{le=\"0.005\"} 1",
            "radshard_backend_latency_seconds_count 1",
            "radshard_backend_cache_hits_total{kind=\"negative\"} 0",
        ] {
            assert!(out.contains(line), "missing {line:?} in\n{out}");
        }
    }

    #[test]
    fn renders_eap_conversations_methods_and_reasons() {
        use crate::vocab::Method;
        let e = super::super::EapMetrics::default();
        e.accepted(Method::Peap);
        e.accepted(Method::Peap);
        e.accepted(Method::EapTls);
        super::super::EapMetrics::bump(&e.conversations_expired);
        super::super::EapMetrics::bump(&e.tls13);
        e.reject("certificate_rejected");
        let mut out = String::new();
        render_eap(&mut out, &e);
        for line in [
            "radshard_eap_accepts_total 3",
            "radshard_eap_accepts_by_method_total{method=\"peap\"} 2",
            "radshard_eap_accepts_by_method_total{method=\"ttls\"} 0",
            "radshard_eap_accepts_by_method_total{method=\"eap-tls\"} 1",
            "radshard_eap_conversations_expired_total 1",
            "# TYPE radshard_eap_tls_versions_total counter",
            "radshard_eap_tls_versions_total{version=\"1.3\"} 1",
            "radshard_eap_rejects_total{reason=\"certificate_rejected\"} 1",
        ] {
            assert!(out.contains(line), "missing {line:?} in\n{out}");
        }
    }

    #[test]
    fn renders_summed_counters_and_histograms() {
        let a = Arc::new(ShardMetrics::default());
        let b = Arc::new(ShardMetrics::default());
        a.count_drop(DropReason::UnknownClient);
        b.count_drop(DropReason::UnknownClient);
        let ca = a.client_counters(&["lo"]);
        let cb = b.client_counters(&["lo"]);
        ca[0].request(1);
        cb[0].request(1);
        cb[0].reply(2);
        a.accounting_fsync_latency.observe_us(300);
        b.accounting_fsync_latency.observe_us(2_000_000);
        let text = render(&[a, b]);
        assert!(
            text.contains("radshard_dropped_total{reason=\"unknown_client\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("radshard_requests_total{client=\"lo\",code=\"Access-Request\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("radshard_replies_total{client=\"lo\",code=\"Access-Accept\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("radshard_accounting_fsync_seconds_bucket{le=\"0.0005\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("radshard_accounting_fsync_seconds_bucket{le=\"+Inf\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("radshard_accounting_fsync_seconds_count 2"),
            "{text}"
        );
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            assert!(line.starts_with("radshard_"), "{line}");
        }
    }

    #[test]
    fn client_counters_survive_a_reload() {
        let m = ShardMetrics::default();
        let c = m.client_counters(&["a", "b"]);
        c[1].request(4);
        let c2 = m.client_counters(&["b", "c"]);
        assert_eq!(c2[0].requests[crate::metrics::code_slot(4)].get(), 1);
        assert_eq!(c2[1].requests[crate::metrics::code_slot(4)].get(), 0);
    }
}
