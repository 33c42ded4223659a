//! IP pools in FreeRADIUS's `radippool` table (its `ippool/postgresql/schema.sql`,
//! unchanged): an address (or an IPv6 prefix: `framedipaddress` is `inet`) leased at
//! Access-Accept, sticky by the pool key, extended by accounting Start / Interim-Update,
//! released by Stop and by the NAS's Accounting-On / -Off.
//!
//! One statement leases: the key's previous address in the pool if no other key took it
//! since, else the free one expired longest ago, each picked `FOR UPDATE SKIP LOCKED`, so
//! nodes leasing from one pool at once never pick one row twice (a row locked by another
//! transaction is skipped, a row changed by one is re-checked by PostgreSQL and skipped if
//! no longer free).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::cfg::{ConfigError, DurationValue};

/// Lease: sticky first (the key's row, whatever its expiry: a key holds one address; an
/// empty key is never sticky), else the free row expired longest ago (looked for only when
/// the key has none). `$1` pool, `$2` key, `$3` NAS, `$4` Calling-Station-Id, `$5` user,
/// `$6` lease seconds.
pub(super) const Q_LEASE: &str = "WITH sticky AS ( \
    SELECT id FROM radippool WHERE pool_name = $1 AND $2 <> '' AND pool_key = $2 \
    ORDER BY expiry_time DESC LIMIT 1 FOR UPDATE SKIP LOCKED), \
  free AS ( \
    SELECT id FROM radippool WHERE pool_name = $1 AND expiry_time < now()::timestamp(0) \
    AND NOT EXISTS (SELECT 1 FROM sticky) \
    ORDER BY expiry_time LIMIT 1 FOR UPDATE SKIP LOCKED), \
  pick AS (SELECT id FROM sticky UNION ALL SELECT id FROM free LIMIT 1) \
  UPDATE radippool SET nasipaddress = $3, pool_key = $2, callingstationid = $4, username = $5, \
    expiry_time = now()::timestamp(0) + $6::int8 * interval '1 second' \
  FROM pick WHERE radippool.id = pick.id \
  RETURNING host(radippool.framedipaddress), masklen(radippool.framedipaddress)";
/// Start / Interim-Update: `$1` NAS, `$2` the address, `$3` lease seconds. Any pool (a
/// user's Pool-Name may have named another), as FreeRADIUS's own queries.
pub(super) const Q_EXTEND: &str =
    "UPDATE radippool SET expiry_time = now()::timestamp(0) + $3::int8 * interval '1 second' \
  WHERE nasipaddress = $1 AND framedipaddress = $2::text::inet";
/// Stop: expired a second ago (the key keeps it, sticky, until another key takes it).
pub(super) const Q_RELEASE: &str =
    "UPDATE radippool SET expiry_time = now()::timestamp(0) - interval '1 second' \
  WHERE nasipaddress = $1 AND framedipaddress = $2::text::inet \
  AND expiry_time >= now()::timestamp(0)";
/// Accounting-On / -Off: every lease of the NAS.
pub(super) const Q_RELEASE_NAS: &str =
    "UPDATE radippool SET expiry_time = now()::timestamp(0) - interval '1 second' \
  WHERE nasipaddress = $1 AND expiry_time >= now()::timestamp(0)";

/// Most lease updates from accounting waiting for the database at once; past it one is
/// dropped (counted, logged) and that lease simply runs to its expiry.
pub const MAX_PENDING_UPDATES: usize = 1024;

/// `[sql] ip_pool = { … }` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIpPool {
    /// `radippool.pool_name`.
    pub name: Spanned<String>,
    /// Default "1h".
    pub lease: Option<Spanned<DurationValue>>,
    /// `"calling_station_id"` (default), `"user_name"` or `"nas_port"` (NAS and port).
    pub pool_key: Option<Spanned<String>>,
    /// `"reject"` (default) or `"accept"` (without an address).
    pub on_exhausted: Option<Spanned<String>>,
}

/// What the pool key of a lease is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolKey {
    CallingStationId,
    UserName,
    /// The NAS's address and NAS-Port.
    NasPort,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnExhausted {
    Reject,
    /// The Access-Accept goes without an address (the NAS's own pool, if any, applies).
    Accept,
}

/// A validated pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpPoolConfig {
    pub name: String,
    pub lease: Duration,
    pub key: PoolKey,
    pub on_exhausted: OnExhausted,
}

impl IpPoolConfig {
    pub fn from_raw(
        raw: RawIpPool,
        err: &impl Fn(std::ops::Range<usize>, String) -> ConfigError,
    ) -> Result<IpPoolConfig, ConfigError> {
        let name = raw.name.get_ref().trim();
        if name.is_empty() || name.len() > 64 {
            return Err(err(
                raw.name.span(),
                "sql.ip_pool.name must be 1 to 64 characters".into(),
            ));
        }
        let lease = match raw.lease {
            Some(d) if d.get_ref().0 < Duration::from_secs(1) => {
                return Err(err(
                    d.span(),
                    "sql.ip_pool.lease must be at least 1s".into(),
                ))
            }
            Some(d) if d.get_ref().0 > Duration::from_secs(366 * 86_400) => {
                return Err(err(
                    d.span(),
                    "sql.ip_pool.lease must be at most a year".into(),
                ))
            }
            Some(d) => d.into_inner().0,
            None => Duration::from_secs(3600),
        };
        let key = match raw.pool_key {
            None => PoolKey::CallingStationId,
            Some(k) => match k.get_ref().as_str() {
                "calling_station_id" => PoolKey::CallingStationId,
                "user_name" => PoolKey::UserName,
                "nas_port" => PoolKey::NasPort,
                other => {
                    return Err(err(
                        k.span(),
                        format!("sql.ip_pool.pool_key {other:?}: one of \"calling_station_id\", \"user_name\", \"nas_port\""),
                    ))
                }
            },
        };
        let on_exhausted = match raw.on_exhausted {
            None => OnExhausted::Reject,
            Some(k) => match k.get_ref().as_str() {
                "reject" => OnExhausted::Reject,
                "accept" => OnExhausted::Accept,
                other => {
                    return Err(err(
                        k.span(),
                        format!("sql.ip_pool.on_exhausted {other:?}: \"reject\" or \"accept\""),
                    ))
                }
            },
        };
        Ok(IpPoolConfig {
            name: name.to_string(),
            lease,
            key,
            on_exhausted,
        })
    }
}

/// What a lease is asked with (owned: it outlives the request's borrow on the backend).
#[derive(Debug, Clone)]
pub struct LeaseRequest {
    /// `radippool.pool_name`: the user's Pool-Name, else `[sql] ip_pool`'s name.
    pub pool: String,
    pub key: String,
    pub user: String,
    /// `radippool.nasipaddress`: NAS-IP-Address (or NAS-IPv6-Address), else the source
    /// address of the packet; accounting finds the lease by the same rule.
    pub nas: String,
    pub station: String,
}

/// A leased address: an IPv4 address (Framed-IP-Address) or an IPv6 prefix
/// (Framed-IPv6-Prefix; a /128 too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framed {
    V4(Ipv4Addr),
    V6(Ipv6Addr, u8),
}

impl Framed {
    /// From `host(framedipaddress)` and `masklen(framedipaddress)`.
    pub fn parse(host: &str, len: i32) -> Option<Framed> {
        match host.parse::<IpAddr>().ok()? {
            IpAddr::V4(a) => Some(Framed::V4(a)),
            IpAddr::V6(a) => Some(Framed::V6(a, u8::try_from(len).ok().filter(|l| *l <= 128)?)),
        }
    }

    /// The attribute's type and value (RFC 2865 §5.8, RFC 3162 §2.3).
    pub fn attribute(&self) -> (u8, Vec<u8>) {
        match self {
            Framed::V4(a) => (crate::proto::FRAMED_IP_ADDRESS, a.octets().to_vec()),
            Framed::V6(a, len) => {
                let mut v = vec![0, *len];
                // Only the octets the prefix covers.
                let n = usize::from(*len).div_ceil(8);
                v.extend_from_slice(&a.octets()[..n]);
                (FRAMED_IPV6_PREFIX, v)
            }
        }
    }
}

/// Framed-IPv6-Prefix (RFC 3162).
pub const FRAMED_IPV6_PREFIX: u8 = 97;

/// A lease's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lease {
    Leased(Framed),
    /// No free address in the pool (or the pool has no rows).
    Exhausted,
    /// No answer by the deadline, or the database refused.
    Unavailable,
}

/// What an accounting request does to a lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseUpdate {
    /// Start, Interim-Update: the lease runs `lease` from now.
    Extend { nas: String, address: String },
    /// Stop.
    Release { nas: String, address: String },
    /// Accounting-On / -Off: every lease of the NAS.
    ReleaseNas { nas: String },
}

impl LeaseUpdate {
    /// From an Accounting-Request: its Acct-Status-Type and address, the NAS as leases
    /// name it. `None`: nothing to do (no address, another status).
    pub fn of(packet: &crate::proto::Packet<'_>, from: IpAddr) -> Option<LeaseUpdate> {
        let status = packet
            .attr(crate::proto::ACCT_STATUS_TYPE)
            .and_then(|v| <[u8; 4]>::try_from(v).ok())
            .map(u32::from_be_bytes)?;
        let nas = nas_of(packet, from);
        let address = || {
            if let Some(v) = packet.attr(crate::proto::FRAMED_IP_ADDRESS) {
                let a: [u8; 4] = v.try_into().ok()?;
                return Some(Ipv4Addr::from(a).to_string());
            }
            let v = packet.attr(FRAMED_IPV6_PREFIX)?;
            let (&len, rest) = v.get(1..)?.split_first()?;
            if len > 128 || rest.len() > 16 {
                return None;
            }
            let mut o = [0u8; 16];
            o[..rest.len()].copy_from_slice(rest);
            Some(format!("{}/{len}", Ipv6Addr::from(o)))
        };
        match status {
            // Start, Interim-Update.
            1 | 3 => Some(LeaseUpdate::Extend {
                nas,
                address: address()?,
            }),
            2 => Some(LeaseUpdate::Release {
                nas,
                address: address()?,
            }),
            // Accounting-On, Accounting-Off.
            7 | 8 => Some(LeaseUpdate::ReleaseNas { nas }),
            _ => None,
        }
    }
}

/// The NAS as `radippool.nasipaddress` names it: NAS-IP-Address, else NAS-IPv6-Address,
/// else the packet's source address.
pub fn nas_of(packet: &crate::proto::Packet<'_>, from: IpAddr) -> String {
    if let Some(a) = packet
        .attr(crate::proto::NAS_IP_ADDRESS)
        .and_then(|v| <[u8; 4]>::try_from(v).ok())
    {
        return Ipv4Addr::from(a).to_string();
    }
    if let Some(a) = packet
        .attr(crate::proto::NAS_IPV6_ADDRESS)
        .and_then(|v| <[u8; 16]>::try_from(v).ok())
    {
        return Ipv6Addr::from(a).to_string();
    }
    from.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framed_attributes() {
        assert_eq!(
            Framed::parse("10.1.2.3", 32).unwrap().attribute(),
            (8, vec![10, 1, 2, 3])
        );
        let p = Framed::parse("2001:db8:1::", 48).unwrap();
        assert_eq!(
            p.attribute(),
            (97, vec![0, 48, 0x20, 0x01, 0x0d, 0xb8, 0, 1])
        );
        assert_eq!(Framed::parse("2001:db8::", 129), None);
        assert_eq!(Framed::parse("nonsense", 32), None);
    }
}
