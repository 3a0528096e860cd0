//! `relay serve`: starts the executors, wires ingest → sequencer → log → fan-out.
//!
//! Owns: core roles and their placement, the rings between them, startup and shutdown
//! order. Must not: decode, verify or persist anything itself.

use crate::config::ServeArgs;
use std::process::ExitCode;

/// Run the relay until it is stopped.
pub fn run(args: ServeArgs) -> ExitCode {
    eprintln!(
        "relay serve --cores {}: the data plane is being wired (issue 4)",
        args.cores
    );
    ExitCode::from(2)
}
