//! The client table: which source addresses may talk to us, and with which secret.
//! [`config`] holds `[[clients]]` as written and validated; [`ClientTable`] is what the data
//! plane looks sources up in.

pub mod config;

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

use ipnet::IpNet;

use crate::cfg::ConfigError;
use crate::proto::Secret;

pub use config::ClientConfig;

/// How a client reaches us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    /// RADIUS over TCP (RFC 6613): a shared secret, as over UDP.
    Tcp,
    /// RADIUS over TLS (RFC 6614): identified by its address and its certificate.
    Tls,
}

/// A configured RADIUS client (NAS), ready for the data plane.
#[derive(Debug)]
pub struct Client {
    /// Position in the table; indexes per-client state such as rate limiters.
    pub index: usize,
    pub name: String,
    pub secret: Secret,
    pub require_message_authenticator: bool,
    pub limit_proxy_state: bool,
    pub rate_limit: Option<u32>,
    /// For network policies (`client_groups`).
    pub group: Option<String>,
    pub transport: Transport,
    /// TLS: the certificates accepted (SHA-256 of the DER); empty: any the CA signed.
    pub fingerprints: Vec<[u8; 32]>,
    /// Its DAS (RFC 5176), ready to send to.
    pub das: Option<crate::dynauth::DasTarget>,
    /// May send Disconnect/CoA requests to our CoA listener.
    pub dynauth_upstream: bool,
}

/// Lookup by source address: single addresses by hash, networks by longest prefix; UDP
/// and TLS clients apart.
#[derive(Debug, Default)]
pub struct ClientTable {
    clients: Vec<Client>,
    udp: Index,
    tcp: Index,
    tls: Index,
}

#[derive(Debug, Default)]
struct Index {
    hosts: HashMap<IpAddr, usize>,
    /// Sorted by prefix length, longest first, so the first match is the most specific.
    networks: Vec<(IpNet, usize)>,
}

impl Index {
    fn lookup(&self, ip: IpAddr) -> Option<usize> {
        let ip = match ip {
            // A v4-mapped source (from a dual-stack socket) is the IPv4 client it maps.
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        if let Some(&i) = self.hosts.get(&ip) {
            return Some(i);
        }
        self.networks
            .iter()
            .find(|(n, _)| n.contains(&ip))
            .map(|&(_, i)| i)
    }
}

impl ClientTable {
    pub fn build(configs: &[ClientConfig]) -> Result<ClientTable, ConfigError> {
        let mut t = ClientTable::default();
        for (index, c) in configs.iter().enumerate() {
            let secret = Secret::new(c.secret.expose().as_bytes()).map_err(|e| {
                ConfigError::new(&c.file, c.line, format!("client {:?}: {e}", c.name))
            })?;
            let das = c
                .das
                .as_ref()
                .map(crate::dynauth::DasTarget::from_config)
                .transpose()
                .map_err(|e| {
                    ConfigError::new(&c.file, c.line, format!("client {:?}: das: {e}", c.name))
                })?;
            let ix = match c.transport {
                Transport::Udp => &mut t.udp,
                Transport::Tcp => &mut t.tcp,
                Transport::Tls => &mut t.tls,
            };
            for net in &c.networks {
                if net.prefix_len() == net.max_prefix_len() {
                    ix.hosts.insert(net.addr(), index);
                } else {
                    ix.networks.push((*net, index));
                }
            }
            t.clients.push(Client {
                index,
                name: c.name.clone(),
                secret,
                require_message_authenticator: c.require_message_authenticator,
                limit_proxy_state: c.limit_proxy_state,
                rate_limit: c.rate_limit,
                group: c.group.clone(),
                transport: c.transport,
                fingerprints: c.fingerprints.clone(),
                das,
                dynauth_upstream: c.dynauth_upstream,
            });
        }
        for ix in [&mut t.udp, &mut t.tcp, &mut t.tls] {
            ix.networks
                .sort_by_key(|(n, _)| std::cmp::Reverse(n.prefix_len()));
        }
        Ok(t)
    }

    /// The UDP client `ip` belongs to.
    pub fn lookup(&self, ip: IpAddr) -> Option<&Client> {
        self.udp.lookup(ip).and_then(|i| self.clients.get(i))
    }

    /// The RadSec (TLS) client `ip` belongs to.
    pub fn lookup_tls(&self, ip: IpAddr) -> Option<&Client> {
        self.tls.lookup(ip).and_then(|i| self.clients.get(i))
    }

    /// The RADIUS/TCP client `ip` belongs to.
    pub fn lookup_tcp(&self, ip: IpAddr) -> Option<&Client> {
        self.tcp.lookup(ip).and_then(|i| self.clients.get(i))
    }

    /// Whether any RadSec client is configured.
    pub fn has_tls(&self) -> bool {
        !self.tls.hosts.is_empty() || !self.tls.networks.is_empty()
    }

    /// The client at `index` (its position in the table).
    pub fn get(&self, index: usize) -> Option<&Client> {
        self.clients.get(index)
    }

    pub fn len(&self) -> usize {
        self.clients.len()
    }

    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Client> {
        self.clients.iter()
    }

    /// The DAS of the client named `name` (what `dynauth::Dispatcher` sends to).
    pub fn das_of(&self, name: &str) -> Option<crate::dynauth::DasTarget> {
        self.clients.iter().find(|c| c.name == name)?.das.clone()
    }

    /// The UDP client at `ip`, if it may send us Disconnect/CoA requests (the CoA listener).
    pub fn dynauth_upstream(&self, ip: IpAddr) -> Option<crate::dynauth::Upstream> {
        self.lookup(ip)
            .filter(|c| c.dynauth_upstream)
            .map(|c| crate::dynauth::Upstream {
                name: c.name.clone(),
                secret: c.secret.clone(),
            })
    }
}

/// A token bucket, one per client per shard: each shard gets `rate / shards` of a client's
/// budget, which keeps the limiter core-local at the cost of some unevenness between shards.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    per_sec: f64,
    burst: f64,
    tokens: f64,
    last: Option<Instant>,
}

impl RateLimiter {
    pub fn new(per_sec: f64) -> RateLimiter {
        // A burst of one second's worth absorbs a NAS's natural clumping.
        let burst = per_sec.max(1.0);
        RateLimiter {
            per_sec,
            burst,
            tokens: burst,
            last: None,
        }
    }

    pub fn allow(&mut self, now: Instant) -> bool {
        if let Some(last) = self.last {
            let dt = now.saturating_duration_since(last).as_secs_f64();
            self.tokens = (self.tokens + dt * self.per_sec).min(self.burst);
        }
        self.last = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::time::Duration;

    fn table(text: &str) -> ClientTable {
        let c = crate::config::Config::from_str(text, Path::new("t.toml"), None).unwrap();
        ClientTable::build(&c.clients).unwrap()
    }

    #[test]
    fn tls_clients_are_apart_from_udp_ones_on_the_same_address() {
        let fp = "AB:".repeat(31) + "AB";
        let t = table(&format!(
            "[[clients]]\nname = \"nas\"\naddresses = [\"127.0.0.1\"]\nsecret = \"testing123\"\n\
             [[clients]]\nname = \"peer\"\naddresses = [\"127.0.0.0/8\"]\ntransport = \"tls\"\n\
             fingerprints = [\"sha256:{fp}\"]\n"
        ));
        let ip = "127.0.0.1".parse().unwrap();
        assert_eq!(t.lookup(ip).unwrap().name, "nas");
        let peer = t.lookup_tls(ip).unwrap();
        assert_eq!(peer.name, "peer");
        assert_eq!(peer.secret.as_bytes(), b"radsec");
        assert!(!peer.require_message_authenticator);
        assert_eq!(peer.fingerprints, vec![[0xab; 32]]);
        assert!(t.lookup_tls("10.0.0.1".parse().unwrap()).is_none());
        assert!(t.has_tls());

        for (bad, why) in [
            ("transport = \"sctp\"", "is not \"udp\", \"tcp\" or \"tls\""),
            (
                "transport = \"tls\"\nfingerprints = [\"abc\"]",
                "not a SHA-256",
            ),
            ("fingerprints = [\"abc\"]", "are for transport"),
        ] {
            let text = format!(
                "[[clients]]\nname = \"p\"\naddresses = [\"10.0.0.1\"]\nsecret = \"s\"\n{bad}\n"
            );
            let e = crate::config::Config::from_str(&text, Path::new("t.toml"), None).unwrap_err();
            assert!(e.to_string().contains(why), "{bad}: {e}");
        }
        let e = crate::config::Config::from_str(
            "[[clients]]\nname = \"p\"\naddresses = [\"10.0.0.1\"]\n",
            Path::new("t.toml"),
            None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("needs a secret"), "{e}");
        let t = table(
            "[[clients]]\nname = \"tcp-nas\"\naddresses = [\"127.0.0.1\"]\nsecret = \"s\"\ntransport = \"tcp\"\n",
        );
        let ip = "127.0.0.1".parse().unwrap();
        assert_eq!(t.lookup_tcp(ip).unwrap().name, "tcp-nas");
        assert!(t.lookup(ip).is_none() && t.lookup_tls(ip).is_none());
    }

    #[test]
    fn most_specific_client_wins() {
        let t = table(
            "[[clients]]\nname = \"wide\"\naddresses = [\"10.0.0.0/8\", \"::1\"]\nsecret = \"a\"\n\
             [[clients]]\nname = \"narrow\"\naddresses = [\"10.1.0.0/16\"]\nsecret = \"b\"\n\
             [[clients]]\nname = \"host\"\naddresses = [\"10.1.2.3\"]\nsecret = \"c\"\n",
        );
        let name = |ip: &str| t.lookup(ip.parse().unwrap()).map(|c| c.name.as_str());
        assert_eq!(name("10.9.9.9"), Some("wide"));
        assert_eq!(name("10.1.9.9"), Some("narrow"));
        assert_eq!(name("10.1.2.3"), Some("host"));
        assert_eq!(name("::1"), Some("wide"));
        assert_eq!(name("::ffff:10.1.2.3"), Some("host"));
        assert_eq!(name("192.0.2.1"), None);
    }

    #[test]
    fn rate_limiter_refills() {
        let mut r = RateLimiter::new(2.0);
        let t0 = Instant::now();
        assert!(r.allow(t0));
        assert!(r.allow(t0));
        assert!(!r.allow(t0));
        assert!(r.allow(t0 + Duration::from_millis(600)));
        assert!(!r.allow(t0 + Duration::from_millis(600)));
    }
}
