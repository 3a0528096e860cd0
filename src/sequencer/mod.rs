//! The sequencer: the only place a relay `seq` is assigned.
//!
//! Owns: the seq counter (strictly increasing, starting where the event log's recovery
//! says, never reused), and turning a `Verified` frame into the outgoing record: the
//! same shared-memory bytes with only the seq value replaced (a prefix / seq / suffix
//! gather, no copy, no re-encoding), ready for the event log and for every consumer.
//! Must not: parse CBOR beyond what `verify` recorded, verify anything, touch the
//! network, or accept anything but `Verified<…>` (the type system enforces it).
//! *Planned*: the executor loop that drains the ingest rings, batches to the log writer
//! and publishes up to the durable seq.

#[cfg(feature = "server")]
pub mod stage;

use crate::config::limits::EVENTLOG_SEQ_MAX;
use crate::eventlog::{AccountKey, GatherRecord, RecordKind, Seq};
use crate::frame::event::encode_seq_patch;
use crate::runtime::frames::{FrameBufferError, FrameHandle, OutFrame};
use crate::verify::rules::{Verified, VerifiedKind};
use std::fmt;

/// Event-log record kind of a relayed `#commit`.
pub const RECORD_KIND_COMMIT: u16 = 1;
/// Event-log record kind of a relayed `#sync`.
pub const RECORD_KIND_SYNC: u16 = 2;
/// Event-log record kind of a relayed `#identity`.
pub const RECORD_KIND_IDENTITY: u16 = 3;
/// Event-log record kind of a relayed `#account`.
pub const RECORD_KIND_ACCOUNT: u16 = 4;

/// The event-log record kind of a verified event type.
pub fn record_kind(kind: VerifiedKind) -> RecordKind {
    RecordKind::new(match kind {
        VerifiedKind::Commit => RECORD_KIND_COMMIT,
        VerifiedKind::Sync => RECORD_KIND_SYNC,
        VerifiedKind::Identity => RECORD_KIND_IDENTITY,
        VerifiedKind::Account => RECORD_KIND_ACCOUNT,
    })
}

/// Why a verified frame could not be sequenced.
#[derive(Debug)]
#[non_exhaustive]
pub enum SequencerError {
    /// The seq space is exhausted (2^53 − 1, the largest seq consumers can hold exactly).
    SeqExhausted,
    /// The recorded seq span does not fit the frame.
    Frame(FrameBufferError),
}

impl SequencerError {
    /// A short, bounded label.
    pub fn reason(&self) -> &'static str {
        match self {
            SequencerError::SeqExhausted => "seq_exhausted",
            SequencerError::Frame(e) => e.reason(),
        }
    }
}

impl fmt::Display for SequencerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for SequencerError {}

/// One sequenced frame: the outgoing bytes (as a gather) and what the log records.
/// Cloning it clones the frame handle (one relaxed increment of its segment's count): the
/// log writer and every fan-out core hold their own clone, with no heap allocation.
#[derive(Clone, Debug)]
pub struct Sequenced {
    out: OutFrame,
    seq: Seq,
    account_key: AccountKey,
    kind: VerifiedKind,
}

impl Sequenced {
    /// The outgoing frame: prefix, new seq bytes, suffix.
    pub fn out(&self) -> &OutFrame {
        &self.out
    }

    /// The relay seq.
    pub fn seq(&self) -> Seq {
        self.seq
    }

    /// The account the frame belongs to.
    pub fn account_key(&self) -> AccountKey {
        self.account_key
    }

    /// The event type.
    pub fn kind(&self) -> VerifiedKind {
        self.kind
    }
}

impl GatherRecord for Sequenced {
    fn seq(&self) -> Seq {
        self.seq
    }

    fn account_key(&self) -> AccountKey {
        self.account_key
    }

    fn kind(&self) -> RecordKind {
        record_kind(self.kind)
    }

    fn slices(&self) -> impl Iterator<Item = &[u8]> {
        self.out.slices().into_iter()
    }
}

/// The seq counter.
#[derive(Debug)]
pub struct Sequencer {
    next: u64,
}

impl Sequencer {
    /// Start at `next` (the event log's recovered next seq; 1 on an empty log).
    pub fn new(next: Seq) -> Self {
        Sequencer { next: next.get() }
    }

    /// The seq the next frame will get.
    pub fn next_seq(&self) -> u64 {
        self.next
    }

    /// Give `verified` the next seq. On error the counter does not move.
    pub fn assign(
        &mut self,
        verified: Verified<FrameHandle>,
        account_key: AccountKey,
    ) -> Result<Sequenced, SequencerError> {
        let seq = Seq::new(self.next)
            .filter(|_| self.next <= EVENTLOG_SEQ_MAX)
            .ok_or(SequencerError::SeqExhausted)?;
        let span = verified.seq_span();
        let kind = verified.kind();
        let (bytes, len) = encode_seq_patch(seq.get());
        let out = OutFrame::new(
            verified.into_frame(),
            span,
            bytes.get(..len).unwrap_or_default(),
        )
        .map_err(SequencerError::Frame)?;
        self.next += 1;
        Ok(Sequenced {
            out,
            seq,
            account_key,
            kind,
        })
    }
}
