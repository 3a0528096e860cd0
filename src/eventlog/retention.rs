//! Retention: deleting whole sealed segments, oldest first, by age and by total size.
//!
//! Owns: the decision (a pure function over segment creation times and sizes) and its
//! execution (remove from the segment table, then unlink). A segment is old enough when
//! the *next* segment was created more than the replay window ago: the next segment's
//! creation is the moment this one was sealed, so every record in it is older than that.
//! Must not: touch the active (last) segment, delete out of order (the window stays one
//! contiguous seq range), or rewrite anything.
//! Always checks: that deletion stops at the first segment that is neither too old nor
//! needed for the byte bound. Does not check: readers; one that has a deleted segment open
//! keeps reading it (Linux keeps an unlinked file's data until its last descriptor
//! closes), and one that reaches a deleted segment gets `CursorOutdated`.

use super::segments::write;
use super::{EventLogError, Seq, Shared, io_error};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What one retention pass deleted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetentionReport {
    /// Whole segments deleted.
    pub segments_deleted: usize,
    /// Bytes those segments held.
    pub bytes_deleted: u64,
    /// First seq of the replay window after the pass (see `EventLog::oldest_seq`).
    pub oldest_seq: Option<Seq>,
}

/// What the decision needs to know about one segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SegmentSummary {
    pub(crate) created_unix_micros: u64,
    pub(crate) bytes: u64,
}

/// How many of the oldest segments to delete. Never the last one.
pub(crate) fn plan(
    segments: &[SegmentSummary],
    now_unix_micros: u64,
    window_micros: u64,
    bytes_max: u64,
) -> usize {
    let mut total: u64 = segments.iter().map(|s| s.bytes).sum();
    let mut count = 0;
    for pair in segments.windows(2) {
        let [this, next] = pair else { break };
        let sealed_long_ago =
            next.created_unix_micros.saturating_add(window_micros) <= now_unix_micros;
        if !(sealed_long_ago || total > bytes_max) {
            break;
        }
        total = total.saturating_sub(this.bytes);
        count += 1;
    }
    count
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

/// Apply retention at time `now`.
pub(crate) fn enforce(shared: &Shared, now: SystemTime) -> Result<RetentionReport, EventLogError> {
    let now_micros = now.duration_since(UNIX_EPOCH).map(micros).unwrap_or(0);
    let (removed, oldest_seq) = {
        let mut table = write(&shared.table);
        let summaries: Vec<SegmentSummary> = table
            .all()
            .iter()
            .map(|s| SegmentSummary {
                created_unix_micros: s.created_unix_micros,
                bytes: s.readable_len(),
            })
            .collect();
        let count = plan(
            &summaries,
            now_micros,
            micros(shared.settings.replay_window),
            shared.settings.bytes_max,
        );
        let removed = table.remove_oldest(count);
        (removed, table.oldest().map(|s| s.first_seq))
    };
    let mut bytes_deleted = 0;
    for segment in &removed {
        bytes_deleted += segment.readable_len();
        match std::fs::remove_file(&segment.path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error("delete_segment", &segment.path, e)),
        }
    }
    metrics::counter!("relay_eventlog_segments_deleted_total").increment(removed.len() as u64);
    Ok(RetentionReport {
        segments_deleted: removed.len(),
        bytes_deleted,
        oldest_seq,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(created: u64, bytes: u64) -> SegmentSummary {
        SegmentSummary {
            created_unix_micros: created,
            bytes,
        }
    }

    #[test]
    fn never_deletes_the_last_segment() {
        assert_eq!(plan(&[], 100, 0, 0), 0);
        assert_eq!(plan(&[seg(0, 10)], 1000, 0, 0), 0);
        assert_eq!(plan(&[seg(0, 10), seg(1, 10)], 1000, 0, 0), 1);
    }

    #[test]
    fn by_age_uses_the_next_segments_creation() {
        let segments = [seg(0, 10), seg(100, 10), seg(200, 10), seg(300, 10)];
        // Window 50 at time 220: segment 0 sealed at 100 (old), segment 1 sealed at 200 (not).
        assert_eq!(plan(&segments, 220, 50, u64::MAX), 1);
        assert_eq!(plan(&segments, 250, 50, u64::MAX), 2);
        assert_eq!(plan(&segments, 10_000, 50, u64::MAX), 3);
        assert_eq!(plan(&segments, 99, 0, u64::MAX), 0);
    }

    #[test]
    fn by_bytes_deletes_oldest_until_under_the_bound() {
        let segments = [seg(0, 10), seg(1, 20), seg(2, 30), seg(3, 40)];
        assert_eq!(plan(&segments, 0, u64::MAX, 100), 0);
        assert_eq!(plan(&segments, 0, u64::MAX, 99), 1);
        assert_eq!(plan(&segments, 0, u64::MAX, 70), 2);
        assert_eq!(plan(&segments, 0, u64::MAX, 0), 3);
    }
}
