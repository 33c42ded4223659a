//! `[proxy]`: home servers, pools and realms.
//!
//! ```toml
//! [proxy]
//! max_proxy_states = 4          # Proxy-States a request may carry before it is a loop
//! prefix_slash = false          # also route `realm/user`
//! nt_domain = false             # also route `DOMAIN\user`
//! operator_name = "1example.edu" # RFC 5580 Operator-Name on forwarded requests (eduroam)
//! request_cui = true            # ask home servers for Chargeable-User-Identity (RFC 4372)
//!
//! [[proxy.home_servers]]
//! name = "remote-a"
//! address = "127.0.0.1:18120"
//! secret = "testing123"
//! response_window = "20s"       # FreeRADIUS's names and defaults
//! zombie_period = "40s"
//! revive_interval = "120s"
//! status_checks = true
//! check_interval = "30s"
//! check_timeout = "4s"
//! num_answers_to_alive = 3
//! max_outstanding = 4096        # in flight to it at most (16 source ports of 256 IDs)
//! require_message_authenticator = "auto"  # true, false, or "auto": required once it signs
//! protocol = "udp"              # "tcp" (RFC 6613) or "tls" (RadSec, RFC 6614; secret "radsec")
//! # tls = { ca = "ca.pem", certificate = "client.pem", private_key = "client.key",
//! #         server_name = "radius.example" }   # server_name default: the address's IP
//!
//! [[proxy.pools]]
//! name = "remote"
//! type = "fail-over"            # or "load-balance", "keyed-balance"
//! home_servers = ["remote-a", "remote-b"]
//! on_unavailable = "reject"     # or "drop": no answer, so the NAS fails over
//! drop_reply_attributes = ["Tunnel-Type", "Tunnel-Medium-Type", "Tunnel-Private-Group-Id"]
//!
//! [[proxy.realms]]
//! name = "remote.test"          # or regex = "…", default = true, no_realm = true
//! auth_pool = "remote"          # absent: answered here; reject = true: refused
//! acct_pool = "remote-acct"     # absent: recorded here
//! user_name = "strip"           # or "keep", "keep_for_eap"
//! ```
//!
//! Names without a realm are answered here unless a `no_realm` entry says otherwise; a realm
//! no entry matches is rejected.

use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::engine::{HomeId, HomeSpec, HomeTransport, PoolId, PoolSpec};
use super::forward::{ForwardRules, ReplyMaRule, DEFAULT_MAX_PROXY_STATES};
use super::home::HomeSettings;
use super::pool::{Fallback, Pool, PoolKind};
use super::realm::{AcctTarget, AuthTarget, NaiForms, RealmRoute, RealmTable, StripRealm};
use crate::cfg::{ConfigError, DurationValue};
use crate::proto::Secret;

const DEFAULT_MAX_OUTSTANDING: usize = 4096;
const MAX_HOME_SERVERS: usize = 1024;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProxy {
    pub max_proxy_states: Option<Spanned<usize>>,
    pub operator_name: Option<Spanned<String>>,
    #[serde(default)]
    pub request_cui: bool,
    #[serde(default)]
    pub prefix_slash: bool,
    #[serde(default)]
    pub nt_domain: bool,
    #[serde(default)]
    pub home_servers: Vec<Spanned<RawHome>>,
    #[serde(default)]
    pub pools: Vec<Spanned<RawPool>>,
    #[serde(default)]
    pub realms: Vec<Spanned<RawRealm>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHome {
    pub name: Spanned<String>,
    pub address: Spanned<SocketAddr>,
    /// Required over UDP and TCP; `"radsec"` over TLS unless given (RFC 6614 §2.3).
    pub secret: Option<Spanned<String>>,
    /// `"udp"` (default), `"tcp"` (RFC 6613) or `"tls"` (RadSec, RFC 6614; needs `tls`).
    pub protocol: Option<Spanned<String>>,
    pub tls: Option<Spanned<RawHomeTls>>,
    pub response_window: Option<DurationValue>,
    pub zombie_period: Option<DurationValue>,
    pub revive_interval: Option<DurationValue>,
    pub status_checks: Option<bool>,
    pub check_interval: Option<DurationValue>,
    pub check_timeout: Option<DurationValue>,
    pub num_answers_to_alive: Option<u32>,
    pub max_outstanding: Option<Spanned<usize>>,
    /// A boolean or `"auto"` (a `Value`, not an untagged enum, so its span survives).
    pub require_message_authenticator: Option<Spanned<toml::Value>>,
}

/// A home server's `tls = { … }`: how radshard authenticates the home server and itself.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHomeTls {
    /// The CAs the home server's certificate must chain to.
    pub ca: Spanned<PathBuf>,
    /// Our certificate and key, presented to the home server.
    pub certificate: Spanned<PathBuf>,
    pub private_key: Spanned<PathBuf>,
    /// The name its certificate must carry; default: the address's IP.
    pub server_name: Option<Spanned<String>>,
    /// RFC 9765 via ALPN: "allow" (the default), "require" or "forbid".
    pub radius_1_1: Option<crate::radsec::radius11::Radius11>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPool {
    pub name: Spanned<String>,
    #[serde(rename = "type")]
    pub kind: Option<Spanned<String>>,
    pub home_servers: Spanned<Vec<Spanned<String>>>,
    pub on_unavailable: Option<Spanned<String>>,
    #[serde(default)]
    pub drop_reply_attributes: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRealm {
    pub name: Option<Spanned<String>>,
    pub regex: Option<Spanned<String>>,
    #[serde(default)]
    pub default: bool,
    #[serde(default)]
    pub no_realm: bool,
    pub auth_pool: Option<Spanned<String>>,
    pub acct_pool: Option<Spanned<String>>,
    #[serde(default)]
    pub reject: bool,
    pub user_name: Option<Spanned<String>>,
}

/// `[proxy]`, validated.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    pub homes: Vec<HomeSpec>,
    pub pools: Vec<PoolSpec>,
    /// Per pool (by [`PoolId`]): attribute types left out of its home servers' replies.
    pub drop_reply_attributes: Vec<Box<[u8]>>,
    pub realms: RealmTable,
    /// What every forwarded request gets (loop limit, Operator-Name, CUI request).
    pub forward: ForwardRules,
}

impl ProxyConfig {
    pub fn pool_id(&self, name: &str) -> Option<PoolId> {
        self.pools.iter().position(|p| &*p.name == name).map(PoolId)
    }

    /// Whether `other` runs the same home servers and pools (a reload can keep the running
    /// proxy client, its liveness and its outstanding requests).
    pub fn same_engine(&self, other: &ProxyConfig) -> bool {
        let homes = self.homes.len() == other.homes.len()
            && self.homes.iter().zip(&other.homes).all(|(a, b)| {
                a.name == b.name
                    && a.address == b.address
                    && a.secret.as_bytes() == b.secret.as_bytes()
                    && a.settings == b.settings
                    && a.max_outstanding == b.max_outstanding
                    && a.reply_ma == b.reply_ma
                    && a.transport == b.transport
            });
        let pools = self.pools.len() == other.pools.len()
            && self
                .pools
                .iter()
                .zip(&other.pools)
                .all(|(a, b)| a.name == b.name && a.pool == b.pool && a.members == b.members);
        homes && pools && self.forward == other.forward
    }

    /// Validates `[proxy]` from `origin`; `at` maps a span to its line.
    pub fn from_raw(
        raw: RawProxy,
        origin: &Path,
        at: &impl Fn(Range<usize>) -> usize,
        resolve: &impl Fn(&Path) -> PathBuf,
    ) -> Result<ProxyConfig, ConfigError> {
        let err = |span: Range<usize>, m: String| ConfigError::new(origin, at(span), m);
        let max_proxy_states = match raw.max_proxy_states {
            Some(n) if *n.get_ref() == 0 || *n.get_ref() > 64 => {
                return Err(err(
                    n.span(),
                    "proxy.max_proxy_states must be between 1 and 64".into(),
                ))
            }
            Some(n) => n.into_inner(),
            None => DEFAULT_MAX_PROXY_STATES,
        };
        let operator_name = match &raw.operator_name {
            None => None,
            Some(op) => {
                let v = op.get_ref().as_bytes();
                // A namespace identifier, then at least one character of name.
                if v.len() < 2 || v.len() > crate::proto::MAX_VALUE_LEN {
                    return Err(err(
                        op.span(),
                        "proxy.operator_name is a namespace digit and a name (\"1example.edu\"), \
                         at most 253 bytes"
                            .into(),
                    ));
                }
                Some(v.into())
            }
        };
        if raw.home_servers.len() > MAX_HOME_SERVERS {
            return Err(ConfigError::new(
                origin,
                0,
                format!("proxy: at most {MAX_HOME_SERVERS} home servers"),
            ));
        }
        let mut homes: Vec<HomeSpec> = Vec::with_capacity(raw.home_servers.len());
        for h in raw.home_servers {
            let span = h.span();
            let spec = home(h.into_inner(), &|s, m| err(s, m), resolve)?;
            if homes.iter().any(|o| o.name == spec.name) {
                return Err(err(
                    span,
                    format!("home server {:?} is defined twice", spec.name),
                ));
            }
            homes.push(spec);
        }
        let mut pools: Vec<PoolSpec> = Vec::with_capacity(raw.pools.len());
        let mut drops = Vec::with_capacity(raw.pools.len());
        for p in raw.pools {
            let span = p.span();
            let (spec, drop) = pool(p.into_inner(), &homes, &|s, m| err(s, m))?;
            if pools.iter().any(|o| o.name == spec.name) {
                return Err(err(span, format!("pool {:?} is defined twice", spec.name)));
            }
            pools.push(spec);
            drops.push(drop);
        }
        let mut realms = RealmTable::new(NaiForms {
            prefix_slash: raw.prefix_slash,
            nt_domain: raw.nt_domain,
        });
        // Realm-less names stay local unless an entry says otherwise.
        realms.set_no_realm(RealmRoute {
            auth: AuthTarget::Local,
            acct: AcctTarget::Local,
            strip: StripRealm::Strip,
        });
        let (mut seen_default, mut seen_no_realm) = (false, false);
        for r in raw.realms {
            let span = r.span();
            let r = r.into_inner();
            let e = |m: String| err(span.clone(), m);
            let route = realm_route(&r, &pools, &|s, m| err(s, m))?;
            let which = [r.name.is_some(), r.regex.is_some(), r.default, r.no_realm];
            if which.iter().filter(|w| **w).count() != 1 {
                return Err(e(
                    "a realm needs exactly one of name, regex, default = true, no_realm = true"
                        .into(),
                ));
            }
            if let Some(n) = &r.name {
                realms
                    .add_exact(n.get_ref(), route)
                    .map_err(|x| err(n.span(), x.to_string()))?;
            } else if let Some(re) = &r.regex {
                realms
                    .add_regex(re.get_ref(), route)
                    .map_err(|x| err(re.span(), x.to_string()))?;
            } else if r.default {
                if std::mem::replace(&mut seen_default, true) {
                    return Err(e("only one realm may be the default".into()));
                }
                realms.set_default(route);
            } else {
                if std::mem::replace(&mut seen_no_realm, true) {
                    return Err(e("only one realm may be no_realm".into()));
                }
                realms.set_no_realm(route);
            }
        }
        Ok(ProxyConfig {
            homes,
            pools,
            drop_reply_attributes: drops,
            realms,
            forward: ForwardRules {
                max_proxy_states,
                operator_name,
                request_cui: raw.request_cui,
            },
        })
    }
}

type Err<'a> = &'a dyn Fn(Range<usize>, String) -> ConfigError;

fn home(
    h: RawHome,
    err: Err<'_>,
    resolve: &impl Fn(&Path) -> PathBuf,
) -> Result<HomeSpec, ConfigError> {
    let name = h.name.get_ref().trim().to_string();
    if name.is_empty() {
        return Err(err(h.name.span(), "a home server needs a name".into()));
    }
    let e = |span: Range<usize>, m: &str| err(span, format!("home server {name:?}: {m}"));
    let transport = transport(&h, &e, resolve)?;
    let secret = match (&h.secret, &transport) {
        (Some(s), _) => Secret::new(s.get_ref().as_str())
            .map_err(|_| e(s.span(), "secret must not be empty"))?,
        (None, HomeTransport::Tls { .. }) => Secret::new(crate::clients::config::RADSEC_SECRET)
            .map_err(|_| e(h.name.span(), "secret must not be empty"))?,
        (None, _) => return Err(e(h.name.span(), "needs a secret")),
    };
    let d = HomeSettings::default();
    let settings = HomeSettings {
        response_window: h.response_window.map_or(d.response_window, |v| v.0),
        zombie_period: h.zombie_period.map_or(d.zombie_period, |v| v.0),
        revive_interval: h.revive_interval.map_or(d.revive_interval, |v| v.0),
        status_checks: h.status_checks.unwrap_or(d.status_checks),
        check_interval: h.check_interval.map_or(d.check_interval, |v| v.0),
        check_timeout: h.check_timeout.map_or(d.check_timeout, |v| v.0),
        num_answers_to_alive: h.num_answers_to_alive.unwrap_or(d.num_answers_to_alive),
        // A connection whose peer vanished stays silent: watch it (RFC 6613 §2.6.2).
        keepalive: transport.is_stream(),
    };
    settings
        .validate()
        .map_err(|x| e(h.name.span(), &x.to_string()))?;
    let max_outstanding = match h.max_outstanding {
        Some(n) if *n.get_ref() == 0 || *n.get_ref() > 16_384 => {
            return Err(e(n.span(), "max_outstanding must be between 1 and 16384"))
        }
        Some(n) => n.into_inner(),
        None => DEFAULT_MAX_OUTSTANDING,
    };
    let reply_ma = match h.require_message_authenticator {
        // TLS authenticates every reply already (BlastRADIUS needs a forgeable transport), and
        // radsecproxy 1.9.2 answers Status-Server unsigned: a present one is still checked.
        None if matches!(transport, HomeTransport::Tls { .. }) => ReplyMaRule::Optional,
        None => ReplyMaRule::default(),
        Some(r) => match r.get_ref() {
            toml::Value::Boolean(true) => ReplyMaRule::Require,
            toml::Value::Boolean(false) => ReplyMaRule::Optional,
            toml::Value::String(w) if w == "auto" => ReplyMaRule::Auto,
            other => {
                return Err(e(
                    r.span(),
                    &format!(
                        "require_message_authenticator {other} is not true, false or \"auto\""
                    ),
                ))
            }
        },
    };
    let address = *h.address.get_ref();
    if address.port() == 0 || address.ip().is_unspecified() {
        return Err(e(h.address.span(), "address needs a host and a port"));
    }
    Ok(HomeSpec {
        name: name.into(),
        address,
        secret: Arc::new(secret),
        settings,
        max_outstanding,
        reply_ma,
        transport,
    })
}

/// The home server's protocol, and for TLS its client configuration (files read now, so a
/// bad one is refused at start-up at the line naming it).
fn transport(
    h: &RawHome,
    e: &impl Fn(Range<usize>, &str) -> ConfigError,
    resolve: &impl Fn(&Path) -> PathBuf,
) -> Result<HomeTransport, ConfigError> {
    let protocol = h
        .protocol
        .as_ref()
        .map(|p| (p.get_ref().as_str(), p.span()));
    let t = match protocol {
        None | Some(("udp", _)) => HomeTransport::Udp,
        Some(("tcp", _)) => HomeTransport::Tcp,
        Some(("tls", span)) => {
            let Some(tls) = &h.tls else {
                return Err(e(
                    span,
                    "protocol = \"tls\" needs a tls = { ca, certificate, private_key } table",
                ));
            };
            let t = tls.get_ref();
            let settings = crate::tls::client::ClientTlsSettings {
                ca: resolve(t.ca.get_ref()),
                certificate: resolve(t.certificate.get_ref()),
                private_key: resolve(t.private_key.get_ref()),
                alpn_protocols: t.radius_1_1.unwrap_or_default().alpn_protocols(),
            };
            let config = crate::tls::client::client_config(&settings).map_err(|x| {
                let span = match x.file() {
                    Some(crate::tls::TlsFile::Ca) => t.ca.span(),
                    Some(crate::tls::TlsFile::Certificate) => t.certificate.span(),
                    Some(crate::tls::TlsFile::PrivateKey) => t.private_key.span(),
                    _ => tls.span(),
                };
                e(span, &format!("tls: {x}"))
            })?;
            let name = match &t.server_name {
                Some(n) => rustls::pki_types::ServerName::try_from(n.get_ref().clone())
                    .map_err(|_| e(n.span(), "tls.server_name is not a DNS name or IP address"))?,
                None => rustls::pki_types::ServerName::IpAddress(h.address.get_ref().ip().into()),
            };
            HomeTransport::Tls {
                config,
                server_name: name,
                settings,
                radius11: t.radius_1_1.unwrap_or_default(),
            }
        }
        Some((other, span)) => {
            return Err(e(
                span,
                &format!("protocol {other:?} is not \"udp\", \"tcp\" or \"tls\""),
            ))
        }
    };
    if h.tls.is_some() && !matches!(t, HomeTransport::Tls { .. }) {
        if let Some(tls) = &h.tls {
            return Err(e(tls.span(), "tls is for protocol = \"tls\""));
        }
    }
    Ok(t)
}

fn pool(
    p: RawPool,
    homes: &[HomeSpec],
    err: Err<'_>,
) -> Result<(PoolSpec, Box<[u8]>), ConfigError> {
    let name = p.name.get_ref().trim().to_string();
    if name.is_empty() {
        return Err(err(p.name.span(), "a pool needs a name".into()));
    }
    let e = |span: Range<usize>, m: String| err(span, format!("pool {name:?}: {m}"));
    let kind = match p.kind.as_ref().map(|k| (k.get_ref().as_str(), k.span())) {
        None | Some(("fail-over", _)) => PoolKind::FailOver,
        Some(("load-balance", _)) => PoolKind::LoadBalance,
        Some(("keyed-balance", _)) => PoolKind::KeyedBalance,
        Some((other, span)) => {
            return Err(e(
                span,
                format!("type {other:?} is not fail-over, load-balance or keyed-balance"),
            ))
        }
    };
    let fallback = match p
        .on_unavailable
        .as_ref()
        .map(|k| (k.get_ref().as_str(), k.span()))
    {
        None | Some(("reject", _)) => Fallback::Reject,
        Some(("drop", _)) => Fallback::Drop,
        Some((other, span)) => {
            return Err(e(
                span,
                format!("on_unavailable {other:?} is not reject or drop"),
            ))
        }
    };
    let mut members = Vec::new();
    for m in p.home_servers.get_ref() {
        let Some(i) = homes.iter().position(|h| &*h.name == m.get_ref().as_str()) else {
            return Err(e(
                m.span(),
                format!("no home server is named {:?}", m.get_ref()),
            ));
        };
        if members.contains(&HomeId(i)) {
            return Err(e(m.span(), format!("{:?} is listed twice", m.get_ref())));
        }
        members.push(HomeId(i));
    }
    let spec = Pool::new(kind, fallback, members.len())
        .map_err(|x| e(p.home_servers.span(), x.to_string()))?;
    let dict = crate::dict::Dictionary::builtin();
    let mut drop = Vec::new();
    for a in &p.drop_reply_attributes {
        let code = dict
            .attribute(a.get_ref())
            .filter(|def| def.key.vendor == 0 && !def.virtual_)
            .and_then(|def| u8::try_from(def.key.code).ok())
            .ok_or_else(|| {
                e(
                    a.span(),
                    format!(
                        "drop_reply_attributes: {:?} is not a standard RADIUS attribute",
                        a.get_ref()
                    ),
                )
            })?;
        drop.push(code);
    }
    Ok((
        PoolSpec {
            name: name.into(),
            pool: spec,
            members,
        },
        drop.into_boxed_slice(),
    ))
}

fn realm_route(r: &RawRealm, pools: &[PoolSpec], err: Err<'_>) -> Result<RealmRoute, ConfigError> {
    let pool_named = |p: &Spanned<String>| -> Result<Box<str>, ConfigError> {
        if pools.iter().any(|x| &*x.name == p.get_ref().as_str()) {
            Ok(p.get_ref().as_str().into())
        } else {
            Err(err(p.span(), format!("no pool is named {:?}", p.get_ref())))
        }
    };
    let auth = match (&r.auth_pool, r.reject) {
        (Some(p), true) => {
            return Err(err(
                p.span(),
                "a realm with reject = true has no auth_pool".into(),
            ))
        }
        (Some(p), false) => AuthTarget::Pool(pool_named(p)?),
        (None, true) => AuthTarget::Reject,
        (None, false) => AuthTarget::Local,
    };
    let acct = match &r.acct_pool {
        Some(p) => AcctTarget::Pool(pool_named(p)?),
        None => AcctTarget::Local,
    };
    let strip = match r
        .user_name
        .as_ref()
        .map(|u| (u.get_ref().as_str(), u.span()))
    {
        None | Some(("strip", _)) => StripRealm::Strip,
        Some(("keep", _)) => StripRealm::Keep,
        Some(("keep_for_eap", _)) => StripRealm::KeepForEap,
        Some((other, span)) => {
            return Err(err(
                span,
                format!("user_name {other:?} is not strip, keep or keep_for_eap"),
            ))
        }
    };
    Ok(RealmRoute { auth, acct, strip })
}

/// The longest a shard waits for a pool's answer: its slowest member's response window and
/// a little, so the engine (which answers at the window) always speaks first.
pub fn pool_deadline(config: &ProxyConfig, pool: PoolId) -> Duration {
    let slowest = config.pools.get(pool.0).and_then(|p| {
        p.members
            .iter()
            .filter_map(|m| config.homes.get(m.0))
            .map(|h| h.settings.response_window)
            .max()
    });
    slowest.unwrap_or(Duration::from_secs(1)) + Duration::from_millis(250)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cfg::line_of;
    use crate::proxy::realm::AuthAction;

    #[derive(Deserialize)]
    struct File {
        proxy: RawProxy,
    }

    fn load(text: &str) -> Result<ProxyConfig, ConfigError> {
        let f: File = toml::from_str(text).expect("toml");
        ProxyConfig::from_raw(
            f.proxy,
            Path::new("p.toml"),
            &|r: Range<usize>| line_of(text, r.start),
            &|p: &Path| p.to_path_buf(),
        )
    }

    const GOOD: &str = r#"
[proxy]
[[proxy.home_servers]]
name = "a"
address = "127.0.0.1:18120"
secret = "testing123"
response_window = "5s"
[[proxy.home_servers]]
name = "b"
address = "127.0.0.1:18140"
secret = "testing123"
[[proxy.pools]]
name = "remote"
home_servers = ["a", "b"]
drop_reply_attributes = ["Tunnel-Type"]
[[proxy.realms]]
name = "remote.test"
auth_pool = "remote"
[[proxy.realms]]
name = "example.test"
"#;

    #[test]
    fn builds_homes_pools_and_routes() {
        let c = load(GOOD).expect("valid");
        assert_eq!(c.homes.len(), 2);
        assert_eq!(c.homes[0].settings.response_window, Duration::from_secs(5));
        assert_eq!(c.pools[0].members, vec![HomeId(0), HomeId(1)]);
        assert_eq!(&*c.drop_reply_attributes[0], &[64u8]);
        let r = c.realms.route(b"bob@remote.test", false);
        assert_eq!(
            (r.auth, r.user_name),
            (AuthAction::Pool("remote"), &b"bob"[..])
        );
        let r = c.realms.route(b"alice@EXAMPLE.test", false);
        assert_eq!((r.auth, r.user_name), (AuthAction::Local, &b"alice"[..]));
        assert_eq!(c.realms.route(b"alice", false).auth, AuthAction::Local);
        assert!(matches!(
            c.realms.route(b"x@other.test", false).auth,
            AuthAction::Reject(_)
        ));
        assert_eq!(c.pool_id("remote"), Some(PoolId(0)));
        assert_eq!(pool_deadline(&c, PoolId(0)), Duration::from_millis(20_250));
        assert!(c.same_engine(&load(GOOD).expect("valid")));
        assert_eq!(c.homes[0].reply_ma, ReplyMaRule::Auto);
        for (word, rule) in [
            ("true", ReplyMaRule::Require),
            ("false", ReplyMaRule::Optional),
            ("\"auto\"", ReplyMaRule::Auto),
        ] {
            let text = GOOD.replacen(
                "response_window = \"5s\"",
                &format!("response_window = \"5s\"\nrequire_message_authenticator = {word}"),
                1,
            );
            let other = load(&text).expect("valid");
            assert_eq!(other.homes[0].reply_ma, rule, "{word}");
            assert_eq!(c.same_engine(&other), rule == ReplyMaRule::Auto, "{word}");
        }
        let other = load(&GOOD.replace("18140", "18141")).expect("valid");
        assert!(!c.same_engine(&other));
    }

    #[test]
    fn errors_name_the_line() {
        let cases: &[(&str, &str, usize, &str)] = &[
            (
                "home_servers = [\"a\", \"b\"]",
                "home_servers = [\"a\", \"zz\"]",
                14,
                "zz",
            ),
            (
                "auth_pool = \"remote\"",
                "auth_pool = \"nope\"",
                18,
                "no pool",
            ),
            (
                "drop_reply_attributes = [\"Tunnel-Type\"]",
                "drop_reply_attributes = [\"Bogus\"]",
                15,
                "Bogus",
            ),
            (
                "name = \"example.test\"",
                "name = \"example.test\"\nregex = \"x\"",
                19,
                "exactly one",
            ),
            (
                "response_window = \"5s\"",
                "response_window = \"0s\"",
                4,
                "above zero",
            ),
            (
                "response_window = \"5s\"",
                "require_message_authenticator = \"sometimes\"",
                7,
                "not true, false or \"auto\"",
            ),
        ];
        for (from, to, line, what) in cases {
            let e = load(&GOOD.replacen(from, to, 1)).expect_err(to);
            assert_eq!(e.line, *line, "{to}: {e}");
            assert!(e.reason.contains(what), "{to}: {e}");
        }
    }
}
