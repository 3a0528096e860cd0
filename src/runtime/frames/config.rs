//! The sizes of a frame region, decided up front and checked once.
//!
//! Owns: [`FrameRegionConfig`] (region and segment sizes) and [`RegionId`]. Always checks:
//! whole pages per segment, whole segments per region, the segment count and size bounds.

use super::FrameBufferError;
use crate::config::limits::{
    FRAME_BUFFER_FRAME_BYTES_MAX, FRAME_REGION_BYTES, FRAME_REGION_BYTES_MAX,
    FRAME_REGION_SEGMENTS_MIN, FRAME_SEGMENT_BYTES, FRAME_SEGMENT_BYTES_MAX,
};

/// Segments are whole 4 KiB pages so that a segment's pages can later be advised or
/// released on their own.
const SEGMENT_GRANULE_BYTES: usize = 4096;

/// Which core owns a region (it names the memfd `relay-frames-<id>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RegionId(u32);

impl RegionId {
    /// The region of core `core`.
    pub const fn new(core: u32) -> Self {
        Self(core)
    }

    /// The core number.
    pub const fn get(self) -> u32 {
        self.0
    }
}

/// Region and segment sizes that passed every check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameRegionConfig {
    region_bytes: usize,
    segment_bytes: usize,
}

impl FrameRegionConfig {
    /// Check a region of `region_bytes` cut into segments of `segment_bytes`.
    pub fn new(region_bytes: usize, segment_bytes: usize) -> Result<Self, FrameBufferError> {
        if segment_bytes == 0
            || !segment_bytes.is_multiple_of(SEGMENT_GRANULE_BYTES)
            || segment_bytes > FRAME_SEGMENT_BYTES_MAX
        {
            return Err(FrameBufferError::SegmentSizeInvalid { segment_bytes });
        }
        if region_bytes > FRAME_REGION_BYTES_MAX {
            return Err(FrameBufferError::RegionTooLarge { region_bytes });
        }
        if !region_bytes.is_multiple_of(segment_bytes) {
            return Err(FrameBufferError::RegionNotWholeSegments {
                region_bytes,
                segment_bytes,
            });
        }
        let segments = region_bytes / segment_bytes;
        if segments < FRAME_REGION_SEGMENTS_MIN {
            return Err(FrameBufferError::TooFewSegments { segments });
        }
        Ok(Self {
            region_bytes,
            segment_bytes,
        })
    }

    /// Bytes of the whole region (the memfd's size).
    pub fn region_bytes(&self) -> usize {
        self.region_bytes
    }

    /// Bytes of one segment.
    pub fn segment_bytes(&self) -> usize {
        self.segment_bytes
    }

    /// Segments in the region.
    pub fn segment_count(&self) -> usize {
        self.region_bytes / self.segment_bytes
    }

    /// The largest frame (and window) the region holds: the frame bound, or the segment
    /// size when segments are smaller (small regions in tests).
    pub fn frame_bytes_max(&self) -> usize {
        FRAME_BUFFER_FRAME_BYTES_MAX.min(self.segment_bytes)
    }
}

impl Default for FrameRegionConfig {
    /// `FRAME_REGION_BYTES` in segments of `FRAME_SEGMENT_BYTES` (valid by the
    /// compile-time assertions in `config::limits`).
    fn default() -> Self {
        Self {
            region_bytes: FRAME_REGION_BYTES,
            segment_bytes: FRAME_SEGMENT_BYTES,
        }
    }
}
