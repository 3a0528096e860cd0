//! `relay serve`: starts the executors and wires ingest → sequencer → log → fan-out.
//!
//! Owns: startup order (log recovery, identity, replay threads, metrics, executors),
//! the rings between roles (glommio SPSC shared channels), pinning, and shutdown on
//! SIGINT/SIGTERM. Must not: decode, verify or persist anything itself.
//!
//! Startup: the event log is opened and recovered on the main thread (it blocks on the
//! disk) before any executor starts; the next seq comes from its recovery. Each executor
//! is pinned to one allowed CPU with core_affinity (round-robin when `--cores` exceeds
//! them) and runs the roles `runtime::placement::plan` gives it. Each upstream host is
//! registered in the store first; its stored record (limits, account count) goes to its
//! ingest shard with it, and limit changes from the admin API follow as `ShardCommand`s.

use crate::api::server::{self as http_server, Router};
use crate::api::xrpc::{ApiContext, ApiShared, CrawlRequest};
use crate::config::limits::{
    ADMIN_STATUS_QUEUE_ENTRIES_MAX, ADMIN_TAKEDOWN_SETTLE_MILLIS, EVENTLOG_RETENTION_INTERVAL_SECS,
    FANOUT_RING_SLOTS_MAX, INGEST_REJECTION_LOG_ENTRIES_PER_SHARD_MAX,
    INGEST_UPSTREAM_QUEUE_FRAMES_MAX, SEQUENCER_RING_SLOTS_MAX,
};
use crate::config::{ServeArgs, Validation};
use crate::eventlog::{AccountKey, EventLog, EventLogConfig, OnDurable};
use crate::fanout::{Hub, HubConfig, ReplayPool};
use crate::identity::service::{IdentityConfig, IdentityService};
use crate::runtime::frames::{FrameRegion, FrameRegionConfig, FrameWriter, RegionId};
use crate::runtime::ingest::{HostEntry, IngestShard, ShardCommand, ShardParts, authority_of};
use crate::runtime::notify::Notify;
use crate::runtime::placement::{self, CoreRoles};
use crate::runtime::rejections::{RejectionLog, ShardRejections};
use crate::runtime::resume::{TailStates, account_states_from_tail};
use crate::runtime::seq_alerts::SeqAlerts;
use crate::sequencer::Sequencer;
use crate::sequencer::stage::{Admitted, Published, SequencerStage};
use crate::state::{LocalStatus, StateConfig, StateService};
use crate::upstream::session::{SessionControl, SessionLimits, run_session};
use crate::upstream::target::{HostId, HostTarget};
use crate::upstream::tls::client_tls_config;
use glommio::channels::local_channel;
use glommio::channels::shared_channel::{self, SharedReceiver, SharedSender};
use glommio::{LocalExecutorBuilder, Placement};
use std::cell::RefCell;
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

/// Why the relay could not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServeError {
    /// A flag's value is unusable.
    Config(String),
    /// The event log did not open.
    EventLog(crate::eventlog::EventLogError),
    /// A thread or executor did not start.
    Spawn(String),
}

impl std::fmt::Display for ServeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServeError::Config(e) => write!(f, "configuration: {e}"),
            ServeError::EventLog(e) => write!(f, "event log: {e}"),
            ServeError::Spawn(e) => write!(f, "starting: {e}"),
        }
    }
}

impl std::error::Error for ServeError {}

/// Run the relay until SIGINT or SIGTERM.
pub fn run(args: ServeArgs) -> ExitCode {
    crate::runtime::logging::init();
    crate::runtime::signals::block_termination();
    match start(&args) {
        Ok(relay) => {
            let signal = crate::runtime::signals::wait_for_termination();
            log::info!("relay: {signal} received; stopping");
            relay.stop();
            ExitCode::SUCCESS
        }
        Err(e) => {
            log::error!("relay serve: {e}");
            eprintln!("relay serve: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A started relay: its executors run until [`Relay::stop`].
pub struct Relay {
    executors: Vec<glommio::ExecutorJoinHandle<()>>,
    stop: Vec<Arc<Notify>>,
    regions: RegionRegistry,
    state: Arc<StateService>,
    identity_persister: crate::runtime::identity_persist::Persister,
    collections: crate::collections::indexer::IndexerThread,
    backfill: crate::collections::backfill::BackfillWorker,
    /// Re-asks hosts about accounts they said are inactive; stopped before the store.
    status_recheck: crate::runtime::status_recheck::Rechecker,
    /// Dropped at stop: ends the retention thread.
    retention: flume::Sender<()>,
    /// The bound public address (useful when the flag asked for port 0).
    pub listen: std::net::SocketAddr,
    /// The bound metrics address.
    pub metrics_listen: std::net::SocketAddr,
}

/// The ingest cores' frame regions, readable from any thread (their counters are atomics).
type RegionRegistry = Arc<std::sync::Mutex<Vec<Arc<FrameRegion>>>>;

impl Relay {
    /// User-space copies of frame bytes made by the ingest cores' frame buffers since start
    /// (`relay_frame_copied_bytes_total` reports the same figure).
    pub fn frame_copied_bytes(&self) -> u64 {
        let regions = match self.regions.lock() {
            Ok(regions) => regions,
            Err(poisoned) => poisoned.into_inner(),
        };
        regions.iter().map(|r| r.counters().bytes_copied).sum()
    }

    /// Stop the executors. Frames not yet durable are not broadcast; the log's recovery
    /// handles whatever the writer had not finished.
    pub fn stop(self) {
        for stop in &self.stop {
            stop.notify();
        }
        for executor in self.executors {
            let _ = executor.join();
        }
        self.identity_persister.stop();
        self.collections.stop();
        self.backfill.stop();
        self.status_recheck.stop();
        drop(self.retention);
        close_state(&self.state);
    }
}

/// Make the write-behind state durable and close the store, even though tasks of the
/// stopped executors may still hold the service: glommio does not drop the futures of
/// detached tasks parked on a waker when its executor ends, so their `Arc`s never go.
/// Closing matters beyond durability: a RocksDB left open while the process exits can
/// crash in its background threads as static destructors run.
fn close_state(state: &StateService) {
    if let Err(e) = state.close() {
        log::warn!("state shutdown: {e}");
    }
}

/// The rings of one relay: every ingest shard → the sequencer, the sequencer → every
/// fan-out core.
struct Rings {
    to_sequencer: Vec<RingEnds<Admitted>>,
    to_fanout: Vec<RingEnds<Published>>,
}

/// Both ends of one ring until each is handed to its executor.
type RingEnds<T> = (Option<SharedSender<T>>, Option<SharedReceiver<T>>);

/// Everything one executor needs, moved into its thread.
struct CoreSetup {
    roles: CoreRoles,
    cpu: Option<core_affinity::CoreId>,
    args: ServeArgs,
    log: EventLog,
    identity: IdentityService,
    replay: ReplayPool,
    listener: Option<std::net::TcpListener>,
    hosts: Vec<UpstreamHost>,
    ingest_sender: Option<SharedSender<Admitted>>,
    crawl: Option<flume::Receiver<CrawlRequest>>,
    statuses: Option<flume::Receiver<ShardCommand>>,
    hides: Option<flume::Receiver<(AccountKey, bool)>>,
    api: ApiShared,
    parts: SharedParts,
    sequencer: Option<SequencerSetup>,
    fanout_receiver: Option<SharedReceiver<Published>>,
    /// Notified by `Relay::stop`. (Not a shared channel: glommio keeps polling a channel
    /// whose peer lives outside any executor, so the core would never sleep.)
    stop: Arc<Notify>,
}

/// Parts every core holds a reference to.
#[derive(Clone)]
struct SharedParts {
    regions: RegionRegistry,
    state: Arc<StateService>,
    tail: Arc<TailStates>,
    /// Every ingest shard's rejection ring (each shard records into its own).
    rejections: Arc<RejectionLog>,
    limits_board: Arc<crate::verify::limits::HostLimitsBoard>,
    /// Hosts whose seq went back, flagged by the shards for `GET /admin/hosts`.
    seq_alerts: Arc<SeqAlerts>,
}

/// An upstream host as its shard starts it.
#[derive(Clone)]
struct UpstreamHost {
    id: HostId,
    url: String,
    cursor: Option<u64>,
    /// The stored record (its limits and account count), when the store answered.
    record: Option<crate::state::HostRecord>,
}

struct SequencerSetup {
    sequencer: Sequencer,
    appender: crate::eventlog::Appender<Published>,
    durable_notify: Arc<Notify>,
    ingest_receivers: Vec<SharedReceiver<Admitted>>,
    fanout_senders: Vec<SharedSender<Published>>,
}

/// Start the relay's executors and return once they run.
pub fn start(args: &ServeArgs) -> Result<Relay, ServeError> {
    let plan = placement::plan(args.cores);
    let shards = placement::ingest_shards(&plan);
    let fanout_cores = plan.iter().filter(|r| r.fanout).count();

    let mut log_config = EventLogConfig::new(&args.data_dir);
    log_config.replay_window = Duration::from_secs(args.replay_window_secs);
    log_config.bytes_max = args.eventlog_bytes_max;
    let (log, recovery) = EventLog::open(&log_config).map_err(ServeError::EventLog)?;
    log::info!(
        "event log recovered: next seq {}, {} segments",
        recovery.next_seq.get(),
        log.segment_count()
    );
    let durable_notify = Arc::new(Notify::new());
    let notify = Arc::clone(&durable_notify);
    let appender = log
        .start_writer(Some(OnDurable::new(move |_| notify.notify())))
        .map_err(ServeError::EventLog)?;

    let mut identity_config = IdentityConfig::new(&args.plc_url);
    identity_config.allow_http = args.allow_plaintext;
    let identity = IdentityService::spawn(identity_config)
        .map_err(|e| ServeError::Config(format!("identity: {e}")))?;
    let replay = ReplayPool::start(&log, fanout_cores.clamp(1, 4))
        .map_err(|e| ServeError::Spawn(format!("replay threads: {e}")))?;
    let metrics_listen = crate::runtime::metrics_http::start(args.metrics_listen)
        .map_err(|e| ServeError::Spawn(format!("metrics on {}: {e}", args.metrics_listen)))?;
    let tail = account_states_from_tail(&log, recovery.next_seq);
    log::info!(
        "resume: {} accounts' last revs read from the log's tail",
        tail.len()
    );
    let store = crate::state::open(&StateConfig::from_serve_args(args))
        .map_err(|e| ServeError::Config(format!("state store: {e}")))?;
    let state =
        Arc::new(StateService::start(store).map_err(|e| ServeError::Spawn(format!("state: {e}")))?);
    match crate::runtime::identity_persist::load(&identity, &state) {
        Ok((read, kept)) => log::info!("identity cache: {kept} of {read} saved entries loaded"),
        Err(e) => log::warn!("identity cache: loading saved entries failed (starting cold): {e}"),
    }
    let identity_persister =
        crate::runtime::identity_persist::spawn(identity.clone(), Arc::clone(&state))
            .map_err(|e| ServeError::Spawn(format!("identity persister: {e}")))?;
    let collections =
        crate::collections::indexer::IndexerThread::spawn(log.clone(), Arc::clone(&state))
            .map_err(|e| ServeError::Spawn(format!("collection indexer: {e}")))?;
    let tls = client_tls_config().map_err(|e| ServeError::Config(format!("TLS roots: {e}")))?;
    let backfill =
        crate::collections::backfill::BackfillWorker::spawn(Arc::clone(&state), tls.clone())
            .map_err(|e| ServeError::Spawn(format!("collection backfill: {e}")))?;
    let (crawl_tx, crawl_rx) = crate::api::xrpc::crawl_channel();
    let (admin_tx, admin_rx) = crate::admin::admin_channel();
    let rejections = Arc::new(RejectionLog::new(shards));
    let limits_board = Arc::new(crate::verify::limits::HostLimitsBoard::default());
    let seq_alerts = Arc::new(SeqAlerts::default());
    let api = ApiShared {
        state: Arc::clone(&state),
        admin_token: args.admin_token.clone(),
        allow_private_hosts: args.allow_private_hosts,
        crawl_requests: crawl_tx.clone(),
        admin_events: admin_tx,
        tls: tls.clone(),
        new_hosts: Arc::default(),
        backfill: Some(backfill.clone()),
        allow_plaintext: args.allow_plaintext,
        rejections: Arc::clone(&rejections),
        consumers: Arc::default(),
        host_limits: Arc::clone(&limits_board),
        default_host_limits: !args.no_default_host_limits,
        seq_alerts: Arc::clone(&seq_alerts),
    };
    let mut shard_crawls = Vec::new();
    let mut shard_crawl_senders = Vec::new();
    let mut shard_statuses = Vec::new();
    let mut shard_status_senders = Vec::new();
    for _ in 0..shards {
        let (tx, rx) = crate::api::xrpc::crawl_channel();
        shard_crawl_senders.push(tx);
        shard_crawls.push(Some(rx));
        let (tx, rx) = flume::bounded(ADMIN_STATUS_QUEUE_ENTRIES_MAX);
        shard_status_senders.push(tx);
        shard_statuses.push(Some(rx));
    }
    spawn_crawl_dispatch(crawl_rx, shard_crawl_senders)?;
    let retention = spawn_retention(log.clone())?;
    let mut fanout_hides = Vec::new();
    let mut fanout_hide_senders = Vec::new();
    for _ in 0..fanout_cores {
        let (tx, rx) = flume::bounded(ADMIN_STATUS_QUEUE_ENTRIES_MAX);
        fanout_hide_senders.push(tx);
        fanout_hides.push(Some(rx));
    }
    let status_recheck =
        crate::runtime::status_recheck::spawn(crate::runtime::status_recheck::RecheckParts {
            state: Arc::clone(&state),
            shards: shard_status_senders.clone(),
            tls: tls.clone(),
            interval: Duration::from_secs(args.status_recheck_interval_secs),
            allow_plaintext: args.allow_plaintext,
        })
        .map_err(|e| ServeError::Spawn(format!("status re-check: {e}")))?;
    spawn_admin_applier(
        admin_rx,
        log.clone(),
        shard_status_senders,
        fanout_hide_senders,
        crawl_tx,
        Arc::clone(&state),
    )?;
    let parts = SharedParts {
        regions: Arc::default(),
        state: Arc::clone(&state),
        tail: Arc::new(tail),
        rejections,
        limits_board,
        seq_alerts,
    };

    // One std listener, cloned per fan-out core: the kernel spreads connections over
    // the cores that accept on it.
    let listener = std::net::TcpListener::bind(args.listen)
        .map_err(|e| ServeError::Spawn(format!("listening on {}: {e}", args.listen)))?;
    let listen = listener
        .local_addr()
        .map_err(|e| ServeError::Spawn(e.to_string()))?;

    let mut rings = Rings {
        to_sequencer: (0..shards)
            .map(|_| {
                let (tx, rx) = shared_channel::new_bounded(SEQUENCER_RING_SLOTS_MAX);
                (Some(tx), Some(rx))
            })
            .collect(),
        to_fanout: (0..fanout_cores)
            .map(|_| {
                let (tx, rx) = shared_channel::new_bounded(FANOUT_RING_SLOTS_MAX);
                (Some(tx), Some(rx))
            })
            .collect(),
    };
    if let Some(source) = &args.bootstrap_relay {
        bootstrap_hosts(source, &state, &tls, args);
    }
    let mut hosts_by_shard: Vec<Vec<UpstreamHost>> = vec![Vec::new(); shards];
    for url in &args.upstreams {
        let host = admit_upstream(&state, url, args.new_host_cursor)?;
        let shard = placement::shard_of_host(&authority_of(url).unwrap_or_default(), shards);
        if let Some(list) = hosts_by_shard.get_mut(shard) {
            list.push(host);
        }
    }
    add_stored_hosts(&state, args, &mut hosts_by_shard);

    let cpus = core_affinity::get_core_ids().unwrap_or_default();
    let mut sequencer_setup = Some(SequencerSetup {
        sequencer: Sequencer::new(recovery.next_seq),
        appender,
        durable_notify,
        ingest_receivers: rings
            .to_sequencer
            .iter_mut()
            .filter_map(|(_, rx)| rx.take())
            .collect(),
        fanout_senders: rings
            .to_fanout
            .iter_mut()
            .filter_map(|(tx, _)| tx.take())
            .collect(),
    });
    let mut executors = Vec::new();
    let mut stops = Vec::new();
    let mut fanout_index = 0;
    for roles in plan {
        let stop = Arc::new(Notify::new());
        stops.push(Arc::clone(&stop));
        let fanout_receiver = if roles.fanout {
            let rx = rings
                .to_fanout
                .get_mut(fanout_index)
                .and_then(|(_, rx)| rx.take());
            fanout_index += 1;
            rx
        } else {
            None
        };
        let setup = CoreSetup {
            roles,
            cpu: (!cpus.is_empty()).then(|| cpus[roles.executor % cpus.len()]),
            args: args.clone(),
            log: log.clone(),
            identity: identity.clone(),
            replay: replay.clone(),
            listener: if roles.fanout {
                Some(
                    listener
                        .try_clone()
                        .map_err(|e| ServeError::Spawn(e.to_string()))?,
                )
            } else {
                None
            },
            hosts: roles
                .ingest_shard
                .and_then(|s| hosts_by_shard.get(s).cloned())
                .unwrap_or_default(),
            ingest_sender: roles
                .ingest_shard
                .and_then(|s| rings.to_sequencer.get_mut(s))
                .and_then(|(tx, _)| tx.take()),
            crawl: roles
                .ingest_shard
                .and_then(|s| shard_crawls.get_mut(s))
                .and_then(Option::take),
            statuses: roles
                .ingest_shard
                .and_then(|s| shard_statuses.get_mut(s))
                .and_then(Option::take),
            hides: if roles.fanout {
                fanout_hides
                    .get_mut(fanout_index - 1)
                    .and_then(Option::take)
            } else {
                None
            },
            api: api.clone(),
            parts: parts.clone(),
            sequencer: if roles.sequencer {
                sequencer_setup.take()
            } else {
                None
            },
            fanout_receiver,
            stop,
        };
        let handle = LocalExecutorBuilder::new(Placement::Unbound)
            .name(&format!("relay-core-{}", roles.executor))
            .spawn(move || run_core(setup))
            .map_err(|e| ServeError::Spawn(format!("executor {}: {e}", roles.executor)))?;
        executors.push(handle);
    }
    Ok(Relay {
        executors,
        stop: stops,
        regions: parts.regions,
        state,
        identity_persister,
        collections,
        backfill,
        status_recheck,
        retention,
        listen,
        metrics_listen,
    })
}

/// One executor: pin, start its roles, run until told to stop.
async fn run_core(setup: CoreSetup) {
    if let Some(cpu) = setup.cpu
        && !core_affinity::set_for_current(cpu)
    {
        log::warn!(
            "executor {}: could not pin to cpu {}",
            setup.roles.executor,
            cpu.id
        );
    }
    let CoreSetup {
        roles,
        args,
        log,
        identity,
        replay,
        listener,
        hosts,
        ingest_sender,
        crawl,
        statuses,
        hides,
        api,
        parts,
        sequencer,
        fanout_receiver,
        stop,
        ..
    } = setup;
    if let Some(sequencer) = sequencer {
        glommio::spawn_local(run_sequencer(
            sequencer,
            log.durable_seq_handle(),
            Arc::clone(&parts.state),
        ))
        .detach();
    }
    if let (Some(receiver), Some(listener)) = (fanout_receiver, listener) {
        glommio::spawn_local(run_fanout(
            roles.executor,
            receiver,
            listener,
            log.clone(),
            replay,
            api,
            hides,
        ))
        .detach();
    }
    if let (Some(shard), Some(sender), Some(crawl), Some(statuses)) =
        (roles.ingest_shard, ingest_sender, crawl, statuses)
    {
        let inputs = IngestInputs {
            hosts,
            crawl,
            statuses,
        };
        glommio::spawn_local(run_ingest(shard, sender, inputs, identity, args, parts)).detach();
    }
    stop.notified().await;
}

async fn run_sequencer(
    setup: SequencerSetup,
    durable: crate::eventlog::DurableSeq,
    state: Arc<StateService>,
) {
    let stage = SequencerStage::new(
        setup.sequencer,
        setup.appender,
        durable,
        setup.durable_notify,
    );
    for receiver in setup.ingest_receivers {
        let stage = Rc::clone(&stage);
        glommio::spawn_local(async move {
            let ring = receiver.connect().await;
            stage.drain_ring(ring).await;
        })
        .detach();
    }
    let mut rings = Vec::new();
    for sender in setup.fanout_senders {
        rings.push(glommio::spawn_local(sender.connect()));
    }
    let mut connected = Vec::new();
    for ring in rings {
        connected.push(ring.await);
    }
    stage
        .publish(
            connected,
            Box::new(move |_frame, origin| record_published(&state, origin)),
        )
        .await;
}

async fn run_fanout(
    executor: usize,
    receiver: SharedReceiver<Published>,
    listener: std::net::TcpListener,
    log: EventLog,
    replay: ReplayPool,
    api: ApiShared,
    hides: Option<flume::Receiver<(AccountKey, bool)>>,
) {
    let hub = match Hub::new(executor, HubConfig::new(), log, replay) {
        Ok(hub) => hub,
        Err(e) => {
            log::error!("fan-out core {executor}: {e}");
            return;
        }
    };
    let pump_hub = Rc::clone(&hub);
    glommio::spawn_local(async move {
        let ring = receiver.connect().await;
        while let Some(frame) = ring.recv().await {
            pump_hub.publish(frame);
        }
    })
    .detach();
    if let Some(hides) = hides {
        let hub = Rc::clone(&hub);
        glommio::spawn_local(async move {
            while let Ok((account, hidden)) = hides.recv_async().await {
                if hidden {
                    hub.hide_account(account);
                } else {
                    hub.unhide_account(account);
                }
            }
        })
        .detach();
    }
    // Admin requests land on any core: this core's consumers join the view of all cores.
    api.consumers.register(hub.consumer_view()).await;
    let mut router = Router::new(env!("CARGO_PKG_VERSION"));
    router.websocket(
        "/xrpc/com.atproto.sync.subscribeRepos",
        hub.subscribe_repos(),
    );
    crate::api::xrpc::register(&mut router, Rc::new(ApiContext::new(api)));
    http_server::serve(shared_listener(listener), Rc::new(router)).await;
}

/// What feeds one ingest shard besides its sockets.
struct IngestInputs {
    hosts: Vec<UpstreamHost>,
    crawl: flume::Receiver<CrawlRequest>,
    statuses: flume::Receiver<ShardCommand>,
}

async fn run_ingest(
    shard: usize,
    sender: SharedSender<Admitted>,
    inputs: IngestInputs,
    identity: IdentityService,
    args: ServeArgs,
    parts: SharedParts,
) {
    let IngestInputs {
        hosts,
        crawl,
        statuses,
    } = inputs;
    let ring = sender.connect().await;
    let writer = match FrameWriter::new(RegionId::new(shard as u32), FrameRegionConfig::default()) {
        Ok(writer) => {
            match parts.regions.lock() {
                Ok(mut regions) => regions.push(Arc::clone(writer.region())),
                Err(poisoned) => poisoned.into_inner().push(Arc::clone(writer.region())),
            }
            Rc::new(RefCell::new(writer))
        }
        Err(e) => {
            log::error!("ingest shard {shard}: frame buffer: {e}");
            return;
        }
    };
    let tls = match client_tls_config() {
        Ok(tls) => tls,
        Err(e) => {
            log::error!("ingest shard {shard}: TLS roots: {e}");
            return;
        }
    };
    glommio::spawn_local(export_frame_counters(
        shard,
        Arc::clone(writer.borrow().region()),
    ))
    .detach();
    let (frames_tx, frames_rx) = local_channel::new_bounded(INGEST_UPSTREAM_QUEUE_FRAMES_MAX);
    let (resolved_tx, resolved_rx) = local_channel::new_bounded(INGEST_UPSTREAM_QUEUE_FRAMES_MAX);
    // The log has one ring per shard of the plan; a shard outside it (never, by
    // construction) records into a ring no reader sees rather than not at all.
    let rejections = parts.rejections.shard(shard).unwrap_or_else(|| {
        Arc::new(ShardRejections::new(
            shard as u16,
            INGEST_REJECTION_LOG_ENTRIES_PER_SHARD_MAX,
        ))
    });
    let mut verifier = IngestShard::new(
        ShardParts {
            shard: shard as u16,
            strict: args.validation == Validation::Strict,
            identity,
            state: Arc::clone(&parts.state),
            tail: Arc::clone(&parts.tail),
            rejections,
            limits_board: Arc::clone(&parts.limits_board),
            default_limits: !args.no_default_host_limits,
            seq_alerts: Arc::clone(&parts.seq_alerts),
        },
        resolved_tx,
        ring,
    );
    verifier.set_writer(Rc::clone(&writer));
    let sessions = Rc::new(Sessions {
        shard,
        writer,
        tls,
        out: Rc::new(frames_tx),
        allow_plaintext: args.allow_plaintext,
        running: RefCell::new(std::collections::HashSet::new()),
    });
    for host in hosts {
        let control = SessionControl::new(host.cursor);
        let authority = authority_of(&host.url).unwrap_or_default();
        let mut entry = HostEntry::new(authority, Rc::clone(&control));
        if let Some(record) = &host.record {
            entry = entry.with_stored_limits(record);
        }
        verifier.add_host(host.id, entry);
        sessions.start(host, control);
    }
    let (hosts_tx, hosts_rx) = local_channel::new_bounded(INGEST_UPSTREAM_QUEUE_FRAMES_MAX);
    glommio::spawn_local(admit_crawled_hosts(
        Rc::clone(&sessions),
        crawl,
        hosts_tx,
        Arc::clone(&parts.state),
        args,
    ))
    .detach();
    drop(sessions);
    verifier
        .run(frames_rx, resolved_rx, hosts_rx, statuses)
        .await;
}

/// The upstream sessions of one ingest shard.
struct Sessions {
    shard: usize,
    writer: Rc<RefCell<FrameWriter>>,
    tls: Arc<rustls::ClientConfig>,
    out: Rc<local_channel::LocalSender<crate::upstream::session::UpstreamFrame>>,
    allow_plaintext: bool,
    running: RefCell<std::collections::HashSet<HostId>>,
}

impl Sessions {
    /// Start `host`'s session unless one runs.
    fn start(self: &Rc<Self>, host: UpstreamHost, control: Rc<SessionControl>) {
        if !self.running.borrow_mut().insert(host.id) {
            return;
        }
        let target = HostTarget {
            host_id: host.id,
            url: host.url,
            allow_plaintext: self.allow_plaintext,
        };
        let limits = SessionLimits {
            shard: self.shard as u32,
            ..SessionLimits::default()
        };
        let sessions = Rc::clone(self);
        glommio::spawn_local(async move {
            let reason = run_session(
                target,
                control,
                Rc::clone(&sessions.writer),
                Arc::clone(&sessions.tls),
                Rc::clone(&sessions.out),
                limits,
            )
            .await;
            sessions.running.borrow_mut().remove(&host.id);
            log::warn!("upstream session {} ended: {}", host.id.0, reason.reason());
        })
        .detach();
    }
}

/// Hosts accepted by requestCrawl for this shard: registered with the verifier first,
/// then subscribed from their stored cursor (or `--new-host-cursor`).
async fn admit_crawled_hosts(
    sessions: Rc<Sessions>,
    crawl: flume::Receiver<CrawlRequest>,
    verifier: local_channel::LocalSender<(HostId, HostEntry)>,
    state: Arc<StateService>,
    args: ServeArgs,
) {
    while let Ok(request) = crawl.recv_async().await {
        let id = HostId(request.host_id);
        if sessions.running.borrow().contains(&id) {
            continue;
        }
        let stored = state.load_host(&request.hostname).await.ok().flatten();
        let cursor = match stored.as_ref().map(|h| h.last_seq) {
            Some(seq) if seq > 0 => Some(seq),
            _ => args.new_host_cursor,
        };
        let url = crawl_url(&request.hostname, args.allow_private_hosts);
        let control = SessionControl::new(cursor);
        let mut entry = HostEntry::new(request.hostname.clone(), Rc::clone(&control));
        if let Some(record) = &stored {
            entry = entry.with_stored_limits(record);
        }
        if verifier.send((id, entry)).await.is_err() {
            return;
        }
        log::info!("crawling {url} (host {})", id.0);
        let host = UpstreamHost {
            id,
            url,
            cursor,
            record: stored,
        };
        sessions.start(host, control);
    }
}

/// Import `--bootstrap-relay`'s hosts into the store (a failure is logged: the relay
/// starts with the hosts it has).
fn bootstrap_hosts(
    source: &str,
    state: &StateService,
    tls: &Arc<rustls::ClientConfig>,
    args: &ServeArgs,
) {
    let (report, result) = crate::runtime::bootstrap::import_hosts(
        source,
        state,
        tls,
        args.allow_private_hosts,
        args.allow_plaintext,
    );
    match result {
        Ok(()) => log::info!(
            "bootstrap: {} hosts from {source} stored, {} refused, {} pages",
            report.stored,
            report.refused,
            report.pages
        ),
        Err(e) => log::warn!(
            "bootstrap from {source} stopped after {} hosts ({} refused): {e}",
            report.stored,
            report.refused
        ),
    }
}

/// Every stored host not banned and not already named by `--upstream` is subscribed
/// again, from its stored cursor. A host stored under an IP literal (only `--upstream`
/// or private-hosts mode can store one) is subscribed again only in private-hosts mode,
/// where its scheme is known to be `ws://`; otherwise it needs its `--upstream` again.
fn add_stored_hosts(state: &StateService, args: &ServeArgs, by_shard: &mut [Vec<UpstreamHost>]) {
    let named: std::collections::HashSet<HostId> =
        by_shard.iter().flatten().map(|h| h.id).collect();
    let stored = match crate::runtime::bootstrap::stored_hosts(state) {
        Ok(stored) => stored,
        Err(e) => {
            log::warn!("stored hosts not resubscribed: {e}");
            return;
        }
    };
    let mut added = 0;
    for host in stored {
        let id = HostId(host.id);
        let bare = host
            .hostname
            .rsplit_once(':')
            .map_or(host.hostname.as_str(), |(h, _)| h);
        let literal = bare.parse::<std::net::IpAddr>().is_ok();
        if named.contains(&id) || (literal && !args.allow_private_hosts) {
            continue;
        }
        let cursor = if host.last_seq > 0 {
            Some(host.last_seq)
        } else {
            args.new_host_cursor
        };
        let url = crawl_url(&host.hostname, args.allow_private_hosts);
        let shard = placement::shard_of_host(&host.hostname, by_shard.len());
        if let Some(list) = by_shard.get_mut(shard) {
            list.push(UpstreamHost {
                id,
                url,
                cursor,
                record: Some(host),
            });
            added += 1;
        }
    }
    log::info!("{added} stored hosts subscribed again");
}

/// The subscription URL of a crawled hostname: `wss://`, or `ws://` for an IP literal when
/// private hosts are allowed (loopback tests).
fn crawl_url(hostname: &str, allow_private_hosts: bool) -> String {
    let host = hostname.rsplit_once(':').map_or(hostname, |(h, _)| h);
    let literal = host.parse::<std::net::IpAddr>().is_ok();
    if allow_private_hosts && literal {
        format!("ws://{hostname}")
    } else {
        format!("wss://{hostname}")
    }
}

/// This core's handle on the one listening socket: every fan-out core accepts on the same
/// socket (a duplicated descriptor), so the kernel hands each connection to one of them.
#[allow(unsafe_code)]
fn shared_listener(listener: std::net::TcpListener) -> glommio::net::TcpListener {
    use std::os::fd::{FromRawFd, IntoRawFd};
    // SAFETY: `into_raw_fd` gives up ownership of a valid, open listening socket; the
    // glommio listener becomes its only owner and closes it on drop.
    unsafe { glommio::net::TcpListener::from_raw_fd(listener.into_raw_fd()) }
}

/// Register (or find) an upstream host in the state store: its id and the cursor to
/// resume from (the stored one, or `new_host_cursor` for a host never crawled).
fn admit_upstream(
    state: &StateService,
    url: &str,
    new_host_cursor: Option<u64>,
) -> Result<UpstreamHost, ServeError> {
    let authority = authority_of(url)
        .ok_or_else(|| ServeError::Config(format!("upstream {url}: not a ws(s):// URL")))?;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let record = futures_lite::future::block_on(state.upsert_host(&authority, now_ms))
        .map_err(|e| ServeError::Config(format!("state store: host {authority}: {e}")))?;
    let cursor = if record.last_seq > 0 {
        Some(record.last_seq)
    } else {
        new_host_cursor
    };
    Ok(UpstreamHost {
        id: HostId(record.id),
        url: url.to_owned(),
        cursor,
        record: Some(record),
    })
}

/// Once a frame is durable: its host's cursor and its account's rev, data CID and commit
/// CID (`#commit` and `#sync`, which resets the account to the announced commit) go to
/// the state store's write-behind buffer. A full buffer is counted there; the next frame
/// of the same host or account carries a newer value, so nothing is waited for on this
/// core.
fn record_published(state: &StateService, origin: &crate::sequencer::stage::Origin) {
    let _ = state.record_host_cursor(origin.host_id, origin.upstream_seq);
    if let (Some(uid), Some(next)) = (origin.uid, origin.next_state) {
        let _ = state.record_account_commit(
            uid,
            crate::state::RevUpdate {
                rev: next.rev.as_str().to_owned(),
                data_cid: next.data.to_bytes().to_vec(),
                desynchronized: origin.desynchronized,
                commit_cid: origin.commit_cid.map(|cid| cid.to_bytes().to_vec()),
            },
        );
    }
}

/// Publish the shard's frame-buffer counters as metrics once a second (the counters are
/// atomics owned by the region; reading them costs nothing on the frame path).
async fn export_frame_counters(shard: usize, region: Arc<FrameRegion>) {
    let label = shard.to_string();
    let copied = metrics::counter!("relay_frame_copied_bytes_total", "shard" => label.clone());
    let backpressure =
        metrics::counter!("relay_frame_backpressure_total", "shard" => label.clone());
    let frames = metrics::counter!("relay_frame_committed_total", "shard" => label);
    loop {
        let counters = region.counters();
        copied.absolute(counters.bytes_copied);
        backpressure.absolute(counters.backpressure_events);
        frames.absolute(counters.frames_committed);
        glommio::timer::sleep(Duration::from_secs(1)).await;
    }
}

/// Hand each accepted requestCrawl host to the ingest shard that owns its hostname (one
/// plain thread; the per-shard queues are bounded like the API's and a full one drops the
/// request with a log line: requestCrawl may be repeated, the host is already stored).
fn spawn_crawl_dispatch(
    requests: flume::Receiver<CrawlRequest>,
    shards: Vec<flume::Sender<CrawlRequest>>,
) -> Result<(), ServeError> {
    std::thread::Builder::new()
        .name("relay-crawl".to_owned())
        .spawn(move || {
            for request in requests.iter() {
                let shard = placement::shard_of_host(&request.hostname, shards.len());
                if let Some(sender) = shards.get(shard)
                    && sender.try_send(request).is_err()
                {
                    log::warn!("crawl request dropped: shard {shard}'s queue is full");
                }
            }
        })
        .map(drop)
        .map_err(|e| ServeError::Spawn(format!("crawl dispatch: {e}")))
}

/// Apply admin changes on the data plane: a takedown is sent to every ingest shard and
/// hides the account's events from replay from now on (a tombstone, no rewrite), a
/// reversal lifts it; host bans, domain bans, unbans and cursor resets go to the shards
/// (`apply_host_event`), and so do limit changes.
fn spawn_admin_applier(
    events: flume::Receiver<crate::admin::AdminEvent>,
    log: EventLog,
    shards: Vec<flume::Sender<ShardCommand>>,
    fanout: Vec<flume::Sender<(AccountKey, bool)>>,
    crawl: flume::Sender<CrawlRequest>,
    state: Arc<StateService>,
) -> Result<(), ServeError> {
    use crate::admin::AdminEvent;
    std::thread::Builder::new()
        .name("relay-admin".to_owned())
        .spawn(move || {
            for event in events.iter() {
                let (did, status) = match event {
                    AdminEvent::AccountStatusChanged { did, status, .. } => (did, status),
                    other => {
                        apply_host_event(other, &shards, &crawl, &state);
                        continue;
                    }
                };
                // Every shard: the account's frames are refused from now on wherever
                // they arrive (a full queue is logged; the store has the status and a
                // restart applies it).
                for shard in &shards {
                    if shard
                        .try_send(ShardCommand::AccountStatus(did.clone(), status))
                        .is_err()
                    {
                        log::warn!("admin: status of {did} not sent to a busy ingest shard");
                    }
                }
                // Frames the shards verified before the change reach the log within a
                // group commit; wait that out so the tombstone covers them too.
                std::thread::sleep(Duration::from_millis(ADMIN_TAKEDOWN_SETTLE_MILLIS));
                let account = crate::runtime::ingest::account_key_of(&did);
                // Live rings hold recent frames that the log's tombstone does not see.
                for core in &fanout {
                    if core
                        .try_send((account, status == LocalStatus::Takendown))
                        .is_err()
                    {
                        log::warn!("admin: {did} not hidden on a busy fan-out core");
                    }
                }
                let Some(upto) = log.durable_seq().and_then(|seq| seq.next()) else {
                    continue;
                };
                let applied = if status == LocalStatus::Takendown {
                    log.take_down(account, upto)
                } else {
                    log.reverse_takedown(account, upto)
                };
                if let Err(e) = applied {
                    log::error!("admin: {did} {status:?}: {e}");
                }
            }
        })
        .map(drop)
        .map_err(|e| ServeError::Spawn(format!("admin applier: {e}")))
}

/// A host change from the admin API, live: a ban (or a domain ban, for every stored host
/// under the domain) stops the host's session on its shard; an unban subscribes it again
/// through the crawl path (from its stored cursor); a cursor reset makes its shard
/// resubscribe from 0; a limit change is applied by the host's shard at once (no
/// reconnect). Queues full: logged; the store holds the change and the next
/// start applies it.
fn apply_host_event(
    event: crate::admin::AdminEvent,
    shards: &[flume::Sender<ShardCommand>],
    crawl: &flume::Sender<CrawlRequest>,
    state: &StateService,
) {
    use crate::admin::AdminEvent;
    let send_all = |command: ShardCommand| {
        for shard in shards {
            if shard.try_send(command.clone()).is_err() {
                log::warn!("admin: {command:?} not sent to a busy ingest shard");
            }
        }
    };
    match event {
        AdminEvent::HostBanned { host_id, .. } => send_all(ShardCommand::BanHost(HostId(host_id))),
        AdminEvent::HostCursorReset { host_id } => {
            send_all(ShardCommand::ResetHostCursor(HostId(host_id)))
        }
        AdminEvent::HostUnbanned { host_id, hostname } => {
            let request = CrawlRequest {
                host_id,
                hostname,
                new: false,
            };
            if crawl.try_send(request).is_err() {
                log::warn!("admin: unbanned host {host_id} not resubscribed (busy)");
            }
        }
        AdminEvent::HostLimitsChanged {
            host_id,
            account_limit,
            rate_limits,
        } => {
            let settings =
                crate::verify::limits::HostLimitSettings::from_stored(account_limit, rate_limits);
            send_all(ShardCommand::SetHostLimits(HostId(host_id), settings));
        }
        AdminEvent::DomainBanned { domain } => {
            for host in hosts_under(state, &domain) {
                send_all(ShardCommand::BanHost(host));
            }
        }
        other => log::info!("admin: {other:?} stored; applied at the next start"),
    }
}

/// The stored hosts whose hostname is `domain` or under it.
fn hosts_under(state: &StateService, domain: &str) -> Vec<HostId> {
    use crate::config::limits::STATE_LIST_PAGE_ENTRIES_MAX;
    let mut found = Vec::new();
    let mut after = 0;
    loop {
        let page = futures_lite::future::block_on(
            state.call(move |store| store.list_hosts(after, STATE_LIST_PAGE_ENTRIES_MAX)),
        );
        let Ok(page) = page else { break };
        let Some(last) = page.last() else { break };
        after = last.id;
        found.extend(
            page.iter()
                .filter(|h| crate::api::xrpc::domain_matches(&h.hostname, domain))
                .map(|h| HostId(h.id)),
        );
    }
    found
}

/// Retention on its own thread (it deletes files): every `EVENTLOG_RETENTION_INTERVAL_SECS`
/// whole sealed segments older than the replay window, or beyond the log's byte bound, are
/// deleted. Never a rewrite.
fn spawn_retention(log: EventLog) -> Result<flume::Sender<()>, ServeError> {
    let (stop, stopped) = flume::bounded::<()>(1);
    std::thread::Builder::new()
        .name("relay-retention".to_owned())
        .spawn(move || {
            let interval = Duration::from_secs(EVENTLOG_RETENTION_INTERVAL_SECS);
            // Ends when `Relay::stop` drops the sender.
            while let Err(flume::RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                match log.enforce_retention(std::time::SystemTime::now()) {
                    Ok(report) => log::debug!("retention: {report:?}"),
                    Err(e) => log::error!("retention: {e}"),
                }
            }
        })
        .map(|_| stop)
        .map_err(|e| ServeError::Spawn(format!("retention: {e}")))
}
