//! The recent-rejections log: for each ingest shard, a bounded ring of the last frames its
//! verifier refused (reason, host, DID, upstream seq, frame type, time), read by the
//! admin route `GET /admin/rejections` on whichever core the request lands.
//!
//! Owns: the rings and their bounds (`INGEST_REJECTION_LOG_ENTRIES_PER_SHARD_MAX` entries
//! per shard, a DID of at most `INGEST_REJECTION_LOG_DID_BYTES_MAX` bytes per entry), the
//! filters and the newest-first merge across shards. Must not: decide what is a rejection
//! (the verifier does, in `runtime::ingest`), count the rejections themselves
//! (`relay_verify_rejections_total` stays the count; this is a sample of the latest), or
//! wait on its mutex on a data-plane executor.
//!
//! Hostile hosts make rejections a hot path, so recording is cheap: one `try_lock` of the
//! shard's own mutex, a copy of the DID into a slot whose buffer is reused once the ring
//! has wrapped (no allocation then, unless a longer DID comes), a reference-count bump of
//! the hostname. The only other party to the mutex is an admin reader on another core.
//!
//! Queue policy (the ring): full → the oldest entry is overwritten (a log of the latest,
//! not a queue: nothing waits on it). Mutex held by a reader → the entry is **dropped**,
//! counted in `relay_verify_rejection_log_dropped_total{reason="contended",shard}`; a DID
//! longer than its bound is recorded without the DID (`did` absent) and counted with
//! `reason="did_too_long"`. The admin reader never waits either: it tries the mutex and
//! yields to its executor between attempts (`lock_yielding`).

use crate::config::limits::{
    INGEST_REJECTION_LOG_DID_BYTES_MAX, INGEST_REJECTION_LOG_ENTRIES_PER_SHARD_MAX,
};
use crate::runtime::shared_lock::lock_yielding;
use std::sync::{Arc, Mutex, TryLockError};

/// What the verifier knows of one refused frame when it refuses it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Rejected<'a> {
    /// The host's name (`host[:port]` as stored), when the frame came from a known host.
    pub host: Option<&'a Arc<str>>,
    /// The account, when the frame was decoded far enough to name it.
    pub did: Option<&'a str>,
    /// The host's seq of the frame, when it was decoded far enough.
    pub seq: Option<u64>,
    /// `commit`, `sync`, `identity` or `account`, when known.
    pub frame_type: Option<&'static str>,
}

/// One recorded rejection, as the admin route reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectionEntry {
    /// Wall-clock time of the rejection, microseconds since the Unix epoch.
    pub time_micros: u64,
    /// The `reason` label it was counted under.
    pub reason: &'static str,
    /// The host's name; absent for the relay's own events and for an unregistered host id.
    pub host: Option<Arc<str>>,
    /// The account, when known (and within `INGEST_REJECTION_LOG_DID_BYTES_MAX`).
    pub did: Option<String>,
    /// The host's seq of the frame, when known.
    pub seq: Option<u64>,
    /// The frame type, when known.
    pub frame_type: Option<&'static str>,
    /// The ingest shard that refused it.
    pub shard: u16,
    /// Position in the shard's stream of rejections (orders entries of equal time).
    pub order: u64,
}

/// Which entries a reader wants.
#[derive(Clone, Copy, Debug)]
pub enum RejectionFilter<'a> {
    /// Entries of this host (its stored name, lower case).
    Host(&'a str),
    /// Entries of this DID.
    Did(&'a str),
}

impl RejectionFilter<'_> {
    fn matches(&self, slot: &Slot) -> bool {
        match self {
            RejectionFilter::Host(name) => slot.host.as_deref() == Some(*name),
            RejectionFilter::Did(did) => slot.has_did && slot.did == *did,
        }
    }
}

/// One ring slot. The DID buffer is kept when the slot is overwritten (its capacity is
/// reused), so `has_did` says whether `did` holds this entry's DID.
#[derive(Debug)]
struct Slot {
    time_micros: u64,
    order: u64,
    reason: &'static str,
    host: Option<Arc<str>>,
    did: String,
    has_did: bool,
    seq: Option<u64>,
    frame_type: Option<&'static str>,
}

/// The last rejections of one shard, oldest overwritten first.
#[derive(Debug)]
struct Ring {
    slots: Vec<Slot>,
    capacity: usize,
    /// Rejections recorded so far; the next one goes to slot `written % capacity`.
    written: u64,
}

impl Ring {
    fn new(capacity: usize) -> Ring {
        Ring {
            slots: Vec::with_capacity(capacity),
            capacity: capacity.max(1),
            written: 0,
        }
    }

    /// Record one rejection; false when its DID was too long to keep.
    fn push(&mut self, time_micros: u64, reason: &'static str, rejected: &Rejected<'_>) -> bool {
        let did = rejected
            .did
            .filter(|d| d.len() <= INGEST_REJECTION_LOG_DID_BYTES_MAX);
        let index = (self.written % self.capacity as u64) as usize;
        let order = self.written;
        self.written += 1;
        if self.slots.len() <= index {
            self.slots.push(Slot {
                time_micros,
                order,
                reason,
                host: rejected.host.cloned(),
                did: did.map(str::to_owned).unwrap_or_default(),
                has_did: did.is_some(),
                seq: rejected.seq,
                frame_type: rejected.frame_type,
            });
        } else if let Some(slot) = self.slots.get_mut(index) {
            slot.time_micros = time_micros;
            slot.order = order;
            slot.reason = reason;
            slot.host = rejected.host.cloned();
            slot.did.clear();
            slot.did.push_str(did.unwrap_or_default());
            slot.has_did = did.is_some();
            slot.seq = rejected.seq;
            slot.frame_type = rejected.frame_type;
        }
        did.is_some() || rejected.did.is_none()
    }

    /// Up to `limit` entries matching `filter`, newest first, appended to `out`.
    fn collect(
        &self,
        shard: u16,
        filter: RejectionFilter<'_>,
        limit: usize,
        out: &mut Vec<RejectionEntry>,
    ) {
        let len = self.slots.len();
        let newest = (self.written % self.capacity as u64) as usize;
        // Newest first: the slot before the write position, backwards, wrapping.
        let order = (0..len).map(|back| (newest + len - 1 - back) % len);
        let matching = order
            .filter_map(|index| self.slots.get(index))
            .filter(|slot| filter.matches(slot))
            .take(limit);
        out.extend(matching.map(|slot| RejectionEntry {
            time_micros: slot.time_micros,
            reason: slot.reason,
            host: slot.host.clone(),
            did: slot.has_did.then(|| slot.did.clone()),
            seq: slot.seq,
            frame_type: slot.frame_type,
            shard,
            order: slot.order,
        }));
    }
}

/// The rejection ring of one ingest shard (the shard records, admin readers collect).
#[derive(Debug)]
pub struct ShardRejections {
    shard: u16,
    ring: Mutex<Ring>,
    contended: metrics::Counter,
    did_too_long: metrics::Counter,
}

impl ShardRejections {
    /// The ring of `shard`, holding the last `capacity` rejections (at most
    /// `INGEST_REJECTION_LOG_ENTRIES_PER_SHARD_MAX`).
    pub fn new(shard: u16, capacity: usize) -> ShardRejections {
        let label = shard.to_string();
        let dropped = |reason: &'static str| metrics::counter!("relay_verify_rejection_log_dropped_total", "reason" => reason, "shard" => label.clone());
        ShardRejections {
            shard,
            ring: Mutex::new(Ring::new(
                capacity.min(INGEST_REJECTION_LOG_ENTRIES_PER_SHARD_MAX),
            )),
            contended: dropped("contended"),
            did_too_long: dropped("did_too_long"),
        }
    }

    /// Record a rejection at `time_micros`, never waiting: if a reader holds the ring the
    /// entry is dropped and counted.
    pub fn record(&self, time_micros: u64, reason: &'static str, rejected: &Rejected<'_>) {
        let mut ring = match self.ring.try_lock() {
            Ok(ring) => ring,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => {
                self.contended.increment(1);
                return;
            }
        };
        if !ring.push(time_micros, reason, rejected) {
            self.did_too_long.increment(1);
        }
    }

    /// Up to `limit` entries matching `filter`, newest first, appended to `out`. Yields to
    /// the executor while the shard holds the ring (a few hundred nanoseconds at most).
    pub async fn collect(
        &self,
        filter: RejectionFilter<'_>,
        limit: usize,
        out: &mut Vec<RejectionEntry>,
    ) {
        let ring = lock_yielding(&self.ring).await;
        ring.collect(self.shard, filter, limit, out);
    }
}

/// Every shard's ring; `Send + Sync`, shared by the ingest shards and the API cores.
#[derive(Debug, Default)]
pub struct RejectionLog {
    shards: Vec<Arc<ShardRejections>>,
}

impl RejectionLog {
    /// Rings for `shards` ingest shards, `INGEST_REJECTION_LOG_ENTRIES_PER_SHARD_MAX` each.
    pub fn new(shards: usize) -> RejectionLog {
        RejectionLog::with_capacity(shards, INGEST_REJECTION_LOG_ENTRIES_PER_SHARD_MAX)
    }

    /// Rings of `capacity` entries (tests shrink them; capped at the limit).
    pub fn with_capacity(shards: usize, capacity: usize) -> RejectionLog {
        RejectionLog {
            shards: (0..shards)
                .map(|shard| Arc::new(ShardRejections::new(shard as u16, capacity)))
                .collect(),
        }
    }

    /// The ring of one shard, for its verifier.
    pub fn shard(&self, shard: usize) -> Option<Arc<ShardRejections>> {
        self.shards.get(shard).cloned()
    }

    /// Up to `limit` entries matching `filter` across every shard, newest first.
    pub async fn query(&self, filter: RejectionFilter<'_>, limit: usize) -> Vec<RejectionEntry> {
        let mut out = Vec::new();
        for shard in &self.shards {
            shard.collect(filter, limit, &mut out).await;
        }
        newest_first(out, limit)
    }
}

/// Merge the shards' newest-first lists: by time, then by each shard's own order.
fn newest_first(mut entries: Vec<RejectionEntry>, limit: usize) -> Vec<RejectionEntry> {
    entries.sort_by_key(|e| std::cmp::Reverse((e.time_micros, e.order, e.shard)));
    entries.truncate(limit);
    entries
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(log: &RejectionLog, filter: RejectionFilter<'_>, limit: usize) -> Vec<RejectionEntry> {
        futures_lite::future::block_on(log.query(filter, limit))
    }

    fn host(name: &str) -> Arc<str> {
        Arc::from(name)
    }

    fn record(ring: &ShardRejections, time: u64, reason: &'static str, h: &Arc<str>, did: &str) {
        ring.record(
            time,
            reason,
            &Rejected {
                host: Some(h),
                did: Some(did),
                seq: Some(time),
                frame_type: Some("commit"),
            },
        );
    }

    #[test]
    fn the_ring_keeps_the_newest_entries_up_to_its_bound() {
        let log = RejectionLog::with_capacity(1, 4);
        let ring = log.shard(0).unwrap();
        let a = host("a.example");
        for time in 1..=10 {
            record(&ring, time, "bad_signature", &a, "did:plc:one");
        }
        let got = query(&log, RejectionFilter::Host("a.example"), 100);
        let times: Vec<u64> = got.iter().map(|e| e.time_micros).collect();
        assert_eq!(times, [10, 9, 8, 7], "newest first, the oldest overwritten");
        assert!(got.iter().all(|e| e.seq == Some(e.time_micros)
            && e.did.as_deref() == Some("did:plc:one")
            && e.frame_type == Some("commit")
            && e.shard == 0));
        let limited = query(&log, RejectionFilter::Host("a.example"), 2);
        assert_eq!(limited.len(), 2);
        assert_eq!(limited[0].time_micros, 10);
    }

    #[test]
    fn filters_select_by_host_or_by_did() {
        let log = RejectionLog::with_capacity(1, 16);
        let ring = log.shard(0).unwrap();
        let (a, b) = (host("a.example"), host("b.example:8080"));
        record(&ring, 1, "bad_signature", &a, "did:plc:one");
        record(&ring, 2, "mst_inversion", &b, "did:plc:two");
        record(&ring, 3, "rev_not_newer", &a, "did:plc:two");
        ring.record(
            4,
            "frame_body_not_cbor",
            &Rejected {
                host: Some(&b),
                ..Rejected::default()
            },
        );
        let reasons = |filter| {
            query(&log, filter, 100)
                .iter()
                .map(|e| e.reason)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            reasons(RejectionFilter::Host("a.example")),
            ["rev_not_newer", "bad_signature"]
        );
        assert_eq!(
            reasons(RejectionFilter::Host("b.example:8080")),
            ["frame_body_not_cbor", "mst_inversion"]
        );
        assert_eq!(
            reasons(RejectionFilter::Did("did:plc:two")),
            ["rev_not_newer", "mst_inversion"]
        );
        assert!(reasons(RejectionFilter::Did("did:plc:none")).is_empty());
        assert!(reasons(RejectionFilter::Host("c.example")).is_empty());
        // An entry without a DID keeps no stale DID from the slot it overwrote.
        let small = RejectionLog::with_capacity(1, 1);
        let ring = small.shard(0).unwrap();
        record(&ring, 1, "bad_signature", &a, "did:plc:one");
        ring.record(
            2,
            "frame_body_not_cbor",
            &Rejected {
                host: Some(&a),
                ..Rejected::default()
            },
        );
        assert!(query(&small, RejectionFilter::Did("did:plc:one"), 10).is_empty());
        assert_eq!(
            query(&small, RejectionFilter::Host("a.example"), 10)[0].did,
            None
        );
    }

    #[test]
    fn shards_merge_newest_first_and_overlong_dids_are_left_out() {
        let log = RejectionLog::with_capacity(2, 8);
        let a = host("a.example");
        let (zero, one) = (log.shard(0).unwrap(), log.shard(1).unwrap());
        record(&zero, 1, "r1", &a, "did:plc:x");
        record(&one, 2, "r2", &a, "did:plc:x");
        record(&zero, 3, "r3", &a, "did:plc:x");
        let got = query(&log, RejectionFilter::Did("did:plc:x"), 10);
        let seen: Vec<(u64, u16)> = got.iter().map(|e| (e.time_micros, e.shard)).collect();
        assert_eq!(seen, [(3, 0), (2, 1), (1, 0)]);
        let long = format!("did:web:{}", "x".repeat(INGEST_REJECTION_LOG_DID_BYTES_MAX));
        record(&one, 4, "r4", &a, &long);
        let newest = &query(&log, RejectionFilter::Host("a.example"), 1)[0];
        assert_eq!((newest.reason, newest.did.as_deref()), ("r4", None));
        assert!(log.shard(2).is_none());
    }

    #[test]
    fn a_held_ring_drops_the_entry_instead_of_waiting() {
        let log = RejectionLog::with_capacity(1, 8);
        let ring = log.shard(0).unwrap();
        let a = host("a.example");
        {
            let _held = ring.ring.lock().unwrap();
            record(&ring, 1, "bad_signature", &a, "did:plc:one");
        }
        record(&ring, 2, "bad_signature", &a, "did:plc:one");
        let got = query(&log, RejectionFilter::Host("a.example"), 10);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].time_micros, 2);
    }
}
