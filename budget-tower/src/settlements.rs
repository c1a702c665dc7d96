//! Settlements are tasks the layer spawns (a response body settles when it ends or is
//! dropped, off the poll path); they are counted here so shutdown and tests can wait for them
//! instead of polling the store or sleeping.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

/// The settlements and releases a layer has spawned and not yet finished.
#[derive(Debug, Clone, Default)]
pub(crate) struct Settlements {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    running: AtomicUsize,
    idle: Notify,
}

/// Decrements the count when the task ends, however it ends (panic included).
struct Running(Arc<Inner>);

impl Drop for Running {
    fn drop(&mut self) {
        if self.0.running.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl Settlements {
    /// Spawn `task` on `handle`, counted until it finishes.
    pub(crate) fn spawn<F>(&self, handle: &tokio::runtime::Handle, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.inner.running.fetch_add(1, Ordering::AcqRel);
        let running = Running(self.inner.clone());
        handle.spawn(async move {
            let _running = running;
            task.await;
        });
    }

    /// How many are running.
    pub(crate) fn running(&self) -> usize {
        self.inner.running.load(Ordering::Acquire)
    }

    /// Wait until none is running (returns at once if none is).
    pub(crate) async fn idle(&self) {
        loop {
            let notified = self.inner.idle.notified();
            tokio::pin!(notified);
            // Register before checking, so a task ending in between still wakes us.
            notified.as_mut().enable();
            if self.running() == 0 {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn idle_waits_for_every_spawned_task() {
        let s = Settlements::default();
        s.idle().await; // nothing running
        let done = Arc::new(AtomicUsize::new(0));
        let handle = tokio::runtime::Handle::current();
        for i in 0..20u64 {
            let done = done.clone();
            s.spawn(&handle, async move {
                tokio::time::sleep(Duration::from_millis(i % 5 * 10)).await;
                done.fetch_add(1, Ordering::SeqCst);
            });
        }
        assert!(s.running() > 0);
        s.idle().await;
        assert_eq!(done.load(Ordering::SeqCst), 20);
        assert_eq!(s.running(), 0);
    }

    #[tokio::test]
    async fn a_panicking_task_still_counts_down() {
        let s = Settlements::default();
        s.spawn(&tokio::runtime::Handle::current(), async { panic!("boom") });
        tokio::time::timeout(Duration::from_secs(5), s.idle())
            .await
            .expect("idle after the panic");
    }
}
