//! Watches udev for changes to the devices the inventory reports, on a thread of its own
//! (libudev handles are not `Send`), and wakes the daemon through a channel. It wakes only on
//! events: no timers.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use tokio::sync::mpsc;

/// The udev tag our rules file (`udev-rules/70-microcloud.rules`) puts on the devices we watch.
pub const UDEV_TAG: &str = "microcloud";
const RULE_DIRS: &[&str] = &[
    "/etc/udev/rules.d",
    "/run/udev/rules.d",
    "/lib/udev/rules.d",
    "/usr/lib/udev/rules.d",
];

/// A running monitor; dropping it stops the thread.
pub struct UdevMonitor {
    stop: Option<OwnedFd>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for UdevMonitor {
    fn drop(&mut self) {
        // Closing the pipe's write end wakes the thread's poll with POLLHUP.
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn rules_installed() -> bool {
    RULE_DIRS
        .iter()
        .any(|d| Path::new(d).join("70-microcloud.rules").exists())
}

/// Start watching. Each relevant udev event sends `()` (coalesced: a full channel drops it).
pub fn start(events: mpsc::Sender<()>) -> std::io::Result<UdevMonitor> {
    let (stop_r, stop_w) = nix::unistd::pipe().map_err(std::io::Error::from)?;
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    // The monitor socket is not Send: it is created on the thread that uses it.
    let thread = std::thread::Builder::new()
        .name("udev-monitor".into())
        .spawn(move || match listen() {
            Ok(socket) => {
                let _ = ready_tx.send(Ok(()));
                run(socket, stop_r, events)
            }
            Err(e) => {
                let _ = ready_tx.send(Err(e));
            }
        })?;
    // Listening before returning, so no event after start() is missed.
    ready_rx
        .recv()
        .map_err(|_| std::io::Error::other("udev monitor thread died"))??;
    Ok(UdevMonitor {
        stop: Some(stop_w),
        thread: Some(thread),
    })
}

fn listen() -> std::io::Result<udev::MonitorSocket> {
    let builder = udev::MonitorBuilder::new()?;
    // With our rules installed, listen to exactly the tagged devices; otherwise fall back to
    // the two subsystems, which wakes us for a few more events.
    let builder = if rules_installed() {
        builder.match_tag(UDEV_TAG)?
    } else {
        tracing::info!(
            "udev rules 70-microcloud.rules not installed; watching all block and net events"
        );
        builder.match_subsystem("block")?.match_subsystem("net")?
    };
    builder.listen()
}

fn run(socket: udev::MonitorSocket, stop: OwnedFd, events: mpsc::Sender<()>) {
    loop {
        let mut fds = [
            PollFd::new(socket.as_fd(), PollFlags::POLLIN),
            PollFd::new(stop.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                tracing::error!("udev monitor poll failed: {e}");
                return;
            }
        }
        if fds[1].revents().is_some_and(|r| !r.is_empty()) {
            return;
        }
        let mut any = false;
        for ev in socket.iter() {
            tracing::debug!(device = %ev.sysname().to_string_lossy(), event = ?ev.event_type(), "udev event");
            any = true;
        }
        if any && events.try_send(()).is_err() && events.is_closed() {
            return;
        }
    }
}
