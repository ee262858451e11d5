//! `LabProcess`: a child running inside a lab host, logging to a file, stopped and reaped on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::LabError;

/// How long `Drop` waits after SIGTERM before SIGKILL.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(3);

/// A process started with [`Host::spawn`](super::Host::spawn). Its stdout and stderr go to
/// [`log_path`](Self::log_path); dropping it sends SIGTERM, then SIGKILL after the grace period,
/// and reaps it, so a failing test leaves nothing behind.
#[derive(Debug)]
pub struct LabProcess {
    child: Child,
    label: String,
    log: PathBuf,
    grace: Duration,
    status: Option<ExitStatus>,
    /// Set by [`detach`](Self::detach): drop leaves the process running.
    detached: bool,
}

impl LabProcess {
    pub(crate) fn new(child: Child, label: String, log: PathBuf) -> Self {
        LabProcess {
            child,
            label,
            log,
            grace: DEFAULT_GRACE,
            status: None,
            detached: false,
        }
    }

    /// `host/program#n`, for messages.
    pub fn label(&self) -> &str {
        &self.label
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Everything the process wrote so far (stdout and stderr interleaved).
    pub fn log(&self) -> String {
        std::fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Change how long drop waits between SIGTERM and SIGKILL.
    pub fn set_grace(&mut self, grace: Duration) {
        self.grace = grace;
    }

    /// The exit status if it has exited (reaping it), `None` while it runs.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>, LabError> {
        if self.status.is_none() {
            self.status = self
                .child
                .try_wait()
                .map_err(|e| LabError::io(format!("waiting for {}", self.label), e))?;
        }
        Ok(self.status)
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.try_wait(), Ok(None))
    }

    /// Wait up to `timeout` for the process to exit on its own.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<Option<ExitStatus>, LabError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.try_wait()? {
                return Ok(Some(s));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Send `signal` unless it has already exited (signalling a reaped pid could hit a stranger).
    pub fn signal(&mut self, signal: Signal) -> Result<(), LabError> {
        if self.try_wait()?.is_some() {
            return Ok(());
        }
        kill(Pid::from_raw(self.child.id() as i32), signal)
            .map_err(|e| LabError::io(format!("sending {signal} to {}", self.label), e.into()))
    }

    /// SIGTERM, then wait up to `timeout` for the exit status. On timeout the process keeps
    /// running (drop still kills it) and the error says so: a daemon that ignores SIGTERM is a
    /// finding, not something to paper over with SIGKILL.
    pub fn terminate(&mut self, timeout: Duration) -> Result<ExitStatus, LabError> {
        self.signal(Signal::SIGTERM)?;
        self.wait_timeout(timeout)?
            .ok_or_else(|| LabError::Timeout {
                what: format!("{} after SIGTERM", self.label),
                timeout,
            })
    }

    /// Let the process outlive this handle (e.g. LXD started by `microcloud-lab up --lxd`);
    /// tearing the lab down still kills it. Returns its pid.
    pub fn detach(mut self) -> u32 {
        self.detached = true;
        self.child.id()
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) -> Result<ExitStatus, LabError> {
        self.signal(Signal::SIGKILL)?;
        self.child
            .wait()
            .map_err(|e| LabError::io(format!("reaping {}", self.label), e))
    }
}

impl Drop for LabProcess {
    fn drop(&mut self) {
        if self.detached || !self.is_running() {
            return;
        }
        let grace = self.grace;
        if self.terminate(grace).is_err() {
            tracing::warn!(process = %self.label, ?grace, "did not stop on SIGTERM; killing");
            let _ = self.kill();
        }
    }
}
