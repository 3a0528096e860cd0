//! Event log: append/replay round trips with gathered slices, seq rules, segment roll,
//! cursors, recovery from torn and corrupt tails, a kill -9 crash in a child process,
//! retention, takedown tombstones, and an independent read-back of the bytes on disk
//! against docs/specs/eventlog-format.md.

use proptest::prelude::*;
use relay::eventlog::{
    AccountKey, EventLog, EventLogConfig, EventLogError, FormatDefect, GatherRecord, IoBackend,
    IoBackendChoice, OnDurable, RecordHeader, RecordKind, ReplayRecord, SegmentHeader, Seq, crc32c,
    segment_file_name,
};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

// ---- helpers ----

/// A unique directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let unique = format!(
            "relay-eventlog-{name}-{}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        );
        let path = std::env::temp_dir().join(unique);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
    fn log_dir(&self) -> PathBuf {
        self.0.join("eventlog")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A frame-like record: a shared prefix buffer, the seq's 8 bytes, a shared suffix buffer
/// (the sequencer's prefix / seq / suffix gather). Nothing is copied into the log.
struct Frame {
    seq: Seq,
    account: AccountKey,
    prefix: Arc<[u8]>,
    seq_bytes: [u8; 8],
    suffix: Arc<[u8]>,
}

impl GatherRecord for Frame {
    fn seq(&self) -> Seq {
        self.seq
    }
    fn account_key(&self) -> AccountKey {
        self.account
    }
    fn kind(&self) -> RecordKind {
        RecordKind::new((self.seq.get() % 7) as u16)
    }
    fn slices(&self) -> impl Iterator<Item = &[u8]> {
        [&self.prefix[..], &self.seq_bytes[..], &self.suffix[..]].into_iter()
    }
}

fn seq(v: u64) -> Seq {
    Seq::new(v).unwrap()
}

/// Deterministic payload size for a seq, within `max`.
fn size_for(seq: u64, max: usize) -> usize {
    ((seq.wrapping_mul(2_654_435_761) >> 7) as usize) % max
}

fn frame(s: u64, account: u64, body_max: usize) -> Frame {
    let len = size_for(s, body_max);
    let prefix: Vec<u8> = (0..len / 2).map(|i| (i as u64 ^ s) as u8).collect();
    let suffix: Vec<u8> = (0..len - len / 2)
        .map(|i| (i as u64 * 31 + s) as u8)
        .collect();
    Frame {
        seq: seq(s),
        account: AccountKey::new(account),
        prefix: prefix.into(),
        seq_bytes: s.to_be_bytes(),
        suffix: suffix.into(),
    }
}

fn expected_payload(s: u64, body_max: usize) -> Vec<u8> {
    let f = frame(s, 0, body_max);
    [&f.prefix[..], &f.seq_bytes[..], &f.suffix[..]].concat()
}

fn config(dir: &TempDir) -> EventLogConfig {
    let mut config = EventLogConfig::new(&dir.0);
    config.fsync_interval = Duration::from_micros(200);
    config
}

fn open(config: &EventLogConfig) -> (EventLog, relay::eventlog::RecoveryReport) {
    EventLog::open(config).unwrap()
}

fn wait_durable(log: &EventLog, target: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while log.durable_seq().map_or(0, Seq::get) < target {
        assert!(
            Instant::now() < deadline,
            "seq {target} not durable in time: {:?}",
            log.writer_failure()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Append the given seqs (account = seq % accounts) and wait until the last is durable.
fn append_seqs(
    log: &EventLog,
    seqs: impl IntoIterator<Item = u64>,
    accounts: u64,
    body_max: usize,
) {
    let mut appender = log.start_writer::<Frame>(None).unwrap();
    let mut last = 0;
    for s in seqs {
        appender.append(frame(s, s % accounts, body_max)).unwrap();
        last = s;
    }
    wait_durable(log, last);
    appender.close().unwrap();
}

fn replay(log: &EventLog, cursor: u64) -> Vec<ReplayRecord> {
    log.read_from(cursor).map(|r| r.unwrap()).collect()
}

fn replay_seqs(log: &EventLog, cursor: u64) -> Vec<u64> {
    replay(log, cursor).iter().map(|r| r.seq.get()).collect()
}

fn segment_files(dir: &TempDir) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.log_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    files.sort();
    files
}

/// Parse a segment file independently of the library's decoder, following the spec's
/// byte layout: (first_seq, created, [(offset, seq, account, kind, payload)]).
#[allow(clippy::type_complexity)]
fn parse_segment_by_spec(bytes: &[u8]) -> (u64, u64, Vec<(usize, u64, u64, u16, Vec<u8>)>) {
    let u16_at = |at: usize| u16::from_le_bytes(bytes[at..at + 2].try_into().unwrap());
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
    assert_eq!(&bytes[0..8], b"RLYEVSEG");
    assert_eq!(u16_at(8), 1, "format version");
    assert_eq!(u16_at(10), 64, "header length");
    assert_eq!(u32_at(12), 0, "flags");
    assert!(bytes[32..60].iter().all(|&b| b == 0), "reserved");
    assert_eq!(u32_at(60), crc32c(&bytes[0..60]), "header crc");
    let mut records = Vec::new();
    let mut at = 64;
    while at < bytes.len() {
        assert_eq!(&bytes[at..at + 4], b"EVR1");
        let len = u32_at(at + 4) as usize;
        let payload = bytes[at + 32..at + 32 + len].to_vec();
        assert_eq!(u16_at(at + 24), 0, "record flags");
        let mut checked = bytes[at..at + 28].to_vec();
        checked.extend_from_slice(&payload);
        assert_eq!(u32_at(at + 28), crc32c(&checked), "record crc");
        records.push((
            at,
            u64_at(at + 8),
            u64_at(at + 16),
            u16_at(at + 26),
            payload,
        ));
        at += 32 + len;
    }
    assert_eq!(at, bytes.len());
    (u64_at(16), u64_at(24), records)
}

// ---- round trip, seq rules ----

fn round_trip(io: IoBackendChoice) -> IoBackend {
    let dir = TempDir::new("round-trip");
    let mut config = config(&dir);
    config.io = io;
    let (log, report) = open(&config);
    assert_eq!(report.next_seq, Seq::FIRST);
    let durable_calls = Arc::new(AtomicU64::new(0));
    let seen = Arc::clone(&durable_calls);
    let on_durable = OnDurable::new(move |s: Seq| seen.store(s.get(), Ordering::Release));
    let mut appender = log.start_writer::<Frame>(Some(on_durable)).unwrap();
    let backend = appender.backend();
    for s in 1..=300 {
        appender.append(frame(s, s % 5, 3000)).unwrap();
    }
    wait_durable(&log, 300);
    // The callback runs right after the durable seq is stored.
    let deadline = Instant::now() + Duration::from_secs(10);
    while durable_calls.load(Ordering::Acquire) < 300 {
        assert!(Instant::now() < deadline, "callback never saw seq 300");
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(durable_calls.load(Ordering::Acquire), 300);
    let records = replay(&log, 0);
    assert_eq!(records.len(), 300);
    for (i, r) in records.iter().enumerate() {
        let s = i as u64 + 1;
        assert_eq!(r.seq.get(), s);
        assert_eq!(r.account_key, AccountKey::new(s % 5));
        assert_eq!(r.kind, RecordKind::new((s % 7) as u16));
        assert_eq!(r.payload, expected_payload(s, 3000), "payload of seq {s}");
    }
    appender.close().unwrap();
    // Read the bytes back from disk independently of the library (build-notes: a DMA
    // pitfall on this disk once returned errors on read-back; check what was written).
    let files = segment_files(&dir);
    assert_eq!(files.len(), 1);
    assert_eq!(
        files[0].file_name().unwrap().to_str().unwrap(),
        "00000000000000000001.seg"
    );
    let bytes = std::fs::read(&files[0]).unwrap();
    let (first_seq, created, on_disk) = parse_segment_by_spec(&bytes);
    assert_eq!(first_seq, 1);
    assert!(created > 1_600_000_000_000_000, "created in microseconds");
    assert_eq!(on_disk.len(), 300);
    for (i, (_, s, account, kind, payload)) in on_disk.iter().enumerate() {
        assert_eq!(*s, i as u64 + 1);
        assert_eq!(*account, s % 5);
        assert_eq!(*kind, (s % 7) as u16);
        assert_eq!(payload, &expected_payload(*s, 3000));
    }
    backend
}

#[test]
fn append_replay_round_trip_with_gathered_slices_io_uring_or_fallback() {
    let backend = round_trip(IoBackendChoice::Auto);
    println!("default backend on this machine: {backend:?}");
}

#[test]
fn append_replay_round_trip_with_gathered_slices_fallback() {
    assert_eq!(
        round_trip(IoBackendChoice::FallbackOnly),
        IoBackend::Fallback
    );
}

#[test]
fn empty_log_starts_at_seq_one() {
    let dir = TempDir::new("empty");
    let (log, report) = open(&config(&dir));
    assert_eq!(report.next_seq, seq(1));
    assert_eq!(report.last_seq, None);
    assert_eq!(report.segments, 0);
    assert_eq!(log.durable_seq(), None);
    assert_eq!(log.oldest_seq(), None);
    assert!(replay(&log, 0).is_empty());
    drop(log);
    // Reopening an empty log (writer started, nothing appended) is still empty.
    let (log, report) = open(&config(&dir));
    let appender = log.start_writer::<Frame>(None).unwrap();
    appender.close().unwrap();
    assert_eq!(report.next_seq, seq(1));
    assert_eq!(log.segment_count(), 0);
}

#[test]
fn seq_floor_raises_the_first_seq() {
    let dir = TempDir::new("floor");
    let mut config = config(&dir);
    config.seq_floor = 1_000_000;
    let (log, report) = open(&config);
    assert_eq!(report.next_seq, seq(1_000_000));
    let mut appender = log.start_writer::<Frame>(None).unwrap();
    let rejected = appender.append(frame(999_999, 0, 10)).unwrap_err();
    assert!(matches!(
        rejected.error,
        EventLogError::SeqNotIncreasing {
            seq: 999_999,
            last: 999_999
        }
    ));
    appender.append(frame(1_000_000, 0, 10)).unwrap();
    wait_durable(&log, 1_000_000);
    appender.close().unwrap();
    assert_eq!(log.oldest_seq(), Some(seq(1_000_000)));
}

#[test]
fn seq_must_strictly_increase() {
    let dir = TempDir::new("increase");
    let (log, _) = open(&config(&dir));
    let mut appender = log.start_writer::<Frame>(None).unwrap();
    appender.append(frame(1, 0, 10)).unwrap();
    let again = appender.append(frame(1, 0, 10)).unwrap_err();
    assert!(matches!(
        again.error,
        EventLogError::SeqNotIncreasing { seq: 1, last: 1 }
    ));
    assert_eq!(again.error.reason(), "seq_not_increasing");
    assert_eq!(again.record.seq.get(), 1, "the record is handed back");
    appender.append(frame(3, 0, 10)).unwrap(); // gaps are allowed
    let back = appender.try_append(frame(2, 0, 10)).unwrap_err();
    assert!(matches!(
        back.error,
        EventLogError::SeqNotIncreasing { seq: 2, last: 3 }
    ));
    wait_durable(&log, 3);
    appender.close().unwrap();
    assert_eq!(replay_seqs(&log, 0), vec![1, 3]);
    assert!(matches!(
        log.start_writer::<Frame>(None),
        Err(EventLogError::WriterAlreadyStarted)
    ));
    drop(log);
    let (log, report) = open(&config(&dir));
    assert_eq!(report.last_seq, Some(seq(3)));
    assert_eq!(report.next_seq, seq(4));
    assert_eq!(report.bytes_cut, 0);
    let mut appender = log.start_writer::<Frame>(None).unwrap();
    assert!(appender.append(frame(3, 0, 10)).is_err());
    appender.append(frame(4, 0, 10)).unwrap();
    wait_durable(&log, 4);
    appender.close().unwrap();
    assert_eq!(replay_seqs(&log, 0), vec![1, 3, 4]);
}

/// A record with an arbitrary number of slices and lengths, for the bound checks.
struct Slices(Seq, Vec<Vec<u8>>);

impl GatherRecord for Slices {
    fn seq(&self) -> Seq {
        self.0
    }
    fn account_key(&self) -> AccountKey {
        AccountKey::new(0)
    }
    fn kind(&self) -> RecordKind {
        RecordKind::new(0)
    }
    fn slices(&self) -> impl Iterator<Item = &[u8]> {
        self.1.iter().map(Vec::as_slice)
    }
}

#[test]
fn record_bounds_are_enforced_at_append() {
    use relay::config::limits::{EVENTLOG_RECORD_PAYLOAD_BYTES_MAX, EVENTLOG_RECORD_SLICES_MAX};
    let dir = TempDir::new("bounds");
    let (log, _) = open(&config(&dir));
    let mut appender = log.start_writer::<Slices>(None).unwrap();
    let many = Slices(seq(1), vec![vec![1u8]; EVENTLOG_RECORD_SLICES_MAX + 1]);
    let err = appender.append(many).unwrap_err().error;
    assert!(
        matches!(err, EventLogError::TooManySlices { slices } if slices == EVENTLOG_RECORD_SLICES_MAX + 1)
    );
    let big = Slices(
        seq(1),
        vec![
            vec![0u8; EVENTLOG_RECORD_PAYLOAD_BYTES_MAX as usize],
            vec![0u8],
        ],
    );
    assert_eq!(
        appender.append(big).unwrap_err().error.reason(),
        "payload_too_large"
    );
    // At the bounds: accepted, including empty slices and an empty payload.
    appender
        .append(Slices(seq(1), vec![vec![7u8]; EVENTLOG_RECORD_SLICES_MAX]))
        .unwrap();
    appender
        .append(Slices(seq(2), vec![Vec::new(), Vec::new()]))
        .unwrap();
    appender
        .append(Slices(
            seq(3),
            vec![vec![9u8; EVENTLOG_RECORD_PAYLOAD_BYTES_MAX as usize]],
        ))
        .unwrap();
    wait_durable(&log, 3);
    appender.close().unwrap();
    let records = replay(&log, 0);
    assert_eq!(records[0].payload, vec![7u8; EVENTLOG_RECORD_SLICES_MAX]);
    assert!(records[1].payload.is_empty());
    assert_eq!(
        records[2].payload.len(),
        EVENTLOG_RECORD_PAYLOAD_BYTES_MAX as usize
    );
}

#[test]
fn invalid_config_and_second_open_are_refused() {
    let dir = TempDir::new("config");
    let mut bad = config(&dir);
    bad.segment_bytes = 10;
    assert!(matches!(
        EventLog::open(&bad),
        Err(EventLogError::InvalidConfig("segment_bytes"))
    ));
    let mut bad = config(&dir);
    bad.fsync_batch_records = 0;
    assert!(matches!(
        EventLog::open(&bad),
        Err(EventLogError::InvalidConfig("fsync_batch_records"))
    ));
    let mut bad = config(&dir);
    bad.fsync_interval = Duration::from_secs(1);
    assert!(matches!(
        EventLog::open(&bad),
        Err(EventLogError::InvalidConfig("fsync_interval"))
    ));
    let (log, _) = open(&config(&dir));
    let second = EventLog::open(&config(&dir)).unwrap_err();
    assert_eq!(second.reason(), "locked");
    drop(log);
    assert!(
        EventLog::open(&config(&dir)).is_ok(),
        "the lock goes with the last handle"
    );
}

// ---- segments, cursors ----

fn small_segments(dir: &TempDir) -> EventLogConfig {
    let mut config = config(dir);
    config.segment_bytes = 16 * 1024;
    config.fsync_batch_records = 7; // batches straddle segment boundaries
    config
}

#[test]
fn segments_roll_at_the_size_bound_and_replay_crosses_them() {
    let dir = TempDir::new("roll");
    let config = small_segments(&dir);
    let (log, _) = open(&config);
    append_seqs(&log, 1..=400, 3, 1500);
    let files = segment_files(&dir);
    assert!(files.len() > 10, "only {} segments", files.len());
    assert_eq!(log.segment_count(), files.len());
    let mut next_expected = 1;
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        assert!(
            bytes.len() as u64 <= config.segment_bytes,
            "{} is {} bytes",
            file.display(),
            bytes.len()
        );
        let (first_seq, _, records) = parse_segment_by_spec(&bytes);
        assert_eq!(
            file.file_name().unwrap().to_str().unwrap(),
            segment_file_name(seq(first_seq))
        );
        assert_eq!(
            records.first().unwrap().1,
            first_seq,
            "a segment starts with its first seq"
        );
        for (_, s, _, _, payload) in records {
            assert_eq!(s, next_expected);
            assert_eq!(payload, expected_payload(s, 1500));
            next_expected += 1;
        }
    }
    assert_eq!(next_expected, 401);
    assert_eq!(replay_seqs(&log, 0), (1..=400).collect::<Vec<_>>());
    drop(log);
    let (log, report) = open(&config);
    assert_eq!(report.segments, files.len());
    assert_eq!(report.next_seq, seq(401));
    assert_eq!(replay_seqs(&log, 0), (1..=400).collect::<Vec<_>>());
}

#[test]
fn replay_from_every_kind_of_cursor() {
    let dir = TempDir::new("cursors");
    let config = small_segments(&dir);
    let (log, _) = open(&config);
    // Even seqs only: cursors can land in gaps.
    let seqs: Vec<u64> = (1..=300).map(|i| i * 2).collect();
    append_seqs(&log, seqs.clone(), 4, 1500);
    let from =
        |cursor: u64| -> Vec<u64> { seqs.iter().copied().filter(|&s| s >= cursor).collect() };
    assert_eq!(replay_seqs(&log, 0), seqs, "cursor 0 = oldest");
    assert_eq!(replay_seqs(&log, 1), seqs, "before the first record");
    for cursor in [2, 3, 101, 256, 257, 511, 512, 513, 599, 600] {
        assert_eq!(replay_seqs(&log, cursor), from(cursor), "cursor {cursor}");
    }
    // Every segment's first seq and the seq just before it.
    for file in segment_files(&dir) {
        let first = SegmentHeader::decode(&std::fs::read(&file).unwrap())
            .unwrap()
            .first_seq
            .get();
        assert_eq!(replay_seqs(&log, first), from(first));
        assert_eq!(replay_seqs(&log, first - 1), from(first - 1));
    }
    assert_eq!(replay_seqs(&log, 600), vec![600], "exactly the last");
    assert!(replay_seqs(&log, 601).is_empty(), "beyond the last");
    assert!(replay_seqs(&log, u64::MAX).is_empty());
    // Before the oldest after retention removed the first segments: starts at the oldest.
    let mut trimmed = config.clone();
    trimmed.bytes_max = 64 * 1024;
    drop(log);
    let (log, _) = open(&trimmed);
    let report = log.enforce_retention(SystemTime::now()).unwrap();
    assert!(report.segments_deleted > 0);
    let oldest = log.oldest_seq().unwrap().get();
    assert_eq!(report.oldest_seq, Some(seq(oldest)));
    assert_eq!(
        replay_seqs(&log, 2),
        from(oldest),
        "an outdated cursor starts at the oldest"
    );
    // A replay that caught up continues once more records are durable.
    let mut tail = log.read_from(600);
    assert_eq!(tail.next().unwrap().unwrap().seq.get(), 600);
    assert!(tail.next().is_none());
    let mut appender = log.start_writer::<Frame>(None).unwrap();
    appender.append(frame(601, 0, 1500)).unwrap();
    appender.append(frame(605, 1, 1500)).unwrap();
    wait_durable(&log, 605);
    assert_eq!(tail.next().unwrap().unwrap().seq.get(), 601);
    assert_eq!(tail.next().unwrap().unwrap().seq.get(), 605);
    assert!(tail.next().is_none());
    appender.close().unwrap();
}

// ---- recovery ----

/// A single-segment log of seqs 1..=n; returns its file bytes and the last record's offset.
fn one_segment_log(dir: &TempDir, n: u64) -> (Vec<u8>, usize) {
    let (log, _) = open(&config(dir));
    append_seqs(&log, 1..=n, 2, 200);
    drop(log);
    let files = segment_files(dir);
    assert_eq!(files.len(), 1);
    let bytes = std::fs::read(&files[0]).unwrap();
    let (_, _, records) = parse_segment_by_spec(&bytes);
    let last_offset = records.last().unwrap().0;
    (bytes, last_offset)
}

fn write_segment(dir: &TempDir, first_seq: u64, bytes: &[u8]) {
    std::fs::create_dir_all(dir.log_dir()).unwrap();
    std::fs::write(dir.log_dir().join(segment_file_name(seq(first_seq))), bytes).unwrap();
}

#[test]
fn recovery_cuts_a_torn_tail_at_every_byte_of_the_last_record() {
    let source = TempDir::new("torn-source");
    let n = 20;
    let (bytes, last_offset) = one_segment_log(&source, n);
    let mut cases = 0;
    for cut in last_offset..bytes.len() {
        let dir = TempDir::new("torn");
        write_segment(&dir, 1, &bytes[..cut]);
        let (log, report) = open(&config(&dir));
        let partial = (cut - last_offset) as u64;
        assert_eq!(report.bytes_cut, partial, "cut at {cut}");
        assert_eq!(report.last_seq, Some(seq(n - 1)));
        // A complete header names its seq: that seq is skipped, not reused.
        let header_complete = partial >= 32;
        let expected_next = if header_complete { n + 1 } else { n };
        assert_eq!(report.next_seq, seq(expected_next), "cut at {cut}");
        assert_eq!(report.cut_defect.is_some(), partial > 0);
        let on_disk = std::fs::read(dir.log_dir().join(segment_file_name(seq(1)))).unwrap();
        assert_eq!(
            on_disk,
            bytes[..last_offset],
            "the file keeps exactly the intact records"
        );
        let records = replay(&log, 0);
        assert_eq!(records.len() as u64, n - 1);
        for r in &records {
            assert_eq!(r.payload, expected_payload(r.seq.get(), 200));
        }
        // The log takes new records after the cut.
        let mut appender = log.start_writer::<Frame>(None).unwrap();
        appender.append(frame(expected_next, 0, 200)).unwrap();
        wait_durable(&log, expected_next);
        appender.close().unwrap();
        let mut seqs: Vec<u64> = (1..n).collect();
        seqs.push(expected_next);
        assert_eq!(replay_seqs(&log, 0), seqs);
        cases += 1;
    }
    // The whole file (no cut) reopens unchanged.
    let dir = TempDir::new("torn-none");
    write_segment(&dir, 1, &bytes);
    let (_, report) = open(&config(&dir));
    assert_eq!((report.bytes_cut, report.next_seq), (0, seq(n + 1)));
    println!("torn-tail cases: {cases}");
    assert_eq!(cases, bytes.len() - last_offset);
}

#[test]
fn recovery_cuts_at_a_flipped_payload_byte_and_never_reuses_its_seq() {
    let source = TempDir::new("flip-source");
    let n = 20;
    let (bytes, last_offset) = one_segment_log(&source, n);
    let records = parse_segment_by_spec(&bytes).2;
    // Flip one byte of the last record's payload, then of a middle record's.
    for (victim, expected_last) in [(n as usize - 1, n - 1), (9, 9)] {
        let (offset, victim_seq, _, _, payload) = &records[victim];
        assert!(!payload.is_empty());
        let mut damaged = bytes.clone();
        damaged[offset + 32 + payload.len() / 2] ^= 0x40;
        let dir = TempDir::new("flip");
        write_segment(&dir, 1, &damaged);
        let (log, report) = open(&config(&dir));
        assert_eq!(report.cut_defect, Some(FormatDefect::ChecksumMismatch));
        assert_eq!(report.bytes_cut, (bytes.len() - offset) as u64);
        assert_eq!(report.last_seq, Some(seq(expected_last)));
        assert_eq!(*victim_seq, expected_last + 1);
        // Every seq written after the defect (the victim's and any salvaged) stays used.
        assert_eq!(report.salvaged_seq, Some(seq(n)));
        assert_eq!(report.next_seq, seq(n + 1));
        assert_eq!(
            replay_seqs(&log, 0),
            (1..=expected_last).collect::<Vec<_>>()
        );
        assert_eq!(last_offset, records.last().unwrap().0);
    }
}

#[test]
fn recovery_refuses_bad_segment_headers() {
    let source = TempDir::new("hdr-source");
    let (bytes, _) = one_segment_log(&source, 5);
    for i in [0, 8, 16, 24, 40, 60] {
        let mut damaged = bytes.clone();
        damaged[i] ^= 1;
        let dir = TempDir::new("hdr");
        write_segment(&dir, 1, &damaged);
        let err = EventLog::open(&config(&dir)).unwrap_err();
        assert_eq!(err.reason(), "segment_header", "flip at {i}: {err}");
    }
    let dir = TempDir::new("hdr-short");
    write_segment(&dir, 1, &bytes[..40]);
    assert_eq!(
        EventLog::open(&config(&dir)).unwrap_err().reason(),
        "segment_header"
    );
    let dir = TempDir::new("hdr-name");
    write_segment(&dir, 2, &bytes);
    assert_eq!(
        EventLog::open(&config(&dir)).unwrap_err().reason(),
        "segment_name_mismatch"
    );
    // Leftover temp files of an interrupted segment creation are removed.
    let dir = TempDir::new("hdr-temp");
    write_segment(&dir, 1, &bytes);
    std::fs::write(
        dir.log_dir().join("00000000000000000009.seg.tmp"),
        &bytes[..10],
    )
    .unwrap();
    let (_, report) = open(&config(&dir));
    assert_eq!(report.temp_files_removed, 1);
    assert_eq!(report.next_seq, seq(6));
}

#[test]
fn corruption_in_a_sealed_segment_is_reported_by_replay() {
    let dir = TempDir::new("sealed-corrupt");
    let config = small_segments(&dir);
    let (log, _) = open(&config);
    append_seqs(&log, 1..=100, 1, 1500);
    drop(log);
    let first = &segment_files(&dir)[0];
    let mut bytes = std::fs::read(first).unwrap();
    let (_, _, records) = parse_segment_by_spec(&bytes);
    let (offset, victim, _, _, _) = records[2];
    bytes[offset + 33] ^= 0xFF;
    std::fs::write(first, &bytes).unwrap();
    let (log, report) = open(&config);
    assert_eq!(
        report.bytes_cut, 0,
        "sealed segments are not scanned at open"
    );
    let mut replay = log.read_from(0);
    assert_eq!(replay.next().unwrap().unwrap().seq.get(), 1);
    assert_eq!(replay.next().unwrap().unwrap().seq.get(), 2);
    match replay.next().unwrap() {
        Err(EventLogError::CorruptRecord {
            segment,
            offset: at,
            defect,
        }) => {
            assert_eq!(
                (segment, at, defect),
                (seq(1), offset as u64, FormatDefect::ChecksumMismatch)
            );
        }
        other => panic!("expected a corrupt record at seq {victim}, got {other:?}"),
    }
    assert!(replay.next().is_none());
    // Records after the damaged segment are still reachable by cursor.
    let second_first = SegmentHeader::decode(&std::fs::read(&segment_files(&dir)[1]).unwrap())
        .unwrap()
        .first_seq;
    assert_eq!(
        replay_seqs(&log, second_first.get()),
        (second_first.get()..=100).collect::<Vec<_>>()
    );
}

// ---- crash in a child process ----

const CRASH_DIR_ENV: &str = "RELAY_EVENTLOG_CRASH_CHILD_DIR";
const CRASH_BODY_MAX: usize = 4_000;

/// Runs only as the child of `crash_kill9_mid_write_keeps_every_durable_record`: append
/// forever, printing each durable seq.
#[test]
fn crash_child_writer() {
    let Some(dir) = std::env::var_os(CRASH_DIR_ENV) else {
        return;
    };
    let mut config = EventLogConfig::new(PathBuf::from(dir));
    config.segment_bytes = 256 * 1024;
    config.fsync_interval = Duration::from_micros(500);
    let (log, report) = EventLog::open(&config).unwrap();
    let on_durable = OnDurable::new(|s: Seq| {
        let mut out = std::io::stdout().lock();
        writeln!(out, "durable {s}").unwrap();
        out.flush().unwrap();
    });
    let mut appender = log.start_writer::<Frame>(Some(on_durable)).unwrap();
    let mut s = report.next_seq.get();
    loop {
        appender.append(frame(s, s % 11, CRASH_BODY_MAX)).unwrap();
        s += 1;
        if s % 4 == 0 {
            // A steady stream of small group commits, not one flood of full batches.
            std::thread::sleep(Duration::from_micros(100));
        }
    }
}

#[test]
fn crash_kill9_mid_write_keeps_every_durable_record() {
    let dir = TempDir::new("crash");
    let config = {
        let mut c = EventLogConfig::new(&dir.0);
        c.segment_bytes = 256 * 1024;
        c
    };
    let mut expected_first = 1;
    for round in 0..4 {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "crash_child_writer",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CRASH_DIR_ENV, &dir.0)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut reported = 0;
        let mut durable_lines = 0;
        // Let it write a few hundred records (several segments), then kill it mid-stream.
        while durable_lines < 60 + round * 30 {
            let line = lines.next().expect("child ended early").unwrap();
            if let Some(v) = line.strip_prefix("durable ") {
                reported = v.parse().unwrap();
                durable_lines += 1;
            }
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        for line in lines.map_while(Result::ok) {
            if let Some(v) = line.strip_prefix("durable ") {
                reported = v.parse().unwrap(); // reported before the kill landed
            }
        }
        let (log, report) = EventLog::open(&config).unwrap();
        let last = report.last_seq.unwrap().get();
        assert!(
            last >= reported,
            "round {round}: recovered {last} < reported durable {reported}"
        );
        assert!(report.next_seq.get() > last);
        let records = replay(&log, 0);
        let seqs: Vec<u64> = records.iter().map(|r| r.seq.get()).collect();
        let first = seqs[0];
        assert_eq!(first, 1);
        assert_eq!(*seqs.last().unwrap(), last);
        for r in &records {
            assert_eq!(
                r.payload,
                expected_payload(r.seq.get(), CRASH_BODY_MAX),
                "seq {}",
                r.seq
            );
        }
        assert!(seqs.windows(2).all(|w| w[0] < w[1]));
        assert!(expected_first <= report.next_seq.get());
        expected_first = report.next_seq.get();
        println!(
            "crash round {round}: reported durable {reported}, recovered {last}, cut {} bytes ({:?}), {} segments",
            report.bytes_cut, report.cut_defect, report.segments
        );
    }
}

// ---- retention ----

#[test]
fn retention_by_bytes_deletes_whole_sealed_segments_oldest_first() {
    let dir = TempDir::new("ret-bytes");
    let mut config = small_segments(&dir);
    let (log, _) = open(&config);
    append_seqs(&log, 1..=300, 2, 1500);
    drop(log);
    let before = segment_files(&dir);
    let sizes: Vec<u64> = before
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .collect();
    let total: u64 = sizes.iter().sum();
    // Keep about half: the oldest segments go until the rest fits.
    config.bytes_max = total / 2;
    let first_of_second = SegmentHeader::decode(&std::fs::read(&before[1]).unwrap())
        .unwrap()
        .first_seq
        .get();
    let (log, _) = open(&config);
    // A replay positioned in the first segment keeps reading it after it is deleted.
    let mut early = log.read_from(1);
    assert_eq!(early.next().unwrap().unwrap().seq.get(), 1);
    let report = log.enforce_retention(SystemTime::now()).unwrap();
    let mut expected_deleted = 0;
    let mut remaining = total;
    while remaining > config.bytes_max {
        remaining -= sizes[expected_deleted];
        expected_deleted += 1;
    }
    assert_eq!(report.segments_deleted, expected_deleted);
    assert_eq!(report.bytes_deleted, total - remaining);
    let after = segment_files(&dir);
    assert_eq!(
        after,
        before[expected_deleted..].to_vec(),
        "whole segments, oldest first"
    );
    for file in &after {
        assert_eq!(
            std::fs::read(file).unwrap().len() as u64,
            std::fs::metadata(file).unwrap().len()
        );
    }
    let oldest = SegmentHeader::decode(&std::fs::read(&after[0]).unwrap())
        .unwrap()
        .first_seq;
    assert_eq!(log.oldest_seq(), Some(oldest));
    assert_eq!(
        replay_seqs(&log, 0),
        (oldest.get()..=300).collect::<Vec<_>>()
    );
    // It finishes the segment it has open, then reports that what followed was deleted.
    let mut early_seqs = Vec::new();
    let outcome = loop {
        match early.next() {
            Some(Ok(r)) => early_seqs.push(r.seq.get()),
            other => break other,
        }
    };
    assert_eq!(early_seqs, (2..first_of_second).collect::<Vec<_>>());
    assert!(
        matches!(outcome, Some(Err(EventLogError::CursorOutdated { segment })) if segment == seq(1)),
        "{outcome:?}"
    );
    assert!(early.next().is_none());
    // A bound of zero deletes every sealed segment but never the active one.
    config.bytes_max = 0;
    drop(early);
    drop(log);
    let (log, _) = open(&config);
    log.enforce_retention(SystemTime::now()).unwrap();
    assert_eq!(segment_files(&dir), vec![before.last().unwrap().clone()]);
    let last_first = log.oldest_seq().unwrap().get();
    assert_eq!(replay_seqs(&log, 0), (last_first..=300).collect::<Vec<_>>());
    // Appending continues in the active segment.
    let mut appender = log.start_writer::<Frame>(None).unwrap();
    appender.append(frame(301, 0, 1500)).unwrap();
    wait_durable(&log, 301);
    appender.close().unwrap();
    assert_eq!(*replay_seqs(&log, 0).last().unwrap(), 301);
}

#[test]
fn retention_by_age_deletes_segments_sealed_before_the_window() {
    let dir = TempDir::new("ret-age");
    let mut config = small_segments(&dir);
    config.replay_window = Duration::from_secs(3600);
    let (log, _) = open(&config);
    append_seqs(&log, 1..=200, 2, 1500);
    let files = segment_files(&dir);
    let created: Vec<u64> = files
        .iter()
        .map(|f| {
            SegmentHeader::decode(&std::fs::read(f).unwrap())
                .unwrap()
                .created_unix_micros
        })
        .collect();
    assert!(created.windows(2).all(|w| w[0] <= w[1]));
    let report = log.enforce_retention(SystemTime::now()).unwrap();
    assert_eq!(
        report.segments_deleted, 0,
        "everything is inside the window"
    );
    // At "sealed time of segment k + window", segments 0..=k-1 are out (k = the middle).
    let k = files.len() / 2;
    let now = SystemTime::UNIX_EPOCH + Duration::from_micros(created[k]) + config.replay_window;
    let expected = created
        .iter()
        .skip(1)
        .take_while(|&&c| c <= created[k])
        .count();
    let report = log.enforce_retention(now).unwrap();
    assert_eq!(report.segments_deleted, expected);
    assert_eq!(segment_files(&dir), files[expected..].to_vec());
    // Far in the future: all sealed segments go, the active one stays.
    let report = log
        .enforce_retention(SystemTime::now() + Duration::from_secs(10 * 3600))
        .unwrap();
    assert_eq!(report.segments_deleted, files.len() - expected - 1);
    assert_eq!(segment_files(&dir), vec![files.last().unwrap().clone()]);
    assert_eq!(
        log.oldest_seq().map(Seq::get),
        Some(parse_segment_by_spec(&std::fs::read(files.last().unwrap()).unwrap()).0)
    );
}

// ---- tombstones ----

#[test]
fn tombstones_hide_and_reversal_restores() {
    let dir = TempDir::new("tombstones");
    let config = small_segments(&dir);
    let (log, _) = open(&config);
    append_seqs(&log, 1..=120, 3, 1500); // accounts 0, 1, 2
    let taken = AccountKey::new(1);
    log.take_down(taken, seq(60)).unwrap();
    assert_eq!(log.takedown_of(taken), Some(seq(60)));
    let visible = |log: &EventLog| -> Vec<u64> { replay_seqs(log, 0) };
    let hidden_view: Vec<u64> = (1..=120).filter(|s| s % 3 != 1 || *s >= 60).collect();
    assert_eq!(visible(&log), hidden_view);
    assert_eq!(
        replay_seqs(&log, 58),
        hidden_view
            .iter()
            .copied()
            .filter(|&s| s >= 58)
            .collect::<Vec<_>>()
    );
    drop(log);
    // Persisted, and the segments were not touched.
    let sizes: Vec<u64> = segment_files(&dir)
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .collect();
    let (log, _) = open(&config);
    assert_eq!(visible(&log), hidden_view);
    log.reverse_takedown(taken, seq(121)).unwrap();
    assert_eq!(log.takedown_of(taken), None);
    assert_eq!(visible(&log), (1..=120).collect::<Vec<_>>());
    drop(log);
    let (log, _) = open(&config);
    assert_eq!(visible(&log), (1..=120).collect::<Vec<_>>());
    // A takedown again after the reversal.
    log.take_down(AccountKey::new(2), seq(200)).unwrap();
    assert_eq!(
        visible(&log),
        (1..=120).filter(|s| s % 3 != 2).collect::<Vec<_>>()
    );
    drop(log);
    let sizes_after: Vec<u64> = segment_files(&dir)
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .collect();
    assert_eq!(sizes, sizes_after, "no segment is rewritten");
    // A torn last entry is cut; damage before the last entry refuses the open.
    let tomb_path = dir.log_dir().join("tombstones.log");
    let tomb = std::fs::read(&tomb_path).unwrap();
    assert_eq!(tomb.len(), 64 + 3 * 32);
    let mut torn = tomb.clone();
    torn.extend_from_slice(&tomb[64..80]);
    std::fs::write(&tomb_path, &torn).unwrap();
    let (log, report) = open(&config);
    assert_eq!(report.tombstone_bytes_cut, 16);
    assert_eq!(log.takedown_of(AccountKey::new(2)), Some(seq(200)));
    drop(log);
    let mut damaged = tomb.clone();
    damaged[64 + 32 + 9] ^= 1;
    std::fs::write(&tomb_path, &damaged).unwrap();
    assert_eq!(
        EventLog::open(&config).unwrap_err().reason(),
        "tombstone_corrupt"
    );
    let mut last_damaged = tomb.clone();
    last_damaged[64 + 2 * 32 + 9] ^= 1;
    std::fs::write(&tomb_path, &last_damaged).unwrap();
    let (log, report) = open(&config);
    assert_eq!(
        report.tombstone_bytes_cut, 32,
        "a bad last entry is a torn append"
    );
    assert_eq!(log.takedown_of(AccountKey::new(2)), None);
}

// ---- format properties ----

proptest! {
    #[test]
    fn record_header_round_trips_over_any_slicing(
        s in 1u64..(1 << 53),
        account in any::<u64>(),
        kind in any::<u16>(),
        payload in proptest::collection::vec(any::<u8>(), 0..600),
        cuts in proptest::collection::vec(any::<usize>(), 0..5),
    ) {
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (payload.len() + 1)).collect();
        points.sort();
        let mut slices = Vec::new();
        let mut at = 0;
        for p in points.into_iter().chain([payload.len()]) {
            slices.push(&payload[at..p]);
            at = p;
        }
        let header = RecordHeader::encode(seq(s), AccountKey::new(account), RecordKind::new(kind), payload.len() as u32, slices);
        let decoded = RecordHeader::decode(&header).unwrap();
        prop_assert_eq!(decoded.seq.get(), s);
        prop_assert_eq!(decoded.account_key.get(), account);
        prop_assert_eq!(decoded.kind.get(), kind);
        prop_assert!(decoded.check_payload(&payload).is_ok());
        let mut on_disk = header.to_vec();
        on_disk.extend_from_slice(&payload);
        prop_assert_eq!(u32::from_le_bytes(header[28..32].try_into().unwrap()), {
            let mut checked = header[..28].to_vec();
            checked.extend_from_slice(&payload);
            crc32c(&checked)
        });
    }

    #[test]
    fn any_single_bit_flip_in_a_record_is_detected(
        payload in proptest::collection::vec(any::<u8>(), 1..300),
        bit in any::<usize>(),
    ) {
        let header = RecordHeader::encode(seq(9), AccountKey::new(1), RecordKind::new(2), payload.len() as u32, [&payload[..]]);
        let mut record = header.to_vec();
        record.extend_from_slice(&payload);
        let bit = bit % (record.len() * 8);
        record[bit / 8] ^= 1 << (bit % 8);
        let detected = match RecordHeader::decode(&record) {
            Err(_) => true,
            Ok(h) => record.len() != 32 + h.payload_len as usize || h.check_payload(&record[32..]).is_err(),
        };
        prop_assert!(detected);
    }
}
