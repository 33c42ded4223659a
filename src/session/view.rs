//! What the admin API, the CLI and the dynamic-authorization sender see of a session: an
//! owned snapshot, serialisable, taken under the table's lock and used after it is released.

use std::net::{IpAddr, Ipv4Addr};

use serde::{Deserialize, Serialize};

/// One open session as the table knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionView {
    /// Acct-Unique-Session-Id, 32 lowercase hex digits (computed as FreeRADIUS does).
    pub id: String,
    /// The authenticated identity (the inner identity of a tunnelled EAP login), or the
    /// accounted User-Name when radshard did not authenticate the session.
    pub user: String,
    /// The User-Name the NAS accounts under (often `anonymous` for PEAP/TTLS).
    pub accounted_user: Option<String>,
    /// Acct-Session-Id as the NAS sent it.
    pub acct_session_id: String,
    /// The `[[clients]]` entry the accounting came from: its DAS is where a
    /// Disconnect-Request or CoA-Request for this session goes.
    pub client: String,
    /// The accounting packet's source address.
    pub nas_address: IpAddr,
    pub nas_ip_address: Option<Ipv4Addr>,
    pub nas_identifier: Option<String>,
    pub nas_port: Option<u32>,
    pub nas_port_id: Option<String>,
    pub framed_ip_address: Option<Ipv4Addr>,
    pub calling_station_id: Option<String>,
    pub called_station_id: Option<String>,
    /// Acct-Multi-Session-Id, when the NAS sent one.
    pub acct_multi_session_id: Option<String>,
    /// Chargeable-User-Identity, when the NAS sent one.
    pub chargeable_user_identity: Option<String>,
    /// Unix seconds of the Start (or of the first record seen for the session).
    pub started: i64,
    /// Unix seconds of the last Start or Interim-Update.
    pub last_update: i64,
    /// Acct-Session-Time of the last update, seconds.
    pub session_time: Option<u32>,
    /// Octets with Acct-Input/Output-Gigawords folded in.
    pub input_octets: u64,
    pub output_octets: u64,
}
