//! `[[policies]]`: ordered network policies, as written and validated. Names in them (clients,
//! dictionary attributes) are resolved later: client names by [`crate::config`], which sees
//! every section, and attribute names when the runtime tables are built.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::Deserialize;
use toml::Spanned;

use super::{AuthSource, MfaMode};
use crate::cfg::{line_of, AttrValues, ClientNet, ConfigError, Located};
use crate::vocab::Method;

/// `[[policies]]`: an ordered network policy, as NPS has them. All given conditions must
/// match; the first policy that matches decides.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    pub name: String,
    /// Client names (`[[clients]] name`).
    #[serde(default)]
    pub clients: Vec<String>,
    /// Client groups (`[[clients]] group`).
    #[serde(default)]
    pub client_groups: Vec<String>,
    /// NAS-IP-Address in one of these networks.
    #[serde(default)]
    pub nas_ip: Vec<Spanned<ClientNet>>,
    /// NAS-Port-Type values by dictionary name (`"Wireless-802.11"`) or number.
    pub nas_port_type: Option<Spanned<AttrValues>>,
    /// A regular expression the Called-Station-Id must match.
    pub called_station_id: Option<Spanned<String>>,
    /// EAP-TLS: a regular expression the client certificate's issuer CN must match.
    pub certificate_issuer: Option<Spanned<String>>,
    /// EAP-TLS: a regular expression the client certificate's subject CN or one of its
    /// subject alternative names (email, UPN, DNS) must match.
    pub certificate_subject: Option<Spanned<String>>,
    /// The user is in one of these groups (a group's DN or its first RDN value, any case).
    #[serde(default)]
    pub groups: Vec<String>,
    /// "pap" / "chap".
    #[serde(default)]
    pub auth_methods: Vec<Spanned<String>>,
    /// "local" / "ldap".
    #[serde(default)]
    pub auth_sources: Vec<Spanned<String>>,
    /// "accept" (default) or "reject".
    pub action: Option<Spanned<String>>,
    /// Whether a second factor is required (for the MFA stage).
    #[serde(default)]
    pub mfa: bool,
    /// How the code is presented: "challenge" (default), "password_code", "appended_code".
    pub mfa_mode: Option<Spanned<String>>,
    /// `appended_code`: how many trailing digits of User-Password are the code (default 6).
    pub mfa_code_digits: Option<Spanned<u8>>,
    /// Who did the primary authentication: "radshard" (default: the password is checked
    /// here) or "nas" (the clients this policy names checked it; User-Password carries only
    /// the one-time code).
    pub primary: Option<Spanned<String>>,
    #[serde(default)]
    pub reply: BTreeMap<String, Spanned<AttrValues>>,
    /// Simultaneous-Use: open sessions at most per user this policy accepts.
    pub simultaneous_use: Option<Spanned<u32>>,
    /// At the cap: "reject" (default) or "disconnect_oldest".
    pub on_simultaneous_use: Option<Spanned<String>>,
    /// `[sql] ip_pool`: the `radippool` pool of this policy's Access-Accepts (a user's
    /// Pool-Name still wins).
    pub ip_pool: Option<Spanned<String>>,
}

/// One `[[policies]]` entry, validated (names are resolved when the runtime is built).
#[derive(Debug, Clone)]
pub struct PolicyConfig {
    pub name: String,
    pub clients: Vec<String>,
    pub client_groups: Vec<String>,
    pub nas_ip: Vec<IpNet>,
    pub nas_port_type: Vec<Located<String>>,
    pub called_station_id: Option<Located<String>>,
    pub certificate_issuer: Option<Located<String>>,
    pub certificate_subject: Option<Located<String>>,
    pub groups: Vec<String>,
    pub auth_methods: Vec<Method>,
    pub auth_sources: Vec<AuthSource>,
    pub reject: bool,
    pub mfa: bool,
    pub mfa_mode: MfaMode,
    /// Where `mfa_mode` was written (the policy's line if not), for errors found later.
    pub mfa_mode_line: usize,
    /// `primary = "nas"`: the clients named did the primary authentication themselves.
    pub primary_by_nas: bool,
    /// Where `primary` was written (the policy's line if not).
    pub primary_line: usize,
    pub reply: Vec<Located<(String, String)>>,
    pub simultaneous_use: Option<crate::session::config::SessionLimit>,
    pub ip_pool: Option<String>,
    pub file: PathBuf,
    pub line: usize,
}

impl PolicyConfig {
    /// Validates one `[[policies]]` entry of `file`, whose text is `text`. That the clients
    /// and client groups it names exist is checked by the caller, which knows the clients.
    pub fn from_raw(
        p: Spanned<RawPolicy>,
        file: &Path,
        text: &str,
    ) -> Result<PolicyConfig, ConfigError> {
        let line = line_of(text, p.span().start);
        let p = p.into_inner();
        let at = |s: std::ops::Range<usize>| line_of(text, s.start);
        let err =
            |l: usize, m: String| ConfigError::new(file, l, format!("policy {:?}: {m}", p.name));
        let mut auth_methods = Vec::new();
        for m in &p.auth_methods {
            auth_methods.push(match Method::from_label(m.get_ref()) {
                Some(m) => m,
                None => {
                    return Err(err(
                        at(m.span()),
                        format!(
                            "auth method {:?} is not pap, chap, mschap or mschapv2",
                            m.get_ref()
                        ),
                    ))
                }
            });
        }
        let mut auth_sources = Vec::new();
        for s in &p.auth_sources {
            auth_sources.push(match s.get_ref().as_str() {
                "local" => AuthSource::Local,
                "ldap" => AuthSource::Ldap,
                "certificate" => AuthSource::Certificate,
                "proxy" => AuthSource::Proxy,
                "sql" => AuthSource::Sql,
                other => {
                    return Err(err(
                        at(s.span()),
                        format!(
                            "auth source {other:?} is not local, ldap, sql, certificate or proxy"
                        ),
                    ))
                }
            });
        }
        let mfa_mode_line = p.mfa_mode.as_ref().map_or(line, |m| at(m.span()));
        let mfa_mode = match (&p.mfa_mode, &p.mfa_code_digits) {
            (None, None) => MfaMode::Challenge,
            (Some(m), digits) => match (m.get_ref().as_str(), digits) {
                ("challenge", None) => MfaMode::Challenge,
                ("password_code", None) => MfaMode::PasswordCode,
                ("appended_code", None) => MfaMode::AppendedCode(6),
                ("appended_code", Some(d)) if (4..=10).contains(d.get_ref()) => {
                    MfaMode::AppendedCode(*d.get_ref())
                }
                ("appended_code", Some(d)) => {
                    return Err(err(
                        at(d.span()),
                        "mfa_code_digits must be between 4 and 10".into(),
                    ))
                }
                ("challenge" | "password_code", Some(d)) => {
                    return Err(err(
                        at(d.span()),
                        "mfa_code_digits applies only to mfa_mode = \"appended_code\"".into(),
                    ))
                }
                (other, _) => {
                    return Err(err(
                        at(m.span()),
                        format!("mfa_mode {other:?} is not \"challenge\", \"password_code\" or \"appended_code\""),
                    ))
                }
            },
            (None, Some(d)) => {
                return Err(err(
                    at(d.span()),
                    "mfa_code_digits applies only to mfa_mode = \"appended_code\"".into(),
                ))
            }
        };
        if mfa_mode.is_combined() && !p.mfa {
            return Err(err(
                mfa_mode_line,
                format!(
                    "mfa_mode = {:?} needs mfa = true (without a second factor the whole User-Password is the password)",
                    mfa_mode.label()
                ),
            ));
        }
        if let Some(hashed) = auth_methods.iter().find(|m| **m != Method::Pap) {
            if mfa_mode.is_combined() {
                return Err(err(
                    mfa_mode_line,
                    format!(
                        "mfa_mode = {:?} cannot work with {} (the password arrives hashed, so no code can be split off it): remove {:?} from auth_methods",
                        mfa_mode.label(),
                        hashed.label(),
                        hashed.label()
                    ),
                ));
            }
        }
        let primary_line = p.primary.as_ref().map_or(line, |m| at(m.span()));
        let primary_by_nas = match p.primary.as_ref().map(|m| m.get_ref().as_str()) {
            None | Some("radshard") => false,
            Some("nas") => true,
            Some(other) => {
                return Err(err(
                    primary_line,
                    format!("primary {other:?} is not \"radshard\" or \"nas\""),
                ))
            }
        };
        if primary_by_nas {
            // Nothing but the second factor is checked for these requests: the policy must be
            // unambiguous about whom it trusts and must require that factor.
            let refuse = |why: &str| Err(err(primary_line, format!("primary = \"nas\" {why}")));
            if p.clients.is_empty() {
                return refuse("trusts the NAS with the password check, so it must name the clients it trusts (clients = [...])");
            }
            if !p.client_groups.is_empty() {
                return refuse("must name its clients one by one, not by client_groups");
            }
            if !p.mfa {
                return refuse("needs mfa = true: the second factor is all that is checked");
            }
            if p.mfa_mode.is_some() || p.mfa_code_digits.is_some() {
                return refuse("reads all of User-Password as the code: leave mfa_mode out");
            }
            if !p.groups.is_empty() || !p.auth_sources.is_empty() {
                return refuse("cannot match groups or auth_sources: the NAS tells neither");
            }
            if matches!(
                p.action.as_ref().map(|a| a.get_ref().as_str()),
                Some("reject")
            ) {
                return refuse("makes no sense on a rejecting policy");
            }
        }
        let reject = match &p.action {
            None => false,
            Some(a) => match a.get_ref().as_str() {
                "accept" => false,
                "reject" => true,
                other => {
                    return Err(err(
                        at(a.span()),
                        format!("action {other:?} is not accept or reject"),
                    ))
                }
            },
        };
        let regex = |value: Option<Spanned<String>>, key: &str| match value {
            Some(r) => {
                let l = at(r.span());
                let r = r.into_inner();
                if let Err(e) = regex::Regex::new(&r) {
                    return Err(err(l, format!("{key} is not a valid regex: {e}")));
                }
                Ok(Some(Located {
                    value: r,
                    file: file.to_path_buf(),
                    line: l,
                }))
            }
            None => Ok(None),
        };
        let simultaneous_use = session_limit(&p, &at, &err)?;
        let ip_pool = match &p.ip_pool {
            Some(n) if n.get_ref().trim().is_empty() || n.get_ref().len() > 64 => {
                return Err(ConfigError::new(
                    file,
                    at(n.span()),
                    format!("policy {:?}: ip_pool must be 1 to 64 characters", p.name),
                ))
            }
            Some(n) => Some(n.get_ref().trim().to_string()),
            None => None,
        };
        let called_station_id = regex(p.called_station_id, "called_station_id")?;
        let certificate_issuer = regex(p.certificate_issuer, "certificate_issuer")?;
        let certificate_subject = regex(p.certificate_subject, "certificate_subject")?;
        let nas_port_type = match p.nas_port_type {
            Some(v) => {
                let l = at(v.span());
                v.into_inner()
                    .0
                    .into_iter()
                    .map(|value| Located {
                        value,
                        file: file.to_path_buf(),
                        line: l,
                    })
                    .collect()
            }
            None => Vec::new(),
        };
        let mut reply = Vec::new();
        for (name, values) in p.reply {
            let vline = at(values.span());
            for v in values.into_inner().0 {
                reply.push(Located {
                    value: (name.clone(), v),
                    file: file.to_path_buf(),
                    line: vline,
                });
            }
        }
        if reject && !reply.is_empty() {
            return Err(err(
                line,
                "a rejecting policy cannot have reply attributes".into(),
            ));
        }
        Ok(PolicyConfig {
            nas_ip: p.nas_ip.into_iter().map(|n| n.into_inner().0).collect(),
            name: p.name,
            clients: p.clients,
            client_groups: p.client_groups,
            nas_port_type,
            called_station_id,
            certificate_issuer,
            certificate_subject,
            groups: p.groups,
            auth_methods,
            auth_sources,
            reject,
            mfa: p.mfa,
            mfa_mode,
            mfa_mode_line,
            primary_by_nas,
            primary_line,
            reply,
            simultaneous_use,
            ip_pool,
            file: file.to_path_buf(),
            line,
        })
    }
}

/// `simultaneous_use` and `on_simultaneous_use`.
fn session_limit(
    p: &RawPolicy,
    at: &impl Fn(std::ops::Range<usize>) -> usize,
    err: &impl Fn(usize, String) -> ConfigError,
) -> Result<Option<crate::session::config::SessionLimit>, ConfigError> {
    use crate::session::config::{AtCap, SessionLimit};
    let at_cap = match &p.on_simultaneous_use {
        None => AtCap::Reject,
        Some(m) => AtCap::from_label(m.get_ref()).ok_or_else(|| {
            err(
                at(m.span()),
                format!(
                    "on_simultaneous_use {:?} is not \"reject\" or \"disconnect_oldest\"",
                    m.get_ref()
                ),
            )
        })?,
    };
    match &p.simultaneous_use {
        Some(n) if *n.get_ref() == 0 => Err(err(
            at(n.span()),
            "simultaneous_use must be at least 1 (use action = \"reject\" to refuse every login)"
                .into(),
        )),
        Some(n) => Ok(Some(SessionLimit {
            cap: *n.get_ref(),
            at_cap,
        })),
        None if p.on_simultaneous_use.is_some() => Err(err(
            p.on_simultaneous_use.as_ref().map_or(0, |m| at(m.span())),
            "on_simultaneous_use needs simultaneous_use = N".into(),
        )),
        None => Ok(None),
    }
}
