//! A fleet of simulated PDS hosts and a PLC directory, in one process, on loopback:
//! the library the project's tests and benches (and `relay sim`) run against.
//!
//! Owns: the fleet's configuration, its threads (one generator thread and one glommio
//! executor per core: the generator pre-signs frames into a bounded buffer, the
//! executor serves every host of its core and emits at the target rate), the counters
//! of what was emitted, and the API to rotate keys and migrate accounts.
//! Must not: judge frames (the relay and `relay tail` do); it only counts what it sent
//! and with which intent, so a test can assert a relay's verdicts exactly.
//! Checks: the configuration's bounds. Nothing else.
//!
//! Threads: generator threads do all signing and repo work; executors only stamp
//! `time`, keep the replay backlog and write sockets. The directory (`sim::plc`) is
//! shared behind a lock held for microseconds, never across an await.

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::config::limits::{
    SIM_ACCOUNTS_MAX, SIM_BACKLOG_EVENTS_MAX, SIM_HOSTS_MAX, SIM_PRESIGN_BUFFER_EVENTS_MAX,
    SIM_REPO_RECORDS_MAX,
};
use crate::frame::cid::Cid;
use crate::identity::key::{Curve, PublicKey};
use crate::sim::account::{SimError, did_for_seed, key_for_generation};
use crate::sim::generator::{self, Command, CoreSync, GeneratorPlan};
use crate::sim::host::{self, ExecutorPlan};
use crate::sim::hostile::HostileMode;
use crate::sim::plc::{Directory, Entry, SharedDirectory};

/// Shares of the honest event kinds (any non-negative weights).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KindMix {
    /// `#commit`.
    pub commit: f64,
    /// `#sync`.
    pub sync: f64,
    /// `#identity`.
    pub identity: f64,
    /// `#account`.
    pub account: f64,
}

impl Default for KindMix {
    fn default() -> Self {
        KindMix {
            commit: 0.97,
            sync: 0.01,
            identity: 0.01,
            account: 0.01,
        }
    }
}

/// What to simulate.
#[derive(Clone, Debug, PartialEq)]
pub struct FleetConfig {
    /// Number of PDS hosts (each its own port).
    pub hosts: usize,
    /// Accounts per host.
    pub accounts_per_host: usize,
    /// Target aggregate rate across the fleet, events/s; 0 = as fast as possible.
    pub events_per_sec: u64,
    /// Everything derives from it: the same seed gives the same events.
    pub seed: u64,
    /// Record sizes of creates and updates: (approximate bytes, weight).
    pub record_sizes: Vec<(usize, u32)>,
    /// Share of honest commits that are large (as many 64 KiB records as fit under the
    /// 2,000,000-byte `blocks` limit).
    pub large_commit_share: f64,
    /// Hostile modes. Event modes replace `hostile_share` of events (chosen evenly
    /// among them); host mode number `i` (in this list's order) is given to host `i`.
    pub hostile_modes: Vec<HostileMode>,
    /// Share of events that are hostile, when event modes are configured.
    pub hostile_share: f64,
    /// Stop emitting after this long (the hosts keep serving until `stop`).
    pub duration: Option<Duration>,
    /// Stop after this many generated events (commands like `rotate_key` add more).
    pub event_limit: Option<u64>,
    /// Share of accounts on P-256 (account 0 is always secp256k1, account 1 P-256).
    pub p256_share: f64,
    /// Share of hosts whose first account is a `did:web` served by the host.
    pub did_web_share: f64,
    /// Executors (and generator threads).
    pub cores: usize,
    /// Pre-signed events buffered per core before emission starts and at most after.
    pub presign_buffer_events: usize,
    /// Events each host keeps for cursor replay.
    pub backlog_events: usize,
    /// Honest kinds.
    pub kind_mix: KindMix,
    /// Records an account's repo holds before each create is paired with a delete
    /// (1..=`SIM_REPO_RECORDS_MAX`): the main lever on the fleet's memory.
    pub repo_records: usize,
    /// Address the hosts and the PLC directory listen on.
    pub listen_ip: Ipv4Addr,
}

impl Default for FleetConfig {
    fn default() -> Self {
        FleetConfig {
            hosts: 2,
            accounts_per_host: 4,
            events_per_sec: 1_000,
            seed: 1,
            record_sizes: vec![(200, 70), (1_000, 25), (8_000, 5)],
            large_commit_share: 0.0,
            hostile_modes: Vec::new(),
            hostile_share: 0.0,
            duration: None,
            event_limit: None,
            p256_share: 0.5,
            did_web_share: 0.0,
            cores: 1,
            presign_buffer_events: 10_000,
            backlog_events: 100_000,
            kind_mix: KindMix::default(),
            repo_records: SIM_REPO_RECORDS_MAX,
            listen_ip: Ipv4Addr::LOCALHOST,
        }
    }
}

/// Why a fleet could not start or an API call failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum FleetError {
    /// A configuration value out of its bounds.
    Config(&'static str),
    /// Building an account failed.
    Sim(SimError),
    /// A socket, thread or executor could not be set up.
    Io(std::io::Error),
    /// The DID is not an account of this fleet.
    UnknownDid,
    /// The host index is out of range.
    UnknownHost,
    /// The target host runs on another core (migration stays within one core).
    AcrossCores,
    /// A fleet thread is gone.
    Stopped,
}

impl FleetError {
    /// A short, bounded label.
    pub fn reason(&self) -> &'static str {
        match self {
            FleetError::Config(_) => "sim_config",
            FleetError::Sim(e) => e.reason(),
            FleetError::Io(_) => "sim_io",
            FleetError::UnknownDid => "sim_unknown_did",
            FleetError::UnknownHost => "sim_unknown_host",
            FleetError::AcrossCores => "sim_migration_across_cores",
            FleetError::Stopped => "sim_stopped",
        }
    }
}

impl fmt::Display for FleetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FleetError::Config(what) => write!(f, "fleet configuration: {what}"),
            FleetError::Sim(e) => write!(f, "{e}"),
            FleetError::Io(e) => write!(f, "fleet io: {e}"),
            other => f.write_str(other.reason()),
        }
    }
}

impl std::error::Error for FleetError {}

impl From<SimError> for FleetError {
    fn from(e: SimError) -> Self {
        FleetError::Sim(e)
    }
}

impl From<std::io::Error> for FleetError {
    fn from(e: std::io::Error) -> Self {
        FleetError::Io(e)
    }
}

/// One account, as a test needs it to check frames.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountInfo {
    /// The DID.
    pub did: String,
    /// `127.0.0.1:<port>` of the host its DID document names.
    pub host: String,
    /// The key its DID document publishes now.
    pub public_key: PublicKey,
    /// The key's curve.
    pub curve: Curve,
}

/// A snapshot of what the fleet emitted. Frame-type counts include hostile frames of
/// that type; `valid` counts honest events of every type; `hostile` counts event modes
/// per event, `disconnect_mid_frame`, `slow_drip` and `silent_host` per connection,
/// `reset_seq` per reset. Cut frames are not in `emitted` (they are in `cut_frames`):
/// `emitted + cut_frames` is the number of generated events.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FleetCounters {
    /// Events released to hosts (every frame, honest or hostile).
    pub emitted: u64,
    /// Frames with header `t = #commit`.
    pub commit: u64,
    /// `#sync` frames.
    pub sync: u64,
    /// `#identity` frames.
    pub identity: u64,
    /// `#account` frames.
    pub account: u64,
    /// Frames of a type the lexicon does not define.
    pub unknown: u64,
    /// Honest events (they verify).
    pub valid: u64,
    /// Honest large commits (within the `blocks` limit), also in `valid`.
    pub large_commits: u64,
    /// Per hostile mode label.
    pub hostile: BTreeMap<&'static str, u64>,
    /// Frames released to be cut mid-frame (`disconnect_mid_frame`); not in `emitted`.
    pub cut_frames: u64,
    /// Frame bytes released.
    pub bytes: u64,
    /// Emit ticks that found the pre-signed buffer empty (the generator fell behind).
    pub generator_behind: u64,
    /// Backlog entries dropped to stay within the backlog bounds.
    pub backlog_evicted: u64,
    /// Subscribers disconnected because they fell behind the backlog.
    pub subscribers_lagged: u64,
    /// WebSocket subscriptions accepted.
    pub subscriptions: u64,
    /// Accounts whose keys and repo exist (materialised on first use).
    pub accounts_materialised: u64,
    /// Microseconds from the first release to the moment every emit loop had released
    /// all configured events (or to now, while they have not): the emit rate is
    /// `emitted / emit_micros`.
    pub emit_micros: u64,
}

impl FleetCounters {
    /// Hostile events counted per emitted event (every event mode but
    /// `disconnect_mid_frame`), summed: `valid + hostile_events() == emitted`.
    pub fn hostile_events(&self) -> u64 {
        self.hostile
            .iter()
            .filter(|(label, _)| {
                HostileMode::from_reason(label).is_some_and(|m| m.is_counted_per_event())
            })
            .map(|(_, n)| n)
            .sum()
    }

    /// The count of one mode.
    pub fn hostile_of(&self, mode: HostileMode) -> u64 {
        self.hostile.get(mode.reason()).copied().unwrap_or(0)
    }
}

/// The frame type of a prepared event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FrameKind {
    Commit,
    Sync,
    Identity,
    Account,
    Unknown,
}

/// The live counters, shared by the executors and the API.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub emitted: AtomicU64,
    pub commit: AtomicU64,
    pub sync: AtomicU64,
    pub identity: AtomicU64,
    pub account: AtomicU64,
    pub unknown: AtomicU64,
    pub valid: AtomicU64,
    pub large_commits: AtomicU64,
    pub hostile: [AtomicU64; HostileMode::ALL.len()],
    pub cut_frames: AtomicU64,
    pub bytes: AtomicU64,
    pub generator_behind: AtomicU64,
    pub backlog_evicted: AtomicU64,
    pub subscribers_lagged: AtomicU64,
    pub subscriptions: AtomicU64,
    /// Emit loops that released everything their generator produced after it was done.
    pub emitters_drained: AtomicU64,
    pub accounts_materialised: AtomicU64,
    /// Unix microseconds of the first release (0: none yet).
    pub first_release_micros: AtomicU64,
    /// Unix microseconds of the last emit loop's drain.
    pub drained_micros: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn count_kind(&self, kind: FrameKind) {
        let counter = match kind {
            FrameKind::Commit => &self.commit,
            FrameKind::Sync => &self.sync,
            FrameKind::Identity => &self.identity,
            FrameKind::Account => &self.account,
            FrameKind::Unknown => &self.unknown,
        };
        Counters::add(counter, 1);
        metrics::counter!("relay_sim_events_emitted_total", "frame_type" => kind_label(kind))
            .increment(1);
    }

    pub fn count_hostile(&self, mode: HostileMode) {
        if let Some(counter) = self.hostile.get(mode.index()) {
            Counters::add(counter, 1);
        }
        metrics::counter!("relay_sim_hostile_events_total", "reason" => mode.reason()).increment(1);
    }

    fn emit_micros(&self) -> u64 {
        let first = self.first_release_micros.load(Ordering::Relaxed);
        if first == 0 {
            return 0;
        }
        let drained = self.drained_micros.load(Ordering::Relaxed);
        let end = if drained > 0 {
            drained
        } else {
            generator::now_micros()
        };
        end.saturating_sub(first)
    }

    fn snapshot(&self) -> FleetCounters {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        FleetCounters {
            emitted: get(&self.emitted),
            commit: get(&self.commit),
            sync: get(&self.sync),
            identity: get(&self.identity),
            account: get(&self.account),
            unknown: get(&self.unknown),
            valid: get(&self.valid),
            large_commits: get(&self.large_commits),
            hostile: HostileMode::ALL
                .iter()
                .zip(&self.hostile)
                .filter(|(_, c)| get(c) > 0)
                .map(|(m, c)| (m.reason(), get(c)))
                .collect(),
            cut_frames: get(&self.cut_frames),
            bytes: get(&self.bytes),
            generator_behind: get(&self.generator_behind),
            backlog_evicted: get(&self.backlog_evicted),
            subscribers_lagged: get(&self.subscribers_lagged),
            subscriptions: get(&self.subscriptions),
            accounts_materialised: get(&self.accounts_materialised),
            emit_micros: self.emit_micros(),
        }
    }
}

fn kind_label(kind: FrameKind) -> &'static str {
    match kind {
        FrameKind::Commit => "commit",
        FrameKind::Sync => "sync",
        FrameKind::Identity => "identity",
        FrameKind::Account => "account",
        FrameKind::Unknown => "unknown",
    }
}

/// A directory change that takes effect when its event is emitted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Effect {
    None,
    /// The account's last honest commit.
    Head {
        account: usize,
        cid: Cid,
        rev: String,
    },
    /// The account's key was rotated to this generation.
    KeyRotated {
        account: usize,
        generation: u32,
    },
    /// The account moved to this host.
    Migrated {
        account: usize,
        host: usize,
    },
    /// The account's hosting status changed.
    Active {
        account: usize,
        active: bool,
    },
}

/// How a prepared frame goes on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// A binary WebSocket message (every honest frame).
    Binary,
    /// A text WebSocket message.
    Text,
    /// Half the frame, then the connection closes; live subscribers only, never
    /// replayed, and it takes no seq.
    CutMidFrame,
}

/// One pre-signed event, waiting in the bounded buffer for its emit time.
#[derive(Debug)]
pub(crate) struct Prepared {
    /// Global host index.
    pub host: usize,
    /// The seq written in the frame (0 for frames without one).
    pub seq: u64,
    pub frame: Vec<u8>,
    /// Where the 27-byte `time` string sits in `frame`.
    pub time_at: Option<usize>,
    pub kind: FrameKind,
    pub hostile: Option<HostileMode>,
    pub delivery: Delivery,
    pub effect: Effect,
    /// The host's sequence restarted with this event: clear its backlog first.
    pub reset_seq: bool,
    pub large: bool,
}

/// Everything the threads share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub config: FleetConfig,
    pub directory: SharedDirectory,
    pub counters: Counters,
    pub stop: AtomicBool,
    /// Set once the directory holds every host and account: emission may start.
    pub ready: AtomicBool,
    pub started: RwLock<Option<Instant>>,
}

/// Starts fleets.
#[derive(Debug)]
pub struct Fleet;

impl Fleet {
    /// Bind every host and the PLC directory, build the account table, and start the
    /// generator threads and executors. Emission begins once each core's pre-signed
    /// buffer is full (or its generator is done).
    pub fn start(config: FleetConfig) -> Result<FleetHandle, FleetError> {
        check_config(&config)?;
        let shared = Arc::new(Shared {
            config: config.clone(),
            directory: Arc::new(RwLock::new(Directory::default())),
            counters: Counters::default(),
            stop: AtomicBool::new(false),
            ready: AtomicBool::new(false),
            started: RwLock::new(None),
        });
        let cores = config.cores;
        let (port_tx, port_rx) = mpsc::channel();
        let mut executors = Vec::with_capacity(cores);
        let mut event_txs = Vec::with_capacity(cores);
        let mut command_rxs = Vec::with_capacity(cores);
        let mut command_txs = Vec::with_capacity(cores);
        let syncs: Vec<Arc<CoreSync>> = (0..cores).map(|_| Arc::default()).collect();
        for (core, sync) in syncs.iter().enumerate() {
            let (event_tx, event_rx) = mpsc::sync_channel(config.presign_buffer_events);
            let (command_tx, command_rx) = mpsc::channel();
            event_txs.push(event_tx);
            command_rxs.push(command_rx);
            command_txs.push(command_tx.clone());
            let plan = ExecutorPlan {
                core,
                hosts: hosts_of_core(&config, core),
                serve_plc: core == 0,
                events: event_rx,
                commands: command_tx,
                ports: port_tx.clone(),
                sync: sync.clone(),
            };
            executors.push(host::spawn_executor(shared.clone(), plan)?);
        }
        drop(port_tx);
        let (host_ports, plc_port) = collect_ports(&config, &port_rx, &shared)?;
        fill_directory(&shared, &host_ports)?;
        let mut generators = Vec::with_capacity(cores);
        let per_core = event_txs.into_iter().zip(command_rxs).zip(syncs);
        for (core, ((events, commands), sync)) in per_core.enumerate() {
            let plan = GeneratorPlan {
                core,
                hosts: hosts_of_core(&config, core),
                events,
                commands,
                event_limit: share_of_limit(&config, core),
                sync,
            };
            generators.push(generator::spawn(shared.clone(), plan)?);
        }
        if let Ok(mut started) = shared.started.write() {
            *started = Some(Instant::now());
        }
        shared.ready.store(true, Ordering::Release);
        Ok(FleetHandle {
            shared,
            host_ports,
            plc_port,
            command_txs,
            executors,
            generators,
        })
    }
}

fn check_config(config: &FleetConfig) -> Result<(), FleetError> {
    let share_ok = |s: f64| (0.0..=1.0).contains(&s);
    if config.hosts == 0 || config.hosts > SIM_HOSTS_MAX {
        return Err(FleetError::Config("hosts must be 1..=SIM_HOSTS_MAX"));
    }
    let accounts = config.hosts.saturating_mul(config.accounts_per_host);
    if config.accounts_per_host == 0 || accounts > SIM_ACCOUNTS_MAX {
        return Err(FleetError::Config("accounts must be 1..=SIM_ACCOUNTS_MAX"));
    }
    if config.cores == 0 || config.cores > config.hosts {
        return Err(FleetError::Config("cores must be 1..=hosts"));
    }
    if config.presign_buffer_events == 0
        || config.presign_buffer_events > SIM_PRESIGN_BUFFER_EVENTS_MAX
    {
        return Err(FleetError::Config(
            "presign buffer must be 1..=SIM_PRESIGN_BUFFER_EVENTS_MAX",
        ));
    }
    if config.backlog_events == 0 || config.backlog_events > SIM_BACKLOG_EVENTS_MAX {
        return Err(FleetError::Config(
            "backlog must be 1..=SIM_BACKLOG_EVENTS_MAX",
        ));
    }
    if config.repo_records == 0 || config.repo_records > SIM_REPO_RECORDS_MAX {
        return Err(FleetError::Config(
            "repo records must be 1..=SIM_REPO_RECORDS_MAX",
        ));
    }
    let shares = [
        config.large_commit_share,
        config.hostile_share,
        config.p256_share,
        config.did_web_share,
    ];
    if !shares.into_iter().all(share_ok) {
        return Err(FleetError::Config("shares must be within 0..=1"));
    }
    if config.record_sizes.is_empty() || config.record_sizes.iter().all(|(_, w)| *w == 0) {
        return Err(FleetError::Config("record sizes need a positive weight"));
    }
    let host_modes = config
        .hostile_modes
        .iter()
        .filter(|m| m.is_host_mode())
        .count();
    if host_modes >= config.hosts {
        return Err(FleetError::Config("host modes need more hosts than modes"));
    }
    Ok(())
}

/// Host `h` runs on core `h % cores`.
pub(crate) fn hosts_of_core(config: &FleetConfig, core: usize) -> Vec<usize> {
    (core..config.hosts).step_by(config.cores).collect()
}

/// The core's share of the event limit, in proportion to its hosts.
fn share_of_limit(config: &FleetConfig, core: usize) -> Option<u64> {
    let limit = config.event_limit?;
    let hosts = config.hosts as u64;
    let before = |c: usize| limit * hosts_of_core_count(config, c) / hosts;
    let mine = before(core);
    // The remainder goes to core 0 so the shares add up to the limit.
    let assigned: u64 = (0..config.cores).map(before).sum();
    Some(if core == 0 {
        mine + limit - assigned
    } else {
        mine
    })
}

fn hosts_of_core_count(config: &FleetConfig, core: usize) -> u64 {
    hosts_of_core(config, core).len() as u64
}

/// Wait for every executor to report its bound ports.
fn collect_ports(
    config: &FleetConfig,
    ports: &Receiver<host::BoundPort>,
    shared: &Shared,
) -> Result<(Vec<u16>, u16), FleetError> {
    let mut host_ports = vec![0u16; config.hosts];
    let mut plc_port = 0;
    let expected = config.hosts + 1;
    for _ in 0..expected {
        let bound = ports
            .recv_timeout(Duration::from_secs(30))
            .map_err(|_| FleetError::Stopped)?;
        match bound {
            host::BoundPort::Host { host, port } => {
                if let Some(slot) = host_ports.get_mut(host) {
                    *slot = port;
                }
            }
            host::BoundPort::Plc { port } => plc_port = port,
            host::BoundPort::Failed(e) => {
                shared.stop.store(true, Ordering::Release);
                return Err(FleetError::Io(e));
            }
        }
    }
    Ok((host_ports, plc_port))
}

/// The account table: account `i` is on host `i / accounts_per_host`.
fn fill_directory(shared: &Shared, host_ports: &[u16]) -> Result<(), FleetError> {
    let config = &shared.config;
    let ip = config.listen_ip;
    let accounts = config.hosts * config.accounts_per_host;
    let mut directory = shared.directory.write().map_err(|_| FleetError::Stopped)?;
    directory.hosts = host_ports.iter().map(|p| format!("{ip}:{p}")).collect();
    directory.did_web_of_host = vec![None; config.hosts];
    directory.entries.reserve(accounts);
    for index in 0..accounts {
        let host = index / config.accounts_per_host;
        let seed = account_seed(config.seed, index);
        let did_web = index % config.accounts_per_host == 0
            && unit(seed, 2) < config.did_web_share
            && config.did_web_share > 0.0;
        let did = match (did_web, host_ports.get(host)) {
            (true, Some(port)) => format!("did:web:{ip}%3A{port}"),
            _ => did_for_seed(seed),
        };
        let curve = match index {
            0 => Curve::Secp256k1,
            1 => Curve::P256,
            _ if unit(seed, 1) < config.p256_share => Curve::P256,
            _ => Curve::Secp256k1,
        };
        if did_web && let Some(slot) = directory.did_web_of_host.get_mut(host) {
            *slot = Some(index);
        }
        directory.by_did.insert(did.clone(), index);
        directory.entries.push(Entry {
            did,
            seed,
            curve,
            host,
            key_generation: 0,
            handle: format!("a{index}.h{host}.sim.test"),
            multikey: None,
            head: None,
            active: true,
        });
    }
    Ok(())
}

/// The seed of account `index`: a mix of the fleet seed and the index.
pub(crate) fn account_seed(fleet_seed: u64, index: usize) -> u64 {
    let mut x = fleet_seed ^ (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^= x >> 31;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^ (x >> 29)
}

/// A deterministic number in `0..1` from a seed and a salt.
pub(crate) fn unit(seed: u64, salt: u64) -> f64 {
    let x = account_seed(seed, salt as usize);
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// A running fleet. Dropping it without [`FleetHandle::stop`] stops it too.
#[derive(Debug)]
pub struct FleetHandle {
    shared: Arc<Shared>,
    host_ports: Vec<u16>,
    plc_port: u16,
    command_txs: Vec<Sender<Command>>,
    executors: Vec<glommio::ExecutorJoinHandle<()>>,
    generators: Vec<JoinHandle<()>>,
}

impl FleetHandle {
    /// `ws://<ip>:<port>` of every host, by host index.
    pub fn host_urls(&self) -> Vec<String> {
        self.hostnames()
            .into_iter()
            .map(|h| format!("ws://{h}"))
            .collect()
    }

    /// `<ip>:<port>` of every host (what a relay is told to crawl).
    pub fn hostnames(&self) -> Vec<String> {
        let ip = self.shared.config.listen_ip;
        self.host_ports
            .iter()
            .map(|p| format!("{ip}:{p}"))
            .collect()
    }

    /// `http://<ip>:<port>` of the PLC directory.
    pub fn plc_url(&self) -> String {
        format!("http://{}:{}", self.shared.config.listen_ip, self.plc_port)
    }

    /// Every account with the key and host its DID document names now. Derives each
    /// public key (tens of microseconds per account).
    pub fn accounts(&self) -> Vec<AccountInfo> {
        let Ok(directory) = self.shared.directory.read() else {
            return Vec::new();
        };
        directory
            .entries
            .iter()
            .filter_map(|entry| {
                let key = key_for_generation(entry.seed, entry.curve, entry.key_generation).ok()?;
                Some(AccountInfo {
                    did: entry.did.clone(),
                    host: directory.hosts.get(entry.host).cloned().unwrap_or_default(),
                    public_key: key.public_key(),
                    curve: entry.curve,
                })
            })
            .collect()
    }

    /// A snapshot of the counters.
    pub fn counters(&self) -> FleetCounters {
        self.shared.counters.snapshot()
    }

    /// Rotate the account's key: its generator signs with the next key from now on
    /// and emits an `#identity` event; the DID document changes when that is emitted.
    pub fn rotate_key(&self, did: &str) -> Result<(), FleetError> {
        let (account, host) = self.locate(did)?;
        self.send(host, Command::RotateKey { account })
    }

    /// Move the account to host `to_host` (an index into [`FleetHandle::hostnames`]):
    /// its events come from that host from now on, announced by an `#identity` event
    /// there; the DID document changes when that is emitted. Both hosts must run on the
    /// same core.
    pub fn migrate(&self, did: &str, to_host: usize) -> Result<(), FleetError> {
        let (account, host) = self.locate(did)?;
        let cores = self.shared.config.cores;
        if to_host >= self.host_ports.len() {
            return Err(FleetError::UnknownHost);
        }
        if to_host % cores != host % cores {
            return Err(FleetError::AcrossCores);
        }
        self.send(host, Command::Migrate { account, to_host })
    }

    /// Make the account inactive at its host: an `#account` event (active false, with
    /// `status`, e.g. `deactivated`) is emitted, and the host's `getRepoStatus` says
    /// inactive from then on. Its commits go on being emitted.
    pub fn deactivate(&self, did: &str, status: &str) -> Result<(), FleetError> {
        let (account, host) = self.locate(did)?;
        let status = status.to_owned();
        self.send(host, Command::Deactivate { account, status })
    }

    /// Change what the account's host answers in `getRepoStatus` (and `listRepos`) at
    /// once, without emitting an `#account` event: a host whose status event was lost.
    pub fn set_hosting_active(&self, did: &str, active: bool) -> Result<(), FleetError> {
        let mut directory = self
            .shared
            .directory
            .write()
            .map_err(|_| FleetError::Stopped)?;
        let account = *directory.by_did.get(did).ok_or(FleetError::UnknownDid)?;
        let entry = directory
            .entries
            .get_mut(account)
            .ok_or(FleetError::UnknownDid)?;
        entry.active = active;
        Ok(())
    }

    /// Wait until every configured event was emitted (an event limit must be set) or
    /// `timeout` passes; true when all were.
    pub fn wait_until_emitted(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let cores = self.shared.config.cores as u64;
        while Instant::now() < deadline {
            if self
                .shared
                .counters
                .emitters_drained
                .load(Ordering::Acquire)
                >= cores
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }

    /// Stop every thread and return the final counters.
    pub fn stop(mut self) -> FleetCounters {
        self.shutdown();
        self.shared.counters.snapshot()
    }

    fn shutdown(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        for generator in self.generators.drain(..) {
            let _ = generator.join();
        }
        for executor in self.executors.drain(..) {
            let _ = executor.join();
        }
    }

    fn locate(&self, did: &str) -> Result<(usize, usize), FleetError> {
        let directory = self
            .shared
            .directory
            .read()
            .map_err(|_| FleetError::Stopped)?;
        let account = *directory.by_did.get(did).ok_or(FleetError::UnknownDid)?;
        let host = directory
            .entries
            .get(account)
            .map(|e| e.host)
            .ok_or(FleetError::UnknownDid)?;
        Ok((account, host))
    }

    fn send(&self, host: usize, command: Command) -> Result<(), FleetError> {
        let core = host % self.shared.config.cores;
        self.command_txs
            .get(core)
            .ok_or(FleetError::Stopped)?
            .send(command)
            .map_err(|_| FleetError::Stopped)
    }
}

impl Drop for FleetHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Where the 27-byte `time` value of a frame sits (see `docs/SIM.md`, emit time).
pub fn find_time(frame: &[u8]) -> Option<usize> {
    generator::find_time(frame)
}

/// Overwrite the `time` value at `at` with `now_micros` as RFC 3339 with microseconds:
/// what the emit loop does to every frame right before releasing it. False when `at`
/// is out of range.
pub fn stamp_time(frame: &mut [u8], at: usize, now_micros: u64) -> bool {
    let time = crate::sim::account::rfc3339_micros(now_micros);
    match frame.get_mut(at..at + generator::TIME_BYTES) {
        Some(slot) if time.len() == generator::TIME_BYTES => {
            slot.copy_from_slice(time.as_bytes());
            true
        }
        _ => false,
    }
}

/// The sender half of a core's pre-signed buffer.
pub(crate) type EventSender = SyncSender<Prepared>;
