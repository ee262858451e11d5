//! `microcloud join`: prove the session passphrase to the initiator, show the verification code
//! both sides display, then wait for the initiator's operator to select this host.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::signal::unix::{signal, Signal, SignalKind};

use super::output::{write_structured, Format};
use crate::api::client::{Client, ClientError};
use crate::api::local_trust::{Identity, JoinRequest};
use crate::daemon::trust::JoinView;
use crate::preseed::validate::Role;

#[derive(Debug, clap::Args)]
pub struct JoinArgs {
    /// A MicroCloud preseed (YAML): its session part gives the passphrase and the initiator.
    #[arg(long, value_name = "FILE")]
    pub preseed: Option<PathBuf>,

    /// The session passphrase (asked for on the terminal when not given).
    #[arg(long, value_name = "WORDS", env = "MICROCLOUD_SESSION_PASSPHRASE")]
    pub passphrase: Option<String>,

    /// The initiator's name, when several hosts have open sessions.
    #[arg(long, value_name = "NAME")]
    pub initiator: Option<String>,

    /// Reach the initiator at IP or IP:PORT instead of finding it with mDNS.
    #[arg(long, value_name = "ADDR")]
    pub initiator_address: Option<String>,

    /// Only look for the initiator in this subnet (CIDR).
    #[arg(long, value_name = "CIDR")]
    pub lookup_subnet: Option<String>,

    /// How long to look for the initiator (seconds).
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub lookup_timeout: u64,

    /// How long to wait for the initiator's operator to decide (seconds).
    #[arg(long, value_name = "SECS", default_value_t = 3600)]
    pub session_timeout: u64,

    /// Output format of the final report.
    #[arg(long, short = 'f', value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

pub fn exec(socket: &Path, args: &JoinArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let client = Client::new(socket);
    rt.block_on(async {
        if let Some(path) = &args.preseed {
            let text = super::init::read_preseed(path)?;
            let preseed = crate::preseed::parse(&text)?;
            let me: Identity = client.get("/1.0/identity").await?;
            let plan = preseed.session_plan(&me.name, &[])?;
            let Role::Joiner { initiator, initiator_address } = plan.role else {
                bail!("this host ({}) is the preseed's initiator: run `microcloud init --preseed` here", me.name);
            };
            let j = JoinArgs {
                preseed: None,
                passphrase: args.passphrase.clone().or(plan.passphrase),
                initiator,
                initiator_address: args.initiator_address.clone().or(initiator_address.map(|a| a.to_string())),
                lookup_subnet: plan.lookup_subnet.map(|p| p.to_string()),
                lookup_timeout: plan.lookup_timeout.as_secs(),
                session_timeout: plan.session_timeout.as_secs(),
                format: args.format,
            };
            return run_join(&client, &j).await;
        }
        run_join(&client, args).await
    })
}

fn ask_passphrase() -> anyhow::Result<String> {
    if !std::io::stdin().is_terminal() {
        bail!("no passphrase: give --passphrase (or MICROCLOUD_SESSION_PASSPHRASE) or --preseed");
    }
    eprint!("Session passphrase (shown by `microcloud init` on the initiator): ");
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim().to_string())
}

/// The join itself, shared with `init --preseed` on a joiner.
pub async fn run_join(client: &Client, args: &JoinArgs) -> anyhow::Result<()> {
    let passphrase = match &args.passphrase {
        Some(p) => p.clone(),
        None => tokio::task::spawn_blocking(ask_passphrase).await??,
    };
    if args.initiator_address.is_none() {
        eprintln!(
            "Looking for the initiator (up to {} s)...",
            args.lookup_timeout
        );
    }
    let req = JoinRequest {
        passphrase,
        initiator_address: args.initiator_address.clone(),
        initiator: args.initiator.clone(),
        lookup_timeout_secs: Some(args.lookup_timeout),
        lookup_subnet: args.lookup_subnet.clone(),
    };
    let view: JoinView = match client.post_json("/1.0/join", &req).await {
        Ok(v) => v,
        Err(ClientError::Api { message, kind, .. }) => {
            let hint = match kind.as_deref() {
                Some("wrong_passphrase") => "\nCheck the passphrase shown by `microcloud init` and try again; the session stays open.",
                Some("no_session") => "\nStart `microcloud init` on the initiator first.",
                Some("session_ended") => "\nAsk the initiator's operator to run `microcloud init` again.",
                Some("unreachable") => "\nCheck the address and that microcloudd runs there (peer API port 9443).",
                _ => "",
            };
            bail!("{message}{hint}");
        }
        Err(e) => return Err(e.into()),
    };
    eprintln!(
        "Found initiator {} at {} (certificate {}).",
        view.initiator,
        view.address,
        &view.initiator_fingerprint[..12]
    );
    eprintln!("\n    Verification code: {}\n", view.code);
    eprintln!(
        "Check that {} shows the same code for this host, then wait for it to select this host.",
        view.initiator
    );

    // One SIGINT stream for the whole wait: a `ctrl_c()` made afresh each turn misses a signal
    // that arrives while a request is in flight (the handler is installed, nobody listens).
    let mut sigint = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let deadline = Instant::now() + Duration::from_secs(args.session_timeout);
    let done = loop {
        let v: JoinView = client.get("/1.0/join").await?;
        if v.state != "verified" {
            break v;
        }
        if Instant::now() > deadline {
            let _ = client.post("/1.0/join/leave").await;
            bail!(
                "the initiator did not decide within {} s; left the session",
                args.session_timeout
            );
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            _ = sigint.recv() => {
                let _ = client.post("/1.0/join/leave").await;
                bail!("interrupted: left the session");
            }
        }
    };
    match done.state.as_str() {
        "selected" => {
            eprintln!(
                "Trusted by {} (certificate {}); waiting for it to form the cluster...",
                done.initiator,
                &done.initiator_fingerprint[..12]
            );
            let result =
                wait_for_bootstrap(client, &done, args.session_timeout, &mut sigint).await?;
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            let mut value = serde_json::to_value(&done)?;
            value["bootstrap"] = serde_json::to_value(&result)?;
            if !write_structured(&mut out, args.format, &value)? {
                writeln!(
                    out,
                    "Trusted by {} (certificate {}).",
                    done.initiator, done.initiator_fingerprint
                )?;
                writeln!(out, "{}: {}", done.initiator, result.message)?;
            }
            out.flush()?;
            if !result.ok {
                bail!(
                    "the bootstrap failed on {}: {}",
                    done.initiator,
                    result.message
                );
            }
            Ok(())
        }
        _ => bail!(
            "{}",
            done.reason
                .unwrap_or_else(|| format!("the session ended ({})", done.state))
        ),
    }
}

/// Wait until the initiator says how the bootstrap ended (it drives this host's LXD through
/// this host's daemon meanwhile).
async fn wait_for_bootstrap(
    client: &Client,
    done: &JoinView,
    timeout_secs: u64,
    sigint: &mut Signal,
) -> anyhow::Result<crate::api::lxd::BootstrapResult> {
    let deadline = Instant::now() + Duration::from_secs(timeout_secs);
    loop {
        let r: Option<crate::api::lxd::BootstrapResult> = client
            .get("/1.0/bootstrap/result")
            .await
            .context("asking this host's microcloudd for the bootstrap result")?;
        if let Some(r) = r {
            return Ok(r);
        }
        if Instant::now() > deadline {
            bail!(
                "{} did not finish the bootstrap within {timeout_secs} s; see `microcloud init` there",
                done.initiator
            );
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            _ = sigint.recv() => bail!(
                "interrupted: stopped waiting (the bootstrap goes on, driven by {})",
                done.initiator
            ),
        }
    }
}
