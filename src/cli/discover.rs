//! `microcloud discover`: ask microcloudd which agents it found on this host's link-local
//! subnets, optionally waiting until an expected number are in scope.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::output::{table, write_structured, Format};
use crate::api::client::Client;
use crate::api::PeersResponse;

#[derive(Debug, clap::Args)]
pub struct DiscoverArgs {
    /// Wait at most this long (seconds) for peers to answer.
    #[arg(long, value_name = "SECS", default_value_t = 3.0)]
    pub wait: f64,

    /// Return as soon as N peers are in scope; fail if fewer are found within --wait.
    #[arg(long, value_name = "N")]
    pub expect: Option<usize>,

    /// Also show peers seen only outside this host's subnets (for diagnosis; never offered).
    #[arg(long)]
    pub all: bool,

    /// Start a fresh browse first (forget cached answers): measures discovery from scratch.
    #[arg(long)]
    pub fresh: bool,

    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

pub fn exec(socket: &Path, args: &DiscoverArgs) -> anyhow::Result<()> {
    if !(args.wait.is_finite() && args.wait >= 0.0) {
        bail!(
            "--wait must be a non-negative number of seconds, got {}",
            args.wait
        );
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let resp = rt.block_on(discover(socket, args))?;
    // One write at the end instead of one per line (stdout is line-buffered).
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if !write_structured(&mut out, args.format, &resp)? {
        render(&mut out, &resp)?;
    }
    std::io::Write::flush(&mut out)?;
    if let Some(n) = args.expect {
        let found = resp.peers.iter().filter(|p| p.in_scope).count();
        if found < n {
            bail!(
                "expected {n} peers in scope, found {found} within {} s",
                args.wait
            );
        }
    }
    Ok(())
}

async fn discover(socket: &Path, args: &DiscoverArgs) -> anyhow::Result<PeersResponse> {
    let client = Client::new(socket);
    let uri = if args.all {
        "/1.0/peers?all=true"
    } else {
        "/1.0/peers"
    };
    let deadline = Instant::now() + Duration::from_secs_f64(args.wait);
    // Without --expect there is no way to know when everyone has answered: ask for a fresh
    // browse and collect answers for the whole wait.
    if args.expect.is_none() {
        client.post("/1.0/peers/refresh").await?;
        tokio::time::sleep_until(deadline.into()).await;
        return Ok(client.get(uri).await?);
    }
    let n = args.expect.unwrap_or(0);
    if args.fresh {
        client.post("/1.0/peers/refresh").await?;
    }
    loop {
        let resp: PeersResponse = client.get(uri).await?;
        if resp.peers.iter().filter(|p| p.in_scope).count() >= n || Instant::now() >= deadline {
            return Ok(resp);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn render(out: &mut impl std::io::Write, resp: &PeersResponse) -> anyhow::Result<()> {
    let mut t = table(&[
        "NAME",
        "ADDRESSES",
        "STATE",
        "SERVICES",
        "VERSION",
        "FINGERPRINT",
        "IN SCOPE",
    ]);
    for p in &resp.peers {
        t.add_row(vec![
            p.name.clone(),
            p.addresses
                .iter()
                .map(|a| format!("{} ({})", a.address, a.interface))
                .collect::<Vec<_>>()
                .join("\n"),
            p.state.clone().unwrap_or_else(|| "-".into()),
            p.services.join(","),
            p.version.clone().unwrap_or_else(|| "-".into()),
            p.fingerprint.clone().unwrap_or_else(|| "-".into()),
            if p.in_scope { "yes" } else { "no" }.into(),
        ]);
    }
    writeln!(out, "{t}")?;
    Ok(())
}
