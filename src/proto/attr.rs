//! Attribute type numbers the core needs by name (RFC 2865, 2866, 2868,
//! 2869, 3162, 3579, 4372, 5580; RFC 2548 for Microsoft). The full dictionary lives in
//! `crate::dict`; these constants exist so the codec does not depend on it.

pub const USER_NAME: u8 = 1;
pub const USER_PASSWORD: u8 = 2;
pub const CHAP_PASSWORD: u8 = 3;
pub const NAS_IP_ADDRESS: u8 = 4;
pub const NAS_PORT: u8 = 5;
pub const SERVICE_TYPE: u8 = 6;
pub const FRAMED_IP_ADDRESS: u8 = 8;
pub const FILTER_ID: u8 = 11;
pub const REPLY_MESSAGE: u8 = 18;
pub const STATE: u8 = 24;
pub const CLASS: u8 = 25;
pub const VENDOR_SPECIFIC: u8 = 26;
pub const SESSION_TIMEOUT: u8 = 27;
pub const CALLED_STATION_ID: u8 = 30;
pub const CALLING_STATION_ID: u8 = 31;
pub const FRAMED_MTU: u8 = 12;
pub const NAS_IDENTIFIER: u8 = 32;
pub const PROXY_STATE: u8 = 33;
pub const ACCT_STATUS_TYPE: u8 = 40;
pub const ACCT_SESSION_ID: u8 = 44;
pub const EVENT_TIMESTAMP: u8 = 55;
pub const CHAP_CHALLENGE: u8 = 60;
pub const NAS_PORT_TYPE: u8 = 61;
pub const TUNNEL_TYPE: u8 = 64;
pub const TUNNEL_MEDIUM_TYPE: u8 = 65;
pub const TUNNEL_PASSWORD: u8 = 69;
pub const EAP_MESSAGE: u8 = 79;
pub const MESSAGE_AUTHENTICATOR: u8 = 80;
pub const TUNNEL_PRIVATE_GROUP_ID: u8 = 81;
pub const CHARGEABLE_USER_IDENTITY: u8 = 89;
pub const NAS_IPV6_ADDRESS: u8 = 95;
pub const OPERATOR_NAME: u8 = 126;

/// Vendor-Id of Microsoft (SMI network management private enterprise code).
pub const MICROSOFT: u32 = 311;
/// MS-CHAP-Response vendor type (RFC 2548 §2.1.3).
pub const MS_CHAP_RESPONSE: u8 = 1;
/// MS-CHAP-Error vendor type (RFC 2548 §2.1.5).
pub const MS_CHAP_ERROR: u8 = 2;
/// MS-CHAP-Challenge vendor type (RFC 2548 §2.1.2).
pub const MS_CHAP_CHALLENGE: u8 = 11;
/// MS-CHAP-MPPE-Keys vendor type (RFC 2548 §2.4.1).
pub const MS_CHAP_MPPE_KEYS: u8 = 12;
/// MS-CHAP2-Response vendor type (RFC 2548 §2.3.2).
pub const MS_CHAP2_RESPONSE: u8 = 25;
/// MS-CHAP2-Success vendor type (RFC 2548 §2.3.3).
pub const MS_CHAP2_SUCCESS: u8 = 26;
/// MS-CHAP2-CPW vendor type (RFC 2548 §2.3.4): an MS-CHAPv2 password change.
pub const MS_CHAP2_CPW: u8 = 27;
/// MS-MPPE-Send-Key vendor type (RFC 2548 §2.4.2).
pub const MS_MPPE_SEND_KEY: u8 = 16;
/// MS-MPPE-Recv-Key vendor type (RFC 2548 §2.4.3).
pub const MS_MPPE_RECV_KEY: u8 = 17;

/// Longest attribute value: the Length octet counts the 2-octet header.
pub const MAX_VALUE_LEN: usize = 253;
/// Longest value inside a standard-layout Vendor-Specific attribute:
/// 253 minus the Vendor-Id (4) and the vendor type/length octets (2).
pub const MAX_VSA_VALUE_LEN: usize = 247;
