//! After rlm_sql: what FreeRADIUS's default `authorize` section does next with the control
//! and reply lists, up to the choice of the authentication: `expiration` (reject when the
//! Expiration has passed, else cap Session-Timeout at the time left), `pap`'s normalisation
//! of Password-With-Header, Auth-Type (`Accept`, `Reject`, or the method), the known-good
//! passwords each method uses, Simultaneous-Use, and the reply attributes to send.

use super::eval::Evaluated;
use super::items::{Attr, Item, Server, AUTH_TYPES};
use super::known_good::{with_header, KnownGood};
use crate::vocab::{Method, RejectReason};

/// What the user's rows decided before any password is looked at.
#[derive(Debug)]
pub struct Authorized {
    /// Every group the user is in (for network policies).
    pub groups: Vec<String>,
    /// Reply attributes to send: dictionary name (with `:tag`) and value text, in order.
    pub reply: Vec<(String, String)>,
    /// Simultaneous-Use from the control list.
    pub simultaneous_use: Option<u32>,
    /// Pool-Name from the control list (`[sql] ip_pool`'s name otherwise).
    pub pool_name: Option<String>,
    pub decided: Decided,
}

#[derive(Debug)]
pub enum Decided {
    /// `Auth-Type := Accept`: no password is checked.
    Accept,
    Reject(RejectReason),
    /// The credential is checked against these.
    Check(Passwords),
}

/// The known-good passwords each method would use.
#[derive(Debug, Default)]
pub struct Passwords {
    /// PAP: the first password of any form in the control list.
    pub pap: Option<KnownGood>,
    /// CHAP: the first Cleartext-Password.
    pub cleartext: Option<KnownGood>,
    /// MS-CHAP: the first NT-Password, else (as rlm_mschap) from the first Cleartext-Password.
    pub nt: Option<KnownGood>,
    /// The method `Auth-Type` names, if it names one: a request of another method fails.
    pub method: Option<Method>,
}

/// The decision of the control list at `now` (Unix seconds).
pub fn authorize(ev: Evaluated, now: u64) -> Authorized {
    let Evaluated {
        mut control,
        mut reply,
        groups,
        ..
    } = ev;
    let simultaneous_use = first(&control, Server::SimultaneousUse).and_then(number);
    let pool_name = first(&control, Server::PoolName)
        .map(|i| i.text.trim().to_string())
        .filter(|n| !n.is_empty());
    let decided = match first(&control, Server::Expiration).and_then(number) {
        Some(at) if u64::from(at) <= now => Decided::Reject(RejectReason::AccountExpired),
        expiration => {
            if let Some(at) = expiration {
                cap_session_timeout(&mut reply, u64::from(at) - now);
            }
            by_auth_type(&mut control)
        }
    };
    Authorized {
        groups,
        reply: sendable(&reply),
        simultaneous_use,
        pool_name,
        decided,
    }
}

fn by_auth_type(control: &mut Vec<Item>) -> Decided {
    let Some(t) = first(control, Server::AuthType).and_then(number) else {
        return Decided::Check(passwords(control, None));
    };
    match auth_type_name(t) {
        "Accept" => Decided::Accept,
        "Reject" => Decided::Reject(RejectReason::AuthTypeReject),
        "PAP" => Decided::Check(passwords(control, Some(Method::Pap))),
        "CHAP" => Decided::Check(passwords(control, Some(Method::Chap))),
        // Either version: rlm_mschap serves both.
        "MS-CHAP" => Decided::Check(passwords(control, Some(Method::MsChapV2))),
        _ => Decided::Reject(RejectReason::UnsupportedAuthType),
    }
}

fn first(list: &[Item], s: Server) -> Option<&Item> {
    list.iter().find(|i| i.attr == Attr::Server(s))
}

fn number(i: &Item) -> Option<u32> {
    i.value.as_slice().try_into().ok().map(u32::from_be_bytes)
}

fn auth_type_name(n: u32) -> &'static str {
    AUTH_TYPES
        .iter()
        .find(|(_, v)| *v == n)
        .map_or("", |(name, _)| name)
}

/// rlm_expiration: Session-Timeout at most the seconds left (added when there is none).
fn cap_session_timeout(reply: &mut Vec<Item>, left: u64) {
    let left = u32::try_from(left).unwrap_or(u32::MAX);
    let key = crate::dict::AttrKey::standard(u32::from(crate::proto::SESSION_TIMEOUT));
    let set = |i: &mut Item| {
        i.value = left.to_be_bytes().to_vec();
        i.text = left.to_string();
    };
    match reply
        .iter_mut()
        .find(|i| matches!(&i.attr, Attr::Radius { key: k, .. } if *k == key))
    {
        Some(i) if number(i).map_or(true, |t| t > left) => set(i),
        Some(_) => {}
        None => {
            let mut i = Item {
                attr: Attr::Radius {
                    key,
                    name: "Session-Timeout".into(),
                    ty: crate::dict::AttrType::Integer,
                },
                op: super::rows::Op::Eq,
                text: String::new(),
                value: Vec::new(),
            };
            set(&mut i);
            reply.push(i);
        }
    }
}

/// The reply items a packet carries: RADIUS attributes only (Fall-Through and any server
/// attribute stay behind, as FreeRADIUS never encodes them).
fn sendable(reply: &[Item]) -> Vec<(String, String)> {
    reply
        .iter()
        .filter_map(|i| match &i.attr {
            Attr::Radius { name, .. } => Some((name.clone(), i.text.clone())),
            Attr::Server(_) => None,
        })
        .collect()
}

/// rlm_pap's authorize (Password-With-Header becomes the password it names, at the end of
/// the list, unless a Cleartext-Password is there), then the password each method takes.
fn passwords(control: &mut Vec<Item>, method: Option<Method>) -> Passwords {
    let mut i = 0;
    while i < control.len() {
        if control[i].attr == Attr::Server(Server::PasswordWithHeader)
            && first(control, Server::CleartextPassword).is_none()
        {
            let converted = with_header(&control.remove(i).value);
            control.push(converted);
            continue;
        }
        i += 1;
    }
    let is_password = |it: &&Item| matches!(it.attr, Attr::Server(s) if s.is_password());
    let cleartext = first(control, Server::CleartextPassword).and_then(KnownGood::from_item);
    let nt = first(control, Server::NtPassword)
        .and_then(KnownGood::from_item)
        .or_else(|| cleartext.clone());
    Passwords {
        pap: control
            .iter()
            .find(is_password)
            .and_then(KnownGood::from_item),
        cleartext,
        nt,
        method,
    }
}
