//! The table of segment files shared by the writer, the readers and retention.
//!
//! Owns: per-segment metadata (first seq, path, creation time, readable length, sparse
//! index) and the ordered list of live segments, plus the lock helpers that tolerate
//! poisoning (the library never panics while holding a lock, so a poisoned lock still
//! guards consistent data).
//! Must not: read or write segment bytes (scan.rs reads, writer.rs writes).
//! Always checks: nothing beyond ordering; the table keeps segments sorted by first seq
//! because the writer only ever appends a segment with a larger first seq.
//! Does not check: that the files exist (readers open them and handle their absence).

use super::Seq;
use super::index::SparseIndex;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn read<T>(rwlock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    rwlock.read().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn write<T>(rwlock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    rwlock.write().unwrap_or_else(PoisonError::into_inner)
}

/// The sparse index of a segment and whether it covers the whole segment yet. Sealed
/// segments found at open are indexed lazily, on the first lookup that lands in them.
#[derive(Debug, Default)]
pub(crate) struct IndexState {
    pub(crate) sparse: SparseIndex,
    pub(crate) complete: bool,
}

/// One segment file.
#[derive(Debug)]
pub(crate) struct SegmentMeta {
    /// Position in creation order (consecutive): a replay moving on from segment n must
    /// find n + 1, or records between were deleted under it.
    pub(crate) ordinal: u64,
    pub(crate) first_seq: Seq,
    pub(crate) path: PathBuf,
    pub(crate) created_unix_micros: u64,
    /// Bytes of the file readers may read: the whole file for a sealed segment, the end of
    /// the last durable record for the active one. Stored before the durable seq is
    /// published, so a reader that saw a durable seq sees at least the matching length.
    readable_len: AtomicU64,
    pub(crate) index: Mutex<IndexState>,
}

impl SegmentMeta {
    pub(crate) fn new(
        ordinal: u64,
        first_seq: Seq,
        path: PathBuf,
        created_unix_micros: u64,
        readable_len: u64,
        index: IndexState,
    ) -> Self {
        SegmentMeta {
            ordinal,
            first_seq,
            path,
            created_unix_micros,
            readable_len: AtomicU64::new(readable_len),
            index: Mutex::new(index),
        }
    }

    pub(crate) fn readable_len(&self) -> u64 {
        self.readable_len.load(Ordering::Acquire)
    }

    pub(crate) fn set_readable_len(&self, len: u64) {
        self.readable_len.store(len, Ordering::Release);
    }
}

/// The live segments, oldest first.
#[derive(Debug, Default)]
pub(crate) struct SegmentTable {
    segments: Vec<Arc<SegmentMeta>>,
}

impl SegmentTable {
    pub(crate) fn new(segments: Vec<Arc<SegmentMeta>>) -> Self {
        SegmentTable { segments }
    }

    pub(crate) fn push(&mut self, segment: Arc<SegmentMeta>) {
        self.segments.push(segment);
    }

    pub(crate) fn all(&self) -> &[Arc<SegmentMeta>] {
        &self.segments
    }

    /// The ordinal the next created segment gets.
    pub(crate) fn next_ordinal(&self) -> u64 {
        self.segments.last().map_or(0, |s| s.ordinal + 1)
    }

    pub(crate) fn oldest(&self) -> Option<&Arc<SegmentMeta>> {
        self.segments.first()
    }

    /// The segment a scan for `cursor` starts in: the last one whose first seq is at most
    /// the cursor, or the oldest when the cursor is before the window.
    pub(crate) fn locate(&self, cursor: u64) -> Option<Arc<SegmentMeta>> {
        let after = self
            .segments
            .partition_point(|s| s.first_seq.get() <= cursor);
        let index = after.saturating_sub(1);
        self.segments.get(index).cloned()
    }

    /// The segment following the one that starts at `first_seq` (which may already have
    /// been removed by retention).
    pub(crate) fn after(&self, first_seq: Seq) -> Option<Arc<SegmentMeta>> {
        let index = self.segments.partition_point(|s| s.first_seq <= first_seq);
        self.segments.get(index).cloned()
    }

    /// Remove the `count` oldest segments from the table and return them.
    pub(crate) fn remove_oldest(&mut self, count: usize) -> Vec<Arc<SegmentMeta>> {
        let count = count.min(self.segments.len());
        self.segments.drain(..count).collect()
    }

    pub(crate) fn total_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.readable_len()).sum()
    }
}
