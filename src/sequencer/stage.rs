//! The sequencer's executor stage: drains the ingest rings, assigns seqs, appends to the
//! event log, and publishes each frame to every fan-out core once it is durable.
//!
//! Owns: the order of append (= seq order = publish order), the pending queue between
//! "appended" and "durable", and its bound. Must not: verify (it takes only
//! [`Admitted`] values, which hold a `Verified`), read sockets, or block its executor
//! (the log writer is another thread; a full writer queue is retried after a timer).
//!
//! Queues and their policies:
//! * ingest → sequencer rings (`SEQUENCER_RING_SLOTS_MAX` each): **block** — the ingest
//!   verifier awaits the send, so its sockets stop being read.
//! * log writer queue (`EVENTLOG_QUEUE_RECORDS_MAX`): **block** — the append is retried
//!   every `SEQUENCER_LOG_RETRY_MICROS` while the ring is not drained.
//! * pending (`SEQUENCER_PENDING_RECORDS_MAX`): **block** — no ring is drained while it is
//!   full.
//! * sequencer → fan-out rings (`FANOUT_RING_SLOTS_MAX` each): **block** the publisher.
//!   Nothing is broadcast before the log's durable seq covers it.

use crate::config::limits::{SEQUENCER_LOG_RETRY_MICROS, SEQUENCER_PENDING_RECORDS_MAX};
use crate::eventlog::{AccountKey, Appender, DurableSeq, EventLogError};
use crate::frame::cid::Cid;
use crate::runtime::frames::FrameHandle;
use crate::runtime::notify::Notify;
use crate::sequencer::{Sequenced, Sequencer, SequencerError};
use crate::verify::rules::{AccountState, Verified, VerifiedKind};
use glommio::channels::shared_channel::{ConnectedReceiver, ConnectedSender};
use glommio::sync::Semaphore;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

/// Where a frame came from: the upstream position a host cursor may move to once the
/// frame is durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Origin {
    /// The ingest shard that verified it.
    pub shard: u16,
    /// The host's id in the state store.
    pub host_id: u64,
    /// The host cursor that may be stored once this frame is durable: the host's seq of
    /// the frame, or less while older frames of the host are still parked.
    pub upstream_seq: u64,
    /// The account's uid in the state store, when the verifier loaded it.
    pub uid: Option<u64>,
    /// The account state the frame moves to (`#commit`, `#sync`).
    pub next_state: Option<AccountState>,
    /// The CID of the commit the frame moves the account to (`#commit`, `#sync`), stored
    /// with its rev as the repo's `head`.
    pub commit_cid: Option<Cid>,
    /// Whether the frame broke the account's Sync 1.1 chain.
    pub desynchronized: bool,
}

/// A verified frame on its way to the sequencer.
#[derive(Debug)]
pub struct Admitted {
    /// The frame, verified.
    pub verified: Verified<FrameHandle>,
    /// The account's key in the log (takedowns match it).
    pub account_key: AccountKey,
    /// Where it came from.
    pub origin: Origin,
}

/// A durable frame as fan-out cores receive it.
pub type Published = Sequenced;

/// Called on the sequencer core for each frame once it is durable (host cursors, state).
pub type OnPublished = Box<dyn Fn(&Sequenced, &Origin)>;

/// Why the stage stopped.
#[derive(Debug)]
#[non_exhaustive]
pub enum StageError {
    /// The log writer failed or stopped: nothing more can be made durable.
    Log(EventLogError),
    /// The seq space is exhausted or the frame cannot be spliced.
    Sequencer(SequencerError),
}

impl StageError {
    /// A short, bounded label.
    pub fn reason(&self) -> &'static str {
        match self {
            StageError::Log(e) => e.reason(),
            StageError::Sequencer(e) => e.reason(),
        }
    }
}

impl std::fmt::Display for StageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StageError::Log(e) => write!(f, "event log: {e}"),
            StageError::Sequencer(e) => write!(f, "sequencer: {e}"),
        }
    }
}

impl std::error::Error for StageError {}

struct Inner {
    sequencer: Sequencer,
    appender: Appender<Published>,
    pending: VecDeque<(Published, Origin)>,
    failed: Option<StageError>,
}

/// The stage, shared by its tasks on the sequencer executor.
pub struct SequencerStage {
    inner: RefCell<Inner>,
    /// One holder at a time assigns and appends: seq order is append order.
    append_turn: Semaphore,
    durable: DurableSeq,
    durable_notify: Arc<Notify>,
    /// Woken when the publisher frees pending room.
    room: Notify,
    /// Registered once: the per-frame path only increments handles.
    frames_by_kind: [metrics::Counter; 4],
    pending_gauge: metrics::Gauge,
}

impl SequencerStage {
    /// A stage appending through `appender`; `durable_notify` must be notified by the log's
    /// `OnDurable` callback.
    pub fn new(
        sequencer: Sequencer,
        appender: Appender<Published>,
        durable: DurableSeq,
        durable_notify: Arc<Notify>,
    ) -> Rc<SequencerStage> {
        Rc::new(SequencerStage {
            inner: RefCell::new(Inner {
                sequencer,
                appender,
                pending: VecDeque::new(),
                failed: None,
            }),
            append_turn: Semaphore::new(1),
            durable,
            durable_notify,
            room: Notify::new(),
            frames_by_kind: [
                VerifiedKind::Commit,
                VerifiedKind::Sync,
                VerifiedKind::Identity,
                VerifiedKind::Account,
            ]
            .map(|kind| metrics::counter!("relay_sequencer_frames_total", "frame_type" => kind.label())),
            pending_gauge: metrics::gauge!("relay_sequencer_pending_records"),
        })
    }

    /// The seq the next frame will get.
    pub fn next_seq(&self) -> u64 {
        self.inner.borrow().sequencer.next_seq()
    }

    /// The failure that stopped the stage, if any.
    pub fn failure(&self) -> Option<String> {
        self.inner.borrow().failed.as_ref().map(ToString::to_string)
    }

    /// Drain one ingest ring until it closes or the stage fails.
    pub async fn drain_ring(self: Rc<Self>, ring: ConnectedReceiver<Admitted>) {
        while let Some(admitted) = ring.recv().await {
            if self.admit(admitted).await.is_err() {
                return;
            }
        }
    }

    async fn admit(&self, admitted: Admitted) -> Result<(), ()> {
        let Ok(_turn) = self.append_turn.acquire_permit(1).await else {
            return Err(());
        };
        while self.inner.borrow().pending.len() >= SEQUENCER_PENDING_RECORDS_MAX {
            self.room.notified().await;
        }
        let Admitted {
            verified,
            account_key,
            origin,
        } = admitted;
        let kind = verified.kind();
        let sequenced = {
            let mut inner = self.inner.borrow_mut();
            match inner.sequencer.assign(verified, account_key) {
                Ok(sequenced) => sequenced,
                Err(e) => {
                    metrics::counter!("relay_sequencer_failures_total", "reason" => e.reason())
                        .increment(1);
                    inner.failed = Some(StageError::Sequencer(e));
                    return Err(());
                }
            }
        };
        let mut record = sequenced.clone();
        loop {
            let result = self.inner.borrow_mut().appender.try_append(record);
            match result {
                Ok(()) => break,
                Err(e) if matches!(e.error, EventLogError::QueueFull) => {
                    metrics::counter!("relay_sequencer_log_full_waits_total").increment(1);
                    record = e.record;
                    glommio::timer::sleep(Duration::from_micros(SEQUENCER_LOG_RETRY_MICROS)).await;
                }
                Err(e) => {
                    metrics::counter!("relay_sequencer_failures_total", "reason" => e.error.reason())
                        .increment(1);
                    self.inner.borrow_mut().failed = Some(StageError::Log(e.error));
                    self.durable_notify.notify();
                    return Err(());
                }
            }
        }
        if let Some(counter) = self.frames_by_kind.get(kind_index(kind)) {
            counter.increment(1);
        }
        let mut inner = self.inner.borrow_mut();
        inner.pending.push_back((sequenced, origin));
        self.pending_gauge.set(inner.pending.len() as f64);
        Ok(())
    }

    /// Publish durable frames, in seq order, to every fan-out ring; runs until the stage
    /// fails or every ring is closed.
    pub async fn publish(
        self: Rc<Self>,
        rings: Vec<ConnectedSender<Published>>,
        on_published: OnPublished,
    ) {
        loop {
            self.durable_notify.notified().await;
            let durable = self.durable.get().map_or(0, |seq| seq.get());
            while let Some((frame, origin)) = self.pop_durable(durable) {
                on_published(&frame, &origin);
                for ring in &rings {
                    // A closed ring is a fan-out core that stopped; the others go on.
                    let _ = ring.send(frame.clone()).await;
                }
            }
            self.room.notify();
            if self.inner.borrow().failed.is_some() {
                return;
            }
        }
    }

    fn pop_durable(&self, durable: u64) -> Option<(Published, Origin)> {
        let mut inner = self.inner.borrow_mut();
        let ready = inner
            .pending
            .front()
            .is_some_and(|(frame, _)| frame.seq().get() <= durable);
        let popped = if ready {
            inner.pending.pop_front()
        } else {
            None
        };
        self.pending_gauge.set(inner.pending.len() as f64);
        popped
    }
}

fn kind_index(kind: VerifiedKind) -> usize {
    match kind {
        VerifiedKind::Commit => 0,
        VerifiedKind::Sync => 1,
        VerifiedKind::Identity => 2,
        VerifiedKind::Account => 3,
    }
}
