//! Low-level namespace plumbing: `ip -batch` runs, entering a namespace from a thread, finding
//! and killing the processes inside a namespace, and deleting namespaces.

use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::LabError;

/// Where `ip netns` keeps its named namespaces.
pub const NETNS_DIR: &str = "/run/netns";

/// Start `ip [-n NS] -force? -batch -` fed with `lines`; returns the running child so several
/// namespaces can be configured at once.
pub(crate) fn spawn_batch(
    netns: Option<&str>,
    lines: &[String],
) -> Result<(Child, String), LabError> {
    let mut cmd = Command::new("ip");
    if let Some(ns) = netns {
        cmd.args(["-n", ns]);
    }
    cmd.args(["-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let what = format!(
        "ip{} -batch",
        netns.map(|n| format!(" -n {n}")).unwrap_or_default()
    );
    let mut child = cmd.spawn().map_err(|source| LabError::Spawn {
        cmd: what.clone(),
        source,
    })?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let mut text = lines.join("\n");
    text.push('\n');
    // A short batch fits the pipe buffer; a failing `ip` closing early shows in its status.
    let _ = stdin.write_all(text.as_bytes());
    drop(stdin);
    Ok((child, what))
}

/// Wait for a batch from `spawn_batch`, turning failure into an error carrying ip's stderr.
pub(crate) fn finish_batch((child, what): (Child, String)) -> Result<(), LabError> {
    let out = child.wait_with_output().map_err(|source| LabError::Spawn {
        cmd: what.clone(),
        source,
    })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(LabError::Command {
            cmd: what,
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

pub(crate) fn batch(netns: Option<&str>, lines: &[String]) -> Result<(), LabError> {
    finish_batch(spawn_batch(netns, lines)?)
}

/// Run `f` on a fresh thread that has joined network namespace `netns`. Sockets created there
/// stay in that namespace after the thread ends, so this is how a test binds or connects "from
/// a host" without a helper program; `/proc/sys/net` written there is the namespace's too.
pub fn in_netns<F, R>(netns: &str, f: F) -> Result<R, LabError>
where
    F: FnOnce() -> R + Send,
    R: Send,
{
    let path = Path::new(NETNS_DIR).join(netns);
    let file = fs::File::open(&path)
        .map_err(|e| LabError::io(format!("opening {}", path.display()), e))?;
    std::thread::scope(|s| {
        s.spawn(move || {
            nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| LabError::io(format!("entering {netns}"), e.into()))?;
            Ok(f())
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

/// Write a `/proc/sys/net/...` value as seen from inside `netns`.
pub(crate) fn sysctls(netns: &str, settings: &[(&str, &str)]) -> Result<(), LabError> {
    in_netns(netns, || {
        for (key, value) in settings {
            let path = format!("/proc/sys/{}", key.replace('.', "/"));
            fs::write(&path, value)
                .map_err(|e| LabError::io(format!("{netns}: writing {path}"), e))?;
        }
        Ok(())
    })?
}

/// Named namespaces whose name starts with `prefix` (what `ip netns list` shows).
pub fn list(prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(NETNS_DIR)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with(prefix))
        .collect();
    names.sort();
    names
}

/// Pids of every process in any of `netnses` (as `ip netns pids` finds them: by the identity
/// of `/proc/PID/ns/net`). One pass over /proc for all namespaces.
pub fn pids(netnses: &[String]) -> Vec<Pid> {
    let ids: Vec<(u64, u64)> = netnses
        .iter()
        .filter_map(|n| fs::metadata(Path::new(NETNS_DIR).join(n)).ok())
        .map(|m| (m.dev(), m.ino()))
        .collect();
    if ids.is_empty() {
        return Vec::new();
    }
    let me = std::process::id();
    fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| {
            fs::metadata(format!("/proc/{pid}/ns/net"))
                .is_ok_and(|m| ids.contains(&(m.dev(), m.ino())))
        })
        .map(|pid| Pid::from_raw(pid as i32))
        .collect()
}

/// SIGKILL everything inside `netnses` and wait (bounded) until it is gone, so deleting the
/// namespaces really frees their links.
pub(crate) fn kill_all(netnses: &[String]) -> usize {
    let victims = pids(netnses);
    for &pid in &victims {
        let _ = kill(pid, Signal::SIGKILL);
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    // Our own children stay as zombies until reaped (by their LabProcess); those count as gone.
    let alive = |pid: &Pid| {
        fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|rest| !rest.trim_start().starts_with('Z'))
        })
    };
    while victims.iter().any(alive) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    victims.len()
}

/// Kill what runs in `netnses`, then delete them; missing ones are not an error.
pub(crate) fn destroy(netnses: &[String]) -> Result<(), LabError> {
    let existing: Vec<String> = netnses
        .iter()
        .filter(|n| Path::new(NETNS_DIR).join(n).exists())
        .cloned()
        .collect();
    if existing.is_empty() {
        return Ok(());
    }
    let killed = kill_all(&existing);
    if killed > 0 {
        tracing::debug!(killed, "killed processes left in lab namespaces");
    }
    let lines: Vec<String> = existing.iter().map(|n| format!("netns del {n}")).collect();
    let result = batch(None, &lines);
    let left = list("")
        .into_iter()
        .filter(|n| existing.contains(n))
        .count();
    match (result, left) {
        (_, 0) => Ok(()),
        (Err(e), _) => Err(e),
        (Ok(()), n) => Err(LabError::State(format!("{n} namespaces survived deletion"))),
    }
}
