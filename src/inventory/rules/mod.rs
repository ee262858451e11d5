//! Eligibility rules: pure functions over the probed facts that say what microcloud may use and,
//! for everything it may not, exactly why. No I/O happens here.

pub mod disk;
pub mod nic;

pub use disk::{disk_reasons, DiskPolicy, MIN_DISK_SIZE};
pub use nic::{rank_uplinks, uplink_reasons};
