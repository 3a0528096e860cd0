//! Runtime: the machinery the data plane runs on (core roles, rings, arenas, shutdown as
//! they land). Today: [`frames`], the shared-memory buffers that frame bytes are read into.
//!
//! Owns: memory and thread plumbing that carries bytes between cores. Must not: know any
//! atproto type (frames are opaque bytes here; decoding lives in `frame`, the seq splice
//! is computed by the sequencer), nor do socket IO (the upstream layer reads *into*
//! these buffers).
//!
//! The frame path this module serves (docs/frame-buffers.md has the whole design):
//!
//! ```text
//! ingest core                         sequencer core            log writer / consumers
//! socket read ──▶ WriteSlot (window   FrameHandle over the      OutFrame gather:
//!                 in its memfd        SPSC ring (24 bytes)  ──▶ prefix │ seq │ suffix
//!                 segment) ─commit─▶                            from the same bytes
//!       ▲                                                              │
//!       └──── poll_reclaim: a sealed segment whose live count is 0 ◀───┘ last drop
//! ```
//!
//! No user-space copy of frame bytes happens after the socket read, and no heap allocation
//! happens per frame: the region is sized once, segments are reused whole.

#[cfg(feature = "server")]
pub mod bootstrap;
pub mod frames;
#[cfg(feature = "server")]
pub mod identity_persist;
#[cfg(feature = "server")]
pub mod ingest;
#[cfg(feature = "server")]
pub mod logging;
#[cfg(feature = "server")]
pub mod metrics_http;
pub mod notify;
pub mod placement;
#[cfg(feature = "server")]
pub mod rejections;
#[cfg(feature = "server")]
pub mod resume;
#[cfg(feature = "server")]
pub mod seq_alerts;
#[cfg(feature = "server")]
pub mod serve;
#[cfg(feature = "server")]
pub mod shared_lock;
#[cfg(feature = "server")]
pub mod signals;
#[cfg(feature = "server")]
pub mod status_recheck;
