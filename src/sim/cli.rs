//! `relay sim`: the command line of the simulated PDS fleet.
//!
//! Owns: flags → fleet configuration, running the fleet until a duration, an event limit
//! or a signal, writing the ports file, printing a progress line each second and a final
//! summary (with the process's own memory and CPU time). Must not: hold fleet logic
//! (that is `sim::fleet`).

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::ExitCode;

/// Flags of `relay sim`. Every flag has a `RELAY_SIM_…` environment twin.
#[derive(clap::Args, Debug)]
pub struct SimArgs {
    /// Number of simulated PDS hosts.
    #[arg(long, env = "RELAY_SIM_HOSTS", default_value_t = 4)]
    pub hosts: usize,
    /// Accounts on each host.
    #[arg(long, env = "RELAY_SIM_ACCOUNTS_PER_HOST", default_value_t = 10)]
    pub accounts_per_host: usize,
    /// Target aggregate rate, events/s across the fleet (0: as fast as possible).
    #[arg(long, env = "RELAY_SIM_RATE", default_value_t = 1_000)]
    pub rate: u64,
    /// Seed: the same seed gives the same events.
    #[arg(long, env = "RELAY_SIM_SEED", default_value_t = 1)]
    pub seed: u64,
    /// Stop emitting after this many seconds.
    #[arg(long, env = "RELAY_SIM_DURATION_SECS")]
    pub duration_secs: Option<u64>,
    /// Stop after this many generated events.
    #[arg(long, env = "RELAY_SIM_EVENT_LIMIT")]
    pub event_limit: Option<u64>,
    /// Hostile modes, comma-separated labels (see docs/SIM.md).
    #[arg(long, env = "RELAY_SIM_HOSTILE", value_delimiter = ',')]
    pub hostile: Vec<String>,
    /// Share of events replaced by the event modes of `--hostile`.
    #[arg(long, env = "RELAY_SIM_HOSTILE_SHARE", default_value_t = 0.01)]
    pub hostile_share: f64,
    /// Share of commits that are large (close to the 2,000,000-byte blocks limit).
    #[arg(long, env = "RELAY_SIM_LARGE_COMMIT_SHARE", default_value_t = 0.0)]
    pub large_commit_share: f64,
    /// Share of accounts on P-256.
    #[arg(long, env = "RELAY_SIM_P256_SHARE", default_value_t = 0.5)]
    pub p256_share: f64,
    /// Share of hosts with a did:web account.
    #[arg(long, env = "RELAY_SIM_DID_WEB_SHARE", default_value_t = 0.1)]
    pub did_web_share: f64,
    /// Executors (and generator threads).
    #[arg(long, env = "RELAY_SIM_CORES", default_value_t = 1)]
    pub cores: usize,
    /// Pre-signed events buffered per core (emission starts once it is full).
    #[arg(long, env = "RELAY_SIM_PRESIGN_BUFFER", default_value_t = 10_000)]
    pub presign_buffer: usize,
    /// Events each host keeps for cursor replay.
    #[arg(long, env = "RELAY_SIM_BACKLOG_EVENTS", default_value_t = 100_000)]
    pub backlog_events: usize,
    /// Address to listen on.
    #[arg(long, env = "RELAY_SIM_LISTEN_IP", default_value = "127.0.0.1")]
    pub listen_ip: Ipv4Addr,
    /// Write the host URLs and the PLC URL here, as JSON.
    #[arg(long, env = "RELAY_SIM_PORTS_FILE")]
    pub ports_file: Option<PathBuf>,
    /// Record size mix, `BYTES:WEIGHT` pairs (e.g. `200:70,1000:25,8000:5`).
    #[arg(
        long,
        env = "RELAY_SIM_RECORD_SIZES",
        value_delimiter = ',',
        default_value = "200:70,1000:25,8000:5"
    )]
    pub record_sizes: Vec<String>,
    /// Records per repo before creates are paired with deletes (memory per account).
    #[arg(long, env = "RELAY_SIM_REPO_RECORDS", default_value_t = 16)]
    pub repo_records: usize,
    /// Keep serving this many seconds after emission ends (for late readers).
    #[arg(long, env = "RELAY_SIM_LINGER_SECS", default_value_t = 0)]
    pub linger_secs: u64,
}

/// Run the simulator.
#[cfg(feature = "server")]
pub fn run(args: SimArgs) -> ExitCode {
    match run_fleet(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("relay sim: {e}");
            ExitCode::from(2)
        }
    }
}

/// Run the simulator (needs the `server` feature).
#[cfg(not(feature = "server"))]
pub fn run(_args: SimArgs) -> ExitCode {
    eprintln!("relay sim: built without the `server` feature");
    ExitCode::from(2)
}

#[cfg(feature = "server")]
fn run_fleet(args: SimArgs) -> Result<(), String> {
    use crate::sim::fleet::{Fleet, FleetConfig};
    use crate::sim::hostile::HostileMode;
    use std::time::{Duration, Instant};

    let hostile_modes = args
        .hostile
        .iter()
        .filter(|m| !m.is_empty())
        .map(|m| HostileMode::from_reason(m).ok_or_else(|| format!("unknown hostile mode {m:?}")))
        .collect::<Result<Vec<_>, _>>()?;
    let record_sizes = args
        .record_sizes
        .iter()
        .map(|pair| {
            let (size, weight) = pair
                .split_once(':')
                .ok_or(format!("record size {pair:?}: BYTES:WEIGHT"))?;
            Ok((
                size.parse().map_err(|_| format!("record size {pair:?}"))?,
                weight
                    .parse()
                    .map_err(|_| format!("record weight {pair:?}"))?,
            ))
        })
        .collect::<Result<Vec<(usize, u32)>, String>>()?;
    let config = FleetConfig {
        record_sizes,
        hosts: args.hosts,
        accounts_per_host: args.accounts_per_host,
        events_per_sec: args.rate,
        seed: args.seed,
        large_commit_share: args.large_commit_share,
        hostile_modes,
        hostile_share: args.hostile_share,
        duration: args.duration_secs.map(Duration::from_secs),
        event_limit: args.event_limit,
        p256_share: args.p256_share,
        did_web_share: args.did_web_share,
        cores: args.cores,
        presign_buffer_events: args.presign_buffer,
        backlog_events: args.backlog_events,
        listen_ip: args.listen_ip,
        repo_records: args.repo_records,
        ..FleetConfig::default()
    };
    let started = Instant::now();
    let fleet = Fleet::start(config).map_err(|e| e.to_string())?;
    eprintln!(
        "relay sim: {} hosts, plc {} (started in {:.2}s, rss {} MiB)",
        args.hosts,
        fleet.plc_url(),
        started.elapsed().as_secs_f64(),
        usage::rss_kib() / 1024
    );
    if let Some(path) = &args.ports_file {
        let ports = serde_json::json!({
            "hosts": fleet.host_urls(),
            "hostnames": fleet.hostnames(),
            "plc": fleet.plc_url(),
        });
        std::fs::write(path, ports.to_string()).map_err(|e| format!("ports file: {e}"))?;
    }
    let mut last = fleet.counters();
    let mut first_emit: Option<Instant> = None;
    let deadline = args
        .duration_secs
        .map(|s| Instant::now() + Duration::from_secs(s));
    loop {
        let done = match args.event_limit {
            Some(_) => fleet.wait_until_emitted(Duration::from_secs(1)),
            None => {
                std::thread::sleep(Duration::from_secs(1));
                false
            }
        };
        let now = fleet.counters();
        if first_emit.is_none() && now.emitted > 0 {
            first_emit = Some(Instant::now());
        }
        eprintln!("{}", progress_line(&last, &now));
        last = now;
        if done || deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
    }
    let emit_secs = first_emit.map_or(0.0, |t| t.elapsed().as_secs_f64());
    std::thread::sleep(Duration::from_secs(args.linger_secs));
    let rss = usage::rss_kib();
    let cpu = usage::cpu_secs();
    let counters = fleet.stop();
    println!(
        "{}",
        summary(
            &counters,
            emit_secs,
            rss,
            cpu,
            started.elapsed().as_secs_f64()
        )
    );
    Ok(())
}

#[cfg(feature = "server")]
fn progress_line(
    last: &crate::sim::fleet::FleetCounters,
    now: &crate::sim::fleet::FleetCounters,
) -> String {
    format!(
        "events/s {} (commit {} sync {} identity {} account {} unknown {} hostile {}) total {} behind {}",
        now.emitted - last.emitted,
        now.commit - last.commit,
        now.sync - last.sync,
        now.identity - last.identity,
        now.account - last.account,
        now.unknown - last.unknown,
        now.hostile_events() - last.hostile_events(),
        now.emitted,
        now.generator_behind,
    )
}

#[cfg(feature = "server")]
fn summary(
    c: &crate::sim::fleet::FleetCounters,
    emit_secs: f64,
    rss_kib: u64,
    cpu_secs: f64,
    wall_secs: f64,
) -> String {
    serde_json::json!({
        "emitted": c.emitted,
        "valid": c.valid,
        "commit": c.commit,
        "sync": c.sync,
        "identity": c.identity,
        "account": c.account,
        "unknown": c.unknown,
        "large_commits": c.large_commits,
        "hostile": c.hostile,
        "bytes": c.bytes,
        "generator_behind_ticks": c.generator_behind,
        "backlog_evicted": c.backlog_evicted,
        "subscribers_lagged": c.subscribers_lagged,
        "subscriptions": c.subscriptions,
        "emit_wall_secs": emit_secs,
        "emit_micros": c.emit_micros,
        "accounts_materialised": c.accounts_materialised,
        "emit_events_per_sec": if c.emit_micros > 0 { c.emitted as f64 * 1e6 / c.emit_micros as f64 } else { 0.0 },
        "vm_rss_kib": rss_kib,
        "cpu_secs": cpu_secs,
        "wall_secs": wall_secs,
    })
    .to_string()
}

/// The process's own resource use, from /proc (Linux).
pub mod usage {
    /// `VmRSS` of /proc/self/status, in KiB (0 when unreadable).
    pub fn rss_kib() -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse().ok())
            })
            .unwrap_or(0)
    }

    /// CPU time of every live thread (first field of each /proc/self/task/*/schedstat,
    /// nanoseconds on CPU), in seconds.
    pub fn cpu_secs() -> f64 {
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return 0.0;
        };
        let nanos: u64 = tasks
            .filter_map(Result::ok)
            .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
            .filter_map(|s| {
                s.split_whitespace()
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
            })
            .sum();
        nanos as f64 / 1e9
    }
}
