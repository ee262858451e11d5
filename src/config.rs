//! The agent's configuration: one schema for the config file (YAML, kebab-case keys equal to the
//! long flag names) and the command-line flags, coreos-installer style. Flags add to the file.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Where `microcloudd` and `microcloud inventory` look when `--config` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/microcloud/microcloudd.yaml";

/// Options that decide what the inventory offers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, clap::Args)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct InventoryConfig {
    /// Only offer disks matching GLOB (kernel name, /dev path or /dev/disk/by-* link; repeatable).
    /// Loop, zram and RAM disks are offered only when named here.
    #[arg(long = "allow-disk", value_name = "GLOB")]
    #[serde(default)]
    pub allow_disk: Vec<String>,
}

/// Options that decide where discovery runs and what it advertises.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, clap::Args)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct DiscoveryConfig {
    /// Run mDNS only on interfaces matching GLOB (repeatable); also admits interfaces left out
    /// by default (containers, tunnels, bridge ports).
    #[arg(long = "mdns-allow-interface", value_name = "GLOB")]
    #[serde(default)]
    pub mdns_allow_interface: Vec<String>,

    /// Never run mDNS on interfaces matching GLOB (repeatable).
    #[arg(long = "mdns-deny-interface", value_name = "GLOB")]
    #[serde(default)]
    pub mdns_deny_interface: Vec<String>,

    /// Name to advertise instead of the host name (one DNS label).
    #[arg(long = "name", value_name = "NAME")]
    #[serde(default)]
    pub name: Option<String>,

    /// Port of the peer API (HTTPS), advertised in the SRV record; default 9443.
    #[arg(long = "peer-port", value_name = "PORT")]
    #[serde(default)]
    pub peer_port: Option<u16>,

    /// Serve the peer API on this address only (`IP`, or `IP:PORT` which also sets the port);
    /// default: every address.
    #[arg(long = "peer-address", value_name = "ADDR")]
    #[serde(default)]
    pub peer_address: Option<String>,
}

/// Options that say where the services this agent drives are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, clap::Args)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ServicesConfig {
    /// LXD's unix socket; default: `$LXD_DIR/unix.socket`, then the snap's, then Debian's
    /// `/var/lib/lxd/unix.socket`.
    #[arg(long = "lxd-socket", value_name = "PATH")]
    #[serde(default)]
    pub lxd_socket: Option<PathBuf>,
}

/// The whole config file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct AgentConfig {
    #[serde(flatten)]
    pub inventory: InventoryConfig,
    #[serde(flatten)]
    pub discovery: DiscoveryConfig,
    #[serde(flatten)]
    pub services: ServicesConfig,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path}: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_yaml::Error,
    },
}

impl AgentConfig {
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        if text.trim().is_empty() {
            return Ok(AgentConfig::default());
        }
        serde_yaml::from_str(text).map_err(|source| ConfigError::Parse {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Load `path` if given (it must exist), else the default path if it exists, else defaults.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let (path, required) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from(DEFAULT_CONFIG_PATH), false),
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::parse(&path, &text),
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(ConfigError::Read { path, source }),
        }
    }

    /// The file's settings with the command line's added.
    pub fn merged_with(mut self, flags: &InventoryConfig) -> Self {
        self.inventory
            .allow_disk
            .extend(flags.allow_disk.iter().cloned());
        self
    }

    /// The file's discovery settings with the command line's added (single values: flags win).
    pub fn merged_discovery(mut self, flags: &DiscoveryConfig) -> Self {
        let d = &mut self.discovery;
        d.mdns_allow_interface
            .extend(flags.mdns_allow_interface.iter().cloned());
        d.mdns_deny_interface
            .extend(flags.mdns_deny_interface.iter().cloned());
        if flags.name.is_some() {
            d.name.clone_from(&flags.name);
        }
        if flags.peer_port.is_some() {
            d.peer_port = flags.peer_port;
        }
        if flags.peer_address.is_some() {
            d.peer_address.clone_from(&flags.peer_address);
        }
        self
    }

    /// The file's service settings with the command line's (flags win).
    pub fn merged_services(mut self, flags: &ServicesConfig) -> Self {
        if flags.lxd_socket.is_some() {
            self.services.lxd_socket.clone_from(&flags.lxd_socket);
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_allow_disk_and_rejects_unknown_keys() {
        let p = Path::new("x.yaml");
        let c = AgentConfig::parse(p, "allow-disk: [loop7, /dev/sdb]\n").unwrap();
        assert_eq!(c.inventory.allow_disk, vec!["loop7", "/dev/sdb"]);
        let e = AgentConfig::parse(p, "allow-disks: [loop7]\n").unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("x.yaml") && msg.contains("allow-disks"),
            "{msg}"
        );
        assert_eq!(AgentConfig::parse(p, "\n").unwrap(), AgentConfig::default());
    }

    #[test]
    fn discovery_keys_parse_and_flags_win() {
        let c = AgentConfig::parse(
            Path::new("x"),
            "mdns-allow-interface: [eth*]\nname: h1\npeer-port: 9443\nallow-disk: [sdb]\n",
        )
        .unwrap();
        assert_eq!(c.discovery.mdns_allow_interface, vec!["eth*"]);
        assert_eq!(c.inventory.allow_disk, vec!["sdb"]);
        let m = c.merged_discovery(&DiscoveryConfig {
            name: Some("h2".into()),
            ..Default::default()
        });
        assert_eq!(m.discovery.name.as_deref(), Some("h2"));
        assert_eq!(m.discovery.peer_port, Some(9443));
    }

    #[test]
    fn flags_add_to_file() {
        let c = AgentConfig::parse(Path::new("x"), "allow-disk: [a]").unwrap();
        let m = c.merged_with(&InventoryConfig {
            allow_disk: vec!["b".into()],
        });
        assert_eq!(m.inventory.allow_disk, vec!["a", "b"]);
    }

    #[test]
    fn explicit_missing_file_is_an_error_naming_it() {
        let e = AgentConfig::load(Some(Path::new("/nonexistent/mc.yaml"))).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/mc.yaml"));
    }
}
