//! `microcloudd`: the privileged host agent run by systemd on every host.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let args = microcloud::daemon::DaemonArgs::parse();
    microcloud::logging::init_daemon();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Error: starting the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(microcloud::daemon::run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
