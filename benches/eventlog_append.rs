//! Event log append throughput with group commit, against the disk's fdatasync rate.
//!
//! `cargo bench --bench eventlog_append`. Each measured iteration batch appends `iters`
//! records (prefix / seq / suffix gathered from shared buffers, nothing copied) and waits
//! until the last one is durable, so the time includes every write and fdatasync. The log
//! lives under the system temp dir; retention keeps it under 1 GiB while the bench runs.

use criterion::{
    BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main, measurement::WallTime,
};
use relay::eventlog::{
    AccountKey, Appender, EventLog, EventLogConfig, GatherRecord, IoBackendChoice, OnDurable,
    RecordKind, Seq,
};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

struct BenchFrame {
    seq: Seq,
    prefix: Arc<[u8]>,
    seq_bytes: [u8; 8],
    suffix: Arc<[u8]>,
}

impl GatherRecord for BenchFrame {
    fn seq(&self) -> Seq {
        self.seq
    }
    fn account_key(&self) -> AccountKey {
        AccountKey::new(self.seq.get() % 1000)
    }
    fn kind(&self) -> RecordKind {
        RecordKind::new(1)
    }
    fn slices(&self) -> impl Iterator<Item = &[u8]> {
        [&self.prefix[..], &self.seq_bytes[..], &self.suffix[..]].into_iter()
    }
}

struct Harness {
    dir: PathBuf,
    log: EventLog,
    appender: Option<Appender<BenchFrame>>,
    next: u64,
    prefix: Arc<[u8]>,
    suffix: Arc<[u8]>,
}

impl Harness {
    fn new(name: &str, record_bytes: usize, fsync_interval: Duration) -> Harness {
        Harness::with_io(name, record_bytes, fsync_interval, IoBackendChoice::Auto)
    }

    fn with_io(
        name: &str,
        record_bytes: usize,
        fsync_interval: Duration,
        io: IoBackendChoice,
    ) -> Harness {
        let dir = std::env::temp_dir().join(format!("relay-bench-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut config = EventLogConfig::new(&dir);
        config.bytes_max = 1 << 30;
        config.fsync_interval = fsync_interval;
        config.io = io;
        let (log, report) = EventLog::open(&config).unwrap();
        // The bench thread sleeps until the writer wakes it (no spinning on the 2 cores).
        let bench_thread = std::thread::current();
        let wake = OnDurable::new(move |_| bench_thread.unpark());
        let appender = log.start_writer::<BenchFrame>(Some(wake)).unwrap();
        eprintln!("{name}: backend {:?}", appender.backend());
        let body = record_bytes - 8;
        let bytes: Vec<u8> = (0..body).map(|i| (i * 7) as u8).collect();
        Harness {
            dir,
            log,
            appender: Some(appender),
            next: report.next_seq.get(),
            prefix: bytes[..body / 2].into(),
            suffix: bytes[body / 2..].into(),
        }
    }

    /// Append `n` records and wait until the last is durable.
    fn append_durable(&mut self, n: u64) -> Duration {
        let appender = self.appender.as_mut().unwrap();
        let durable = self.log.durable_seq_handle();
        let start = Instant::now();
        for _ in 0..n {
            let seq = Seq::new(self.next).unwrap();
            let frame = BenchFrame {
                seq,
                prefix: Arc::clone(&self.prefix),
                seq_bytes: self.next.to_be_bytes(),
                suffix: Arc::clone(&self.suffix),
            };
            appender.append(frame).unwrap();
            self.next += 1;
        }
        let last = self.next - 1;
        while durable.get().map_or(0, Seq::get) < last {
            std::thread::park_timeout(Duration::from_millis(1));
        }
        let elapsed = start.elapsed();
        self.log.enforce_retention(SystemTime::now()).unwrap();
        elapsed
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(appender) = self.appender.take() {
            appender.close().unwrap();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const SIZES: [(usize, &str); 2] = [(1024, "1KiB"), (256 * 1024, "256KiB")];

fn configure(group: &mut BenchmarkGroup<'_, WallTime>) {
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
}

fn append_bytes(c: &mut Criterion) {
    let mut group = c.benchmark_group("eventlog_append_bytes");
    configure(&mut group);
    for (size, label) in SIZES {
        let mut harness = Harness::new(&format!("bytes-{label}"), size, Duration::from_millis(2));
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function(label, |b| {
            b.iter_custom(|iters| harness.append_durable(iters))
        });
    }
    group.finish();
}

fn append_records(c: &mut Criterion) {
    let mut group = c.benchmark_group("eventlog_append_records");
    configure(&mut group);
    for (size, label) in SIZES {
        let mut harness = Harness::new(&format!("records-{label}"), size, Duration::from_millis(2));
        group.throughput(Throughput::Elements(1));
        group.bench_function(label, |b| {
            b.iter_custom(|iters| harness.append_durable(iters))
        });
    }
    group.finish();
}

/// What group commit is compared with: the disk's own fdatasync rate (4 KiB appended and
/// synced per operation), and one 1 KiB record made durable before the next is appended.
fn disk(c: &mut Criterion) {
    let mut group = c.benchmark_group("eventlog_disk");
    configure(&mut group);
    group.throughput(Throughput::Elements(1));
    let path = std::env::temp_dir().join(format!("relay-bench-fdatasync-{}", std::process::id()));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let block = vec![0xA5u8; 4096];
    let mut offset = 0u64;
    group.bench_function("fdatasync_4KiB_append", |b| {
        b.iter(|| {
            file.write_all_at(&block, offset).unwrap();
            file.sync_data().unwrap();
            offset = (offset + 4096) % (64 << 20);
        })
    });
    drop(file);
    let _ = std::fs::remove_file(&path);
    for (io, label) in [
        (IoBackendChoice::Auto, "uring"),
        (IoBackendChoice::FallbackOnly, "fallback"),
    ] {
        let mut harness =
            Harness::with_io(&format!("one-by-one-{label}"), 1024, Duration::ZERO, io);
        group.bench_function(format!("append_1KiB_durable_one_at_a_time_{label}"), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| harness.append_durable(1)).sum())
        });
    }
    group.finish();
}

/// The checksum every appended byte goes through on the writer thread (software CRC-32C).
fn checksum(c: &mut Criterion) {
    let mut group = c.benchmark_group("eventlog_crc32c");
    configure(&mut group);
    for (size, label) in SIZES {
        let bytes: Vec<u8> = (0..size).map(|i| (i * 13) as u8).collect();
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function(label, |b| {
            b.iter(|| relay::eventlog::crc32c(std::hint::black_box(&bytes)))
        });
    }
    group.finish();
}

criterion_group!(benches, append_bytes, append_records, disk, checksum);
criterion_main!(benches);
