//! Frame buffers in shared memory: one fixed region per ingest core, frames placed in it by
//! the socket read, shared with other threads through refcounted handles, reused by whole
//! segments when their last handle drops.
//!
//! Owns: the region (a memfd mapped `MAP_SHARED`, [`FrameRegion`]), the owner-core writer
//! ([`FrameWriter`], [`WriteSlot`]), the cross-thread handle ([`FrameHandle`]), the
//! outgoing gather ([`OutFrame`]) and the counters ([`FrameCounters`]). Must not: know what
//! a frame contains, read sockets, or allocate per frame (the region, the segment live
//! counts and the writer's segment lists are sized once at creation).
//!
//! Always checks: every length against the slot window, the segment and the frame bound
//! (`FRAME_BUFFER_FRAME_BYTES_MAX`); that a slot is committed to the writer that opened it;
//! that a seq splice lies inside its frame. Does not check: frame contents.
//!
//! # Design (follows the shm plea: sizes decided up front, shared memory instead of
//! pipes, no serialise/copy step)
//!
//! * A region is `region_bytes` of one memfd (`relay-frames-<core>`, `MFD_CLOEXEC`),
//!   `ftruncate`d and mapped once; it never grows. It is cut into segments of
//!   `segment_bytes` (a largest frame plus slack).
//! * Segment states (kept by the writer, not in shared memory): free → active (frames
//!   are being placed at its bump offset) → sealed (no more placement; waiting for its
//!   live count to reach 0) → free. Each segment has one cache-line-padded atomic live
//!   count: open slots plus live handles, plus one *bias* held by the writer while the
//!   segment is active.
//! * [`FrameWriter::reserve`] places a window of the declared length at the bump offset
//!   of the active segment (sealing it and activating a free one when the window does not
//!   fit). The socket read lands in [`WriteSlot::unfilled_mut`]; [`FrameWriter::commit`]
//!   turns the slot's reference into a [`FrameHandle`] without any atomic operation, and
//!   gives back the unused tail of the window when the slot is the last one placed.
//!   Several slots may be open at once (one per socket being read); windows never overlap.
//! * [`FrameWriter::commit_prefix`] seals a frame off the front of a slot and keeps the
//!   bytes after it (the next message, read by the same `read`) in place as the start of
//!   the next frame: a read loop never copies.
//! * [`FrameWriter::grow`] enlarges a slot when a reader had to reserve before it knew
//!   the frame length. In place when the slot is the last window of the active segment and
//!   the segment has room; otherwise the bytes already read are moved to a new window: the
//!   only copy this module ever makes, counted in `bytes_copied`. A reader should therefore
//!   reserve the full length declared by the WebSocket header.
//! * When no segment is free, `reserve` and `grow` return [`FrameBufferError::Backpressure`]
//!   (counted): the caller stops reading its sockets (block, never drop) and retries after
//!   [`FrameWriter::poll_reclaim`] frees a segment. The writer also reclaims at every
//!   segment switch, so a just-drained (warm) segment is reused before an untouched one
//!   and resident memory stays at the working set rather than the region size.
//! * Cloning a handle is one relaxed increment of its segment's count; dropping it is one
//!   release decrement, on any thread. Nothing is freed across threads: the owner sees the
//!   count reach 0 in `poll_reclaim` and reuses the segment. The mapping outlives the
//!   writer: each segment epoch (activation until its count reaches 0) holds one strong
//!   reference of the region's `Arc`, so handles may be dropped after the writer is gone.
//!
//! # Safety argument (the unsafe code lives in `region`, `writer` and `handle`)
//!
//! 1. A window handed to a [`WriteSlot`] is placed at the bump offset, which only moves
//!    forward until the segment is reclaimed (a commit may pull it back only to the end of
//!    the frame it commits, when that slot is the last one placed), so no two windows and no
//!    window and committed frame overlap.
//! 2. Committed bytes are never written again while any handle to them is alive: the
//!    handle's live count keeps its segment out of the free list, and a segment is reused
//!    only after the owner observed its count at 0 (acquire, pairing with the release of
//!    every drop), which no one can raise again (only the owner raises a count of 0, by
//!    activating it).
//! 3. The mapping is unmapped only when the region's `Arc` strong count reaches 0: after
//!    the writer and every segment epoch (hence every slot and handle) are gone.

mod config;
mod counters;
mod error;
mod handle;
mod out;
mod region;
mod writer;

pub use config::{FrameRegionConfig, RegionId};
pub use counters::FrameCounters;
pub use error::FrameBufferError;
pub use handle::FrameHandle;
pub use out::OutFrame;
pub use region::FrameRegion;
pub use writer::{FrameWriter, WriteSlot};
