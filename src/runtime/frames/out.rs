//! [`OutFrame`]: an outgoing frame as a three-part gather over a committed frame, with new
//! seq bytes spliced in place of a span of the original.
//!
//! Owns: the splice's shape and its check. Must not: compute the splice (the sequencer
//! knows the format), copy or re-encode frame bytes. Always checks: the span lies inside
//! the frame and the seq bytes fit `OUT_FRAME_SEQ_BYTES_MAX`.

use std::io::IoSlice;
use std::ops::Range;

use super::{FrameBufferError, FrameHandle};
use crate::config::limits::OUT_FRAME_SEQ_BYTES_MAX;

/// A frame as written downstream and to the event log: `frame[..span.start]`, the new seq
/// bytes, `frame[span.end..]`. Cloning clones the handle (one atomic increment).
#[derive(Clone, Debug)]
pub struct OutFrame {
    handle: FrameHandle,
    seq_start: usize,
    seq_end: usize,
    seq_bytes: [u8; OUT_FRAME_SEQ_BYTES_MAX],
    seq_len: u8,
}

impl OutFrame {
    /// Splice `seq` over `seq_span` of the frame held by `handle`.
    pub fn new(
        handle: FrameHandle,
        seq_span: Range<usize>,
        seq: &[u8],
    ) -> Result<Self, FrameBufferError> {
        if seq_span.start > seq_span.end || seq_span.end > handle.len() {
            return Err(FrameBufferError::SeqSpanOutOfFrame {
                start: seq_span.start,
                end: seq_span.end,
                frame_len: handle.len(),
            });
        }
        let mut seq_bytes = [0u8; OUT_FRAME_SEQ_BYTES_MAX];
        let (Some(slot), Ok(seq_len)) = (seq_bytes.get_mut(..seq.len()), u8::try_from(seq.len()))
        else {
            return Err(FrameBufferError::SeqBytesTooLong { len: seq.len() });
        };
        slot.copy_from_slice(seq);
        Ok(Self {
            handle,
            seq_start: seq_span.start,
            seq_end: seq_span.end,
            seq_bytes,
            seq_len,
        })
    }

    /// The frame the gather reads from.
    pub fn handle(&self) -> &FrameHandle {
        &self.handle
    }

    /// The span of the original frame the seq bytes replace.
    pub fn seq_span(&self) -> Range<usize> {
        self.seq_start..self.seq_end
    }

    /// The new seq bytes.
    pub fn seq_bytes(&self) -> &[u8] {
        self.seq_bytes
            .get(..usize::from(self.seq_len))
            .unwrap_or_default()
    }

    /// Prefix, new seq bytes, suffix.
    pub fn slices(&self) -> [&[u8]; 3] {
        let frame = self.handle.as_bytes();
        [
            frame.get(..self.seq_start).unwrap_or_default(),
            self.seq_bytes(),
            frame.get(self.seq_end..).unwrap_or_default(),
        ]
    }

    /// The three parts for `writev` / `write_vectored`.
    pub fn io_slices(&self) -> [IoSlice<'_>; 3] {
        self.slices().map(IoSlice::new)
    }

    /// Bytes of the outgoing frame.
    pub fn len(&self) -> usize {
        self.slices().iter().map(|part| part.len()).sum()
    }

    /// Whether the outgoing frame has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
