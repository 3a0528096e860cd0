//! The simulator core: deterministic generation of accounts, repos and firehose events
//! for `relay sim`, a fleet of simulated PDS hosts.
//!
//! Owns key derivation from seeds, repo state (a real MST with its full block store),
//! the rev clock, and the encoding of `#commit`, `#sync`, `#identity` and `#account`
//! frames, honest or hostile. Must not do IO, read clocks or use randomness: every input
//! (seed, time, seq) is a parameter, so the same inputs give the same bytes. It checks
//! nothing a relay checks; its frames are the input those checks are tested against.

pub mod account;
#[cfg(feature = "server")]
pub mod fleet;
#[cfg(feature = "server")]
mod generator;
#[cfg(feature = "server")]
mod host;
pub mod hostile;
#[cfg(feature = "server")]
pub mod plc;

pub use account::{Hostile, SimAccount, SimError, SimOp};
pub mod cli;
