//! Waiting for a count of work in progress to drop to zero, for shutdowns.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;

/// Resolves once `count` is zero. Whoever brings it to zero must call
/// `zeroed.notify_waiters()`; the waiter registers before it reads the
/// count, so no wake-up is missed.
pub async fn until_zero(count: &AtomicUsize, zeroed: &Notify) {
    loop {
        let notified = zeroed.notified();
        let mut notified = std::pin::pin!(notified);
        notified.as_mut().enable();
        if count.load(Ordering::SeqCst) == 0 {
            return;
        }
        notified.await;
    }
}
