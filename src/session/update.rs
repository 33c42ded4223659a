//! One accounting record as the session table reads it: borrowed from the packet (or from a
//! line of the accounting log being replayed), so that an Interim-Update allocates nothing.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::class::ClassSeal;
use super::unique_id::{KeyAttributes, UniqueId};
use crate::proto::attr::MAX_VALUE_LEN;
use crate::proto::{
    Attribute, Verified, ACCT_SESSION_ID, ACCT_STATUS_TYPE, CALLED_STATION_ID, CALLING_STATION_ID,
    CHARGEABLE_USER_IDENTITY, CLASS, FRAMED_IP_ADDRESS, NAS_IDENTIFIER, NAS_IPV6_ADDRESS,
    NAS_IP_ADDRESS, NAS_PORT, USER_NAME,
};

const ACCT_INPUT_OCTETS: u8 = 42;
const ACCT_OUTPUT_OCTETS: u8 = 43;
const ACCT_SESSION_TIME: u8 = 46;
const ACCT_MULTI_SESSION_ID: u8 = 50;
const ACCT_INPUT_GIGAWORDS: u8 = 52;
const ACCT_OUTPUT_GIGAWORDS: u8 = 53;
const ACCT_INTERIM_INTERVAL: u8 = 85;
const NAS_PORT_ID: u8 = 87;

/// Acct-Status-Type (RFC 2866 §5.1, RFC 2869).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Start,
    Stop,
    InterimUpdate,
    AccountingOn,
    AccountingOff,
    /// Absent, or a type that says nothing about a session (Tunnel-*, Failed).
    Other,
}

impl Status {
    pub fn from_code(code: u32) -> Status {
        match code {
            1 => Status::Start,
            2 => Status::Stop,
            3 => Status::InterimUpdate,
            7 => Status::AccountingOn,
            8 => Status::AccountingOff,
            _ => Status::Other,
        }
    }

    /// The dictionary's VALUE name, as the accounting log writes it.
    pub fn from_name(name: &str) -> Status {
        match name {
            "Start" => Status::Start,
            "Stop" => Status::Stop,
            "Interim-Update" | "Alive" => Status::InterimUpdate,
            "Accounting-On" => Status::AccountingOn,
            "Accounting-Off" => Status::AccountingOff,
            _ => Status::Other,
        }
    }
}

/// What one accounting record says about a session.
#[derive(Debug, Clone)]
pub struct Update<'a> {
    pub status: Status,
    /// Acct-Unique-Session-Id; `None` without an Acct-Session-Id (Accounting-On/Off).
    pub id: Option<UniqueId>,
    /// Whom the session belongs to: the identity our Class names, else the User-Name.
    pub user: Cow<'a, str>,
    /// The User-Name the NAS accounts under.
    pub accounted_user: Option<Cow<'a, str>>,
    pub acct_session_id: Cow<'a, str>,
    /// The client (NAS) entry's name.
    pub client: Cow<'a, str>,
    pub nas_address: IpAddr,
    pub nas_ip_address: Option<Ipv4Addr>,
    pub nas_identifier: Option<Cow<'a, str>>,
    pub nas_port: Option<u32>,
    pub nas_port_id: Option<Cow<'a, str>>,
    pub framed_ip_address: Option<Ipv4Addr>,
    pub calling_station_id: Option<Cow<'a, str>>,
    pub called_station_id: Option<Cow<'a, str>>,
    pub acct_multi_session_id: Option<Cow<'a, str>>,
    pub chargeable_user_identity: Option<Cow<'a, str>>,
    pub session_time: Option<u32>,
    pub input_octets: u64,
    pub output_octets: u64,
    pub interim_interval: Option<u32>,
    /// Unix seconds the record was received.
    pub time: i64,
}

/// The packet's attributes the table reads, found in one pass.
#[derive(Default)]
struct Found<'a> {
    status: Option<u32>,
    user: Option<&'a [u8]>,
    session: Option<&'a [u8]>,
    class: Option<&'a [u8]>,
    nas_ip: Option<Ipv4Addr>,
    nas_ipv6: Option<Ipv6Addr>,
    nas_id: Option<&'a [u8]>,
    port: Option<u32>,
    port_id: Option<&'a [u8]>,
    framed: Option<Ipv4Addr>,
    calling: Option<&'a [u8]>,
    called: Option<&'a [u8]>,
    multi: Option<&'a [u8]>,
    cui: Option<&'a [u8]>,
    time: Option<u32>,
    octets: [u32; 2],
    gigawords: [u32; 2],
    interim: Option<u32>,
}

fn int(v: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(v.try_into().ok()?))
}

fn ipv4(v: &[u8]) -> Option<Ipv4Addr> {
    let o: [u8; 4] = v.try_into().ok()?;
    Some(Ipv4Addr::from(o))
}

fn text(v: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(v)
}

impl<'a> Found<'a> {
    fn read(req: &Verified<'a>) -> Found<'a> {
        let mut f = Found::default();
        for Attribute { typ, value } in req.attributes() {
            match typ {
                ACCT_STATUS_TYPE => f.status = int(value),
                USER_NAME => f.user = Some(value),
                ACCT_SESSION_ID => f.session = Some(value),
                // Ours is the first that starts `ai:` (a NAS may carry others' too).
                CLASS if f.class.map_or(true, |c| !c.starts_with(b"ai:")) => f.class = Some(value),
                NAS_IP_ADDRESS => f.nas_ip = ipv4(value),
                NAS_IPV6_ADDRESS => {
                    f.nas_ipv6 = <[u8; 16]>::try_from(value).ok().map(Ipv6Addr::from)
                }
                NAS_IDENTIFIER => f.nas_id = Some(value),
                NAS_PORT => f.port = int(value),
                NAS_PORT_ID => f.port_id = Some(value),
                FRAMED_IP_ADDRESS => f.framed = ipv4(value),
                CALLING_STATION_ID => f.calling = Some(value),
                CALLED_STATION_ID => f.called = Some(value),
                ACCT_MULTI_SESSION_ID => f.multi = Some(value),
                CHARGEABLE_USER_IDENTITY => f.cui = Some(value),
                ACCT_SESSION_TIME => f.time = int(value),
                ACCT_INPUT_OCTETS => f.octets[0] = int(value).unwrap_or(0),
                ACCT_OUTPUT_OCTETS => f.octets[1] = int(value).unwrap_or(0),
                ACCT_INPUT_GIGAWORDS => f.gigawords[0] = int(value).unwrap_or(0),
                ACCT_OUTPUT_GIGAWORDS => f.gigawords[1] = int(value).unwrap_or(0),
                ACCT_INTERIM_INTERVAL => f.interim = int(value),
                _ => {}
            }
        }
        f
    }

    fn id(&self) -> Option<UniqueId> {
        let session = self.session?;
        if let Some(digits) = self.class.and_then(UniqueId::class_digits) {
            return Some(UniqueId::from_class(digits, session));
        }
        Some(UniqueId::from_attributes(&KeyAttributes {
            user_name: self.user.unwrap_or_default(),
            acct_session_id: session,
            nas_ip: self.nas_ip,
            nas_ipv6: self.nas_ipv6,
            nas_identifier: self.nas_id.unwrap_or_default(),
            nas_port_id: self.port_id.unwrap_or_default(),
            nas_port: self.port,
        }))
    }
}

/// Octets and gigawords into one 64-bit count (RFC 2869 §5.1).
pub fn octets(low: u32, gigawords: u32) -> u64 {
    (u64::from(gigawords) << 32) | u64::from(low)
}

impl<'a> Update<'a> {
    /// Reads a verified Accounting-Request from `client`; the identity of a Class of ours is
    /// opened into `identity`.
    pub fn from_request(
        req: &Verified<'a>,
        client: &'a str,
        nas_address: IpAddr,
        time: i64,
        seal: &ClassSeal,
        identity: &'a mut [u8; MAX_VALUE_LEN],
    ) -> Update<'a> {
        let f = Found::read(req);
        let id = f.id();
        let opened = f.class.and_then(|c| seal.open(c, identity));
        let user = match (opened, f.user) {
            (Some(who), _) => text(who),
            (None, Some(name)) => text(name),
            (None, None) => Cow::Borrowed(""),
        };
        Update {
            status: f.status.map_or(Status::Other, Status::from_code),
            id,
            user,
            accounted_user: f.user.map(text),
            acct_session_id: f.session.map_or(Cow::Borrowed(""), text),
            client: Cow::Borrowed(client),
            nas_address,
            nas_ip_address: f.nas_ip,
            nas_identifier: f.nas_id.map(text),
            nas_port: f.port,
            nas_port_id: f.port_id.map(text),
            framed_ip_address: f.framed,
            calling_station_id: f.calling.map(text),
            called_station_id: f.called.map(text),
            acct_multi_session_id: f.multi.map(text),
            chargeable_user_identity: f.cui.map(text),
            session_time: f.time,
            input_octets: octets(f.octets[0], f.gigawords[0]),
            output_octets: octets(f.octets[1], f.gigawords[1]),
            interim_interval: f.interim,
            time,
        }
    }
}
