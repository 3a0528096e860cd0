//! Verify: pure checks of what upstream hosts send, after decoding.
//!
//! Owns: commit signatures (`signature`), repository structure — the Merkle Search Tree
//! and Sync 1.1 commit proofs (`mst`), the per-host limit rules — stored settings, account
//! limit growth, default rates (`limits`).
//! Must not: do IO, await, mutate state, or decode wire formats itself (that is `frame`);
//! every check is a synchronous function of the blocks, keys and state the caller holds.

pub mod commit;
#[cfg(feature = "server")] // speaks in the state layer's host record and rate types
pub mod limits;
pub mod mst;
pub mod rules;
pub mod signature;
