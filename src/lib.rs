//! relay: an AT Protocol relay.
//!
//! The crate is one package (library + thin binary). Modules are organised by role;
//! each opens with a doc comment saying what it owns and what it must not touch.
//! docs/ARCHITECTURE.md has the data path and the module map.

pub mod config;
pub mod frame;
pub mod verify;
