//! Fan-out: downstream `subscribeRepos` sessions, cursor replay from the event log, then
//! the live tail, from the same frame bytes for every consumer.
//!
//! Must not: assign seqs, verify, or write the event log.
