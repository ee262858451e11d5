//! Loop disks: sparse files under a host's lab directory attached as loop devices, and detaching
//! every loop device whose backing file lies under a lab directory.
//!
//! The machine's `/dev` is shared by all hosts, so every host sees every loop device; what makes a
//! disk "this host's" is the host's allow-list (`--allow-disk`, `/etc/microcloud/microcloudd.yaml`).
//! Detaching finds devices by backing file, not by a recorded list, so a crashed run's disks are
//! found the same way (`down_stale`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::LabError;

/// One attached loop disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoopDisk {
    /// `/dev/loopN`.
    pub device: PathBuf,
    /// The sparse backing file, `<host dir>/disks/diskK.img`.
    pub file: PathBuf,
    pub size: u64,
}

impl LoopDisk {
    /// The kernel name (`loopN`), what the inventory and `--allow-disk` match.
    pub fn name(&self) -> String {
        self.device
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

/// A `losetup -f --show FILE` in flight (several run at once: losetup retries when two pick
/// the same free device).
pub(crate) struct Attaching {
    child: Child,
    file: PathBuf,
    size: u64,
    host: String,
}

/// Create `file` sparse with `size` bytes and start attaching it.
pub(crate) fn start_attach(host: &str, file: PathBuf, size: u64) -> Result<Attaching, LabError> {
    if let Some(dir) = file.parent() {
        fs::create_dir_all(dir)
            .map_err(|e| LabError::io(format!("{host}: creating {}", dir.display()), e))?;
    }
    let f = fs::File::create(&file)
        .map_err(|e| LabError::io(format!("{host}: creating {}", file.display()), e))?;
    f.set_len(size)
        .map_err(|e| LabError::io(format!("{host}: sizing {}", file.display()), e))?;
    let child = Command::new("losetup")
        .args(["-f", "--show"])
        .arg(&file)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| LabError::Spawn {
            cmd: format!("{host}: losetup -f --show {}", file.display()),
            source,
        })?;
    Ok(Attaching {
        child,
        file,
        size,
        host: host.to_string(),
    })
}

impl Attaching {
    pub(crate) fn finish(self) -> Result<LoopDisk, LabError> {
        let what = format!("{}: losetup -f --show {}", self.host, self.file.display());
        let out = self
            .child
            .wait_with_output()
            .map_err(|source| LabError::Spawn {
                cmd: what.clone(),
                source,
            })?;
        let dev = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !out.status.success() || !dev.starts_with("/dev/loop") {
            return Err(LabError::Command {
                cmd: what,
                status: out.status,
                stderr: format!("{dev}{}", String::from_utf8_lossy(&out.stderr))
                    .trim()
                    .to_string(),
            });
        }
        Ok(LoopDisk {
            device: dev.into(),
            file: self.file,
            size: self.size,
        })
    }
}

/// Loop devices whose backing file is under `dir`: `(device, backing file)`.
pub fn attached_under(dir: &Path) -> Vec<(PathBuf, PathBuf)> {
    let mut found: Vec<(PathBuf, PathBuf)> = fs::read_dir("/sys/block")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let backing = fs::read_to_string(e.path().join("loop/backing_file")).ok()?;
            let backing = backing.trim_end_matches('\n');
            let backing = backing.strip_suffix(" (deleted)").unwrap_or(backing);
            let backing = PathBuf::from(backing);
            backing
                .starts_with(dir)
                .then(|| (PathBuf::from("/dev").join(name), backing))
        })
        .collect();
    found.sort();
    found
}

/// How long a detached-while-in-use loop device may take to really go.
const DETACH_WAIT: Duration = Duration::from_secs(10);

/// Detach every loop device backed by a file under `dir` (one `losetup -d` for all). A device
/// still in use (a filesystem mounted in a host namespace that is still going away) is detached
/// by the kernel when its last user closes it. Returns the devices detached.
pub(crate) fn detach_under(dir: &Path) -> Result<Vec<PathBuf>, LabError> {
    let devs: Vec<PathBuf> = attached_under(dir).into_iter().map(|(d, _)| d).collect();
    if devs.is_empty() {
        return Ok(devs);
    }
    let what = format!("losetup -d ({} disks under {})", devs.len(), dir.display());
    let out = Command::new("losetup")
        .arg("-d")
        .args(&devs)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| LabError::Spawn {
            cmd: what.clone(),
            source,
        })?;
    // A device detached meanwhile (a racing teardown) is fine; one still attached is not.
    if !out.status.success() && !attached_under(dir).is_empty() {
        return Err(LabError::Command {
            cmd: what,
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    // A device in use (a file system LXD mounted in a host whose namespace is being freed) is
    // only marked for detaching; wait until it really goes, so "torn down" means free.
    let deadline = Instant::now() + DETACH_WAIT;
    loop {
        let left = attached_under(dir);
        if left.is_empty() {
            return Ok(devs);
        }
        if Instant::now() >= deadline {
            return Err(LabError::Timeout {
                what: format!("detaching {left:?} (still in use)"),
                timeout: DETACH_WAIT,
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Parse a size: bytes, or a number with `K`/`M`/`G`/`T` (powers of 1024), optionally followed
/// by `iB` or `B`: `512M`, `10GiB`, `1048576`.
pub fn parse_size(s: &str) -> Result<u64, LabError> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits);
    let bad = || LabError::Spec(format!("size {s:?}: expected e.g. 512M, 10GiB or bytes"));
    let n: u64 = num.parse().map_err(|_| bad())?;
    let unit = unit.trim().to_ascii_uppercase();
    let unit = unit
        .strip_suffix("IB")
        .or_else(|| unit.strip_suffix('B'))
        .unwrap_or(&unit);
    let shift = match unit {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return Err(bad()),
    };
    n.checked_mul(1 << shift).filter(|&b| b > 0).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512M").unwrap(), 512 << 20);
        assert_eq!(parse_size("10GiB").unwrap(), 10 << 30);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("2gb").unwrap(), 2 << 30);
        assert!(parse_size("0").is_err());
        assert!(parse_size("1X").is_err());
        assert!(parse_size("G").is_err());
    }
}
