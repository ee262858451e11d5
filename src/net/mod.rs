//! rtnetlink access: link, address and route snapshots parsed into owned structs.

pub mod link;
pub mod snapshot;
pub mod subnet;
pub mod watch;
