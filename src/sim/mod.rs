//! The simulator: deterministic generation of accounts, repos and firehose events, and
//! the fleet of simulated PDS hosts (`relay sim`) that serves them.
//!
//! `account` (sans-IO) owns key derivation from seeds, repo state (a real MST with its
//! full block store), the rev clock, and the encoding of `#commit`, `#sync`, `#identity`
//! and `#account` frames, honest or hostile; it does no IO, reads no clock and uses no
//! randomness: every input (seed, time, seq) is a parameter, so the same inputs give the
//! same bytes. `hostile` names the fleet's hostile modes. Behind the `server` feature,
//! `fleet` (with its private `generator` and `host` threads) and `plc` run the hosts and
//! the PLC directory on loopback (docs/SIM.md). Nothing here checks what a relay checks;
//! its frames are the input those checks are tested against, counted by intent.

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
