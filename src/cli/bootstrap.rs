//! `microcloud init`, bootstrap phase: plan from every member's inventory and LXD, show the
//! plan, carry it out with a progress line per host and step, and report what changed. The
//! initiator's LXD is driven directly over its unix socket; each joiner's through the local
//! daemon, which forwards over the pinned channel to the joiner's daemon.

use std::io::Write;
use std::time::Instant;

use anyhow::{bail, Context};

use super::output::{write_structured, Format};
use crate::api::client::Client;
use crate::api::disks::{WipeRequest, WipeResponse};
use crate::api::local_trust::MemberInventory;
use crate::api::lxd::{BootstrapResult, LxdJoinRequest, LxdJoinResponse};
use crate::cluster::execute::{execute, Event, Members, Report};
use crate::cluster::plan::LocalChoice;
use crate::services::lxd::LxdClient;

/// Members reached through this host's daemon (itself directly, joiners over the pinned
/// channel).
pub(super) struct ViaDaemon<'a> {
    pub(super) client: &'a Client,
    pub(super) me: String,
}

impl ViaDaemon<'_> {
    /// This host's own endpoint, or the proxy to a joiner's.
    fn disk_uri(&self, member: &str, what: &str) -> String {
        if member == self.me {
            format!("/1.0/disks/{what}")
        } else {
            format!("/1.0/session/members/{member}/disks/{what}")
        }
    }
}

impl Members for ViaDaemon<'_> {
    async fn nudge(&self, member: &str, path: &str) -> Result<(), String> {
        self.client
            .post_json::<_, serde_json::Value>(
                &self.disk_uri(member, "nudge"),
                &WipeRequest { path: path.into() },
            )
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    async fn wipe(&self, member: &str, path: &str) -> Result<bool, String> {
        let r: WipeResponse = self
            .client
            .post_json(
                &self.disk_uri(member, "wipe"),
                &WipeRequest { path: path.into() },
            )
            .await
            .map_err(|e| e.to_string())?;
        Ok(r.changed)
    }

    async fn join(&self, member: &str, req: &LxdJoinRequest) -> Result<bool, String> {
        let uri = format!("/1.0/session/members/{member}/lxd/join");
        let r: LxdJoinResponse = self
            .client
            .post_json(&uri, req)
            .await
            .map_err(|e| e.to_string())?;
        Ok(r.changed)
    }

    async fn tell(&self, member: &str, result: &BootstrapResult) -> Result<(), String> {
        let uri = format!("/1.0/session/members/{member}/bootstrap/result");
        self.client
            .post_json::<_, serde_json::Value>(&uri, result)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// Plan and bootstrap the cluster from this (the initiator's) session.
pub async fn run(
    client: &Client,
    members: Vec<MemberInventory>,
    local: &LocalChoice,
    format: Format,
) -> anyhow::Result<()> {
    let gathered = super::plan_view::build(client, members, local).await?;
    if !gathered.lxd_errors.is_empty() {
        bail!(
            "LXD must answer on every member before the bootstrap:\n  {}",
            gathered.lxd_errors.join("\n  ")
        );
    }
    let facts = gathered.lxd.context("this host's LXD did not answer")?;
    let plan = gathered.plan;
    let mut err = std::io::stderr();
    if format == Format::Table {
        super::plan_view::render(format, &plan, false)?;
    }
    writeln!(
        err,
        "Bootstrapping {} member(s) with LXD {} ...",
        plan.members.len(),
        facts.version
    )?;
    let lxd = LxdClient::new(&facts.socket);
    let started = Instant::now();
    let width = plan.members.iter().map(|m| m.name.len()).max().unwrap_or(8);
    let mut on = |ev: &Event<'_>| {
        let line = match ev {
            Event::Started {
                index,
                total,
                host,
                step,
            } => format!("[{:>2}/{total}] {host:<width$}  {step} ...", index + 1),
            Event::Finished {
                host,
                step,
                changed,
                elapsed,
            } => format!(
                "        {host:<width$}  {step}: {} ({:.1} s)",
                if *changed { "done" } else { "already done" },
                elapsed.as_secs_f64()
            ),
            Event::Failed { host, step, error } => {
                format!("        {host:<width$}  {step}: FAILED: {error}")
            }
        };
        let _ = writeln!(std::io::stderr(), "{line}");
    };
    let result = execute(
        &lxd,
        &ViaDaemon {
            client,
            me: plan.initiator.clone(),
        },
        &plan,
        &mut on,
    )
    .await;
    match result {
        Ok(report) => {
            writeln!(
                err,
                "Bootstrap complete in {:.1} s: {} of {} steps changed something.",
                started.elapsed().as_secs_f64(),
                report.changed(),
                report.steps.len()
            )?;
            print_report(format, &plan, &report)
        }
        Err(e) => {
            writeln!(
                err,
                "Nothing done so far is undone: fix the cause and run `microcloud init` again on \
                 every host; finished steps are skipped."
            )?;
            Err(e.into())
        }
    }
}

fn print_report(
    format: Format,
    plan: &crate::cluster::plan::Plan,
    report: &Report,
) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let value = serde_json::json!({ "plan": plan, "report": report });
    if !write_structured(&mut out, format, &value)? {
        writeln!(
            out,
            "MicroCloud is ready: {} in cluster; storage pool {}; network {}; profile default.",
            plan.members
                .iter()
                .map(|m| m.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            plan.profile_root_pool.as_deref().unwrap_or("(none)"),
            plan.network
        )?;
    }
    out.flush()?;
    Ok(())
}
