//! Network policies, as NPS has them: an ordered list; the first policy whose conditions all
//! match decides (reject, or accept with reply attributes and an MFA flag). With no policies
//! configured every authenticated user is accepted; with policies, a user no policy matches
//! is rejected.

use std::net::Ipv4Addr;

use ipnet::IpNet;
use regex::bytes::Regex;

use super::ReplyAttributes;
use crate::auth::Method;
use crate::config::{ConfigError, PolicyConfig};
use crate::dict::Dictionary;
use crate::proto::{Verified, CALLED_STATION_ID, NAS_IP_ADDRESS, NAS_PORT_TYPE};

/// Where the user's password was checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthSource {
    Local,
    Ldap,
}

impl AuthSource {
    pub fn label(self) -> &'static str {
        match self {
            AuthSource::Local => "local",
            AuthSource::Ldap => "ldap",
        }
    }
}

/// What policies look at.
#[derive(Debug, Clone, Copy)]
pub struct PolicyInput<'a> {
    pub client: &'a str,
    pub client_group: Option<&'a str>,
    pub nas_ip: Option<Ipv4Addr>,
    pub nas_port_type: Option<u32>,
    pub called_station_id: Option<&'a [u8]>,
    /// Group names or DNs.
    pub groups: &'a [String],
    pub method: Option<Method>,
    pub source: AuthSource,
}

impl<'a> PolicyInput<'a> {
    /// The request's side of the input; groups, method and source come from authentication.
    pub fn from_request(
        req: &Verified<'a>,
        client: &'a str,
        client_group: Option<&'a str>,
        groups: &'a [String],
        method: Option<Method>,
        source: AuthSource,
    ) -> PolicyInput<'a> {
        PolicyInput {
            client,
            client_group,
            nas_ip: req
                .attr(NAS_IP_ADDRESS)
                .and_then(|v| <[u8; 4]>::try_from(v).ok())
                .map(Ipv4Addr::from),
            nas_port_type: req
                .attr(NAS_PORT_TYPE)
                .and_then(|v| <[u8; 4]>::try_from(v).ok())
                .map(u32::from_be_bytes),
            called_station_id: req.attr(CALLED_STATION_ID),
            groups,
            method,
            source,
        }
    }
}

#[derive(Debug)]
pub struct NetworkPolicy {
    pub name: String,
    clients: Vec<String>,
    client_groups: Vec<String>,
    nas_ip: Vec<IpNet>,
    nas_port_type: Vec<u32>,
    called_station_id: Option<Regex>,
    groups: Vec<String>,
    methods: Vec<Method>,
    sources: Vec<AuthSource>,
    pub reject: bool,
    pub mfa: bool,
    pub reply: ReplyAttributes,
}

/// The decision of the policies.
#[derive(Debug)]
pub enum Verdict<'p> {
    /// Accept; with the matching policy's attributes and MFA flag, if any policy matched.
    Accept(Option<&'p NetworkPolicy>),
    /// Rejected by this policy, or (None) by no policy matching.
    Reject(Option<&'p NetworkPolicy>),
}

#[derive(Debug, Default)]
pub struct NetworkPolicies {
    list: Vec<NetworkPolicy>,
}

/// Whether `have` (a group DN or name) is the group `want` (a DN or the first RDN's value).
pub(crate) fn group_matches(have: &str, want: &str) -> bool {
    if have.eq_ignore_ascii_case(want) {
        return true;
    }
    let first = have.split(',').next().unwrap_or("");
    first
        .split_once('=')
        .is_some_and(|(_, v)| v.trim().eq_ignore_ascii_case(want))
}

impl NetworkPolicy {
    pub fn matches(&self, i: &PolicyInput<'_>) -> bool {
        (self.clients.is_empty() || self.clients.iter().any(|c| c == i.client))
            && (self.client_groups.is_empty()
                || i.client_group
                    .is_some_and(|g| self.client_groups.iter().any(|c| c == g)))
            && (self.nas_ip.is_empty()
                || i.nas_ip.is_some_and(|ip| {
                    self.nas_ip
                        .iter()
                        .any(|n| n.contains(&std::net::IpAddr::V4(ip)))
                }))
            && (self.nas_port_type.is_empty()
                || i.nas_port_type
                    .is_some_and(|t| self.nas_port_type.contains(&t)))
            && self
                .called_station_id
                .as_ref()
                .map_or(true, |r| i.called_station_id.is_some_and(|c| r.is_match(c)))
            && (self.groups.is_empty()
                || self
                    .groups
                    .iter()
                    .any(|w| i.groups.iter().any(|h| group_matches(h, w))))
            && (self.methods.is_empty() || i.method.is_some_and(|m| self.methods.contains(&m)))
            && (self.sources.is_empty() || self.sources.contains(&i.source))
    }
}

impl NetworkPolicies {
    pub fn build(
        policies: &[PolicyConfig],
        dict: &Dictionary,
    ) -> Result<NetworkPolicies, ConfigError> {
        let mut list = Vec::with_capacity(policies.len());
        for p in policies {
            let mut nas_port_type = Vec::new();
            for v in &p.nas_port_type {
                let enc = dict
                    .encode("NAS-Port-Type", &v.value)
                    .map_err(|e| v.error(format!("policy {:?}: nas_port_type: {e}", p.name)))?;
                let n = <[u8; 4]>::try_from(enc.value.as_slice()).map_err(|_| {
                    v.error(format!(
                        "policy {:?}: nas_port_type: not an integer",
                        p.name
                    ))
                })?;
                nas_port_type.push(u32::from_be_bytes(n));
            }
            let called_station_id = match &p.called_station_id {
                Some(r) => Some(
                    Regex::new(&r.value)
                        .map_err(|e| r.error(format!("policy {:?}: {e}", p.name)))?,
                ),
                None => None,
            };
            list.push(NetworkPolicy {
                name: p.name.clone(),
                clients: p.clients.clone(),
                client_groups: p.client_groups.clone(),
                nas_ip: p.nas_ip.clone(),
                nas_port_type,
                called_station_id,
                groups: p.groups.clone(),
                methods: p.auth_methods.clone(),
                sources: p.auth_sources.clone(),
                reject: p.reject,
                mfa: p.mfa,
                reply: ReplyAttributes::compile(&p.reply, dict)?,
            });
        }
        Ok(NetworkPolicies { list })
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn decide(&self, input: &PolicyInput<'_>) -> Verdict<'_> {
        if self.list.is_empty() {
            return Verdict::Accept(None);
        }
        match self.list.iter().find(|p| p.matches(input)) {
            Some(p) if p.reject => Verdict::Reject(Some(p)),
            Some(p) => Verdict::Accept(Some(p)),
            None => Verdict::Reject(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::path::Path;

    fn policies(toml: &str) -> NetworkPolicies {
        let text = format!(
            "[[clients]]\nname = \"ap\"\naddresses = [\"10.0.0.1\"]\nsecret = \"testing123\"\ngroup = \"wifi\"\n\
             [[clients]]\nname = \"vpn\"\naddresses = [\"10.0.0.2\"]\nsecret = \"testing123\"\n{toml}"
        );
        let c = Config::from_str(&text, Path::new("t.toml"), None).unwrap();
        NetworkPolicies::build(&c.policies, &Dictionary::builtin()).unwrap()
    }

    fn input<'a>(client: &'a str, groups: &'a [String]) -> PolicyInput<'a> {
        PolicyInput {
            client,
            client_group: (client == "ap").then_some("wifi"),
            nas_ip: Some(Ipv4Addr::new(10, 1, 2, 3)),
            nas_port_type: Some(19),
            called_station_id: Some(b"00-11-22-33-44-55:CORP"),
            groups,
            method: Some(Method::Pap),
            source: AuthSource::Ldap,
        }
    }

    fn name(v: Verdict<'_>) -> String {
        match v {
            Verdict::Accept(p) => format!("accept:{}", p.map_or("-", |p| &p.name)),
            Verdict::Reject(p) => format!("reject:{}", p.map_or("-", |p| &p.name)),
        }
    }

    #[test]
    fn no_policies_accept_everyone() {
        let p = policies("");
        assert_eq!(name(p.decide(&input("vpn", &[]))), "accept:-");
    }

    #[test]
    fn first_matching_policy_decides() {
        let p = policies(
            r#"
[[policies]]
name = "contractors-out"
groups = ["contractors"]
action = "reject"
[[policies]]
name = "wifi-staff"
client_groups = ["wifi"]
nas_port_type = ["Wireless-802.11"]
called_station_id = "(?i):corp$"
groups = ["radius-users"]
reply = { Tunnel-Type = "VLAN", Tunnel-Medium-Type = "IEEE-802", Tunnel-Private-Group-Id = "42" }
[[policies]]
name = "vpn"
clients = ["vpn"]
nas_ip = ["10.1.0.0/16"]
auth_methods = ["pap"]
auth_sources = ["ldap"]
mfa = true
reply = { Session-Timeout = 3600, Class = "vpn" }
"#,
        );
        let staff = vec!["cn=radius-users,ou=groups,dc=example,dc=org".to_string()];
        let contractor = vec!["CN=Contractors,DC=x".to_string(), staff[0].clone()];
        assert_eq!(name(p.decide(&input("ap", &staff))), "accept:wifi-staff");
        assert_eq!(
            name(p.decide(&input("ap", &contractor))),
            "reject:contractors-out"
        );
        assert_eq!(
            name(p.decide(&input("ap", &[]))),
            "reject:-",
            "wifi needs the group"
        );
        let v = p.decide(&input("vpn", &[]));
        assert!(matches!(v, Verdict::Accept(Some(p)) if p.mfa && p.name == "vpn"));

        let mut i = input("ap", &staff);
        i.called_station_id = Some(b"00-11-22-33-44-55:guest");
        assert_eq!(name(p.decide(&i)), "reject:-", "regex on Called-Station-Id");
        let mut i = input("ap", &staff);
        i.nas_port_type = Some(5);
        assert_eq!(name(p.decide(&i)), "reject:-", "port type");
        let mut i = input("vpn", &[]);
        i.nas_ip = Some(Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(name(p.decide(&i)), "reject:-", "NAS-IP-Address");
        let mut i = input("vpn", &[]);
        i.source = AuthSource::Local;
        assert_eq!(name(p.decide(&i)), "reject:-", "auth source");
        let mut i = input("vpn", &[]);
        i.method = Some(Method::Chap);
        assert_eq!(name(p.decide(&i)), "reject:-", "auth method");
    }

    #[test]
    fn groups_match_by_dn_or_name() {
        assert!(group_matches(
            "cn=radius-users,ou=groups,dc=example,dc=org",
            "radius-users"
        ));
        assert!(group_matches(
            "CN=VPN Users,CN=Users,DC=example,DC=test",
            "vpn users"
        ));
        assert!(group_matches("admins", "ADMINS"));
        assert!(group_matches("cn=a,dc=x", "CN=A,DC=X"));
        assert!(!group_matches("cn=radius-users-old,dc=x", "radius-users"));
    }

    #[test]
    fn bad_policies_are_refused_with_their_line() {
        let bad = [
            (
                "[[policies]]\nname = \"x\"\ncalled_station_id = \"(\"\n",
                "t.toml:",
                "regex",
            ),
            (
                "[[policies]]\nname = \"x\"\naction = \"maybe\"\n",
                "t.toml:",
                "action",
            ),
            (
                "[[policies]]\nname = \"x\"\nclients = [\"nope\"]\n",
                "t.toml:",
                "no client",
            ),
            (
                "[[policies]]\nname = \"x\"\nbogus = 1\n",
                "t.toml:",
                "unknown field",
            ),
        ];
        for (toml, file, what) in bad {
            let text = format!("[[clients]]\nname = \"ap\"\naddresses = [\"10.0.0.1\"]\nsecret = \"testing123\"\n{toml}");
            let e = Config::from_str(&text, Path::new("t.toml"), None)
                .unwrap_err()
                .to_string();
            assert!(e.starts_with(file) && e.contains(what), "{e}");
            assert!(!e.starts_with("t.toml:0:"), "has a line: {e}");
        }
        let text = "[[policies]]\nname = \"x\"\nnas_port_type = \"Carrier-Pigeon\"\n";
        let c = Config::from_str(text, Path::new("t.toml"), None).unwrap();
        let e = NetworkPolicies::build(&c.policies, &Dictionary::builtin())
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("t.toml:3:"), "{e}");
    }
}
