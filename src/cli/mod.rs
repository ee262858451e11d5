//! The `microcloud` command line: argument schema and dispatch, one file per subcommand.

pub mod bootstrap;
pub mod discover;
pub mod disk_prompt;
pub mod init;
pub mod inventory;
pub mod join;
pub mod output;
pub mod plan_view;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "microcloud",
    version,
    about = "Turn a few Linux machines into one LXD cluster, driven by exact hardware facts",
    long_about = "microcloud inspects this host's hardware as the kernel reports it (rtnetlink, \
udev, libblkid), finds the other hosts with mDNS, establishes trust with a passphrase, and \
bootstraps an LXD cluster across them (OVN networking and Ceph storage come later). Every \
device it refuses comes with the reason."
)]
pub struct Cli {
    /// Config file shared with microcloudd (YAML; keys are the long flag names).
    #[arg(long, global = true, value_name = "FILE", env = "MICROCLOUD_CONFIG")]
    pub config: Option<PathBuf>,

    /// The daemon's control socket.
    #[arg(long, global = true, value_name = "PATH", env = "MICROCLOUD_CONTROL_SOCKET",
          default_value = crate::api::DEFAULT_CONTROL_SOCKET)]
    pub control_socket: PathBuf,

    /// Log verbosity: -v info, -vv debug, -vvv trace (or set RUST_LOG).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show every NIC and disk of this host with its facts, and whether microcloud may use it
    /// (and if not, why).
    Inventory(inventory::InventoryArgs),
    /// List the microcloud agents found with mDNS on this host's link-local subnets. Untrusted:
    /// anyone on the LAN can advertise.
    Discover(discover::DiscoverArgs),
    /// Form a cluster from this host: open a trust session, let the other hosts join with its
    /// passphrase, select them after comparing verification codes, then plan and bootstrap
    /// LXD on every member (clustering, the local pool, the network, the default profile).
    Init(init::InitArgs),
    /// Join the session an initiator opened: enter its passphrase, compare the verification
    /// code, wait to be selected, then for the initiator to form the cluster (it drives this
    /// host's LXD through this host's microcloudd).
    Join(join::JoinArgs),
    /// Run `init` from a MicroCloud preseed read on standard input (the same YAML on every
    /// host; each takes its role from it).
    Preseed {
        /// Print the bootstrap plan and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Output format of the final report.
        #[arg(long, short = 'f', value_enum, default_value_t = output::Format::Table)]
        format: output::Format,
    },
}

/// Run the parsed command line; the binary only sets up logging and the exit code.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Inventory(args) => {
            inventory::exec(cli.config.as_deref(), &cli.control_socket, &args)
        }
        Command::Discover(args) => discover::exec(&cli.control_socket, &args),
        Command::Init(args) => init::exec(&cli.control_socket, &args),
        Command::Join(args) => join::exec(&cli.control_socket, &args),
        Command::Preseed { dry_run, format } => init::exec(
            &cli.control_socket,
            &init::InitArgs {
                preseed: Some("-".into()),
                session_passphrase: None,
                session_timeout: 3600,
                select: vec![],
                lookup_timeout: 60,
                dry_run,
                trust_only: false,
                local_disk: vec![],
                format,
            },
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
