//! Sessions: who is online, from accounting.
//!
//! Every Accounting-Request that is recorded also updates one in-memory table (Start opens a
//! session, Interim-Update refreshes it, Stop closes it, Accounting-On/Off close all of a
//! NAS's). A session is keyed by its Acct-Unique-Session-Id, computed as FreeRADIUS's
//! `acct_unique` policy does ([`unique_id`]), and belongs to the identity radshard
//! authenticated: the Access-Accept carries a Class ([`class`]) that the NAS echoes in its
//! accounting, sealed so that only radshard can read the identity back, so a PEAP login made
//! as `anonymous` is found as the inner identity's. The accounting log is the truth: each
//! record carries the session id and identity radshard resolved, and the table is rebuilt
//! from the log at start-up ([`rebuild`]).

pub mod class;
pub mod config;
pub mod grant;
pub mod rebuild;
pub mod store;
pub mod table;
pub mod unique_id;
pub mod update;
pub mod view;

pub use class::{ClassSeal, ClassTag};
pub use config::{AtCap, SessionLimit, SessionsConfig};
pub use grant::{grant, Grant};
pub use store::{Admission, SessionFilter, SessionStore};
pub use table::SessionTable;
pub use unique_id::UniqueId;
pub use update::{Status, Update};
pub use view::SessionView;
