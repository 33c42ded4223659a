//! Value syntaxes written the same way in several sections: client networks (`[[clients]]
//! addresses`, policies' `nas_ip`) and reply attribute values (users' and policies' `reply`).
//! Parsed while deserializing so that `toml` reports the offending value's position.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer};

/// One attribute's value(s) in a `reply` table: a string, an integer, or a list of them (for
/// attributes that may appear more than once, such as Class).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrValues(pub Vec<String>);

impl<'de> Deserialize<'de> for AttrValues {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum One {
            S(String),
            I(i64),
            B(bool),
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Many {
            One(One),
            List(Vec<One>),
        }
        let text = |o: One| match o {
            One::S(s) => s,
            One::I(i) => i.to_string(),
            One::B(b) => b.to_string(),
        };
        match Many::deserialize(d).map_err(|_| {
            serde::de::Error::custom(
                "an attribute value must be a string, an integer, or a list of them",
            )
        })? {
            Many::One(o) => Ok(AttrValues(vec![text(o)])),
            Many::List(l) => Ok(AttrValues(l.into_iter().map(text).collect())),
        }
    }
}

/// A client network: a bare address (a /32 or /128) or a CIDR network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientNet(pub IpNet);

impl<'de> Deserialize<'de> for ClientNet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_client_net(&s)
            .map(ClientNet)
            .map_err(serde::de::Error::custom)
    }
}

pub fn parse_client_net(s: &str) -> Result<IpNet, String> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(IpNet::from(ip));
    }
    let net: IpNet = s
        .parse()
        .map_err(|_| format!("{s:?} is neither an IP address nor a CIDR network"))?;
    if net.trunc() != net {
        return Err(format!(
            "{s:?} has host bits set; did you mean {}?",
            net.trunc()
        ));
    }
    Ok(net)
}
