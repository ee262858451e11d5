//! What is mounted and what is swap: pure parsers for `/proc/self/mountinfo` and `/proc/swaps`
//! plus the matching of those entries to a block device.

use std::path::{Path, PathBuf};

/// One line of mountinfo, reduced to what identifies the device and where it is mounted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    /// Field 3, `major:minor` of `st_dev` (an anonymous `0:N` for btrfs, overlay, tmpfs).
    pub devnum: String,
    /// Field 5, the mount point, unescaped.
    pub mount_point: String,
    pub fs_type: String,
    /// The mount source after the ` - ` separator (`/dev/sda1`, `tmpfs`, ...), unescaped.
    pub source: String,
    /// `source` with symlinks resolved (`/dev/mapper/x` → `/dev/dm-0`), filled by
    /// `MountTable::read` so matching many disks costs no further syscalls.
    pub resolved: Option<PathBuf>,
}

/// Undo the kernel's octal escaping (`\040` for a space, `\011`, `\012`, `\134`) in
/// mountinfo and /proc/swaps path fields.
pub fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            let digits = &b[i + 1..i + 4];
            if digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                let v = digits
                    .iter()
                    .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                if let Ok(byte) = u8::try_from(v) {
                    out.push(byte);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parse mountinfo text; malformed lines are skipped (the kernel does not produce them).
pub fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            // Optional fields (shared:N, master:N, ...) sit between field 6 and the "-".
            let sep = fields.iter().position(|f| *f == "-")?;
            if sep < 6 || fields.len() < sep + 3 {
                return None;
            }
            Some(MountEntry {
                devnum: fields[2].to_string(),
                mount_point: unescape_octal(fields[4]),
                fs_type: fields[sep + 1].to_string(),
                source: unescape_octal(fields[sep + 2]),
                resolved: None,
            })
        })
        .collect()
}

/// Parse /proc/swaps into the active swap areas' file names (devices or swap files).
pub fn parse_swaps(text: &str) -> Vec<String> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            // The name is escaped, so the first whitespace ends it.
            line.split_whitespace().next().map(unescape_octal)
        })
        .collect()
}

/// The kernel's mount and swap tables, read once per probe.
#[derive(Debug, Clone, Default)]
pub struct MountTable {
    pub mounts: Vec<MountEntry>,
    /// Active swap areas: the name as listed and its resolved path.
    pub swaps: Vec<(String, Option<PathBuf>)>,
}

/// Resolve an absolute source path; pseudo sources (`tmpfs`, `udev`) stay unresolved.
fn resolve(source: &str) -> Option<PathBuf> {
    source
        .starts_with('/')
        .then(|| std::fs::canonicalize(source).ok())
        .flatten()
}

impl MountTable {
    /// Read `proc/self/mountinfo` and `proc/swaps` under `proc_root`. Missing files mean an empty
    /// table plus a warning, since "not mounted" would otherwise be a guess.
    pub fn read(proc_root: &Path) -> (Self, Vec<String>) {
        let mut warnings = Vec::new();
        let mut read = |p: PathBuf| match std::fs::read_to_string(&p) {
            Ok(s) => s,
            Err(e) => {
                warnings.push(format!(
                    "{} could not be read ({e}): mounts and swap of disks are unknown",
                    p.display()
                ));
                String::new()
            }
        };
        let mut mounts = parse_mountinfo(&read(proc_root.join("self/mountinfo")));
        for m in &mut mounts {
            m.resolved = resolve(&m.source);
        }
        let swaps = parse_swaps(&read(proc_root.join("swaps")))
            .into_iter()
            .map(|s| {
                let r = resolve(&s);
                (s, r)
            })
            .collect();
        (MountTable { mounts, swaps }, warnings)
    }

    /// Mount points of the block device `devnum` whose node is `/dev/<name>`.
    ///
    /// Matching by source path as well as by major:minor is what catches btrfs, whose
    /// mountinfo entry carries an anonymous `0:N` device number.
    pub fn mount_points(&self, devnum: &str, node: &DevNode) -> Vec<String> {
        let mut v: Vec<String> = self
            .mounts
            .iter()
            .filter(|m| m.devnum == devnum || node.matches(&m.source, m.resolved.as_deref()))
            .map(|m| m.mount_point.clone())
            .collect();
        v.sort();
        v.dedup();
        v
    }

    pub fn is_swap(&self, node: &DevNode) -> bool {
        self.swaps
            .iter()
            .any(|(s, r)| node.matches(s, r.as_deref()))
    }
}

/// The ways a path in mountinfo or /proc/swaps can name one device node.
#[derive(Debug, Clone)]
pub struct DevNode {
    /// `/dev/<name>` as the host names it.
    pub canonical: String,
    /// Where the node lives under the probe's dev root (differs for fake trees).
    pub under_root: PathBuf,
}

impl DevNode {
    pub fn new(dev_root: &Path, name: &str) -> Self {
        DevNode {
            canonical: format!("/dev/{name}"),
            under_root: dev_root.join(name),
        }
    }

    /// Whether `source` (resolved: `resolved`) names this node directly or through symlinks
    /// (`/dev/mapper/x`, `/dev/disk/by-uuid/...`).
    pub fn matches(&self, source: &str, resolved: Option<&Path>) -> bool {
        [Some(Path::new(source)), resolved]
            .into_iter()
            .flatten()
            .any(|p| p == Path::new(&self.canonical) || p == self.under_root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
35 22 0:31 / /srv/my\\040data rw,relatime shared:7 master:2 - btrfs /dev/loop3 rw,space_cache=v2
36 22 7:4 / /mnt/x rw - xfs /dev/loop4 rw
37 22 0:5 / /dev rw,nosuid shared:2 - devtmpfs udev rw,size=1k
garbage line
";

    #[test]
    fn mountinfo_fields_and_optional_fields() {
        let m = parse_mountinfo(MOUNTINFO);
        assert_eq!(m.len(), 4);
        assert_eq!(m[0].devnum, "254:0");
        assert_eq!(m[0].mount_point, "/");
        assert_eq!(m[0].source, "/dev/vda");
        assert_eq!(m[1].mount_point, "/srv/my data");
        assert_eq!(m[1].fs_type, "btrfs");
        assert_eq!(m[1].source, "/dev/loop3");
        assert_eq!(m[3].source, "udev");
    }

    #[test]
    fn octal_escapes() {
        assert_eq!(unescape_octal("/a\\040b"), "/a b");
        assert_eq!(unescape_octal("/t\\011ab\\012nl\\134bs"), "/t\tab\nnl\\bs");
        // Not an escape: left alone.
        assert_eq!(unescape_octal("/x\\09"), "/x\\09");
        assert_eq!(unescape_octal("end\\"), "end\\");
        assert_eq!(unescape_octal("\\04"), "\\04");
    }

    #[test]
    fn swaps() {
        let text = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n\
                    /dev/loop7                              partition\t2097148\t\t0\t\t-2\n\
                    /swap\\040file                          file\t\t1024\t\t0\t\t-3\n";
        assert_eq!(parse_swaps(text), vec!["/dev/loop7", "/swap file"]);
        assert!(parse_swaps("Filename Type Size Used Priority\n").is_empty());
    }

    #[test]
    fn matching_by_devnum_and_by_source() {
        let t = MountTable {
            mounts: parse_mountinfo(MOUNTINFO),
            swaps: vec![("/dev/loop7".into(), None)],
        };
        let dev = Path::new("/nonexistent-dev");
        // btrfs: anonymous 0:31, found by source only.
        assert_eq!(
            t.mount_points("7:3", &DevNode::new(dev, "loop3")),
            vec!["/srv/my data"]
        );
        assert_eq!(
            t.mount_points("7:4", &DevNode::new(dev, "loop4")),
            vec!["/mnt/x"]
        );
        assert!(t
            .mount_points("7:5", &DevNode::new(dev, "loop5"))
            .is_empty());
        assert!(t.is_swap(&DevNode::new(dev, "loop7")));
        assert!(!t.is_swap(&DevNode::new(dev, "loop3")));
        // A fake dev root: the source names the node under it.
        let fake = DevNode::new(Path::new("/tmp/fake/dev"), "sdz");
        assert!(fake.matches("/tmp/fake/dev/sdz", None));
        assert!(!fake.matches("udev", None));
        // Through a symlink (/dev/mapper/x, /dev/disk/by-uuid/...): the resolved path counts.
        assert!(fake.matches("/dev/disk/by-uuid/1", Some(Path::new("/dev/sdz"))));
    }
}
