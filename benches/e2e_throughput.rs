//! Ingest → consumer throughput and latency of `relay serve` at `--cores 1` and
//! `--cores 2`, through `relay bench`'s runner: a short fixed live scenario (the fleet in
//! this process, the relay as a child process, two checking consumers), a few runs each,
//! medians printed. `harness = false`: each run is seconds long, criterion's sampling does
//! not fit.
//!
//! `cargo bench --bench e2e_throughput` (env `E2E_RUNS`, `E2E_SECS`, `E2E_RATE` override
//! the 3 runs of 20 s at 2,000 events/s).

use relay::bench::{BenchPlan, BenchReport, Scenario, run_scenario};
use std::path::PathBuf;

/// Single-core signature verify rates of the default backends (docs/BENCHMARKS.md,
/// `cargo bench --bench signature`): the per-core ceiling of ingest.
const SECP256K1_VERIFIES_PER_SEC: f64 = 31_600.0;
const P256_VERIFIES_PER_SEC: f64 = 19_000.0;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

fn run_once(cores: usize, run: u64, secs: u64, rate: u64) -> BenchReport {
    let out = std::env::temp_dir().join(format!("relay-e2e-bench-{}", std::process::id()));
    let mut plan = BenchPlan::new(
        Scenario::Standard,
        PathBuf::from(env!("CARGO_BIN_EXE_relay")),
        out,
    );
    plan.cores = cores;
    plan.hosts = 50;
    plan.accounts_per_host = 20;
    plan.rate = rate;
    plan.consumers = 2;
    plan.duration_secs = secs;
    plan.warmup_secs = 3;
    plan.seed = run + 1;
    plan.progress = false;
    match run_scenario(&plan) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("e2e_throughput: --cores {cores} run {run}: {e}");
            std::process::exit(2);
        }
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing useful: run
    // only under `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let runs = env_or("E2E_RUNS", 3).max(1);
    let secs = env_or("E2E_SECS", 20).max(1);
    let rate = env_or("E2E_RATE", 2_000).max(1);
    println!(
        "e2e_throughput: 50 hosts × 20 accounts, offered {rate} events/s, 2 consumers, {runs} runs of {secs} s"
    );
    // Half the accounts are P-256: the mixed ceiling of one core is the harmonic mean.
    let mixed = 2.0 / (1.0 / SECP256K1_VERIFIES_PER_SEC + 1.0 / P256_VERIFIES_PER_SEC);
    for cores in [1, 2] {
        let reports: Vec<BenchReport> = (0..runs)
            .map(|run| run_once(cores, run, secs, rate))
            .collect();
        let pick =
            |f: fn(&BenchReport) -> f64| median(&mut reports.iter().map(f).collect::<Vec<_>>());
        let validated = pick(|r| r.validated_events_per_sec);
        let delivered = pick(|r| r.delivered_events_per_sec_per_consumer);
        let p50 = pick(|r| r.latency_worst.p50_micros as f64);
        let p99 = pick(|r| r.latency_worst.p99_micros as f64);
        let p999 = pick(|r| r.latency_worst.p999_micros as f64);
        let cpu = pick(|r| r.cpu_secs_per_1000_events);
        let rss = pick(|r| r.rss_peak_kib as f64 / 1024.0);
        let shards = reports.first().map_or(1, |r| r.ingest_shards);
        let clean = reports.iter().all(BenchReport::consumers_clean);
        let shared = reports.first().is_none_or(|r| r.placement.shared);
        println!(
            "--cores {cores}: validated {validated:.0} ev/s, delivered {delivered:.0} ev/s per consumer, \
             latency p50 {:.1} ms p99 {:.1} ms p99.9 {:.1} ms, relay CPU {cpu:.3} s per 1,000 events, \
             RSS peak {rss:.0} MiB, consumers clean {clean} (medians of {runs})",
            p50 / 1000.0,
            p99 / 1000.0,
            p999 / 1000.0,
        );
        println!(
            "  bound: {shards} ingest shard(s) × ~{mixed:.0} verifies/s per core (50 % secp256k1 at {SECP256K1_VERIFIES_PER_SEC:.0}/s, \
             50 % P-256 at {P256_VERIFIES_PER_SEC:.0}/s) = ~{:.0} ev/s of signature work; \
             {:.1} % of it used at the validated rate; {}",
            shards as f64 * mixed,
            validated / (shards as f64 * mixed) * 100.0,
            if shared {
                "the relay shares its CPUs with the fleet and the consumers"
            } else {
                "the fleet and the consumers run on the other CPUs"
            },
        );
    }
}
