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

    /// Run `task` at once if it finishes without waiting — the common case, a store that
    /// settles in memory and queues the write — and spawn the rest of it on `handle`, counted
    /// until it finishes, if it has to wait. Saves a task and a wake-up per request. While the
    /// thread is unwinding from a panic the task is spawned instead (a panic inside a drop
    /// during unwinding would abort); a panic of the task itself is contained and logged.
    pub(crate) fn run<F>(&self, handle: &tokio::runtime::Handle, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let mut task = Box::pin(task);
        if !std::thread::panicking() {
            let _runtime = handle.enter();
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                task.as_mut().poll(&mut cx).is_ready()
            }));
            match polled {
                Ok(true) => return,
                Ok(false) => {}
                Err(_) => {
                    tracing::error!("a settlement panicked; its usage is not recorded");
                    return;
                }
            }
        }
        self.spawn(handle, task);
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
    async fn run_finishes_ready_work_at_once_and_spawns_what_waits() {
        let s = Settlements::default();
        let handle = tokio::runtime::Handle::current();
        let done = Arc::new(AtomicUsize::new(0));
        let d = done.clone();
        s.run(&handle, async move {
            d.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(done.load(Ordering::SeqCst), 1, "ran inline");
        assert_eq!(s.running(), 0, "nothing spawned");

        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let d = done.clone();
        s.run(&handle, async move {
            rx.await.unwrap();
            d.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(s.running(), 1, "waiting: spawned and counted");
        tx.send(()).unwrap();
        s.idle().await;
        assert_eq!(done.load(Ordering::SeqCst), 2);

        s.run(&handle, async { panic!("boom") });
        assert_eq!(s.running(), 0, "a panic is contained");
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
