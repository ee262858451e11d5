//! Small sysfs readers shared by the NIC and disk probes. A missing or unreadable attribute is
//! `None`: the caller decides whether that is worth reporting.

use std::path::{Path, PathBuf};

/// A sysfs attribute, trimmed; `None` if absent, unreadable or empty.
pub fn attr(path: &Path) -> Option<String> {
    let s = std::fs::read_to_string(path).ok()?;
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

pub fn attr_u64(path: &Path) -> Option<u64> {
    attr(path)?.parse().ok()
}

/// `0`/`1` attributes.
pub fn attr_bool(path: &Path) -> Option<bool> {
    match attr(path)?.as_str() {
        "0" => Some(false),
        "1" => Some(true),
        _ => None,
    }
}

/// The file name a symlink points at (`device/driver` → `virtio_net`).
pub fn link_name(path: &Path) -> Option<String> {
    std::fs::read_link(path)
        .ok()?
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
}

/// Entry names of a directory, sorted; empty if it does not exist.
pub fn dir_names(path: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(path)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Resolve a sysfs symlink to an absolute path.
pub fn resolve(path: &Path) -> Option<PathBuf> {
    std::fs::canonicalize(path).ok()
}
