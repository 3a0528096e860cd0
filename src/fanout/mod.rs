//! Fan-out: downstream `subscribeRepos` sessions, cursor replay from the event log, then
//! the live tail, from the same frame bytes for every consumer.
//!
//! Owns, per fan-out core, a [`Hub`]: the live ring of the frames published on the core
//! (`ring`), its consumers and their sessions (`session`), the cursor rules (`cursor`), and
//! the shared replay threads (`replay`). The sequencer's publishing task calls
//! [`Hub::publish`] with each durable frame, in seq order. Each hub's consumers are also
//! visible from every other core through [`ConsumerRegistry`] (`registry`: atomics the
//! sessions write, read by `GET /admin/consumers` wherever it lands).
//! Must not: assign seqs, verify, or write the event log (takedowns are applied by the log
//! at replay; live delivery of an account stops with [`Hub::hide_account`]).
//!
//! The live path copies no frame byte: a consumer writes the WebSocket header and then
//! the three parts of the frame's `OutFrame` gather straight from the shared-memory
//! segment. glommio's `TcpStream` has no `poll_write_vectored` (the futures-io default
//! would write only the first slice), so the parts go as consecutive writes; nothing is
//! concatenated. Replayed records are owned buffers read from disk and counted apart
//! (`relay_fanout_replay_bytes_total`); `relay_fanout_copied_bytes_total` counts frame
//! bytes copied in user space on the send path, and nothing on it copies.
//!
//! Slow consumers are never dropped for falling out of the ring: they replay from the
//! log until they reach the ring again. They are disconnected with `ConsumerTooSlow` when
//! their next seq falls out of the log's window, or when, once they have been live, the
//! bytes published after their position exceed `consumer_lag_bytes_max` (measured with
//! the ring's stream offsets; a consumer still in its first catch-up from a cursor is
//! bounded by the window only). A write blocked longer than `write_timeout` disconnects.
//!
//! A client's ping is answered with a pong between messages. A client's close frame or EOF
//! ends the session by closing the socket. Not done: a close frame back, pings from the
//! server to idle consumers, and bytes a client sent right after its upgrade head (they
//! are dropped; consumers send nothing before the stream starts).

mod cursor;
mod gather;
mod registry;
mod replay;
mod ring;
mod session;

pub use cursor::{Start, start_for};
pub(crate) use registry::ConsumerCell;
pub use registry::{ConsumerRegistry, ConsumerSnapshot, CoreConsumers};
pub use replay::ReplayPool;

use crate::api::http::{Request, query_pairs};
use crate::api::server::{LocalBoxFuture, Reply, UpgradeHandler};
use crate::config::limits::{
    FANOUT_CONSUMER_LAG_BYTES_MAX, FANOUT_CONSUMERS_PER_CORE_MAX, FANOUT_RING_BYTES_MAX,
    FANOUT_RING_FRAMES_MAX, FANOUT_WRITE_TIMEOUT_SECS_MAX,
};
use crate::eventlog::{AccountKey, EventLog};
use crate::identity::service::now_micros;
use crate::sequencer::Sequenced;
use glommio::net::TcpStream;
use ring::LiveRing;
use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// The path of the subscription.
pub const SUBSCRIBE_REPOS_PATH: &str = "/xrpc/com.atproto.sync.subscribeRepos";

/// Why the fan-out could not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum FanoutError {
    /// A configuration value is outside its bound (the field is named).
    InvalidConfig(&'static str),
    /// A replay thread could not be started.
    Spawn(std::io::Error),
}

impl FanoutError {
    /// A short, bounded label.
    pub fn reason(&self) -> &'static str {
        match self {
            FanoutError::InvalidConfig(_) => "invalid_config",
            FanoutError::Spawn(_) => "spawn",
        }
    }
}

impl std::fmt::Display for FanoutError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FanoutError::InvalidConfig(field) => write!(f, "fanout config: {field} out of bounds"),
            FanoutError::Spawn(e) => write!(f, "fanout: replay thread: {e}"),
        }
    }
}

impl std::error::Error for FanoutError {}

/// Per-core fan-out settings; `HubConfig::new` gives the limits' values, tests shrink them.
#[derive(Clone, Debug)]
pub struct HubConfig {
    /// Frames the live ring keeps (1 ..= `FANOUT_RING_FRAMES_MAX`).
    pub ring_frames_max: usize,
    /// Bytes the live ring keeps (≤ `FANOUT_RING_BYTES_MAX`).
    pub ring_bytes_max: usize,
    /// Unsent bytes behind the live head before `ConsumerTooSlow`
    /// (≤ `FANOUT_CONSUMER_LAG_BYTES_MAX`).
    pub consumer_lag_bytes_max: u64,
    /// Consumers on this core (1 ..= `FANOUT_CONSUMERS_PER_CORE_MAX`).
    pub consumers_max: usize,
    /// Longest one socket write may block (≤ `FANOUT_WRITE_TIMEOUT_SECS_MAX`).
    pub write_timeout: Duration,
    /// The `Server` header of the upgrade response.
    pub server_name: String,
}

impl HubConfig {
    /// The limits' values.
    pub fn new() -> HubConfig {
        HubConfig {
            ring_frames_max: FANOUT_RING_FRAMES_MAX,
            ring_bytes_max: FANOUT_RING_BYTES_MAX,
            consumer_lag_bytes_max: FANOUT_CONSUMER_LAG_BYTES_MAX,
            consumers_max: FANOUT_CONSUMERS_PER_CORE_MAX,
            write_timeout: Duration::from_secs(FANOUT_WRITE_TIMEOUT_SECS_MAX),
            server_name: concat!("relay/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }

    fn validate(&self) -> Result<(), FanoutError> {
        if !(1..=FANOUT_RING_FRAMES_MAX).contains(&self.ring_frames_max) {
            return Err(FanoutError::InvalidConfig("ring_frames_max"));
        }
        if self.ring_bytes_max > FANOUT_RING_BYTES_MAX {
            return Err(FanoutError::InvalidConfig("ring_bytes_max"));
        }
        if self.consumer_lag_bytes_max > FANOUT_CONSUMER_LAG_BYTES_MAX {
            return Err(FanoutError::InvalidConfig("consumer_lag_bytes_max"));
        }
        if !(1..=FANOUT_CONSUMERS_PER_CORE_MAX).contains(&self.consumers_max) {
            return Err(FanoutError::InvalidConfig("consumers_max"));
        }
        if self.write_timeout.is_zero()
            || self.write_timeout > Duration::from_secs(FANOUT_WRITE_TIMEOUT_SECS_MAX)
        {
            return Err(FanoutError::InvalidConfig("write_timeout"));
        }
        Ok(())
    }
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig::new()
    }
}

/// Totals of one hub since it started (what its metrics also count).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FanoutStats {
    /// Frames written to consumers (live and replayed).
    pub frames_sent: u64,
    /// Bytes of those frames (WebSocket headers excluded).
    pub bytes_sent: u64,
    /// Frames written from the live ring.
    pub live_frames_sent: u64,
    /// Frames written from log replay.
    pub replay_frames_sent: u64,
    /// Bytes of replayed records read from disk for consumers.
    pub replay_bytes: u64,
    /// Frame bytes copied in user space on the send path (the live path copies none).
    pub copied_bytes: u64,
    /// Sessions ended, for any reason.
    pub disconnects: u64,
}

#[derive(Debug)]
struct HubMetrics {
    consumers: metrics::Gauge,
    frames_sent: metrics::Counter,
    bytes_sent: metrics::Counter,
    replay_frames: metrics::Counter,
    replay_bytes: metrics::Counter,
    copied_bytes: metrics::Counter,
}

/// The fan-out of one core. `!Send`: it lives on its core behind an `Rc`.
#[derive(Debug)]
pub struct Hub {
    shard: String,
    config: HubConfig,
    log: EventLog,
    pool: ReplayPool,
    /// The live ring (its policy is in `ring`).
    ring: RefCell<LiveRing>,
    /// Accounts whose frames are not delivered live; grows only by `hide_account` calls.
    hidden: RefCell<HashSet<AccountKey>>,
    /// Bumped by every publish.
    version: Cell<u64>,
    /// Sessions waiting for the next publish: at most one entry per waiting consumer
    /// (bounded by `consumers_max`); every publish wakes and empties it.
    waiters: RefCell<Vec<Waker>>,
    /// The connected consumers, shared with the admin view of every core
    /// (`registry`; at most `consumers_max`: the upgrade is refused beyond).
    view: Arc<CoreConsumers>,
    /// How many are connected (kept here too: the upgrade check reads it synchronously).
    consumer_count: Cell<usize>,
    next_consumer: Cell<u64>,
    stats: Cell<FanoutStats>,
    metrics: HubMetrics,
}

impl Hub {
    /// A hub for core `shard`, replaying from `log` through `pool`.
    pub fn new(
        shard: usize,
        config: HubConfig,
        log: EventLog,
        pool: ReplayPool,
    ) -> Result<Rc<Hub>, FanoutError> {
        config.validate()?;
        let label = shard.to_string();
        let metrics = HubMetrics {
            consumers: metrics::gauge!("relay_fanout_consumers", "shard" => label.clone()),
            frames_sent: metrics::counter!("relay_fanout_frames_sent_total", "shard" => label.clone()),
            bytes_sent: metrics::counter!("relay_fanout_bytes_sent_total", "shard" => label.clone()),
            replay_frames: metrics::counter!("relay_fanout_replay_frames_total", "shard" => label.clone()),
            replay_bytes: metrics::counter!("relay_fanout_replay_bytes_total", "shard" => label.clone()),
            copied_bytes: metrics::counter!("relay_fanout_copied_bytes_total", "shard" => label.clone()),
        };
        Ok(Rc::new(Hub {
            shard: label,
            ring: RefCell::new(LiveRing::new(config.ring_frames_max, config.ring_bytes_max)),
            config,
            log,
            pool,
            hidden: RefCell::new(HashSet::new()),
            version: Cell::new(0),
            waiters: RefCell::new(Vec::new()),
            view: Arc::new(CoreConsumers::new(shard)),
            consumer_count: Cell::new(0),
            next_consumer: Cell::new(0),
            stats: Cell::new(FanoutStats::default()),
            metrics,
        }))
    }

    /// Hand a durable frame to this core's consumers. Frames arrive in seq order.
    pub fn publish(&self, frame: Sequenced) {
        let hidden = self.is_hidden(frame.account_key());
        self.view.set_head(frame.seq().get());
        self.ring.borrow_mut().push(frame, hidden);
        self.version.set(self.version.get().wrapping_add(1));
        for waker in self.waiters.borrow_mut().drain(..) {
            waker.wake();
        }
    }

    /// Stop live delivery of `account`'s frames on this core (replay hides them once the
    /// log records the takedown with `EventLog::take_down`).
    pub fn hide_account(&self, account: AccountKey) {
        self.hidden.borrow_mut().insert(account);
    }

    /// Resume live delivery of `account`'s frames.
    pub fn unhide_account(&self, account: AccountKey) {
        self.hidden.borrow_mut().remove(&account);
    }

    /// The consumers of this core right now. Takes the list's mutex directly (it may wait
    /// for an admin reader's short copy): for tests and tools; the admin route reads the
    /// [`ConsumerRegistry`] without waiting.
    pub fn consumers(&self) -> Vec<ConsumerSnapshot> {
        self.view.snapshot_now()
    }

    /// This core's consumers as the admin view of every core reads them: register it in
    /// the process's [`ConsumerRegistry`].
    pub fn consumer_view(&self) -> Arc<CoreConsumers> {
        Arc::clone(&self.view)
    }

    /// Consumers connected to this core.
    pub fn consumer_count(&self) -> usize {
        self.consumer_count.get()
    }

    /// Totals since the hub started.
    pub fn stats(&self) -> FanoutStats {
        self.stats.get()
    }

    /// Frames and bytes the live ring holds.
    pub fn ring_usage(&self) -> (usize, usize) {
        let ring = self.ring.borrow();
        (ring.len(), ring.bytes())
    }

    /// The shard label of this hub's metrics.
    pub fn shard(&self) -> &str {
        &self.shard
    }

    /// The `subscribeRepos` endpoint, to register with `Router::websocket`.
    pub fn subscribe_repos(self: &Rc<Self>) -> SubscribeRepos {
        SubscribeRepos {
            hub: Rc::clone(self),
        }
    }

    /// Run one consumer on an upgraded stream (the `101` head is already written).
    pub async fn serve_consumer(
        self: Rc<Self>,
        stream: TcpStream,
        peer: SocketAddr,
        cursor: Option<u64>,
    ) {
        let id = self.next_consumer.get();
        self.next_consumer.set(id + 1);
        let cell = Arc::new(ConsumerCell::new(peer, cursor, now_micros()));
        self.consumer_count.set(self.consumer_count.get() + 1);
        self.view.insert(id, Arc::clone(&cell)).await;
        self.metrics.consumers.increment(1.0);
        let reason = session::run(&self, stream, cursor, &cell).await;
        self.view.remove(id).await;
        self.consumer_count
            .set(self.consumer_count.get().saturating_sub(1));
        self.metrics.consumers.decrement(1.0);
        self.update_stats(|s| s.disconnects += 1);
        metrics::counter!("relay_fanout_disconnects_total", "shard" => self.shard.clone(), "reason" => reason)
            .increment(1);
    }

    fn update_stats(&self, change: impl FnOnce(&mut FanoutStats)) {
        let mut stats = self.stats.get();
        change(&mut stats);
        self.stats.set(stats);
    }

    fn record_sent(&self, bytes: usize, replayed: bool) {
        let bytes = bytes as u64;
        self.metrics.frames_sent.increment(1);
        self.metrics.bytes_sent.increment(bytes);
        if replayed {
            self.metrics.replay_frames.increment(1);
            self.metrics.replay_bytes.increment(bytes);
        }
        self.update_stats(|s| {
            s.frames_sent += 1;
            s.bytes_sent += bytes;
            if replayed {
                s.replay_frames_sent += 1;
                s.replay_bytes += bytes;
            } else {
                s.live_frames_sent += 1;
            }
        });
    }

    /// Count frame bytes copied in user space on the send path (none today; a staging
    /// buffer added later, e.g. for TLS or compression, must count here).
    #[allow(dead_code)]
    fn record_copied(&self, bytes: usize) {
        self.metrics.copied_bytes.increment(bytes as u64);
        self.update_stats(|s| s.copied_bytes += bytes as u64);
    }

    fn is_hidden(&self, account: AccountKey) -> bool {
        let hidden = self.hidden.borrow();
        !hidden.is_empty() && hidden.contains(&account)
    }

    /// Resolves at the next publish.
    fn changed(&self) -> Changed<'_> {
        Changed {
            hub: self,
            seen: self.version.get(),
            registered: false,
        }
    }
}

/// A future that resolves when the hub's version moves past `seen`. It registers its
/// task's waker once (a task polled again for another reason, e.g. a client ping, does not
/// grow the waiter list; publish drains it).
struct Changed<'a> {
    hub: &'a Hub,
    seen: u64,
    registered: bool,
}

impl Future for Changed<'_> {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.hub.version.get() != self.seen {
            return Poll::Ready(());
        }
        if !self.registered {
            self.hub.waiters.borrow_mut().push(cx.waker().clone());
            self.registered = true;
        }
        Poll::Pending
    }
}

/// `GET /xrpc/com.atproto.sync.subscribeRepos`: checks the upgrade and the `cursor`
/// parameter, answers `101`, and runs the consumer on the hub.
#[derive(Debug)]
pub struct SubscribeRepos {
    hub: Rc<Hub>,
}

/// The `cursor` query parameter: absent, or a non-negative integer.
fn parse_cursor(query: &str) -> Result<Option<u64>, Reply> {
    let bad = || {
        Reply::xrpc_error(
            400,
            "InvalidRequest",
            "cursor must be a non-negative integer",
        )
    };
    let mut cursor = None;
    for pair in query_pairs(query) {
        let (name, value) = pair.map_err(|_| bad())?;
        if name == "cursor" {
            cursor = Some(value.parse::<u64>().map_err(|_| bad())?);
        }
    }
    Ok(cursor)
}

impl UpgradeHandler for SubscribeRepos {
    fn check(&self, request: &Request) -> Result<(), Reply> {
        parse_cursor(&request.query)?;
        if request.header("sec-websocket-key").is_none() {
            return Err(Reply::xrpc_error(
                400,
                "InvalidRequest",
                "missing Sec-WebSocket-Key",
            ));
        }
        if self.hub.consumer_count() >= self.hub.config.consumers_max {
            return Err(Reply::xrpc_error(
                503,
                "ConsumerLimit",
                "too many consumers on this core",
            ));
        }
        Ok(())
    }

    fn serve(
        &self,
        request: Request,
        stream: TcpStream,
        _leftover: Vec<u8>,
        peer: SocketAddr,
    ) -> LocalBoxFuture<()> {
        let hub = Rc::clone(&self.hub);
        Box::pin(async move {
            let (Ok(cursor), Some(key)) = (
                parse_cursor(&request.query),
                request.header("sec-websocket-key"),
            ) else {
                return;
            };
            let head = crate::frame::ws::server_response(key, &hub.config.server_name);
            let mut stream = stream;
            if futures_lite::AsyncWriteExt::write_all(&mut stream, head.as_bytes())
                .await
                .is_err()
            {
                return;
            }
            hub.serve_consumer(stream, peer, cursor).await;
        })
    }
}
