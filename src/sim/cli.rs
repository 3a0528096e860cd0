//! `relay sim`: the command line of the simulated PDS fleet.
//!
//! Owns: flags → fleet configuration, running the fleet until a duration or a signal,
//! printing its counters. Must not: hold fleet logic (that is `sim::fleet`).

use std::process::ExitCode;

/// Flags of `relay sim`.
#[derive(clap::Args, Debug)]
pub struct SimArgs {}

/// Run the simulator.
pub fn run(_args: SimArgs) -> ExitCode {
    eprintln!("relay sim: the fleet is being built (issue 3)");
    ExitCode::from(2)
}
