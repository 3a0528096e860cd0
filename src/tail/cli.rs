//! `relay tail`: the command line of the checking consumer.

use std::process::ExitCode;

/// Flags of `relay tail`.
#[derive(clap::Args, Debug)]
pub struct TailArgs {}

/// Run the consumer.
pub fn run(_args: TailArgs) -> ExitCode {
    eprintln!("relay tail: the checking consumer is being built (issue 3)");
    ExitCode::from(2)
}
