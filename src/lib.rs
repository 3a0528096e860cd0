//! relay: an AT Protocol relay.
//!
//! The crate is one package (library + thin binary). Modules are organised by role;
//! each opens with a doc comment saying what it owns and what it must not touch.
//! docs/ARCHITECTURE.md has the data path and the module map.

// Malformed input is a typed rejection, never a crash: the library may not unwrap,
// expect or panic (tests may; clippy.toml allows it there).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[cfg(feature = "server")]
pub mod admin;
pub mod api;
#[cfg(feature = "server")]
pub mod bench;
pub mod collections;
pub mod config;
pub mod eventlog;
#[cfg(feature = "server")]
pub mod fanout;
pub mod frame;
pub mod identity;
pub mod runtime;
pub mod sequencer;
pub mod sim;
#[cfg(feature = "server")]
pub mod state;
pub mod syntax;
pub mod tail;
pub mod upstream;
pub mod verify;
