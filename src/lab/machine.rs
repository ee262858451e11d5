//! Per-host mount namespaces: what makes a lab host look like its own machine to LXD and the agent.
//!
//! Each host gets one mount namespace for its whole life, made once at bring-up and kept alive by
//! a bind mount of its nsfs file at `<lab dir>/ns/<host>` (the way `unshare --mount=FILE` keeps
//! one). Inside it:
//! - `/run` is a fresh tmpfs (own pid files, sockets, `/run/lock`, libmount's utab) with the
//!   machine's `/run/udev` (one udevd serves every host, DESIGN §7) and `/run/netns` bound in;
//! - `/sys` is a sysfs mounted from inside the host's network namespace (as `ip netns exec`
//!   does, so `/sys/class/net` lists the host's links), with `/sys/fs/cgroup` carried over
//!   (LXD needs the cgroup hierarchy, which `ip netns exec` loses);
//! - `/var/lib` and `/etc` are overlays on the machine's, written to `<host>/fs/{var-lib,etc}`;
//! - `/var/lib/lxd`, `/var/lib/microcloud` and `/etc/microcloud` are empty per-host directories
//!   bound over the overlays, so no state of the real machine's LXD or agent shows through.
//!
//! The namespace is built in-process by a thread that joins the host's network namespace and
//! unshares its mount namespace (a thread may: `unshare(CLONE_NEWNS)` gives it its own fs
//! context); dozens of mount syscalls cost far less than a `mount` process each. Everything
//! below `/` is made a slave first, so mounts propagate into hosts but never out of them.

use std::fs;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};

use super::netns::NETNS_DIR;
use super::LabError;

/// Per-host directories inside a host's `fs/` dir bound over these paths in the host.
const FRESH: [(&str, &str); 3] = [
    ("lxd", "/var/lib/lxd"),
    ("microcloud", "/var/lib/microcloud"),
    ("etc-microcloud", "/etc/microcloud"),
];

/// Overlays: (directory name under `fs/`, path in the host).
const OVERLAYS: [(&str, &str); 2] = [("var-lib", "/var/lib"), ("etc", "/etc")];

/// The lab's namespace-file directory, bound onto itself as a private mount: a persistent
/// namespace's file must not sit on a shared mount (systemd makes `/` shared), or the kernel
/// refuses the bind.
pub(crate) fn prepare_ns_dir(dir: &Path) -> Result<(), LabError> {
    fs::create_dir_all(dir).map_err(|e| LabError::io(format!("creating {}", dir.display()), e))?;
    mount(Some(dir), dir, None::<&str>, MsFlags::MS_BIND, None::<&str>)
        .map_err(|e| LabError::io(format!("binding {} onto itself", dir.display()), e.into()))?;
    mount(
        None::<&str>,
        dir,
        None::<&str>,
        MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| LabError::io(format!("making {} private", dir.display()), e.into()))
}

/// Create host `name`'s mount namespace inside network namespace `netns`, with its state under
/// `fs_dir`, and pin it at `ns_file`.
pub(crate) fn create(
    name: &str,
    netns: &str,
    fs_dir: &Path,
    ns_file: &Path,
) -> Result<(), LabError> {
    for (d, _) in FRESH.iter().chain(&[("run", "")]) {
        mkdir(&fs_dir.join(d))?;
    }
    for (d, _) in OVERLAYS {
        mkdir(&fs_dir.join(d).join("upper"))?;
        mkdir(&fs_dir.join(d).join("work"))?;
    }
    fs::File::create(ns_file)
        .map_err(|e| LabError::io(format!("{name}: creating {}", ns_file.display()), e))?;
    let net = Path::new(NETNS_DIR).join(netns);
    let net = fs::File::open(&net)
        .map_err(|e| LabError::io(format!("{name}: opening {}", net.display()), e))?;
    // The thread ends once the namespace is built; its open nsfs file keeps the namespace alive
    // until it is bound to `ns_file` from here, in the machine's own mount namespace.
    let ns = std::thread::scope(|s| {
        s.spawn(|| -> Result<fs::File, LabError> {
            let at = |what: &str, e: nix::Error| LabError::io(format!("{name}: {what}"), e.into());
            setns(&net, CloneFlags::CLONE_NEWNET).map_err(|e| at("entering the netns", e))?;
            unshare(CloneFlags::CLONE_NEWNS).map_err(|e| at("unsharing the mount ns", e))?;
            populate(name, fs_dir)?;
            fs::File::open("/proc/thread-self/ns/mnt")
                .map_err(|e| LabError::io(format!("{name}: opening its mount ns"), e))
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })?;
    let src = format!("/proc/self/fd/{}", ns.as_raw_fd());
    mount(
        Some(src.as_str()),
        ns_file,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| {
        LabError::io(
            format!("{name}: binding its mount ns to {}", ns_file.display()),
            e.into(),
        )
    })
}

/// The mounts, run on the thread that is already inside the new namespaces.
fn populate(name: &str, fs_dir: &Path) -> Result<(), LabError> {
    let m = |src: Option<&Path>,
             target: &Path,
             fstype: Option<&str>,
             flags: MsFlags,
             data: Option<&str>| {
        mount(src, target, fstype, flags, data).map_err(|e| {
            LabError::io(
                format!(
                    "{name}: mount {} on {} ({flags:?} {})",
                    src.map_or_else(|| fstype.unwrap_or("-").into(), |s| s.display().to_string()),
                    target.display(),
                    data.unwrap_or("")
                ),
                e.into(),
            )
        })
    };
    let none = MsFlags::empty();
    m(
        None,
        Path::new("/"),
        None,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None,
    )?;
    // Upper directories on an overlayfs (a container's root) are refused: keep them on a tmpfs
    // private to this namespace instead (state is then not inspectable from outside).
    if nix::sys::statfs::statfs(fs_dir)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::OVERLAYFS_SUPER_MAGIC)
    {
        m(
            Some(Path::new("lab-fs")),
            fs_dir,
            Some("tmpfs"),
            none,
            Some("mode=755"),
        )?;
        for (d, _) in OVERLAYS {
            mkdir(&fs_dir.join(d).join("upper"))?;
            mkdir(&fs_dir.join(d).join("work"))?;
        }
        for (d, _) in FRESH.iter().chain(&[("run", "")]) {
            mkdir(&fs_dir.join(d))?;
        }
    }

    // /run: stage a tmpfs, bind what must be shared into it, park the cgroup tree there while
    // /sys is replaced, then move the tmpfs over /run.
    let run = fs_dir.join("run");
    m(
        Some(Path::new("lab-run")),
        &run,
        Some("tmpfs"),
        none,
        Some("mode=755"),
    )?;
    for d in ["udev", "netns", "lock", "cgroup-parked"] {
        mkdir(&run.join(d))?;
    }
    let rbind = MsFlags::MS_BIND | MsFlags::MS_REC;
    m(
        Some(Path::new("/run/udev")),
        &run.join("udev"),
        None,
        rbind,
        None,
    )?;
    m(
        Some(Path::new(NETNS_DIR)),
        &run.join("netns"),
        None,
        rbind,
        None,
    )?;
    let parked = run.join("cgroup-parked");
    let cgroup = Path::new("/sys/fs/cgroup");
    let has_cgroup = cgroup.is_dir();
    if has_cgroup {
        m(Some(cgroup), &parked, None, rbind, None)?;
    }
    umount2("/sys", MntFlags::MNT_DETACH)
        .map_err(|e| LabError::io(format!("{name}: unmounting /sys"), e.into()))?;
    m(
        Some(Path::new("lab-sys")),
        Path::new("/sys"),
        Some("sysfs"),
        none,
        None,
    )?;
    if has_cgroup {
        m(Some(&parked), cgroup, None, MsFlags::MS_MOVE, None)?;
    }
    let _ = fs::remove_dir(&parked);
    m(Some(&run), Path::new("/run"), None, MsFlags::MS_MOVE, None)?;

    for (d, target) in OVERLAYS {
        let dir = fs_dir.join(d);
        let opts = format!(
            "lowerdir={target},upperdir={},workdir={}",
            dir.join("upper").display(),
            dir.join("work").display()
        );
        m(
            Some(Path::new(&format!("lab-{d}"))),
            Path::new(target),
            Some("overlay"),
            none,
            Some(&opts),
        )?;
    }
    for (d, target) in FRESH {
        mkdir(Path::new(target))?;
        m(
            Some(&fs_dir.join(d)),
            Path::new(target),
            None,
            MsFlags::MS_BIND,
            None,
        )?;
    }
    Ok(())
}

/// Release a host's namespace: unmount its pinning file (lazily: a process may still be
/// leaving). The namespace goes once nothing inside runs.
pub(crate) fn release(ns_file: &Path) -> Result<(), LabError> {
    match umount2(ns_file, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => Ok(()),
        Err(e) => Err(LabError::io(
            format!("unmounting {}", ns_file.display()),
            e.into(),
        )),
    }
}

/// Unmount everything mounted at or below `dir` in this namespace, deepest first: pinned
/// namespaces, the private ns dir, anything a crashed run left. Returns how many went.
pub(crate) fn unmount_below(dir: &Path) -> Result<usize, LabError> {
    let info = fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| LabError::io("reading /proc/self/mountinfo", e))?;
    let mut points: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape)
        .filter(|p| p.starts_with(dir))
        .collect();
    // Deepest first; a path mounted twice appears twice and is unmounted twice.
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    let mut n = 0;
    for p in &points {
        match umount2(p, MntFlags::MNT_DETACH) {
            Ok(()) => n += 1,
            Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => {}
            Err(e) => {
                return Err(LabError::io(
                    format!("unmounting {}", p.display()),
                    e.into(),
                ))
            }
        }
    }
    Ok(n)
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(s: &str) -> PathBuf {
    let mut out = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    PathBuf::from(<std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(out))
}

fn mkdir(d: &Path) -> Result<(), LabError> {
    fs::create_dir_all(d).map_err(|e| LabError::io(format!("creating {}", d.display()), e))
}

#[cfg(test)]
mod tests {
    #[test]
    fn mountinfo_unescapes() {
        assert_eq!(
            super::unescape(r"/tmp/a\040b"),
            std::path::PathBuf::from("/tmp/a b")
        );
        assert_eq!(
            super::unescape("/plain"),
            std::path::PathBuf::from("/plain")
        );
    }
}
