//! Shared-memory frame buffers (`runtime::frames`): placement, commit, handles across
//! threads, reclaim and reuse, backpressure, the one counted copy, the outgoing gather, a
//! timed two-thread stress run, heap allocations per frame, and a property test over random
//! operation sequences.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::HashMap;
use std::io::Write;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use relay::config::limits::{
    FRAME_BUFFER_FRAME_BYTES_MAX, FRAME_REGION_BYTES, FRAME_SEGMENT_BYTES,
};
use relay::runtime::frames::{
    FrameBufferError, FrameHandle, FrameRegionConfig, FrameWriter, OutFrame, RegionId, WriteSlot,
};

// ---- a counting allocator: per thread, so tests running in parallel do not disturb ----

thread_local! {
    static HEAP_ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

struct CountingAllocator;

fn count_allocation() {
    let _ = HEAP_ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
}

#[allow(unsafe_code)]
// SAFETY: every call forwards to the system allocator with the caller's arguments.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_allocation();
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_allocation();
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_allocation();
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

fn heap_allocations() -> u64 {
    HEAP_ALLOCATIONS.with(Cell::get)
}

// ---- helpers ----

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;

/// xorshift64*: deterministic randomness without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Log-uniform in 1..=max: most frames small, some near the bound.
    fn frame_len(&mut self, max: usize) -> usize {
        let bits = usize::BITS - max.leading_zeros();
        let top = 1usize << (1 + self.below(bits as usize));
        (1 + self.below(top)).min(max)
    }
}

/// A block of random bytes frames are filled from (memcpy in, memcmp out: exact and fast
/// even in a debug build).
fn random_source(len: usize, seed: u64) -> Arc<Vec<u8>> {
    let mut rng = Rng(seed);
    let mut bytes = Vec::with_capacity(len + 8);
    while bytes.len() < len {
        bytes.extend_from_slice(&rng.next().to_le_bytes());
    }
    bytes.truncate(len);
    Arc::new(bytes)
}

fn writer(segments: usize, segment_bytes: usize, core: u32) -> FrameWriter {
    let config = FrameRegionConfig::new(segments * segment_bytes, segment_bytes).unwrap();
    FrameWriter::new(RegionId::new(core), config).unwrap()
}

/// Fill the whole window of `slot` from `source` in reads of at most `read_bytes`.
fn fill_in_reads(slot: &mut WriteSlot, source: &[u8], read_bytes: usize) {
    let mut at = 0;
    while at < source.len() {
        let n = read_bytes.min(source.len() - at);
        slot.unfilled_mut()[..n].copy_from_slice(&source[at..at + n]);
        slot.advance(n).unwrap();
        at += n;
    }
}

/// Reserve, blocking on backpressure the way an ingest core would (reclaim and retry).
fn reserve_blocking(writer: &mut FrameWriter, len: usize) -> WriteSlot {
    let give_up = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(Instant::now() < give_up, "backpressure never cleared");
        match writer.reserve(len) {
            Ok(slot) => return slot,
            Err(FrameBufferError::Backpressure) => {
                writer.poll_reclaim();
                thread::sleep(Duration::from_micros(50));
            }
            Err(other) => panic!("reserve({len}): {other}"),
        }
    }
}

fn write_frame(writer: &mut FrameWriter, bytes: &[u8]) -> FrameHandle {
    let mut slot = reserve_blocking(writer, bytes.len());
    fill_in_reads(&mut slot, bytes, 64 * KIB);
    writer.commit(slot, bytes.len()).unwrap()
}

// ---- configuration and the region ----

#[test]
fn config_checks_every_size() {
    let default = FrameRegionConfig::default();
    assert_eq!(default.region_bytes(), FRAME_REGION_BYTES);
    assert_eq!(default.segment_bytes(), FRAME_SEGMENT_BYTES);
    assert_eq!(default.frame_bytes_max(), FRAME_BUFFER_FRAME_BYTES_MAX);
    assert_eq!(
        default.segment_count(),
        FRAME_REGION_BYTES / FRAME_SEGMENT_BYTES
    );
    assert_eq!(
        FrameRegionConfig::new(4 * 4096, 4096)
            .unwrap()
            .frame_bytes_max(),
        4096
    );

    let cases: [(usize, usize, &str); 7] = [
        (8 * MIB, 0, "frame_segment_size_invalid"),
        (8 * MIB, 4095, "frame_segment_size_invalid"),
        (8 * MIB, 4096 + 1, "frame_segment_size_invalid"),
        (4 << 30, 2 << 30, "frame_segment_size_invalid"),
        (
            10 * 4096 + 4096 / 2,
            4096,
            "frame_region_not_whole_segments",
        ),
        (4096, 4096, "frame_region_too_few_segments"),
        (32 << 30, MIB, "frame_region_too_large"),
    ];
    for (region_bytes, segment_bytes, reason) in cases {
        let error = FrameRegionConfig::new(region_bytes, segment_bytes).unwrap_err();
        assert_eq!(error.reason(), reason, "{region_bytes} / {segment_bytes}");
        assert!(error.to_string().starts_with(reason));
    }
    common::report("frame region config", cases.len() + 2);
}

#[test]
fn region_is_a_named_memfd_that_never_grows() {
    let mut writer = writer(4, 64 * KIB, 7);
    let region = Arc::clone(writer.region());
    assert_eq!(region.id(), RegionId::new(7));
    assert_eq!(region.region_bytes(), 256 * KIB);
    assert_eq!(region.segment_count(), 4);
    let file_len = || {
        let fd = region.as_fd().try_clone_to_owned().unwrap();
        std::fs::File::from(fd).metadata().unwrap().len()
    };
    assert_eq!(file_len(), 256 * 1024);
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    assert!(maps.contains("memfd:relay-frames-7"), "{maps}");

    let source = random_source(64 * KIB, 1);
    for round in 0..64 {
        let len = 1 + (round * 997) % (64 * KIB);
        let handle = write_frame(&mut writer, &source[..len]);
        assert!(handle.offset() + handle.len() <= region.region_bytes());
        assert_eq!(handle.as_bytes(), &source[..len]);
    }
    assert_eq!(file_len(), 256 * 1024);
    assert_eq!(region.region_bytes(), 256 * KIB);
    assert!(
        writer.counters().segments_reclaimed > 4,
        "segments were reused"
    );
}

#[test]
fn a_handle_is_small_and_crosses_threads() {
    fn send_and_sync<T: Send + Sync + 'static>() {}
    send_and_sync::<FrameHandle>();
    send_and_sync::<OutFrame>();
    assert_eq!(std::mem::size_of::<FrameHandle>(), 24);
    assert_eq!(std::mem::size_of::<Option<FrameHandle>>(), 24);
}

/// Resident kilobytes of the mapping named `name` in /proc/self/smaps.
fn resident_kib(name: &str) -> u64 {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
    let mut in_mapping = false;
    for line in smaps.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        let is_header =
            first.contains('-') && first.chars().all(|c| c == '-' || c.is_ascii_hexdigit());
        if is_header {
            in_mapping = line.ends_with(name) || line.contains(&format!("{name} "));
        } else if in_mapping && let Some(rest) = line.strip_prefix("Rss:") {
            return rest.trim().trim_end_matches("kB").trim().parse().unwrap();
        }
    }
    panic!("mapping {name} not found");
}

#[test]
fn resident_memory_is_the_working_set_not_the_region() {
    let mut writer = FrameWriter::new(RegionId::new(11), FrameRegionConfig::default()).unwrap();
    let name = "/memfd:relay-frames-11";
    assert_eq!(
        resident_kib(name),
        0,
        "nothing is resident before the first frame"
    );
    // 320 MiB through a 256 MiB region, each frame dropped at once.
    for _ in 0..320 {
        let mut slot = writer.reserve(MIB).unwrap();
        slot.unfilled_mut().fill(0xa5);
        slot.advance(MIB).unwrap();
        drop(writer.commit(slot, MIB).unwrap());
    }
    let resident = resident_kib(name);
    assert!(
        resident <= 2 * (FRAME_SEGMENT_BYTES / KIB) as u64,
        "{resident} KiB resident"
    );
    println!("320 MiB of frames through the default region: {resident} KiB resident");
}

// ---- writer and slots ----

#[test]
fn frames_pack_and_commit_gives_back_the_unused_tail() {
    let mut writer = writer(4, 64 * KIB, 1);
    let mut first = writer.reserve(1000).unwrap();
    first.unfilled_mut()[..10].copy_from_slice(b"0123456789");
    first.advance(10).unwrap();
    assert_eq!(first.filled_bytes(), b"0123456789");
    let first = writer.commit(first, 10).unwrap();
    let mut second = writer.reserve(5).unwrap();
    second.unfilled_mut().copy_from_slice(b"abcde");
    second.advance(5).unwrap();
    let second = writer.commit(second, 5).unwrap();
    assert_eq!(
        second.offset(),
        first.offset() + 10,
        "the 990 unused bytes were given back"
    );
    assert_eq!(first.as_bytes(), b"0123456789");
    assert_eq!(second.as_bytes(), b"abcde");
    assert_eq!(
        (first.len(), first.is_empty(), first.segment()),
        (10, false, 0)
    );
    assert_eq!(first.region_id(), RegionId::new(1));
    assert_eq!(first.as_ref(), b"0123456789");
    assert!(format!("{first:?}").contains("len: 10"));
    let counters = writer.counters();
    assert_eq!(
        (counters.frames_committed, counters.bytes_committed),
        (2, 15)
    );
    assert_eq!(counters.segments_in_use, 1);
}

#[test]
fn open_slots_never_overlap_and_a_non_tail_commit_leaves_a_hole() {
    let mut writer = writer(4, 64 * KIB, 1);
    let mut a = writer.reserve(100).unwrap();
    let mut b = writer.reserve(100).unwrap();
    a.unfilled_mut().fill(b'a');
    a.advance(100).unwrap();
    b.unfilled_mut().fill(b'b');
    b.advance(100).unwrap();
    let a = writer.commit(a, 50).unwrap();
    let b = writer.commit(b, 100).unwrap();
    assert_eq!(b.offset(), a.offset() + 100);
    let c = write_frame(&mut writer, b"c");
    assert_eq!(c.offset(), b.offset() + 100);
    assert!(a.as_bytes().iter().all(|&x| x == b'a'));
    assert!(b.as_bytes().iter().all(|&x| x == b'b'));
}

#[test]
fn commit_prefix_keeps_the_next_message_in_place() {
    let mut writer = writer(4, 64 * KIB, 1);
    let stream = random_source(3000, 2);
    let mut slot = writer.reserve(4000).unwrap();
    // One socket read returned the first message (1200 bytes) and the start of the next.
    fill_in_reads(&mut slot, &stream[..2000], 2000);
    let first = writer.commit_prefix(&mut slot, 1200).unwrap();
    assert_eq!((slot.filled(), slot.capacity()), (800, 2800));
    assert_eq!(slot.filled_bytes(), &stream[1200..2000]);
    fill_in_reads(&mut slot, &stream[2000..3000], 1000);
    let second = writer.commit(slot, 1800).unwrap();
    assert_eq!(first.as_bytes(), &stream[..1200]);
    assert_eq!(second.as_bytes(), &stream[1200..3000]);
    assert_eq!(second.offset(), first.offset() + 1200);
    assert_eq!(writer.copied_bytes(), 0);
}

#[test]
fn grow_in_place_copies_nothing_and_a_move_is_counted() {
    let mut writer = writer(4, 64 * KIB, 1);
    let source = random_source(60 * KIB, 3);
    // Tail of the active segment with room: in place.
    let mut slot = writer.reserve(100).unwrap();
    fill_in_reads(&mut slot, &source[..100], 100);
    writer.grow(&mut slot, 10 * KIB).unwrap();
    assert_eq!(slot.capacity(), 10 * KIB);
    writer.grow(&mut slot, 50).unwrap();
    assert_eq!(slot.capacity(), 10 * KIB, "growing to less is a no-op");
    fill_in_reads(&mut slot, &source[100..10 * KIB], 4 * KIB);
    let grown = writer.commit(slot, 10 * KIB).unwrap();
    assert_eq!(grown.as_bytes(), &source[..10 * KIB]);
    assert_eq!(writer.copied_bytes(), 0);

    // Not the tail any more: moved behind the other window, 300 bytes copied.
    let mut slot = writer.reserve(300).unwrap();
    fill_in_reads(&mut slot, &source[..300], 300);
    let other = writer.reserve(10).unwrap();
    writer.grow(&mut slot, 1000).unwrap();
    assert_eq!(writer.copied_bytes(), 300);
    fill_in_reads(&mut slot, &source[300..1000], 700);
    let moved = writer.commit(slot, 1000).unwrap();
    assert_eq!(moved.as_bytes(), &source[..1000]);
    drop(other);

    // Does not fit in the rest of the segment: moved to a fresh one.
    let mut slot = writer.reserve(20 * KIB).unwrap();
    fill_in_reads(&mut slot, &source[..20 * KIB], 8 * KIB);
    writer.grow(&mut slot, 60 * KIB).unwrap();
    assert_eq!(writer.copied_bytes(), 300 + 20 * KIB as u64);
    fill_in_reads(&mut slot, &source[20 * KIB..60 * KIB], 8 * KIB);
    let big = writer.commit(slot, 60 * KIB).unwrap();
    assert_eq!(big.as_bytes(), &source[..60 * KIB]);
    assert_ne!(big.segment(), grown.segment());
    assert_eq!(writer.counters().bytes_copied, writer.copied_bytes());
}

#[test]
fn refusals_are_typed() {
    let mut writer = writer(2, 4096, 1);
    let mut other = self::writer(2, 4096, 2);
    let reason = |error: FrameBufferError| error.reason();
    assert_eq!(reason(writer.reserve(0).unwrap_err()), "frame_zero_length");
    let too_large = writer.reserve(4097).unwrap_err();
    assert_eq!(
        too_large,
        FrameBufferError::FrameTooLarge {
            requested: 4097,
            max: 4096
        }
    );
    assert_eq!(
        too_large.to_string(),
        "frame_too_large: 4097 bytes, at most 4096"
    );
    let mut slot = writer.reserve(10).unwrap();
    assert_eq!(
        reason(slot.advance(11).unwrap_err()),
        "frame_advance_beyond_window"
    );
    slot.advance(4).unwrap();
    assert_eq!(
        reason(writer.grow(&mut slot, 5000).unwrap_err()),
        "frame_too_large"
    );
    assert_eq!(
        reason(writer.grow(&mut slot, 0).unwrap_err()),
        "frame_zero_length"
    );
    assert_eq!(
        reason(other.grow(&mut slot, 20).unwrap_err()),
        "frame_foreign_slot"
    );
    assert_eq!(
        reason(other.commit_prefix(&mut slot, 1).unwrap_err()),
        "frame_foreign_slot"
    );
    assert_eq!(
        reason(writer.commit_prefix(&mut slot, 5).unwrap_err()),
        "frame_commit_beyond_filled"
    );
    assert_eq!(
        reason(writer.commit_prefix(&mut slot, 0).unwrap_err()),
        "frame_zero_length"
    );
    let slot_again = writer.reserve(10).unwrap();
    assert_eq!(
        reason(other.commit(slot_again, 1).unwrap_err()),
        "frame_foreign_slot"
    );
    let beyond = writer.commit(slot, 5).unwrap_err();
    assert_eq!(
        beyond.to_string(),
        "frame_commit_beyond_filled: 5 bytes, slot holds 4"
    );
    let empty = writer.reserve(10).unwrap();
    assert_eq!(
        reason(writer.commit(empty, 0).unwrap_err()),
        "frame_zero_length"
    );
    // Refused slots were dropped and gave their references back: everything drains.
    writer.reserve(4096).unwrap();
    writer.reserve(4096).unwrap();
    assert_eq!(writer.counters().frames_committed, 0);
    common::report("frame buffer refusals", 13);
}

// ---- backpressure and reclaim ----

#[test]
fn backpressure_when_every_segment_is_pinned_then_recovery() {
    let mut writer = writer(4, 64 * KIB, 1);
    let source = random_source(40 * KIB, 4);
    // 40 KiB frames: one per segment.
    let mut held: Vec<FrameHandle> = (0..4).map(|_| write_frame(&mut writer, &source)).collect();
    assert_eq!(writer.counters().segments_in_use, 4);
    assert_eq!(
        writer.reserve(40 * KIB).unwrap_err(),
        FrameBufferError::Backpressure
    );
    assert_eq!(
        writer.reserve(40 * KIB).unwrap_err(),
        FrameBufferError::Backpressure
    );
    assert_eq!(writer.counters().backpressure_events, 2);
    assert_eq!(writer.poll_reclaim(), 0);
    // Small frames still fit in the active segment: backpressure is about space, not state.
    let small = writer.reserve(1000).unwrap();
    drop(small);

    // Dropping a clone is not enough; the last reference of the first segment is.
    let clone = held[0].clone();
    let moved = held.remove(0);
    let clone = thread::spawn(move || {
        drop(moved);
        clone
    })
    .join()
    .unwrap();
    assert_eq!(writer.poll_reclaim(), 0);
    drop(clone);
    assert_eq!(writer.poll_reclaim(), 1);
    assert_eq!(writer.free_segments(), 1);
    let recovered = write_frame(&mut writer, &source);
    assert_eq!(recovered.segment(), 0, "the drained segment is reused");
    assert_eq!(recovered.as_bytes(), &source[..]);

    // `reserve` polls by itself when no segment is free.
    drop(held.remove(0));
    assert_eq!(writer.sealed_segments(), 3);
    let again = write_frame(&mut writer, &source);
    assert_eq!(again.segment(), 1);
    for handle in &held {
        assert_eq!(handle.as_bytes(), &source[..]);
    }
    assert!(writer.counters().segments_reclaimed >= 2);
}

#[test]
fn handles_outlive_the_writer_and_drop_on_other_threads() {
    let source = random_source(MIB, 5);
    let handles: Vec<FrameHandle> = {
        let mut writer = writer(8, MIB, 3);
        (0..8)
            .map(|i| write_frame(&mut writer, &source[..(i + 1) * 100 * KIB]))
            .collect()
    };
    assert_eq!(handles[0].region_id(), RegionId::new(3));
    let joins: Vec<_> = handles
        .into_iter()
        .enumerate()
        .map(|(i, handle)| {
            let source = Arc::clone(&source);
            thread::spawn(move || {
                let copy = handle.clone();
                drop(handle);
                assert_eq!(copy.as_bytes(), &source[..(i + 1) * 100 * KIB]);
            })
        })
        .collect();
    for join in joins {
        join.join().unwrap();
    }
}

// ---- many frames of random sizes across threads ----

struct Sent {
    handle: FrameHandle,
    source_at: usize,
}

fn check_sent(sent: &Sent, source: &[u8]) {
    let expected = &source[sent.source_at..sent.source_at + sent.handle.len()];
    assert!(
        sent.handle.as_bytes() == expected,
        "frame at {} changed",
        sent.handle.offset()
    );
}

/// Hold up to `keep` frames, verify each on arrival and again when it is dropped at a
/// random position; drop one on a quiet channel so the writer is never starved.
fn consume(receiver: mpsc::Receiver<Sent>, source: Arc<Vec<u8>>, keep: usize, seed: u64) -> u64 {
    let mut rng = Rng(seed);
    let mut held: Vec<Sent> = Vec::new();
    let mut seen = 0;
    loop {
        match receiver.recv_timeout(Duration::from_millis(1)) {
            Ok(sent) => {
                check_sent(&sent, &source);
                held.push(sent);
                seen += 1;
                if held.len() <= keep {
                    continue;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) if held.is_empty() => continue,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        let gone = held.swap_remove(rng.below(held.len()));
        check_sent(&gone, &source);
    }
    while !held.is_empty() {
        let gone = held.swap_remove(rng.below(held.len()));
        check_sent(&gone, &source);
    }
    seen
}

#[test]
fn random_frames_round_trip_across_threads_and_segments_are_reused() {
    const FRAMES: usize = 240;
    let source = random_source(16 * MIB, 6);
    let mut writer = writer(8, FRAME_SEGMENT_BYTES, 4);
    assert_eq!(writer.frame_bytes_max(), FRAME_BUFFER_FRAME_BYTES_MAX);
    let (senders, consumers): (Vec<_>, Vec<_>) = (0..3)
        .map(|i| {
            let (sender, receiver) = mpsc::channel::<Sent>();
            let source = Arc::clone(&source);
            (
                sender,
                thread::spawn(move || consume(receiver, source, 4, 100 + i)),
            )
        })
        .unzip();
    let mut rng = Rng(7);
    let mut sizes: Vec<usize> = vec![1, 2, FRAME_BUFFER_FRAME_BYTES_MAX, 4_999_999];
    sizes.extend((sizes.len()..FRAMES).map(|_| rng.frame_len(FRAME_BUFFER_FRAME_BYTES_MAX)));
    let mut frames_per_segment: HashMap<usize, usize> = HashMap::new();
    let mut activations = 0;
    let mut last_segment = usize::MAX;
    for &len in &sizes {
        let source_at = rng.below(source.len() - len);
        let handle = write_frame(&mut writer, &source[source_at..source_at + len]);
        *frames_per_segment.entry(handle.segment()).or_default() += 1;
        if handle.segment() != last_segment {
            activations += 1;
            last_segment = handle.segment();
        }
        assert!(handle.offset() + len <= writer.region().region_bytes());
        let to = rng.below(senders.len());
        if rng.below(4) == 0 {
            // A clone goes to another consumer: the frame is dropped on two threads.
            let clone = Sent {
                handle: handle.clone(),
                source_at,
            };
            senders[(to + 1) % senders.len()].send(clone).unwrap();
        }
        senders[to].send(Sent { handle, source_at }).unwrap();
    }
    drop(senders);
    let delivered: u64 = consumers.into_iter().map(|c| c.join().unwrap()).sum();
    assert!(delivered >= FRAMES as u64);
    writer.poll_reclaim();
    let counters = writer.counters();
    assert_eq!(counters.frames_committed, FRAMES as u64);
    assert_eq!(counters.bytes_committed, sizes.iter().sum::<usize>() as u64);
    assert_eq!(
        counters.bytes_copied, 0,
        "full length reserved up front: no copy"
    );
    // More activations than segments: segments were drained and reused.
    assert!(
        activations > 8,
        "{activations} activations, {frames_per_segment:?}"
    );
    assert!(counters.segments_reclaimed > 0, "{counters:?}");
    println!("{FRAMES} frames: {activations} activations, per segment {frames_per_segment:?}");
    assert_eq!(writer.region().region_bytes(), 8 * FRAME_SEGMENT_BYTES);
    assert_eq!(writer.sealed_segments(), 0, "everything drained");
    common::report("frames across threads", FRAMES);
}

#[test]
fn stress_two_threads_for_two_seconds() {
    let source = random_source(4 * MIB, 8);
    // Few segments, so backpressure is part of the run.
    let mut writer = writer(4, MIB, 5);
    let (sender, receiver) = mpsc::sync_channel::<Sent>(256);
    let consumer = {
        let source = Arc::clone(&source);
        thread::spawn(move || consume(receiver, source, 64, 9))
    };
    let mut rng = Rng(10);
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut frames = 0u64;
    // The writer keeps a few clones itself and checks them before dropping.
    let mut kept: Vec<Sent> = Vec::new();
    while Instant::now() < deadline {
        let len = if rng.below(50) == 0 {
            rng.frame_len(MIB)
        } else {
            rng.frame_len(16 * KIB)
        };
        let source_at = rng.below(source.len() - len);
        let mut slot = loop {
            match writer.reserve(len) {
                Ok(slot) => break slot,
                Err(FrameBufferError::Backpressure) => {
                    // Blocked: what this thread pins must not be what blocks it.
                    for sent in kept.drain(..) {
                        check_sent(&sent, &source);
                    }
                    writer.poll_reclaim();
                    thread::yield_now();
                }
                Err(other) => panic!("reserve({len}): {other}"),
            }
        };
        fill_in_reads(&mut slot, &source[source_at..source_at + len], 16 * KIB);
        let handle = writer.commit(slot, len).unwrap();
        frames += 1;
        if rng.below(8) == 0 {
            kept.push(Sent {
                handle: handle.clone(),
                source_at,
            });
            if kept.len() > 16 {
                let gone = kept.swap_remove(rng.below(kept.len()));
                check_sent(&gone, &source);
            }
        }
        sender.send(Sent { handle, source_at }).unwrap();
    }
    for sent in kept.drain(..) {
        check_sent(&sent, &source);
    }
    drop(sender);
    assert_eq!(consumer.join().unwrap(), frames);
    writer.poll_reclaim();
    let counters = writer.counters();
    assert_eq!(counters.bytes_copied, 0);
    assert!(counters.segments_reclaimed > 0);
    assert_eq!(writer.sealed_segments(), 0, "everything drained");
    println!("stress: {frames} frames, {counters:?}");
    common::report("two-thread stress frames", frames as usize);
}

// ---- heap allocations per frame ----

#[test]
fn steady_state_allocates_nothing_per_frame() {
    let mut writer = writer(4, 64 * KIB, 6);
    fn cycle(writer: &mut FrameWriter) {
        let payload = [0x5au8; 3000];
        let mut slot = writer.reserve(payload.len()).unwrap();
        slot.unfilled_mut()[..payload.len()].copy_from_slice(&payload);
        slot.advance(payload.len()).unwrap();
        let handle = writer.commit(slot, payload.len()).unwrap();
        let out = OutFrame::new(handle.clone(), 10..12, &[0x1a, 0, 0, 0, 7]).unwrap();
        let total: usize = out.io_slices().iter().map(|part| part.len()).sum();
        assert_eq!(total, payload.len() + 3);
        drop(handle);
        drop(out);
    }
    // Warm up: every segment activated, sealed and reclaimed at least once.
    for _ in 0..200 {
        cycle(&mut writer);
    }
    let before = heap_allocations();
    for _ in 0..10_000 {
        cycle(&mut writer);
    }
    let allocations = heap_allocations() - before;
    assert!(writer.counters().segments_reclaimed > 8);
    assert_eq!(allocations, 0, "heap allocations over 10 000 frames");
}

// ---- the outgoing gather ----

#[test]
fn out_frame_splices_seq_bytes_between_prefix_and_suffix() {
    let mut writer = writer(2, 4096, 1);
    let handle = write_frame(&mut writer, b"head:SEQ:tail");
    let out = OutFrame::new(handle.clone(), 5..8, &[0x1b, 1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
    assert_eq!(
        out.slices(),
        [&b"head:"[..], &[0x1b, 1, 2, 3, 4, 5, 6, 7, 8], b":tail"]
    );
    assert_eq!(out.seq_span(), 5..8);
    assert_eq!(out.seq_bytes().len(), 9);
    assert_eq!((out.len(), out.is_empty()), (19, false));
    assert_eq!(out.handle().as_bytes(), handle.as_bytes());
    let mut written = Vec::new();
    let mut slices = out.io_slices();
    let mut left = out.len();
    let mut parts = &mut slices[..];
    while left > 0 {
        let n = written.write_vectored(parts).unwrap();
        left -= n;
        std::io::IoSlice::advance_slices(&mut parts, n);
    }
    assert_eq!(written, b"head:\x1b\x01\x02\x03\x04\x05\x06\x07\x08:tail");

    let whole = OutFrame::new(handle.clone(), 0..13, &[]).unwrap();
    assert_eq!(whole.len(), 0);
    assert!(whole.is_empty());
    let insert = OutFrame::new(handle.clone(), 13..13, b"!").unwrap();
    assert_eq!(insert.slices().concat(), b"head:SEQ:tail!");
    let cloned = insert.clone();
    drop(insert);
    assert_eq!(cloned.len(), 14);

    let errors = [
        OutFrame::new(handle.clone(), 5..14, b"1").unwrap_err(),
        OutFrame::new(handle.clone(), 14..14, b"1").unwrap_err(),
        OutFrame::new(handle.clone(), 0..1, &[0; 10]).unwrap_err(),
    ];
    let reasons = errors.map(|error| error.reason());
    assert_eq!(
        reasons,
        [
            "out_frame_seq_span_out_of_frame",
            "out_frame_seq_span_out_of_frame",
            "out_frame_seq_bytes_too_long"
        ]
    );
    #[allow(clippy::reversed_empty_ranges)]
    let backwards = OutFrame::new(handle, 8..5, b"1").unwrap_err();
    assert_eq!(
        backwards.to_string(),
        "out_frame_seq_span_out_of_frame: 8..5 in a frame of 13 bytes"
    );
    common::report("out frame gather", 7);
}

// ---- property test: random operation sequences ----

#[derive(Clone, Debug)]
enum Op {
    Reserve(usize),
    Fill { slot: usize, len: usize },
    Commit { slot: usize, per_mille: usize },
    CommitPrefix { slot: usize, per_mille: usize },
    Grow { slot: usize, len: usize },
    DropSlot(usize),
    Clone(usize),
    Drop(usize),
    SendAndDrop(usize),
    Reclaim,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (1usize..=4096).prop_map(Op::Reserve),
        4 => (0usize..8, 1usize..3000).prop_map(|(slot, len)| Op::Fill { slot, len }),
        3 => (0usize..8, 0usize..=1000).prop_map(|(slot, per_mille)| Op::Commit { slot, per_mille }),
        1 => (0usize..8, 0usize..=1000)
            .prop_map(|(slot, per_mille)| Op::CommitPrefix { slot, per_mille }),
        1 => (0usize..8, 1usize..=4096).prop_map(|(slot, len)| Op::Grow { slot, len }),
        1 => (0usize..8).prop_map(Op::DropSlot),
        2 => (0usize..16).prop_map(Op::Clone),
        3 => (0usize..16).prop_map(Op::Drop),
        1 => (0usize..16).prop_map(Op::SendAndDrop),
        1 => Just(Op::Reclaim),
    ]
}

/// The model: what every open slot and every live handle must hold.
struct Model {
    writer: FrameWriter,
    slots: Vec<(WriteSlot, Vec<u8>)>,
    handles: Vec<(FrameHandle, Arc<Vec<u8>>)>,
    next_byte: u8,
}

impl Model {
    fn fresh_bytes(&mut self, len: usize) -> Vec<u8> {
        self.next_byte = self.next_byte.wrapping_add(1);
        let seed = self.next_byte;
        (0..len).map(|i| seed ^ (i as u8).rotate_left(3)).collect()
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Reserve(len) => match self.writer.reserve(len) {
                Ok(slot) => self.slots.push((slot, Vec::new())),
                Err(FrameBufferError::Backpressure) => {
                    assert_eq!(
                        self.writer.free_segments(),
                        0,
                        "backpressure with a free segment"
                    )
                }
                Err(other) => panic!("reserve: {other}"),
            },
            Op::Fill { slot, len } => {
                let Some(index) = self.pick(self.slots.len(), slot) else {
                    return;
                };
                let spare = self.slots[index].0.unfilled_mut().len();
                let bytes = self.fresh_bytes(len.min(spare));
                let (slot, expected) = &mut self.slots[index];
                slot.unfilled_mut()[..bytes.len()].copy_from_slice(&bytes);
                slot.advance(bytes.len()).unwrap();
                expected.extend_from_slice(&bytes);
            }
            Op::Commit { slot, per_mille } => {
                let Some(index) = self.pick(self.slots.len(), slot) else {
                    return;
                };
                let (slot, expected) = self.slots.swap_remove(index);
                let len = expected.len() * per_mille / 1000;
                match self.writer.commit(slot, len) {
                    Ok(handle) => self
                        .handles
                        .push((handle, Arc::new(expected[..len].to_vec()))),
                    Err(error) => assert_eq!(error, FrameBufferError::ZeroLength),
                }
            }
            Op::CommitPrefix { slot, per_mille } => {
                let Some(index) = self.pick(self.slots.len(), slot) else {
                    return;
                };
                let (slot, expected) = &mut self.slots[index];
                let len = expected.len() * per_mille / 1000;
                match self.writer.commit_prefix(slot, len) {
                    Ok(handle) => {
                        let frame: Vec<u8> = expected.drain(..len).collect();
                        self.handles.push((handle, Arc::new(frame)));
                    }
                    Err(error) => assert_eq!(error, FrameBufferError::ZeroLength),
                }
            }
            Op::Grow { slot, len } => {
                let Some(index) = self.pick(self.slots.len(), slot) else {
                    return;
                };
                let copied_before = self.writer.copied_bytes();
                let (slot, expected) = &mut self.slots[index];
                let capacity_before = slot.capacity();
                match self.writer.grow(slot, len) {
                    Ok(()) => assert_eq!(slot.capacity(), capacity_before.max(len)),
                    Err(FrameBufferError::Backpressure) => {
                        assert_eq!(slot.capacity(), capacity_before);
                    }
                    Err(other) => panic!("grow: {other}"),
                }
                let copied = self.writer.copied_bytes() - copied_before;
                assert!(copied == 0 || copied == expected.len() as u64);
            }
            Op::DropSlot(slot) => {
                if let Some(index) = self.pick(self.slots.len(), slot) {
                    self.slots.swap_remove(index);
                }
            }
            Op::Clone(handle) => {
                if let Some(index) = self.pick(self.handles.len(), handle) {
                    let (handle, expected) = &self.handles[index];
                    let pair = (handle.clone(), Arc::clone(expected));
                    self.handles.push(pair);
                }
            }
            Op::Drop(handle) => {
                if let Some(index) = self.pick(self.handles.len(), handle) {
                    self.handles.swap_remove(index);
                }
            }
            Op::SendAndDrop(handle) => {
                if let Some(index) = self.pick(self.handles.len(), handle) {
                    let (handle, expected) = self.handles.swap_remove(index);
                    thread::spawn(move || assert_eq!(handle.as_bytes(), &expected[..]))
                        .join()
                        .unwrap();
                }
            }
            Op::Reclaim => {
                self.writer.poll_reclaim();
            }
        }
    }

    fn pick(&self, len: usize, at: usize) -> Option<usize> {
        (len > 0).then(|| at % len)
    }

    fn check(&self) {
        let region = self.writer.region();
        for (handle, expected) in &self.handles {
            assert_eq!(handle.as_bytes(), &expected[..], "a live frame changed");
            assert!(handle.offset() + handle.len() <= region.region_bytes());
        }
        for (slot, expected) in &self.slots {
            assert_eq!(slot.filled_bytes(), &expected[..], "an open slot changed");
        }
        let counters = self.writer.counters();
        assert!(counters.segments_in_use <= region.segment_count() as u64);
        assert_eq!(region.region_bytes(), 4 * 4096, "the region never grows");
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_operations_never_change_a_live_frame(ops in prop::collection::vec(op(), 1..80)) {
        let mut model = Model {
            writer: writer(4, 4096, 9),
            slots: Vec::new(),
            handles: Vec::new(),
            next_byte: 0,
        };
        for op in ops {
            model.apply(op);
            model.check();
        }
        // Once everything is dropped, every segment drains.
        model.slots.clear();
        model.handles.clear();
        let Model { mut writer, .. } = model;
        writer.poll_reclaim();
        prop_assert_eq!(writer.sealed_segments(), 0);
        let region = Arc::clone(writer.region());
        drop(writer);
        for segment in 0..region.segment_count() {
            prop_assert_eq!(region.live_references(segment), Some(0));
        }
    }
}
