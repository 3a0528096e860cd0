//! Upstream: the per-host WebSocket sessions of an ingest core.
//!
//! Owns: reading each host's stream into the core's shared-memory frame buffer
//! (`reader`); the session loop over glommio sockets and rustls (`session`, `connect`,
//! `tls`), reconnect with capped exponential backoff and full jitter (`backoff`), the
//! connect target, plaintext policy and `Server`-header loop guard (`target`), and the
//! disconnect reasons (`error`). The per-host cursor and per-socket seq monotonicity are
//! decided by the ingest core's verifier, which drives a session through
//! `session::SessionControl`; per-host event rate limits as sliding windows (`rate`, sans-IO),
//! which the session waits on before it hands a frame over (backpressure, never a drop).
//! *Planned*: SSRF checks (host admission).
//! Must not: assign relay seqs, write the event log, or decode beyond the WebSocket frame.

pub mod backoff;
#[cfg(feature = "server")]
pub mod connect;
pub mod error;
#[cfg(feature = "server")] // speaks in the state layer's rate type
pub mod rate;
pub mod reader;
#[cfg(feature = "server")]
pub mod session;
pub mod target;
#[cfg(feature = "server")]
pub mod tls;
