//! The bootstrap plan as `microcloud init --dry-run` shows it: gathered from every selected
//! member's inventory (over the pinned channel, through the local daemon) and the preseed's
//! storage choices.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::IpAddr;

use anyhow::Context;

use super::output::{table, write_structured, Format};
use crate::api::client::Client;
use crate::api::local_trust::MemberInventory;
use crate::api::lxd::LxdFacts;
use crate::cluster::plan::{plan, HostInput, LocalChoice, Plan, LOCAL_POOL};
use crate::inventory::{format_size, DiskPolicy, Inventory};
use crate::preseed::Preseed;
use crate::services::lxd::LxdClient;

/// The storage choices a preseed makes (explicit disks per system, then filters).
pub fn local_choice(p: Option<&Preseed>) -> LocalChoice {
    let Some(p) = p else {
        return LocalChoice::default();
    };
    LocalChoice {
        explicit: p
            .systems
            .iter()
            .filter_map(|s| Some((s.name.clone(), s.storage.as_ref()?.local.clone()?)))
            .collect::<BTreeMap<_, _>>(),
        filters: p
            .storage
            .as_ref()
            .map(|s| s.local.clone())
            .unwrap_or_default(),
    }
}

/// The address of ours that shares a subnet with `peer`, else our first global address.
fn own_address(inv: &Inventory, peer: Option<IpAddr>) -> Option<IpAddr> {
    let prefixes: Vec<crate::net::subnet::Prefix> = inv
        .nics
        .iter()
        .flat_map(|n| n.address_details.iter().filter(|a| a.is_global()))
        .filter_map(|a| {
            let (ip, len) = a.cidr.split_once('/')?;
            Some(crate::net::subnet::Prefix::new(
                ip.parse().ok()?,
                len.parse().ok()?,
            ))
        })
        .collect();
    peer.and_then(|p| prefixes.iter().find(|x| x.contains(p)).map(|x| x.addr))
        .or_else(|| prefixes.first().map(|x| x.addr))
}

/// What planning found out besides the plan: the initiator's LXD, and what could not be read.
pub struct Gathered {
    pub plan: Plan,
    /// The initiator's LXD, when it answered.
    pub lxd: Option<LxdFacts>,
    /// Hosts whose LXD did not answer, with why (a dry run plans without their drivers).
    pub lxd_errors: Vec<String>,
}

/// Each member's LXD facts: this host's from its daemon, the joiners' over the pinned channel.
async fn lxd_facts(client: &Client, members: &[MemberInventory]) -> Vec<Result<LxdFacts, String>> {
    let calls = members.iter().enumerate().map(|(i, m)| async move {
        let r: Result<LxdFacts, _> = if i == 0 {
            client.get("/1.0/lxd").await
        } else {
            client
                .get(&format!("/1.0/session/members/{}/lxd", m.name))
                .await
        };
        r.map_err(|e| e.to_string())
    });
    futures_util::future::join_all(calls).await
}

/// Per member, the disk the existing `local` pool uses there (the pool's original source).
async fn pool_sources(facts: &LxdFacts) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if !facts.clustered {
        return out;
    }
    let lxd = LxdClient::new(&facts.socket);
    // Only a created pool fixes its disks; a pending one (a failed create) is planned afresh,
    // so a disk still to be wiped is wiped.
    let Ok(Some(pool)) = lxd.storage_pool(LOCAL_POOL, None).await else {
        return out;
    };
    if pool.status != crate::services::lxd::types::STATUS_CREATED {
        return out;
    }
    for member in &pool.locations {
        if let Ok(Some(p)) = lxd.storage_pool(LOCAL_POOL, Some(member)).await {
            let src = p
                .config
                .get("volatile.initial_source")
                .or_else(|| p.config.get("source"))
                .filter(|s| !s.is_empty());
            if let Some(src) = src {
                out.insert(member.clone(), src.clone());
            }
        }
    }
    out
}

/// This host's and every selected joiner's fresh inventory (this host first).
pub async fn inventories(client: &Client) -> anyhow::Result<Vec<MemberInventory>> {
    Ok(client.get("/1.0/session/inventories").await?)
}

/// Plan from the members' inventories, their LXD facts and the disk choices.
pub async fn build(
    client: &Client,
    members: Vec<MemberInventory>,
    local: &LocalChoice,
) -> anyhow::Result<Gathered> {
    let facts = lxd_facts(client, &members).await;
    let initiator_lxd = facts.first().and_then(|f| f.as_ref().ok()).cloned();
    let sources = match &initiator_lxd {
        Some(f) => pool_sources(f).await,
        None => BTreeMap::new(),
    };
    let lxd_errors = facts
        .iter()
        .filter_map(|f| f.as_ref().err().cloned())
        .collect();
    let first_peer = members.get(1).and_then(|m| m.address.parse().ok());
    let mut hosts = Vec::new();
    for (i, (m, f)) in members.into_iter().zip(facts).enumerate() {
        let address = if i == 0 {
            own_address(&m.inventory, first_peer)
                .context("this host has no global address for the cluster")?
        } else {
            m.address
                .parse()
                .with_context(|| format!("{}: bad address {:?}", m.name, m.address))?
        };
        let policy = DiskPolicy::new(&m.inventory.allow_disk)?;
        hosts.push(HostInput {
            pool_source: sources.get(&m.name).cloned(),
            name: m.name,
            address,
            inventory: m.inventory,
            drivers: f.map(|f| f.drivers).unwrap_or_default(),
            policy,
        });
    }
    Ok(Gathered {
        plan: plan(&hosts, local)?,
        lxd: initiator_lxd,
        lxd_errors,
    })
}

/// Print the plan: a table, or the format asked for. `dry_run` adds that nothing changed.
pub fn render(format: Format, p: &Plan, dry_run: bool) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if !write_structured(&mut out, format, p)? {
        let mut t = table(&["MEMBER", "ADDRESS", "LOCAL DISK", "SIZE", "WIPE"]);
        for m in &p.members {
            let (disk, size, wipe) = match &m.local_disk {
                Some(d) => (
                    d.path.clone(),
                    d.size.map_or("-".into(), format_size),
                    if d.wipe { "yes" } else { "no" },
                ),
                None => ("-".into(), "-".into(), "-"),
            };
            t.add_row(vec![
                m.name.clone(),
                m.address.clone(),
                disk,
                size,
                wipe.into(),
            ]);
        }
        writeln!(out, "{t}")?;
        match &p.local_pool_driver {
            Some(d) => writeln!(out, "storage pool local: {d}")?,
            None => writeln!(out, "storage pool local: none")?,
        }
        writeln!(
            out,
            "network: {} ({}; OVN comes later)",
            p.network, p.network_type
        )?;
        writeln!(
            out,
            "profile default: root on {}, eth0 on {}",
            p.profile_root_pool.as_deref().unwrap_or("(no pool)"),
            p.network
        )?;
        for w in &p.warnings {
            writeln!(out, "warning: {w}")?;
        }
        if dry_run {
            writeln!(out, "Dry run: nothing was changed.")?;
        }
    }
    out.flush()?;
    Ok(())
}
