//! Heap allocations per frame on the sans-IO ingest path in steady state, counted by a
//! counting global allocator (this test binary only): frame buffer → commit rules →
//! sequencer → event-log append (its writer thread included). zlay made about 37 per
//! frame (../shared/docs/seeds/zlay-memory-audit.txt); the figure is printed and recorded
//! in docs/BENCHMARKS.md, and the test fails if it grows past the recorded bound.

use relay::eventlog::{AccountKey, EventLog, EventLogConfig};
use relay::identity::key::Curve;
use relay::runtime::frames::{FrameRegionConfig, FrameWriter, RegionId};
use relay::sequencer::Sequencer;
use relay::sim::account::{SimAccount, SimOp};
use relay::verify::rules::{AccountState, Policy, VerifyScratch, verify_commit_frame_with};
use relay::verify::signature::{ParsedKey, VerifierSet};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
/// Allocations made by the thread that runs the data-plane steps (buffer → rules →
/// sequencer → append), apart from the log writer thread.
static PATH_ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static ON_PATH: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn count(n: u64) {
    ALLOCATIONS.fetch_add(n, Ordering::Relaxed);
    if ON_PATH.try_with(|on| on.get()).unwrap_or(false) {
        PATH_ALLOCATIONS.fetch_add(n, Ordering::Relaxed);
    }
}

// SAFETY: forwards to the system allocator; only counts.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(1);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(1);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const NOW: u64 = 1_763_800_000_000_000;
const FRAMES: usize = 2_000;
const WARM_UP: usize = 200;

/// Upper bound on the all-threads figure: the log writer's per-batch bookkeeping, which
/// is below one per frame in a release build and about one in a debug build (where
/// batches are small). The data-plane thread itself allocates only when a reusable buffer grows.
const ALLOCATIONS_PER_FRAME_MAX: f64 = 1.5;

#[test]
fn allocations_per_frame_on_the_ingest_path() {
    let mut account = SimAccount::new(7, Curve::Secp256k1, "pds.test").unwrap();
    let key = ParsedKey::new(&account.public_key(), &VerifierSet::FASTEST).unwrap();
    let frames: Vec<Vec<u8>> = (0..FRAMES)
        .map(|i| {
            account
                .commit(
                    &[SimOp::Create { size_bytes: 400 }],
                    NOW + i as u64 * 1000,
                    i as u64 + 1,
                )
                .unwrap()
        })
        .collect();
    let policy = Policy {
        now_micros: NOW + 10_000_000,
        strict: true,
    };

    let dir = std::env::temp_dir().join(format!("relay-alloc-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (log, recovery) = EventLog::open(&EventLogConfig::new(&dir)).unwrap();
    let mut sequencer = Sequencer::new(recovery.next_seq);
    let mut appender = log
        .start_writer::<relay::sequencer::Sequenced>(None)
        .unwrap();
    let mut writer = FrameWriter::new(RegionId::new(0), FrameRegionConfig::default()).unwrap();
    let mut state: Option<AccountState> = None;
    let mut scratch = VerifyScratch::new();

    let mut counted_from = 0;
    for (index, bytes) in frames.iter().enumerate() {
        if index == WARM_UP {
            counted_from = ALLOCATIONS.load(Ordering::Relaxed);
            ON_PATH.with(|on| on.set(true));
        }
        let mut slot = loop {
            match writer.reserve(bytes.len()) {
                Ok(slot) => break slot,
                Err(_) => {
                    writer.poll_reclaim();
                    std::thread::yield_now();
                }
            }
        };
        slot.unfilled_mut()[..bytes.len()].copy_from_slice(bytes);
        slot.advance(bytes.len()).unwrap();
        let handle = writer.commit(slot, bytes.len()).unwrap();
        let verified =
            verify_commit_frame_with(handle, &key, state.as_ref(), &policy, &mut scratch)
                .map_err(|(_, r)| r)
                .unwrap();
        state = verified.next_state();
        let sequenced = sequencer.assign(verified, AccountKey::new(1)).unwrap();
        appender.append(sequenced).unwrap();
    }
    ON_PATH.with(|on| on.set(false));
    appender.close().unwrap();
    let counted = ALLOCATIONS.load(Ordering::Relaxed) - counted_from;
    let on_path = PATH_ALLOCATIONS.load(Ordering::Relaxed);
    let per_frame = counted as f64 / (FRAMES - WARM_UP) as f64;
    println!(
        "suite allocations per frame (buffer → rules → sequencer → log): {per_frame:.2} on all threads, {on_path} in all on the data-plane thread, over {} frames",
        FRAMES - WARM_UP
    );
    // What remains on the data-plane thread is the reusable buffers growing when a frame
    // larger than any before arrives (the repo, hence the MST proof, keeps growing here).
    let on_path_per_frame = on_path as f64 / (FRAMES - WARM_UP) as f64;
    assert!(
        on_path_per_frame <= 0.05,
        "the data-plane thread allocated {on_path_per_frame:.3} per frame in steady state"
    );
    assert!(
        per_frame <= ALLOCATIONS_PER_FRAME_MAX,
        "{per_frame:.2} allocations per frame"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
