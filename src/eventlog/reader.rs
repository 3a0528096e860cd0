//! Replay: records from a cursor onwards, across segments, up to the durable seq.
//!
//! Owns: locating the first record with seq ≥ cursor (segment table, then the segment's
//! sparse index, built lazily for sealed segments, then a forward scan), reading records
//! with positioned reads (`pread` via a read-ahead buffer; no mmap, so a truncated or
//! deleted file can never fault the process), moving to the next segment at a segment's
//! end, and skipping records of taken-down accounts.
//! Must not: read past the durable seq (records after it may be half written), write, or
//! know about consumers (cursor policy such as OutdatedCursor belongs to fan-out, which
//! compares its cursor with `EventLog::oldest_seq`).
//! Always checks: every record's header, seq order and checksum. Does not check: that
//! the caller runs it off the data-plane cores (reads block on the disk).

use super::format::FILE_HEADER_LEN;
use super::scan::{RecordScanner, ScanMode, Scanned};
use super::segments::{SegmentMeta, lock, read};
use super::{AccountKey, EventLogError, RecordKind, Seq, Shared, io_error};
use std::fs::File;
use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// One record read back from the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayRecord {
    /// The record's relay seq.
    pub seq: Seq,
    /// The account it belongs to.
    pub account_key: AccountKey,
    /// The caller's kind tag.
    pub kind: RecordKind,
    /// The exact bytes that were appended (the outgoing frame).
    pub payload: Vec<u8>,
}

/// An iterator over durable records with seq ≥ a cursor, oldest first.
///
/// `next` returns `None` when it has caught up with the durable seq; calling it again
/// later continues with records that became durable since (the fan-out uses this to
/// replay, then switch to the live tail without a gap). After an error it returns `None`.
#[derive(Debug)]
pub struct Replay {
    shared: Arc<Shared>,
    next_min: u64,
    position: Option<Position>,
    failed: bool,
}

#[derive(Debug)]
struct Position {
    segment: Arc<SegmentMeta>,
    file: File,
    scanner: RecordScanner,
}

enum Step {
    Yield(ReplayRecord),
    Skip,
    CaughtUp,
}

impl Replay {
    pub(crate) fn new(shared: Arc<Shared>, cursor: u64) -> Self {
        Replay {
            shared,
            next_min: cursor.max(1),
            position: None,
            failed: false,
        }
    }

    /// The smallest seq the next record can have.
    pub fn next_seq(&self) -> u64 {
        self.next_min
    }

    fn step(&mut self) -> Result<Step, EventLogError> {
        let durable = self.shared.durable.load(Ordering::Acquire);
        if durable == 0 || self.next_min > durable {
            return Ok(Step::CaughtUp);
        }
        let position = match self.position.take() {
            Some(position) => position,
            None => match self.locate()? {
                Some(position) => position,
                None => return Ok(Step::CaughtUp),
            },
        };
        let position = self.position.insert(position);
        position.scanner.set_end(position.segment.readable_len());
        let mut payload = Vec::new();
        let scanned = position
            .scanner
            .next(&position.file, ScanMode::Verify, Some(&mut payload))
            .map_err(|e| io_error("read_segment", &position.segment.path, e))?;
        match scanned {
            Scanned::Record { header, .. } => {
                let seq = header.seq.get();
                if seq < self.next_min {
                    return Ok(Step::Skip);
                }
                self.next_min = seq.saturating_add(1);
                if self.shared.tombstones.hides(header.account_key, seq) {
                    return Ok(Step::Skip);
                }
                let record = ReplayRecord {
                    seq: header.seq,
                    account_key: header.account_key,
                    kind: header.kind,
                    payload,
                };
                Ok(Step::Yield(record))
            }
            Scanned::End => {
                let next = read(&self.shared.table).after(position.segment.first_seq);
                match next {
                    Some(segment) if segment.ordinal != position.segment.ordinal + 1 => {
                        // Retention deleted the segment(s) in between while we read.
                        Err(EventLogError::CursorOutdated {
                            segment: position.segment.first_seq,
                        })
                    }
                    Some(segment) => {
                        self.position = Some(open_position(segment, FILE_HEADER_LEN as u64)?);
                        Ok(Step::Skip)
                    }
                    None => Ok(Step::CaughtUp),
                }
            }
            Scanned::Defect { offset, defect } => Err(EventLogError::CorruptRecord {
                segment: position.segment.first_seq,
                offset,
                defect,
            }),
        }
    }

    /// Find where the first record with seq ≥ `next_min` is (or the oldest record).
    fn locate(&self) -> Result<Option<Position>, EventLogError> {
        let Some(segment) = read(&self.shared.table).locate(self.next_min) else {
            return Ok(None);
        };
        let file = open_segment_file(&segment)?;
        let start = scan_start(&segment, &file, self.next_min)?;
        let scanner =
            RecordScanner::new(start, segment.readable_len(), segment.first_seq.get() - 1);
        Ok(Some(Position {
            segment,
            file,
            scanner,
        }))
    }
}

impl Iterator for Replay {
    type Item = Result<ReplayRecord, EventLogError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        loop {
            match self.step() {
                Ok(Step::Yield(record)) => return Some(Ok(record)),
                Ok(Step::Skip) => continue,
                Ok(Step::CaughtUp) => return None,
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

fn open_segment_file(segment: &SegmentMeta) -> Result<File, EventLogError> {
    File::open(&segment.path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => EventLogError::CursorOutdated {
            segment: segment.first_seq,
        },
        _ => io_error("open_segment", &segment.path, e),
    })
}

fn open_position(segment: Arc<SegmentMeta>, offset: u64) -> Result<Position, EventLogError> {
    let file = open_segment_file(&segment)?;
    let scanner = RecordScanner::new(offset, segment.readable_len(), segment.first_seq.get() - 1);
    Ok(Position {
        segment,
        file,
        scanner,
    })
}

/// The offset a forward scan for `cursor` starts at, building a sealed segment's index on
/// first use (headers only: one sequential pass of read-ahead preads).
fn scan_start(segment: &SegmentMeta, file: &File, cursor: u64) -> Result<u64, EventLogError> {
    let mut index = lock(&segment.index);
    if !index.complete {
        let mut scanner = RecordScanner::new(
            FILE_HEADER_LEN as u64,
            segment.readable_len(),
            segment.first_seq.get() - 1,
        );
        // A defect ends the index early; replay reports it when it reads that far.
        while let Scanned::Record { header, offset } = scanner
            .next(file, ScanMode::HeadersOnly, None)
            .map_err(|e| io_error("index_segment", &segment.path, e))?
        {
            index.sparse.observe(header.seq.get(), offset);
        }
        index.complete = true;
    }
    Ok(index
        .sparse
        .scan_start(cursor)
        .unwrap_or(FILE_HEADER_LEN as u64))
}
