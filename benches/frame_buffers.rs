//! Frame buffers: the per-frame cost of reserve + commit + clone + drop (the handle's life
//! on the ingest core and one consumer), for 1 KiB and 1 MiB frames; and the same with the
//! window filled by a memcpy standing in for the socket read, for scale.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use relay::runtime::frames::{FrameRegionConfig, FrameWriter, RegionId};

const SIZES: [(&str, usize); 2] = [("1KiB", 1024), ("1MiB", 1024 * 1024)];

fn new_writer() -> FrameWriter {
    FrameWriter::new(RegionId::new(0), FrameRegionConfig::default()).unwrap()
}

/// One frame's life; `read` stands in for the socket read into the window. Every handle
/// is dropped, so `reserve` always finds a segment to reclaim.
fn frame_cycle(writer: &mut FrameWriter, len: usize, read: Option<&[u8]>) {
    let mut slot = writer.reserve(len).unwrap();
    if let Some(bytes) = read {
        slot.unfilled_mut()[..len].copy_from_slice(bytes);
    }
    slot.advance(len).unwrap();
    let handle = writer.commit(slot, len).unwrap();
    let clone = handle.clone();
    black_box(clone.as_bytes().as_ptr());
    drop(handle);
    drop(clone);
}

fn reserve_commit_clone_drop(c: &mut Criterion) {
    let mut group = c.benchmark_group("frame_buffers/reserve_commit_clone_drop");
    for (name, len) in SIZES {
        let mut writer = new_writer();
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), &len, |b, &len| {
            b.iter(|| frame_cycle(&mut writer, len, None));
        });
    }
    group.finish();
}

fn with_read_copy(c: &mut Criterion) {
    let mut group = c.benchmark_group("frame_buffers/with_memcpy_read");
    for (name, len) in SIZES {
        let mut writer = new_writer();
        let source = vec![0x5au8; len];
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), &len, |b, &len| {
            b.iter(|| frame_cycle(&mut writer, len, Some(&source)));
        });
    }
    group.finish();
}

criterion_group!(benches, reserve_commit_clone_drop, with_read_copy);
criterion_main!(benches);
