//! Verify: pure checks of what upstream hosts send.
//!
//! Owns the commit signature check (`signature`). Must not await, do IO, or mutate
//! state: every function here is a synchronous function of its inputs.

pub mod signature;
