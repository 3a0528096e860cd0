//! `relay tail`: a checking consumer. It subscribes to any relay's (or PDS's)
//! `subscribeRepos`, decodes and re-verifies every event independently of the relay's own
//! code paths where it can (signature with the DID's key from the PLC directory, seq
//! strictly increasing, per-account rev order), and reports counts, gaps, duplicates and
//! end-to-end latency.
//!
//! Must not: share state with a relay under test; it is a client like any other.

pub mod cli;
