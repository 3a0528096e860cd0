//! The HTTP surface: framing (`http`), and (planned) routing of the `com.atproto.sync.*`
//! endpoints, the WebSocket upgrade handed to `fanout`, and XRPC error bodies.
//!
//! Must not: hold business logic; handlers call into `state`, `fanout` and `admin`.

pub mod http;
#[cfg(feature = "server")]
pub mod server;
#[cfg(feature = "server")]
pub mod xrpc;
