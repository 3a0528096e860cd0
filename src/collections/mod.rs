//! The collection index behind `com.atproto.sync.listReposByCollection`: which accounts
//! have records in which collection.
//!
//! Owns: what a sequenced event means for the index ([`change_of`]: a `#commit`'s create
//! and update ops add `(collection, did)`, an `#account` saying `deleted` forgets the
//! DID), the recently-written filter ([`SeenPairs`]) that keeps the same pairs from being
//! rewritten on every commit, the indexer thread that follows the event log
//! ([`indexer`]), and the backfill from another relay's `listReposByCollection`
//! ([`backfill`]).
//! Must not: run on the ingest path or a data-plane core — the index is fed from the
//! durable, sequenced stream (the event log), so it only ever sees verified events and
//! never slows ingest; or write the store except through `StateService`.
//!
//! What the index does not track: a delete op does not remove a pair, since the relay
//! holds no repository and cannot tell the last record of a collection from any other
//! (indigo's collectiondir does the same); `listReposByCollection` hides accounts that are
//! not active when it answers instead.

#[cfg(feature = "server")]
pub mod backfill;
#[cfg(feature = "server")]
pub mod indexer;

use crate::frame::event::{Event, Frame, FrameError, OpAction};
use crate::sequencer::{RECORD_KIND_ACCOUNT, RECORD_KIND_COMMIT};
use std::collections::HashSet;
use std::hash::{BuildHasher, Hash, Hasher};

/// What one sequenced event changes in the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexChange<'a> {
    /// `did` has records in each of `collections` (deduplicated, in op order).
    Add {
        /// The account.
        did: &'a str,
        /// Collection NSIDs named by create or update ops.
        collections: Vec<&'a str>,
    },
    /// The account is deleted: forget all of its pairs.
    Forget {
        /// The account.
        did: &'a str,
    },
    /// Nothing to index (other event types, a commit of deletes only).
    Nothing,
}

/// Why an event-log record was not indexed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexError {
    /// The stored frame does not decode (the log holds only frames that did, so this is
    /// damage or a format change).
    Frame(FrameError),
    /// An op path's collection is not an NSID (verification should have refused it).
    BadCollection,
}

impl IndexError {
    /// A short, bounded label.
    pub fn reason(&self) -> &'static str {
        match self {
            IndexError::Frame(e) => e.reason(),
            IndexError::BadCollection => "bad_collection",
        }
    }
}

/// The index change of the event-log record of `kind` holding `payload` (a whole frame).
pub fn change_of(kind: u16, payload: &[u8]) -> Result<IndexChange<'_>, IndexError> {
    if kind != RECORD_KIND_COMMIT && kind != RECORD_KIND_ACCOUNT {
        return Ok(IndexChange::Nothing);
    }
    let frame = Frame::decode(payload).map_err(IndexError::Frame)?;
    match frame.into_event() {
        Event::Commit(commit) => {
            let mut collections: Vec<&str> = Vec::new();
            for op in commit.ops() {
                if op.action == OpAction::Delete {
                    continue;
                }
                let collection = op.path.split_once('/').map_or(op.path, |(c, _)| c);
                if crate::syntax::Nsid::parse(collection).is_err() {
                    return Err(IndexError::BadCollection);
                }
                if !collections.contains(&collection) {
                    collections.push(collection);
                }
            }
            if collections.is_empty() {
                return Ok(IndexChange::Nothing);
            }
            Ok(IndexChange::Add {
                did: commit.repo(),
                collections,
            })
        }
        Event::Account(account) if !account.active() && account.status() == Some("deleted") => {
            Ok(IndexChange::Forget { did: account.did() })
        }
        _ => Ok(IndexChange::Nothing),
    }
}

/// Pairs written recently, kept as 64-bit hashes so the filter costs 8 bytes a pair.
/// Most commits add records to collections their account already has; skipping those
/// pairs keeps the index's write rate near the rate of *new* pairs. When full it is
/// cleared (the next sighting of each pair is written again, which is harmless: writes
/// are idempotent). A hash collision could skip one new pair until the filter is next
/// cleared; at 2^-64 per pair that is accepted.
#[derive(Debug)]
pub struct SeenPairs {
    hashes: HashSet<u64>,
    entries_max: usize,
    hasher: std::collections::hash_map::RandomState,
}

impl SeenPairs {
    /// A filter of at most `entries_max` pairs.
    pub fn new(entries_max: usize) -> SeenPairs {
        SeenPairs {
            hashes: HashSet::new(),
            entries_max,
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }

    /// True the first time a pair is offered (since the last clear).
    pub fn first_sight(&mut self, collection: &str, did: &str) -> bool {
        let mut hasher = self.hasher.build_hasher();
        collection.hash(&mut hasher);
        did.hash(&mut hasher);
        let hash = hasher.finish();
        if self.hashes.contains(&hash) {
            return false;
        }
        if self.hashes.len() >= self.entries_max {
            self.hashes.clear();
        }
        self.hashes.insert(hash);
        true
    }

    /// Forget everything (after a DID's pairs were removed, so they are written again if
    /// the account comes back).
    pub fn clear(&mut self) {
        self.hashes.clear();
    }

    /// Pairs held now.
    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_pairs_report_first_sight_once_and_clear_when_full() {
        let mut seen = SeenPairs::new(2);
        assert!(seen.first_sight("app.bsky.feed.post", "did:plc:a"));
        assert!(!seen.first_sight("app.bsky.feed.post", "did:plc:a"));
        assert!(seen.first_sight("app.bsky.feed.like", "did:plc:a"));
        assert_eq!(seen.len(), 2);
        // Full: the third pair clears the filter and is held alone.
        assert!(seen.first_sight("app.bsky.feed.post", "did:plc:b"));
        assert_eq!(seen.len(), 1);
        assert!(seen.first_sight("app.bsky.feed.post", "did:plc:a"));
    }

    #[test]
    fn other_record_kinds_change_nothing() {
        assert_eq!(change_of(2, b"not a frame"), Ok(IndexChange::Nothing));
        assert_eq!(change_of(3, b""), Ok(IndexChange::Nothing));
    }

    #[test]
    fn an_undecodable_commit_record_is_an_error() {
        assert!(matches!(
            change_of(RECORD_KIND_COMMIT, b"\xa1"),
            Err(IndexError::Frame(_))
        ));
    }
}
