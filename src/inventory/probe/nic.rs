//! NIC probe (placeholder).
use super::SysRoot;
use crate::inventory::model::Nic;

pub async fn probe_nics(_root: &SysRoot) -> anyhow::Result<Vec<Nic>> {
    Ok(Vec::new())
}
