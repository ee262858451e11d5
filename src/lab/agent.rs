//! The agent inside a lab host: `microcloudd` started with the host's own paths (its
//! `/var/lib/microcloud`, `/run/microcloud/control.socket`, `/etc/microcloud/microcloudd.yaml`),
//! as systemd would start it on a real machine, and `microcloud` run against it.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use super::host::Host;
use super::process::LabProcess;
use super::LabError;

/// How long [`Host::start_agent`] waits for the control socket.
pub const AGENT_READY_TIMEOUT: Duration = Duration::from_secs(20);
/// The agent's control socket, as a path inside the host.
pub const AGENT_SOCKET: &str = crate::api::DEFAULT_CONTROL_SOCKET;

impl Host {
    /// Start `microcloudd` (the binary at `exe`) named after the host, with `extra` arguments,
    /// and wait until its control socket answers inside the host.
    pub fn start_agent(&self, exe: &Path, extra: &[&str]) -> Result<LabProcess, LabError> {
        let started = Instant::now();
        // A killed agent leaves its socket behind; waiting for it would return at once.
        self.sh(&format!("rm -f {AGENT_SOCKET}"))?;
        let mut cmd = Command::new(exe);
        cmd.args(["--name", self.name()]).args(extra);
        let mut p = self.spawn(&cmd)?;
        loop {
            if self.sh(&format!("test -S {AGENT_SOCKET}")).is_ok() {
                tracing::debug!(host = %self.name(), elapsed = ?started.elapsed(), "agent ready");
                return Ok(p);
            }
            if let Some(status) = p.try_wait()? {
                return Err(LabError::Command {
                    cmd: format!("{}: {}", self.name(), exe.display()),
                    status,
                    stderr: p.log(),
                });
            }
            if started.elapsed() > AGENT_READY_TIMEOUT {
                return Err(LabError::Timeout {
                    what: format!(
                        "{}: microcloudd's control socket {AGENT_SOCKET}",
                        self.name()
                    ),
                    timeout: AGENT_READY_TIMEOUT,
                });
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}
