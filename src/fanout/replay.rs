//! The replay pool: a few OS threads that read the event log for consumers (log reads
//! block on the disk, so they never run on an executor).
//!
//! Owns: the threads, the request queue and one reply per request. Must not: touch
//! sockets or decide cursor policy (the session does; an `Outdated` reply only says the
//! requested seq is no longer in the log).
//!
//! Queue policies:
//! - requests: one bounded queue (`FANOUT_REPLAY_QUEUE_REQUESTS_MAX`) shared by every
//!   core; a consumer asking while it is full waits (its own task awaits; the executor runs
//!   on). Threads take requests in order.
//! - replies: a channel of capacity 1 per request, and exactly one reply is sent, so a
//!   replay thread never blocks on a consumer; a reply to a consumer that has gone is
//!   dropped. A consumer has at most one request in flight, so its replay memory is one
//!   batch (`FANOUT_REPLAY_BATCH_BYTES_MAX`, or one larger record).

use super::FanoutError;
use crate::config::limits::{
    FANOUT_REPLAY_BATCH_BYTES_MAX, FANOUT_REPLAY_BATCH_RECORDS_MAX,
    FANOUT_REPLAY_QUEUE_REQUESTS_MAX, FANOUT_REPLAY_THREADS_MAX,
};
use crate::eventlog::{EventLog, EventLogError, ReplayRecord};

/// One batch read from the log.
#[derive(Debug)]
pub(crate) enum ReplayReply {
    /// Records with seq ≥ the request's `from`, in order; `next` is the smallest seq the
    /// following batch can hold (past taken-down records that were skipped).
    Batch {
        records: Vec<ReplayRecord>,
        next: u64,
    },
    /// `from` is older than the log's oldest record (retention deleted it).
    Outdated,
    /// The log failed (a short, bounded reason).
    Failed(&'static str),
}

struct ReplayRequest {
    from: u64,
    reply: flume::Sender<ReplayReply>,
}

/// A handle to the replay threads; clones share them. The threads stop when the last
/// handle is dropped.
#[derive(Clone)]
pub struct ReplayPool {
    requests: flume::Sender<ReplayRequest>,
}

impl std::fmt::Debug for ReplayPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayPool")
            .field("queued", &self.requests.len())
            .finish()
    }
}

impl ReplayPool {
    /// Start `threads` replay threads (1 ..= `FANOUT_REPLAY_THREADS_MAX`) over `log`.
    pub fn start(log: &EventLog, threads: usize) -> Result<ReplayPool, FanoutError> {
        if !(1..=FANOUT_REPLAY_THREADS_MAX).contains(&threads) {
            return Err(FanoutError::InvalidConfig("replay_threads"));
        }
        let (requests, queue) = flume::bounded(FANOUT_REPLAY_QUEUE_REQUESTS_MAX);
        for index in 0..threads {
            let (log, queue) = (log.clone(), queue.clone());
            std::thread::Builder::new()
                .name(format!("relay-replay-{index}"))
                .spawn(move || serve(&log, &queue))
                .map_err(FanoutError::Spawn)?;
        }
        Ok(ReplayPool { requests })
    }

    /// Ask for the batch starting at `from`; waits while the queue is full.
    pub(crate) async fn request(&self, from: u64) -> ReplayReply {
        let (reply, answer) = flume::bounded(1);
        if self
            .requests
            .send_async(ReplayRequest { from, reply })
            .await
            .is_err()
        {
            return ReplayReply::Failed("replay_pool_stopped");
        }
        answer
            .recv_async()
            .await
            .unwrap_or(ReplayReply::Failed("replay_pool_stopped"))
    }
}

fn serve(log: &EventLog, queue: &flume::Receiver<ReplayRequest>) {
    while let Ok(request) = queue.recv() {
        let reply = read_batch(log, request.from);
        // The consumer may have gone; its batch is simply dropped.
        let _ = request.reply.try_send(reply);
    }
}

fn read_batch(log: &EventLog, from: u64) -> ReplayReply {
    if log.oldest_seq().is_some_and(|oldest| from < oldest.get()) {
        return ReplayReply::Outdated;
    }
    let mut replay = log.read_from(from);
    let mut records = Vec::new();
    let mut bytes = 0usize;
    while records.len() < FANOUT_REPLAY_BATCH_RECORDS_MAX && bytes < FANOUT_REPLAY_BATCH_BYTES_MAX {
        match replay.next() {
            None => break,
            Some(Ok(record)) => {
                bytes += record.payload.len();
                records.push(record);
            }
            Some(Err(EventLogError::CursorOutdated { .. })) if records.is_empty() => {
                return ReplayReply::Outdated;
            }
            // Send what was read; the next request meets the error again at its start.
            Some(Err(_)) if !records.is_empty() => break,
            Some(Err(e)) => return ReplayReply::Failed(e.reason()),
        }
    }
    ReplayReply::Batch {
        records,
        next: replay.next_seq(),
    }
}
