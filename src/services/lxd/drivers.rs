//! Which storage driver the `local` pool uses: zfs where LXD can, else btrfs, else lvm, else
//! dir (DESIGN §6). A pool has one driver cluster-wide, so the choice is the best driver every
//! member supports. Pure: the inputs are `environment.storage_supported_drivers` of each host.

use std::fmt;

/// A driver for a pool on a member's own disk, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LocalDriver {
    Zfs,
    Btrfs,
    Lvm,
    Dir,
}

impl LocalDriver {
    /// Best first.
    pub const PREFERENCE: [LocalDriver; 4] = [
        LocalDriver::Zfs,
        LocalDriver::Btrfs,
        LocalDriver::Lvm,
        LocalDriver::Dir,
    ];

    /// LXD's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            LocalDriver::Zfs => "zfs",
            LocalDriver::Btrfs => "btrfs",
            LocalDriver::Lvm => "lvm",
            LocalDriver::Dir => "dir",
        }
    }

    pub fn from_name(name: &str) -> Option<LocalDriver> {
        Self::PREFERENCE.into_iter().find(|d| d.as_str() == name)
    }

    /// The pool description MicroCloud uses ("Local storage on ZFS").
    pub fn description(self) -> String {
        let name = match self {
            LocalDriver::Zfs => "ZFS",
            LocalDriver::Btrfs => "Btrfs",
            LocalDriver::Lvm => "LVM",
            LocalDriver::Dir => "a directory",
        };
        format!("Local storage on {name}")
    }

    /// Whether the pool's per-member `source` is a block device (dir takes a directory).
    pub fn takes_disk(self) -> bool {
        self != LocalDriver::Dir
    }
}

impl fmt::Display for LocalDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The best local driver among the names one LXD reports; unknown names (ceph, cephfs, …) are
/// ignored.
pub fn choose_local_driver<'a>(
    supported: impl IntoIterator<Item = &'a str>,
) -> Option<LocalDriver> {
    supported
        .into_iter()
        .filter_map(LocalDriver::from_name)
        .min()
}

/// The best local driver every host supports (each inner list is one host's drivers); `None`
/// for no hosts or no driver in common.
pub fn choose_common_driver<H: AsRef<[S]>, S: AsRef<str>>(hosts: &[H]) -> Option<LocalDriver> {
    if hosts.is_empty() {
        return None;
    }
    LocalDriver::PREFERENCE.into_iter().find(|d| {
        hosts
            .iter()
            .all(|h| h.as_ref().iter().any(|name| name.as_ref() == d.as_str()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preference_order() {
        assert_eq!(
            choose_local_driver(["dir", "lvm", "btrfs", "zfs"]),
            Some(LocalDriver::Zfs)
        );
        // LXD 5.0.2 from Debian without zfsutils.
        assert_eq!(
            choose_local_driver(["dir", "lvm", "btrfs"]),
            Some(LocalDriver::Btrfs)
        );
        assert_eq!(choose_local_driver(["dir", "lvm"]), Some(LocalDriver::Lvm));
        assert_eq!(
            choose_local_driver(["ceph", "dir", "cephfs"]),
            Some(LocalDriver::Dir)
        );
        assert_eq!(choose_local_driver(["ceph"]), None);
        assert_eq!(choose_local_driver([]), None);
    }

    #[test]
    fn common_driver_is_the_best_all_share() {
        let hosts = vec![
            vec!["zfs", "btrfs", "dir"],
            vec!["btrfs", "dir"],
            vec!["zfs", "btrfs", "lvm", "dir"],
        ];
        assert_eq!(choose_common_driver(&hosts), Some(LocalDriver::Btrfs));
        let disjoint = vec![vec!["zfs"], vec!["lvm"]];
        assert_eq!(choose_common_driver(&disjoint), None);
        assert_eq!(choose_common_driver::<Vec<&str>, &str>(&[]), None);
        let owned = vec![vec!["dir".to_string()]];
        assert_eq!(choose_common_driver(&owned), Some(LocalDriver::Dir));
    }

    #[test]
    fn names_and_descriptions() {
        for d in LocalDriver::PREFERENCE {
            assert_eq!(LocalDriver::from_name(d.as_str()), Some(d));
        }
        assert_eq!(LocalDriver::Zfs.description(), "Local storage on ZFS");
        assert!(!LocalDriver::Dir.takes_disk());
        assert_eq!(LocalDriver::from_name("ZFS"), None);
    }
}
