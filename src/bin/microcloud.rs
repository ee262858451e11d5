//! `microcloud`: the operator's command line.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = microcloud::cli::Cli::parse();
    microcloud::logging::init_cli(cli.verbose);
    match microcloud::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // `microcloud inventory -f json | head` closing the pipe early is not a failure.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("Error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
