//! Disk probe (placeholder until the disk probe lands).
use super::SysRoot;
use crate::inventory::model::Disk;

pub fn probe_disks(_root: &SysRoot) -> (Vec<Disk>, Vec<String>) {
    (Vec::new(), Vec::new())
}
