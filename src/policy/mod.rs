//! Policy: what goes into a reply. Today that is per-user reply attributes; network policies
//! (ordered rules matching NAS, groups, method) build on the same [`ReplyAttributes`].

pub mod reply;

pub use reply::ReplyAttributes;
