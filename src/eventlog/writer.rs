//! The writer: one dedicated OS thread that appends records and publishes the durable seq.
//!
//! Owns: the bounded queue from the sequencer (`std::sync::mpsc::sync_channel` of
//! `EVENTLOG_QUEUE_RECORDS_MAX` records: `Appender::append` **blocks** when it is full,
//! `Appender::try_append` hands the record back instead), group commit (take records
//! until `fsync_batch_records` or until `fsync_interval` has passed since the first one),
//! zero-copy gathered writes (each record's iovecs are a 32-byte header built here plus the
//! caller's own slices; the caller's record object is held until its group is durable,
//! then dropped on this thread), segment roll at `segment_bytes`, fdatasync, and
//! publishing the durable seq (an `AtomicU64`, then the optional wake-up callback).
//! Backends for the gathered write: io_uring `IORING_OP_WRITEV` (`uring.rs`) or, where
//! io_uring is unavailable (ENOSYS/EPERM in sandboxes, `kernel.io_uring_disabled`, or
//! built without the `server` feature), a positioned `writev` loop, with a logged warning.
//! Either way the group commit ends with one direct `fdatasync` (see uring.rs for why).
//! Must not: run on a data-plane core (it blocks on the disk; it is a plain thread, not a
//! glommio executor), copy payload bytes, or publish a seq before its fdatasync returned.
//! Always checks: seq strictly increasing and payload/slice bounds (at append, so the
//! sequencer gets the error synchronously), every write and sync result. After a failed
//! write or fdatasync the writer stops for good: the page cache state is unknown after a
//! failed fdatasync, so retrying could report lost data as durable. Recovery at the next
//! open re-verifies the tail. Does not check: payload contents, or that account keys and
//! kinds mean anything (the caller's business).

use super::format::{
    FILE_HEADER_LEN, RECORD_HEADER_LEN, RecordHeader, SegmentHeader, segment_file_name,
};
use super::recovery::{ActiveResume, TEMP_SUFFIX};
use super::segments::{IndexState, SegmentMeta, lock, write};
use super::{
    AccountKey, EventLogError, IoBackend, RecordKind, Seq, Shared, sync_dir, unix_micros_now,
};
use crate::config::limits::{
    EVENTLOG_QUEUE_RECORDS_MAX, EVENTLOG_RECORD_PAYLOAD_BYTES_MAX, EVENTLOG_RECORD_SLICES_MAX,
    EVENTLOG_WRITEV_SLICES_MAX,
};
use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{
    Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError, sync_channel,
};
use std::thread::JoinHandle;
use std::time::Instant;

/// A record the writer can append without copying it: its bytes are the concatenation of
/// `slices()`, which must stay the same while the writer holds the value. The writer owns
/// the value from `append` until the record is durable (or the writer failed), so the
/// memory the slices point at cannot be freed or reused under the write: a frame in a
/// shared-memory buffer stays pinned by whatever reference count this value holds.
pub trait GatherRecord: Send + 'static {
    /// The record's relay seq (strictly greater than the previous record's).
    fn seq(&self) -> Seq;
    /// The account the record belongs to (what takedowns match).
    fn account_key(&self) -> AccountKey;
    /// A tag stored with the record (e.g. the frame type); opaque to the log.
    fn kind(&self) -> RecordKind;
    /// The payload, in order, as at most `EVENTLOG_RECORD_SLICES_MAX` slices (e.g. the
    /// frame's prefix, the new seq's bytes, the suffix).
    fn slices(&self) -> impl Iterator<Item = &[u8]>;
}

/// A callback run on the writer thread after each group commit with the new durable seq.
/// Keep it short: wake the fan-out (an eventfd, an unpark), do not do work in it.
pub struct OnDurable(Box<dyn Fn(Seq) + Send>);

impl OnDurable {
    /// Wrap a callback.
    pub fn new(callback: impl Fn(Seq) + Send + 'static) -> Self {
        OnDurable(Box::new(callback))
    }
}

impl std::fmt::Debug for OnDurable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OnDurable")
    }
}

/// A rejected append; the record is handed back untouched.
pub struct AppendError<R> {
    /// Why.
    pub error: EventLogError,
    /// The record, never written.
    pub record: R,
}

impl<R> std::fmt::Debug for AppendError<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppendError")
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl<R> std::fmt::Display for AppendError<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl<R> std::error::Error for AppendError<R> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// The sequencer's handle to the writer thread. There is one per log; dropping it (or
/// `close`) lets the writer finish every queued record and waits for it.
#[derive(Debug)]
pub struct Appender<R: GatherRecord> {
    sender: Option<SyncSender<R>>,
    last_seq: u64,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    backend: IoBackend,
}

/// Why a write failed, and whether the kernel may still be using the batch's memory.
#[derive(Debug)]
pub(crate) struct WriteFailure {
    pub(crate) op: &'static str,
    pub(crate) error: io::Error,
    pub(crate) in_flight_unknown: bool,
}

impl<R: GatherRecord> Appender<R> {
    /// Queue a record. Blocks while the queue is full (backpressure: the sequencer waits
    /// for the disk). The record becomes durable later; watch the durable seq.
    pub fn append(&mut self, record: R) -> Result<(), AppendError<R>> {
        self.queue(record, |sender, record| {
            sender
                .send(record)
                .map_err(|e| TrySendError::Disconnected(e.0))
        })
    }

    /// Queue a record without blocking; a full queue hands it back with `QueueFull`.
    pub fn try_append(&mut self, record: R) -> Result<(), AppendError<R>> {
        self.queue(record, |sender, record| sender.try_send(record))
    }

    /// Check the record's seq, hand it to `send`, and advance `last_seq` only once the
    /// writer has it; every failure gives the record back.
    fn queue(
        &mut self,
        record: R,
        send: impl FnOnce(&SyncSender<R>, R) -> Result<(), TrySendError<R>>,
    ) -> Result<(), AppendError<R>> {
        let seq = match self.check(&record) {
            Ok(seq) => seq,
            Err(error) => return Err(AppendError { error, record }),
        };
        let Some(sender) = &self.sender else {
            return Err(AppendError {
                error: self.shared.writer_stopped(),
                record,
            });
        };
        match send(sender, record) {
            Ok(()) => {
                self.last_seq = seq;
                Ok(())
            }
            Err(TrySendError::Full(record)) => Err(AppendError {
                error: EventLogError::QueueFull,
                record,
            }),
            Err(TrySendError::Disconnected(record)) => Err(AppendError {
                error: self.shared.writer_stopped(),
                record,
            }),
        }
    }

    fn check(&self, record: &R) -> Result<u64, EventLogError> {
        let seq = record.seq().get();
        if seq <= self.last_seq {
            return Err(EventLogError::SeqNotIncreasing {
                seq,
                last: self.last_seq,
            });
        }
        let (mut slices, mut bytes) = (0usize, 0u64);
        for slice in record.slices() {
            slices += 1;
            bytes += slice.len() as u64;
        }
        if slices > EVENTLOG_RECORD_SLICES_MAX {
            return Err(EventLogError::TooManySlices { slices });
        }
        if bytes > u64::from(EVENTLOG_RECORD_PAYLOAD_BYTES_MAX) {
            return Err(EventLogError::PayloadTooLarge { bytes });
        }
        Ok(seq)
    }

    /// The seq the next appended record must exceed.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Which write path the writer thread uses.
    pub fn backend(&self) -> IoBackend {
        self.backend
    }

    /// Stop accepting records, wait until every queued record is durable, and report
    /// whether the writer failed.
    pub fn close(mut self) -> Result<(), EventLogError> {
        self.shutdown();
        match super::segments::lock(&self.shared.failure).as_ref() {
            Some(_) => Err(self.shared.writer_stopped()),
            None => Ok(()),
        }
    }

    fn shutdown(&mut self) {
        self.sender = None;
        if let Some(thread) = self.thread.take() {
            // The writer does not panic; a join error would only repeat a recorded failure.
            let _ = thread.join();
        }
    }
}

impl<R: GatherRecord> Drop for Appender<R> {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Start the writer thread for a log (called once, by `EventLog::start_writer`).
pub(crate) fn start<R: GatherRecord>(
    shared: Arc<Shared>,
    resume: Option<ActiveResume>,
    last_seq: u64,
    on_durable: Option<OnDurable>,
) -> Result<Appender<R>, EventLogError> {
    let (backend, io) = select_backend(shared.settings.io);
    let (sender, receiver) = sync_channel(EVENTLOG_QUEUE_RECORDS_MAX);
    let active = resume.map(|r| ActiveSegment {
        meta: r.meta,
        file: r.file,
        end: r.end,
        pending_index: Vec::new(),
    });
    let mut writer = Writer {
        shared: Arc::clone(&shared),
        receiver,
        io,
        active,
        on_durable,
        batch: Vec::new(),
        headers: Vec::new(),
    };
    let thread = std::thread::Builder::new()
        .name("relay-eventlog-writer".into())
        .spawn(move || writer.run())
        .map_err(|e| super::io_error("spawn_writer", &shared.dir, e))?;
    Ok(Appender {
        sender: Some(sender),
        last_seq,
        shared,
        thread: Some(thread),
        backend,
    })
}

enum Io {
    #[cfg(feature = "server")]
    Uring(Box<super::uring::Ring>),
    Plain,
}

fn select_backend(choice: super::IoBackendChoice) -> (IoBackend, Io) {
    if choice == super::IoBackendChoice::FallbackOnly {
        return (IoBackend::Fallback, Io::Plain);
    }
    #[cfg(feature = "server")]
    match super::uring::Ring::new() {
        Ok(ring) => return (IoBackend::Uring, Io::Uring(Box::new(ring))),
        Err(e) => log::warn!(
            "eventlog: io_uring unavailable ({e}); falling back to writev + fdatasync on the writer thread"
        ),
    }
    #[cfg(not(feature = "server"))]
    log::warn!("eventlog: built without io_uring; using writev + fdatasync on the writer thread");
    metrics::counter!("relay_eventlog_io_fallback_total").increment(1);
    (IoBackend::Fallback, Io::Plain)
}

impl Io {
    /// Write the slices at `offset`; with `sync`, fdatasync afterwards (always a direct
    /// system call, see uring.rs for why).
    fn write(
        &mut self,
        file: &File,
        offset: u64,
        slices: &[IoSlice<'_>],
        sync: bool,
    ) -> Result<(), WriteFailure> {
        match self {
            #[cfg(feature = "server")]
            Io::Uring(ring) => ring.write(file, offset, slices)?,
            Io::Plain => plain_write(file, offset, slices)?,
        }
        if sync {
            file.sync_data().map_err(|error| WriteFailure {
                op: "fdatasync",
                error,
                in_flight_unknown: false,
            })?;
        }
        Ok(())
    }
}

/// The fallback: seek, then `writev` until everything is written. The
/// writer thread is the only user of this descriptor, so seek + writev is as positioned as
/// `pwritev` (which std does not expose without `unsafe`).
fn plain_write(file: &File, offset: u64, slices: &[IoSlice<'_>]) -> Result<(), WriteFailure> {
    let fail = |op, error| WriteFailure {
        op,
        error,
        in_flight_unknown: false,
    };
    let mut handle = file;
    handle
        .seek(SeekFrom::Start(offset))
        .map_err(|e| fail("seek", e))?;
    for chunk in slices.chunks(EVENTLOG_WRITEV_SLICES_MAX) {
        let mut owned = chunk.to_vec();
        let mut rest: &mut [IoSlice<'_>] = &mut owned;
        while !rest.is_empty() {
            match handle.write_vectored(rest) {
                Ok(0) => return Err(fail("writev", io::ErrorKind::WriteZero.into())),
                // Cannot panic: writev never reports more bytes than the slices hold.
                Ok(n) => IoSlice::advance_slices(&mut rest, n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(fail("writev", e)),
            }
        }
    }
    Ok(())
}

struct ActiveSegment {
    meta: Arc<SegmentMeta>,
    file: File,
    /// End of what was written (durable or not).
    end: u64,
    /// Index samples of records written but not yet durable: (seq, offset).
    pending_index: Vec<(u64, u64)>,
}

struct Writer<R: GatherRecord> {
    shared: Arc<Shared>,
    receiver: Receiver<R>,
    io: Io,
    active: Option<ActiveSegment>,
    on_durable: Option<OnDurable>,
    batch: Vec<R>,
    headers: Vec<[u8; RECORD_HEADER_LEN]>,
}

impl<R: GatherRecord> Writer<R> {
    fn run(&mut self) {
        while self.collect() {
            if let Err(failure) = self.commit() {
                self.fail(failure);
                return;
            }
        }
    }

    /// Wait for a first record, then take more until the batch is full or the interval
    /// since the first one has passed. False when every sender is gone and nothing is left.
    fn collect(&mut self) -> bool {
        let Ok(first) = self.receiver.recv() else {
            return false;
        };
        self.batch.push(first);
        let deadline = Instant::now() + self.shared.settings.fsync_interval;
        while self.batch.len() < self.shared.settings.fsync_batch_records {
            match self.receiver.try_recv() {
                Ok(record) => {
                    self.batch.push(record);
                    continue;
                }
                Err(TryRecvError::Disconnected) => break,
                Err(TryRecvError::Empty) => {}
            }
            let Some(wait) = deadline
                .checked_duration_since(Instant::now())
                .filter(|w| !w.is_zero())
            else {
                break;
            };
            match self.receiver.recv_timeout(wait) {
                Ok(record) => self.batch.push(record),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
            }
        }
        true
    }

    /// Write the batch (rolling segments as needed), fdatasync, publish, release records.
    fn commit(&mut self) -> Result<(), WriteFailure> {
        self.build_headers();
        let batch = std::mem::take(&mut self.batch);
        let headers = std::mem::take(&mut self.headers);
        let outcome = self.write_batch(&batch, &headers);
        match outcome {
            Ok(()) => {
                self.publish(&batch, &headers);
                // Records are released (dropped) only now that they are durable.
                self.batch = batch;
                self.batch.clear();
                self.headers = headers;
                Ok(())
            }
            Err(failure) => {
                if failure.in_flight_unknown {
                    // The kernel may still read this memory: never free it.
                    std::mem::forget(batch);
                    std::mem::forget(headers);
                }
                Err(failure)
            }
        }
    }

    fn build_headers(&mut self) {
        self.headers.clear();
        for record in &self.batch {
            let len: usize = record.slices().map(<[u8]>::len).sum();
            // Fits: `Appender::check` bounded the total by a u32 limit.
            let len = u32::try_from(len).unwrap_or(u32::MAX);
            let header = RecordHeader::encode(
                record.seq(),
                record.account_key(),
                record.kind(),
                len,
                record.slices(),
            );
            self.headers.push(header);
        }
    }

    fn write_batch(
        &mut self,
        batch: &[R],
        headers: &[[u8; RECORD_HEADER_LEN]],
    ) -> Result<(), WriteFailure> {
        let mut start = 0;
        while start < batch.len() {
            let count = self.prepare_run(batch.get(start..).unwrap_or_default())?;
            let end = start + count;
            let records = batch.get(start..end).unwrap_or_default();
            let run_headers = headers.get(start..end).unwrap_or_default();
            let last_run = end == batch.len();
            self.write_run(records, run_headers, last_run)?;
            start = end;
        }
        Ok(())
    }

    /// Make sure a segment can take the next record (creating or rolling one) and return
    /// how many of `records` fit in it (at least one).
    fn prepare_run(&mut self, records: &[R]) -> Result<usize, WriteFailure> {
        let Some(first) = records.first() else {
            return Ok(0);
        };
        let record_len =
            |r: &R| (RECORD_HEADER_LEN + r.slices().map(<[u8]>::len).sum::<usize>()) as u64;
        let limit = self.shared.settings.segment_bytes;
        let needs_new = match &self.active {
            None => true,
            Some(active) => {
                active.end > FILE_HEADER_LEN as u64 && active.end + record_len(first) > limit
            }
        };
        if needs_new {
            self.roll(first.seq())?;
        }
        let mut end = self
            .active
            .as_ref()
            .map_or(FILE_HEADER_LEN as u64, |a| a.end);
        let mut count = 0;
        for record in records {
            let len = record_len(record);
            if count > 0 && end + len > limit {
                break;
            }
            end += len;
            count += 1;
        }
        Ok(count)
    }

    fn write_run(
        &mut self,
        records: &[R],
        headers: &[[u8; RECORD_HEADER_LEN]],
        sync: bool,
    ) -> Result<(), WriteFailure> {
        let Some(active) = self.active.as_mut() else {
            return Err(WriteFailure {
                op: "write",
                error: io::Error::other("no active segment"),
                in_flight_unknown: false,
            });
        };
        let mut slices = Vec::with_capacity(records.len() * 4);
        let mut offset = active.end;
        for (record, header) in records.iter().zip(headers) {
            active.pending_index.push((record.seq().get(), offset));
            slices.push(IoSlice::new(header));
            offset += RECORD_HEADER_LEN as u64;
            for slice in record.slices().filter(|s| !s.is_empty()) {
                slices.push(IoSlice::new(slice));
                offset += slice.len() as u64;
            }
        }
        let result = self.io.write(&active.file, active.end, &slices, sync);
        if result.as_ref().is_err_and(|f| f.in_flight_unknown) {
            // The iovec array may still be read by the kernel.
            std::mem::forget(slices);
        }
        result?;
        active.end = offset;
        metrics::counter!("relay_eventlog_records_written_total").increment(records.len() as u64);
        Ok(())
    }

    /// Seal the active segment (sync it, publish its final length and index) and create a
    /// new one whose name and header carry `first_seq`.
    fn roll(&mut self, first_seq: Seq) -> Result<(), WriteFailure> {
        if let Some(mut old) = self.active.take() {
            old.file.sync_data().map_err(|error| WriteFailure {
                op: "fdatasync",
                error,
                in_flight_unknown: false,
            })?;
            finalize(&mut old);
        }
        let active = create_segment(&self.shared, first_seq).map_err(|error| WriteFailure {
            op: "create_segment",
            error,
            in_flight_unknown: false,
        })?;
        self.active = Some(active);
        metrics::counter!("relay_eventlog_segments_created_total").increment(1);
        Ok(())
    }

    fn publish(&mut self, batch: &[R], headers: &[[u8; RECORD_HEADER_LEN]]) {
        if let Some(active) = self.active.as_mut() {
            finalize(active);
        }
        let Some(last) = batch.last() else { return };
        self.shared
            .durable
            .store(last.seq().get(), Ordering::Release);
        let bytes: u64 = headers.len() as u64 * RECORD_HEADER_LEN as u64
            + batch
                .iter()
                .flat_map(|r| r.slices().map(|s| s.len() as u64))
                .sum::<u64>();
        metrics::counter!("relay_eventlog_bytes_written_total").increment(bytes);
        metrics::counter!("relay_eventlog_group_commits_total").increment(1);
        if let Some(callback) = &self.on_durable {
            (callback.0)(last.seq());
        }
    }

    fn fail(&mut self, failure: WriteFailure) {
        let detail = format!("{}: {}", failure.op, failure.error);
        *lock(&self.shared.failure) = Some(detail);
        metrics::counter!("relay_eventlog_writer_failures_total").increment(1);
        log::error!("eventlog writer stopped: {}: {}", failure.op, failure.error);
    }
}

/// Make what was written to `active` visible to readers (index first, then length; the
/// durable seq is stored after this).
fn finalize(active: &mut ActiveSegment) {
    let mut index = lock(&active.meta.index);
    for (seq, offset) in active.pending_index.drain(..) {
        index.sparse.observe(seq, offset);
    }
    drop(index);
    active.meta.set_readable_len(active.end);
}

/// Create a segment atomically: header into a temp file, fsync, rename, fsync the
/// directory. A crash leaves either no segment or a complete header.
fn create_segment(shared: &Shared, first_seq: Seq) -> io::Result<ActiveSegment> {
    let name = segment_file_name(first_seq);
    let path = shared.dir.join(&name);
    let temp = shared.dir.join(format!("{name}{TEMP_SUFFIX}"));
    let created_unix_micros = unix_micros_now();
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&temp)?;
    file.write_all_at(
        &SegmentHeader {
            first_seq,
            created_unix_micros,
        }
        .encode(),
        0,
    )?;
    file.sync_all()?;
    std::fs::rename(&temp, &path)?;
    sync_dir(&shared.dir)?;
    let index = IndexState {
        complete: true,
        ..IndexState::default()
    };
    let mut table = write(&shared.table);
    let ordinal = table.next_ordinal();
    let meta = Arc::new(SegmentMeta::new(
        ordinal,
        first_seq,
        path,
        created_unix_micros,
        FILE_HEADER_LEN as u64,
        index,
    ));
    table.push(Arc::clone(&meta));
    Ok(ActiveSegment {
        meta,
        file,
        end: FILE_HEADER_LEN as u64,
        pending_index: Vec::new(),
    })
}
