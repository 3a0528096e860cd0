//! Running one scenario: fleet → relay child process → consumers, sampled each second.
//!
//! Phases (each sample carries its phase): `backlog` (`max` only: the fleet pre-generates
//! its events before the relay starts, so the offered load is the whole backlog at once),
//! `connect` (until the relay's metrics port answers and, for live scenarios, it has a
//! session with every host), `warmup`, then `measure` (the consumers subscribe at its
//! start and are stopped at its end). Figures are taken over `measure` only.
//!
//! Blocking: this is a plain thread; it sleeps between samples. The relay child is killed
//! if the run ends early (its handle's `Drop`), so no relay outlives a failed bench.

use super::procfs;
use super::prom::{self, Scrape, names};
use super::report::{self, BenchReport, Sample};
use super::{BenchError, BenchPlan, Scenario};
use crate::config::limits::{
    BENCH_BACKLOG_FILL_SECS_MAX, BENCH_RELAY_START_SECS_MAX, BENCH_RELAY_STOP_SECS_MAX,
    SIM_BACKLOG_EVENTS_MAX, SIM_PRESIGN_BUFFER_EVENTS_MAX,
};
use crate::sim::fleet::{Fleet, FleetConfig, FleetHandle};
use crate::tail::{Backends, StopHandle, TailConfig, TailReport};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Which CPUs the relay gets and which the bench's own threads get.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CpuPlacement {
    /// CPUs of this machine (the bench's allowed set at start).
    pub cpus: Vec<usize>,
    /// The first `--cores` of them: the relay pins its executors there.
    pub relay_cpus: Vec<usize>,
    /// The rest: simulator and consumers; empty when there are none left.
    pub bench_cpus: Vec<usize>,
    /// True when the simulator and consumers share CPUs with the relay.
    pub shared: bool,
}

impl CpuPlacement {
    fn of(cores: usize, cpus: Vec<usize>) -> CpuPlacement {
        let relay_cpus: Vec<usize> = cpus.iter().copied().take(cores).collect();
        let bench_cpus: Vec<usize> = cpus.iter().copied().skip(cores).collect();
        CpuPlacement {
            shared: bench_cpus.is_empty(),
            cpus,
            relay_cpus,
            bench_cpus,
        }
    }

    /// Move the calling thread (and what it spawns next) to the bench's CPUs.
    fn pin_bench_thread(&self) {
        if !self.shared {
            procfs::pin_current_thread(&self.bench_cpus);
        }
    }

    /// Give the calling thread every CPU back.
    fn unpin(&self) {
        procfs::pin_current_thread(&self.cpus);
    }
}

/// Run the plan end to end and return its report (the caller writes the files).
pub fn run_scenario(plan: &BenchPlan) -> Result<BenchReport, BenchError> {
    plan.check()?;
    std::fs::create_dir_all(&plan.out).map_err(BenchError::Io)?;
    let placement = CpuPlacement::of(plan.cores, procfs::allowed_cpus());
    let started = Instant::now();
    let mut samples = Vec::new();
    let mut notes = Vec::new();

    // The fleet's threads inherit the mask of the thread that starts them.
    placement.pin_bench_thread();
    let fleet = Fleet::start(fleet_config(plan));
    placement.unpin();
    let fleet = fleet.map_err(BenchError::Fleet)?;
    let backlog = if plan.scenario == Scenario::Max {
        Some(fill_backlog(plan, &fleet, &mut notes)?)
    } else {
        wait_for_emission(plan, &fleet)?;
        None
    };

    let mut relay = RelayProcess::spawn(plan, &fleet)?;
    let mut sampler = Sampler::new(started, relay.pid());
    connect(
        plan,
        &mut relay,
        &fleet,
        &mut sampler,
        &mut samples,
        &mut notes,
    )?;
    run_phase(
        plan,
        "warmup",
        plan.warmup_secs,
        &fleet,
        &relay,
        &mut sampler,
        &mut samples,
    );

    let consumers = Consumers::start(plan, &placement, &relay, &fleet);
    run_phase(
        plan,
        "measure",
        plan.duration_secs,
        &fleet,
        &relay,
        &mut sampler,
        &mut samples,
    );
    let final_scrape = prom::scrape(relay.metrics).unwrap_or_default();
    let reports = consumers.stop();
    let exit = relay.stop();
    if !exit.is_empty() {
        notes.push(exit);
    }
    let fleet_counters = fleet.stop();

    let consumer_reports = reports.map_err(BenchError::Consumer)?;
    Ok(report::build(report::Inputs {
        plan,
        placement: &placement,
        samples,
        final_scrape: &final_scrape,
        consumers: &consumer_reports,
        fleet: &fleet_counters,
        backlog,
        notes,
        wall_secs: started.elapsed().as_secs_f64(),
    }))
}

fn fleet_config(plan: &BenchPlan) -> FleetConfig {
    let mut config = FleetConfig {
        hosts: plan.hosts,
        accounts_per_host: plan.accounts_per_host,
        events_per_sec: plan.rate,
        seed: plan.seed,
        large_commit_share: plan.large_commit_share,
        cores: plan.sim_cores,
        presign_buffer_events: presign_buffer(plan),
        ..FleetConfig::default()
    };
    if plan.scenario == Scenario::Max {
        let events = plan.rate.saturating_mul(plan.duration_secs);
        config.events_per_sec = 0;
        config.event_limit = Some(events);
        let per_host = (events as usize).div_ceil(plan.hosts).saturating_mul(2);
        config.backlog_events = per_host.clamp(config.backlog_events, SIM_BACKLOG_EVENTS_MAX);
    }
    config
}

/// Live scenarios: wait until the fleet's pre-signed buffers are full and it emits.
fn wait_for_emission(plan: &BenchPlan, fleet: &FleetHandle) -> Result<(), BenchError> {
    let began = Instant::now();
    while fleet.counters().emitted == 0 {
        if began.elapsed() >= Duration::from_secs(BENCH_BACKLOG_FILL_SECS_MAX) {
            return Err(BenchError::Config(format!(
                "the fleet did not start emitting in {BENCH_BACKLOG_FILL_SECS_MAX} s"
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if plan.progress {
        eprintln!(
            "bench: fleet emitting after {:.1} s of pre-signing",
            began.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// Pre-signed events per simulator core: five seconds of the offered rate (at least
/// 1,000), so emission starts soon and a generator hiccup does not dent the offered load.
fn presign_buffer(plan: &BenchPlan) -> usize {
    let per_core = plan.rate.saturating_mul(5) / plan.sim_cores.max(1) as u64;
    (per_core as usize).clamp(1_000, SIM_PRESIGN_BUFFER_EVENTS_MAX)
}

/// `max`: let the fleet emit its whole event limit into the hosts' replay backlogs.
fn fill_backlog(
    plan: &BenchPlan,
    fleet: &FleetHandle,
    notes: &mut Vec<String>,
) -> Result<u64, BenchError> {
    let began = Instant::now();
    let limit = Duration::from_secs(BENCH_BACKLOG_FILL_SECS_MAX);
    while !fleet.wait_until_emitted(Duration::from_secs(1)) {
        if began.elapsed() >= limit {
            return Err(BenchError::Config(format!(
                "the fleet did not pre-generate {} events in {} s",
                plan.rate.saturating_mul(plan.duration_secs),
                limit.as_secs()
            )));
        }
        if plan.progress {
            eprintln!(
                "bench: backlog {} events generated",
                fleet.counters().emitted
            );
        }
    }
    let counters = fleet.counters();
    notes.push(format!(
        "max: the fleet pre-generated {} events ({} bytes) into its hosts' replay backlogs in {:.1} s; \
         the relay then read them from cursor 0 as fast as it could",
        counters.emitted,
        counters.bytes,
        began.elapsed().as_secs_f64()
    ));
    Ok(counters.emitted)
}

/// Until the metrics port answers and (live scenarios) every host has a session.
fn connect(
    plan: &BenchPlan,
    relay: &mut RelayProcess,
    fleet: &FleetHandle,
    sampler: &mut Sampler,
    samples: &mut Vec<Sample>,
    notes: &mut Vec<String>,
) -> Result<(), BenchError> {
    let began = Instant::now();
    let limit = Duration::from_secs(BENCH_RELAY_START_SECS_MAX);
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let scrape = prom::scrape(relay.metrics);
        if relay.exited() {
            return Err(BenchError::Relay(format!(
                "exited during start; see {}",
                relay.log.display()
            )));
        }
        let connected = scrape.as_ref().map(|s| s.sum(names::CONNECTED_HOSTS));
        let ready = match connected {
            None => false,
            Some(_) if plan.scenario == Scenario::Max => true,
            Some(hosts) => hosts >= plan.hosts as f64,
        };
        if ready {
            let sample = sampler.take("connect", fleet, scrape.as_ref());
            samples.push(sample);
            return Ok(());
        }
        if began.elapsed() >= limit {
            if scrape.is_none() {
                return Err(BenchError::Relay(format!(
                    "metrics port {} did not answer in {} s",
                    relay.metrics,
                    limit.as_secs()
                )));
            }
            notes.push(format!(
                "only {} of {} hosts connected after {} s; measured anyway",
                connected.unwrap_or(0.0),
                plan.hosts,
                limit.as_secs()
            ));
            return Ok(());
        }
    }
}

/// One sample per second for `secs` seconds, with a progress line each.
fn run_phase(
    plan: &BenchPlan,
    phase: &'static str,
    secs: u64,
    fleet: &FleetHandle,
    relay: &RelayProcess,
    sampler: &mut Sampler,
    samples: &mut Vec<Sample>,
) {
    let began = Instant::now();
    for second in 1..=secs {
        let next = began + Duration::from_secs(second);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        let scrape = prom::scrape(relay.metrics);
        let sample = sampler.take(phase, fleet, scrape.as_ref());
        if plan.progress {
            eprintln!(
                "{}",
                report::progress_line(samples.last(), &sample, second, secs, plan.consumers)
            );
        }
        samples.push(sample);
    }
}

/// Takes [`Sample`]s of the fleet, the relay's /proc and its metrics; keeps the last
/// values when a scrape or a read fails, so totals never go backwards.
struct Sampler {
    started: Instant,
    pid: u32,
    last: Sample,
}

impl Sampler {
    fn new(started: Instant, pid: u32) -> Sampler {
        Sampler {
            started,
            pid,
            last: Sample::default(),
        }
    }

    fn take(
        &mut self,
        phase: &'static str,
        fleet: &FleetHandle,
        scrape: Option<&Scrape>,
    ) -> Sample {
        let mut sample = self.last.clone();
        sample.phase = phase;
        sample.t_secs = self.started.elapsed().as_secs_f64();
        sample.offered_total = fleet.counters().emitted;
        sample.rss_kib = procfs::rss_kib(self.pid).unwrap_or(0);
        if let Some(cpu) = procfs::cpu_secs(self.pid) {
            sample.cpu_secs = cpu;
        }
        if let Some(scrape) = scrape {
            sample.validated_total = scrape.sum(names::SEQUENCED) as u64;
            sample.sent_total = scrape.sum(names::FANOUT_SENT) as u64;
            sample.rejected_total = scrape.sum(names::REJECTIONS) as u64;
            sample.scraped = true;
        } else {
            sample.scraped = false;
        }
        self.last = sample.clone();
        sample
    }
}

/// The relay under test: `relay serve` in a child process.
struct RelayProcess {
    child: Child,
    listen: SocketAddr,
    metrics: SocketAddr,
    data_dir: PathBuf,
    log: PathBuf,
}

impl RelayProcess {
    fn spawn(plan: &BenchPlan, fleet: &FleetHandle) -> Result<RelayProcess, BenchError> {
        let (listen, metrics) = free_ports().map_err(BenchError::Io)?;
        let tag = format!("{}-{}", plan.scenario.label(), std::process::id());
        let data_dir = plan.out.join(format!("relay-data-{tag}"));
        let _ = std::fs::remove_dir_all(&data_dir);
        let log = plan.out.join(format!("relay-{tag}.log"));
        let log_file = std::fs::File::create(&log).map_err(BenchError::Io)?;
        let mut command = Command::new(&plan.relay_exe);
        command
            .arg("serve")
            .args(["--cores", &plan.cores.to_string()])
            .arg("--data-dir")
            .arg(&data_dir)
            .args(["--listen", &listen.to_string()])
            .args(["--metrics-listen", &metrics.to_string()])
            .args(["--plc-url", &fleet.plc_url()])
            .arg("--allow-plaintext")
            // Capacity is measured, not the per-host policy (a host of the `max`
            // scenario offers 200 events/s, over the 50/s default).
            .arg("--no-default-host-limits")
            .env("RELAY_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file);
        if plan.scenario == Scenario::Max {
            command.args(["--new-host-cursor", "0"]);
        }
        for url in fleet.host_urls() {
            command.args(["--upstream", &url]);
        }
        let child = command.spawn().map_err(|e| {
            BenchError::Relay(format!("spawning {}: {e}", plan.relay_exe.display()))
        })?;
        Ok(RelayProcess {
            child,
            listen,
            metrics,
            data_dir,
            log,
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// SIGTERM, wait, kill after `BENCH_RELAY_STOP_SECS_MAX`; remove its data. Returns a
    /// note when it did not exit cleanly (empty otherwise).
    fn stop(mut self) -> String {
        procfs::terminate(self.child.id());
        let deadline = Instant::now() + Duration::from_secs(BENCH_RELAY_STOP_SECS_MAX);
        let note = loop {
            match self.child.try_wait() {
                Ok(Some(status)) if status.success() => break String::new(),
                Ok(Some(status)) => break format!("relay exited with {status} after SIGTERM"),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break format!(
                        "relay did not exit {BENCH_RELAY_STOP_SECS_MAX} s after SIGTERM; killed"
                    );
                }
            }
        };
        let _ = std::fs::remove_dir_all(&self.data_dir);
        note
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// Two free loopback ports (the OS picks them; they are released just before the relay
/// binds them, a race no other process on loopback is expected to win).
fn free_ports() -> std::io::Result<(SocketAddr, SocketAddr)> {
    let a = TcpListener::bind("127.0.0.1:0")?;
    let b = TcpListener::bind("127.0.0.1:0")?;
    Ok((a.local_addr()?, b.local_addr()?))
}

/// The checking consumers: one thread each, running `relay tail`'s library.
struct Consumers {
    stop: StopHandle,
    threads: Vec<JoinHandle<Result<TailReport, crate::tail::TailError>>>,
}

impl Consumers {
    fn start(
        plan: &BenchPlan,
        placement: &CpuPlacement,
        relay: &RelayProcess,
        fleet: &FleetHandle,
    ) -> Consumers {
        let stop = StopHandle::new();
        let url = format!("ws://{}", relay.listen);
        let plc = fleet.plc_url();
        let threads = (0..plan.consumers)
            .filter_map(|index| {
                let mut config = TailConfig::new(&url, &plc);
                config.allow_http = true;
                // `max` reads the backlog the relay sequenced before the consumers came;
                // live scenarios subscribe from now.
                config.cursor = (plan.scenario == Scenario::Max).then_some(0);
                config.idle_timeout = Duration::from_secs(plan.duration_secs + 30);
                config.backends = Backends::Fast;
                config.check_threads = 1;
                config.stop = stop.clone();
                let placement = placement.clone();
                std::thread::Builder::new()
                    .name(format!("bench-consumer-{index}"))
                    .spawn(move || {
                        placement.pin_bench_thread();
                        crate::tail::run(config)
                    })
                    .ok()
            })
            .collect();
        Consumers { stop, threads }
    }

    fn stop(self) -> Result<Vec<TailReport>, crate::tail::TailError> {
        self.stop.stop();
        let mut reports = Vec::new();
        for thread in self.threads {
            // A consumer that panicked has no report; the count shows it.
            if let Ok(report) = thread.join() {
                reports.push(report?);
            }
        }
        Ok(reports)
    }
}
