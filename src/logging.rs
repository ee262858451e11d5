//! tracing setup: quiet by default, `RUST_LOG` wins, and no timestamps when journald adds them.

use tracing_subscriber::EnvFilter;

fn filter(default: &str) -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default))
}

/// CLI: warnings only unless `-v` is given; logs go to stderr so stdout stays machine-readable.
pub fn init_cli(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter(level))
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .try_init();
}

/// Daemon: info by default; under systemd (JOURNAL_STREAM set) journald stamps time itself.
pub fn init_daemon() {
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter("info"))
        .with_writer(std::io::stderr)
        .with_ansi(!journald && std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = if journald {
        builder.without_time().try_init()
    } else {
        builder.try_init()
    };
}
