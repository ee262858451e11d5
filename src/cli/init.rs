//! `microcloud init`, session phase: open a session, show joiners as they prove the passphrase
//! (with the verification code each side shows), let the operator (or a preseed) select them,
//! then hand over to the bootstrap (`bootstrap`), or print the plan (`--dry-run`), or stop at
//! trust (`--trust-only`).

use std::collections::BTreeSet;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::join::{run_join, JoinArgs};
use super::output::{table, write_structured, Format};
use crate::api::client::Client;
use crate::api::local_trust::{
    EndRequest, Identity, MemberInventory, OpenRequest, OpenResponse, SelectRequest,
};
use crate::cluster::plan::LocalChoice;
use crate::daemon::trust::SessionView;
use crate::inventory::Inventory;
use crate::preseed::validate::Role;
use crate::trust::{JoinerState, JoinerView, SessionEvent};

#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// A MicroCloud preseed (YAML; `-` reads standard input). Its session part decides the
    /// role: on the initiator it opens the session and selects the listed systems, elsewhere it
    /// joins.
    #[arg(long, value_name = "FILE")]
    pub preseed: Option<PathBuf>,

    /// Use this passphrase instead of a generated one (at least 8 characters).
    #[arg(long, value_name = "WORDS")]
    pub session_passphrase: Option<String>,

    /// Close the session after this many seconds (at most 3600).
    #[arg(long, value_name = "SECS", default_value_t = 3600)]
    pub session_timeout: u64,

    /// Without a terminal: select these joiners by name (repeatable) once they are verified.
    #[arg(long = "select", value_name = "NAME")]
    pub select: Vec<String>,

    /// How long to wait for the expected joiners (with --select or a preseed).
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub lookup_timeout: u64,

    /// After the session, print the bootstrap plan (members, disks, pool, network, profile)
    /// and change nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Stop once the selected hosts are trusted: report them and bootstrap nothing (a later
    /// `microcloud init` forms the cluster).
    #[arg(long, conflicts_with = "dry_run")]
    pub trust_only: bool,

    /// The local pool's disk on MEMBER (repeatable, one per member; never wiped). Without a
    /// preseed or this, `init` asks on the terminal.
    #[arg(long = "local-disk", value_name = "MEMBER=DISK")]
    pub local_disk: Vec<String>,

    /// Output format of the final report.
    #[arg(long, short = 'f', value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

pub fn exec(socket: &Path, args: &InitArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(run(socket, args))
}

async fn run(socket: &Path, args: &InitArgs) -> anyhow::Result<()> {
    let client = Client::new(socket);
    let me: Identity = client.get("/1.0/identity").await?;
    let mut expected: Option<Vec<String>> = (!args.select.is_empty()).then(|| args.select.clone());
    let mut passphrase = args.session_passphrase.clone();
    let mut session_timeout = args.session_timeout;
    let mut preseed_doc = None;
    let mut lookup_timeout = args.lookup_timeout;
    if let Some(path) = &args.preseed {
        let text = read_preseed(path)?;
        let preseed = crate::preseed::parse(&text)?;
        preseed_doc = Some(preseed.clone());
        for note in preseed.check_services()? {
            eprintln!("preseed: {note}");
        }
        let inv: Inventory = client.get("/1.0/inventory").await?;
        let addrs: Vec<std::net::IpAddr> = inv
            .nics
            .iter()
            .flat_map(|n| n.addresses.iter())
            .filter_map(|a| a.split('/').next()?.parse().ok())
            .collect();
        let plan = preseed.session_plan(&me.name, &addrs)?;
        match plan.role {
            Role::Joiner {
                initiator,
                initiator_address,
            } => {
                let j = JoinArgs {
                    preseed: None,
                    passphrase: plan.passphrase,
                    initiator,
                    initiator_address: initiator_address.map(|a| a.to_string()),
                    lookup_subnet: plan.lookup_subnet.map(|p| p.to_string()),
                    lookup_timeout: plan.lookup_timeout.as_secs(),
                    session_timeout: plan.session_timeout.as_secs(),
                    format: args.format,
                };
                return run_join(&client, &j).await;
            }
            Role::Initiator { joiners } => {
                expected = Some(joiners);
                passphrase = plan.passphrase;
                session_timeout = plan.session_timeout.as_secs();
                lookup_timeout = plan.lookup_timeout.as_secs();
            }
        }
    }
    let interactive = expected.is_none();
    if interactive && !std::io::stdin().is_terminal() {
        bail!(
            "no terminal to select joiners on: give --select NAME (repeatable) or --preseed FILE"
        );
    }
    // One SIGINT stream for the whole command (a handler installed once stays installed).
    let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .context("installing the SIGINT handler")?;
    // Without a terminal nothing reads standard input (a preseed may have come on it).
    let mut lines = if interactive {
        stdin_lines()
    } else {
        tokio::sync::mpsc::channel(1).1
    };
    let opened: OpenResponse = client
        .post_json(
            "/1.0/session",
            &OpenRequest {
                passphrase,
                timeout_secs: Some(session_timeout),
            },
        )
        .await?;
    let mut err = std::io::stderr();
    writeln!(
        err,
        "Session open on {} (certificate {}).",
        opened.name,
        &opened.fingerprint[..12]
    )?;
    writeln!(
        err,
        "On each host to add, run `microcloud join` and enter the passphrase:\n\n    {}\n",
        opened.passphrase
    )?;

    let outcome = tokio::select! {
        r = select_phase(&client, expected.as_deref(), Duration::from_secs(lookup_timeout), &mut lines) => r,
        _ = sigint.recv() => Err(anyhow::anyhow!("interrupted")),
    };
    match outcome {
        Ok(chosen) => {
            let _: serde_json::Value = client
                .post_json(
                    "/1.0/session/end",
                    &EndRequest {
                        reason: "the initiator completed the selection".into(),
                        abort: false,
                    },
                )
                .await?;
            if args.trust_only {
                tell_joiners(
                    &client,
                    &me.name,
                    &chosen,
                    true,
                    "trusted; no bootstrap was run",
                )
                .await;
                return report(args.format, &chosen);
            }
            let (members, local) =
                match choose_disks(&client, args, preseed_doc.as_ref(), interactive, &mut lines)
                    .await
                {
                    Ok(x) => x,
                    Err(e) => {
                        tell_joiners(&client, &me.name, &chosen, false, &format!("{e:#}")).await;
                        return Err(e);
                    }
                };
            if args.dry_run {
                let planned = super::plan_view::build(&client, members, &local).await;
                tell_joiners(
                    &client,
                    &me.name,
                    &chosen,
                    true,
                    "dry run: nothing was changed",
                )
                .await;
                let g = planned?;
                for e in &g.lxd_errors {
                    eprintln!("warning: LXD did not answer, its drivers are unknown: {e}");
                }
                return super::plan_view::render(args.format, &g.plan, true);
            }
            let r = tokio::select! {
                r = super::bootstrap::run(&client, members, &local, args.format) => r,
                _ = sigint.recv() => Err(anyhow::anyhow!(
                    "interrupted during the bootstrap: what LXD was doing finishes there; run \
                     `microcloud init` again on every host to resume"
                )),
            };
            if let Err(e) = &r {
                // The executor tells joiners itself; this covers failures before it started.
                if !e.is::<crate::cluster::execute::BootstrapError>() {
                    tell_joiners(&client, &me.name, &chosen, false, &format!("{e:#}")).await;
                }
            }
            r
        }
        Err(e) => {
            let reason = format!("the initiator stopped: {e:#}");
            let req = EndRequest {
                reason,
                abort: true,
            };
            let end = client.post_json::<_, serde_json::Value>("/1.0/session/end", &req);
            if let Err(ee) = end.await {
                tracing::debug!("ending the session: {ee}");
            }
            Err(e)
        }
    }
}

/// The members' inventories and the local disks: from the preseed, `--local-disk`, or asked.
async fn choose_disks(
    client: &Client,
    args: &InitArgs,
    preseed: Option<&crate::preseed::Preseed>,
    interactive: bool,
    lines: &mut tokio::sync::mpsc::Receiver<String>,
) -> anyhow::Result<(Vec<MemberInventory>, LocalChoice)> {
    let members = super::plan_view::inventories(client).await?;
    let local = if preseed.is_some() {
        super::plan_view::local_choice(preseed)
    } else if !args.local_disk.is_empty() {
        super::disk_prompt::from_flags(&args.local_disk)?
    } else if interactive {
        super::disk_prompt::ask(&members, lines).await?
    } else {
        LocalChoice::default()
    };
    Ok((members, local))
}

/// Tell the selected joiners how this ended when no bootstrap told them, so they stop waiting.
async fn tell_joiners(client: &Client, me: &str, chosen: &[JoinerView], ok: bool, message: &str) {
    let via = super::bootstrap::ViaDaemon {
        client,
        me: me.to_string(),
    };
    let names = chosen.iter().map(|j| j.name.as_str());
    crate::cluster::execute::tell(&via, me, names, ok, message).await;
}

/// A preseed from a file, or from standard input for `-`.
pub fn read_preseed(path: &Path) -> anyhow::Result<String> {
    if path == Path::new("-") {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .context("reading the preseed from standard input")?;
        return Ok(s);
    }
    std::fs::read_to_string(path).with_context(|| format!("reading preseed {}", path.display()))
}

/// Show joiners and events as they come; return the selected joiners.
/// The terminal's lines, read on a thread for the whole of `init`: one reader, so the answer
/// to a later question is never swallowed by an earlier one's reader.
fn stdin_lines() -> tokio::sync::mpsc::Receiver<String> {
    let (tx, rx) = tokio::sync::mpsc::channel::<String>(1);
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if tx.blocking_send(line).is_err() {
                break;
            }
        }
    });
    rx
}

async fn select_phase(
    client: &Client,
    expected: Option<&[String]>,
    lookup: Duration,
    line_rx: &mut tokio::sync::mpsc::Receiver<String>,
) -> anyhow::Result<Vec<JoinerView>> {
    if expected.is_none() {
        eprintln!("Joiners appear below as they prove the passphrase. Compare each code with the one shown on that host.");
        eprintln!("Type the numbers to add (e.g. `1,3` or `all`) and press Enter; Ctrl-C aborts.");
    } else {
        eprintln!(
            "Waiting for {} (up to {} s)...",
            expected.unwrap_or_default().join(", "),
            lookup.as_secs()
        );
    }
    let deadline = Instant::now() + lookup;
    // Row numbers stay fixed once shown, so what the operator types matches what they saw;
    // a joiner that left keeps its number but can no longer be chosen.
    let mut shown: Vec<(JoinerView, bool)> = Vec::new();
    let mut seen_events = 0;
    loop {
        let view: SessionView = client.get("/1.0/session").await?;
        for ev in view.events.iter().skip(seen_events) {
            match ev {
                SessionEvent::JoinerLeft { name, .. } => eprintln!("  {name} left"),
                SessionEvent::AttemptFailed { name, source, attempts, max_attempts, .. } => eprintln!(
                    "  failed attempt from {name} ({source}): wrong passphrase? ({attempts} of {max_attempts} allowed)"
                ),
                SessionEvent::Ended { reason } => bail!("the session ended: {reason}"),
                SessionEvent::JoinerVerified { .. } => {}
            }
        }
        seen_events = view.events.len();
        if !view.open {
            bail!(
                "the session ended: {}",
                view.end_reason.unwrap_or_else(|| "closed".into())
            );
        }
        let current: Vec<JoinerView> = view
            .joiners
            .into_iter()
            .filter(|j| j.state != JoinerState::Rejected)
            .collect();
        for j in &current {
            if !shown.iter().any(|(s, _)| s.fingerprint == j.fingerprint) {
                shown.push((j.clone(), true));
                eprintln!(
                    " {:>2}  {:<20} {:<16} code {}   certificate {}",
                    shown.len(),
                    j.name,
                    j.source,
                    j.code,
                    j.fingerprint.short()
                );
            }
        }
        for (s, present) in shown.iter_mut() {
            *present = current.iter().any(|c| c.fingerprint == s.fingerprint);
        }
        if let Some(names) = expected {
            let have: BTreeSet<&str> = current.iter().map(|j| j.name.as_str()).collect();
            if names.iter().all(|n| have.contains(n.as_str())) {
                let r = SelectRequest {
                    names: names.to_vec(),
                    fingerprints: vec![],
                };
                let _: serde_json::Value = client.post_json("/1.0/session/select", &r).await?;
                return Ok(current
                    .into_iter()
                    .filter(|j| names.contains(&j.name))
                    .collect());
            }
            if Instant::now() > deadline {
                let missing: Vec<&str> = names
                    .iter()
                    .map(String::as_str)
                    .filter(|n| !have.contains(n))
                    .collect();
                bail!(
                    "{} did not join within {} s",
                    missing.join(", "),
                    lookup.as_secs()
                );
            }
        }
        tokio::select! {
            Some(line) = line_rx.recv() => {
                let all = line.trim().eq_ignore_ascii_case("all");
                match parse_choice(&line, shown.len()) {
                    Ok(idx) if idx.is_empty() => eprintln!("nothing selected; type numbers or `all`"),
                    Ok(idx) if !all && idx.iter().any(|i| !shown[*i].1) => {
                        let gone: Vec<String> = idx.iter().filter(|i| !shown[**i].1).map(|i| format!("{} ({})", i + 1, shown[*i].0.name)).collect();
                        eprintln!("no longer here: {}; choose again", gone.join(", "));
                    }
                    Ok(idx) => {
                        let chosen: Vec<JoinerView> = idx.iter().filter(|i| shown[**i].1).map(|i| shown[*i].0.clone()).collect();
                        let r = SelectRequest {
                            names: vec![],
                            fingerprints: chosen.iter().map(|j| j.fingerprint.to_string()).collect(),
                        };
                        let _: serde_json::Value = client.post_json("/1.0/session/select", &r).await?;
                        return Ok(chosen);
                    }
                    Err(e) => eprintln!("{e}"),
                }
            }
            // Polling the local socket is cheap; a short period keeps the session phase short.
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
    }
}

/// `1,3`, `1 3`, `all` → zero-based indices into the `n` rows shown.
pub fn parse_choice(line: &str, n: usize) -> Result<Vec<usize>, String> {
    let line = line.trim();
    if line.eq_ignore_ascii_case("all") {
        return Ok((0..n).collect());
    }
    let mut out = Vec::new();
    for part in line
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|p| !p.is_empty())
    {
        let k: usize = part
            .parse()
            .map_err(|_| format!("{part:?} is not a row number"))?;
        if k == 0 || k > n {
            return Err(format!("no row {k} (rows 1 to {n})"));
        }
        if !out.contains(&(k - 1)) {
            out.push(k - 1);
        }
    }
    Ok(out)
}

fn report(format: Format, chosen: &[JoinerView]) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let value = serde_json::json!({ "members": chosen });
    if !write_structured(&mut out, format, &value)? {
        let mut t = table(&["TRUSTED MEMBER", "ADDRESS", "CODE", "CERTIFICATE"]);
        for j in chosen {
            t.add_row(vec![
                j.name.clone(),
                j.source.to_string(),
                j.code.to_string(),
                j.fingerprint.to_string(),
            ]);
        }
        writeln!(out, "{t}")?;
        writeln!(
            out,
            "Trust established with {} host(s); run `microcloud init` again to form the cluster.",
            chosen.len()
        )?;
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_choice;

    #[test]
    fn choices() {
        assert_eq!(parse_choice("all", 3).unwrap(), vec![0, 1, 2]);
        assert_eq!(parse_choice(" 1,3 ", 3).unwrap(), vec![0, 2]);
        assert_eq!(parse_choice("2 2", 3).unwrap(), vec![1]);
        assert!(parse_choice("4", 3).unwrap_err().contains("no row 4"));
        assert!(parse_choice("x", 3).is_err());
        assert!(parse_choice("", 3).unwrap().is_empty());
    }
}
