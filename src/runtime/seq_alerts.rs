//! The hosts whose upstream sequence went backwards: for each, what the ingest verifier saw
//! when it noticed (the relay's cursor, the host's seq, the time), read by
//! `GET /admin/hosts` on whichever core the request lands, so the listing tells the
//! operator to reset the host's cursor.
//!
//! Owns: the map (host id → [`SeqRegression`]) and its bound
//! (`INGEST_SEQ_REGRESSION_HOSTS_MAX` hosts). Must not: decide what a regression is (the
//! verifier does, in `runtime::ingest`), count it (`relay_upstream_seq_regressions_total`
//! is counted there), reset anything (only the operator's `resetCursor` clears an entry:
//! a hostile PDS could otherwise replay old events by restarting its seq), or wait on its
//! mutex on a data-plane executor.
//!
//! Policy: the verifier records with `try_lock` only and tries again on the host's next
//! refused frame when the map was held by a reader (the regression refuses every frame
//! until the operator acts, so a retry always comes); the map full → the host is not
//! listed (it stays counted and logged). Readers and the reset take the mutex with
//! `lock_yielding`. The map lives in memory: a restart forgets it, and the first frame
//! below the stored cursor records it again.

use crate::config::limits::INGEST_SEQ_REGRESSION_HOSTS_MAX;
use crate::runtime::shared_lock::lock_yielding;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// What the verifier saw when a host's seq went back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeqRegression {
    /// The relay's cursor for the host then (the highest seq it accepted, or resumed from).
    pub cursor: u64,
    /// The host's seq that was not above it; `None` when the host said `FutureCursor`.
    pub seq: Option<u64>,
    /// Wall-clock time, microseconds since the Unix epoch.
    pub time_micros: u64,
}

/// Whether [`SeqAlerts::try_record`] recorded the regression.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// Listed (or already listed for the host).
    Yes,
    /// The map holds `INGEST_SEQ_REGRESSION_HOSTS_MAX` other hosts: not listed.
    Full,
    /// A reader held the map: try again later.
    Contended,
}

/// The flagged hosts, shared by every ingest shard and the admin API.
#[derive(Debug, Default)]
pub struct SeqAlerts {
    hosts: Mutex<BTreeMap<u64, SeqRegression>>,
}

impl SeqAlerts {
    /// Flag `host` without waiting. A host already flagged keeps its first record (the
    /// moment its sequence went back is what the operator needs).
    pub fn try_record(&self, host: u64, regression: SeqRegression) -> Recorded {
        let mut hosts = match self.hosts.try_lock() {
            Ok(guard) => guard,
            Err(std::sync::TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return Recorded::Contended,
        };
        if hosts.contains_key(&host) {
            return Recorded::Yes;
        }
        if hosts.len() >= INGEST_SEQ_REGRESSION_HOSTS_MAX {
            return Recorded::Full;
        }
        hosts.insert(host, regression);
        Recorded::Yes
    }

    /// The operator reset the host's cursor: it is no longer flagged.
    pub async fn clear(&self, host: u64) {
        lock_yielding(&self.hosts).await.remove(&host);
    }

    /// The flags of the hosts in `ids` that have one.
    pub async fn of(&self, ids: &[u64]) -> BTreeMap<u64, SeqRegression> {
        let hosts = lock_yielding(&self.hosts).await;
        ids.iter()
            .filter_map(|id| hosts.get(id).map(|r| (*id, *r)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: SeqRegression = SeqRegression {
        cursor: 500,
        seq: Some(1),
        time_micros: 7,
    };

    #[test]
    fn the_first_record_stays_until_cleared() {
        let alerts = SeqAlerts::default();
        assert_eq!(alerts.try_record(3, AT), Recorded::Yes);
        let later = SeqRegression { seq: Some(2), ..AT };
        assert_eq!(alerts.try_record(3, later), Recorded::Yes);
        futures_lite::future::block_on(async {
            assert_eq!(alerts.of(&[3, 4]).await.get(&3), Some(&AT));
            alerts.clear(3).await;
            assert!(alerts.of(&[3]).await.is_empty());
        });
    }

    #[test]
    fn a_held_map_is_contended_not_waited_for() {
        let alerts = SeqAlerts::default();
        let held = alerts.hosts.lock().unwrap();
        assert_eq!(alerts.try_record(1, AT), Recorded::Contended);
        drop(held);
        assert_eq!(alerts.try_record(1, AT), Recorded::Yes);
    }
}
