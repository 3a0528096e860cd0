//! Configuration: command-line flags and environment → a validated `Config`, and every
//! named bound of the product ([`limits`]).
//!
//! Must not: do IO beyond reading the config file. Hot paths never read configuration;
//! they get copied plain values.

pub mod limits;

use std::path::PathBuf;

/// Flags of `relay serve`; every flag has a `RELAY_…` environment twin.
#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    /// Number of pinned executors.
    #[arg(long, env = "RELAY_CORES", default_value_t = 1)]
    pub cores: usize,
    /// Directory for the event log and the embedded state.
    #[arg(long, env = "RELAY_DATA_DIR", default_value = "./relay-data")]
    pub data_dir: PathBuf,
    /// `postgres://…`: keep hosts and accounts in PostgreSQL instead of the embedded
    /// RocksDB under `<data_dir>/state/`.
    #[arg(long, env = "RELAY_DATABASE_URL")]
    pub database_url: Option<String>,
}
