//! Verification of what arrives after decoding: repository structure (the Merkle Search
//! Tree and Sync 1.1 commit proofs) and, alongside, commit signatures.
//!
//! Owns: the semantic checks a relay applies to a decoded commit before relaying it.
//! Must not: do IO, await, or decode wire formats itself (that is `frame`); every check is
//! a pure function over blocks the caller already holds.

pub mod mst;
