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
    Serve(relay::config::ServeArgs),
    /// Run a fleet of simulated PDS hosts and a PLC directory on loopback.
    Sim(relay::sim::cli::SimArgs),
    /// Subscribe to a relay (or a PDS) and re-verify every event independently.
    Tail(relay::tail::cli::TailArgs),
    /// Run a named end-to-end scenario (fleet → relay child process → consumers) with reports.
    Bench(relay::bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => relay::runtime::serve::run(args),
        Command::Sim(args) => relay::sim::cli::run(args),
        Command::Tail(args) => relay::tail::cli::run(args),
        Command::Bench(args) => relay::bench::run(args),
    }
}
