//! Network policies, as NPS has them: an ordered list; the first policy whose conditions all
//! match decides (reject, or accept with reply attributes and an MFA flag). With no policies
//! configured every authenticated user is accepted; with policies, a user no policy matches
//! is rejected.

use std::net::Ipv4Addr;

use ipnet::IpNet;
use regex::bytes::Regex;

use super::config::PolicyConfig;
use super::ReplyAttributes;
use crate::cfg::ConfigError;
use crate::dict::Dictionary;
use crate::proto::{Verified, CALLED_STATION_ID, NAS_IP_ADDRESS, NAS_PORT_TYPE};
use crate::vocab::Method;
pub use crate::vocab::{AuthSource, MfaMode};

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
    /// EAP-TLS: the client certificate the user logged in with.
    pub certificate: Option<&'a crate::tls::PeerCertificate>,
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
            certificate: None,
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
    certificate_issuer: Option<Regex>,
    certificate_subject: Option<Regex>,
    groups: Vec<String>,
    methods: Vec<Method>,
    sources: Vec<AuthSource>,
    pub reject: bool,
    pub mfa: bool,
    /// How the code is presented when `mfa` is set.
    pub mfa_mode: MfaMode,
    /// `primary = "nas"`: the clients this policy names did the primary authentication; the
    /// request carries only the second factor.
    pub primary_by_nas: bool,
    /// Simultaneous-Use: the cap on open sessions per user, and what happens at it.
    pub simultaneous_use: Option<crate::session::config::SessionLimit>,
    /// The `radippool` pool of its Access-Accepts (`[sql] ip_pool`).
    pub ip_pool: Option<String>,
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
        self.matches_request(i)
            && (self.groups.is_empty()
                || self
                    .groups
                    .iter()
                    .any(|w| i.groups.iter().any(|h| group_matches(h, w))))
            && (self.sources.is_empty() || self.sources.contains(&i.source))
            && self.matches_certificate(i.certificate)
    }

    /// `certificate_issuer` / `certificate_subject`: without a client certificate, a policy
    /// that names either does not match.
    fn matches_certificate(&self, cert: Option<&crate::tls::PeerCertificate>) -> bool {
        let issuer = self.certificate_issuer.as_ref().map_or(true, |r| {
            cert.and_then(|c| c.issuer_cn.as_deref())
                .is_some_and(|cn| r.is_match(cn.as_bytes()))
        });
        let subject = self.certificate_subject.as_ref().map_or(true, |r| {
            cert.is_some_and(|c| {
                c.subject_cn
                    .iter()
                    .chain(&c.san_email)
                    .chain(&c.san_upn)
                    .chain(&c.san_dns)
                    .any(|n| r.is_match(n.as_bytes()))
            })
        });
        issuer && subject
    }

    /// The conditions known before primary authentication: all but `groups` and
    /// `auth_sources` (which come from the user's authentication).
    fn matches_request(&self, i: &PolicyInput<'_>) -> bool {
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
            && (self.methods.is_empty() || i.method.is_some_and(|m| self.methods.contains(&m)))
    }

    /// The mode a request this policy decides must have been read with: its `mfa_mode` if it
    /// requires a second factor, else the whole User-Password is the password.
    pub fn read_mode(&self) -> MfaMode {
        if self.primary_by_nas && !self.reject {
            MfaMode::CodeOnly
        } else if self.mfa && !self.reject {
            self.mfa_mode
        } else {
            MfaMode::Challenge
        }
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
            let regex = |r: &Option<crate::cfg::Located<String>>| match r {
                Some(r) => Regex::new(&r.value)
                    .map(Some)
                    .map_err(|e| r.error(format!("policy {:?}: {e}", p.name))),
                None => Ok(None),
            };
            let called_station_id = regex(&p.called_station_id)?;
            let certificate_issuer = regex(&p.certificate_issuer)?;
            let certificate_subject = regex(&p.certificate_subject)?;
            list.push(NetworkPolicy {
                name: p.name.clone(),
                clients: p.clients.clone(),
                client_groups: p.client_groups.clone(),
                nas_ip: p.nas_ip.clone(),
                nas_port_type,
                called_station_id,
                certificate_issuer,
                certificate_subject,
                groups: p.groups.clone(),
                methods: p.auth_methods.clone(),
                sources: p.auth_sources.clone(),
                reject: p.reject,
                mfa: p.mfa,
                mfa_mode: p.mfa_mode,
                primary_by_nas: p.primary_by_nas,
                simultaneous_use: p.simultaneous_use,
                ip_pool: p.ip_pool.clone(),
                reply: ReplyAttributes::compile(&p.reply, dict)?,
            });
        }
        Ok(NetworkPolicies { list })
    }

    /// The policy named `name`, if any.
    pub fn named(&self, name: &str) -> Option<&NetworkPolicy> {
        self.list.iter().find(|p| p.name == name)
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// How to read User-Password before primary authentication, when the deciding policy is
    /// not known yet (its `groups` and `auth_sources` need the authentication): the first
    /// policy that does not reject and whose request-only conditions match `input` (its
    /// `groups`, `source` are ignored) decides. Rejecting policies are skipped: whatever the
    /// password was read as, a request they decide is rejected. No policy: the whole value.
    pub fn read_mode(&self, input: &PolicyInput<'_>) -> MfaMode {
        self.list
            .iter()
            .find(|p| !p.reject && p.matches_request(input))
            .map_or(MfaMode::Challenge, NetworkPolicy::read_mode)
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
            certificate: None,
        }
    }

    fn name(v: Verdict<'_>) -> String {
        match v {
            Verdict::Accept(p) => format!("accept:{}", p.map_or("-", |p| &p.name)),
            Verdict::Reject(p) => format!("reject:{}", p.map_or("-", |p| &p.name)),
        }
    }

    #[test]
    fn certificate_issuer_and_subject_match_only_a_certificate_login() {
        let p = policies(
            r#"
[[policies]]
name = "corp-devices"
certificate_issuer = "^Corp Devices CA$"
certificate_subject = "(?i)@example\\.test$"
reply = { Tunnel-Type = "VLAN", Tunnel-Medium-Type = "IEEE-802", Tunnel-Private-Group-Id = "7" }
[[policies]]
name = "others"
action = "reject"
"#,
        );
        let cert = |issuer: &str, email: &str| crate::tls::PeerCertificate {
            subject_cn: Some("laptop-17".into()),
            san_email: vec![email.into()],
            issuer_cn: Some(issuer.into()),
            ..Default::default()
        };
        let with = |c: &crate::tls::PeerCertificate| {
            name(p.decide(&PolicyInput {
                certificate: Some(c),
                method: Some(Method::EapTls),
                ..input("ap", &[])
            }))
        };
        assert_eq!(
            with(&cert("Corp Devices CA", "a@Example.test")),
            "accept:corp-devices"
        );
        assert_eq!(with(&cert("Other CA", "a@example.test")), "reject:others");
        assert_eq!(
            with(&cert("Corp Devices CA", "a@example.org")),
            "reject:others"
        );
        // No certificate (a password login): the certificate policy does not apply.
        assert_eq!(name(p.decide(&input("ap", &[]))), "reject:others");
        // A bad regex is refused at start-up, with its line.
        let text = "[[policies]]\nname = \"x\"\ncertificate_issuer = \"(\"\n";
        let e = Config::from_str(text, Path::new("t.toml"), None).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("t.toml:3: policy \"x\": certificate_issuer is not a valid regex"),
            "{e}"
        );
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
    fn combined_modes_split_user_password() {
        let pc = MfaMode::PasswordCode;
        assert_eq!(pc.split(b"pw,123456"), Some((&b"pw"[..], &b"123456"[..])));
        assert_eq!(
            pc.split(b"p,w,123456"),
            Some((&b"p,w"[..], &b"123456"[..])),
            "last comma"
        );
        assert_eq!(pc.split(b"pw123456"), None, "no comma");
        assert_eq!(pc.split(b"pw,"), None, "empty code");
        let ac = MfaMode::AppendedCode(6);
        assert_eq!(ac.split(b"pw123456"), Some((&b"pw"[..], &b"123456"[..])));
        assert_eq!(ac.split(b"p123456"), Some((&b"p"[..], &b"123456"[..])));
        assert_eq!(ac.split(b"123456"), None, "no password left");
        assert_eq!(ac.split(b"pw12345x"), None, "not digits");
        assert_eq!(ac.split(b"12345"), None, "too short");
        assert_eq!(
            MfaMode::AppendedCode(8).split(b"pw12345678"),
            Some((&b"pw"[..], &b"12345678"[..]))
        );
        assert_eq!(
            MfaMode::Challenge.split(b"a,1"),
            Some((&b"a,1"[..], &b""[..]))
        );
    }

    #[test]
    fn read_mode_is_chosen_on_request_conditions() {
        let p = policies(
            r#"
[[policies]]
name = "contractors-out"
groups = ["contractors"]
action = "reject"
[[policies]]
name = "wifi"
client_groups = ["wifi"]
groups = ["staff"]
[[policies]]
name = "vpn"
clients = ["vpn"]
groups = ["staff"]
mfa = true
mfa_mode = "appended_code"
mfa_code_digits = 8
[[policies]]
name = "rest"
mfa = true
mfa_mode = "password_code"
"#,
        );
        // The rejecting policy is skipped; groups are not known yet and not looked at.
        assert_eq!(p.read_mode(&input("vpn", &[])), MfaMode::AppendedCode(8));
        assert_eq!(p.read_mode(&input("ap", &[])), MfaMode::Challenge);
        let mut i = input("vpn", &[]);
        i.client = "other";
        assert_eq!(p.read_mode(&i), MfaMode::PasswordCode);
        assert_eq!(NetworkPolicies::default().read_mode(&i), MfaMode::Challenge);
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
            (
                "[[policies]]\nname = \"x\"\nmfa = true\nmfa_mode = \"sms\"\n",
                "t.toml:8:",
                "mfa_mode \"sms\"",
            ),
            (
                "[[policies]]\nname = \"x\"\nmfa_mode = \"password_code\"\n",
                "t.toml:7:",
                "needs mfa = true",
            ),
            (
                "[[policies]]\nname = \"x\"\nmfa = true\nmfa_mode = \"appended_code\"\nmfa_code_digits = 3\n",
                "t.toml:9:",
                "between 4 and 10",
            ),
            (
                "[[policies]]\nname = \"x\"\nmfa = true\nmfa_code_digits = 6\n",
                "t.toml:8:",
                "only to mfa_mode = \"appended_code\"",
            ),
            (
                "[[policies]]\nname = \"x\"\nmfa = true\nauth_methods = [\"pap\", \"chap\"]\nmfa_mode = \"appended_code\"\n",
                "t.toml:9:",
                "cannot work with chap",
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
