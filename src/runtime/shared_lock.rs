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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn a_held_mutex_is_taken_once_its_holder_lets_go() {
        let mutex = Arc::new(Mutex::new(0u32));
        let held = mutex.lock().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = {
            let mutex = Arc::clone(&mutex);
            std::thread::spawn(move || {
                futures_lite::future::block_on(async {
                    tx.send(()).unwrap();
                    *lock_yielding(&mutex).await += 1;
                })
            })
        };
        rx.recv().unwrap();
        std::thread::sleep(Duration::from_millis(20));
        drop(held);
        waiter.join().unwrap();
        assert_eq!(*mutex.lock().unwrap(), 1);
    }
}
