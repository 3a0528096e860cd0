//! The indexer thread: follows the durable event log from its saved cursor and writes
//! the collection index.
//!
//! Owns: its cursor (the next seq to read, saved in the store's backfill table under
//! [`INDEX_CURSOR_KEY`] after every batch), batching, retries. Must not: run on a
//! data-plane core (it reads the log from disk and waits on store calls), or read
//! anything but durable records.
//!
//! Lossless by construction: it reads the log, not a queue from the sequencer, so a slow
//! store only makes the index lag; the cursor is saved after the batch it covers is
//! written, so a crash re-reads at most one batch (writes are idempotent). If retention
//! deleted records it had not read yet (it lagged a whole replay window), it logs and
//! counts the gap and goes on from the oldest record.
//!
//! Metrics: `relay_collections_indexed_records_total`, `relay_collections_pairs_written_total`,
//! `relay_collections_index_lag_records` (gauge: durable seq − cursor),
//! `relay_collections_index_errors_total{reason}`.

use super::{IndexChange, IndexError, SeenPairs, change_of};
use crate::config::limits::{
    COLLECTIONS_INDEX_BATCH_PAIRS_MAX, COLLECTIONS_INDEX_BATCH_RECORDS_MAX,
    COLLECTIONS_INDEX_POLL_MILLIS, COLLECTIONS_INDEX_RETRY_MILLIS, COLLECTIONS_SEEN_PAIRS_MAX,
};
use crate::eventlog::{EventLog, EventLogError, Replay};
use crate::state::{BackfillRecord, CollectionRepo, StateError, StateService};
use futures_lite::future::block_on;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The store key of the indexer's cursor (in the backfill table, next to the backfill
/// jobs, whose keys start with `collections `).
pub const INDEX_CURSOR_KEY: &str = "collections-index";

/// What one batch did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BatchReport {
    /// Records read.
    pub records: usize,
    /// Pairs written.
    pub pairs: usize,
    /// Accounts forgotten.
    pub forgotten: usize,
}

/// The indexer's state between batches (sans thread: tests drive [`Indexer::run_batch`]).
pub struct Indexer {
    log: EventLog,
    state: Arc<StateService>,
    seen: SeenPairs,
    /// Next seq to read.
    cursor: u64,
    /// Pairs written since start, for the saved record.
    written: u64,
}

impl Indexer {
    /// An indexer resuming from the saved cursor (the log's start without one).
    pub fn open(log: EventLog, state: Arc<StateService>) -> Result<Indexer, StateError> {
        let saved = block_on(state.call(|store| store.get_backfill(INDEX_CURSOR_KEY)))?;
        let (cursor, written) = saved.map_or((0, 0), |r| (r.cursor.parse().unwrap_or(0), r.done));
        Ok(Indexer {
            log,
            state,
            seen: SeenPairs::new(COLLECTIONS_SEEN_PAIRS_MAX),
            cursor,
            written,
        })
    }

    /// The next seq it will read.
    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    /// Read up to one batch of durable records, write what they change, save the cursor.
    /// An error leaves the cursor where the batch started (the batch is redone).
    pub fn run_batch(&mut self) -> Result<BatchReport, IndexerFailure> {
        self.note_gap();
        let mut replay = self.log.read_from(self.cursor);
        let mut pairs: Vec<CollectionRepo> = Vec::new();
        let mut report = BatchReport::default();
        let mut next = self.cursor;
        while report.records < COLLECTIONS_INDEX_BATCH_RECORDS_MAX {
            let Some(record) = replay.next() else { break };
            let record = record.map_err(IndexerFailure::Log)?;
            next = record.seq.get().saturating_add(1);
            report.records += 1;
            match change_of(record.kind.get(), &record.payload) {
                Ok(IndexChange::Add { did, collections }) => {
                    for collection in collections {
                        if self.seen.first_sight(collection, did) {
                            pairs.push(CollectionRepo {
                                collection: collection.to_owned(),
                                did: did.to_owned(),
                            });
                        }
                    }
                    if pairs.len() >= COLLECTIONS_INDEX_BATCH_PAIRS_MAX {
                        report.pairs += self.write(std::mem::take(&mut pairs))?;
                    }
                }
                Ok(IndexChange::Forget { did }) => {
                    // Pairs added before the deletion go first, so the account ends gone.
                    report.pairs += self.write(std::mem::take(&mut pairs))?;
                    let did = did.to_owned();
                    block_on(
                        self.state
                            .call(move |store| store.remove_collection_repos(&did)),
                    )
                    .map_err(IndexerFailure::State)?;
                    self.seen.clear();
                    report.forgotten += 1;
                }
                Ok(IndexChange::Nothing) => {}
                Err(e) => count_skip(&e, record.seq.get()),
            }
        }
        report.pairs += self.write(pairs)?;
        if next != self.cursor {
            self.save(next)?;
        }
        self.publish_lag(&replay);
        metrics::counter!("relay_collections_indexed_records_total")
            .increment(report.records as u64);
        Ok(report)
    }

    fn write(&mut self, pairs: Vec<CollectionRepo>) -> Result<usize, IndexerFailure> {
        if pairs.is_empty() {
            return Ok(0);
        }
        let n = pairs.len();
        let result = block_on(
            self.state
                .call(move |store| store.add_collection_repos(&pairs)),
        );
        if let Err(e) = result {
            // These pairs were marked seen; forget that so the redone batch writes them.
            self.seen.clear();
            return Err(IndexerFailure::State(e));
        }
        self.written += n as u64;
        metrics::counter!("relay_collections_pairs_written_total").increment(n as u64);
        Ok(n)
    }

    fn save(&mut self, next: u64) -> Result<(), IndexerFailure> {
        let record = BackfillRecord {
            cursor: next.to_string(),
            done: self.written,
            failed: 0,
            status: "following".to_owned(),
        };
        block_on(
            self.state
                .call(move |store| store.put_backfill(INDEX_CURSOR_KEY, &record)),
        )
        .map_err(IndexerFailure::State)?;
        self.cursor = next;
        Ok(())
    }

    /// Retention may have deleted what the cursor points at: say so, and go on from the
    /// oldest record (reading from the old cursor would do the same silently).
    fn note_gap(&mut self) {
        if let Some(oldest) = self.log.oldest_seq()
            && self.cursor != 0
            && self.cursor < oldest.get()
        {
            log::warn!(
                "collection index: records {}..{} were deleted by retention before they \
                 were indexed; their collections are missing until seen again or backfilled",
                self.cursor,
                oldest.get()
            );
            metrics::counter!("relay_collections_index_errors_total", "reason" => "retention_gap")
                .increment(1);
            self.cursor = oldest.get();
        }
    }

    fn publish_lag(&self, replay: &Replay) {
        let durable = self.log.durable_seq().map_or(0, |s| s.get());
        let lag = durable.saturating_add(1).saturating_sub(replay.next_seq());
        metrics::gauge!("relay_collections_index_lag_records").set(lag as f64);
    }
}

fn count_skip(e: &IndexError, seq: u64) {
    log::warn!("collection index: record {seq} skipped: {}", e.reason());
    metrics::counter!("relay_collections_index_errors_total", "reason" => e.reason()).increment(1);
}

/// Why a batch was not finished.
#[derive(Debug)]
pub enum IndexerFailure {
    /// Reading the log failed.
    Log(EventLogError),
    /// A store call failed.
    State(StateError),
}

impl IndexerFailure {
    /// A short, bounded label.
    pub fn reason(&self) -> &'static str {
        match self {
            IndexerFailure::Log(e) => e.reason(),
            IndexerFailure::State(e) => e.reason(),
        }
    }
}

impl std::fmt::Display for IndexerFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IndexerFailure::Log(e) => write!(f, "event log: {e}"),
            IndexerFailure::State(e) => write!(f, "state store: {e}"),
        }
    }
}

/// The running indexer thread; [`IndexerThread::stop`] ends it after its current batch.
#[derive(Debug)]
pub struct IndexerThread {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl IndexerThread {
    /// Start following `log` from the saved cursor.
    pub fn spawn(log: EventLog, state: Arc<StateService>) -> std::io::Result<IndexerThread> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("relay-collections".to_owned())
            .spawn(move || follow(log, state, &stopping))?;
        Ok(IndexerThread { stop, thread })
    }

    /// Finish the batch in progress (its cursor is saved) and end the thread.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Release);
        let _ = self.thread.join();
    }
}

fn follow(log: EventLog, state: Arc<StateService>, stop: &AtomicBool) {
    let retry = Duration::from_millis(COLLECTIONS_INDEX_RETRY_MILLIS);
    let mut indexer = loop {
        match Indexer::open(log.clone(), Arc::clone(&state)) {
            Ok(indexer) => break indexer,
            Err(e) => {
                log::warn!("collection index: loading its cursor failed: {e}");
                if stop.load(Ordering::Acquire) {
                    return;
                }
                std::thread::sleep(retry);
            }
        }
    };
    log::info!(
        "collection index: following the event log from seq {}",
        indexer.cursor()
    );
    while !stop.load(Ordering::Acquire) {
        match indexer.run_batch() {
            Ok(report) if report.records < COLLECTIONS_INDEX_BATCH_RECORDS_MAX => {
                std::thread::sleep(Duration::from_millis(COLLECTIONS_INDEX_POLL_MILLIS));
            }
            Ok(_) => {}
            Err(e) => {
                log::warn!(
                    "collection index: batch from seq {} failed: {e}",
                    indexer.cursor()
                );
                metrics::counter!("relay_collections_index_errors_total", "reason" => e.reason())
                    .increment(1);
                std::thread::sleep(retry);
            }
        }
    }
}
