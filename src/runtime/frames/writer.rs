//! The owner-core side: [`FrameWriter`] places windows in the active segment, seals frames
//! into [`FrameHandle`]s and reclaims drained segments; [`WriteSlot`] is the window a socket
//! read fills.
//!
//! Owns: the segment states (free list, active segment with its bump offset, sealed list),
//! all writes into the region, and the one counted copy (`grow` moving a slot). Must not:
//! be used off the owner core (`!Send`), allocate after creation (both segment lists have
//! their full capacity up front), or write a byte of a committed frame. Always checks:
//! lengths against the frame bound, the window and the filled bytes; that a slot belongs to
//! this writer. Does not check: what the bytes are.

#![allow(unsafe_code)]

use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::Arc;

use super::region::{FrameRegion, release};
use super::{FrameBufferError, FrameCounters, FrameHandle, FrameRegionConfig, RegionId};

/// The segment frames are being placed in.
#[derive(Clone, Copy, Debug)]
struct ActiveSegment {
    index: u32,
    /// Offset of the first byte no window covers.
    bump: u32,
}

/// The writer of one core's region. Lives on that core only (`!Send`).
#[derive(Debug)]
pub struct FrameWriter {
    region: Arc<FrameRegion>,
    /// `Arc::as_ptr(&region)`, the pointer slots and handles carry.
    region_ptr: NonNull<FrameRegion>,
    active: Option<ActiveSegment>,
    /// Free segments; the most recently drained is reused first (its pages are warm).
    free: Vec<u32>,
    sealed: Vec<u32>,
    segment_bytes: u32,
    frame_bytes_max: u32,
    _owner_core_only: PhantomData<*const ()>,
}

/// A window of the active (or a sealed) segment that one socket read after another fills
/// before the frame is committed. Holds a live reference of its segment, so the memory
/// stays reserved while the slot is open; dropping an uncommitted slot gives it back.
/// Stays on the owner core (`!Send`).
#[derive(Debug)]
pub struct WriteSlot {
    region: NonNull<FrameRegion>,
    /// First byte of the window.
    data: NonNull<u8>,
    segment: u32,
    start: u32,
    capacity: u32,
    filled: u32,
}

impl WriteSlot {
    /// Bytes the window holds.
    pub fn capacity(&self) -> usize {
        self.capacity as usize
    }

    /// Bytes written so far.
    pub fn filled(&self) -> usize {
        self.filled as usize
    }

    /// The bytes written so far.
    pub fn filled_bytes(&self) -> &[u8] {
        // SAFETY: the window lies inside the live mapping (the slot's reference keeps it
        // mapped and its segment out of reuse); `filled <= capacity`; no other slot or frame
        // overlaps the window, and writes need `&mut self`.
        unsafe { std::slice::from_raw_parts(self.data.as_ptr().cast_const(), self.filled()) }
    }

    /// The rest of the window: where the next socket read lands. Follow with
    /// [`advance`](Self::advance).
    pub fn unfilled_mut(&mut self) -> &mut [u8] {
        let spare = self.capacity.saturating_sub(self.filled) as usize;
        let at = self.data.as_ptr().wrapping_add(self.filled());
        // SAFETY: `at..at + spare` is the unfilled part of the window, inside the live
        // mapping; windows never overlap each other or committed frames (bump placement),
        // so this `&mut` borrow of `self` is the only reference to these bytes. Mapped
        // bytes are always initialised (zeroed by the kernel, or old frames).
        unsafe { std::slice::from_raw_parts_mut(at, spare) }
    }

    /// Record that `n` more bytes were written at the start of
    /// [`unfilled_mut`](Self::unfilled_mut).
    pub fn advance(&mut self, n: usize) -> Result<(), FrameBufferError> {
        let spare = self.capacity.saturating_sub(self.filled);
        match u32::try_from(n) {
            Ok(n) if n <= spare => {
                self.filled += n;
                Ok(())
            }
            _ => Err(FrameBufferError::AdvanceBeyondWindow {
                requested: n,
                spare: spare as usize,
            }),
        }
    }

    fn end(&self) -> u32 {
        self.start.saturating_add(self.capacity)
    }
}

impl Drop for WriteSlot {
    fn drop(&mut self) {
        // SAFETY: `region` is the region's `Arc::as_ptr`; the slot owns one live reference
        // of `segment` (pinned when placed), given up only here: a commit forgets the slot
        // after moving that reference into the handle.
        unsafe { release(self.region, self.segment) };
    }
}

impl FrameWriter {
    /// Create core `id`'s region (memfd, ftruncate, mmap) and its writer. Call on the core
    /// that will own it.
    pub fn new(id: RegionId, config: FrameRegionConfig) -> Result<Self, FrameBufferError> {
        let segments = u32::try_from(config.segment_count()).map_err(|_| {
            FrameBufferError::RegionTooLarge {
                region_bytes: config.region_bytes(),
            }
        })?;
        let segment_bytes = u32::try_from(config.segment_bytes()).map_err(|_| {
            FrameBufferError::SegmentSizeInvalid {
                segment_bytes: config.segment_bytes(),
            }
        })?;
        let frame_bytes_max = u32::try_from(config.frame_bytes_max()).unwrap_or(segment_bytes);
        let region = FrameRegion::create(id, &config)?;
        let region_ptr =
            NonNull::new(Arc::as_ptr(&region).cast_mut()).ok_or(FrameBufferError::OutOfRegion)?;
        let mut free = Vec::with_capacity(segments as usize);
        free.extend((0..segments).rev());
        Ok(Self {
            region,
            region_ptr,
            active: None,
            free,
            sealed: Vec::with_capacity(segments as usize),
            segment_bytes,
            frame_bytes_max,
            _owner_core_only: PhantomData,
        })
    }

    /// The region, for readers of its counters and its memfd (any thread).
    pub fn region(&self) -> &Arc<FrameRegion> {
        &self.region
    }

    /// The largest frame (and window) this writer places.
    pub fn frame_bytes_max(&self) -> usize {
        self.frame_bytes_max as usize
    }

    /// Segments free for the next activation.
    pub fn free_segments(&self) -> usize {
        self.free.len()
    }

    /// Segments sealed and still holding live frames (as of the last reclaim).
    pub fn sealed_segments(&self) -> usize {
        self.sealed.len()
    }

    /// Bytes moved so far because a slot had to grow where it did not fit.
    pub fn copied_bytes(&self) -> u64 {
        self.region.cells().snapshot().bytes_copied
    }

    /// A snapshot of the counters.
    pub fn counters(&self) -> FrameCounters {
        self.region.counters()
    }

    /// Open a window of `len_max` bytes for a frame of at most that length. Reserve the
    /// full length the WebSocket header declares, so the frame never has to move.
    pub fn reserve(&mut self, len_max: usize) -> Result<WriteSlot, FrameBufferError> {
        let len = self.check_len(len_max)?;
        let (segment, start) = self.place(len)?;
        self.open_slot(segment, start, len)
    }

    /// Place a frame the relay built itself (its own `#account` events) in a fresh slot.
    /// This writes new bytes; it is not a copy of received ones, so `bytes_copied` does
    /// not count it.
    pub fn place_frame(&mut self, bytes: &[u8]) -> Result<FrameHandle, FrameBufferError> {
        let mut slot = self.reserve(bytes.len())?;
        let window = slot
            .unfilled_mut()
            .get_mut(..bytes.len())
            .ok_or(FrameBufferError::OutOfRegion)?;
        window.copy_from_slice(bytes);
        slot.advance(bytes.len())?;
        self.commit(slot, bytes.len())
    }

    /// Seal the first `used_len` filled bytes of `slot` as a frame. The rest of the window
    /// is given back when the slot was the last one placed in the active segment.
    pub fn commit(
        &mut self,
        slot: WriteSlot,
        used_len: usize,
    ) -> Result<FrameHandle, FrameBufferError> {
        self.check_own(&slot)?;
        let len = check_used(used_len, slot.filled)?;
        if let Some(active) = &mut self.active
            && active.index == slot.segment
            && active.bump == slot.end()
        {
            active.bump = slot.start.saturating_add(len);
        }
        // SAFETY: the slot's live reference moves into the handle (the slot is forgotten
        // below, so it is not released twice); `data..data + len` lies in the slot's window,
        // filled, and no later window overlaps it.
        let handle = unsafe { FrameHandle::adopt(self.region_ptr, slot.segment, slot.data, len) };
        std::mem::forget(slot);
        self.count_commit(len);
        Ok(handle)
    }

    /// Seal the first `frame_len` filled bytes of `slot` as a frame and keep the slot open
    /// on the bytes after them (the start of the next message, read by the same socket
    /// read), in place: a read loop over a stream of messages copies nothing.
    pub fn commit_prefix(
        &mut self,
        slot: &mut WriteSlot,
        frame_len: usize,
    ) -> Result<FrameHandle, FrameBufferError> {
        self.check_own(slot)?;
        let len = check_used(frame_len, slot.filled)?;
        let start = slot.start.saturating_add(len);
        let capacity = slot.capacity.saturating_sub(len);
        let data = self
            .region
            .placement(slot.segment, start, capacity)
            .ok_or(FrameBufferError::OutOfRegion)?;
        // The handle's own reference; the slot keeps the one it holds.
        self.region.pin(slot.segment);
        // SAFETY: the reference just pinned is the handle's; `slot.data..+len` is filled and
        // leaves the window below, so nothing writes it again while the count is above 0.
        let handle = unsafe { FrameHandle::adopt(self.region_ptr, slot.segment, slot.data, len) };
        slot.data = data;
        slot.start = start;
        slot.capacity = capacity;
        slot.filled = slot.filled.saturating_sub(len);
        self.count_commit(len);
        Ok(handle)
    }

    /// Enlarge `slot` to `len_max` bytes, keeping its filled bytes: in place when it is the
    /// last window of the active segment and the segment has room, otherwise by moving the
    /// filled bytes to a new window (counted in `bytes_copied`). On `Backpressure` the slot
    /// is unchanged.
    pub fn grow(&mut self, slot: &mut WriteSlot, len_max: usize) -> Result<(), FrameBufferError> {
        self.check_own(slot)?;
        let len = self.check_len(len_max)?;
        if len <= slot.capacity || self.extend_in_place(slot, len) {
            if len > slot.capacity {
                slot.capacity = len;
            }
            return Ok(());
        }
        self.move_slot(slot, len)
    }

    /// Free every sealed segment whose live count reached 0; returns how many. Call when
    /// `reserve` reported `Backpressure` (and from time to time), never on another core.
    pub fn poll_reclaim(&mut self) -> usize {
        let before = self.free.len();
        let region = &self.region;
        let free = &mut self.free;
        self.sealed.retain(|&segment| {
            if region.live_count(segment) != 0 {
                return true;
            }
            // Capacity is the segment count, so this never allocates.
            free.push(segment);
            false
        });
        let freed = self.free.len().saturating_sub(before);
        let cells = self.region.cells();
        cells.segments_reclaimed.add(freed as u64);
        cells.segments_in_use.set(self.segments_in_use());
        freed
    }

    fn segments_in_use(&self) -> u64 {
        (self.region.segment_count().saturating_sub(self.free.len())) as u64
    }

    fn check_len(&self, len_max: usize) -> Result<u32, FrameBufferError> {
        match u32::try_from(len_max) {
            Ok(0) => Err(FrameBufferError::ZeroLength),
            Ok(len) if len <= self.frame_bytes_max => Ok(len),
            _ => Err(FrameBufferError::FrameTooLarge {
                requested: len_max,
                max: self.frame_bytes_max as usize,
            }),
        }
    }

    fn check_own(&self, slot: &WriteSlot) -> Result<(), FrameBufferError> {
        if slot.region == self.region_ptr {
            Ok(())
        } else {
            Err(FrameBufferError::ForeignSlot)
        }
    }

    fn count_commit(&self, len: u32) {
        let cells = self.region.cells();
        cells.frames_committed.add(1);
        cells.bytes_committed.add(u64::from(len));
    }

    /// Where a window of `len` bytes goes: the bump offset of the active segment, or the
    /// start of a freshly activated one (sealing the old one only once a fresh one exists).
    fn place(&mut self, len: u32) -> Result<(u32, u32), FrameBufferError> {
        let segment_bytes = self.segment_bytes;
        if let Some(active) = &mut self.active
            && let Some(end) = active
                .bump
                .checked_add(len)
                .filter(|&end| end <= segment_bytes)
        {
            let start = active.bump;
            active.bump = end;
            return Ok((active.index, start));
        }
        let fresh = self.take_free_segment()?;
        if !self.region.activate(fresh) {
            // Not drained after all (a broken invariant): leave it to a later reclaim.
            self.sealed.push(fresh);
            return Err(FrameBufferError::OutOfRegion);
        }
        self.seal_active();
        self.active = Some(ActiveSegment {
            index: fresh,
            bump: len,
        });
        Ok((fresh, 0))
    }

    /// Reclaim first, so a just-drained segment (warm in cache, pages already faulted in)
    /// is reused before one never touched: RSS stays at the working set, not the region.
    /// Once per segment switch, over at most the segment count.
    fn take_free_segment(&mut self) -> Result<u32, FrameBufferError> {
        self.poll_reclaim();
        let Some(segment) = self.free.pop() else {
            self.region.cells().backpressure_events.add(1);
            return Err(FrameBufferError::Backpressure);
        };
        self.region
            .cells()
            .segments_in_use
            .set(self.segments_in_use());
        Ok(segment)
    }

    fn seal_active(&mut self) {
        if let Some(active) = self.active.take() {
            // Capacity is the segment count, so this never allocates.
            self.sealed.push(active.index);
            // SAFETY: the bias `activate` gave the writer is its live reference of the
            // active segment, given up exactly once: the segment just left `active`.
            unsafe { release(self.region_ptr, active.index) };
        }
    }

    /// A slot over a placed window, holding its own live reference of the segment.
    fn open_slot(
        &self,
        segment: u32,
        start: u32,
        capacity: u32,
    ) -> Result<WriteSlot, FrameBufferError> {
        let data = self
            .region
            .placement(segment, start, capacity)
            .ok_or(FrameBufferError::OutOfRegion)?;
        self.region.pin(segment);
        Ok(WriteSlot {
            region: self.region_ptr,
            data,
            segment,
            start,
            capacity,
            filled: 0,
        })
    }

    fn extend_in_place(&mut self, slot: &WriteSlot, len: u32) -> bool {
        let segment_bytes = self.segment_bytes;
        let Some(active) = &mut self.active else {
            return false;
        };
        let end = slot
            .start
            .checked_add(len)
            .filter(|&end| end <= segment_bytes);
        match end {
            Some(end) if active.index == slot.segment && active.bump == slot.end() => {
                active.bump = end;
                true
            }
            _ => false,
        }
    }

    /// Move the filled bytes of `slot` to a new window of `len` bytes: the one copy.
    fn move_slot(&mut self, slot: &mut WriteSlot, len: u32) -> Result<(), FrameBufferError> {
        let (segment, start) = self.place(len)?;
        let target = self
            .region
            .placement(segment, start, len)
            .ok_or(FrameBufferError::OutOfRegion)?;
        // SAFETY: the source is the slot's filled bytes, the target a window of `len >
        // filled` bytes just placed; both lie in the live mapping, and bump placement never
        // gives two windows overlapping bytes, so the ranges are disjoint.
        unsafe {
            std::ptr::copy_nonoverlapping(
                slot.data.as_ptr().cast_const(),
                target.as_ptr(),
                slot.filled(),
            );
        }
        self.region.pin(segment);
        // SAFETY: the slot's reference of its old segment, replaced by the one just pinned.
        unsafe { release(self.region_ptr, slot.segment) };
        self.region.cells().bytes_copied.add(u64::from(slot.filled));
        slot.data = target;
        slot.segment = segment;
        slot.start = start;
        slot.capacity = len;
        Ok(())
    }
}

impl Drop for FrameWriter {
    fn drop(&mut self) {
        // Slots and handles may outlive the writer; the active segment's epoch then ends
        // with its last one.
        self.seal_active();
    }
}

/// A commit length: 1 ..= the slot's filled bytes.
fn check_used(used_len: usize, filled: u32) -> Result<u32, FrameBufferError> {
    match u32::try_from(used_len) {
        Ok(0) => Err(FrameBufferError::ZeroLength),
        Ok(len) if len <= filled => Ok(len),
        _ => Err(FrameBufferError::CommitBeyondFilled {
            requested: used_len,
            filled: filled as usize,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer() -> FrameWriter {
        let config = FrameRegionConfig::new(3 * 4096, 4096).unwrap();
        FrameWriter::new(RegionId::new(0), config).unwrap()
    }

    fn committed(writer: &mut FrameWriter, len: usize) -> FrameHandle {
        let mut slot = writer.reserve(len).unwrap();
        slot.advance(len).unwrap();
        writer.commit(slot, len).unwrap()
    }

    #[test]
    fn segments_move_free_active_sealed_free() {
        let mut writer = writer();
        assert_eq!((writer.free.len(), writer.active.is_none()), (3, true));
        let first = committed(&mut writer, 3000);
        let active = writer.active.unwrap();
        assert_eq!((active.index, active.bump), (0, 3000));
        // Bias + one handle.
        assert_eq!(writer.region.live_references(0), Some(2));
        let second = committed(&mut writer, 3000);
        assert_eq!(writer.active.unwrap().index, 1);
        assert_eq!(writer.sealed, vec![0]);
        assert_eq!(
            writer.region.live_references(0),
            Some(1),
            "bias given back on seal"
        );
        drop(first);
        assert_eq!(writer.region.live_references(0), Some(0));
        assert_eq!(writer.poll_reclaim(), 1);
        assert_eq!((writer.free.clone(), writer.sealed.len()), (vec![2, 0], 0));
        drop(second);
        let third = committed(&mut writer, 3000);
        assert_eq!(
            third.segment(),
            0,
            "the most recently drained segment first"
        );
    }

    #[test]
    fn a_drained_segment_is_reused_before_an_untouched_one() {
        let mut writer = writer();
        for _ in 0..50 {
            let handle = committed(&mut writer, 3000);
            assert!(handle.segment() < 2, "segment {}", handle.segment());
        }
        assert!(writer.counters().segments_reclaimed > 10);
    }

    #[test]
    fn an_open_slot_pins_its_segment() {
        let mut writer = writer();
        let slot = writer.reserve(4096).unwrap();
        let _next = writer.reserve(1).unwrap();
        assert_eq!(writer.region.live_references(0), Some(1));
        assert_eq!(writer.poll_reclaim(), 0);
        drop(slot);
        assert_eq!(writer.poll_reclaim(), 1);
    }

    #[test]
    fn the_writer_never_allocates_its_lists_again() {
        let mut writer = writer();
        let capacities = (writer.free.capacity(), writer.sealed.capacity());
        for _ in 0..100 {
            drop(committed(&mut writer, 4000));
        }
        assert_eq!(
            (writer.free.capacity(), writer.sealed.capacity()),
            capacities
        );
    }
}
