//! Probes: the only inventory code that touches the OS. Each reads one source (netlink, sysfs,
//! udev, libblkid, mountinfo) into owned plain structs; `nic` and `disk` assemble them.

pub mod blkid;
mod blkid_scan;
pub mod block;
pub mod disk;
pub mod links;
pub mod mounts;
pub mod nic;
pub mod sysfs;
pub mod udev;

use std::path::{Path, PathBuf};

/// Where the probes look for the kernel's pseudo-filesystems. Tests point it at a fake tree.
#[derive(Debug, Clone)]
pub struct SysRoot {
    pub sys: PathBuf,
    pub proc: PathBuf,
    pub dev: PathBuf,
    /// Query libudev (which always reads the real /sys and /run/udev). Off for fake trees.
    pub use_udev: bool,
}

impl Default for SysRoot {
    fn default() -> Self {
        SysRoot {
            sys: "/sys".into(),
            proc: "/proc".into(),
            dev: "/dev".into(),
            use_udev: true,
        }
    }
}

impl SysRoot {
    /// A fake tree under `base` (`base/sys`, `base/proc`, `base/dev`), udev off.
    pub fn fake(base: &Path) -> Self {
        SysRoot {
            sys: base.join("sys"),
            proc: base.join("proc"),
            dev: base.join("dev"),
            use_udev: false,
        }
    }
}
