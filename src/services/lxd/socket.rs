//! Where LXD's unix socket is: an explicit path (config or flag) wins, then `$LXD_DIR`, then
//! the snap's and Debian's locations, in the order `lxc` itself would look.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use super::LxdError;

/// The snap package's socket.
pub const SNAP_SOCKET: &str = "/var/snap/lxd/common/lxd/unix.socket";
/// Debian's (and a source build's default `LXD_DIR`) socket.
pub const DEBIAN_SOCKET: &str = "/var/lib/lxd/unix.socket";

/// Find the socket on this machine. An explicit path is taken as it is, existing or not: the
/// operator asked for it, and the connect error will name it. Otherwise the first candidate
/// that exists wins; `$LXD_DIR` comes first so a daemon started with its own state directory
/// (the lab, tests) is found before a system one.
pub fn discover(explicit: Option<&Path>) -> Result<PathBuf, LxdError> {
    let lxd_dir = std::env::var_os("LXD_DIR");
    pick(explicit, lxd_dir.as_deref(), |p| p.exists())
}

/// The decision behind [`discover`], with the environment and the file system passed in.
pub fn pick(
    explicit: Option<&Path>,
    lxd_dir: Option<&OsStr>,
    exists: impl Fn(&Path) -> bool,
) -> Result<PathBuf, LxdError> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    let candidates = candidates(lxd_dir);
    match candidates.iter().find(|p| exists(p)) {
        Some(p) => Ok(p.clone()),
        None => Err(LxdError::NoSocket { tried: candidates }),
    }
}

/// Candidate sockets in the order they are tried (an empty `LXD_DIR` counts as unset).
pub fn candidates(lxd_dir: Option<&OsStr>) -> Vec<PathBuf> {
    let mut out = Vec::with_capacity(3);
    if let Some(dir) = lxd_dir.filter(|d| !d.is_empty()) {
        out.push(Path::new(dir).join("unix.socket"));
    }
    out.push(PathBuf::from(SNAP_SOCKET));
    out.push(PathBuf::from(DEBIAN_SOCKET));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_wins_even_when_missing() {
        let p = pick(Some(Path::new("/nope/unix.socket")), None, |_| false).unwrap();
        assert_eq!(p, Path::new("/nope/unix.socket"));
    }

    #[test]
    fn lxd_dir_before_snap_before_debian() {
        let all = |_: &Path| true;
        let dir = OsStr::new("/tmp/x");
        assert_eq!(
            pick(None, Some(dir), all).unwrap(),
            Path::new("/tmp/x/unix.socket")
        );
        assert_eq!(pick(None, None, all).unwrap(), Path::new(SNAP_SOCKET));
        let debian_only = |p: &Path| p == Path::new(DEBIAN_SOCKET);
        assert_eq!(
            pick(None, Some(dir), debian_only).unwrap(),
            Path::new(DEBIAN_SOCKET)
        );
    }

    #[test]
    fn none_found_lists_every_candidate() {
        let err = pick(None, Some(OsStr::new("/tmp/x")), |_| false).unwrap_err();
        let msg = err.to_string();
        for p in ["/tmp/x/unix.socket", SNAP_SOCKET, DEBIAN_SOCKET] {
            assert!(msg.contains(p), "{msg}");
        }
        let LxdError::NoSocket { tried } = err else {
            panic!("{err:?}")
        };
        assert_eq!(tried.len(), 3);
    }

    #[test]
    fn empty_lxd_dir_is_unset() {
        assert_eq!(candidates(Some(OsStr::new(""))).len(), 2);
    }
}
