//! Test helper for `tests/durability.rs`: settles usage against a SQLite store forever,
//! printing `limiter <id>` once and then `flushed <n>` each time a flush covering the first
//! `n` settles has returned. The test kills it with SIGKILL mid-load and reopens the file.
//!
//! Usage: `sqlite-crash-child <database path> [flush every N settles, default 500]`

use budget_core::store::prelude::*;
use budget_core::store::{ReserveOutcome, ReserveRequest, UsageRecord};
use budget_core::usage::{Endpoint, Usage};
use budget_core::{BudgetStore, EnforcementMode, Limiter, Money, NewLimiter, Period};
use budget_store_sqlite::SqliteStore;
use chrono::Utc;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or("usage: sqlite-crash-child <database path> [flush every]")?;
    let every: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(500);
    let store = SqliteStore::open(&path).await?;
    let limiter = match store.list_limiters(false).await?.into_iter().next() {
        Some(l) => l,
        None => {
            let mut new = NewLimiter::new(
                "crash test",
                Money::from_dollars(1_000_000),
                Period::Year,
                "https://api.openai.com",
            );
            new.mode = Some(EnforcementMode::Strict);
            let l = Limiter::create(new, Utc::now())?;
            store.create_limiter(&l).await?;
            l
        }
    };
    println!("limiter {}", limiter.id);
    let usage = Usage {
        model: Some("gpt-4o".into()),
        prompt_tokens: 10,
        completion_tokens: 5,
        ..Usage::default()
    };
    let cost = Money::from_nanos(1_000);
    let mut settled: u64 = 0;
    loop {
        let request = ReserveRequest::new(limiter.id, cost, Utc::now());
        let ReserveOutcome::Reserved(r) = store.reserve(&request).await? else {
            return Err("denied".into());
        };
        let record = UsageRecord::new(
            limiter.id,
            r.at,
            Endpoint::ChatCompletions,
            &usage,
            Some(cost),
        );
        store.settle(&r, record).await?;
        settled += 1;
        if settled % every == 0 {
            store.flush().await?;
            println!("flushed {settled}");
        } else if settled % 16 == 0 {
            // Let the writer's timer run now and then, as a server's idle moments would.
            tokio::task::yield_now().await;
        }
    }
}
