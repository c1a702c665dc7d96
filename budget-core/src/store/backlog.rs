//! [`Backlog`]: for a store that writes usage behind, how much settled usage waits for its
//! writer, whether the writer is failing, and the limit past which new reservations are
//! refused (fail closed rather than spend money that cannot be recorded).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use std::time::Instant;

use chrono::{DateTime, Utc};

use super::{WriteFailure, WriteStatus};

/// How much unsaved usage the store accepts while the writer fails, before `reserve` fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnsavedLimits {
    /// Refuse once this many events wait unsaved.
    pub events: usize,
    /// Refuse once the oldest unsaved event has waited this long.
    pub age: Duration,
}

/// Why a store refuses new reservations: usage it accepted cannot be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("usage cannot be saved ({error}): {events} settled usage event(s) unsaved, the oldest for {seconds} s; refusing new requests until they are written")]
pub struct Unsaved {
    /// Events waiting.
    pub events: usize,
    /// Seconds the oldest has waited.
    pub seconds: u64,
    /// The writer's last error.
    pub error: String,
}

/// A run of failed commits.
#[derive(Debug, Clone)]
struct Failure {
    error: Arc<str>,
    since: DateTime<Utc>,
    started: Instant,
    /// When the oldest unsaved event reached the writer.
    oldest: Instant,
}

/// Shared between the store (which counts events in) and the writer (which counts them out
/// and reports failures).
#[derive(Debug, Default)]
pub struct Backlog {
    /// Events sent to the writer and not yet committed.
    pending: AtomicUsize,
    /// Failed commit attempts since the store opened.
    errors: AtomicU64,
    /// Whether `failure` is set (read on every `reserve` without taking the lock).
    failing: AtomicBool,
    failure: Mutex<Option<Failure>>,
}

/// What [`Backlog::recovered`] reports about the run of failures that ended.
#[derive(Debug)]
pub struct Recovery {
    /// How long the writer failed.
    pub failed_for: Duration,
}

impl Backlog {
    fn failure(&self) -> MutexGuard<'_, Option<Failure>> {
        self.failure.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Events waiting for a commit.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }

    /// Whether the last commit attempt failed.
    pub fn is_failing(&self) -> bool {
        self.failing.load(Ordering::Acquire)
    }

    /// One more event queued for the writer.
    pub fn queued(&self) {
        self.pending.fetch_add(1, Ordering::Relaxed);
    }

    /// `n` events committed (or dropped on purpose, e.g. purged before they were written).
    pub fn saved(&self, n: usize) {
        self.pending.fetch_sub(n, Ordering::Relaxed);
    }

    /// A commit failed; `oldest` is when the oldest event of the failed batch arrived.
    /// Returns how long the writer has been failing (zero for the first failure of a run).
    pub fn failed(&self, error: &dyn std::fmt::Display, oldest: Instant) -> Duration {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let mut f = self.failure();
        let run = f.get_or_insert_with(|| Failure {
            error: Arc::from(""),
            since: Utc::now(),
            started: now,
            oldest,
        });
        run.error = Arc::from(error.to_string());
        run.oldest = run.oldest.min(oldest);
        self.failing.store(true, Ordering::Release);
        now - run.started
    }

    /// A commit succeeded. If it ended a run of failures, say how long that run was.
    pub fn recovered(&self) -> Option<Recovery> {
        if !self.failing.load(Ordering::Acquire) {
            return None;
        }
        let run = self.failure().take();
        self.failing.store(false, Ordering::Release);
        run.map(|r| Recovery {
            failed_for: r.started.elapsed(),
        })
    }

    /// While the writer fails and the unsaved usage is past `limits`, the error `reserve`
    /// answers with.
    pub fn refusal(&self, limits: &UnsavedLimits) -> Option<Unsaved> {
        if !self.failing.load(Ordering::Acquire) {
            return None;
        }
        let f = self.failure().clone()?;
        let events = self.pending();
        let waited = f.oldest.elapsed();
        (events >= limits.events || waited >= limits.age).then(|| Unsaved {
            events,
            seconds: waited.as_secs(),
            error: f.error.to_string(),
        })
    }

    /// The status `/health` and the metrics report.
    pub fn status(&self, limits: &UnsavedLimits) -> WriteStatus {
        let failing = self.failure().clone().map(|f| WriteFailure {
            error: f.error.to_string(),
            since: f.since,
            oldest_unsaved_seconds: f.oldest.elapsed().as_secs(),
        });
        WriteStatus {
            unsaved_events: self.pending() as u64,
            write_errors: self.errors.load(Ordering::Relaxed),
            refusing: self.refusal(limits).is_some(),
            failing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_past_the_event_limit_only_while_failing() {
        let b = Backlog::default();
        let limits = UnsavedLimits {
            events: 3,
            age: Duration::from_secs(3600),
        };
        for _ in 0..5 {
            b.queued();
        }
        assert!(
            b.refusal(&limits).is_none(),
            "a healthy backlog is not refused"
        );
        let e = "disk full";
        b.failed(&e, Instant::now());
        let status = b.status(&limits);
        assert_eq!((status.unsaved_events, status.write_errors), (5, 1));
        assert!(status.refusing);
        assert!(status.failing.unwrap().error.contains("disk full"));
        b.saved(3);
        assert!(b.refusal(&limits).is_none(), "2 < 3 events");
        assert!(b.recovered().is_some());
        assert!(b.recovered().is_none(), "one report per run");
        let status = b.status(&limits);
        assert_eq!((status.failing, status.write_errors), (None, 1));
    }

    #[test]
    fn refuses_past_the_age_limit() {
        let b = Backlog::default();
        let limits = UnsavedLimits {
            events: 1_000,
            age: Duration::ZERO,
        };
        b.queued();
        b.failed(&"x", Instant::now());
        let refusal = b.refusal(&limits).expect("refused");
        assert!(
            refusal.to_string().contains("1 settled usage event"),
            "{refusal}"
        );
    }
}
