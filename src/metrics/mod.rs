//! Counters. Each shard owns its [`ShardMetrics`] and is its only writer; a scrape reads every
//! shard's and adds them up. A single writer needs no atomic read-modify-write: `inc` is a
//! relaxed load and store, which compiles to plain moves, so the hot path shares no cache line
//! with another core and takes no lock.

pub mod http;
pub mod prometheus;

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

/// A counter with one writer (its shard) and any number of readers.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    #[inline]
    pub fn inc(&self) {
        self.add(1)
    }

    #[inline]
    pub fn add(&self, n: u64) {
        self.0.store(self.0.load(Relaxed).wrapping_add(n), Relaxed)
    }

    /// For gauges (e.g. cache size): the writer sets the current value.
    #[inline]
    pub fn set(&self, v: u64) {
        self.0.store(v, Relaxed)
    }

    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

macro_rules! reasons {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident => $label:literal,)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vm])* $variant,)* }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];
            pub const COUNT: usize = $name::ALL.len();
            /// Stable label for metrics and logs.
            pub fn label(self) -> &'static str {
                match self { $($name::$variant => $label,)* }
            }
        }
    };
}

reasons! {
    /// Why a datagram was dropped without a reply. RFC 2865 asks for silent discard; counting
    /// each reason is how an operator finds the misconfigured NAS.
    DropReason {
        /// Shorter than a RADIUS header.
        TooShort => "too_short",
        /// Longer than 4096 octets.
        TooLong => "too_long",
        /// Length field out of range or larger than the datagram.
        BadLength => "bad_length",
        UnknownCode => "unknown_code",
        /// An attribute with length < 2 or running past the packet.
        MalformedAttribute => "malformed_attribute",
        /// More than one Message-Authenticator, or one of the wrong length.
        BadMessageAuthenticatorFormat => "bad_message_authenticator_format",
        /// Source address matches no configured client.
        UnknownClient => "unknown_client",
        RateLimited => "rate_limited",
        MissingMessageAuthenticator => "missing_message_authenticator",
        BadMessageAuthenticator => "bad_message_authenticator",
        BadRequestAuthenticator => "bad_request_authenticator",
        /// A reply code (Access-Accept, …) sent to a server port.
        NotARequest => "not_a_request",
        /// Proxy-State without Message-Authenticator from a client with limit_proxy_state.
        ProxyStateWithoutMessageAuthenticator => "proxy_state_without_message_authenticator",
        /// A request this port does not serve (Accounting-Request on the auth port, CoA, …).
        WrongPort => "wrong_port",
        /// Too many requests in progress on this shard.
        Overloaded => "overloaded",
        /// The accounting log could not be written: no Accounting-Response without durability.
        AccountingWriteFailed => "accounting_write_failed",
        /// The backend queue was full and `on_overload = "drop"`.
        BackendOverloaded => "backend_overloaded",
        /// No directory answered by the deadline and `on_unavailable = "drop"`.
        BackendUnavailable => "backend_unavailable",
        /// A proxied request got no answer: no home server alive (pool on_unavailable =
        /// "drop") or none answered in its response window; the NAS retries.
        HomeServerUnavailable => "home_server_unavailable",
    }
}

reasons! {
    /// Why a RadSec connection ended (or was never served).
    StreamClose {
        /// `[radsec] max_connections` were open on this shard.
        ConnectionLimit => "connection_limit",
        /// The source address is no `transport = "tls"` client.
        UnknownClient => "unknown_client",
        /// No certificate, or one the CA did not sign (or expired, revoked, wrong use).
        BadCertificate => "bad_certificate",
        /// A certificate the client entry does not pin.
        FingerprintMismatch => "fingerprint_mismatch",
        /// Any other TLS failure.
        TlsError => "tls_error",
        /// The handshake was not done by `handshake_timeout` (slowloris).
        HandshakeTimeout => "handshake_timeout",
        /// No packet for `idle_timeout`.
        IdleTimeout => "idle_timeout",
        /// A Length field outside 20..=4096: framing lost (RFC 6613 §2.6.1).
        BadFraming => "bad_framing",
        /// The peer sends and never reads its replies.
        Backlog => "backlog",
        /// The handshake workers' queue was full.
        HandshakeOverload => "handshake_overload",
        /// The handshake settled on no RADIUS version `radius_1_1` allows (require: no
        /// radius/1.1; radius/1.1 over TLS 1.2).
        AlpnMismatch => "alpn_mismatch",
        /// The peer closed it (close_notify or FIN), or the socket failed.
        PeerClosed => "peer_closed",
        /// The shard stopped.
        Stopped => "stopped",
    }
}

reasons! {
    /// Requests answered without a reply being built, or replies replayed.
    DuplicateKind {
        /// A retransmission of a request still being processed: absorbed.
        InProgress => "in_progress",
        /// A retransmission of an answered request: the cached reply was sent again.
        Replayed => "replayed",
    }
}

/// RADIUS codes we count by name; others land in `other`.
pub const CODES: &[(u8, &str)] = &[
    (1, "Access-Request"),
    (2, "Access-Accept"),
    (3, "Access-Reject"),
    (4, "Accounting-Request"),
    (5, "Accounting-Response"),
    (11, "Access-Challenge"),
    (12, "Status-Server"),
    (40, "Disconnect-Request"),
    (43, "CoA-Request"),
];

pub(crate) fn code_slot(code: u8) -> usize {
    CODES
        .iter()
        .position(|(c, _)| *c == code)
        .unwrap_or(CODES.len())
}

/// A latency histogram with fixed buckets, single writer like [`Counter`].
#[derive(Debug)]
pub struct Histogram {
    /// Counts per bucket: `buckets[i]` counts observations ≤ `LATENCY_BUCKETS_US[i]`
    /// (not cumulative; the exposition makes them so), the last one everything above.
    pub buckets: [Counter; LATENCY_BUCKETS_US.len() + 1],
    pub sum_us: Counter,
    pub count: Counter,
}

/// Bucket upper bounds in microseconds: from a fast NVMe fsync to a struggling disk or a slow
/// directory server.
pub const LATENCY_BUCKETS_US: [u64; 14] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000,
    5_000_000,
];

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: std::array::from_fn(|_| Counter::default()),
            sum_us: Counter::default(),
            count: Counter::default(),
        }
    }
}

impl Histogram {
    pub fn observe_us(&self, us: u64) {
        let i = LATENCY_BUCKETS_US
            .iter()
            .position(|&b| us <= b)
            .unwrap_or(LATENCY_BUCKETS_US.len());
        self.buckets[i].inc();
        self.sum_us.add(us);
        self.count.inc();
    }
}

/// A latency histogram written from several threads (the backend pool's workers).
#[derive(Debug)]
pub struct SharedHistogram {
    pub buckets: [AtomicU64; LATENCY_BUCKETS_US.len() + 1],
    pub sum_us: AtomicU64,
    pub count: AtomicU64,
}

impl Default for SharedHistogram {
    fn default() -> Self {
        SharedHistogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_us: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }
}

impl SharedHistogram {
    pub fn observe_us(&self, us: u64) {
        let i = LATENCY_BUCKETS_US
            .iter()
            .position(|&b| us <= b)
            .unwrap_or(LATENCY_BUCKETS_US.len());
        self.buckets[i].fetch_add(1, Relaxed);
        self.sum_us.fetch_add(us, Relaxed);
        self.count.fetch_add(1, Relaxed);
    }
}

/// Counters of the backend pool (directory work off the shards). Written by shards and pool
/// threads alike, so these are real atomic adds; none is on the local-user or accounting path.
#[derive(Debug, Default)]
pub struct BackendMetrics {
    /// Jobs queued for the pool.
    pub submitted: AtomicU64,
    /// Requests that joined a job already in flight for the same attempt (single-flight).
    pub joined: AtomicU64,
    /// Answered from the positive / negative result cache.
    pub cache_hits_positive: AtomicU64,
    pub cache_hits_negative: AtomicU64,
    /// Refused because the queue was full.
    pub shed: AtomicU64,
    /// Jobs whose deadline passed (in the queue or at the directory).
    pub deadline_exceeded: AtomicU64,
    /// Jobs waiting in the queue (sampled at submit and dispatch).
    pub queue_depth: AtomicU64,
    pub queue_capacity: AtomicU64,
    /// Jobs running at the directory.
    pub in_flight: AtomicU64,
    /// Simple binds sent as users (not the service account).
    pub ldap_user_binds: AtomicU64,
    /// MS-CHAP checks sent to winbindd.
    pub winbind_calls: AtomicU64,
    /// Connections opened to directory servers, and failures that made us fail over.
    pub ldap_connects: AtomicU64,
    pub ldap_server_failures: AtomicU64,
    /// `[sql] ip_pool`: lease updates from accounting dropped because too many waited.
    pub sql_lease_updates_dropped: AtomicU64,
    /// Directory outcomes by label (`accept`, reject reasons, `unavailable`).
    pub outcomes: Mutex<std::collections::BTreeMap<&'static str, u64>>,
    /// From queueing to answer.
    pub latency: SharedHistogram,
}

impl BackendMetrics {
    pub fn outcome(&self, label: &'static str) {
        let mut m = self.outcomes.lock().unwrap_or_else(|e| e.into_inner());
        *m.entry(label).or_insert(0) += 1;
    }

    pub fn outcome_count(&self, label: &str) -> u64 {
        let m = self.outcomes.lock().unwrap_or_else(|e| e.into_inner());
        m.get(label).copied().unwrap_or(0)
    }
}

/// `radshard_mfa_*` counters.
#[derive(Debug, Default)]
pub struct MfaMetrics {
    pub challenges_issued: std::sync::atomic::AtomicU64,
    /// OTP challenges pending.
    pub pending: std::sync::atomic::AtomicU64,
    /// Pushes pending (requests held for the user's answer).
    pub pushes_pending: std::sync::atomic::AtomicU64,
    /// Pushes sent to the provider, and copies of an attempt that joined a pending one.
    pub pushes_sent: std::sync::atomic::AtomicU64,
    pub push_joined: std::sync::atomic::AtomicU64,
    /// Outcomes by label: `accept`, `accept_unenrolled`, or a reject reason label.
    pub outcomes: Mutex<std::collections::BTreeMap<&'static str, u64>>,
}

impl MfaMetrics {
    pub fn outcome(&self, label: &'static str) {
        let mut m = self.outcomes.lock().unwrap_or_else(|e| e.into_inner());
        *m.entry(label).or_insert(0) += 1;
    }

    pub fn outcome_count(&self, label: &str) -> u64 {
        let m = self.outcomes.lock().unwrap_or_else(|e| e.into_inner());
        m.get(label).copied().unwrap_or(0)
    }
}

static MFA: Mutex<Option<Arc<MfaMetrics>>> = Mutex::new(None);

/// Makes `m` the MFA store's counters the scrape shows.
pub fn register_mfa(m: Arc<MfaMetrics>) {
    *MFA.lock().unwrap_or_else(|e| e.into_inner()) = Some(m);
}

/// The metrics of the latest MFA store started, for the scrape.
pub fn mfa() -> Option<Arc<MfaMetrics>> {
    MFA.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// EAP's counters (never a key or an inner password): one set per process, kept across
/// reloads.
#[derive(Debug, Default)]
pub struct EapMetrics {
    pub conversations_opened: AtomicU64,
    pub conversations_refused: AtomicU64,
    /// Swept after their idle timeout.
    pub conversations_expired: AtomicU64,
    pub handshakes_full: AtomicU64,
    pub handshakes_resumed: AtomicU64,
    pub tls12: AtomicU64,
    pub tls13: AtomicU64,
    pub accepts: AtomicU64,
    /// Accepts by EAP method: PEAP, EAP-TTLS, EAP-TLS.
    pub accepts_by_method: [AtomicU64; 3],
    /// Rejects by reason label (a bounded set: the reasons are an enum).
    pub rejects: Mutex<std::collections::BTreeMap<&'static str, u64>>,
}

impl EapMetrics {
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// The EAP methods [`EapMetrics::accepts_by_method`] counts, in its order.
    pub const METHODS: [crate::vocab::Method; 3] = [
        crate::vocab::Method::Peap,
        crate::vocab::Method::Ttls,
        crate::vocab::Method::EapTls,
    ];

    /// One accepted login of `method`.
    pub fn accepted(&self, method: crate::vocab::Method) {
        Self::bump(&self.accepts);
        if let Some(i) = Self::METHODS.iter().position(|&m| m == method) {
            Self::bump(&self.accepts_by_method[i]);
        }
    }

    pub fn reject(&self, reason: &'static str) {
        let mut m = self.rejects.lock().unwrap_or_else(|e| e.into_inner());
        *m.entry(reason).or_insert(0) += 1;
    }
}

static EAP: std::sync::OnceLock<EapMetrics> = std::sync::OnceLock::new();

/// EAP's counters, shown by the scrape from the first use on.
pub fn eap() -> &'static EapMetrics {
    EAP.get_or_init(EapMetrics::default)
}

/// EAP's counters if EAP was ever configured.
pub fn eap_if_used() -> Option<&'static EapMetrics> {
    EAP.get()
}

static PROXY: Mutex<Option<Arc<crate::proxy::client::ProxyMetrics>>> = Mutex::new(None);

/// Makes the proxy client's counters part of every scrape (the latest client started).
pub fn register_proxy(m: Arc<crate::proxy::client::ProxyMetrics>) {
    *PROXY.lock().unwrap_or_else(|e| e.into_inner()) = Some(m);
}

pub fn proxy() -> Option<Arc<crate::proxy::client::ProxyMetrics>> {
    PROXY.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

static SHIP: Mutex<Option<Arc<crate::accounting::ship::ShipMetrics>>> = Mutex::new(None);

/// Makes the SQL accounting shipper's counters part of every scrape.
pub fn register_ship(m: Arc<crate::accounting::ship::ShipMetrics>) {
    *SHIP.lock().unwrap_or_else(|e| e.into_inner()) = Some(m);
}

pub fn ship() -> Option<Arc<crate::accounting::ship::ShipMetrics>> {
    SHIP.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

static BACKEND: Mutex<Option<Arc<BackendMetrics>>> = Mutex::new(None);

/// Makes the backend pool's counters part of every scrape (the latest pool started).
pub fn register_backend(m: Arc<BackendMetrics>) {
    *BACKEND.lock().unwrap_or_else(|e| e.into_inner()) = Some(m);
}

pub fn backend() -> Option<Arc<BackendMetrics>> {
    BACKEND.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Per-client counters of one shard. The shard indexes them by the client's position in the
/// table; the scrape merges shards by client name.
#[derive(Debug, Default)]
pub struct ClientCounters {
    pub requests: [Counter; CODES.len() + 1],
    pub replies: [Counter; CODES.len() + 1],
    /// Datagrams from this client dropped after it was identified (bad authenticators, …).
    pub dropped: Counter,
}

impl ClientCounters {
    #[inline]
    pub fn request(&self, code: u8) {
        self.requests[code_slot(code)].inc()
    }

    #[inline]
    pub fn reply(&self, code: u8) {
        self.replies[code_slot(code)].inc()
    }
}

/// One shard's counters.
#[derive(Debug)]
pub struct ShardMetrics {
    pub received: Counter,
    /// Non-empty `recvmmsg` batches: `received / batches` is the average batch size.
    pub batches: Counter,
    pub drops: [Counter; DropReason::COUNT],
    pub duplicates: [Counter; DuplicateKind::COUNT],
    /// Verified requests by code (last slot: other codes).
    pub requests: [Counter; CODES.len() + 1],
    /// Replies sent by code (cached replays included).
    pub replies: [Counter; CODES.len() + 1],
    pub send_errors: Counter,
    pub accounting_records: Counter,
    pub accounting_fsyncs: Counter,
    pub reply_cache_entries: Counter,
    pub reply_cache_evicted_early: Counter,
    pub in_progress: Counter,
    pub accounting_fsync_latency: Histogram,
    /// RadSec connections accepted (TCP) on this shard.
    pub radsec_accepted: Counter,
    /// Of those, established speaking RADIUS/1.1 (ALPN `radius/1.1`).
    pub radsec_radius11: Counter,
    /// RadSec connections open now (a gauge).
    pub radsec_open: Counter,
    pub radsec_closed: [Counter; StreamClose::COUNT],
    /// Per-client counters by name. Locked only when the client table changes (start,
    /// reload) and at scrape; the hot path uses the shard's own `Arc`s.
    pub clients: Mutex<Vec<(String, Arc<ClientCounters>)>>,
}

impl Default for ShardMetrics {
    fn default() -> Self {
        ShardMetrics {
            received: Counter::default(),
            batches: Counter::default(),
            drops: std::array::from_fn(|_| Counter::default()),
            duplicates: std::array::from_fn(|_| Counter::default()),
            requests: std::array::from_fn(|_| Counter::default()),
            replies: std::array::from_fn(|_| Counter::default()),
            send_errors: Counter::default(),
            accounting_records: Counter::default(),
            accounting_fsyncs: Counter::default(),
            reply_cache_entries: Counter::default(),
            reply_cache_evicted_early: Counter::default(),
            in_progress: Counter::default(),
            accounting_fsync_latency: Histogram::default(),
            radsec_accepted: Counter::default(),
            radsec_radius11: Counter::default(),
            radsec_open: Counter::default(),
            radsec_closed: std::array::from_fn(|_| Counter::default()),
            clients: Mutex::new(Vec::new()),
        }
    }
}

impl ShardMetrics {
    #[inline]
    pub fn count_drop(&self, reason: DropReason) {
        self.drops[reason as usize].inc()
    }

    #[inline]
    pub fn duplicate(&self, kind: DuplicateKind) {
        self.duplicates[kind as usize].inc()
    }

    #[inline]
    pub fn request(&self, code: u8) {
        self.requests[code_slot(code)].inc()
    }

    #[inline]
    pub fn reply(&self, code: u8) {
        self.replies[code_slot(code)].inc()
    }

    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.drops[reason as usize].get()
    }

    pub fn total_drops(&self) -> u64 {
        self.drops.iter().map(Counter::get).sum()
    }

    pub fn requests_with(&self, code: u8) -> u64 {
        self.requests[code_slot(code)].get()
    }

    pub fn replies_with(&self, code: u8) -> u64 {
        self.replies[code_slot(code)].get()
    }
}

impl ShardMetrics {
    /// Counters for `names` (the current client table, in order), keeping the existing
    /// counters of clients that stay, so a reload does not reset them.
    pub fn client_counters(&self, names: &[&str]) -> Vec<Arc<ClientCounters>> {
        let mut list = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        let out: Vec<Arc<ClientCounters>> = names
            .iter()
            .map(|n| {
                list.iter()
                    .find(|(m, _)| m == n)
                    .map(|(_, c)| c.clone())
                    .unwrap_or_default()
            })
            .collect();
        *list = names
            .iter()
            .map(|n| n.to_string())
            .zip(out.iter().cloned())
            .collect();
        out
    }
}

pub(crate) fn code_name(slot: usize) -> &'static str {
    CODES.get(slot).map_or("other", |(_, n)| n)
}

/// Sums over shards, for a scrape or a test.
pub fn total(shards: &[std::sync::Arc<ShardMetrics>], f: impl Fn(&ShardMetrics) -> u64) -> u64 {
    shards.iter().map(|s| f(s)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_count() {
        let m = ShardMetrics::default();
        m.count_drop(DropReason::UnknownClient);
        m.count_drop(DropReason::UnknownClient);
        m.request(1);
        m.request(99);
        m.reply(2);
        assert_eq!(m.dropped(DropReason::UnknownClient), 2);
        assert_eq!(m.total_drops(), 2);
        assert_eq!(m.requests_with(1), 1);
        assert_eq!(m.requests_with(77), 1, "unknown codes share the other slot");
        assert_eq!(m.replies_with(2), 1);
    }

    #[test]
    fn labels_are_unique() {
        let mut l: Vec<_> = DropReason::ALL.iter().map(|r| r.label()).collect();
        l.sort();
        l.dedup();
        assert_eq!(l.len(), DropReason::COUNT);
    }
}
