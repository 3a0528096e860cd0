//! Identity: who an account is and which key signs for it.
//!
//! Owns the public-key forms of atproto accounts (`key`) and the text encodings that
//! carry them (`multibase`), DID documents (`did_doc`), and, with the `server` feature,
//! resolution: blocking lookups (`resolver`, over `transport`) run by a pool of worker
//! threads behind a bounded cache and request queue (`service`). Must not verify
//! signatures (that is `verify`); network IO never runs on a data-plane executor.

pub mod did_doc;
pub mod key;
pub mod key_cache;
pub mod multibase;
#[cfg(feature = "server")]
pub mod resolver;
#[cfg(feature = "server")]
pub mod service;
#[cfg(feature = "server")]
pub mod transport;
