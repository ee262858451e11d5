//! `Lab`: bringing a spec up with a few `ip -batch` runs, per-host mount namespaces and loop
//! disks, finding hosts, and tearing it all down.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::host::Host;
use super::spec::{lab_octet, valid_prefix, Bridge, LabSpec, LinkAddrs, HUB, V4_PREFIX, V6_PREFIX};
use super::{disks, lab_dir, machine, netns, LabError};

/// A running lab. Dropping it tears everything down unless [`persist`](Lab::persist) was called
/// or it was attached with [`open`](Lab::open).
#[derive(Debug, Serialize, Deserialize)]
pub struct Lab {
    prefix: String,
    octet: u8,
    dir: PathBuf,
    hub: String,
    bridges: Vec<Bridge>,
    multicast_route: bool,
    hosts: Vec<Host>,
    #[serde(skip)]
    persist: bool,
}

/// One lab found on this machine by [`Lab::list`].
#[derive(Debug, Clone, Serialize)]
pub struct LabSummary {
    pub prefix: String,
    /// Host namespaces present (`<prefix>-*` other than the hub).
    pub hosts: usize,
    pub dir: PathBuf,
    /// Whether `lab.json` exists, i.e. `Lab::open` can attach to it.
    pub attachable: bool,
}

const STATE_FILE: &str = "lab.json";

impl Lab {
    /// Create every namespace, bridge, link and address of `spec`. On error, whatever was
    /// already made is removed before returning.
    pub fn up(spec: LabSpec) -> Result<Lab, LabError> {
        spec.validate()?;
        let prefix = spec.prefix.clone();
        if let Some(ns) = netns::list(&format!("{prefix}-")).into_iter().next() {
            return Err(LabError::InUse { prefix, netns: ns });
        }
        let started = Instant::now();
        let dir = lab_dir(&prefix);
        // What a crashed run without namespaces may have left: mounts and loop disks.
        machine::unmount_below(&dir)?;
        disks::detach_under(&dir)?;
        remove_dir_all(&dir)?;
        let octet = lab_octet(&prefix);
        let mut hosts = Vec::with_capacity(spec.hosts.len());
        let mut bridges = BTreeSet::new();
        for (i, h) in spec.hosts.iter().enumerate() {
            let index = i as u16 + 1;
            let links: Vec<LinkAddrs> = h
                .links()
                .into_iter()
                .map(|(b, s)| LinkAddrs::plan(octet, index, b, s))
                .collect();
            bridges.extend(links.iter().map(|l| l.bridge));
            let host_dir = dir.join("hosts").join(&h.name);
            hosts.push(Host::new(
                h.name.clone(),
                format!("{prefix}-{}", h.name),
                index,
                links,
                host_dir,
                dir.join(NS_DIR).join(&h.name),
            ));
        }
        for h in &hosts {
            for d in [h.state_dir(), h.log_dir()] {
                fs::create_dir_all(&d)
                    .map_err(|e| LabError::io(format!("creating {}", d.display()), e))?;
            }
        }
        let mut lab = Lab {
            hub: format!("{prefix}-{HUB}"),
            prefix,
            octet,
            dir,
            bridges: bridges.into_iter().collect(),
            multicast_route: spec.multicast_route,
            hosts,
            persist: false,
        };
        // From here on `lab` owns the namespaces: an early return drops it and cleans up.
        lab.build(&spec)?;
        lab.save()?;
        tracing::info!(prefix = %lab.prefix, hosts = lab.hosts.len(), elapsed = ?started.elapsed(), "lab up");
        Ok(lab)
    }

    fn build(&mut self, spec: &LabSpec) -> Result<(), LabError> {
        // Loop disks first: losetup runs alongside everything else.
        let mut attaching = Vec::new();
        for (i, h) in spec.hosts.iter().enumerate() {
            let dir = self.hosts[i].dir.join("disks");
            for k in 0..h.disks {
                let file = dir.join(format!("disk{k}.img"));
                attaching.push((i, disks::start_attach(&h.name, file, h.disk_size)));
            }
        }
        let net = self.build_net();
        let mnt = net.and_then(|()| self.build_mount_namespaces());
        // Collect every losetup before reporting any failure, so none is left running.
        let mut failed = None;
        for (i, a) in attaching {
            match a.and_then(|a| a.finish()) {
                Ok(d) => self.hosts[i].disks.push(d),
                Err(e) => failed = failed.or(Some(e)),
            }
        }
        mnt?;
        if let Some(e) = failed {
            return Err(e);
        }
        self.hosts.iter().try_for_each(write_agent_config)
    }

    /// One mount namespace per host, made on parallel threads.
    fn build_mount_namespaces(&self) -> Result<(), LabError> {
        machine::prepare_ns_dir(&self.dir.join(NS_DIR))?;
        std::thread::scope(|s| {
            let running: Vec<_> = self
                .hosts
                .iter()
                .map(|h| s.spawn(|| machine::create(&h.name, &h.netns, &h.fs_dir(), &h.mntns)))
                .collect();
            let results: Vec<_> = running
                .into_iter()
                .map(|t| t.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect();
            results.into_iter().collect()
        })
    }

    fn build_net(&self) -> Result<(), LabError> {
        let mut add: Vec<String> = vec![format!("netns add {}", self.hub)];
        add.extend(self.hosts.iter().map(|h| format!("netns add {}", h.netns)));
        netns::batch(None, &add)?;

        // Before any link exists, so every interface inherits it: hosts get IPv6 without DAD
        // delays, and the hub's bridges and ports stay silent (they only switch frames).
        netns::sysctls(
            &self.hub,
            &[
                ("net.ipv6.conf.all.disable_ipv6", "1"),
                ("net.ipv6.conf.default.disable_ipv6", "1"),
            ],
        )?;
        for h in &self.hosts {
            netns::sysctls(
                &h.netns,
                &[
                    ("net.ipv6.conf.all.accept_dad", "0"),
                    ("net.ipv6.conf.default.accept_dad", "0"),
                ],
            )?;
        }

        // Create links from the initial namespace straight into their final ones: names only
        // need to be unique inside each namespace, so every host's interfaces are `ethN`.
        let mut links: Vec<String> = self
            .bridges
            .iter()
            .map(|b| {
                format!(
                    "link add {} netns {} type bridge mcast_snooping 0",
                    b.hub_name(),
                    self.hub
                )
            })
            .collect();
        for h in &self.hosts {
            for l in &h.links {
                links.push(format!(
                    "link add {} netns {} address {} type veth peer name {} netns {}",
                    l.ifname, h.netns, l.mac, l.hub_port, self.hub
                ));
            }
        }
        netns::batch(None, &links)?;

        let mut hub = vec!["link set lo up".to_string()];
        for h in &self.hosts {
            for l in &h.links {
                hub.push(format!(
                    "link set {} master {}",
                    l.hub_port,
                    l.bridge.hub_name()
                ));
                hub.push(format!("link set {} up", l.hub_port));
            }
        }
        hub.extend(
            self.bridges
                .iter()
                .map(|b| format!("link set {} up", b.hub_name())),
        );
        let mut running = vec![netns::spawn_batch(Some(&self.hub), &hub)?];
        for h in &self.hosts {
            running.push(netns::spawn_batch(Some(&h.netns), &self.host_batch(h))?);
        }
        // Wait for all before reporting the first failure, so none is left running.
        let results: Vec<_> = running.into_iter().map(netns::finish_batch).collect();
        results.into_iter().collect()
    }

    fn host_batch(&self, h: &Host) -> Vec<String> {
        let mut cmds = vec!["link set lo up".to_string()];
        for l in &h.links {
            let i = &l.ifname;
            cmds.push(format!("link set {i} addrgenmode eui64"));
            if let Some(v4) = l.v4 {
                cmds.push(format!("addr add {v4}/{V4_PREFIX} dev {i}"));
            }
            if let Some(v6) = l.v6 {
                cmds.push(format!("addr add {v6}/{V6_PREFIX} dev {i} nodad"));
            }
            cmds.push(format!("link set {i} up"));
        }
        if self.multicast_route {
            cmds.push("route add 224.0.0.0/4 dev eth0".to_string());
        }
        cmds
    }

    fn save(&self) -> Result<(), LabError> {
        let path = self.dir.join(STATE_FILE);
        let json = serde_json::to_string_pretty(self).expect("lab state serialises");
        fs::write(&path, json).map_err(|e| LabError::io(format!("writing {}", path.display()), e))
    }

    /// Attach to a lab left running by another process (`microcloud-lab up`). The handle does
    /// not tear the lab down on drop; call [`teardown`](Lab::teardown) for that.
    pub fn open(prefix: &str) -> Result<Lab, LabError> {
        let not_found = |reason: String| LabError::NotFound {
            prefix: prefix.to_string(),
            reason,
        };
        let path = lab_dir(prefix).join(STATE_FILE);
        let json =
            fs::read_to_string(&path).map_err(|e| not_found(format!("{}: {e}", path.display())))?;
        let mut lab: Lab = serde_json::from_str(&json)
            .map_err(|e| not_found(format!("{}: {e}", path.display())))?;
        if !Path::new(netns::NETNS_DIR).join(&lab.hub).exists() {
            return Err(not_found(format!("namespace {} is gone", lab.hub)));
        }
        lab.persist = true;
        Ok(lab)
    }

    /// Leave the lab running when this handle drops (for `microcloud-lab up` and the demo).
    pub fn persist(&mut self) {
        self.persist = true;
    }

    /// Tear down now, reporting errors that `Drop` can only log.
    pub fn teardown(mut self) -> Result<(), LabError> {
        self.persist = true;
        self.destroy(true)
    }

    fn destroy(&self, remove_dir: bool) -> Result<(), LabError> {
        let mut names: Vec<String> = self.hosts.iter().map(|h| h.netns.clone()).collect();
        names.push(self.hub.clone());
        teardown_dir(&self.dir, &names, remove_dir)
    }

    /// Remove every namespace named `<prefix>-*` (killing what runs inside) and the lab
    /// directory: the leftovers of a crashed or persisted run. Returns how many namespaces went.
    pub fn down_stale(prefix: &str) -> Result<usize, LabError> {
        if !valid_prefix(prefix) {
            return Err(LabError::Spec(format!(
                "prefix {prefix:?} must be 1-12 characters of [a-z0-9]"
            )));
        }
        let names = netns::list(&format!("{prefix}-"));
        teardown_dir(&lab_dir(prefix), &names, true)?;
        Ok(names.len())
    }

    /// Labs present on this machine, recognised by their `<prefix>-hub` namespace.
    pub fn list() -> Vec<LabSummary> {
        let all = netns::list("");
        all.iter()
            .filter_map(|n| n.strip_suffix(&format!("-{HUB}")))
            .filter(|p| valid_prefix(p))
            .map(|prefix| {
                let dir = lab_dir(prefix);
                let own = format!("{prefix}-");
                LabSummary {
                    prefix: prefix.to_string(),
                    hosts: all.iter().filter(|n| n.starts_with(&own)).count() - 1,
                    attachable: dir.join(STATE_FILE).exists(),
                    dir,
                }
            })
            .collect()
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The second IPv4 octet shared by all of this lab's subnets.
    pub fn octet(&self) -> u8 {
        self.octet
    }

    /// Logs, host state directories and `lab.json`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The namespace holding the bridges (to capture traffic: `ip netns exec HUB tcpdump -i br0`).
    pub fn hub_netns(&self) -> &str {
        &self.hub
    }

    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    pub fn host(&self, name: &str) -> Result<&Host, LabError> {
        self.hosts
            .iter()
            .find(|h| h.name() == name)
            .ok_or_else(|| LabError::NoHost(name.to_string()))
    }

    /// Every spawned process's log in every host, for a failing test's message.
    pub fn logs(&self) -> String {
        self.hosts
            .iter()
            .map(|h| h.logs())
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl std::ops::Index<&str> for Lab {
    type Output = Host;

    fn index(&self, name: &str) -> &Host {
        self.host(name).unwrap_or_else(|e| panic!("{e}"))
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if self.persist {
            return;
        }
        // A panicking test keeps its logs for diagnosis; the namespaces go regardless.
        let keep = std::thread::panicking();
        if let Err(e) = self.destroy(!keep) {
            eprintln!(
                "lab {}: teardown failed: {e} (run `microcloud-lab down --prefix {}`)",
                self.prefix, self.prefix
            );
        }
        if keep {
            eprintln!("lab {}: logs kept in {}", self.prefix, self.dir.display());
        }
    }
}

/// Where the host mount namespaces' pinning files live, under the lab directory.
const NS_DIR: &str = "ns";

/// Tear down in the order that frees everything: kill what runs in the namespaces (so nothing
/// holds a host's mount namespace), release the mount namespaces (their mounts of loop disks go
/// with them), detach the loop disks, delete the network namespaces, unmount whatever is left
/// under the lab directory, and remove it unless a panicking test keeps it for its logs.
/// Errors are reported after every step has been tried.
fn teardown_dir(dir: &Path, netnses: &[String], remove_dir: bool) -> Result<(), LabError> {
    netns::kill_all(netnses);
    let mut first_err = None;
    let mut note = |r: Result<(), LabError>| {
        if let Err(e) = r {
            first_err.get_or_insert(e);
        }
    };
    let pinned: Vec<PathBuf> = fs::read_dir(dir.join(NS_DIR))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    for f in &pinned {
        note(machine::release(f));
    }
    note(disks::detach_under(dir).map(drop));
    note(netns::destroy(netnses));
    note(machine::unmount_below(dir).map(drop));
    if remove_dir {
        note(remove_dir_all(dir));
    }
    first_err.map_or(Ok(()), Err)
}

/// Write the host's `/etc/microcloud/microcloudd.yaml` allow-listing its loop disks.
fn write_agent_config(h: &Host) -> Result<(), LabError> {
    if h.disks.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = h
        .disks
        .iter()
        .map(|d| format!("{:?}", d.device.display().to_string()))
        .collect();
    let path = h.agent_config_path();
    let text = format!(
        "# Written by the lab: this host's loop disks.\nallow-disk: [{}]\n",
        list.join(", ")
    );
    fs::write(&path, text)
        .map_err(|e| LabError::io(format!("{}: writing {}", h.name, path.display()), e))
}

fn remove_dir_all(dir: &Path) -> Result<(), LabError> {
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(LabError::io(format!("removing {}", dir.display()), e))
        }
        _ => Ok(()),
    }
}
