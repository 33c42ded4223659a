//! `[dynauth]` (the sender's limits and the CoA listener) and a client's `das = {...}`.
//!
//! ```toml
//! [dynauth]
//! timeout = "2s"              # per try; each retransmission waits twice as long as the last
//! retries = 3                 # retransmissions after the first try (so 2+4+8+16 = 30 s at most)
//! max_outstanding = 1024      # requests in flight at most (all DASes); 256 per UDP socket
//! max_queued = 65536          # more wait in a queue; past it a request is refused ("overloaded")
//! listen = ["0.0.0.0:3799"]   # the CoA listener for `dynauth_upstream` clients; absent: none
//! source = "192.0.2.10"       # optional: the address requests to NASes are sent from
//!
//! [[clients]]
//! name = "nas1"
//! addresses = ["192.0.2.1"]
//! secret = "..."
//! das = { address = "192.0.2.1:3799", secret = "...", identify = ["acct-session-id", "user-name"] }
//! ```

use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;
use toml::Spanned;

use crate::cfg::{ConfigError, DurationValue, SecretText};

/// RFC 5176 §3: the port a DAS listens on unless told otherwise.
pub const DAS_PORT: u16 = 3799;
/// One UDP socket carries 256 identifiers; this many sockets at most.
pub const MAX_SOCKETS: usize = 64;
const MAX_OUTSTANDING: usize = MAX_SOCKETS * 256;
const MAX_QUEUED: usize = 1_000_000;
const MAX_RETRIES: u32 = 10;
const MAX_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawDynAuth {
    pub timeout: Option<Spanned<DurationValue>>,
    pub retries: Option<Spanned<u32>>,
    pub max_outstanding: Option<Spanned<usize>>,
    pub max_queued: Option<Spanned<usize>>,
    #[serde(default)]
    pub listen: Vec<SocketAddr>,
    pub source: Option<IpAddr>,
}

/// `[dynauth]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynAuthConfig {
    /// How long the first try waits for an answer; retransmission `n` waits `timeout * 2^n`.
    pub timeout: Duration,
    /// Retransmissions after the first try.
    pub retries: u32,
    /// Requests in flight at most, over all DASes.
    pub max_outstanding: usize,
    /// Requests waiting for a slot at most; past it a request is answered `overloaded`.
    pub max_queued: usize,
    /// The CoA listener's addresses; empty: no listener.
    pub listen: Vec<SocketAddr>,
    /// The address requests are sent from; `None`: whatever the route picks.
    pub source: Option<IpAddr>,
}

impl Default for DynAuthConfig {
    fn default() -> DynAuthConfig {
        DynAuthConfig {
            timeout: Duration::from_secs(2),
            retries: 3,
            max_outstanding: 1024,
            max_queued: 65_536,
            listen: Vec::new(),
            source: None,
        }
    }
}

impl DynAuthConfig {
    pub fn from_raw(
        raw: RawDynAuth,
        origin: &Path,
        at: &impl Fn(Range<usize>) -> usize,
    ) -> Result<DynAuthConfig, ConfigError> {
        let d = DynAuthConfig::default();
        let err = |span: Range<usize>, m: &str| ConfigError::new(origin, at(span), m.to_string());
        let timeout = match raw.timeout {
            Some(t) if t.get_ref().0.is_zero() || t.get_ref().0 > MAX_TIMEOUT => {
                return Err(err(
                    t.span(),
                    "dynauth.timeout must be above zero and at most 60s",
                ))
            }
            Some(t) => t.into_inner().0,
            None => d.timeout,
        };
        let retries = match raw.retries {
            Some(r) if *r.get_ref() > MAX_RETRIES => {
                return Err(err(r.span(), "dynauth.retries must be at most 10"))
            }
            Some(r) => r.into_inner(),
            None => d.retries,
        };
        let max_outstanding = match raw.max_outstanding {
            Some(n) if *n.get_ref() == 0 || *n.get_ref() > MAX_OUTSTANDING => {
                return Err(err(
                    n.span(),
                    "dynauth.max_outstanding must be between 1 and 16384 (64 sockets of 256 identifiers)",
                ))
            }
            Some(n) => n.into_inner(),
            None => d.max_outstanding,
        };
        let max_queued = match raw.max_queued {
            Some(n) if *n.get_ref() > MAX_QUEUED => {
                return Err(err(n.span(), "dynauth.max_queued must be at most 1000000"))
            }
            Some(n) => n.into_inner(),
            None => d.max_queued,
        };
        Ok(DynAuthConfig {
            timeout,
            retries,
            max_outstanding,
            max_queued,
            listen: raw.listen,
            source: raw.source,
        })
    }

    /// The UDP sockets the sender needs for `max_outstanding` identifiers.
    pub fn sockets(&self) -> usize {
        self.max_outstanding.div_ceil(256).clamp(1, MAX_SOCKETS)
    }
}

/// A session attribute a NAS may want in the requests that name a session (RFC 5176 §3:
/// NAS identification and session identification attributes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum IdentifyAttr {
    UserName,
    AcctSessionId,
    NasIpAddress,
    NasIdentifier,
    NasPort,
    NasPortId,
    FramedIpAddress,
    CallingStationId,
    CalledStationId,
    AcctMultiSessionId,
    ChargeableUserIdentity,
}

impl IdentifyAttr {
    pub const ALL: [IdentifyAttr; 11] = [
        IdentifyAttr::UserName,
        IdentifyAttr::AcctSessionId,
        IdentifyAttr::NasIpAddress,
        IdentifyAttr::NasIdentifier,
        IdentifyAttr::NasPort,
        IdentifyAttr::NasPortId,
        IdentifyAttr::FramedIpAddress,
        IdentifyAttr::CallingStationId,
        IdentifyAttr::CalledStationId,
        IdentifyAttr::AcctMultiSessionId,
        IdentifyAttr::ChargeableUserIdentity,
    ];

    /// The spelling in `identify = [...]`.
    pub const fn label(self) -> &'static str {
        match self {
            IdentifyAttr::UserName => "user-name",
            IdentifyAttr::AcctSessionId => "acct-session-id",
            IdentifyAttr::NasIpAddress => "nas-ip-address",
            IdentifyAttr::NasIdentifier => "nas-identifier",
            IdentifyAttr::NasPort => "nas-port",
            IdentifyAttr::NasPortId => "nas-port-id",
            IdentifyAttr::FramedIpAddress => "framed-ip-address",
            IdentifyAttr::CallingStationId => "calling-station-id",
            IdentifyAttr::CalledStationId => "called-station-id",
            IdentifyAttr::AcctMultiSessionId => "acct-multi-session-id",
            IdentifyAttr::ChargeableUserIdentity => "chargeable-user-identity",
        }
    }

    pub fn from_label(s: &str) -> Option<IdentifyAttr> {
        IdentifyAttr::ALL.into_iter().find(|a| a.label() == s)
    }
}

/// Which session attributes a NAS wants to find a session by: a set of [`IdentifyAttr`].
/// Each is sent only when the session has it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Identify(u16);

impl Identify {
    pub const fn empty() -> Identify {
        Identify(0)
    }

    pub fn with(self, a: IdentifyAttr) -> Identify {
        Identify(self.0 | 1 << a as u8)
    }

    pub fn contains(&self, a: IdentifyAttr) -> bool {
        self.0 & (1 << a as u8) != 0
    }

    pub fn iter(&self) -> impl Iterator<Item = IdentifyAttr> + '_ {
        IdentifyAttr::ALL.into_iter().filter(|a| self.contains(*a))
    }
}

impl Default for Identify {
    /// User-Name, Acct-Session-Id, NAS-IP-Address and NAS-Identifier (as the session had
    /// them), Calling-Station-Id and Framed-IP-Address: what most NASes match a session by,
    /// and enough for the strict ones that want the NAS identification echoed (RFC 5176 §3).
    fn default() -> Identify {
        [
            IdentifyAttr::UserName,
            IdentifyAttr::AcctSessionId,
            IdentifyAttr::NasIpAddress,
            IdentifyAttr::NasIdentifier,
            IdentifyAttr::CallingStationId,
            IdentifyAttr::FramedIpAddress,
        ]
        .into_iter()
        .fold(Identify::empty(), Identify::with)
    }
}

impl std::fmt::Debug for Identify {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.iter().map(IdentifyAttr::label))
            .finish()
    }
}

/// A client's `das = { address, secret, identify }` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDas {
    /// `"ip:port"` or a bare IP (port 3799); absent: the client's first single address.
    pub address: Option<Spanned<String>>,
    pub secret: Spanned<String>,
    pub identify: Option<Vec<Spanned<String>>>,
}

/// A client's DAS, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DasConfig {
    pub address: SocketAddr,
    pub secret: SecretText,
    pub identify: Identify,
}

impl DasConfig {
    /// Validates the `das` of client `client` (whose `addresses` are `networks`), written at
    /// `line` of `origin`.
    pub fn from_raw(
        raw: RawDas,
        client: &str,
        networks: &[IpNet],
        origin: &Path,
        line: usize,
        at: &impl Fn(Range<usize>) -> usize,
    ) -> Result<DasConfig, ConfigError> {
        let err =
            |l: usize, m: String| ConfigError::new(origin, l, format!("client {client:?}: {m}"));
        let address = match raw.address {
            Some(a) => parse_das_address(a.get_ref()).ok_or_else(|| {
                err(
                    at(a.span()),
                    format!(
                        "das.address {:?} is not an IP address or IP:port",
                        a.get_ref()
                    ),
                )
            })?,
            None => networks
                .iter()
                .find(|n| n.prefix_len() == n.max_prefix_len())
                .map(|n| SocketAddr::new(n.addr(), DAS_PORT))
                .ok_or_else(|| {
                    err(
                        line,
                        "das needs an address: the client lists only networks, so there is no NAS address to default to".to_string(),
                    )
                })?,
        };
        if raw.secret.get_ref().is_empty() {
            return Err(err(
                at(raw.secret.span()),
                "das.secret must not be empty".into(),
            ));
        }
        let identify = match raw.identify {
            None => Identify::default(),
            Some(list) => {
                let mut set = Identify::empty();
                for item in &list {
                    let a = IdentifyAttr::from_label(item.get_ref()).ok_or_else(|| {
                        let known: Vec<&str> =
                            IdentifyAttr::ALL.iter().map(|a| a.label()).collect();
                        err(
                            at(item.span()),
                            format!(
                                "das.identify: {:?} is not one of {}",
                                item.get_ref(),
                                known.join(", ")
                            ),
                        )
                    })?;
                    set = set.with(a);
                }
                if set == Identify::empty() {
                    return Err(err(
                        line,
                        "das.identify must name at least one attribute: a NAS cannot find a session by nothing".into(),
                    ));
                }
                set
            }
        };
        Ok(DasConfig {
            address,
            secret: SecretText::new(raw.secret.into_inner()),
            identify,
        })
    }
}

/// `"192.0.2.1:3799"`, `"[2001:db8::1]:3799"`, or a bare address (port 3799).
fn parse_das_address(text: &str) -> Option<SocketAddr> {
    text.parse::<SocketAddr>().ok().or_else(|| {
        text.parse::<IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, DAS_PORT))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn load(text: &str) -> Result<Config, ConfigError> {
        Config::from_str(text, Path::new("t.toml"), None)
    }

    const NAS: &str = "[[clients]]\nname = \"nas\"\naddresses = [\"10.0.0.0/8\", \"192.0.2.7\"]\nsecret = \"testing123\"\n";

    #[test]
    fn client_das_defaults_and_errors_carry_their_line() {
        let c = load(&format!("{NAS}das = {{ secret = \"dassecret\" }}\n")).expect("valid");
        let das = c.clients[0].das.as_ref().expect("das");
        assert_eq!(
            das.address,
            "192.0.2.7:3799".parse().unwrap(),
            "first single address"
        );
        assert_eq!(das.identify, Identify::default());
        assert_eq!(das.secret.expose(), "dassecret");
        assert!(!c.clients[0].dynauth_upstream);
        let c = load(&format!(
            "{NAS}das = {{ address = \"198.51.100.1:1700\", secret = \"x\", identify = [\"acct-session-id\", \"nas-port\"] }}\n"
        ))
        .expect("valid");
        let das = c.clients[0].das.as_ref().unwrap();
        assert_eq!(das.address.port(), 1700);
        assert_eq!(
            das.identify.iter().collect::<Vec<_>>(),
            [IdentifyAttr::AcctSessionId, IdentifyAttr::NasPort]
        );
        let table = crate::clients::ClientTable::build(&c.clients).expect("builds");
        let target = table.das_of("nas").expect("runtime DAS");
        assert_eq!(target.secret.as_bytes(), b"x");
        assert!(table.das_of("other").is_none());

        for (das, line, why) in [
            (
                "das = { secret = \"s\", identify = [\"colour\"] }",
                5,
                "is not one of",
            ),
            ("das = { secret = \"\" }", 5, "must not be empty"),
            (
                "das = { address = \"nas.example\", secret = \"s\" }",
                5,
                "not an IP address",
            ),
            ("das = { secret = \"s\", identify = [] }", 5, "at least one"),
            ("das = { secret = \"s\", port = 1 }", 5, "unknown field"),
        ] {
            let e = load(&format!("{NAS}{das}\n")).expect_err(das).to_string();
            assert!(
                e.contains(why) && e.starts_with(&format!("t.toml:{line}:")),
                "{das}: {e}"
            );
        }
        let e = load("[[clients]]\nname = \"net\"\naddresses = [\"10.0.0.0/8\"]\nsecret = \"s\"\ndas = { secret = \"s\" }\n")
            .expect_err("networks only")
            .to_string();
        assert!(
            e.starts_with("t.toml:5:") && e.contains("needs an address"),
            "{e}"
        );
    }

    #[test]
    fn dynauth_section_is_validated_and_warns_about_unused_listeners() {
        let c = load("[dynauth]\ntimeout = \"500ms\"\nretries = 1\nmax_outstanding = 600\nlisten = [\"127.0.0.1:3799\"]\n")
            .expect("valid");
        let d = c.dynauth.as_ref().expect("present");
        assert_eq!(
            (d.timeout, d.retries, d.sockets()),
            (Duration::from_millis(500), 1, 3)
        );
        assert!(c
            .warnings
            .iter()
            .any(|w| w.to_string().contains("no client has dynauth_upstream")));
        assert!(load("").unwrap().dynauth.is_none());
        for (text, why) in [
            ("timeout = \"0s\"", "above zero"),
            ("retries = 11", "at most 10"),
            ("max_outstanding = 0", "between 1 and 16384"),
            ("max_queued = 2000000", "at most 1000000"),
            ("window = 3", "unknown field"),
        ] {
            let e = load(&format!("\n[dynauth]\n{text}\n"))
                .expect_err(text)
                .to_string();
            assert!(e.starts_with("t.toml:3:") && e.contains(why), "{text}: {e}");
        }
        let c = load(&format!("{NAS}dynauth_upstream = true\n")).expect("valid");
        assert!(c.clients[0].dynauth_upstream);
        assert!(c
            .warnings
            .iter()
            .any(|w| w.to_string().contains("no [dynauth] listen")));
        let table = crate::clients::ClientTable::build(&c.clients).unwrap();
        assert_eq!(
            table
                .dynauth_upstream("10.1.2.3".parse().unwrap())
                .map(|u| u.name),
            Some("nas".into())
        );
        assert!(table
            .dynauth_upstream("192.168.0.1".parse().unwrap())
            .is_none());
        let e = load("[[clients]]\nname = \"t\"\naddresses = [\"10.0.0.1\"]\ntransport = \"tls\"\ndynauth_upstream = true\n")
            .expect_err("tls upstream")
            .to_string();
        assert!(e.contains("for UDP clients"), "{e}");
    }

    #[test]
    fn identify_labels_round_trip_and_default_is_the_documented_set() {
        for a in IdentifyAttr::ALL {
            assert_eq!(IdentifyAttr::from_label(a.label()), Some(a));
        }
        let d = Identify::default();
        assert!(d.contains(IdentifyAttr::AcctSessionId) && d.contains(IdentifyAttr::UserName));
        assert!(!d.contains(IdentifyAttr::NasPort));
        assert_eq!(d.iter().count(), 6);
        assert_eq!(
            parse_das_address("::1"),
            Some("[::1]:3799".parse().unwrap())
        );
        assert_eq!(
            parse_das_address("10.0.0.1:1700"),
            Some("10.0.0.1:1700".parse().unwrap())
        );
        assert_eq!(parse_das_address("nas.example"), None);
    }
}
