//! Thin binary: parse the command line and hand over to the library.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// relay: an AT Protocol relay.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the relay.
    Serve {
        /// Number of pinned executors.
        #[arg(long, env = "RELAY_CORES", default_value_t = 1)]
        cores: usize,
        /// Directory for the event log and the embedded state.
        #[arg(long, env = "RELAY_DATA_DIR", default_value = "./relay-data")]
        data_dir: std::path::PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { cores, data_dir } => {
            // The data plane (issue 4) is not built yet: say so plainly instead of
            // pretending to serve.
            eprintln!(
                "relay serve --cores {cores} --data-dir {}: the data plane is not built yet; \
                 this build holds the verified protocol primitives only (see docs/ARCHITECTURE.md)",
                data_dir.display()
            );
            ExitCode::from(2)
        }
    }
}
