//! A small, complete store (the hot path [`BudgetStore`], the admin API's [`LimiterCatalog`] and
//! the dashboard's [`UsageStats`]) to copy as the start of your own backend.
//!
//! `JournalStore` keeps the hot path in memory (it delegates budget decisions to
//! [`MemoryStore`], which is already atomic) and makes limiters and usage durable by appending
//! every change to a JSON-lines journal file, replayed when the store is opened. Swap the
//! journal for your database, queue or API and keep the rest.
//!
//! It keeps no upstream credentials: the catalogue's credential methods keep their defaults
//! ([`Error::Unsupported`]), so its limiters pass the
//! client's own key through, and the conformance suite's credential check says it skipped.
//! To hold keys, implement those four methods and `BudgetStore::find_credential` (answer it
//! from memory: the proxy asks on every request).
//!
//! What a custom store must get right is spelled out by the conformance suite; this crate
//! runs it in `tests/conformance.rs` with one line:
//!
//! ```
//! budget_core::store_conformance_tests!(async { custom_store::JournalStore::temporary().await });
//! ```

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use budget_core::store::{
    BucketSize, BudgetStore, CounterKey, Error, GroupBy, LimiterCatalog, LimiterRef, Reservation,
    ReserveOutcome, ReserveRequest, Result, UsageBucket, UsageGroup, UsageQuery, UsageRecord,
    UsageStats, UsageTotals, WindowSpend,
};
use budget_core::{Limiter, LimiterId, LimiterUpdate, MemoryStore};

use chrono::Utc;
use serde::{Deserialize, Serialize};

/// One line of the journal.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Entry {
    /// A limiter was created, updated or had its code rotated: its full new state.
    Limiter { limiter: Box<Limiter> },
    /// A limiter was deleted.
    Delete { id: LimiterId, purge: bool },
    /// Usage was charged.
    Usage { record: UsageRecord },
}

/// A store that journals to a file and decides in memory.
#[derive(Debug)]
pub struct JournalStore {
    memory: MemoryStore,
    journal: Mutex<File>,
    path: PathBuf,
    /// A [`temporary`](Self::temporary) journal is deleted with its store.
    temporary: bool,
}

impl Drop for JournalStore {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl JournalStore {
    /// Open (or create) the journal at `path` and replay it.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let mut limiters: Vec<Limiter> = Vec::new();
        let mut records: Vec<UsageRecord> = Vec::new();
        if path.exists() {
            let file = File::open(&path).map_err(Error::backend)?;
            for line in BufReader::new(file).lines() {
                let line = line.map_err(Error::backend)?;
                // A torn last line (crash mid-write) is skipped; everything before it counts.
                let Ok(entry) = serde_json::from_str::<Entry>(&line) else {
                    continue;
                };
                match entry {
                    Entry::Limiter { limiter } => {
                        match limiters.iter_mut().find(|l| l.id == limiter.id) {
                            Some(existing) => *existing = *limiter,
                            None => limiters.push(*limiter),
                        }
                    }
                    Entry::Delete { id, purge: true } => {
                        limiters.retain(|l| l.id != id);
                        records.retain(|r| r.limiter_id != id);
                    }
                    Entry::Delete { id, purge: false } => {
                        if let Some(l) = limiters.iter_mut().find(|l| l.id == id) {
                            l.deleted_at.get_or_insert_with(Utc::now);
                        }
                    }
                    Entry::Usage { record } => records.push(record),
                }
            }
        }
        let journal = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(Error::backend)?;
        Ok(JournalStore {
            memory: MemoryStore::from_parts(limiters, records),
            journal: Mutex::new(journal),
            path,
            temporary: false,
        })
    }

    /// A store on a fresh journal in the temporary directory (for tests), deleted when the
    /// store is dropped unless [`keep_journal`](Self::keep_journal) is called.
    pub fn temporary() -> impl std::future::Future<Output = Self> {
        let path = std::env::temp_dir().join(format!("budget-journal-{}.jsonl", uuid_like()));
        async move {
            let mut store = JournalStore::open(path).await.expect("temporary journal");
            store.temporary = true;
            store
        }
    }

    /// Keep a temporary journal when the store is dropped (to reopen it).
    pub fn keep_journal(&mut self) {
        self.temporary = false;
    }

    /// Where the journal lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn append(&self, entry: &Entry) -> Result<()> {
        let mut line = serde_json::to_vec(entry).map_err(Error::backend)?;
        line.push(b'\n');
        let mut file = self.journal.lock().unwrap_or_else(|p| p.into_inner());
        file.write_all(&line).map_err(Error::backend)
    }
}

fn uuid_like() -> String {
    budget_core::LimiterCode::generate().to_string()
}

/// The hot path: what the proxy calls on every request. Decisions stay in memory (atomic,
/// all or nothing over every budget a request counts in); a settled charge is journaled.
#[async_trait]
impl BudgetStore for JournalStore {
    async fn find_limiter(&self, by: LimiterRef<'_>) -> Result<Option<Arc<Limiter>>> {
        self.memory.find_limiter(by).await
    }

    async fn reserve(&self, request: &ReserveRequest) -> Result<ReserveOutcome> {
        // Reservations are in-flight state: they die with the process, so only memory.
        self.memory.reserve(request).await
    }

    async fn settle(&self, reservation: &Reservation, mut record: UsageRecord) -> Result<()> {
        record.limiter_id = reservation.limiter_id;
        record.at = reservation.at;
        // Memory first: a second settle of the same reservation fails here and is not
        // journaled, so it is never charged twice after a replay either.
        self.memory.settle(reservation, record.clone()).await?;
        self.append(&Entry::Usage { record })
    }

    async fn release(&self, reservation: &Reservation) -> Result<()> {
        self.memory.release(reservation).await
    }

    async fn flush(&self) -> Result<()> {
        let file = self.journal.lock().unwrap_or_else(|p| p.into_inner());
        file.sync_data().map_err(Error::backend)
    }
}

/// Limiters for the admin API: every change is journaled after memory accepted it.
#[async_trait]
impl LimiterCatalog for JournalStore {
    async fn create_limiter(&self, limiter: &Limiter) -> Result<()> {
        self.memory.create_limiter(limiter).await?;
        self.append(&Entry::Limiter {
            limiter: Box::new(limiter.clone()),
        })
    }

    async fn get_limiter(&self, id: LimiterId) -> Result<Option<Limiter>> {
        self.memory.get_limiter(id).await
    }

    async fn list_limiters(&self, include_deleted: bool) -> Result<Vec<Limiter>> {
        self.memory.list_limiters(include_deleted).await
    }

    async fn update_limiter(&self, id: LimiterId, update: &LimiterUpdate) -> Result<Limiter> {
        let limiter = self.memory.update_limiter(id, update).await?;
        self.append(&Entry::Limiter {
            limiter: Box::new(limiter.clone()),
        })?;
        Ok(limiter)
    }

    async fn rotate_code(
        &self,
        id: LimiterId,
        keep_old_until: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<Limiter> {
        let limiter = self.memory.rotate_code(id, keep_old_until).await?;
        self.append(&Entry::Limiter {
            limiter: Box::new(limiter.clone()),
        })?;
        Ok(limiter)
    }

    async fn delete_limiter(&self, id: LimiterId, purge: bool) -> Result<()> {
        self.memory.delete_limiter(id, purge).await?;
        self.append(&Entry::Delete { id, purge })
    }

    async fn record_usage(&self, record: UsageRecord) -> Result<()> {
        self.memory.record_usage(record.clone()).await?;
        self.append(&Entry::Usage { record })
    }
}

/// Statistics: answered by the in-memory copy of the journal.
#[async_trait]
impl UsageStats for JournalStore {
    async fn window_spend(&self, key: &CounterKey) -> Result<WindowSpend> {
        self.memory.window_spend(key).await
    }

    async fn usage_totals(&self, query: &UsageQuery) -> Result<UsageTotals> {
        self.memory.usage_totals(query).await
    }

    async fn usage_breakdown(
        &self,
        query: &UsageQuery,
        by: GroupBy,
        limit: usize,
    ) -> Result<Vec<UsageGroup>> {
        self.memory.usage_breakdown(query, by, limit).await
    }

    async fn usage_series(
        &self,
        query: &UsageQuery,
        bucket: BucketSize,
    ) -> Result<Vec<UsageBucket>> {
        self.memory.usage_series(query, bucket).await
    }

    async fn recent_usage(&self, query: &UsageQuery, limit: usize) -> Result<Vec<UsageRecord>> {
        self.memory.recent_usage(query, limit).await
    }
}

/// The Rust blocks of `docs/custom-store.md`, compiled and run as this crate's doctests, so the
/// guide cannot drift from the code.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/custom-store.md")]
pub struct CustomStoreGuide;
