//! [`PostgresStoreOptions`]: the connection and the lease protocol's knobs.

use std::time::Duration;

use budget_core::store::backlog::UnsavedLimits;

/// How to open a [`PostgresStore`](crate::PostgresStore). Every knob has a default that suits
/// a few replicas at up to a few thousand requests per second each.
#[derive(Debug, Clone)]
pub struct PostgresStoreOptions {
    pub(crate) url: String,
    pub(crate) max_connections: u32,
    pub(crate) lease_ttl: Duration,
    pub(crate) lease_grace: Duration,
    pub(crate) report_interval: Duration,
    pub(crate) flush_interval: Duration,
    pub(crate) batch_size: usize,
    pub(crate) refresh_interval: Duration,
    pub(crate) slice_demand: Duration,
    pub(crate) idle_return: Duration,
    pub(crate) limits: UnsavedLimits,
    pub(crate) connect_timeout: Duration,
    pub(crate) query_timeout: Duration,
}

impl PostgresStoreOptions {
    /// Options for the database at `url` (`postgres://user:password@host:5432/db`).
    pub fn new(url: impl Into<String>) -> Self {
        PostgresStoreOptions {
            url: url.into(),
            max_connections: 10,
            lease_ttl: Duration::from_secs(15),
            lease_grace: Duration::from_secs(5),
            report_interval: Duration::from_secs(1),
            flush_interval: Duration::from_millis(100),
            batch_size: 1_000,
            refresh_interval: Duration::from_secs(1),
            slice_demand: Duration::from_secs(2),
            idle_return: Duration::from_secs(2),
            limits: UnsavedLimits {
                events: 10_000,
                age: Duration::from_secs(60),
            },
            connect_timeout: Duration::from_secs(2),
            query_timeout: Duration::from_secs(10),
        }
    }

    /// Connections in the pool (default 10).
    pub fn with_max_connections(mut self, n: u32) -> Self {
        self.max_connections = n.max(2);
        self
    }

    /// How long a slice stays valid without a report from its replica (default 15 s). A
    /// replica that cannot reach the database admits from its slices until this runs out
    /// (less a safety margin), then refuses; a dead replica's unused slice returns to the pool
    /// after this plus the grace.
    pub fn with_lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl.max(Duration::from_secs(2));
        self
    }

    /// Extra time after a lease's expiry before another replica reclaims it (default 5 s):
    /// covers clock and scheduling delays of the replica that held it.
    pub fn with_lease_grace(mut self, grace: Duration) -> Self {
        self.lease_grace = grace;
        self
    }

    /// How often a replica reports on its slices: renews them, returns what it does not need,
    /// tells the database what is held in flight (default 1 s).
    pub fn with_report_interval(mut self, every: Duration) -> Self {
        self.report_interval = every.max(Duration::from_millis(50));
        self
    }

    /// The longest settled usage waits before it is written (default 100 ms).
    pub fn with_flush_interval(mut self, every: Duration) -> Self {
        self.flush_interval = every.max(Duration::from_millis(1));
        self
    }

    /// The most usage records written in one round trip (default 1 000).
    pub fn with_batch_size(mut self, n: usize) -> Self {
        self.batch_size = n.max(1);
        self
    }

    /// How often limiters changed by other replicas are reloaded when no notification
    /// arrives (default 1 s; notifications usually arrive within milliseconds).
    pub fn with_refresh_interval(mut self, every: Duration) -> Self {
        self.refresh_interval = every.max(Duration::from_millis(50));
        self
    }

    /// The size of slice a replica asks for, as time of its recent demand (default 2 s).
    /// Larger means fewer round trips and more money held in slices.
    pub fn with_slice_demand(mut self, demand: Duration) -> Self {
        self.slice_demand = demand;
        self
    }

    /// A slice nobody admitted from for this long is given back (default 2 s).
    pub fn with_idle_return(mut self, after: Duration) -> Self {
        self.idle_return = after;
        self
    }

    /// While the database fails, refuse new reservations once this many settled usage events
    /// wait unsaved (default 10 000).
    pub fn with_max_unsaved_events(mut self, n: usize) -> Self {
        self.limits.events = n.max(1);
        self
    }

    /// While the database fails, refuse new reservations once the oldest unsaved usage event
    /// has waited this long (default 60 s).
    pub fn with_max_unsaved_age(mut self, age: Duration) -> Self {
        self.limits.age = age;
        self
    }

    /// How long a database call on the request path (a grant, an exposure step, the health
    /// check) may take before it counts as failed (default 2 s).
    pub fn with_connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t.max(Duration::from_millis(100));
        self
    }

    /// How long any other database call (usage batches, reports, statistics, limiter
    /// changes), including the wait for a free connection, may take (default 10 s).
    pub fn with_query_timeout(mut self, t: Duration) -> Self {
        self.query_timeout = t.max(Duration::from_millis(100));
        self
    }

    /// The lease deadline a replica keeps for itself: the TTL less a margin, so that it
    /// stops admitting before any other replica may reclaim the lease.
    pub(crate) fn local_lease(&self) -> Duration {
        self.lease_ttl.mul_f64(0.8)
    }
}
