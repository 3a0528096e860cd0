//! Configuration: command-line flags and environment → a validated `Config`, and every
//! named bound of the product ([`limits`]).
//!
//! Must not: do IO beyond reading the config file. Hot paths never read configuration;
//! they get copied plain values.

pub mod limits;

use std::net::SocketAddr;
use std::path::PathBuf;

/// How strictly frames are judged.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Validation {
    /// Drop whatever breaks a rule (the default).
    Strict,
    /// Pass what strict would drop for Sync 1.1 proofs, still counted and labelled.
    Lenient,
}

/// Flags of `relay serve`; every flag has a `RELAY_…` environment twin
/// (docs/specs/config.md lists them).
#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    /// Number of pinned executors (ingest shards, sequencer and fan-out are placed on
    /// them as docs/ARCHITECTURE.md says).
    #[arg(long, env = "RELAY_CORES", default_value_t = 1)]
    pub cores: usize,
    /// Directory for the event log and the embedded state.
    #[arg(long, env = "RELAY_DATA_DIR", default_value = "./relay-data")]
    pub data_dir: PathBuf,
    /// Address of the public HTTP + WebSocket port (XRPC, subscribeRepos).
    #[arg(long, env = "RELAY_LISTEN", default_value = "0.0.0.0:2470")]
    pub listen: SocketAddr,
    /// Address of the Prometheus metrics port.
    #[arg(long, env = "RELAY_METRICS_LISTEN", default_value = "127.0.0.1:2471")]
    pub metrics_listen: SocketAddr,
    /// PLC directory used to resolve did:plc identities.
    #[arg(long, env = "RELAY_PLC_URL", default_value = "https://plc.directory")]
    pub plc_url: String,
    /// Upstream PDS hosts to crawl from the start (`wss://host`; repeat the flag, or
    /// comma-separate in the environment variable).
    #[arg(long = "upstream", env = "RELAY_UPSTREAMS", value_delimiter = ',')]
    pub upstreams: Vec<String>,
    /// Allow plain `ws://` upstreams and plain `http://` identity lookups (loopback tests
    /// and private deployments only).
    #[arg(long, env = "RELAY_ALLOW_PLAINTEXT", default_value_t = false)]
    pub allow_plaintext: bool,
    /// Cursor to crawl a host from the first time (no cursor stored for it yet): absent =
    /// live from now; `0` = from the oldest event the host still holds (backfill).
    #[arg(long, env = "RELAY_NEW_HOST_CURSOR")]
    pub new_host_cursor: Option<u64>,
    /// `strict` drops every rule violation; `lenient` passes Sync 1.1 proof failures,
    /// still counted.
    #[arg(long, env = "RELAY_VALIDATION", value_enum, default_value_t = Validation::Strict)]
    pub validation: Validation,
    /// How long events stay replayable, in seconds (whole segments are deleted after it).
    #[arg(long, env = "RELAY_REPLAY_WINDOW_SECS", default_value_t = 72 * 3600)]
    pub replay_window_secs: u64,
    /// Largest event log on disk, in bytes, before the oldest segments are deleted.
    #[arg(long, env = "RELAY_EVENTLOG_BYTES_MAX", default_value_t = 300 * 1024 * 1024 * 1024)]
    pub eventlog_bytes_max: u64,
    /// Bearer token of the admin API under `/admin`; admin is disabled (403) without it.
    #[arg(long, env = "RELAY_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Accept requestCrawl for private, loopback and link-local hosts (loopback tests and
    /// development only: it turns off the SSRF guard).
    #[arg(long, env = "RELAY_ALLOW_PRIVATE_HOSTS", default_value_t = false)]
    pub allow_private_hosts: bool,
    /// `postgres://…`: keep hosts and accounts in PostgreSQL instead of the embedded
    /// RocksDB under `<data_dir>/state/`.
    #[arg(long, env = "RELAY_DATABASE_URL")]
    pub database_url: Option<String>,
    /// `https://relay.example`: at start, import the hosts this relay lists in
    /// `listHosts` (checked like requestCrawl hosts), then crawl them.
    #[arg(long, env = "RELAY_BOOTSTRAP_RELAY")]
    pub bootstrap_relay: Option<String>,
    /// Run hosts without an operator's setting unlimited: no default account limit and no
    /// default rate limits (benchmarks, private deployments). Limits set through
    /// `/admin/hosts/changeLimits` still apply.
    #[arg(long, env = "RELAY_NO_DEFAULT_HOST_LIMITS", default_value_t = false)]
    pub no_default_host_limits: bool,
    /// Shortest time between two `getRepoStatus` checks of one account its host said is
    /// not active, in seconds (a stale upstream status heals within about this long).
    #[arg(long, env = "RELAY_STATUS_RECHECK_INTERVAL_SECS",
          default_value_t = limits::STATUS_RECHECK_INTERVAL_SECS,
          value_parser = clap::value_parser!(u64).range(limits::STATUS_RECHECK_INTERVAL_SECS_MIN..))]
    pub status_recheck_interval_secs: u64,
}
