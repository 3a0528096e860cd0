//! `relay bench`: named end-to-end scenarios on this machine, with reports.
//!
//! Owns: the scenarios (sizes, rates, consumers, durations; [`Scenario`], [`BenchPlan`]),
//! running one ([`runner`]: the simulated fleet in this process on its own threads, the
//! relay under test as a separate `relay serve` child process so its RSS and CPU are its
//! own, K checking consumers on threads of this process), sampling the relay each second
//! (`/proc/<pid>` and its `/metrics`, [`procfs`], [`prom`]), and the outputs ([`report`]:
//! a summary table, a JSON file, an HTML report with inline SVG plots).
//! Must not: reach into the relay's internals; it sees the relay only as a process, its
//! sockets and its metrics, like an operator would.
//! Checks: the plan's bounds (`BENCH_*_MAX`). The consumers (`relay tail`'s library) check
//! every event they receive; the bench reports their verdicts, it does not judge frames.
//!
//! Pinning: the relay pins its executors to the first `--cores` CPUs itself; the bench
//! moves the simulator's and the consumers' threads to the remaining CPUs when there are
//! any, and says in the report when they share CPUs with the relay (a 2-core machine at
//! `--cores 2`).

pub mod procfs;
pub mod prom;
pub mod report;
pub mod runner;

pub use report::{BenchReport, ConsumerSummary, Sample};
pub use runner::run_scenario;

use crate::config::limits::{BENCH_CONSUMERS_MAX, BENCH_DURATION_SECS_MAX};
use std::path::PathBuf;
use std::process::ExitCode;

/// The named scenarios.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// 3,000 hosts, 300,000 accounts, 2,000 events/s, 4 consumers, 10 minutes.
    Standard,
    /// A pre-generated backlog read as fast as the relay can: validated events/s per
    /// ingest core.
    Max,
    /// A share of commits near the 2,000,000-byte blocks limit, 8 consumers; copied bytes
    /// per frame.
    LargeFrames,
    /// The standard fleet at 2,000 events/s for 30 minutes, 1 consumer; RSS each minute
    /// after warm-up and its slope.
    Soak,
    /// 100 consumers.
    Fanout,
}

impl Scenario {
    /// The scenario's label (as on the command line).
    pub fn label(self) -> &'static str {
        match self {
            Scenario::Standard => "standard",
            Scenario::Max => "max",
            Scenario::LargeFrames => "large-frames",
            Scenario::Soak => "soak",
            Scenario::Fanout => "fanout",
        }
    }
}

/// Flags of `relay bench`; every flag has a `RELAY_BENCH_…` environment twin
/// (docs/specs/config.md). Sizes default to the scenario's; the overrides make a short
/// run fit a small machine.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// The scenario to run.
    #[arg(long, env = "RELAY_BENCH_SCENARIO", value_enum)]
    pub scenario: Scenario,
    /// Executors of the relay under test (`relay serve --cores`).
    #[arg(long, env = "RELAY_BENCH_CORES", default_value_t = 1)]
    pub cores: usize,
    /// Measured seconds (after connect and warm-up); default: the scenario's.
    #[arg(long, env = "RELAY_BENCH_DURATION_SECS")]
    pub duration_secs: Option<u64>,
    /// Directory for the JSON and HTML reports (and the relay's data and log while it runs).
    #[arg(long, env = "RELAY_BENCH_OUT", default_value = "./bench-out")]
    pub out: PathBuf,
    /// Simulated PDS hosts.
    #[arg(long, env = "RELAY_BENCH_HOSTS")]
    pub hosts: Option<usize>,
    /// Accounts on each host.
    #[arg(long, env = "RELAY_BENCH_ACCOUNTS_PER_HOST")]
    pub accounts_per_host: Option<usize>,
    /// Offered events/s across the fleet (`max`: the size of the pre-generated backlog is
    /// duration × this rate).
    #[arg(long, env = "RELAY_BENCH_RATE")]
    pub rate: Option<u64>,
    /// Checking consumers.
    #[arg(long, env = "RELAY_BENCH_CONSUMERS")]
    pub consumers: Option<usize>,
    /// Share of commits that are large (close to the 2,000,000-byte blocks limit).
    #[arg(long, env = "RELAY_BENCH_LARGE_COMMIT_SHARE")]
    pub large_commit_share: Option<f64>,
    /// Seconds between the relay connecting to every host and the consumers subscribing.
    #[arg(long, env = "RELAY_BENCH_WARMUP_SECS")]
    pub warmup_secs: Option<u64>,
    /// Executors (and generator threads) of the simulated fleet.
    #[arg(long, env = "RELAY_BENCH_SIM_CORES", default_value_t = 1)]
    pub sim_cores: usize,
    /// Seed of the simulated fleet.
    #[arg(long, env = "RELAY_BENCH_SEED", default_value_t = 1)]
    pub seed: u64,
    /// The `relay` binary to run as the relay under test (default: this executable).
    #[arg(long, env = "RELAY_BENCH_RELAY_EXE")]
    pub relay_exe: Option<PathBuf>,
    /// No progress line each second.
    #[arg(long, env = "RELAY_BENCH_QUIET")]
    pub quiet: bool,
}

/// Everything one run needs, after defaults and overrides.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BenchPlan {
    /// The scenario.
    pub scenario: Scenario,
    /// `relay serve --cores`.
    pub cores: usize,
    /// Measured window, seconds.
    pub duration_secs: u64,
    /// Warm-up before the measured window, seconds.
    pub warmup_secs: u64,
    /// Simulated hosts.
    pub hosts: usize,
    /// Accounts per host.
    pub accounts_per_host: usize,
    /// Offered events/s (for `max`: the backlog is `rate × duration_secs` events).
    pub rate: u64,
    /// Checking consumers.
    pub consumers: usize,
    /// Share of large commits.
    pub large_commit_share: f64,
    /// Simulator executors.
    pub sim_cores: usize,
    /// Simulator seed.
    pub seed: u64,
    /// The relay binary.
    pub relay_exe: PathBuf,
    /// Output directory.
    pub out: PathBuf,
    /// Print a progress line each second.
    pub progress: bool,
}

/// Why a bench could not run.
#[derive(Debug)]
#[non_exhaustive]
pub enum BenchError {
    /// A flag's value is out of bounds.
    Config(String),
    /// The simulated fleet did not start.
    Fleet(crate::sim::fleet::FleetError),
    /// The relay under test did not start, connect or answer.
    Relay(String),
    /// A consumer could not subscribe.
    Consumer(crate::tail::TailError),
    /// Writing the reports failed.
    Io(std::io::Error),
}

impl BenchError {
    /// A short, bounded label.
    pub fn reason(&self) -> &'static str {
        match self {
            BenchError::Config(_) => "config",
            BenchError::Fleet(e) => e.reason(),
            BenchError::Relay(_) => "relay",
            BenchError::Consumer(e) => e.reason(),
            BenchError::Io(_) => "io",
        }
    }
}

impl std::fmt::Display for BenchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BenchError::Config(e) => write!(f, "configuration: {e}"),
            BenchError::Fleet(e) => write!(f, "simulated fleet: {e}"),
            BenchError::Relay(e) => write!(f, "relay under test: {e}"),
            BenchError::Consumer(e) => write!(f, "consumer: {e}"),
            BenchError::Io(e) => write!(f, "writing reports: {e}"),
        }
    }
}

impl std::error::Error for BenchError {}

impl BenchPlan {
    /// The scenario at its full size, relay binary `relay_exe`, reports under `out`.
    pub fn new(scenario: Scenario, relay_exe: PathBuf, out: PathBuf) -> BenchPlan {
        let base = BenchPlan {
            scenario,
            cores: 1,
            duration_secs: 600,
            warmup_secs: 5,
            hosts: 3_000,
            accounts_per_host: 100,
            rate: 2_000,
            consumers: 4,
            large_commit_share: 0.0,
            sim_cores: 1,
            seed: 1,
            relay_exe,
            out,
            progress: true,
        };
        match scenario {
            Scenario::Standard => base,
            // Offered above capacity: the backlog holds 20,000 events per measured second,
            // more than the signature ceiling of one core (docs/BENCHMARKS.md).
            Scenario::Max => BenchPlan {
                duration_secs: 30,
                warmup_secs: 0,
                hosts: 100,
                accounts_per_host: 100,
                rate: 20_000,
                consumers: 1,
                ..base
            },
            // 1 % of commits near 2 MB at 500 events/s is ~10 MB/s in, ~80 MB/s out.
            Scenario::LargeFrames => BenchPlan {
                hosts: 100,
                rate: 500,
                consumers: 8,
                large_commit_share: 0.01,
                ..base
            },
            // The standard fleet for 30 minutes; one checking consumer, so that on a
            // 2-core machine the simulator's CPU is not taken by checkers and the
            // offered rate reaches 2,000 events/s (the figure here is the relay's RSS).
            Scenario::Soak => BenchPlan {
                duration_secs: 1_800,
                warmup_secs: 60,
                consumers: 1,
                ..base
            },
            // Every consumer re-verifies every event: the rate is what 100 checkers fit.
            Scenario::Fanout => BenchPlan {
                hosts: 100,
                rate: 200,
                consumers: 100,
                ..base
            },
        }
    }

    /// The plan of `relay bench` flags.
    pub fn from_args(args: &BenchArgs) -> Result<BenchPlan, BenchError> {
        let exe = match &args.relay_exe {
            Some(exe) => exe.clone(),
            None => std::env::current_exe()
                .map_err(|e| BenchError::Config(format!("current executable: {e}")))?,
        };
        let mut plan = BenchPlan::new(args.scenario, exe, args.out.clone());
        plan.cores = args.cores;
        plan.sim_cores = args.sim_cores;
        plan.seed = args.seed;
        plan.progress = !args.quiet;
        plan.duration_secs = args.duration_secs.unwrap_or(plan.duration_secs);
        plan.warmup_secs = args.warmup_secs.unwrap_or(plan.warmup_secs);
        plan.hosts = args.hosts.unwrap_or(plan.hosts);
        plan.accounts_per_host = args.accounts_per_host.unwrap_or(plan.accounts_per_host);
        plan.rate = args.rate.unwrap_or(plan.rate);
        plan.consumers = args.consumers.unwrap_or(plan.consumers);
        plan.large_commit_share = args.large_commit_share.unwrap_or(plan.large_commit_share);
        plan.check()?;
        Ok(plan)
    }

    /// The plan's bounds.
    pub fn check(&self) -> Result<(), BenchError> {
        let fail = |what: &str| Err(BenchError::Config(what.to_owned()));
        if self.cores == 0 || self.sim_cores == 0 {
            return fail("--cores and --sim-cores must be at least 1");
        }
        if self.duration_secs == 0 || self.duration_secs > BENCH_DURATION_SECS_MAX {
            return fail("--duration-secs out of 1 ..= BENCH_DURATION_SECS_MAX");
        }
        if self.consumers > BENCH_CONSUMERS_MAX {
            return fail("--consumers above BENCH_CONSUMERS_MAX");
        }
        if self.hosts == 0 || self.accounts_per_host == 0 {
            return fail("--hosts and --accounts-per-host must be at least 1");
        }
        if self.rate == 0 {
            return fail("--rate must be at least 1 event/s");
        }
        if !(0.0..=1.0).contains(&self.large_commit_share) {
            return fail("--large-commit-share out of 0 ..= 1");
        }
        Ok(())
    }

    /// Whether the plan is smaller than its scenario's full size (the report says so).
    pub fn reduced(&self) -> bool {
        let full = BenchPlan::new(self.scenario, PathBuf::new(), PathBuf::new());
        self.duration_secs < full.duration_secs
            || self.hosts < full.hosts
            || self.accounts_per_host < full.accounts_per_host
            || self.rate < full.rate
            || self.consumers < full.consumers
    }
}

/// Run `relay bench`: the scenario, the summary on stdout, the reports under `--out`.
pub fn run(args: BenchArgs) -> ExitCode {
    let outcome = BenchPlan::from_args(&args).and_then(|plan| {
        let report = run_scenario(&plan)?;
        let (json, html) = report::write_outputs(&report, &plan.out).map_err(BenchError::Io)?;
        println!("{}", report::summary_table(&report));
        println!("json: {}\nhtml: {}", json.display(), html.display());
        Ok(report)
    });
    match outcome {
        Ok(report) if report.consumers_clean() => ExitCode::SUCCESS,
        Ok(_) => {
            eprintln!("relay bench: a consumer saw invalid, missing or repeated events");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("relay bench: {e}");
            ExitCode::from(2)
        }
    }
}
