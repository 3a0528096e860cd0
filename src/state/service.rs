//! The state thread: how the data plane reaches the store without blocking a core.
//!
//! Owns: one thread owning a `Box<dyn Store>`, the write-behind buffer, the request queue.
//!
//! **Write-behind buffer** (high-rate per-frame updates): [`StateService::record_host_cursor`]
//! and [`StateService::record_account_commit`] never block beyond a short uncontended
//! mutex (the state thread holds it only to swap the map out). They coalesce per key in a
//! shared map: a host cursor keeps the latest value; an account keeps the update with the
//! greatest rev, whole (rev, data CID, commit CID and desync flag stay one commit's; an
//! older rev recorded later is dropped there, as the store would refuse it). The state thread writes the whole map as one [`Batch`] every
//! `STATE_FLUSH_INTERVAL_MILLIS_MAX` or as soon as it holds
//! `STATE_FLUSH_BATCH_ENTRIES_MAX` keys. **Full policy**: at
//! `STATE_WRITE_BEHIND_ENTRIES_MAX` distinct keys, an update for a key already in the map
//! still coalesces, but one for a new key is refused with [`Full`] (counted in
//! `relay_state_write_behind_full_total`); the caller keeps the update, stops reading that
//! socket and retries after a short timer — backpressure, never loss. A failed batch
//! write is merged back under newer entries and retried at the next interval.
//!
//! **Reads** ([`StateService::load_account`] and friends) are requests on a bounded queue
//! of `STATE_REQUEST_QUEUE_ENTRIES_MAX`; they return a [`Reply`] future completed from
//! the state thread through a `futures-channel` oneshot, so a task on any executor can
//! await it. **Queue full policy**: the call does not block; its [`Reply`] resolves at once
//! to [`StateError::QueueFull`] (counted in `relay_state_errors_total{reason}`). Reads see
//! the write-behind map: an account or host loaded while its update waits gets the newer
//! rev or cursor.
//!
//! Durability: store writes do not wait for fsync; the state thread fsyncs
//! ([`Store::sync`]) after every interval flush. A crash (process or power) loses at most
//! one interval: the unflushed map and the writes since the last fsync. That only makes
//! cursors and revs older (events are re-read, and the conditional rev rule makes replays
//! harmless); a lost creation loses its uid together with every record naming it (both
//! stores recover a prefix of their writes), and no other durable record holds uids.
//! [`StateService::flush`] and [`StateService::shutdown`] write and fsync at once.
//!
//! Metrics: `relay_state_batch_entries` and `relay_state_flush_seconds` (histograms),
//! `relay_state_queue_depth` and `relay_state_write_behind_entries` (gauges; the latter is
//! the buffer's size when last taken for a flush),
//! `relay_state_errors_total{reason}`, `relay_state_write_behind_full_total`.

use super::{AccountRecord, Batch, HostId, HostRecord, RevUpdate, StateError, Store, Uid};
use crate::config::limits::{
    STATE_FLUSH_BATCH_ENTRIES_MAX, STATE_FLUSH_INTERVAL_MILLIS_MAX,
    STATE_REQUEST_QUEUE_ENTRIES_MAX, STATE_WRITE_BEHIND_ENTRIES_MAX,
};
use futures_channel::oneshot;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The write-behind buffer is at its bound for a new key; slow down and retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

impl std::fmt::Display for Full {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "state write-behind buffer full")
    }
}

impl std::error::Error for Full {}

/// Tuning of a [`StateService`]; `Default` takes the bounds in `limits`.
#[derive(Debug, Clone, Copy)]
pub struct ServiceConfig {
    /// Longest wait of an update before its flush.
    pub flush_interval: Duration,
    /// Keys that trigger an early flush.
    pub flush_entries: usize,
    /// Distinct keys at which new keys are refused with [`Full`].
    pub entries_max: usize,
    /// Requests queued to the state thread at most.
    pub queue_max: usize,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            flush_interval: Duration::from_millis(STATE_FLUSH_INTERVAL_MILLIS_MAX),
            flush_entries: STATE_FLUSH_BATCH_ENTRIES_MAX,
            entries_max: STATE_WRITE_BEHIND_ENTRIES_MAX,
            queue_max: STATE_REQUEST_QUEUE_ENTRIES_MAX,
        }
    }
}

type Job = Box<dyn FnOnce(&dyn Store) + Send>;

#[derive(Default)]
struct Pending {
    hosts: HashMap<HostId, u64>,
    accounts: HashMap<Uid, RevUpdate>,
}

impl Pending {
    fn len(&self) -> usize {
        self.hosts.len() + self.accounts.len()
    }

    /// Keeps the update with the greater rev, whole: its CIDs name that commit.
    fn merge_account(&mut self, uid: Uid, update: RevUpdate) {
        match self.accounts.get_mut(&uid) {
            Some(old) if old.rev.as_bytes() >= update.rev.as_bytes() => {}
            Some(old) => *old = update,
            None => {
                self.accounts.insert(uid, update);
            }
        }
    }

    fn overlay_account(&self, account: &mut AccountRecord) {
        if let Some(update) = self.accounts.get(&account.uid)
            && super::rev_is_newer(account.rev.as_deref(), &update.rev)
        {
            account.rev = Some(update.rev.clone());
            account.data_cid = Some(update.data_cid.clone());
            account.desynchronized = update.desynchronized;
            account.commit_cid = update.commit_cid.clone();
        }
    }
}

struct Shared {
    pending: Mutex<Pending>,
    queue_depth: AtomicUsize,
    config: ServiceConfig,
    /// Set by [`StateService::close`]: the thread ends after the request that wakes it.
    closing: AtomicBool,
}

impl Shared {
    fn pending(&self) -> MutexGuard<'_, Pending> {
        // A panic while holding the lock leaves a map of plain values, still usable.
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A read's result, completed from the state thread; await it on any executor.
pub struct Reply<T> {
    state: ReplyState<T>,
}

enum ReplyState<T> {
    Waiting(oneshot::Receiver<Result<T, StateError>>),
    Ready(Option<Result<T, StateError>>),
}

// Nothing inside is pinned structurally (the receiver is Unpin, the value is only moved
// out), so a reply of any T may move.
impl<T> Unpin for Reply<T> {}

impl<T> Future for Reply<T> {
    type Output = Result<T, StateError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.state {
            ReplyState::Waiting(rx) => Pin::new(rx)
                .poll(cx)
                .map(|r| r.unwrap_or(Err(StateError::Closed))),
            ReplyState::Ready(value) => {
                Poll::Ready(value.take().unwrap_or(Err(StateError::Closed)))
            }
        }
    }
}

/// The state thread and its write-behind buffer. `Sync`: share it (in an `Arc`) with
/// every data-plane core.
pub struct StateService {
    shared: Arc<Shared>,
    requests: Option<SyncSender<Job>>,
    thread: Mutex<Option<JoinHandle<Result<(), StateError>>>>,
}

fn count_error(e: &StateError) {
    metrics::counter!("relay_state_errors_total", "reason" => e.reason()).increment(1);
}

impl StateService {
    /// Starts the state thread with the bounds in `limits`.
    pub fn start(store: Box<dyn Store>) -> Result<StateService, StateError> {
        StateService::start_with(store, ServiceConfig::default())
    }

    /// Starts the state thread with explicit tuning (tests use small bounds).
    pub fn start_with(
        store: Box<dyn Store>,
        config: ServiceConfig,
    ) -> Result<StateService, StateError> {
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending::default()),
            queue_depth: AtomicUsize::new(0),
            config,
            closing: AtomicBool::new(false),
        });
        let (tx, rx) = mpsc::sync_channel::<Job>(config.queue_max);
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("state".into())
            .spawn(move || state_thread(store, rx, thread_shared))
            .map_err(|_| StateError::Closed)?;
        Ok(StateService {
            shared,
            requests: Some(tx),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Records a host's latest upstream seq (latest wins). Never blocks.
    pub fn record_host_cursor(&self, host: HostId, seq: u64) -> Result<(), Full> {
        let len = {
            let mut pending = self.shared.pending();
            if !pending.hosts.contains_key(&host) && pending.len() >= self.shared.config.entries_max
            {
                drop(pending);
                metrics::counter!("relay_state_write_behind_full_total").increment(1);
                return Err(Full);
            }
            pending.hosts.insert(host, seq);
            pending.len()
        };
        self.nudge_if_due(len);
        Ok(())
    }

    /// Records an accepted commit's rev, data CID, commit CID and desync flag (the update
    /// with the greatest rev wins, whole).
    /// Never blocks.
    pub fn record_account_commit(&self, uid: Uid, update: RevUpdate) -> Result<(), Full> {
        let len = {
            let mut pending = self.shared.pending();
            if !pending.accounts.contains_key(&uid)
                && pending.len() >= self.shared.config.entries_max
            {
                drop(pending);
                metrics::counter!("relay_state_write_behind_full_total").increment(1);
                return Err(Full);
            }
            pending.merge_account(uid, update);
            pending.len()
        };
        self.nudge_if_due(len);
        Ok(())
    }

    /// Keys waiting in the write-behind buffer.
    pub fn pending_entries(&self) -> usize {
        self.shared.pending().len()
    }

    /// Requests waiting in the queue.
    pub fn queue_depth(&self) -> usize {
        self.shared.queue_depth.load(Ordering::Relaxed)
    }

    /// The account with this DID, if known (with any newer rev still in the buffer).
    pub fn load_account(&self, did: &str) -> Reply<Option<AccountRecord>> {
        let did = did.to_owned();
        let shared = Arc::clone(&self.shared);
        self.call(move |store| {
            let mut account = store.get_account(&did)?;
            if let Some(a) = account.as_mut() {
                shared.pending().overlay_account(a);
            }
            Ok(account)
        })
    }

    /// The account with this DID, created on `host_id` if new.
    pub fn get_or_create_account(&self, did: &str, host_id: HostId) -> Reply<AccountRecord> {
        let did = did.to_owned();
        let shared = Arc::clone(&self.shared);
        self.call(move |store| {
            let mut account = store.get_or_create_account(&did, host_id)?;
            shared.pending().overlay_account(&mut account);
            Ok(account)
        })
    }

    /// The account with this DID, created on `host_id` only while that host has fewer than
    /// `account_limit` accounts (0 = unlimited); `Ok(None)`: a new account refused for the
    /// host's account limit. An existing account is returned whatever its host's count.
    /// Check and creation run in one job on the one state thread, so two first sights on
    /// the same host cannot both take its last place.
    pub fn get_or_create_account_within(
        &self,
        did: &str,
        host_id: HostId,
        account_limit: u64,
    ) -> Reply<Option<AccountRecord>> {
        let did = did.to_owned();
        let shared = Arc::clone(&self.shared);
        self.call(move |store| {
            if account_limit > 0 && store.get_account(&did)?.is_none() {
                let count = store
                    .get_host_by_id(host_id)?
                    .map_or(0, |h| h.account_count);
                if count >= account_limit {
                    return Ok(None);
                }
            }
            let mut account = store.get_or_create_account(&did, host_id)?;
            shared.pending().overlay_account(&mut account);
            Ok(Some(account))
        })
    }

    /// The host with this hostname, if known (with any newer cursor still in the buffer).
    pub fn load_host(&self, hostname: &str) -> Reply<Option<HostRecord>> {
        let hostname = hostname.to_owned();
        let shared = Arc::clone(&self.shared);
        self.call(move |store| {
            let mut host = store.get_host(&hostname)?;
            if let Some(h) = host.as_mut()
                && let Some(seq) = shared.pending().hosts.get(&h.id)
            {
                h.last_seq = *seq;
            }
            Ok(host)
        })
    }

    /// The host with this hostname, created if new.
    pub fn upsert_host(&self, hostname: &str, now_ms: u64) -> Reply<HostRecord> {
        let hostname = hostname.to_owned();
        self.call(move |store| store.upsert_host(&hostname, now_ms))
    }

    /// Writes everything recorded so far and fsyncs; resolves once it is durable.
    pub fn flush(&self) -> Reply<()> {
        let shared = Arc::clone(&self.shared);
        self.call(move |store| {
            flush_pending(&shared, store)?;
            store.sync()
        })
    }

    /// Runs `f` against the store on the state thread (status changes, takedowns, admin
    /// reads): any `Store` method without going through the data plane's typed calls.
    pub fn call<T, F>(&self, f: F) -> Reply<T>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store) -> Result<T, StateError> + Send + 'static,
    {
        let Some(requests) = self.requests.as_ref() else {
            return ready(Err(StateError::Closed));
        };
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |store| {
            let result = f(store);
            if let Err(e) = &result {
                count_error(e);
            }
            let _ = tx.send(result);
        });
        match self.enqueue(requests, job) {
            Ok(()) => Reply {
                state: ReplyState::Waiting(rx),
            },
            Err(e) => ready(Err(e)),
        }
    }

    fn enqueue(&self, requests: &SyncSender<Job>, job: Job) -> Result<(), StateError> {
        let depth = self.shared.queue_depth.fetch_add(1, Ordering::Relaxed) + 1;
        let result = match requests.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(StateError::QueueFull),
            Err(TrySendError::Disconnected(_)) => Err(StateError::Closed),
        };
        match &result {
            Ok(()) => metrics::gauge!("relay_state_queue_depth").set(depth as f64),
            Err(e) => {
                self.shared.queue_depth.fetch_sub(1, Ordering::Relaxed);
                count_error(e);
            }
        }
        result
    }

    /// Wakes the state thread early when the buffer reached the flush size. A full queue
    /// drops the nudge: the thread is busy and checks the size after every request.
    fn nudge_if_due(&self, len: usize) {
        if len != self.shared.config.flush_entries {
            return;
        }
        if let Some(requests) = self.requests.as_ref() {
            let job: Job = Box::new(|_| {});
            if requests.try_send(job).is_ok() {
                self.shared.queue_depth.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Stops the thread after a final flush and fsync; returns that flush's result.
    /// Blocking: call it from the main thread at shutdown.
    pub fn shutdown(mut self) -> Result<(), StateError> {
        self.stop()
    }

    /// Stops the thread after a final flush and fsync and closes the store, while others
    /// may still hold this service (in an `Arc`): their later calls get
    /// [`StateError::Closed`]. Blocking: call it from the main thread at shutdown. A
    /// second call returns `Ok` at once.
    pub fn close(&self) -> Result<(), StateError> {
        self.shared.closing.store(true, Ordering::Release);
        if let Some(requests) = self.requests.as_ref() {
            // A blocking send: the wake-up must get in even behind a full queue.
            self.shared.queue_depth.fetch_add(1, Ordering::Relaxed);
            let _ = requests.send(Box::new(|_| {}));
        }
        self.join()
    }

    fn stop(&mut self) -> Result<(), StateError> {
        self.requests.take();
        self.join()
    }

    fn join(&self) -> Result<(), StateError> {
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        match thread {
            Some(thread) => thread.join().unwrap_or(Err(StateError::Closed)),
            None => Ok(()),
        }
    }
}

impl Drop for StateService {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            log::warn!("state: final flush failed: {e}");
        }
    }
}

fn ready<T>(value: Result<T, StateError>) -> Reply<T> {
    Reply {
        state: ReplyState::Ready(Some(value)),
    }
}

fn state_thread(
    store: Box<dyn Store>,
    requests: mpsc::Receiver<Job>,
    shared: Arc<Shared>,
) -> Result<(), StateError> {
    let interval = shared.config.flush_interval;
    let mut deadline = Instant::now() + interval;
    loop {
        let wait = deadline.saturating_duration_since(Instant::now());
        match requests.recv_timeout(wait) {
            Ok(job) => {
                let depth = shared
                    .queue_depth
                    .fetch_sub(1, Ordering::Relaxed)
                    .saturating_sub(1);
                metrics::gauge!("relay_state_queue_depth").set(depth as f64);
                // A panicking closure handed to `call` must not take the state thread
                // (and every later request) down with it: its reply resolves to
                // `Closed` when the sender drops during the unwind.
                let run = std::panic::AssertUnwindSafe(|| job(store.as_ref()));
                if std::panic::catch_unwind(run).is_err() {
                    count_error(&StateError::Closed);
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if shared.closing.load(Ordering::Acquire) {
            break;
        }
        let due = Instant::now() >= deadline;
        if due || shared.pending().len() >= shared.config.flush_entries {
            // A failure was counted and the batch merged back; the next round retries.
            // The fsync also covers creations made since the last round, so a power cut
            // loses at most one interval of anything.
            if flush_pending(&shared, store.as_ref()).is_ok()
                && let Err(e) = store.sync()
            {
                count_error(&e);
            }
            deadline = Instant::now() + interval;
        }
    }
    flush_pending(&shared, store.as_ref())?;
    store.sync().inspect_err(count_error)
}

/// Writes the whole write-behind map as one batch. On failure the batch goes back into
/// the map under any newer entries, so nothing is lost.
fn flush_pending(shared: &Shared, store: &dyn Store) -> Result<(), StateError> {
    let taken = std::mem::take(&mut *shared.pending());
    metrics::gauge!("relay_state_write_behind_entries").set(taken.len() as f64);
    if taken.len() == 0 {
        return Ok(());
    }
    let batch = Batch {
        host_cursors: taken.hosts.into_iter().collect(),
        account_revs: taken.accounts.into_iter().collect(),
    };
    let started = Instant::now();
    let result = store.apply_batch(&batch);
    metrics::histogram!("relay_state_flush_seconds").record(started.elapsed().as_secs_f64());
    metrics::histogram!("relay_state_batch_entries").record(batch.len() as f64);
    match result {
        Ok(_) => Ok(()),
        Err(e) => {
            count_error(&e);
            let mut pending = shared.pending();
            for (host, seq) in batch.host_cursors {
                pending.hosts.entry(host).or_insert(seq);
            }
            for (uid, update) in batch.account_revs {
                pending.merge_account(uid, update);
            }
            Err(e)
        }
    }
}
