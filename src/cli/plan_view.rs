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
use crate::cluster::plan::{plan, HostInput, LocalChoice, Plan};
use crate::inventory::{format_size, DiskPolicy, Inventory};
use crate::preseed::Preseed;

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

pub async fn build(client: &Client, preseed: Option<&Preseed>) -> anyhow::Result<Plan> {
    let members: Vec<MemberInventory> = client.get("/1.0/session/inventories").await?;
    let first_peer = members.get(1).and_then(|m| m.address.parse().ok());
    let mut hosts = Vec::new();
    for (i, m) in members.into_iter().enumerate() {
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
            name: m.name,
            address,
            inventory: m.inventory,
            drivers: Vec::new(),
            policy,
        });
    }
    Ok(plan(&hosts, &local_choice(preseed))?)
}

pub fn render(format: Format, p: &Plan) -> anyhow::Result<()> {
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
            Some(d) => writeln!(out, "storage pool local: {d} (the best driver every member's LXD supports is checked at execution)")?,
            None => writeln!(out, "storage pool local: none")?,
        }
        writeln!(
            out,
            "network: {} (managed bridge; OVN comes later)",
            p.network
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
        writeln!(out, "Dry run: nothing was changed.")?;
    }
    out.flush()?;
    Ok(())
}
