//! [`lock_yielding`]: take a `std::sync::Mutex` shared with other threads from a task on
//! a glommio executor without blocking the executor.
//!
//! Owns nothing but the retry loop. Must not: be used for locks held across work that
//! takes long (the loop spins through the executor's task queue while it waits); every
//! mutex taken here is held by its other users for a short copy only (a rejection slot
//! written, a consumer list cloned).

use std::sync::{Mutex, MutexGuard, TryLockError};

/// Take `mutex`: try it, and yield to the executor between attempts. A poisoned mutex is
/// taken as it is (its holders only copy plain values; nothing is left half done).
pub async fn lock_yielding<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    loop {
        match mutex.try_lock() {
            Ok(guard) => return guard,
            Err(TryLockError::Poisoned(poisoned)) => return poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => futures_lite::future::yield_now().await,
        }
    }
}
