//! The in-memory seq → offset index of one segment: sparse, sans-IO.
//!
//! Owns: which records get an entry (every `EVENTLOG_INDEX_SCAN_RECORDS_MAX`-th, starting
//! with the first) and the lookup of where a scan for a cursor must start.
//! Must not: read files; the scanners feed it and finish the lookup by reading forward.
//! Always checks: that observed seqs increase (an out-of-order observation is ignored,
//! keeping the entries sorted so the binary search stays correct). Does not check: that
//! offsets point at records (the scanners verify every record they read).

use crate::config::limits::EVENTLOG_INDEX_SCAN_RECORDS_MAX;

/// One sampled record: its seq and the byte offset of its header in the segment file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct IndexEntry {
    pub(crate) seq: u64,
    pub(crate) offset: u64,
}

/// A sparse, sorted sample of a segment's records.
#[derive(Clone, Debug, Default)]
pub(crate) struct SparseIndex {
    entries: Vec<IndexEntry>,
    records: u64,
    last_seq: u64,
}

impl SparseIndex {
    /// Note the next record of the segment (records must be fed in file order).
    pub(crate) fn observe(&mut self, seq: u64, offset: u64) {
        if seq <= self.last_seq && self.records > 0 {
            return;
        }
        if self.records.is_multiple_of(EVENTLOG_INDEX_SCAN_RECORDS_MAX) {
            self.entries.push(IndexEntry { seq, offset });
        }
        self.records += 1;
        self.last_seq = seq;
    }

    /// Offset from which a forward scan finds the first record with seq ≥ `cursor`: the
    /// last sampled record with seq ≤ `cursor`, or `None` when the cursor is before every
    /// sample (scan from the segment's first record).
    pub(crate) fn scan_start(&self, cursor: u64) -> Option<u64> {
        let after = self.entries.partition_point(|e| e.seq <= cursor);
        after
            .checked_sub(1)
            .and_then(|i| self.entries.get(i))
            .map(|e| e.offset)
    }

    /// Records observed so far.
    #[cfg(test)]
    pub(crate) fn records(&self) -> u64 {
        self.records
    }

    /// Seq of the last record observed (0 when none).
    #[cfg(test)]
    pub(crate) fn last_seq(&self) -> u64 {
        self.last_seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_every_stride_and_finds_floor() {
        let mut index = SparseIndex::default();
        let stride = EVENTLOG_INDEX_SCAN_RECORDS_MAX;
        for i in 0..(3 * stride) {
            index.observe(10 + 2 * i, 64 + 100 * i);
        }
        assert_eq!(index.records(), 3 * stride);
        assert_eq!(index.scan_start(0), None);
        assert_eq!(index.scan_start(9), None);
        assert_eq!(index.scan_start(10), Some(64));
        assert_eq!(index.scan_start(11), Some(64));
        let second = 10 + 2 * stride;
        assert_eq!(index.scan_start(second - 1), Some(64));
        assert_eq!(index.scan_start(second), Some(64 + 100 * stride));
        assert_eq!(index.scan_start(u64::MAX), Some(64 + 100 * 2 * stride));
    }

    #[test]
    fn ignores_out_of_order_observations() {
        let mut index = SparseIndex::default();
        index.observe(5, 64);
        index.observe(5, 100);
        index.observe(4, 200);
        assert_eq!(index.records(), 1);
        assert_eq!(index.last_seq(), 5);
    }
}
