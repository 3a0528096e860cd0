//! [`FrameHandle`]: a committed frame, shared across threads by reference counting on its
//! segment.
//!
//! Owns: one live reference of the frame's segment per handle. Must not: write frame bytes
//! (a committed frame is immutable until its segment is reclaimed), free anything (the
//! owner core reuses a drained segment; the last epoch unmaps the region). Always checks:
//! nothing at runtime; every handle is built by the writer over bytes it placed.

#![allow(unsafe_code)]

use std::fmt;
use std::ptr::NonNull;

use super::RegionId;
use super::region::{FrameRegion, release};

/// An immutable frame in a core's shared-memory region. `Send + Sync`; cloning is one
/// relaxed atomic increment, dropping one release decrement, on any thread, with no heap
/// traffic. The bytes stay valid and unchanged while any clone is alive, even after the
/// writer is gone.
pub struct FrameHandle {
    region: NonNull<FrameRegion>,
    data: NonNull<u8>,
    len: u32,
    segment: u32,
}

// SAFETY: the handle owns a live reference of its segment, which keeps the mapping alive
// and the bytes immutable; it only reads them (`as_bytes`) and touches the region through
// atomics, so using and dropping it on any thread is sound.
unsafe impl Send for FrameHandle {}
// SAFETY: `&FrameHandle` only gives `&[u8]` to immutable bytes and atomic increments.
unsafe impl Sync for FrameHandle {}

impl FrameHandle {
    /// Wrap `len` committed bytes at `data` in `segment`.
    ///
    /// # Safety
    /// `region` is `Arc::as_ptr` of the region; the caller gives this handle one live
    /// reference of `segment` that it owns; `data..data + len` lies inside that segment and
    /// is never written again while the segment's count is above 0.
    pub(super) unsafe fn adopt(
        region: NonNull<FrameRegion>,
        segment: u32,
        data: NonNull<u8>,
        len: u32,
    ) -> Self {
        Self {
            region,
            data,
            len,
            segment,
        }
    }

    fn region(&self) -> &FrameRegion {
        // SAFETY: this handle's live reference keeps its segment's epoch, hence one strong
        // reference of the region, alive for as long as `self` is borrowed.
        unsafe { self.region.as_ref() }
    }

    /// The frame's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        // SAFETY: `data..data + len` lies inside the live mapping (checked when the writer
        // placed it), was fully written before commit, and is not written again while this
        // handle's reference keeps the segment's count above 0.
        unsafe { std::slice::from_raw_parts(self.data.as_ptr().cast_const(), self.len as usize) }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether the frame has no bytes (never true: empty commits are refused).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The core whose region holds the frame.
    pub fn region_id(&self) -> RegionId {
        self.region().id()
    }

    /// The segment holding the frame.
    pub fn segment(&self) -> usize {
        self.segment as usize
    }

    /// Byte offset of the frame from the start of its region (diagnostics).
    pub fn offset(&self) -> usize {
        self.region().offset_of(self.data)
    }
}

impl Clone for FrameHandle {
    fn clone(&self) -> Self {
        self.region().pin(self.segment);
        Self {
            region: self.region,
            data: self.data,
            len: self.len,
            segment: self.segment,
        }
    }
}

impl Drop for FrameHandle {
    fn drop(&mut self) {
        // SAFETY: `region` is the region's `Arc::as_ptr` and this handle owns one live
        // reference of `segment` (adopted or pinned at creation), released only here.
        unsafe { release(self.region, self.segment) };
    }
}

impl AsRef<[u8]> for FrameHandle {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl fmt::Debug for FrameHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameHandle")
            .field("region", &self.region_id())
            .field("segment", &self.segment)
            .field("offset", &self.offset())
            .field("len", &self.len)
            .finish()
    }
}
