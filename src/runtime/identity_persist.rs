//! A warm identity cache across restarts: at start the store's saved entries are loaded
//! into the cache (within its TTL and size); while the relay runs, a thread writes the
//! cache's new entries and deletes purged ones every `IDENTITY_PERSIST_INTERVAL_SECS`, and
//! once more at stop.
//!
//! Owns: the mapping between a cache entry and its stored form (the DID document's JSON,
//! with the fetch time). Must not: run on a data-plane executor (it waits on store calls),
//! or decide freshness (the cache's TTL does, from the stored fetch time).
//!
//! Queue policy: the changes wait in the identity service's two bounded lists
//! (`IDENTITY_PERSIST_PENDING_MAX`, drop and count beyond); this thread drains them. A
//! change lost that way, or by a crash between two rounds, costs one lookup after the
//! restart — a stale stored key is re-resolved once on its first signature failure.

use crate::config::limits::{IDENTITY_PERSIST_BATCH_ENTRIES_MAX, IDENTITY_PERSIST_INTERVAL_SECS};
use crate::identity::did_doc::DidDocument;
use crate::identity::service::{CacheChanges, IdentityService, Resolved};
use crate::state::service::StateService;
use crate::state::{IdentitySnapshot, StateError};
use futures_lite::future::block_on;
use std::sync::Arc;
use std::time::Duration;

/// The stored form of a cache entry.
fn encode(resolved: &Resolved) -> Option<Vec<u8>> {
    serde_json::to_vec(&resolved.document).ok()
}

/// A stored entry back as a cache entry (`None`: unreadable, e.g. an older format).
fn decode(snapshot: IdentitySnapshot) -> Option<Resolved> {
    let document: DidDocument = serde_json::from_slice(&snapshot.entry).ok()?;
    (document.id == snapshot.did).then(|| Resolved {
        did: snapshot.did,
        document,
        fetched_at_micros: snapshot.fetched_at_ms.saturating_mul(1000),
    })
}

/// Load the saved entries into `identity` (blocking: called once before the executors
/// start). Returns (entries read, entries kept within the TTL).
pub fn load(
    identity: &IdentityService,
    state: &StateService,
) -> Result<(usize, usize), StateError> {
    let max = identity.cache_entries_max();
    let mut after = String::new();
    let (mut read, mut kept) = (0, 0);
    while read < max {
        let from = after.clone();
        let page =
            block_on(state.call(move |store| {
                store.list_identities(&from, IDENTITY_PERSIST_BATCH_ENTRIES_MAX)
            }))?;
        let Some(last) = page.last() else { break };
        after = last.did.clone();
        read += page.len();
        kept += identity.load(page.into_iter().filter_map(decode).collect());
    }
    metrics::gauge!("relay_identity_cache_loaded_entries").set(kept as f64);
    Ok((read, kept))
}

/// Write one round of changes; returns (written, deleted).
pub fn persist(
    identity: &IdentityService,
    state: &StateService,
) -> Result<(usize, usize), StateError> {
    let CacheChanges { resolved, purged } = identity.drain_changes();
    let (mut written, mut deleted) = (0, 0);
    // Deletes first: a DID purged and then resolved again in one round keeps its new
    // entry (one resolved and then purged is not among `resolved`).
    for chunk in purged.chunks(IDENTITY_PERSIST_BATCH_ENTRIES_MAX) {
        let dids = chunk.to_vec();
        deleted += block_on(state.call(move |store| {
            dids.iter()
                .try_fold(0, |n, did| Ok(n + usize::from(store.delete_identity(did)?)))
        }))?;
    }
    for chunk in resolved.chunks(IDENTITY_PERSIST_BATCH_ENTRIES_MAX) {
        let entries: Vec<(String, Vec<u8>, u64)> = chunk
            .iter()
            .filter_map(|r| Some((r.did.clone(), encode(r)?, r.fetched_at_micros / 1000)))
            .collect();
        written += entries.len();
        block_on(state.call(move |store| {
            entries
                .iter()
                .try_for_each(|(did, entry, at)| store.put_identity(did, entry, *at))
        }))?;
    }
    if written + deleted > 0 {
        metrics::counter!("relay_identity_persisted_entries_total").increment(written as u64);
        log::debug!("identity cache: {written} entries saved, {deleted} purged from the store");
    }
    Ok((written, deleted))
}

/// The running persister: [`Persister::stop`] runs a last round and joins the thread.
#[derive(Debug)]
pub struct Persister {
    stop: flume::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Persister {
    /// Save what changed since the last round, then end the thread.
    pub fn stop(self) {
        drop(self.stop);
        let _ = self.thread.join();
    }
}

/// The persister thread: a round every `IDENTITY_PERSIST_INTERVAL_SECS`, and a last one
/// at [`Persister::stop`].
pub fn spawn(identity: IdentityService, state: Arc<StateService>) -> std::io::Result<Persister> {
    let (stop, stopped) = flume::bounded::<()>(1);
    let thread = std::thread::Builder::new()
        .name("relay-identity-persist".to_owned())
        .spawn(move || {
            let interval = Duration::from_secs(IDENTITY_PERSIST_INTERVAL_SECS);
            loop {
                let stopping = matches!(
                    stopped.recv_timeout(interval),
                    Err(flume::RecvTimeoutError::Disconnected) | Ok(())
                );
                if let Err(e) = persist(&identity, &state) {
                    log::warn!("identity cache: saving to the store failed: {e}");
                }
                if stopping {
                    return;
                }
            }
        })?;
    Ok(Persister { stop, thread })
}
