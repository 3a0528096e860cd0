//! The shared-memory region of one core: a memfd mapped `MAP_SHARED`, cut into segments,
//! and the per-segment live counts that decide when a segment may be reused.
//!
//! Owns: the mapping's lifetime (unmapped with the last strong reference), the live counts
//! and the two operations on them that carry the lifetime protocol (`activate`, `release`).
//! Must not: hand out slices (the writer and the handles do, under their own invariants).
//! Always checks: segment indexes and placements against the region (a bad one yields
//! `None` or does nothing, never an access outside the mapping); that a count being raised
//! is not 0, and that a segment being activated has none. Does not check: that only the
//! owner calls `activate` (the writer's job).

#![allow(unsafe_code)]

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering, fence};

use super::counters::CounterCells;
use super::{FrameBufferError, FrameCounters, FrameRegionConfig, RegionId};

/// A count that would overflow is a leak of handles by the billions: abort like `Arc`.
const LIVE_COUNT_LIMIT: usize = isize::MAX as usize;

/// One segment's live count on its own cache lines (128 bytes: adjacent-line prefetch pairs
/// lines on x86), so frames of different segments dropped on different cores do not
/// contend.
#[derive(Debug)]
#[repr(align(128))]
struct SegmentLive {
    count: AtomicUsize,
}

/// The memory of one core's frames. Shared as `Arc<FrameRegion>`; read-only for everyone
/// but the owner's [`FrameWriter`](super::FrameWriter).
#[derive(Debug)]
pub struct FrameRegion {
    id: RegionId,
    base: NonNull<u8>,
    region_bytes: usize,
    segment_bytes: usize,
    live: Box<[SegmentLive]>,
    counters: CounterCells,
    fd: OwnedFd,
}

// SAFETY: `base` is the address of a MAP_SHARED mapping owned by this value (unmapped only
// in Drop); the region never reads or writes the frame bytes itself, and every other field
// is Send + Sync. Accesses to the bytes are governed by the writer/handle invariants.
unsafe impl Send for FrameRegion {}
// SAFETY: as above; all shared mutation goes through atomics.
unsafe impl Sync for FrameRegion {}

impl FrameRegion {
    /// Create the memfd, size it and map it once.
    pub(super) fn create(
        id: RegionId,
        config: &FrameRegionConfig,
    ) -> Result<Arc<Self>, FrameBufferError> {
        let fd = create_memfd(id)?;
        set_file_len(&fd, config.region_bytes())?;
        let base = map_shared(&fd, config.region_bytes())?;
        let live = (0..config.segment_count())
            .map(|_| SegmentLive {
                count: AtomicUsize::new(0),
            })
            .collect();
        Ok(Arc::new(Self {
            id,
            base,
            region_bytes: config.region_bytes(),
            segment_bytes: config.segment_bytes(),
            live,
            counters: CounterCells::default(),
            fd,
        }))
    }

    /// The owning core.
    pub fn id(&self) -> RegionId {
        self.id
    }

    /// Bytes of the region (fixed at creation: the region never grows).
    pub fn region_bytes(&self) -> usize {
        self.region_bytes
    }

    /// Bytes of one segment.
    pub fn segment_bytes(&self) -> usize {
        self.segment_bytes
    }

    /// Segments in the region.
    pub fn segment_count(&self) -> usize {
        self.live.len()
    }

    /// A snapshot of the counters (any thread).
    pub fn counters(&self) -> FrameCounters {
        self.counters.snapshot()
    }

    /// Live references (open slots, handles, and the writer's bias while active) of a
    /// segment, for diagnostics; `None` for an index outside the region.
    pub fn live_references(&self, segment: usize) -> Option<usize> {
        self.live
            .get(segment)
            .map(|live| live.count.load(Ordering::Relaxed))
    }

    pub(super) fn cells(&self) -> &CounterCells {
        &self.counters
    }

    /// The address of `len` bytes at `offset` in `segment`, if they lie inside it.
    pub(super) fn placement(&self, segment: u32, offset: u32, len: u32) -> Option<NonNull<u8>> {
        let segment = usize::try_from(segment).ok()?;
        let offset = usize::try_from(offset).ok()?;
        let end = offset.checked_add(usize::try_from(len).ok()?)?;
        if segment >= self.live.len() || end > self.segment_bytes {
            return None;
        }
        let at = segment
            .checked_mul(self.segment_bytes)?
            .checked_add(offset)?;
        NonNull::new(self.base.as_ptr().wrapping_add(at))
    }

    /// Byte offset of `address` from the start of the region.
    pub(super) fn offset_of(&self, address: NonNull<u8>) -> usize {
        address
            .as_ptr()
            .addr()
            .wrapping_sub(self.base.as_ptr().addr())
    }

    /// The count of `segment` (acquire: pairs with the release of every drop, so once 0 is
    /// seen every read through the dropped references happened before).
    pub(super) fn live_count(&self, segment: u32) -> usize {
        usize::try_from(segment)
            .ok()
            .and_then(|index| self.live.get(index))
            .map_or(usize::MAX, |live| live.count.load(Ordering::Acquire))
    }

    /// Start an epoch of a drained segment: its count goes from 0 to 1 (the writer's bias),
    /// and the epoch takes one strong reference of the region, given back by whoever drops
    /// the count to 0 again (see [`release`]). Refuses (`false`) a segment that still has
    /// live references, so a broken caller cannot reuse memory under a reader.
    pub(super) fn activate(self: &Arc<Self>, segment: u32) -> bool {
        let Some(live) = usize::try_from(segment)
            .ok()
            .and_then(|index| self.live.get(index))
        else {
            return false;
        };
        // Acquire: every access through the references that drained it happens before the
        // owner writes the segment again.
        if live
            .count
            .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        // The raw pointer is `Arc::as_ptr`, which `release` passes back to
        // `Arc::decrement_strong_count`.
        let _epoch = Arc::into_raw(Arc::clone(self));
        true
    }

    /// Take one more live reference of a segment the caller already holds one of.
    pub(super) fn pin(&self, segment: u32) {
        let Some(live) = usize::try_from(segment)
            .ok()
            .and_then(|index| self.live.get(index))
        else {
            return;
        };
        let before = live.count.fetch_add(1, Ordering::Relaxed);
        // Raising a count of 0 would revive a segment whose epoch already gave back its
        // region reference: a broken invariant, and unsound to continue.
        if before == 0 || before > LIVE_COUNT_LIMIT {
            std::process::abort();
        }
    }
}

/// Give up one live reference of `segment`. The last one ends the segment's epoch and
/// gives back the region reference the epoch held; the mapping may be gone on return.
///
/// # Safety
/// `region` is `Arc::as_ptr` of the region, and the caller owns one live reference of
/// `segment` (from `activate`, a slot or a handle) that it never uses again.
pub(super) unsafe fn release(region: NonNull<FrameRegion>, segment: u32) {
    // SAFETY: the caller's live reference keeps the segment's epoch, and with it one strong
    // reference of the region, alive until the decrement below; the borrow ends first.
    let region_ref = unsafe { region.as_ref() };
    let Some(live) = usize::try_from(segment)
        .ok()
        .and_then(|index| region_ref.live.get(index))
    else {
        return;
    };
    if live.count.fetch_sub(1, Ordering::Release) != 1 {
        return;
    }
    // Every access through the other references of this epoch happens before the region
    // may be unmapped below.
    fence(Ordering::Acquire);
    // SAFETY: the epoch took exactly one strong reference (`activate`), and only the
    // decrement that took its count from 1 to 0 (this one, once per epoch) gives it back.
    unsafe { Arc::decrement_strong_count(region.as_ptr().cast_const()) };
}

fn system_error(call: &'static str) -> FrameBufferError {
    FrameBufferError::SystemCall {
        call,
        errno: std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
    }
}

fn create_memfd(id: RegionId) -> Result<OwnedFd, FrameBufferError> {
    // The name shows in /proc/<pid>/maps and smaps, so each core's frame RSS is visible.
    let name = CString::new(format!("relay-frames-{}", id.get())).map_err(|_| {
        FrameBufferError::SystemCall {
            call: "memfd_create",
            errno: libc::EINVAL,
        }
    })?;
    // SAFETY: `name` is NUL-terminated and outlives the call; no other memory is passed.
    let raw = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
    if raw < 0 {
        return Err(system_error("memfd_create"));
    }
    // SAFETY: `raw` is a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

fn set_file_len(fd: &OwnedFd, len: usize) -> Result<(), FrameBufferError> {
    let len = libc::off_t::try_from(len).map_err(|_| FrameBufferError::SystemCall {
        call: "ftruncate",
        errno: libc::EFBIG,
    })?;
    // SAFETY: a plain call on a descriptor we own; no memory is passed.
    if unsafe { libc::ftruncate(fd.as_raw_fd(), len) } != 0 {
        return Err(system_error("ftruncate"));
    }
    Ok(())
}

fn map_shared(fd: &OwnedFd, len: usize) -> Result<NonNull<u8>, FrameBufferError> {
    // SAFETY: a new mapping at an address the kernel picks (null hint), covering the file's
    // whole length; no existing memory is affected.
    let address = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd.as_raw_fd(),
            0,
        )
    };
    if address == libc::MAP_FAILED {
        return Err(system_error("mmap"));
    }
    NonNull::new(address.cast::<u8>()).ok_or(FrameBufferError::SystemCall {
        call: "mmap",
        errno: 0,
    })
}

impl AsFd for FrameRegion {
    /// The memfd, for a later io_uring file registration or a sibling process.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Drop for FrameRegion {
    fn drop(&mut self) {
        // SAFETY: this is the mapping made in `create`, with its length. The region drops
        // only with its last strong reference; the writer, every slot and every handle
        // hold one (directly or through their segment's epoch), so no slice into the
        // mapping is alive.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.region_bytes) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placements_stay_inside_their_segment() {
        let config = FrameRegionConfig::new(2 * 4096, 4096).unwrap();
        let region = FrameRegion::create(RegionId::new(0), &config).unwrap();
        let start = region.placement(0, 0, 4096).unwrap();
        assert_eq!(region.offset_of(start), 0);
        let second = region.placement(1, 10, 4086).unwrap();
        assert_eq!(region.offset_of(second), 4096 + 10);
        assert!(region.placement(1, 10, 4087).is_none());
        assert!(region.placement(2, 0, 1).is_none());
        assert!(region.placement(0, u32::MAX, u32::MAX).is_none());
        assert_eq!(
            region.live_count(2),
            usize::MAX,
            "an unknown segment is never free"
        );
        assert_eq!(region.live_references(2), None);
    }

    #[test]
    fn each_epoch_holds_one_region_reference() {
        let config = FrameRegionConfig::new(2 * 4096, 4096).unwrap();
        let region = FrameRegion::create(RegionId::new(0), &config).unwrap();
        let pointer = NonNull::new(Arc::as_ptr(&region).cast_mut()).unwrap();
        assert!(region.activate(1));
        assert!(
            !region.activate(1),
            "a segment with live references is not reused"
        );
        region.pin(1);
        assert_eq!((Arc::strong_count(&region), region.live_count(1)), (2, 2));
        // SAFETY: releases the pin and then the bias taken just above.
        unsafe { release(pointer, 1) };
        assert_eq!(Arc::strong_count(&region), 2);
        // SAFETY: as above.
        unsafe { release(pointer, 1) };
        assert_eq!((Arc::strong_count(&region), region.live_count(1)), (1, 0));
        assert!(!region.activate(2), "no such segment");
    }
}
