//! Configuration: every bound of the relay as a named constant.
//!
//! Owns `limits` (the `*_max` constants). Must not do IO. Hot paths read these
//! constants directly; nothing here is computed at run time.

pub mod limits;
