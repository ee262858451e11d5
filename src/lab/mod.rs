//! The lab: many "hosts" as network namespaces on one machine, for tests, benchmarks and the demo.
//!
//! Topology (DESIGN §7): a hub namespace `<prefix>-hub` holds the bridges (`br0` cluster,
//! `br1` second network, `br2` uplink; multicast snooping off). Each host is a namespace
//! `<prefix>-<name>` with `lo` up and a veth per link — `eth0` into `br0`, optionally `eth1`
//! into `br1` and an unaddressed `eth2` into `br2`. Addresses derive from the prefix's octet
//! `K`, the subnet index `S` and the host's 1-based index `I`: `10.K.S.I/24`, `fdKK:0:0:S::I/64`
//! and an EUI-64 link-local from the fixed MAC `02:6c:KK:LL:00:II`; the second network uses
//! `S + 128`. DAD is off in hosts, so IPv6 works as soon as `Lab::up` returns.
//!
//! Each host is also a machine of its own for LXD and the agent: a mount namespace that lives as
//! long as the host, with its own `/run` (tmpfs, sharing the machine's `/run/udev`), `/var/lib`
//! and `/etc` (overlays), a `/sys` of its network namespace, and optionally loop disks
//! (`HostSpec::disks`) allow-listed in its `/etc/microcloud/microcloudd.yaml`. Commands enter
//! both namespaces through `Host::wrap`; `Host::start_lxd` runs the host's own LXD.
//!
//! Bring-up runs a handful of `ip -batch` processes (namespaces, links, then every namespace's
//! configuration in parallel) rather than one process per command. Teardown on drop kills all
//! processes inside the lab's namespaces and deletes them, even while a test panics (the lab
//! directory with the logs is then kept). `Lab::down_stale` removes what a crashed run left.
//!
//! ```no_run
//! use microcloud::lab::{HostSpec, Lab, LabSpec};
//! let lab = Lab::up(LabSpec::with_hosts("demo", 3).host(HostSpec::new("odd").subnet(1)))?;
//! let a = &lab["micro01"];
//! let daemon = a.spawn(std::process::Command::new("sleep").arg("60"))?;
//! println!("{} {} {}", a.addr_v4(), a.addr_v6(), a.link_local_v6());
//! a.tcp_check(&lab["micro02"], lab["micro02"].addr_v4().into(), std::time::Duration::from_secs(1))?;
//! drop(daemon);
//! # Ok::<(), microcloud::lab::LabError>(())
//! ```

mod agent;
mod bringup;
mod check;
mod disks;
mod host;
mod lxd;
mod machine;
pub mod netns;
mod process;
mod spec;

use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

pub use agent::{AGENT_READY_TIMEOUT, AGENT_SOCKET};
pub use bringup::{Lab, LabSummary};
pub use disks::{attached_under, parse_size, LoopDisk};
pub use host::Host;
pub use lxd::{LXD_DIR, LXD_READY_TIMEOUT};
pub use process::{LabProcess, DEFAULT_GRACE};
pub use spec::{
    lab_octet, Bridge, HostSpec, LabSpec, LinkAddrs, HUB, MAX_DISKS, MAX_HOSTS, V4_PREFIX,
    V6_PREFIX,
};

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("invalid lab: {0}")]
    Spec(String),
    #[error("lab prefix {prefix:?} is in use ({netns} exists); run `microcloud-lab down --prefix {prefix}`")]
    InUse { prefix: String, netns: String },
    #[error("no lab {prefix:?} to attach to: {reason}")]
    NotFound { prefix: String, reason: String },
    #[error("no host {0:?} in this lab")]
    NoHost(String),
    #[error("starting {cmd}: {source}")]
    Spawn { cmd: String, source: std::io::Error },
    #[error("{cmd} failed ({status}): {stderr}")]
    Command {
        cmd: String,
        status: ExitStatus,
        stderr: String,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("{what} did not finish within {timeout:?}")]
    Timeout { what: String, timeout: Duration },
    #[error("{0}")]
    State(String),
}

impl LabError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        LabError::Io {
            context: context.into(),
            source,
        }
    }
}

/// Where a lab keeps its logs, per-host state and `lab.json`: derived from the prefix so the
/// CLI and `down_stale` find it without any registry.
pub fn lab_dir(prefix: &str) -> PathBuf {
    std::env::temp_dir().join("microcloud-lab").join(prefix)
}
