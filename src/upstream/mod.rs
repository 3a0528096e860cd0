//! Upstream: the per-host WebSocket sessions of an ingest core.
//!
//! Owns: reading each host's stream into the core's shared-memory frame buffer
//! (`reader`); *planned*: the session loop over glommio sockets and rustls, reconnect with
//! capped exponential backoff and jitter, per-host cursors, per-socket seq monotonicity,
//! the `Server`-header loop guard, rate limits, SSRF checks.
//! Must not: assign relay seqs, write the event log, or decode beyond the WebSocket frame.

pub mod reader;
