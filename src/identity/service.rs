//! The identity service: DID resolution off the ingest loop, behind a bounded cache.
//!
//! Owns: a pool of resolver worker threads (`IdentityConfig::workers`, each running one
//! blocking [`Resolver`] lookup at a time), the bounded request queue in front of them,
//! the cache (positive entries for `ttl`, failures that say something about the DID for
//! `negative_ttl`, at most `cache_entries_max` entries, oldest evicted first), the
//! coalescing of concurrent lookups of one DID, and `snapshot`/`load` so a caller can
//! persist the cache across restarts.
//! Must not: block a caller. `cached` takes a short mutex; `resolve` and `refresh`
//! return a future completed by a worker through a oneshot channel, so a glommio task on
//! another thread, a tokio task or `block_on` can await it alike.
//!
//! Queue policy (request queue, caller → workers, `queue_requests_max` DIDs): when full, a
//! new lookup **fails at once** with [`ResolveError::Overloaded`], counted in
//! `relay_identity_requests_rejected_total{reason="overloaded"}`; nothing blocks. A lookup
//! already in flight for the same DID is joined instead of queued again.
//!
//! Does not: retry (a caller that needs it asks again or calls `refresh`), limit the rate
//! of `refresh` calls (callers use it on a signature failure or host mismatch only).
//!
//! Metrics: `relay_identity_lookups_total{reason}` (finished lookups, `ok` or the error
//! label), `relay_identity_lookup_duration_seconds`, `relay_identity_cache_hits_total`,
//! `relay_identity_cache_misses_total`, `relay_identity_cache_entries`,
//! `relay_identity_requests_rejected_total{reason}`.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_channel::oneshot;
use serde::{Deserialize, Serialize};

use crate::config::limits::{
    IDENTITY_CACHE_ENTRIES_MAX, IDENTITY_CACHE_TTL_SECS_MAX, IDENTITY_LOOKUP_TIMEOUT_MILLIS_MAX,
    IDENTITY_NEGATIVE_TTL_SECS_MAX, IDENTITY_PERSIST_PENDING_MAX, IDENTITY_QUEUE_REQUESTS_MAX,
    IDENTITY_WORKERS_MAX,
};
use crate::identity::did_doc::DidDocument;
use crate::identity::resolver::{ResolveError, Resolver};

/// Configuration of [`IdentityService::spawn`].
#[derive(Clone, Debug)]
pub struct IdentityConfig {
    /// The PLC directory, e.g. `https://plc.directory`.
    pub plc_url: String,
    /// Allow plain `http://` (the PLC URL and did:web): loopback tests only.
    pub allow_http: bool,
    /// Resolver worker threads (1 ..= `IDENTITY_WORKERS_MAX`).
    pub workers: usize,
    /// Lookups waiting for a worker before new ones are refused.
    pub queue_requests_max: usize,
    /// Cache entries (positive and negative) before the oldest is evicted.
    pub cache_entries_max: usize,
    /// How long a document is trusted.
    pub ttl: Duration,
    /// How long a cacheable failure is remembered.
    pub negative_ttl: Duration,
    /// Time-out of each connect / read / write step of a lookup.
    pub lookup_timeout: Duration,
}

impl IdentityConfig {
    /// The defaults of `config::limits` for the PLC directory at `plc_url`.
    pub fn new(plc_url: &str) -> IdentityConfig {
        IdentityConfig {
            plc_url: plc_url.to_owned(),
            allow_http: false,
            workers: IDENTITY_WORKERS_MAX,
            queue_requests_max: IDENTITY_QUEUE_REQUESTS_MAX,
            cache_entries_max: IDENTITY_CACHE_ENTRIES_MAX,
            ttl: Duration::from_secs(IDENTITY_CACHE_TTL_SECS_MAX),
            negative_ttl: Duration::from_secs(IDENTITY_NEGATIVE_TTL_SECS_MAX),
            lookup_timeout: Duration::from_millis(IDENTITY_LOOKUP_TIMEOUT_MILLIS_MAX),
        }
    }
}

/// A resolved identity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolved {
    /// The DID resolved.
    pub did: String,
    /// Its document.
    pub document: DidDocument,
    /// When it was fetched, microseconds since the Unix epoch.
    pub fetched_at_micros: u64,
}

type Outcome = Result<Arc<Resolved>, ResolveError>;

struct Entry {
    outcome: Outcome,
    expires_at_micros: u64,
    stamp: u64,
}

#[derive(Default)]
struct Cache {
    entries: HashMap<String, Entry>,
    /// Insertion order for eviction; stale stamps are skipped lazily.
    order: VecDeque<(String, u64)>,
    next_stamp: u64,
    in_flight: HashMap<String, Vec<oneshot::Sender<Outcome>>>,
    /// DIDs with a new positive entry since the persister last drained them.
    fresh: Vec<String>,
    /// DIDs purged (an `#identity`) since the persister last drained them.
    purged: Vec<String>,
}

/// What changed in the cache since the last [`IdentityService::drain_changes`]: the
/// entries to write to the store and the DIDs to delete from it.
#[derive(Debug, Default)]
pub struct CacheChanges {
    /// New positive entries (still cached when drained), shared with the cache: draining
    /// under the cache lock costs a refcount each, not a document copy.
    pub resolved: Vec<Arc<Resolved>>,
    /// Purged DIDs.
    pub purged: Vec<String>,
}

/// Note a changed DID for the persister; past `IDENTITY_PERSIST_PENDING_MAX` it is
/// dropped and counted (harmless: a stale stored entry is re-resolved once on the first
/// signature failure or host mismatch after a restart).
fn note_change(list: &mut Vec<String>, did: &str, kind: &'static str) {
    if list.len() >= IDENTITY_PERSIST_PENDING_MAX {
        metrics::counter!("relay_identity_persist_dropped_total", "reason" => kind).increment(1);
        return;
    }
    list.push(did.to_owned());
}

struct Shared {
    cache: Mutex<Cache>,
    config: IdentityConfig,
}

/// A handle on the service; clones share it. When the last handle is dropped the workers
/// finish their current lookup and exit.
#[derive(Clone)]
pub struct IdentityService {
    shared: Arc<Shared>,
    queue: SyncSender<String>,
}

impl std::fmt::Debug for IdentityService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityService")
            .field("plc_url", &self.shared.config.plc_url)
            .finish_non_exhaustive()
    }
}

impl IdentityService {
    /// Start the workers.
    pub fn spawn(config: IdentityConfig) -> Result<IdentityService, ResolveError> {
        let resolver = Resolver::new(&config.plc_url, config.allow_http, config.lookup_timeout)?;
        let workers = config.workers.clamp(1, IDENTITY_WORKERS_MAX);
        let (queue, receiver) = sync_channel(config.queue_requests_max.max(1));
        let receiver = Arc::new(Mutex::new(receiver));
        let shared = Arc::new(Shared {
            cache: Mutex::new(Cache::default()),
            config,
        });
        for index in 0..workers {
            let (shared, receiver, resolver) =
                (Arc::clone(&shared), Arc::clone(&receiver), resolver.clone());
            std::thread::Builder::new()
                .name(format!("identity-{index}"))
                .spawn(move || worker(&shared, &receiver, &resolver))
                .map_err(|_| ResolveError::Stopped)?;
        }
        Ok(IdentityService { shared, queue })
    }

    /// The cached identity of `did`, if fresh. Never waits for the network.
    pub fn cached(&self, did: &str) -> Option<Arc<Resolved>> {
        let now = now_micros();
        let cache = self.shared.lock();
        match cache.entries.get(did) {
            Some(entry) if entry.expires_at_micros > now => entry.outcome.as_ref().ok().cloned(),
            _ => None,
        }
    }

    /// The identity of `did`: from the cache when fresh (a remembered failure included),
    /// otherwise looked up by a worker.
    pub fn resolve(&self, did: &str) -> ResolveFuture {
        self.lookup(did, false)
    }

    /// Look `did` up once more, bypassing the cache (joins a lookup already in flight).
    pub fn refresh(&self, did: &str) -> ResolveFuture {
        self.lookup(did, true)
    }

    /// Forget `did` (an `#identity` event says its document changed).
    pub fn purge(&self, did: &str) {
        let mut cache = self.shared.lock();
        cache.entries.remove(did);
        note_change(&mut cache.purged, did, "purged");
        metrics::gauge!("relay_identity_cache_entries").set(cache.entries.len() as f64);
    }

    /// The fresh positive entries, for persisting across restarts.
    pub fn snapshot(&self) -> Vec<Resolved> {
        let now = now_micros();
        let cache = self.shared.lock();
        cache
            .entries
            .values()
            .filter(|entry| entry.expires_at_micros > now)
            .filter_map(|entry| entry.outcome.as_ref().ok())
            .map(|resolved| Resolved::clone(resolved))
            .collect()
    }

    /// Take what changed since the last call (for the persister thread): a DID purged
    /// after it was resolved is only in `purged`.
    pub fn drain_changes(&self) -> CacheChanges {
        let mut cache = self.shared.lock();
        let fresh = std::mem::take(&mut cache.fresh);
        let purged = std::mem::take(&mut cache.purged);
        let resolved = fresh
            .iter()
            .filter_map(|did| cache.entries.get(did))
            .filter_map(|entry| entry.outcome.as_ref().ok())
            .map(Arc::clone)
            .collect();
        CacheChanges { resolved, purged }
    }

    /// Most entries the cache holds (what a warm start loads at most).
    pub fn cache_entries_max(&self) -> usize {
        self.shared.config.cache_entries_max
    }

    /// Load entries saved by [`snapshot`](Self::snapshot); each keeps its original
    /// fetch time, so an entry older than the TTL is skipped. Returns how many were kept.
    pub fn load(&self, entries: Vec<Resolved>) -> usize {
        let ttl = duration_micros(self.shared.config.ttl);
        let now = now_micros();
        let mut cache = self.shared.lock();
        let mut kept = 0;
        for resolved in entries {
            let expires = resolved.fetched_at_micros.saturating_add(ttl);
            if expires > now {
                let did = resolved.did.clone();
                cache.insert(did, Ok(Arc::new(resolved)), expires, &self.shared.config);
                kept += 1;
            }
        }
        kept
    }

    fn lookup(&self, did: &str, bypass_cache: bool) -> ResolveFuture {
        let mut cache = self.shared.lock();
        if !bypass_cache
            && let Some(entry) = cache.entries.get(did)
            && entry.expires_at_micros > now_micros()
        {
            metrics::counter!("relay_identity_cache_hits_total").increment(1);
            return ResolveFuture::ready(entry.outcome.clone());
        }
        metrics::counter!("relay_identity_cache_misses_total").increment(1);
        let (sender, receiver) = oneshot::channel();
        if let Some(waiters) = cache.in_flight.get_mut(did) {
            waiters.push(sender);
            return ResolveFuture::waiting(receiver);
        }
        match self.queue.try_send(did.to_owned()) {
            Ok(()) => {
                cache.in_flight.insert(did.to_owned(), vec![sender]);
                ResolveFuture::waiting(receiver)
            }
            Err(TrySendError::Full(_)) => {
                metrics::counter!("relay_identity_requests_rejected_total", "reason" => "overloaded")
                    .increment(1);
                ResolveFuture::ready(Err(ResolveError::Overloaded))
            }
            Err(TrySendError::Disconnected(_)) => ResolveFuture::ready(Err(ResolveError::Stopped)),
        }
    }
}

impl Shared {
    /// The cache lock; a worker that panicked mid-update leaves a cache that is still
    /// consistent map by map, so a poisoned lock is taken over.
    fn lock(&self) -> MutexGuard<'_, Cache> {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Cache {
    fn insert(
        &mut self,
        did: String,
        outcome: Outcome,
        expires_at_micros: u64,
        config: &IdentityConfig,
    ) {
        let stamp = self.next_stamp;
        self.next_stamp += 1;
        self.order.push_back((did.clone(), stamp));
        self.entries.insert(
            did,
            Entry {
                outcome,
                expires_at_micros,
                stamp,
            },
        );
        while self.entries.len() > config.cache_entries_max.max(1) {
            let Some((old, old_stamp)) = self.order.pop_front() else {
                break;
            };
            if self.entries.get(&old).is_some_and(|e| e.stamp == old_stamp) {
                self.entries.remove(&old);
            }
        }
        // Keep the order queue proportional to the live entries.
        if self.order.len() > 2 * self.entries.len() + 16 {
            let entries = &self.entries;
            self.order
                .retain(|(did, stamp)| entries.get(did).is_some_and(|e| e.stamp == *stamp));
        }
        metrics::gauge!("relay_identity_cache_entries").set(self.entries.len() as f64);
    }
}

fn worker(shared: &Shared, receiver: &Mutex<Receiver<String>>, resolver: &Resolver) {
    loop {
        let next = receiver
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .recv();
        let Ok(did) = next else {
            return;
        };
        let started = Instant::now();
        let fetched_at_micros = now_micros();
        let outcome = resolver.resolve(&did).map(|document| {
            Arc::new(Resolved {
                did: did.clone(),
                document,
                fetched_at_micros,
            })
        });
        metrics::histogram!("relay_identity_lookup_duration_seconds")
            .record(started.elapsed().as_secs_f64());
        let reason = outcome.as_ref().err().map_or("ok", ResolveError::reason);
        metrics::counter!("relay_identity_lookups_total", "reason" => reason).increment(1);
        finish(shared, did, outcome);
    }
}

/// Cache the outcome (when it is cacheable) and wake every waiter of the DID.
fn finish(shared: &Shared, did: String, outcome: Outcome) {
    let config = &shared.config;
    let now = now_micros();
    let ttl = match &outcome {
        Ok(_) => Some(config.ttl),
        Err(e) if e.is_cacheable() => Some(config.negative_ttl),
        Err(_) => None,
    };
    let waiters = {
        let mut cache = shared.lock();
        let waiters = cache.in_flight.remove(&did).unwrap_or_default();
        if let Some(ttl) = ttl {
            let expires = now.saturating_add(duration_micros(ttl));
            if outcome.is_ok() {
                note_change(&mut cache.fresh, &did, "resolved");
            }
            cache.insert(did, outcome.clone(), expires, config);
        }
        waiters
    };
    for waiter in waiters {
        // A waiter that gave up dropped its receiver; nothing to do.
        let _ = waiter.send(outcome.clone());
    }
}

/// The result of [`IdentityService::resolve`]: ready at once (cache hit, overload) or
/// completed by a worker. `Send + 'static`, awaitable from any executor.
#[derive(Debug)]
pub struct ResolveFuture {
    state: FutureState,
}

#[derive(Debug)]
enum FutureState {
    Ready(Option<Outcome>),
    Waiting(oneshot::Receiver<Outcome>),
}

impl ResolveFuture {
    fn ready(outcome: Outcome) -> ResolveFuture {
        ResolveFuture {
            state: FutureState::Ready(Some(outcome)),
        }
    }

    fn waiting(receiver: oneshot::Receiver<Outcome>) -> ResolveFuture {
        ResolveFuture {
            state: FutureState::Waiting(receiver),
        }
    }
}

impl Future for ResolveFuture {
    type Output = Outcome;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        match &mut self.get_mut().state {
            FutureState::Ready(outcome) => {
                Poll::Ready(outcome.take().unwrap_or(Err(ResolveError::Stopped)))
            }
            FutureState::Waiting(receiver) => match Pin::new(receiver).poll(cx) {
                Poll::Ready(Ok(outcome)) => Poll::Ready(outcome),
                Poll::Ready(Err(_)) => Poll::Ready(Err(ResolveError::Stopped)),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

fn duration_micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

/// Wall-clock now, microseconds since the Unix epoch (0 if the clock is before it).
pub fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, duration_micros)
}
