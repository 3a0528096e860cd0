//! The frame-buffer counters: written by the owner core, read from any thread.
//!
//! Owns: the atomic cells and their plain snapshot. Must not: be written by anyone but the
//! region's writer (each cell has exactly one writer, so an add is a load and a store, not
//! a locked read-modify-write).

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of one region's counters (totals since creation, except the gauge).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameCounters {
    /// Frames committed.
    pub frames_committed: u64,
    /// Bytes of committed frames.
    pub bytes_committed: u64,
    /// Bytes moved by [`FrameWriter::grow`](super::FrameWriter::grow) because a slot did not
    /// fit where it was (`relay_frame_copied_bytes_total`).
    pub bytes_copied: u64,
    /// Reservations and growths refused with `Backpressure`.
    pub backpressure_events: u64,
    /// Sealed segments found drained and made free again.
    pub segments_reclaimed: u64,
    /// Gauge: segments active or sealed (not free).
    pub segments_in_use: u64,
}

/// One counter with a single writer.
#[derive(Debug, Default)]
pub(super) struct OwnerCounter(AtomicU64);

impl OwnerCounter {
    /// Add `n`; only the owner core calls this, so load + store loses nothing.
    pub(super) fn add(&self, n: u64) {
        let now = self.0.load(Ordering::Relaxed).wrapping_add(n);
        self.0.store(now, Ordering::Relaxed);
    }

    /// Set a gauge.
    pub(super) fn set(&self, n: u64) {
        self.0.store(n, Ordering::Relaxed);
    }

    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The cells, on their own cache lines: the writer bumps them per frame, while other cores
/// read the region's fixed fields on every handle drop.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(super) struct CounterCells {
    pub(super) frames_committed: OwnerCounter,
    pub(super) bytes_committed: OwnerCounter,
    pub(super) bytes_copied: OwnerCounter,
    pub(super) backpressure_events: OwnerCounter,
    pub(super) segments_reclaimed: OwnerCounter,
    pub(super) segments_in_use: OwnerCounter,
}

impl CounterCells {
    pub(super) fn snapshot(&self) -> FrameCounters {
        FrameCounters {
            frames_committed: self.frames_committed.get(),
            bytes_committed: self.bytes_committed.get(),
            bytes_copied: self.bytes_copied.get(),
            backpressure_events: self.backpressure_events.get(),
            segments_reclaimed: self.segments_reclaimed.get(),
            segments_in_use: self.segments_in_use.get(),
        }
    }
}
