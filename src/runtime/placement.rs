//! Core roles: which executor runs ingest shards, the sequencer and fan-out, for a given
//! `--cores`, and which ingest shard owns a host.
//!
//! Owns: the placement table of docs/ARCHITECTURE.md and the stable host → shard hash.
//! Must not: start threads or know what the roles do (that is `runtime::serve`).

/// What one executor runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CoreRoles {
    /// The executor's index (0-based; pinned to the n-th allowed CPU where there is one).
    pub executor: usize,
    /// The ingest shard it owns, if any.
    pub ingest_shard: Option<usize>,
    /// Whether it runs the sequencer.
    pub sequencer: bool,
    /// Whether it accepts downstream consumers.
    pub fanout: bool,
}

/// The roles of every executor for `cores` executors (at least one).
///
/// | cores | placement |
/// |---|---|
/// | 1 | one executor runs ingest, sequencer and fan-out |
/// | 2 | core 0: ingest shard 0 + fan-out; core 1: sequencer + ingest shard 1 |
/// | N ≥ 3 | cores 0..N−1: ingest shards with fan-out; core N−1: the sequencer |
pub fn plan(cores: usize) -> Vec<CoreRoles> {
    let cores = cores.max(1);
    match cores {
        1 => vec![CoreRoles {
            executor: 0,
            ingest_shard: Some(0),
            sequencer: true,
            fanout: true,
        }],
        2 => vec![
            CoreRoles {
                executor: 0,
                ingest_shard: Some(0),
                sequencer: false,
                fanout: true,
            },
            CoreRoles {
                executor: 1,
                ingest_shard: Some(1),
                sequencer: true,
                fanout: false,
            },
        ],
        n => (0..n)
            .map(|executor| CoreRoles {
                executor,
                ingest_shard: (executor < n - 1).then_some(executor),
                sequencer: executor == n - 1,
                fanout: executor < n - 1,
            })
            .collect(),
    }
}

/// Number of ingest shards in a plan.
pub fn ingest_shards(plan: &[CoreRoles]) -> usize {
    plan.iter().filter(|r| r.ingest_shard.is_some()).count()
}

/// The ingest shard of `hostname` among `shards`: FNV-1a of the lower-cased name, so the
/// assignment is stable across restarts and moves only when the shard count changes.
pub fn shard_of_host(hostname: &str, shards: usize) -> usize {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in hostname.bytes() {
        hash ^= u64::from(byte.to_ascii_lowercase());
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (hash % shards.max(1) as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_plan_has_one_sequencer_and_at_least_one_ingest_and_fanout_core() {
        for cores in 1..=16 {
            let plan = plan(cores);
            assert_eq!(plan.len(), cores);
            assert_eq!(plan.iter().filter(|r| r.sequencer).count(), 1);
            assert!(ingest_shards(&plan) >= 1);
            assert!(plan.iter().any(|r| r.fanout));
            let shards: Vec<_> = plan.iter().filter_map(|r| r.ingest_shard).collect();
            assert_eq!(shards, (0..shards.len()).collect::<Vec<_>>());
        }
    }

    #[test]
    fn host_assignment_is_stable_and_case_blind() {
        assert_eq!(
            shard_of_host("pds.example.com", 7),
            shard_of_host("PDS.example.COM", 7)
        );
        assert_eq!(shard_of_host("a", 1), 0);
        let spread: std::collections::HashSet<_> = (0..64)
            .map(|i| shard_of_host(&format!("host{i}"), 4))
            .collect();
        assert_eq!(spread.len(), 4);
    }
}
