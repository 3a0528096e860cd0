//! The live ring of one fan-out core: the last frames published, shared by every consumer
//! of the core (each frame is one `Sequenced`, a handle clone, so a consumer holds no copy).
//!
//! Owns: the frames, their stream offsets (cumulative bytes published on this core, for
//! measuring a consumer's lag in bytes) and eviction. Must not: block, or know consumers.
//!
//! Queue policy: bounded by `frames_max` and `bytes_max`; a push evicts the oldest frames
//! until both hold again (the newest frame always stays). Eviction loses nothing: a consumer
//! whose next seq is older than the ring's oldest frame replays from the event log.

use crate::sequencer::Sequenced;
use std::collections::VecDeque;

/// One frame in the ring.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub(crate) frame: Sequenced,
    /// Stream offset of the frame's first byte.
    pub(crate) start_offset: u64,
    /// Outgoing bytes of the frame.
    pub(crate) len: u64,
    /// The account was hidden when the frame was published: consumers skip it (the frame
    /// stays so that the ring's seqs have no holes and live consumers stay live).
    pub(crate) hidden: bool,
}

/// What the ring holds for a consumer's next seq.
#[derive(Debug)]
pub(crate) enum Lookup {
    /// The ring holds the first frame with seq ≥ next, and nothing before it is missing
    /// (`run_from` gives the frames).
    Hit,
    /// Every frame in the ring is older than next: wait for a publish.
    Ahead,
    /// Frames between next and the ring's oldest are not here: replay them from the log.
    Behind,
}

#[derive(Debug)]
pub(crate) struct LiveRing {
    entries: VecDeque<Entry>,
    bytes: usize,
    frames_max: usize,
    bytes_max: usize,
    /// Stream offset after the newest frame (total bytes published on this core).
    end_offset: u64,
    /// The newest seq published.
    head_seq: Option<u64>,
}

impl LiveRing {
    pub(crate) fn new(frames_max: usize, bytes_max: usize) -> Self {
        LiveRing {
            entries: VecDeque::new(),
            bytes: 0,
            frames_max: frames_max.max(1),
            bytes_max,
            end_offset: 0,
            head_seq: None,
        }
    }

    /// Add the newest frame; evict the oldest beyond the bounds.
    pub(crate) fn push(&mut self, frame: Sequenced, hidden: bool) {
        let len = frame.out().len();
        self.head_seq = Some(frame.seq().get());
        self.entries.push_back(Entry {
            frame,
            start_offset: self.end_offset,
            len: len as u64,
            hidden,
        });
        self.end_offset += len as u64;
        self.bytes += len;
        while self.entries.len() > 1
            && (self.entries.len() > self.frames_max || self.bytes > self.bytes_max)
        {
            if let Some(old) = self.entries.pop_front() {
                self.bytes -= old.len as usize;
            }
        }
    }

    pub(crate) fn lookup(&self, next: u64) -> Lookup {
        let Some(oldest) = self.entries.front() else {
            return Lookup::Ahead;
        };
        if oldest.frame.seq().get() > next {
            return Lookup::Behind;
        }
        let index = self
            .entries
            .partition_point(|entry| entry.frame.seq().get() < next);
        match self.entries.get(index) {
            Some(_) => Lookup::Hit,
            None => Lookup::Ahead,
        }
    }

    /// The run of frames from `next` on (as `lookup` finds its first one), up to
    /// `frames_max` frames and `bytes_max` bytes (the first frame always), appended to
    /// `out` as handle clones. The ring's seqs are dense, so the run has no holes.
    pub(crate) fn run_from(
        &self,
        next: u64,
        frames_max: usize,
        bytes_max: usize,
        out: &mut Vec<Entry>,
    ) {
        let index = self
            .entries
            .partition_point(|entry| entry.frame.seq().get() < next);
        let mut bytes = 0u64;
        for entry in self.entries.range(index..) {
            let full = out.len() >= frames_max || bytes + entry.len > bytes_max as u64;
            if !out.is_empty() && full {
                break;
            }
            bytes += entry.len;
            out.push(entry.clone());
        }
    }

    pub(crate) fn oldest_seq(&self) -> Option<u64> {
        self.entries.front().map(|entry| entry.frame.seq().get())
    }

    pub(crate) fn head_seq(&self) -> Option<u64> {
        self.head_seq
    }

    pub(crate) fn end_offset(&self) -> u64 {
        self.end_offset
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}
