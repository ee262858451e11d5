//! microcloud: a host agent and CLI that turns a few bare-metal Linux machines into one LXD
//! cluster, driven by exact hardware facts read from the kernel.
//!
//! Layout: `inventory` probes and judges hardware (`inventory::probe` touches the OS,
//! `inventory::rules` decides), `net` wraps rtnetlink, `cli` holds one file per subcommand,
//! `config` the schema shared by flags and the config file.

pub mod api;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod daemon;
pub mod discovery;
pub mod inventory;
pub mod lab;
pub mod logging;
pub mod net;
pub mod preseed;
pub mod services;
pub mod trust;
