//! `microcloud-lab`: bring lab hosts (network + mount namespaces on one machine, optionally with
//! loop disks and their own LXD) up and down, run commands in them, for the demo, benchmarks and
//! hands-on debugging. Needs root.

use std::process::{Command, ExitCode};

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use microcloud::cli::output::{table, write_structured, Format};
use microcloud::lab::{parse_size, Bridge, Host, HostSpec, Lab, LabSpec};

const DEFAULT_PREFIX: &str = "mcl";

#[derive(Debug, Parser)]
#[command(
    name = "microcloud-lab",
    version,
    about = "Lab hosts as network namespaces on one machine"
)]
struct Cli {
    /// Log verbosity: -v info, -vv debug (or set RUST_LOG).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Create a lab and leave it running; prints its hosts and addresses.
    Up {
        /// Hosts on the cluster subnet, named micro01, micro02, …
        #[arg(long, default_value_t = 3)]
        hosts: usize,
        /// Lab name: [a-z0-9]{1,12}; namespaces are PREFIX-hub and PREFIX-HOST.
        #[arg(long, default_value = DEFAULT_PREFIX)]
        prefix: String,
        /// Give every host a second link eth1 into its own bridge and subnet.
        #[arg(long)]
        second_link: bool,
        /// Give every host an unaddressed uplink eth2 into an uplink bridge.
        #[arg(long)]
        uplink: bool,
        /// Add K more hosts on another subnet of the same cluster bridge.
        #[arg(long, value_name = "K", default_value_t = 0)]
        other_subnet: usize,
        /// Add a 224.0.0.0/4 route on eth0 (for one-shot multicast tools).
        #[arg(long)]
        multicast_route: bool,
        /// Attach N sparse loop disks to every host (allow-listed in its microcloudd.yaml).
        #[arg(long, value_name = "N", default_value_t = 0)]
        disks: usize,
        /// Size of each loop disk: bytes or e.g. 512M, 10GiB (sparse).
        #[arg(long, value_name = "SIZE", default_value = "8GiB")]
        disk_size: String,
        /// Start LXD in every host (its own /var/lib/lxd) and wait until it is ready.
        #[arg(long)]
        lxd: bool,
        /// Start microcloudd in every host (the one next to this binary), as systemd would.
        #[arg(long)]
        agents: bool,
        #[arg(short, long, value_enum, default_value_t)]
        format: Format,
    },
    /// Tear a lab down (also the leftovers of a crashed run).
    Down {
        #[arg(long, default_value = DEFAULT_PREFIX)]
        prefix: String,
    },
    /// Show a running lab's hosts and addresses.
    Show {
        #[arg(long, default_value = DEFAULT_PREFIX)]
        prefix: String,
        #[arg(short, long, value_enum, default_value_t)]
        format: Format,
    },
    /// Run a command inside a lab host; exits with its status.
    Exec {
        #[arg(long, default_value = DEFAULT_PREFIX)]
        prefix: String,
        host: String,
        #[arg(last = true, required = true)]
        cmd: Vec<String>,
    },
    /// List the labs on this machine.
    List {
        #[arg(short, long, value_enum, default_value_t)]
        format: Format,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    microcloud::logging::init_cli(cli.verbose);
    match run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cmd: Cmd) -> anyhow::Result<ExitCode> {
    let out = &mut std::io::stdout().lock();
    match cmd {
        Cmd::Up {
            hosts,
            prefix,
            second_link,
            uplink,
            other_subnet,
            multicast_route,
            disks,
            disk_size,
            lxd,
            agents,
            format,
        } => {
            let size = parse_size(&disk_size)?;
            let mut spec = LabSpec::new(&prefix).multicast_route(multicast_route);
            for i in 1..=hosts + other_subnet {
                let mut h = HostSpec::new(format!("micro{i:02}")).subnet(u8::from(i > hosts));
                if second_link {
                    h = h.second_link(0);
                }
                if uplink {
                    h = h.uplink();
                }
                if disks > 0 {
                    h = h.disks(disks, size);
                }
                spec = spec.host(h);
            }
            let started = std::time::Instant::now();
            let mut lab = Lab::up(spec).context("bringing the lab up")?;
            let up = started.elapsed();
            if lxd {
                // A failure drops `lab` unpersisted, which tears it down with every LXD.
                start_lxds(&lab)?;
            }
            if agents {
                start_agents(&lab)?;
            }
            lab.persist();
            eprintln!(
                "lab {prefix} up in {up:.2?}{}; tear down with: microcloud-lab down --prefix {prefix}",
                if lxd {
                    format!(", LXD ready in every host after {:.2?}", started.elapsed())
                } else {
                    String::new()
                }
            );
            show(out, &lab, format)?;
        }
        Cmd::Down { prefix } => {
            let n = Lab::down_stale(&prefix)?;
            eprintln!("lab {prefix}: removed {n} namespaces");
        }
        Cmd::Show { prefix, format } => show(out, &Lab::open(&prefix)?, format)?,
        Cmd::Exec { prefix, host, cmd } => {
            let lab = Lab::open(&prefix)?;
            let mut c = Command::new(&cmd[0]);
            c.args(&cmd[1..]);
            let status = lab
                .host(&host)?
                .wrap(&c)
                .status()
                .with_context(|| format!("running {}", cmd[0]))?;
            return Ok(match status.code() {
                Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
                None => bail!("{} killed by {status}", cmd[0]),
            });
        }
        Cmd::List { format } => {
            let labs = Lab::list();
            if !write_structured(out, format, &labs)? {
                let mut t = table(&["PREFIX", "HOSTS", "ATTACHABLE", "DIR"]);
                for l in &labs {
                    t.add_row(vec![
                        l.prefix.clone(),
                        l.hosts.to_string(),
                        l.attachable.to_string(),
                        l.dir.display().to_string(),
                    ]);
                }
                use std::io::Write;
                writeln!(out, "{t}")?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Start every host's LXD in parallel and leave them running past this process (`down`
/// kills them with the lab).
fn start_lxds(lab: &Lab) -> anyhow::Result<()> {
    std::thread::scope(|s| {
        let running: Vec<_> = lab
            .hosts()
            .iter()
            .map(|h| s.spawn(move || h.start_lxd()))
            .collect();
        let mut first_err = None;
        for t in running {
            match t.join().expect("lxd start thread") {
                Ok(p) => {
                    p.detach();
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        first_err.map_or(Ok(()), |e| Err(e).context("starting LXD"))
    })
}

/// Start microcloudd in every host, left running past this process like the LXDs.
fn start_agents(lab: &Lab) -> anyhow::Result<()> {
    let exe = std::env::current_exe()
        .context("finding this binary")?
        .with_file_name("microcloudd");
    if !exe.exists() {
        bail!(
            "{} not found: build it first (cargo build --bins)",
            exe.display()
        );
    }
    for h in lab.hosts() {
        h.start_agent(&exe, &[])
            .with_context(|| format!("{}: starting microcloudd", h.name()))?
            .detach();
    }
    Ok(())
}

fn show(out: &mut impl std::io::Write, lab: &Lab, format: Format) -> anyhow::Result<()> {
    if write_structured(out, format, lab)? {
        return Ok(());
    }
    let mut t = table(&[
        "HOST",
        "NETNS",
        "ETH0 IPV4",
        "ETH0 IPV6",
        "ETH0 LINK-LOCAL",
        "ETH1",
        "ETH2",
        "DISKS",
    ]);
    for h in lab.hosts() {
        t.add_row(vec![
            h.name().to_string(),
            h.netns().to_string(),
            format!("{}/{}", h.addr_v4(), microcloud::lab::V4_PREFIX),
            format!("{}/{}", h.addr_v6(), microcloud::lab::V6_PREFIX),
            h.link_local_v6().to_string(),
            second(h),
            if h.link(Bridge::Uplink).is_some() {
                "uplink".into()
            } else {
                "-".into()
            },
            if h.disks().is_empty() {
                "-".into()
            } else {
                h.disks()
                    .iter()
                    .map(|d| d.name())
                    .collect::<Vec<_>>()
                    .join(" ")
            },
        ]);
    }
    writeln!(out, "{t}")?;
    writeln!(
        out,
        "hub: {} (bridges br0 cluster, br1 second, br2 uplink); dir: {}",
        lab.hub_netns(),
        lab.dir().display()
    )?;
    Ok(())
}

fn second(h: &Host) -> String {
    h.link(Bridge::Second)
        .and_then(|l| l.v4.zip(l.v6))
        .map_or_else(
            || "-".into(),
            |(v4, v6)| format!("{v4}/{} {v6}", microcloud::lab::V4_PREFIX),
        )
}
