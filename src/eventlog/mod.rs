//! The event log: every sequenced frame, persisted before it is broadcast, replayable by
//! cursor. docs/specs/eventlog-format.md is the normative description of the bytes.
//!
//! Owns: the on-disk format (`format`), segment files under `<data_dir>/eventlog/`
//! (`<first seq, 20 digits>.seg`), the seq → offset index (`index`, sparse, in memory),
//! the writer thread with its fsync/batching policy and io_uring (`writer`, `uring`),
//! last-seq recovery and the next seq (`recovery`), replay (`reader`), the replay window
//! (`retention`) and takedown tombstones (`tombstones`).
//! Must not: know consumers, cursors' protocol meaning (OutdatedCursor, FutureCursor),
//! HTTP, or frame contents (payloads are opaque bytes with an account key and a kind);
//! run anything on a data-plane core (the writer is its own OS thread; replay and
//! retention block on the disk and belong on non-data-plane threads); rewrite or compact
//! a segment (../shared/docs/seeds/treedb-maintenance-debt.txt: no background rewriting,
//! no maintenance debt; whole segments are deleted, takedowns are applied at read time).
//! Always checks: headers and checksums of everything it reads, seq strictly increasing
//! on append and on read, every bound in `config::limits` (`EVENTLOG_*`).
//! Does not check: what a payload means, or that account keys match DIDs.

mod format;
mod index;
mod reader;
mod recovery;
mod retention;
mod scan;
mod segments;
mod tombstones;
#[cfg(feature = "server")]
mod uring;
mod writer;

pub use format::{
    Crc32c, FILE_HEADER_LEN, FORMAT_VERSION, FormatDefect, RECORD_HEADER_LEN, RecordHeader,
    SegmentHeader, TombstoneEntry, crc32c, parse_segment_file_name, segment_file_name,
};
pub use reader::{Replay, ReplayRecord};
pub use recovery::RecoveryReport;
pub use retention::RetentionReport;
pub use writer::{AppendError, Appender, GatherRecord, OnDurable};

use crate::config::limits::{
    EVENTLOG_FSYNC_BATCH_RECORDS_MAX, EVENTLOG_FSYNC_INTERVAL_MICROS_MAX,
    EVENTLOG_SEGMENT_BYTES_MAX, EVENTLOG_SEQ_MAX,
};
use segments::{SegmentTable, lock, read};
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Name of the log's directory inside the data directory.
pub const EVENTLOG_DIR_NAME: &str = "eventlog";
/// Default replay window (72 hours, as indigo's relay).
pub const DEFAULT_REPLAY_WINDOW: Duration = Duration::from_secs(72 * 3600);
/// Default bound on the log's total size (300 GiB).
pub const DEFAULT_BYTES_MAX: u64 = 300 * 1024 * 1024 * 1024;
/// Name of the lock file that keeps a second process from opening the same log.
const LOCK_FILE_NAME: &str = "LOCK";

/// A relay sequence number: 1 ..= `EVENTLOG_SEQ_MAX`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Seq(u64);

impl Seq {
    /// The first seq of an empty log.
    pub const FIRST: Seq = Seq(1);

    /// A seq, if `value` is in range.
    pub fn new(value: u64) -> Option<Seq> {
        (1..=EVENTLOG_SEQ_MAX)
            .contains(&value)
            .then_some(Seq(value))
    }

    /// The number.
    pub fn get(self) -> u64 {
        self.0
    }

    /// The following seq, if in range.
    pub fn next(self) -> Option<Seq> {
        Seq::new(self.0 + 1)
    }
}

impl std::fmt::Display for Seq {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// The account a record belongs to, as a number the caller assigns (e.g. the account's
/// row id). Takedowns match on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AccountKey(u64);

impl AccountKey {
    /// Wrap a key.
    pub fn new(value: u64) -> AccountKey {
        AccountKey(value)
    }
    /// The number.
    pub fn get(self) -> u64 {
        self.0
    }
}

/// A caller-defined tag stored in each record header (e.g. the frame type); opaque here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordKind(u16);

impl RecordKind {
    /// Wrap a tag.
    pub fn new(value: u16) -> RecordKind {
        RecordKind(value)
    }
    /// The number.
    pub fn get(self) -> u16 {
        self.0
    }
}

/// Which write path to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoBackendChoice {
    /// io_uring when the kernel allows it, else the fallback (with a logged warning).
    Auto,
    /// Always the fallback (`writev` + `fdatasync`); for tests and odd kernels.
    FallbackOnly,
}

/// The write path the writer thread ended up with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoBackend {
    /// `IORING_OP_WRITEV` on the writer's own ring, then a direct `fdatasync`.
    Uring,
    /// `writev` + `fdatasync` system calls.
    Fallback,
}

/// How to open the log. `EventLogConfig::new` gives the defaults; fields may be changed
/// before `EventLog::open`, which validates them against `config::limits`.
#[derive(Clone, Debug)]
pub struct EventLogConfig {
    /// The relay's data directory; the log lives in its `eventlog/` subdirectory.
    pub data_dir: PathBuf,
    /// Segment size at which the writer rolls to a new file (≤ `EVENTLOG_SEGMENT_BYTES_MAX`).
    pub segment_bytes: u64,
    /// Records per group commit (1 ..= `EVENTLOG_FSYNC_BATCH_RECORDS_MAX`).
    pub fsync_batch_records: usize,
    /// Longest wait for more records after a group's first (≤ `EVENTLOG_FSYNC_INTERVAL_MICROS_MAX`).
    pub fsync_interval: Duration,
    /// Segments sealed longer ago than this are deleted by retention.
    pub replay_window: Duration,
    /// Retention deletes the oldest sealed segments while the log is larger than this.
    pub bytes_max: u64,
    /// io_uring or the fallback.
    pub io: IoBackendChoice,
    /// Lowest seq the log may hand out next (indigo's `initial-seq-number`): after losing
    /// the log's storage, restart far above the old seqs.
    pub seq_floor: u64,
}

impl EventLogConfig {
    /// Defaults: the largest segment, batch and interval the limits allow, a 72-hour window,
    /// 300 GiB, io_uring if available.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        EventLogConfig {
            data_dir: data_dir.into(),
            segment_bytes: EVENTLOG_SEGMENT_BYTES_MAX,
            fsync_batch_records: EVENTLOG_FSYNC_BATCH_RECORDS_MAX,
            fsync_interval: Duration::from_micros(EVENTLOG_FSYNC_INTERVAL_MICROS_MAX),
            replay_window: DEFAULT_REPLAY_WINDOW,
            bytes_max: DEFAULT_BYTES_MAX,
            io: IoBackendChoice::Auto,
            seq_floor: 1,
        }
    }

    fn validate(&self) -> Result<Settings, EventLogError> {
        let min_segment = (FILE_HEADER_LEN + RECORD_HEADER_LEN) as u64;
        if !(min_segment..=EVENTLOG_SEGMENT_BYTES_MAX).contains(&self.segment_bytes) {
            return Err(EventLogError::InvalidConfig("segment_bytes"));
        }
        if !(1..=EVENTLOG_FSYNC_BATCH_RECORDS_MAX).contains(&self.fsync_batch_records) {
            return Err(EventLogError::InvalidConfig("fsync_batch_records"));
        }
        if self.fsync_interval > Duration::from_micros(EVENTLOG_FSYNC_INTERVAL_MICROS_MAX) {
            return Err(EventLogError::InvalidConfig("fsync_interval"));
        }
        if self.seq_floor > EVENTLOG_SEQ_MAX {
            return Err(EventLogError::InvalidConfig("seq_floor"));
        }
        Ok(Settings {
            segment_bytes: self.segment_bytes,
            fsync_batch_records: self.fsync_batch_records,
            fsync_interval: self.fsync_interval,
            replay_window: self.replay_window,
            bytes_max: self.bytes_max,
            io: self.io,
        })
    }
}

/// The validated values the writer and retention read.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Settings {
    pub(crate) segment_bytes: u64,
    pub(crate) fsync_batch_records: usize,
    pub(crate) fsync_interval: Duration,
    pub(crate) replay_window: Duration,
    pub(crate) bytes_max: u64,
    pub(crate) io: IoBackendChoice,
}

/// Why the event log refused or failed an operation.
#[derive(Debug)]
#[non_exhaustive]
pub enum EventLogError {
    /// A configuration value is outside its bound (the field is named).
    InvalidConfig(&'static str),
    /// A file operation failed.
    Io {
        /// What was being done (a short fixed label).
        op: &'static str,
        /// On which file or directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Another process (or another `EventLog` in this one) has the log open.
    Locked(PathBuf),
    /// A segment's header is invalid; segments are never repaired automatically.
    SegmentHeader {
        /// The segment file.
        path: PathBuf,
        /// What is wrong.
        defect: FormatDefect,
    },
    /// A segment header's first seq differs from the one in its file name.
    SegmentNameMismatch {
        /// The segment file.
        path: PathBuf,
        /// The first seq its header carries.
        header_first_seq: u64,
    },
    /// Replay met a record that is not valid (bit rot in a sealed segment).
    CorruptRecord {
        /// First seq of the segment.
        segment: Seq,
        /// Byte offset of the record in the segment.
        offset: u64,
        /// What is wrong.
        defect: FormatDefect,
    },
    /// An appended seq is not above the previous one.
    SeqNotIncreasing {
        /// The rejected seq.
        seq: u64,
        /// The last accepted seq (or the recovered next seq minus one).
        last: u64,
    },
    /// A record's payload exceeds `EVENTLOG_RECORD_PAYLOAD_BYTES_MAX`.
    PayloadTooLarge {
        /// Its length.
        bytes: u64,
    },
    /// A record has more than `EVENTLOG_RECORD_SLICES_MAX` slices.
    TooManySlices {
        /// How many.
        slices: usize,
    },
    /// `try_append` found the writer's queue full.
    QueueFull,
    /// `start_writer` was called a second time.
    WriterAlreadyStarted,
    /// The writer thread has stopped (after a write failure, or it was closed).
    WriterStopped {
        /// The failure, when there was one.
        detail: Option<String>,
    },
    /// A segment replay needed was deleted by retention while the replay ran.
    CursorOutdated {
        /// First seq of the segment replay was in (or tried to open).
        segment: Seq,
    },
    /// The tombstone file is damaged before its last entry (refusing to forget takedowns).
    TombstoneCorrupt {
        /// Byte offset of the bad entry (0: the file header).
        offset: u64,
        /// What is wrong.
        defect: FormatDefect,
    },
    /// The tombstone file reached `EVENTLOG_TOMBSTONE_FILE_BYTES_MAX`.
    TombstoneFileFull,
    /// The next seq would exceed `EVENTLOG_SEQ_MAX`.
    SeqExhausted,
}

impl EventLogError {
    /// A short, bounded label.
    pub fn reason(&self) -> &'static str {
        match self {
            EventLogError::InvalidConfig(_) => "invalid_config",
            EventLogError::Io { .. } => "io",
            EventLogError::Locked(_) => "locked",
            EventLogError::SegmentHeader { .. } => "segment_header",
            EventLogError::SegmentNameMismatch { .. } => "segment_name_mismatch",
            EventLogError::CorruptRecord { .. } => "corrupt_record",
            EventLogError::SeqNotIncreasing { .. } => "seq_not_increasing",
            EventLogError::PayloadTooLarge { .. } => "payload_too_large",
            EventLogError::TooManySlices { .. } => "too_many_slices",
            EventLogError::QueueFull => "queue_full",
            EventLogError::WriterAlreadyStarted => "writer_already_started",
            EventLogError::WriterStopped { .. } => "writer_stopped",
            EventLogError::CursorOutdated { .. } => "cursor_outdated",
            EventLogError::TombstoneCorrupt { .. } => "tombstone_corrupt",
            EventLogError::TombstoneFileFull => "tombstone_file_full",
            EventLogError::SeqExhausted => "seq_exhausted",
        }
    }
}

impl std::fmt::Display for EventLogError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EventLogError::InvalidConfig(field) => {
                write!(f, "event log config: {field} out of bounds")
            }
            EventLogError::Io { op, path, source } => {
                write!(f, "event log {op} {}: {source}", path.display())
            }
            EventLogError::Locked(path) => write!(f, "event log {} is in use", path.display()),
            EventLogError::SegmentHeader { path, defect } => {
                write!(f, "segment {}: bad header: {defect}", path.display())
            }
            EventLogError::SegmentNameMismatch {
                path,
                header_first_seq,
            } => {
                write!(
                    f,
                    "segment {}: header says first seq {header_first_seq}",
                    path.display()
                )
            }
            EventLogError::CorruptRecord {
                segment,
                offset,
                defect,
            } => {
                write!(f, "segment {segment}: record at offset {offset}: {defect}")
            }
            EventLogError::SeqNotIncreasing { seq, last } => {
                write!(f, "seq {seq} is not above {last}")
            }
            EventLogError::PayloadTooLarge { bytes } => {
                write!(f, "record payload of {bytes} bytes is too large")
            }
            EventLogError::TooManySlices { slices } => {
                write!(f, "record gathered from {slices} slices")
            }
            EventLogError::QueueFull => f.write_str("event log queue full"),
            EventLogError::WriterAlreadyStarted => f.write_str("event log writer already started"),
            EventLogError::WriterStopped {
                detail: Some(detail),
            } => write!(f, "event log writer failed: {detail}"),
            EventLogError::WriterStopped { detail: None } => {
                f.write_str("event log writer stopped")
            }
            EventLogError::CursorOutdated { segment } => {
                write!(
                    f,
                    "records after segment {segment} were deleted during replay"
                )
            }
            EventLogError::TombstoneCorrupt { offset, defect } => {
                write!(f, "tombstone file corrupt at offset {offset}: {defect}")
            }
            EventLogError::TombstoneFileFull => f.write_str("tombstone file full"),
            EventLogError::SeqExhausted => f.write_str("no seq left below the seq bound"),
        }
    }
}

impl std::error::Error for EventLogError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            EventLogError::Io { source, .. } => Some(source),
            EventLogError::SegmentHeader { defect, .. }
            | EventLogError::CorruptRecord { defect, .. }
            | EventLogError::TombstoneCorrupt { defect, .. } => Some(defect),
            _ => None,
        }
    }
}

pub(crate) fn io_error(op: &'static str, path: &Path, source: io::Error) -> EventLogError {
    EventLogError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// fsync a directory so that a created, renamed or removed entry is durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir).and_then(|d| d.sync_all())
}

pub(crate) fn unix_micros_now() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since.as_micros()).unwrap_or(u64::MAX)
}

/// The durable seq, shared with any thread: records up to it are on stable storage and
/// may be broadcast. Cheap to clone and to read (one atomic load).
#[derive(Clone, Debug)]
pub struct DurableSeq(Arc<AtomicU64>);

impl DurableSeq {
    /// The highest durable seq, if any record is durable.
    pub fn get(&self) -> Option<Seq> {
        Seq::new(self.0.load(Ordering::Acquire))
    }
}

/// State shared by the `EventLog` handles, the writer thread and replay iterators.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) dir: PathBuf,
    pub(crate) settings: Settings,
    pub(crate) table: RwLock<SegmentTable>,
    pub(crate) durable: Arc<AtomicU64>,
    pub(crate) tombstones: tombstones::Tombstones,
    /// The writer's resume point until `start_writer` takes it; `None` afterwards.
    writer_slot: Mutex<Option<WriterStart>>,
    /// Set by the writer thread when it stops after a failure.
    pub(crate) failure: Mutex<Option<String>>,
    /// Held (with an OS file lock) for as long as any handle lives.
    _lock: File,
}

#[derive(Debug)]
struct WriterStart {
    resume: Option<recovery::ActiveResume>,
    next_seq: Seq,
}

impl Shared {
    pub(crate) fn writer_stopped(&self) -> EventLogError {
        EventLogError::WriterStopped {
            detail: lock(&self.failure).clone(),
        }
    }
}

/// A handle to an open event log. Clones share the log; the files stay locked until the
/// last handle, appender and replay are dropped.
#[derive(Clone, Debug)]
pub struct EventLog {
    shared: Arc<Shared>,
}

impl EventLog {
    /// Open (or create) the log: lock it, recover (see `RecoveryReport`), load tombstones.
    /// Blocks on the disk; the tail scan reads the whole last segment.
    pub fn open(config: &EventLogConfig) -> Result<(EventLog, RecoveryReport), EventLogError> {
        let settings = config.validate()?;
        let dir = config.data_dir.join(EVENTLOG_DIR_NAME);
        if !dir.exists() {
            std::fs::create_dir_all(&dir).map_err(|e| io_error("create_dir", &dir, e))?;
            sync_dir(&config.data_dir).map_err(|e| io_error("sync_dir", &config.data_dir, e))?;
        }
        let lock_path = dir.join(LOCK_FILE_NAME);
        let lock_file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| io_error("open_lock", &lock_path, e))?;
        lock_file.try_lock().map_err(|e| match e {
            std::fs::TryLockError::WouldBlock => EventLogError::Locked(dir.clone()),
            std::fs::TryLockError::Error(e) => io_error("lock", &lock_path, e),
        })?;
        let recovered = recovery::recover(&dir, config.seq_floor)?;
        let (tombstones, tombstone_bytes_cut) = tombstones::Tombstones::open(&dir)?;
        sync_dir(&dir).map_err(|e| io_error("sync_dir", &dir, e))?;
        let mut report = recovered.report;
        report.tombstone_bytes_cut = tombstone_bytes_cut;
        let durable = report.last_seq.map_or(0, Seq::get);
        let shared = Shared {
            dir,
            settings,
            table: RwLock::new(SegmentTable::new(recovered.segments)),
            durable: Arc::new(AtomicU64::new(durable)),
            tombstones,
            writer_slot: Mutex::new(Some(WriterStart {
                resume: recovered.resume,
                next_seq: report.next_seq,
            })),
            failure: Mutex::new(None),
            _lock: lock_file,
        };
        Ok((
            EventLog {
                shared: Arc::new(shared),
            },
            report,
        ))
    }

    /// Start the writer thread (once per log). Records appended through the returned
    /// `Appender` must have seqs of at least `RecoveryReport::next_seq`, strictly
    /// increasing. `on_durable` runs on the writer thread after each group commit.
    pub fn start_writer<R: GatherRecord>(
        &self,
        on_durable: Option<OnDurable>,
    ) -> Result<Appender<R>, EventLogError> {
        let start = lock(&self.shared.writer_slot)
            .take()
            .ok_or(EventLogError::WriterAlreadyStarted)?;
        writer::start(
            Arc::clone(&self.shared),
            start.resume,
            start.next_seq.get() - 1,
            on_durable,
        )
    }

    /// The highest durable seq (`None` while the log holds no record).
    pub fn durable_seq(&self) -> Option<Seq> {
        Seq::new(self.shared.durable.load(Ordering::Acquire))
    }

    /// A cloneable reader of the durable seq for other threads and cores.
    pub fn durable_seq_handle(&self) -> DurableSeq {
        DurableSeq(Arc::clone(&self.shared.durable))
    }

    /// The start of the replay window: the first seq of the oldest segment (`None` when
    /// the log has no segment). A cursor below it is outdated.
    pub fn oldest_seq(&self) -> Option<Seq> {
        read(&self.shared.table).oldest().map(|s| s.first_seq)
    }

    /// Durable records with seq ≥ `cursor` (0 or 1: from the oldest), across segments,
    /// skipping taken-down accounts. Reads block on the disk: iterate off data-plane cores.
    pub fn read_from(&self, cursor: u64) -> Replay {
        Replay::new(Arc::clone(&self.shared), cursor)
    }

    /// Delete whole sealed segments, oldest first, that fell out of the replay window
    /// (sealed before `now − replay_window`) or exceed `bytes_max`. Never the active one.
    pub fn enforce_retention(&self, now: SystemTime) -> Result<RetentionReport, EventLogError> {
        retention::enforce(&self.shared, now)
    }

    /// Record a takedown of `account` effective at `seq`: replay hides the account's
    /// records with seq < `seq`. Durable (fdatasync) when it returns.
    pub fn take_down(&self, account: AccountKey, seq: Seq) -> Result<(), EventLogError> {
        self.shared.tombstones.append(TombstoneEntry {
            account_key: account,
            seq,
            reversed: false,
        })
    }

    /// Reverse the account's takedown: replay shows its records again.
    pub fn reverse_takedown(&self, account: AccountKey, seq: Seq) -> Result<(), EventLogError> {
        self.shared.tombstones.append(TombstoneEntry {
            account_key: account,
            seq,
            reversed: true,
        })
    }

    /// The seq of the account's active takedown, if it is taken down.
    pub fn takedown_of(&self, account: AccountKey) -> Option<Seq> {
        self.shared.tombstones.takedown_of(account)
    }

    /// Segment files currently in the log.
    pub fn segment_count(&self) -> usize {
        read(&self.shared.table).all().len()
    }

    /// Readable bytes across all segments (what `bytes_max` is compared with).
    pub fn total_bytes(&self) -> u64 {
        read(&self.shared.table).total_bytes()
    }

    /// The writer's failure, if it stopped after one.
    pub fn writer_failure(&self) -> Option<String> {
        lock(&self.shared.failure).clone()
    }

    /// The log's directory (`<data_dir>/eventlog`).
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }
}
