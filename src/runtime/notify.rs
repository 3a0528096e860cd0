//! [`Notify`]: wake one task on a glommio executor from any thread (the event-log writer
//! thread says "more is durable"; a resolver thread says "a key arrived").
//!
//! Owns: one flag and one waker slot. Must not: carry data (the state it announces lives
//! elsewhere, e.g. the log's durable-seq atomic) or allocate per notification.
//! Glommio wakes a task from a foreign thread through its executor's notifier, so a plain
//! `Waker` is enough here.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};

/// A level-triggered, single-waiter notification.
#[derive(Debug, Default)]
pub struct Notify {
    pending: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Notify {
    /// A notification with nothing pending.
    pub fn new() -> Self {
        Notify::default()
    }

    /// Mark pending and wake the waiter, if any. Callable from any thread.
    pub fn notify(&self) {
        self.pending.store(true, Ordering::Release);
        let waker = match self.waker.lock() {
            Ok(mut slot) => slot.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Resolves once a notification is pending (consuming it).
    pub fn notified(&self) -> Notified<'_> {
        Notified { notify: self }
    }

    fn poll_pending(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.pending.swap(false, Ordering::AcqRel) {
            return Poll::Ready(());
        }
        match self.waker.lock() {
            Ok(mut slot) => *slot = Some(cx.waker().clone()),
            Err(poisoned) => *poisoned.into_inner() = Some(cx.waker().clone()),
        }
        // A notify between the swap and storing the waker would be lost without this.
        if self.pending.swap(false, Ordering::AcqRel) {
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

/// The future of [`Notify::notified`].
#[derive(Debug)]
pub struct Notified<'a> {
    notify: &'a Notify,
}

impl Future for Notified<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.notify.poll_pending(cx)
    }
}
