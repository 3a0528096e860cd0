//! The cross-core view of downstream consumers, for `GET /admin/consumers`: admin
//! requests land on any fan-out core (one listening socket shared by every core), while
//! each [`Hub`](super::Hub) is `!Send` and lives on its own.
//!
//! Owns: per core, a [`CoreConsumers`] (the core's consumer cells, its newest published
//! seq) and the process's [`ConsumerRegistry`] of them. Must not: hold anything a session
//! needs to send (frames, sockets), or make a hub or a reader wait on a lock.
//!
//! Cost on the data plane: a consumer's cell holds atomics its session alone writes
//! (relaxed stores: no locked instruction, no contention) — last seq sent, frames and
//! bytes sent, replaying; the hub stores its newest seq on each publish. The mutex of a
//! core's list is taken only when a consumer connects or leaves, and by a reader cloning
//! the list; both sides take it with `lock_yielding`, so no executor waits on it.
//!
//! Staleness: none beyond the read itself — a snapshot reads the live atomics, so each
//! figure is at most one write behind; figures of one consumer are read one after another,
//! not at one instant (e.g. `lagFrames` may count a frame whose send is already counted).

use crate::runtime::shared_lock::lock_yielding;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// What the admin API shows of one consumer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerSnapshot {
    /// The fan-out core serving it (its executor index, the `shard` label of `fanout`
    /// metrics).
    pub shard: usize,
    /// The peer's address.
    pub remote: SocketAddr,
    /// When it connected, microseconds since the Unix epoch.
    pub connected_micros: u64,
    /// The cursor it connected with.
    pub cursor: Option<u64>,
    /// The last seq written to it.
    pub sent_seq: Option<u64>,
    /// Seqs published on its core after `sent_seq` (after its cursor before anything was
    /// sent; 0 when caught up).
    pub lag_frames: u64,
    /// Whether it is replaying from the log right now.
    pub replaying: bool,
    /// Frames written to it (live and replayed).
    pub frames_sent: u64,
    /// Bytes of those frames (WebSocket headers excluded).
    pub bytes_sent: u64,
}

/// One consumer's shared state: its session writes, snapshots read (from any thread).
#[derive(Debug)]
pub(crate) struct ConsumerCell {
    remote: SocketAddr,
    cursor: Option<u64>,
    connected_micros: u64,
    /// 0 = nothing sent yet (relay seqs start at 1).
    sent_seq: AtomicU64,
    replaying: AtomicBool,
    frames_sent: AtomicU64,
    bytes_sent: AtomicU64,
}

impl ConsumerCell {
    pub(crate) fn new(remote: SocketAddr, cursor: Option<u64>, connected_micros: u64) -> Self {
        ConsumerCell {
            remote,
            cursor,
            connected_micros,
            sent_seq: AtomicU64::new(0),
            replaying: AtomicBool::new(false),
            frames_sent: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
        }
    }

    /// A frame with `seq` of `bytes` was written. Only the consumer's session writes these
    /// counters, so a load and a store add without a locked instruction.
    pub(crate) fn record_sent(&self, seq: u64, bytes: u64) {
        self.sent_seq.store(seq, Ordering::Relaxed);
        add(&self.frames_sent, 1);
        add(&self.bytes_sent, bytes);
    }

    pub(crate) fn set_replaying(&self, replaying: bool) {
        self.replaying.store(replaying, Ordering::Relaxed);
    }

    fn snapshot(&self, shard: usize, head: Option<u64>) -> ConsumerSnapshot {
        let sent_seq = Some(self.sent_seq.load(Ordering::Relaxed)).filter(|s| *s > 0);
        let position = sent_seq.or(self.cursor);
        let lag_frames = match (head, position) {
            (Some(head), Some(position)) => head.saturating_sub(position),
            _ => 0,
        };
        ConsumerSnapshot {
            shard,
            remote: self.remote,
            connected_micros: self.connected_micros,
            cursor: self.cursor,
            sent_seq,
            lag_frames,
            replaying: self.replaying.load(Ordering::Relaxed),
            frames_sent: self.frames_sent.load(Ordering::Relaxed),
            bytes_sent: self.bytes_sent.load(Ordering::Relaxed),
        }
    }
}

/// Single-writer add: a relaxed load and store (readers see either value).
fn add(counter: &AtomicU64, n: u64) {
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add(n),
        Ordering::Relaxed,
    );
}

/// The consumers of one fan-out core (held by its hub and by the registry).
#[derive(Debug)]
pub struct CoreConsumers {
    shard: usize,
    /// The newest seq published on the core; 0 = none yet.
    head_seq: AtomicU64,
    /// At most `consumers_max` of the hub (the upgrade is refused beyond).
    cells: Mutex<BTreeMap<u64, Arc<ConsumerCell>>>,
}

impl CoreConsumers {
    pub(crate) fn new(shard: usize) -> CoreConsumers {
        CoreConsumers {
            shard,
            head_seq: AtomicU64::new(0),
            cells: Mutex::new(BTreeMap::new()),
        }
    }

    pub(crate) fn set_head(&self, seq: u64) {
        self.head_seq.store(seq, Ordering::Relaxed);
    }

    fn head(&self) -> Option<u64> {
        Some(self.head_seq.load(Ordering::Relaxed)).filter(|s| *s > 0)
    }

    pub(crate) async fn insert(&self, id: u64, cell: Arc<ConsumerCell>) {
        lock_yielding(&self.cells).await.insert(id, cell);
    }

    pub(crate) async fn remove(&self, id: u64) {
        lock_yielding(&self.cells).await.remove(&id);
    }

    /// The core's consumers now, without waiting on the list's mutex.
    pub async fn snapshot(&self) -> Vec<ConsumerSnapshot> {
        let cells: Vec<Arc<ConsumerCell>> =
            lock_yielding(&self.cells).await.values().cloned().collect();
        self.snapshots_of(&cells)
    }

    /// The same off any executor (may wait for a connect's or a reader's short copy).
    pub fn snapshot_now(&self) -> Vec<ConsumerSnapshot> {
        let cells: Vec<Arc<ConsumerCell>> = match self.cells.lock() {
            Ok(cells) => cells.values().cloned().collect(),
            Err(poisoned) => poisoned.into_inner().values().cloned().collect(),
        };
        self.snapshots_of(&cells)
    }

    fn snapshots_of(&self, cells: &[Arc<ConsumerCell>]) -> Vec<ConsumerSnapshot> {
        let head = self.head();
        cells
            .iter()
            .map(|cell| cell.snapshot(self.shard, head))
            .collect()
    }
}

/// Every fan-out core's consumers; `Send + Sync`, one per process, shared by the API
/// cores. Cores register once, when their hub starts.
#[derive(Debug, Default)]
pub struct ConsumerRegistry {
    cores: Mutex<Vec<Arc<CoreConsumers>>>,
}

impl ConsumerRegistry {
    /// Add a core's consumers (its hub's [`Hub::consumer_view`](super::Hub::consumer_view)).
    pub async fn register(&self, core: Arc<CoreConsumers>) {
        lock_yielding(&self.cores).await.push(core);
    }

    /// Every consumer of every registered core, by core then by connection order.
    pub async fn snapshot(&self) -> Vec<ConsumerSnapshot> {
        let cores: Vec<Arc<CoreConsumers>> = lock_yielding(&self.cores).await.clone();
        let mut all = Vec::new();
        for core in cores {
            all.extend(core.snapshot().await);
        }
        all.sort_by_key(|c| c.shard);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_read_the_live_counters_and_the_lag() {
        let core = CoreConsumers::new(3);
        let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let cell = Arc::new(ConsumerCell::new(addr, Some(5), 42));
        let live = Arc::new(ConsumerCell::new(addr, None, 43));
        futures_lite::future::block_on(async {
            core.insert(0, Arc::clone(&cell)).await;
            core.insert(1, Arc::clone(&live)).await;
        });
        core.set_head(20);
        let before = core.snapshot_now();
        assert_eq!(
            before[0].lag_frames, 15,
            "behind its cursor before anything was sent"
        );
        assert_eq!(before[1].lag_frames, 0, "live from now, nothing sent yet");
        cell.set_replaying(true);
        cell.record_sent(6, 100);
        cell.record_sent(7, 50);
        let after = core.snapshot_now();
        assert_eq!(after[0].shard, 3);
        assert_eq!(after[0].sent_seq, Some(7));
        assert_eq!(after[0].lag_frames, 13);
        assert_eq!((after[0].frames_sent, after[0].bytes_sent), (2, 150));
        assert!(after[0].replaying);
        assert_eq!(after[0].connected_micros, 42);
        let registry = ConsumerRegistry::default();
        let core = Arc::new(core);
        futures_lite::future::block_on(async {
            registry.register(Arc::clone(&core)).await;
            assert_eq!(registry.snapshot().await.len(), 2);
            core.remove(0).await;
            assert_eq!(registry.snapshot().await.len(), 1);
        });
    }
}
