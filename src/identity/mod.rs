//! Identity: who an account is and which key signs for it.
//!
//! Owns the public-key forms of atproto accounts (`key`) and the text encodings that
//! carry them (`multibase`). Must not verify signatures (that is `verify`) or do
//! network IO (resolution belongs to a resolver on the edge, not here).

pub mod key;
pub mod key_cache;
pub mod multibase;
