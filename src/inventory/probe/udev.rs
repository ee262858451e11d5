//! udev access: devices and their properties copied into owned, `Send` structs right away,
//! because libudev handles are neither `Send` nor thread-safe (the stratisd pattern).

use std::collections::BTreeMap;
use std::path::PathBuf;

/// One udev device with everything we read from it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UdevDevice {
    pub syspath: PathBuf,
    pub sysname: String,
    pub devnode: Option<PathBuf>,
    /// (major, minor)
    pub devnum: Option<(u64, u64)>,
    pub devtype: Option<String>,
    /// udevd has processed this device and its database entry exists.
    pub initialized: bool,
    pub properties: BTreeMap<String, String>,
}

impl UdevDevice {
    fn from_device(d: &udev::Device) -> Self {
        let properties = d
            .properties()
            .map(|p| {
                (
                    p.name().to_string_lossy().into_owned(),
                    p.value().to_string_lossy().into_owned(),
                )
            })
            .collect();
        UdevDevice {
            syspath: d.syspath().to_path_buf(),
            sysname: d.sysname().to_string_lossy().into_owned(),
            devnode: d.devnode().map(|p| p.to_path_buf()),
            devnum: d
                .devnum()
                .map(|n| (nix::sys::stat::major(n), nix::sys::stat::minor(n))),
            devtype: d.devtype().map(|s| s.to_string_lossy().into_owned()),
            initialized: d.is_initialized(),
            properties,
        }
    }

    pub fn prop(&self, key: &str) -> Option<&str> {
        self.properties
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The /dev/disk/by-* symlinks udev made for this device.
    pub fn devlinks(&self) -> Vec<String> {
        self.prop("DEVLINKS")
            .map(|s| s.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default()
    }
}

/// Every device of the `block` subsystem (disks and partitions).
pub fn block_devices() -> std::io::Result<Vec<UdevDevice>> {
    let mut e = udev::Enumerator::new()?;
    e.match_subsystem("block")?;
    Ok(e.scan_devices()?
        .filter(|d| !is_detached_loop(d))
        .map(|d| UdevDevice::from_device(&d))
        .collect())
}

/// Unattached loop devices (size 0) are never reported; skipping them before their udev
/// properties are read keeps the probe fast on hosts with many idle loop nodes.
fn is_detached_loop(d: &udev::Device) -> bool {
    d.sysname().to_string_lossy().starts_with("loop")
        && d.attribute_value("size")
            .is_some_and(|v| v.to_string_lossy().trim() == "0")
}

/// The udev view of one network interface, if udev knows it.
pub fn net_device(name: &str) -> Option<UdevDevice> {
    udev::Device::from_subsystem_sysname("net".into(), name.into())
        .ok()
        .map(|d| UdevDevice::from_device(&d))
}

/// Whether udevd runs (its control socket exists): without it the database may be stale or empty.
pub fn udevd_running() -> bool {
    std::path::Path::new("/run/udev/control").exists()
}
