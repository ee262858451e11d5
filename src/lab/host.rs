//! `Host`: one lab host — its namespace, addresses, directories, and running commands inside it.
//!
//! Every command that runs "on" a host goes through [`Host::wrap`]:
//! `nsenter --mount=<lab dir>/ns/<host> --net=/run/netns/<ns>`, entering the host's network
//! namespace and its own long-lived mount namespace (its `/run`, `/var/lib`, `/etc`; see
//! `machine`), so everything started on a host sees the same files as everything else on it.

use std::fs;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use serde::{Deserialize, Serialize};

use super::disks::LoopDisk;
use super::netns;
use super::process::LabProcess;
use super::spec::{Bridge, LinkAddrs};
use super::LabError;

#[derive(Debug, Serialize, Deserialize)]
pub struct Host {
    pub(crate) name: String,
    pub(crate) netns: String,
    /// 1-based position in the lab, the last octet of its addresses.
    pub(crate) index: u16,
    pub(crate) links: Vec<LinkAddrs>,
    /// `<lab dir>/hosts/<name>`: holds `state/`, `log/`, `fs/` (the host's own `/var/lib`,
    /// `/etc`, … as seen from outside) and `disks/`.
    pub(crate) dir: PathBuf,
    /// The bind-mounted nsfs file that keeps the host's mount namespace alive.
    pub(crate) mntns: PathBuf,
    #[serde(default)]
    pub(crate) disks: Vec<LoopDisk>,
    #[serde(skip)]
    spawned: AtomicU32,
}

impl Host {
    pub(crate) fn new(
        name: String,
        netns: String,
        index: u16,
        links: Vec<LinkAddrs>,
        dir: PathBuf,
        mntns: PathBuf,
    ) -> Self {
        Host {
            name,
            netns,
            index,
            links,
            dir,
            mntns,
            disks: Vec::new(),
            spawned: AtomicU32::new(0),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The network namespace's name (`<prefix>-<name>`), for `ip netns exec`.
    pub fn netns(&self) -> &str {
        &self.netns
    }

    pub fn index(&self) -> u16 {
        self.index
    }

    /// Every link with its planned addresses; `eth0` (cluster) first.
    pub fn links(&self) -> &[LinkAddrs] {
        &self.links
    }

    pub fn link(&self, bridge: Bridge) -> Option<&LinkAddrs> {
        self.links.iter().find(|l| l.bridge == bridge)
    }

    fn cluster(&self) -> &LinkAddrs {
        self.link(Bridge::Cluster)
            .expect("every host has a cluster link")
    }

    /// IPv4 address on `eth0` (prefix length [`V4_PREFIX`](super::V4_PREFIX)).
    pub fn addr_v4(&self) -> Ipv4Addr {
        self.cluster().v4.expect("the cluster link is addressed")
    }

    /// ULA address on `eth0` (prefix length [`V6_PREFIX`](super::V6_PREFIX)).
    pub fn addr_v6(&self) -> Ipv6Addr {
        self.cluster().v6.expect("the cluster link is addressed")
    }

    /// `eth0`'s link-local address (use with `eth0`'s ifindex as scope).
    pub fn link_local_v6(&self) -> Ipv6Addr {
        self.cluster().link_local
    }

    /// Persistent per-host scratch space that lives as long as the lab, the same path inside
    /// and outside the host (e.g. for the daemon's `--state-dir`).
    pub fn state_dir(&self) -> PathBuf {
        self.dir.join("state")
    }

    /// The file pinning the host's mount namespace (`nsenter --mount=` it).
    pub fn mntns(&self) -> &Path {
        &self.mntns
    }

    /// Where the host's private file systems live, seen from outside: `var-lib/upper` and
    /// `etc/upper` hold what the host wrote to `/var/lib` and `/etc`; `lxd`, `microcloud` and
    /// `etc-microcloud` are its `/var/lib/lxd`, `/var/lib/microcloud` and `/etc/microcloud`.
    pub fn fs_dir(&self) -> PathBuf {
        self.dir.join("fs")
    }

    /// The host's `/etc/microcloud/microcloudd.yaml`, as a path outside the host.
    pub fn agent_config_path(&self) -> PathBuf {
        self.fs_dir().join("etc-microcloud/microcloudd.yaml")
    }

    /// The host's loop disks, in the order of their backing files (`disk0.img`, …).
    pub fn disks(&self) -> &[LoopDisk] {
        &self.disks
    }

    /// `--allow-disk DEV` for each of the host's loop disks, for `microcloudd` and
    /// `microcloud inventory`. (The host's `microcloudd.yaml` lists them too.)
    pub fn allow_disk_args(&self) -> Vec<String> {
        self.disks
            .iter()
            .flat_map(|d| ["--allow-disk".to_string(), d.device.display().to_string()])
            .collect()
    }

    /// Where [`spawn`](Self::spawn)ed processes write their output, one file per process.
    pub fn log_dir(&self) -> PathBuf {
        self.dir.join("log")
    }

    /// Turn `cmd` into the same command run inside this host. Program, arguments, environment
    /// changes and working directory carry over; `env_clear` and stdio settings do not (std
    /// does not expose them), so set stdio on the returned command.
    ///
    /// Entering a mount namespace resets the working directory to `/`, so the command's (or
    /// else this process's) working directory is passed on with `--wd`.
    pub fn wrap(&self, cmd: &Command) -> Command {
        let mut wrapped = Command::new("nsenter");
        let mut mnt = std::ffi::OsString::from("--mount=");
        mnt.push(&self.mntns);
        wrapped
            .arg(mnt)
            .arg(format!("--net={}/{}", netns::NETNS_DIR, self.netns));
        let cwd = std::env::current_dir().ok();
        let wd = match (cmd.get_current_dir(), &cwd) {
            (Some(d), Some(cwd)) => Some(cwd.join(d)),
            (Some(d), None) => Some(d.to_path_buf()),
            (None, cwd) => cwd.clone(),
        };
        if let Some(wd) = wd {
            let mut arg = std::ffi::OsString::from("--wd=");
            arg.push(wd);
            wrapped.arg(arg);
        }
        wrapped
            .arg("--")
            .arg(cmd.get_program())
            .args(cmd.get_args());
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => wrapped.env(k, v),
                None => wrapped.env_remove(k),
            };
        }
        if let Some(dir) = cmd.get_current_dir() {
            wrapped.current_dir(dir);
        }
        wrapped
    }

    /// A command for `program` that will run inside this host; add arguments and run it.
    pub fn command(&self, program: &str) -> Command {
        self.wrap(&Command::new(program))
    }

    /// Run `program args…` inside the host and collect its output, whatever its exit status.
    pub fn run<I, S>(&self, program: &str, args: I) -> Result<Output, LabError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut cmd = self.command(program);
        cmd.args(args).stdin(Stdio::null());
        cmd.output().map_err(|source| LabError::Spawn {
            cmd: format!("{}: {program}", self.name),
            source,
        })
    }

    /// Run `sh -c script` inside the host; its stdout, or an error with its stderr if it failed.
    pub fn sh(&self, script: &str) -> Result<String, LabError> {
        let out = self.run("sh", ["-c", script])?;
        checked(format!("{}: sh -c {script:?}", self.name), out)
    }

    /// `ip -n NS <args>` (split on whitespace); stdout, or an error carrying stderr. Needs no
    /// exec into the host, so it is the cheap way to look at or change its links.
    pub fn ip(&self, args: &str) -> Result<String, LabError> {
        let mut cmd = Command::new("ip");
        cmd.args(["-n", &self.netns])
            .args(args.split_whitespace())
            .stdin(Stdio::null());
        let what = format!("ip -n {} {args}", self.netns);
        let out = cmd.output().map_err(|source| LabError::Spawn {
            cmd: what.clone(),
            source,
        })?;
        checked(what, out)
    }

    /// `ifindex` of one of the host's interfaces (the scope for its link-local addresses).
    pub fn ifindex(&self, ifname: &str) -> Result<u32, LabError> {
        let json = self.ip(&format!("-j link show dev {ifname}"))?;
        let v: serde_json::Value =
            serde_json::from_str(&json).map_err(|e| LabError::State(format!("ip -j link: {e}")))?;
        v[0]["ifindex"].as_u64().map(|i| i as u32).ok_or_else(|| {
            LabError::State(format!("{}: no ifindex for {ifname} in {json}", self.name))
        })
    }

    /// Start `cmd` inside the host with stdin closed and stdout+stderr appended to a fresh file
    /// in [`log_dir`](Self::log_dir). The returned handle stops it on drop.
    pub fn spawn(&self, cmd: &Command) -> Result<LabProcess, LabError> {
        let program = Path::new(cmd.get_program())
            .file_name()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|| "process".into());
        let n = self.spawned.fetch_add(1, Ordering::SeqCst);
        let log_dir = self.log_dir();
        fs::create_dir_all(&log_dir)
            .map_err(|e| LabError::io(format!("creating {}", log_dir.display()), e))?;
        let log = log_dir.join(format!("{n:03}-{program}.log"));
        let file = fs::File::create(&log)
            .map_err(|e| LabError::io(format!("creating {}", log.display()), e))?;
        let err = file
            .try_clone()
            .map_err(|e| LabError::io("duplicating a log file descriptor", e))?;
        let label = format!("{}/{program}#{n}", self.name);
        let child = self
            .wrap(cmd)
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err)
            .spawn()
            .map_err(|source| LabError::Spawn {
                cmd: label.clone(),
                source,
            })?;
        tracing::debug!(process = %label, pid = child.id(), log = %log.display(), "spawned in lab host");
        Ok(LabProcess::new(child, label, log))
    }

    /// Every spawned process's log, oldest first, each under a `==> file <==` header.
    pub fn logs(&self) -> String {
        let mut files: Vec<PathBuf> = fs::read_dir(self.log_dir())
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .collect();
        files.sort();
        files
            .iter()
            .map(|f| {
                let text = fs::read(f)
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                format!("==> {} <==\n{text}", f.display())
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Run `f` on a thread inside this host's network namespace (see [`netns::in_netns`]).
    pub fn in_netns<F, R>(&self, f: F) -> Result<R, LabError>
    where
        F: FnOnce() -> R + Send,
        R: Send,
    {
        netns::in_netns(&self.netns, f)
    }
}

pub(crate) fn checked(what: String, out: Output) -> Result<String, LabError> {
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(LabError::Command {
            cmd: what,
            status: out.status,
            stderr: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
            .trim()
            .to_string(),
        })
    }
}
