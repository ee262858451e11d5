//! `microcloud inventory`: probe this host and show every NIC and disk with its eligibility.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

use super::output::{or_dash, table, write_structured, Format};
use crate::api::client::{Client, ClientError};
use crate::config::{AgentConfig, InventoryConfig};
use crate::inventory::{format_size, probe_host, DiskPolicy, Inventory, ProbeOptions};

#[derive(Debug, clap::Args)]
pub struct InventoryArgs {
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value_t = Format::Table)]
    pub format: Format,

    /// Probe here instead of asking microcloudd (implied by --allow-disk).
    #[arg(long)]
    pub local: bool,

    #[command(flatten)]
    pub inventory: InventoryConfig,
}

pub fn exec(config: Option<&Path>, socket: &Path, args: &InventoryArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    // The daemon's inventory is current and uses the daemon's config; flags that change what is
    // eligible need a probe of our own.
    let local = args.local || !args.inventory.allow_disk.is_empty();
    let inv = rt.block_on(async {
        if !local {
            match Client::new(socket).get::<Inventory>("/1.0/inventory").await {
                Ok(inv) => return Ok(inv),
                Err(ClientError::NotRunning(_)) => {
                    tracing::debug!("microcloudd not running, probing directly");
                }
                Err(e) => return Err(anyhow::Error::new(e)),
            }
        }
        let cfg = AgentConfig::load(config)?.merged_with(&args.inventory);
        let opts = ProbeOptions {
            disk_policy: DiskPolicy::new(&cfg.inventory.allow_disk)?,
            ..Default::default()
        };
        Ok(probe_host(&opts).await)
    })?;
    // One write at the end instead of one per line (stdout is line-buffered).
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if !write_structured(&mut out, args.format, &inv)? {
        render_table(&mut out, &inv)?;
    }
    out.flush().map_err(anyhow::Error::from)?;
    Ok(())
}

fn yes_no(eligible: bool) -> &'static str {
    if eligible {
        "yes"
    } else {
        "no"
    }
}

/// NICs then disks, reasons visible.
pub fn render_table(out: &mut impl Write, inv: &Inventory) -> anyhow::Result<()> {
    let mut t = table(&[
        "NIC",
        "KIND",
        "MAC",
        "MTU",
        "STATE",
        "ADDRESSES",
        "UPLINK",
        "WHY NOT",
    ]);
    for n in &inv.nics {
        let mut kind = n.kind.as_str().to_string();
        if let Some(v) = &n.vlan {
            kind = format!("vlan {} on {}", v.id, v.parent.as_deref().unwrap_or("?"));
        }
        if let Some(c) = &n.controller {
            kind = format!("{kind} (in {c})");
        }
        let state = match n.carrier {
            Some(false) if n.state == "up" => "up, no carrier".to_string(),
            _ => n.state.clone(),
        };
        t.add_row(vec![
            n.name.clone(),
            kind,
            or_dash(&n.mac),
            or_dash(&n.mtu),
            state,
            n.addresses.join("\n"),
            yes_no(n.uplink.eligible).to_string(),
            n.uplink.reasons.join("\n"),
        ]);
    }
    writeln!(out, "{t}")?;
    let mut t = table(&["DISK", "STABLE PATH", "SIZE", "MODEL", "USABLE", "WHY NOT"]);
    for d in &inv.disks {
        t.add_row(vec![
            d.path.clone(),
            d.stable_path.clone(),
            d.size.map_or_else(|| "-".into(), format_size),
            or_dash(&d.model),
            yes_no(d.eligible).to_string(),
            d.reasons.join("\n"),
        ]);
    }
    writeln!(out, "{t}")?;
    for w in &inv.warnings {
        writeln!(out, "warning: {w}")?;
    }
    Ok(())
}
