//! LXD inside a lab host: starting the host's own daemon and running `lxc` against it.
//!
//! Each host's `/var/lib/lxd` is its own (see `machine`), so LXD runs with its default paths and
//! any client inside the host — `lxc`, the agent's LXD driver — finds it at the Debian location
//! `/var/lib/lxd/unix.socket`. `LXD_DIR` is still set to that path when starting it: LXD 5.0
//! then keeps its logs and cache under it too, instead of the machine-wide `/var/log/lxd` and
//! `/var/cache/lxd` every host would share.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::host::Host;
use super::process::LabProcess;
use super::LabError;

/// The host's LXD state directory, as a path inside the host.
pub const LXD_DIR: &str = "/var/lib/lxd";

/// How long [`Host::start_lxd`] waits for `lxd waitready`.
pub const LXD_READY_TIMEOUT: Duration = Duration::from_secs(60);

impl Host {
    /// Start the host's LXD (`lxd --group root --logfile <log dir>/lxd.log`) and wait until
    /// `lxd waitready` succeeds inside the host. Dropping the handle stops it.
    pub fn start_lxd(&self) -> Result<LabProcess, LabError> {
        let started = Instant::now();
        let logfile = self.log_dir().join("lxd.log");
        let mut cmd = Command::new("lxd");
        cmd.args(["--group", "root", "--logfile"])
            .arg(&logfile)
            .env("LXD_DIR", LXD_DIR);
        let mut lxd = self.spawn(&cmd)?;
        // Dqlite hands leadership over on SIGTERM; give it time before SIGKILL.
        lxd.set_grace(Duration::from_secs(5));
        let timeout = LXD_READY_TIMEOUT.as_secs().to_string();
        let out = self
            .command("lxd")
            .args(["waitready", "--timeout", &timeout])
            .env("LXD_DIR", LXD_DIR)
            .stdin(Stdio::null())
            .output()
            .map_err(|source| LabError::Spawn {
                cmd: format!("{}: lxd waitready", self.name()),
                source,
            })?;
        if !out.status.success() {
            let exited = lxd.try_wait()?;
            return Err(LabError::Command {
                cmd: format!("{}: lxd waitready --timeout {timeout}", self.name()),
                status: out.status,
                stderr: format!(
                    "{}{}\nlxd {}; its output ({}):\n{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr),
                    exited.map_or("still runs".into(), |s| format!("exited: {s}")),
                    lxd.log_path().display(),
                    lxd.log()
                )
                .trim()
                .to_string(),
            });
        }
        tracing::debug!(host = %self.name(), elapsed = ?started.elapsed(), "lxd ready");
        Ok(lxd)
    }

    /// Run `lxc args…` inside the host against its LXD; stdout, or an error naming the host and
    /// the command with lxc's output.
    pub fn lxc<I, S>(&self, args: I) -> Result<String, LabError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let args: Vec<String> = args.into_iter().map(|a| a.as_ref().to_string()).collect();
        let out = self
            .command("lxc")
            .args(&args)
            .env("LXD_DIR", LXD_DIR)
            .stdin(Stdio::null())
            .output()
            .map_err(|source| LabError::Spawn {
                cmd: format!("{}: lxc {}", self.name(), args.join(" ")),
                source,
            })?;
        super::host::checked(format!("{}: lxc {}", self.name(), args.join(" ")), out)
    }

    /// `lxd init --preseed` inside the host with `yaml` on stdin.
    pub fn lxd_preseed(&self, yaml: &str) -> Result<String, LabError> {
        use std::io::Write;
        let what = format!("{}: lxd init --preseed", self.name());
        let mut child = self
            .command("lxd")
            .args(["init", "--preseed"])
            .env("LXD_DIR", LXD_DIR)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| LabError::Spawn {
                cmd: what.clone(),
                source,
            })?;
        let mut stdin = child.stdin.take().expect("piped stdin");
        stdin
            .write_all(yaml.as_bytes())
            .map_err(|e| LabError::io(format!("{what}: writing the preseed"), e))?;
        drop(stdin);
        let out = child.wait_with_output().map_err(|source| LabError::Spawn {
            cmd: what.clone(),
            source,
        })?;
        super::host::checked(what, out)
    }
}
