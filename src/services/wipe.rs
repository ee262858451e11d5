//! Wiping a disk the operator consented to erase: every signature on its partitions, then on
//! the disk itself, with util-linux's `wipefs` (which opens each device exclusively, so a
//! device something holds is refused rather than pulled from under it). Whether a disk may be
//! wiped at all is decided by `inventory::rules::disk::wipe_would_clear` on a fresh probe, by
//! the caller, right before.

use std::process::{Command, Stdio};

use crate::inventory::model::Disk;

#[derive(Debug, thiserror::Error)]
pub enum WipeError {
    #[error("running wipefs on {device}: {source}")]
    Spawn {
        device: String,
        #[source]
        source: std::io::Error,
    },
    #[error("wipefs --all {device} failed ({status}): {stderr}")]
    Failed {
        device: String,
        status: std::process::ExitStatus,
        stderr: String,
    },
}

/// The devices to clear, partitions first (their signatures sit inside the disk's table).
pub fn devices(disk: &Disk) -> Vec<String> {
    let mut out: Vec<String> = disk
        .partitions
        .iter()
        .filter_map(|p| p.path.clone())
        .collect();
    out.push(disk.path.clone());
    out
}

/// Erase every signature on `disk` and its partitions.
pub fn wipe(disk: &Disk) -> Result<(), WipeError> {
    for device in devices(disk) {
        let out = Command::new("wipefs")
            .args(["--all", "--quiet"])
            .arg(&device)
            .stdin(Stdio::null())
            .output()
            .map_err(|source| WipeError::Spawn {
                device: device.clone(),
                source,
            })?;
        if !out.status.success() {
            return Err(WipeError::Failed {
                device,
                status: out.status,
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
    }
    // Let udev catch up so the next probe (and LXD) see the disk blank; best effort.
    let _ = Command::new("udevadm")
        .args(["settle", "--timeout=10"])
        .stdin(Stdio::null())
        .status();
    Ok(())
}
