//! The one error type of the frame buffers.
//!
//! Owns: the variants and their bounded labels. Must not: carry frame bytes.

use std::fmt;

/// Why a frame-buffer operation was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameBufferError {
    /// Every segment is pinned by live frames or open slots. Stop reading sockets and retry
    /// after [`FrameWriter::poll_reclaim`](super::FrameWriter::poll_reclaim) frees one.
    Backpressure,
    /// A reservation, growth or commit of zero bytes.
    ZeroLength,
    /// A reservation or growth beyond the largest frame this region holds.
    FrameTooLarge {
        /// Bytes asked for.
        requested: usize,
        /// The bound (the smaller of the frame bound and the segment size).
        max: usize,
    },
    /// A commit of more bytes than the slot holds.
    CommitBeyondFilled {
        /// Bytes asked for.
        requested: usize,
        /// Bytes the slot holds.
        filled: usize,
    },
    /// `advance` past the end of the slot's window.
    AdvanceBeyondWindow {
        /// Bytes asked for.
        requested: usize,
        /// Unfilled bytes left in the window.
        spare: usize,
    },
    /// A slot handed to a writer other than the one that opened it.
    ForeignSlot,
    /// A placement outside the region (an internal invariant was broken; nothing was
    /// written).
    OutOfRegion,
    /// A segment size that is zero, not whole 4 KiB pages, or over
    /// `FRAME_SEGMENT_BYTES_MAX`.
    SegmentSizeInvalid {
        /// The size given.
        segment_bytes: usize,
    },
    /// A region size that is not a whole number of segments.
    RegionNotWholeSegments {
        /// The region size given.
        region_bytes: usize,
        /// The segment size given.
        segment_bytes: usize,
    },
    /// Fewer segments than `FRAME_REGION_SEGMENTS_MIN`.
    TooFewSegments {
        /// Segments the sizes give.
        segments: usize,
    },
    /// A region over `FRAME_REGION_BYTES_MAX`.
    RegionTooLarge {
        /// The region size given.
        region_bytes: usize,
    },
    /// A seq splice that does not lie inside its frame.
    SeqSpanOutOfFrame {
        /// Start of the span.
        start: usize,
        /// End of the span.
        end: usize,
        /// Length of the frame.
        frame_len: usize,
    },
    /// Seq bytes longer than `OUT_FRAME_SEQ_BYTES_MAX`.
    SeqBytesTooLong {
        /// Their length.
        len: usize,
    },
    /// `memfd_create`, `ftruncate` or `mmap` failed.
    SystemCall {
        /// The call that failed.
        call: &'static str,
        /// The OS error number.
        errno: i32,
    },
}

impl FrameBufferError {
    /// A short, bounded label (usable as a metric label).
    pub fn reason(&self) -> &'static str {
        match self {
            FrameBufferError::Backpressure => "frame_buffer_backpressure",
            FrameBufferError::ZeroLength => "frame_zero_length",
            FrameBufferError::FrameTooLarge { .. } => "frame_too_large",
            FrameBufferError::CommitBeyondFilled { .. } => "frame_commit_beyond_filled",
            FrameBufferError::AdvanceBeyondWindow { .. } => "frame_advance_beyond_window",
            FrameBufferError::ForeignSlot => "frame_foreign_slot",
            FrameBufferError::OutOfRegion => "frame_out_of_region",
            FrameBufferError::SegmentSizeInvalid { .. } => "frame_segment_size_invalid",
            FrameBufferError::RegionNotWholeSegments { .. } => "frame_region_not_whole_segments",
            FrameBufferError::TooFewSegments { .. } => "frame_region_too_few_segments",
            FrameBufferError::RegionTooLarge { .. } => "frame_region_too_large",
            FrameBufferError::SeqSpanOutOfFrame { .. } => "out_frame_seq_span_out_of_frame",
            FrameBufferError::SeqBytesTooLong { .. } => "out_frame_seq_bytes_too_long",
            FrameBufferError::SystemCall { .. } => "frame_region_system_call_failed",
        }
    }
}

impl fmt::Display for FrameBufferError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())?;
        match *self {
            FrameBufferError::FrameTooLarge { requested, max } => {
                write!(f, ": {requested} bytes, at most {max}")
            }
            FrameBufferError::CommitBeyondFilled { requested, filled } => {
                write!(f, ": {requested} bytes, slot holds {filled}")
            }
            FrameBufferError::AdvanceBeyondWindow { requested, spare } => {
                write!(f, ": {requested} bytes, {spare} left in the window")
            }
            FrameBufferError::SegmentSizeInvalid { segment_bytes } => {
                write!(f, ": {segment_bytes} bytes")
            }
            FrameBufferError::RegionNotWholeSegments {
                region_bytes,
                segment_bytes,
            } => write!(f, ": {region_bytes} bytes in segments of {segment_bytes}"),
            FrameBufferError::TooFewSegments { segments } => write!(f, ": {segments}"),
            FrameBufferError::RegionTooLarge { region_bytes } => {
                write!(f, ": {region_bytes} bytes")
            }
            FrameBufferError::SeqSpanOutOfFrame {
                start,
                end,
                frame_len,
            } => write!(f, ": {start}..{end} in a frame of {frame_len} bytes"),
            FrameBufferError::SeqBytesTooLong { len } => write!(f, ": {len} bytes"),
            FrameBufferError::SystemCall { call, errno } => write!(f, ": {call}: errno {errno}"),
            FrameBufferError::Backpressure
            | FrameBufferError::ZeroLength
            | FrameBufferError::ForeignSlot
            | FrameBufferError::OutOfRegion => Ok(()),
        }
    }
}

impl std::error::Error for FrameBufferError {}
