//! The `recoverydesk` binary: parse argv, set up logging, run, map errors
//! to exit codes (0 ok, 1 failure, 2 configuration).

use clap::Parser;
use recoverydesk::cli::{self, Cli};

fn main() {
    let cli = Cli::parse();
    // The demo prints its own summary; its per-message log lines are noise.
    let quiet = matches!(
        cli.command,
        cli::Command::Demo { .. }
            | cli::Command::Cases { .. }
            | cli::Command::Followups { .. }
            | cli::Command::Backup { .. }
            | cli::Command::Restore { .. }
    );
    init_tracing(
        &cli.log_format,
        if quiet {
            "warn"
        } else {
            "warn,recoverydesk=info"
        },
    );
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("recoverydesk: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(error) = runtime.block_on(cli::run(cli)) {
        eprintln!("recoverydesk: {}", cli::describe(&error));
        std::process::exit(cli::exit_code(&error));
    }
}

fn init_tracing(format: &str, default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RECOVERYDESK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}
