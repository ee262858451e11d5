//! The host's identity as advertised: a stable host id kept in the state directory, the name,
//! the version and the services this host can offer.

use std::path::Path;

use anyhow::Context;

/// Load the host id from `state_dir/host-id`, creating a random one on first start. It outlives
/// host-name changes and re-installs of the OS image, unlike the host name.
pub fn host_id(state_dir: &Path) -> anyhow::Result<String> {
    let path = state_dir.join("host-id");
    match std::fs::read_to_string(&path) {
        Ok(s) if is_valid_id(s.trim()) => return Ok(s.trim().to_string()),
        Ok(_) => {
            tracing::warn!(path = %path.display(), "host id file is malformed; making a new one")
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    let id: String = (0..16)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect();
    let tmp = state_dir.join("host-id.tmp");
    std::fs::write(&tmp, format!("{id}\n"))
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    Ok(id)
}

fn is_valid_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The services whose daemons are installed here (what the host can offer a cluster).
pub fn services() -> Vec<String> {
    let has = |bins: &[&str]| {
        bins.iter().any(|b| {
            ["/usr/bin", "/usr/sbin", "/snap/bin", "/usr/local/bin"]
                .iter()
                .any(|d| Path::new(d).join(b).exists())
        })
    };
    let mut v = Vec::new();
    if has(&["lxd"]) {
        v.push("lxd".to_string());
    }
    if has(&["ovn-controller", "ovn-northd"]) {
        v.push("ovn".to_string());
    }
    if has(&["ceph-mon", "ceph-osd"]) {
        v.push("ceph".to_string());
    }
    v
}

/// The name to advertise: configured, else the host name's first label.
pub fn name(configured: Option<&str>) -> String {
    configured
        .map(str::to_string)
        .or_else(|| {
            nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .map(|h| h.split('.').next().unwrap_or_default().to_string())
        })
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "microcloud".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_id_is_created_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let a = host_id(dir.path()).unwrap();
        assert!(is_valid_id(&a));
        assert_eq!(host_id(dir.path()).unwrap(), a);
        std::fs::write(dir.path().join("host-id"), "garbage").unwrap();
        let b = host_id(dir.path()).unwrap();
        assert!(is_valid_id(&b) && b != a);
    }

    #[test]
    fn configured_name_wins() {
        assert_eq!(name(Some("h1")), "h1");
        assert!(!name(None).is_empty());
    }
}
