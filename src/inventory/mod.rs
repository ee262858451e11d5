//! The host's hardware inventory: probes fill plain structs (`model`), rules (`rules`) decide
//! what is eligible, and `probe_host` ties the two together.

pub mod model;
pub mod monitor;
pub mod probe;
pub mod rules;

pub use model::{Disk, Inventory, Nic};
pub use rules::DiskPolicy;

use probe::SysRoot;

/// Options that shape a probe; shared by the CLI flags and the daemon's config file.
#[derive(Debug, Clone, Default)]
pub struct ProbeOptions {
    pub disk_policy: DiskPolicy,
    pub root: SysRoot,
}

/// Probe every NIC and disk of this host and judge each one.
///
/// Each probe reports what it could not read and carries on: a disk that cannot be opened, a
/// missing udev database or a failing netlink dump end up as warnings or per-device errors.
pub async fn probe_host(opts: &ProbeOptions) -> Inventory {
    let mut warnings = Vec::new();
    let root = opts.root.clone();
    // Disks are probed on a blocking thread (udev handles are not Send, libblkid blocks) while
    // netlink is queried on this task.
    let disks = tokio::task::spawn_blocking(move || probe::disk::probe_disks(&root));
    let nics = match probe::nic::probe_nics(&opts.root).await {
        Ok(n) => n,
        Err(e) => {
            warnings.push(format!("network interfaces could not be listed: {e:#}"));
            Vec::new()
        }
    };
    let (disks, disk_warnings) = match disks.await {
        Ok(r) => r,
        Err(e) => (Vec::new(), vec![format!("disk probe failed: {e}")]),
    };
    warnings.extend(disk_warnings);
    let mut inv = Inventory {
        hostname: nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok()),
        nics,
        disks,
        warnings,
        allow_disk: opts.disk_policy.pattern_strings(),
    };
    judge(&mut inv, &opts.disk_policy);
    inv
}

/// Apply the eligibility rules to every device, in place.
pub fn judge(inv: &mut Inventory, policy: &DiskPolicy) {
    for nic in &mut inv.nics {
        nic.uplink = model::Verdict::from_reasons(rules::uplink_reasons(nic));
    }
    for disk in &mut inv.disks {
        disk.reasons = rules::disk_reasons(disk, policy);
        disk.eligible = disk.reasons.is_empty();
    }
}

/// Bytes in binary units with one decimal, as `lsblk` and LXD print them (`10.0 GiB`).
pub fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}
