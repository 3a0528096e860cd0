//! Opening the log after a clean stop or a crash.
//!
//! Owns: listing segment files, validating every segment header (and that it matches the
//! file name), scanning the last segment record by record with checksums, cutting a torn
//! or corrupt tail (and making the cut durable), the salvage scan past a cut, and the
//! choice of the next seq. docs/specs/eventlog-format.md ("Recovery" and "Seq is never
//! reused") gives the reasoning this code follows.
//! Must not: rewrite or delete sealed segments (a bad sealed segment header refuses the
//! open: an operator decides), or start the writer.
//! Always checks: headers of all segments, every record of the last segment. Does not
//! check: records of sealed segments (replay verifies each record it reads; a full scan
//! of hundreds of GiB at every start would cost minutes).

use super::format::{
    FILE_HEADER_LEN, FormatDefect, RECORD_HEADER_LEN, RecordHeader, SegmentHeader,
    find_record_magic, parse_segment_file_name,
};
use super::scan::{RecordScanner, ScanMode, Scanned};
use super::segments::{IndexState, SegmentMeta};
use super::{EventLogError, Seq, io_error};
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Suffix of a segment being created (header written, not yet renamed into place).
pub(crate) const TEMP_SUFFIX: &str = ".tmp";
/// Bytes the salvage scan reads per pread while looking for records past a cut.
const SALVAGE_WINDOW_BYTES: usize = 1024 * 1024;

/// What opening the log found and did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Segment files in the log.
    pub segments: usize,
    /// Seq of the last intact record (`None` when the log holds no record).
    pub last_seq: Option<Seq>,
    /// The seq the sequencer must hand out next (see the spec on seq reuse).
    pub next_seq: Seq,
    /// Bytes cut from the end of the last segment (0 after a clean stop).
    pub bytes_cut: u64,
    /// Why the tail was cut, when it was.
    pub cut_defect: Option<FormatDefect>,
    /// Highest seq seen in the cut bytes (the defective record's own header when its fields
    /// decode, and checksum-valid records after it): cut, but never handed out again.
    pub salvaged_seq: Option<Seq>,
    /// Leftover `*.seg.tmp` files of an interrupted segment creation, removed.
    pub temp_files_removed: usize,
    /// Bytes cut from the end of the tombstone file (a torn last entry).
    pub tombstone_bytes_cut: u64,
}

/// Where the writer resumes: the last segment, open for writing, and its valid end.
#[derive(Debug)]
pub(crate) struct ActiveResume {
    pub(crate) meta: Arc<SegmentMeta>,
    pub(crate) file: File,
    pub(crate) end: u64,
}

/// Everything recovery hands to `EventLog::open`.
#[derive(Debug)]
pub(crate) struct Recovered {
    pub(crate) segments: Vec<Arc<SegmentMeta>>,
    pub(crate) resume: Option<ActiveResume>,
    pub(crate) report: RecoveryReport,
}

/// Segment files on disk, sorted by first seq; stale temp files are removed.
fn list_segments(dir: &Path) -> Result<(Vec<(Seq, PathBuf)>, usize), EventLogError> {
    let mut segments = Vec::new();
    let mut removed = 0;
    let entries = fs::read_dir(dir).map_err(|e| io_error("list_dir", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io_error("list_dir", dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.ends_with(TEMP_SUFFIX)
            && parse_segment_file_name(name.trim_end_matches(TEMP_SUFFIX)).is_some()
        {
            fs::remove_file(entry.path()).map_err(|e| io_error("remove_temp", &entry.path(), e))?;
            removed += 1;
        } else if let Some(first_seq) = parse_segment_file_name(name) {
            segments.push((first_seq, entry.path()));
        }
    }
    segments.sort_by_key(|(seq, _)| *seq);
    Ok((segments, removed))
}

/// Open a segment, check its header against its name; returns the file, header and length.
fn open_segment(
    path: &Path,
    name_seq: Seq,
    writable: bool,
) -> Result<(File, SegmentHeader, u64), EventLogError> {
    let file = OpenOptions::new()
        .read(true)
        .write(writable)
        .open(path)
        .map_err(|e| io_error("open_segment", path, e))?;
    let len = file
        .metadata()
        .map_err(|e| io_error("stat_segment", path, e))?
        .len();
    let mut bytes = [0u8; FILE_HEADER_LEN];
    let header = if len < FILE_HEADER_LEN as u64 {
        Err(FormatDefect::TruncatedHeader)
    } else {
        file.read_exact_at(&mut bytes, 0)
            .map_err(|e| io_error("read_segment_header", path, e))?;
        SegmentHeader::decode(&bytes)
    };
    let header = header.map_err(|defect| EventLogError::SegmentHeader {
        path: path.to_path_buf(),
        defect,
    })?;
    if header.first_seq != name_seq {
        return Err(EventLogError::SegmentNameMismatch {
            path: path.to_path_buf(),
            header_first_seq: header.first_seq.get(),
        });
    }
    Ok((file, header, len))
}

/// Recover the log in `dir`. `seq_floor` is the operator's lower bound for the next seq.
pub(crate) fn recover(dir: &Path, seq_floor: u64) -> Result<Recovered, EventLogError> {
    let (listed, temp_files_removed) = list_segments(dir)?;
    let mut segments = Vec::with_capacity(listed.len());
    let last_index = listed.len().checked_sub(1);
    let mut tail = TailOutcome::default();
    let mut resume = None;
    for (i, (name_seq, path)) in listed.iter().enumerate() {
        let is_last = Some(i) == last_index;
        let (file, header, len) = open_segment(path, *name_seq, is_last)?;
        let meta_for = |readable_len, index| {
            Arc::new(SegmentMeta::new(
                i as u64,
                header.first_seq,
                path.clone(),
                header.created_unix_micros,
                readable_len,
                index,
            ))
        };
        if !is_last {
            segments.push(meta_for(len, IndexState::default()));
            continue;
        }
        tail = recover_tail(&file, path, header.first_seq, len)?;
        let meta = meta_for(
            tail.end,
            IndexState {
                sparse: std::mem::take(&mut tail.index),
                complete: true,
            },
        );
        segments.push(Arc::clone(&meta));
        resume = Some(ActiveResume {
            meta,
            file,
            end: tail.end,
        });
    }
    let last_segment_first = segments.last().map(|s| s.first_seq.get());
    let next_seq = choose_next_seq(
        tail.last_seq,
        tail.salvaged_seq,
        last_segment_first,
        seq_floor,
    )
    .ok_or(EventLogError::SeqExhausted)?;
    let report = RecoveryReport {
        segments: segments.len(),
        last_seq: tail.last_seq.and_then(Seq::new),
        next_seq,
        bytes_cut: tail.bytes_cut,
        cut_defect: tail.cut_defect,
        salvaged_seq: tail.salvaged_seq.and_then(Seq::new),
        temp_files_removed,
        tombstone_bytes_cut: 0,
    };
    Ok(Recovered {
        segments,
        resume,
        report,
    })
}

/// The next seq: above every seq that may have been broadcast or handed out. Recovered
/// records, records salvaged past a cut, the last segment's first seq (handed to the
/// writer when the segment was created) and the operator's floor all bound it from below.
pub(crate) fn choose_next_seq(
    last_seq: Option<u64>,
    salvaged_seq: Option<u64>,
    last_segment_first_seq: Option<u64>,
    seq_floor: u64,
) -> Option<Seq> {
    let after = |s: Option<u64>| s.map_or(0, |v| v.saturating_add(1));
    let next = after(last_seq)
        .max(after(salvaged_seq))
        .max(last_segment_first_seq.unwrap_or(0))
        .max(seq_floor)
        .max(1);
    // Past `EVENTLOG_SEQ_MAX` there is no valid seq left: refuse rather than wrap.
    Seq::new(next)
}

#[derive(Debug, Default)]
struct TailOutcome {
    end: u64,
    last_seq: Option<u64>,
    salvaged_seq: Option<u64>,
    bytes_cut: u64,
    cut_defect: Option<FormatDefect>,
    index: super::index::SparseIndex,
}

/// Scan the last segment, cut at the first defect, and make the result durable.
fn recover_tail(
    file: &File,
    path: &Path,
    first_seq: Seq,
    len: u64,
) -> Result<TailOutcome, EventLogError> {
    let read_err = |e| io_error("scan_segment", path, e);
    let mut outcome = TailOutcome::default();
    let mut scanner = RecordScanner::new(FILE_HEADER_LEN as u64, len, first_seq.get() - 1);
    loop {
        match scanner
            .next(file, ScanMode::Verify, None)
            .map_err(read_err)?
        {
            Scanned::Record { header, offset } => {
                outcome.index.observe(header.seq.get(), offset);
                outcome.last_seq = Some(header.seq.get());
            }
            Scanned::End => break,
            Scanned::Defect { offset, defect } => {
                outcome.cut_defect = Some(defect);
                let own = decodable_header_seq(file, offset, len).map_err(read_err)?;
                let later = salvage_max_seq(file, offset + 1, len).map_err(read_err)?;
                outcome.salvaged_seq = own.max(later);
                break;
            }
        }
    }
    outcome.end = scanner.offset();
    outcome.bytes_cut = len - outcome.end;
    if outcome.bytes_cut > 0 {
        file.set_len(outcome.end)
            .map_err(|e| io_error("truncate_segment", path, e))?;
    }
    // Records recovered from the page cache after a process crash may not be on stable
    // storage yet; they become durable (and so replayable) before anyone sees them.
    file.sync_all()
        .map_err(|e| io_error("sync_segment", path, e))?;
    Ok(outcome)
}

/// Highest seq of a checksum-valid record in `[from, end)`, found by searching for the
/// record magic and hopping record to record after each valid one. Such records were
/// written after the defect; they are cut, but their seqs are not handed out again.
fn salvage_max_seq(file: &File, from: u64, end: u64) -> std::io::Result<Option<u64>> {
    let mut best = None;
    let mut at = from;
    let mut window = Vec::new();
    while at + RECORD_HEADER_LEN as u64 <= end {
        let want = ((end - at) as usize).min(SALVAGE_WINDOW_BYTES);
        window.resize(want, 0);
        file.read_exact_at(&mut window, at)?;
        let Some(hit) = find_record_magic(&window) else {
            // Keep the last bytes: a magic may straddle the window edge.
            at += (want.saturating_sub(RECORD_HEADER_LEN)).max(1) as u64;
            continue;
        };
        let candidate = at + hit as u64;
        match valid_record_at(file, candidate, end)? {
            Some(header) => {
                best = best.max(Some(header.seq.get()));
                at = candidate + header.record_len();
            }
            None => at = candidate + 1,
        }
    }
    Ok(best)
}

/// The seq in the defective record's own header when its fields decode (only its
/// checksum or payload is bad): a record the writer wrote, perhaps durable and broadcast
/// before bit rot hit it, so its seq is not handed out again either.
fn decodable_header_seq(file: &File, at: u64, end: u64) -> std::io::Result<Option<u64>> {
    let mut header_bytes = [0u8; RECORD_HEADER_LEN];
    if at + RECORD_HEADER_LEN as u64 > end {
        return Ok(None);
    }
    file.read_exact_at(&mut header_bytes, at)?;
    Ok(RecordHeader::decode(&header_bytes)
        .ok()
        .map(|h| h.seq.get()))
}

fn valid_record_at(file: &File, at: u64, end: u64) -> std::io::Result<Option<RecordHeader>> {
    let mut header_bytes = [0u8; RECORD_HEADER_LEN];
    if at + RECORD_HEADER_LEN as u64 > end {
        return Ok(None);
    }
    file.read_exact_at(&mut header_bytes, at)?;
    let Ok(header) = RecordHeader::decode(&header_bytes) else {
        return Ok(None);
    };
    if at + header.record_len() > end {
        return Ok(None);
    }
    let mut payload = vec![0u8; header.payload_len as usize];
    file.read_exact_at(&mut payload, at + RECORD_HEADER_LEN as u64)?;
    Ok(header.check_payload(&payload).ok().map(|()| header))
}

#[cfg(test)]
mod tests {
    use super::choose_next_seq;

    #[test]
    fn next_seq_takes_the_highest_bound() {
        let next = |a, b, c, d| choose_next_seq(a, b, c, d).map(|s| s.get());
        assert_eq!(next(None, None, None, 0), Some(1));
        assert_eq!(next(Some(9), None, Some(5), 0), Some(10));
        assert_eq!(next(Some(9), Some(12), Some(5), 0), Some(13));
        assert_eq!(next(None, None, Some(20), 0), Some(20));
        assert_eq!(next(Some(9), None, Some(5), 1000), Some(1000));
        let max = crate::config::limits::EVENTLOG_SEQ_MAX;
        assert_eq!(next(Some(max - 1), None, None, 0), Some(max));
        assert_eq!(next(Some(max), None, None, 0), None);
        assert_eq!(next(None, Some(u64::MAX), None, 0), None);
    }
}
