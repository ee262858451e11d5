//! The bootstrap executor: carries out the steps of a plan against the initiator's LXD and,
//! through the [`Members`] seam, each member's daemon (joins, consented wipes). Every step looks first and changes only
//! what differs, so a re-run after any failure resumes and a second run changes nothing. A
//! failure names the host, the step and the cause; the joiner's unused token is revoked and
//! every joiner is told how the bootstrap ended.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::plan::Plan;
use super::steps::{join_member_config, steps, Step};
use crate::api::lxd::{BootstrapResult, LxdJoinRequest};
use crate::services::lxd::{nic_device, LocalDriver, LxdClient, LxdError};
use crate::services::Outcome;

/// What the executor needs from the members' daemons (a joiner's over the pinned channel).
pub trait Members: Sync {
    /// Ask `member`'s daemon to wipe its disk `path` (consented in the plan); whether it had
    /// anything to erase. The daemon refuses a disk in use.
    fn wipe(&self, member: &str, path: &str) -> impl Future<Output = Result<bool, String>> + Send;
    /// Ask `member`'s daemon to have udev look at its disk `path` again.
    fn nudge(&self, member: &str, path: &str) -> impl Future<Output = Result<(), String>> + Send;
    /// Ask `member`'s daemon to join its LXD with `req`; whether anything changed.
    fn join(
        &self,
        member: &str,
        req: &LxdJoinRequest,
    ) -> impl Future<Output = Result<bool, String>> + Send;
    /// Tell `member` how the bootstrap ended (best effort).
    fn tell(
        &self,
        member: &str,
        result: &BootstrapResult,
    ) -> impl Future<Output = Result<(), String>> + Send;
}

/// Progress, as it happens.
#[derive(Debug, Clone)]
pub enum Event<'a> {
    Started {
        index: usize,
        total: usize,
        host: &'a str,
        step: &'a Step,
    },
    Finished {
        host: &'a str,
        step: &'a Step,
        changed: bool,
        elapsed: Duration,
    },
    Failed {
        host: &'a str,
        step: &'a Step,
        error: &'a str,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepReport {
    pub host: String,
    #[serde(flatten)]
    pub step: Step,
    pub changed: bool,
    pub elapsed_ms: u64,
}

/// What a bootstrap did, step by step.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub steps: Vec<StepReport>,
}

impl Report {
    /// How many steps changed something.
    pub fn changed(&self) -> usize {
        self.steps.iter().filter(|s| s.changed).count()
    }
}

/// A failed bootstrap: where, what, why, and what was done before.
#[derive(Debug, thiserror::Error)]
#[error("{host}: {what}: {cause}")]
pub struct BootstrapError {
    pub host: String,
    pub what: String,
    pub cause: String,
    pub done: Report,
}

/// Description of the network while it is a plain bridge.
pub const BRIDGE_DESCRIPTION: &str = "Bridge network (until OVN is set up)";

fn pool_description(driver: &str) -> String {
    LocalDriver::from_name(driver)
        .map(LocalDriver::description)
        .unwrap_or_else(|| format!("Local storage on {driver}"))
}

/// Carry out `plan`. `on` sees every step start and end.
pub async fn execute<J: Members>(
    lxd: &LxdClient,
    members: &J,
    plan: &Plan,
    on: &mut (dyn FnMut(&Event<'_>) + Send),
) -> Result<Report, BootstrapError> {
    let steps = steps(plan).map_err(|cause| BootstrapError {
        host: plan.initiator.clone(),
        what: "planning the bootstrap".into(),
        cause,
        done: Report::default(),
    })?;
    let mut report = Report::default();
    let total = steps.len();
    for (index, step) in steps.iter().enumerate() {
        let host = step.host(plan);
        on(&Event::Started {
            index,
            total,
            host,
            step,
        });
        let t0 = Instant::now();
        match run_step(lxd, members, plan, step).await {
            Ok(outcome) => {
                let elapsed = t0.elapsed();
                on(&Event::Finished {
                    host,
                    step,
                    changed: outcome.changed(),
                    elapsed,
                });
                report.steps.push(StepReport {
                    host: host.to_string(),
                    step: step.clone(),
                    changed: outcome.changed(),
                    elapsed_ms: elapsed.as_millis() as u64,
                });
            }
            Err(cause) => {
                on(&Event::Failed {
                    host,
                    step,
                    error: &cause,
                });
                let err = BootstrapError {
                    host: host.to_string(),
                    what: step.what(),
                    cause,
                    done: report,
                };
                tell_all(members, plan, false, &err.to_string()).await;
                return Err(err);
            }
        }
    }
    let msg = format!(
        "{} member(s) in the LXD cluster; {} of {} steps changed something",
        plan.members.len(),
        report.changed(),
        report.steps.len()
    );
    tell_all(members, plan, true, &msg).await;
    Ok(report)
}

/// Tell every joiner how it ended; one that cannot be told is logged, not fatal.
async fn tell_all<J: Members>(members: &J, plan: &Plan, ok: bool, message: &str) {
    let joiners = plan.members.iter().skip(1).map(|m| m.name.as_str());
    tell(members, &plan.initiator, joiners, ok, message).await;
}

/// Tell each of `joiners` how `initiator`'s bootstrap (or session) ended, so it stops waiting;
/// one that cannot be told is logged, not fatal.
pub async fn tell<'a, J: Members>(
    members: &J,
    initiator: &str,
    joiners: impl IntoIterator<Item = &'a str>,
    ok: bool,
    message: &str,
) {
    let result = BootstrapResult {
        initiator: initiator.to_string(),
        ok,
        message: message.to_string(),
    };
    for name in joiners {
        if let Err(e) = members.tell(name, &result).await {
            tracing::warn!(member = %name, "could not tell it the bootstrap result: {e}");
        }
    }
}

fn lxd_err(e: LxdError) -> String {
    e.to_string()
}

async fn run_step<J: Members>(
    lxd: &LxdClient,
    members: &J,
    plan: &Plan,
    step: &Step,
) -> Result<Outcome, String> {
    let none = BTreeMap::new();
    match step {
        Step::EnableClustering { member, address } => {
            lxd.ensure_clustered(member, address).await.map_err(lxd_err)
        }
        Step::Join { member, address } => join(lxd, members, plan, member, address).await,
        Step::PoolPending {
            member,
            pool,
            driver,
            source,
            wipe,
        } => {
            // Wipe by the member's own daemon (it re-checks the disk; LXD 5.0 cannot wipe), and
            // never once the pool exists there: on a re-run the disk holds the pool itself.
            let mut wiped = false;
            if *wipe && !pool_created_on(lxd, pool, member).await.map_err(lxd_err)? {
                wiped = members
                    .wipe(member, source)
                    .await
                    .map_err(|e| format!("wiping {source}: {e}"))?;
            }
            let defined = lxd
                .ensure_pool_pending_on(
                    member,
                    pool,
                    driver,
                    &pool_description(driver),
                    source,
                    false,
                )
                .await
                .map_err(lxd_err)?;
            Ok(if wiped { Outcome::Changed } else { defined })
        }
        Step::PoolCreate { pool, driver } => {
            let description = pool_description(driver);
            let create = lxd.ensure_pool_created(pool, driver, &none, &description);
            tokio::select! {
                r = create => r.map_err(lxd_err),
                never = nudge_while_slow(members, plan) => match never {},
            }
        }
        Step::NetworkPending {
            member,
            network,
            kind,
        } => lxd
            .ensure_network_pending_on(member, network, kind, BRIDGE_DESCRIPTION, &none)
            .await
            .map_err(lxd_err),
        Step::NetworkCreate { network, kind } => lxd
            .ensure_network_created(network, kind, &none, BRIDGE_DESCRIPTION)
            .await
            .map_err(lxd_err),
        Step::Profile {
            root_pool: Some(pool),
            network,
        } => lxd
            .ensure_default_profile(pool, network)
            .await
            .map_err(lxd_err),
        Step::Profile {
            root_pool: None,
            network,
        } => {
            let devices = BTreeMap::from([("eth0".to_string(), nic_device(network))]);
            lxd.ensure_profile_devices("default", &devices, false)
                .await
                .map_err(lxd_err)
        }
    }
}

/// How long a pool creation may take before its disks' udev records are refreshed.
const NUDGE_AFTER: Duration = Duration::from_millis(1000);

/// While LXD creates the pool: after [`NUDGE_AFTER`], and twice a second after, ask each member's
/// daemon to have udev look at its disk again. LXD 5.0 formats the disk, then waits up to 10 s
/// for udev's `/dev/disk/by-uuid` link; udev sometimes misses the format (measured in the lab:
/// about one creation in three stalled 10 s), and a synthetic change event makes it look again.
async fn nudge_while_slow<J: Members>(members: &J, plan: &Plan) -> std::convert::Infallible {
    tokio::time::sleep(NUDGE_AFTER).await;
    loop {
        for m in &plan.members {
            if let Some(d) = &m.local_disk {
                if let Err(e) = members.nudge(&m.name, &d.path).await {
                    tracing::debug!(member = %m.name, "nudging udev: {e}");
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Whether pool `pool` is created and has `member` among its locations.
async fn pool_created_on(lxd: &LxdClient, pool: &str, member: &str) -> Result<bool, LxdError> {
    Ok(lxd.storage_pool(pool, None).await?.is_some_and(|p| {
        p.status == crate::services::lxd::types::STATUS_CREATED
            && p.locations.iter().any(|l| l == member)
    }))
}

/// One joiner: a fresh token (none when it is a member already), handed to its daemon with the
/// keys it must bring; on failure its token is revoked so no secret stays valid.
async fn join<J: Members>(
    lxd: &LxdClient,
    members: &J,
    plan: &Plan,
    member: &str,
    address: &str,
) -> Result<Outcome, String> {
    let Some(token) = lxd
        .fresh_join_token(member)
        .await
        .map_err(|e| format!("issuing a join token: {e}"))?
    else {
        return Ok(Outcome::Unchanged);
    };
    let existing = lxd
        .cluster()
        .await
        .map_err(|e| format!("reading the cluster's member keys: {e}"))?
        .member_config;
    let req = LxdJoinRequest {
        server_name: member.to_string(),
        server_address: address.to_string(),
        token: token.encoded(),
        member_config: join_member_config(plan, member, &existing),
    };
    match members.join(member, &req).await {
        Ok(changed) => Ok(if changed {
            Outcome::Changed
        } else {
            Outcome::Unchanged
        }),
        Err(e) => {
            // The joiner may have joined after all (its daemon died while LXD went on).
            let joined = lxd
                .members()
                .await
                .map(|ms| ms.iter().any(|m| m.server_name == member))
                .unwrap_or(false);
            if !joined {
                match lxd.revoke_join_tokens_for(member).await {
                    Ok(n) => tracing::info!(member, revoked = n, "revoked its join token"),
                    Err(re) => tracing::warn!(member, "revoking its join token: {re}"),
                }
            }
            Err(e)
        }
    }
}
