//! The SQL of the usage writer: one batch of events with its roll-ups, and a limiter's purge,
//! each in one explicit `BEGIN IMMEDIATE` … `COMMIT` on the writer's connection.
//!
//! The transactions are plain SQL statements, not sqlx's `Transaction`: sqlx 0.8 keeps its own
//! count of open transactions per connection, and when SQLite rolls a transaction back by
//! itself (a one-row `INSERT` that hits `SQLITE_FULL` does), its `ROLLBACK` fails and the count
//! stays at 1; the next "transaction" on that connection is then a `SAVEPOINT` that may never
//! commit. Here `Ok` means `COMMIT` returned `SQLITE_OK`, and after any error a `ROLLBACK` is
//! sent whose own failure ("no transaction is active") is harmless: either way the connection
//! is outside any transaction afterwards.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;

use budget_core::store::UsageRecord;
use budget_core::LimiterId;
use sqlx::query_builder::Separated;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use crate::rows::{count, endpoint_str, micros, EVENT_COLUMNS};
use crate::stats::Level;
use crate::SqliteStoreError;

/// A boxed `Send` future: the writer task awaits these behind borrowed connections, and
/// boxing lets the compiler see they are `Send` (it cannot always prove it through nested
/// `async fn`s that borrow a `&mut SqliteConnection`).
pub(crate) type Boxed<'a, T> =
    Pin<Box<dyn Future<Output = Result<T, SqliteStoreError>> + Send + 'a>>;

/// Start a write transaction (taking the write lock now, so nothing fails half-way for lack
/// of it).
pub(crate) fn begin(conn: &mut SqliteConnection) -> Boxed<'_, ()> {
    Box::pin(async move {
        sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
        Ok(())
    })
}

/// Commit if `work` succeeded; otherwise, or if `COMMIT` fails, roll back and return the error.
pub(crate) fn finish<T: Send + 'static>(
    conn: &mut SqliteConnection,
    work: Result<T, SqliteStoreError>,
) -> Boxed<'_, T> {
    Box::pin(finish_unboxed(conn, work))
}

async fn finish_unboxed<T>(
    conn: &mut SqliteConnection,
    work: Result<T, SqliteStoreError>,
) -> Result<T, SqliteStoreError> {
    let result = match work {
        Ok(v) => sqlx::query("COMMIT")
            .execute(&mut *conn)
            .await
            .map(|_| v)
            .map_err(SqliteStoreError::from),
        Err(e) => Err(e),
    };
    if result.is_err() {
        // Fails harmlessly when SQLite already rolled back by itself.
        let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
    }
    result
}

/// The highest event sequence number committed so far (0 for none).
pub(crate) fn last_seq(conn: &mut SqliteConnection) -> Boxed<'_, i64> {
    Box::pin(async move {
        Ok(
            sqlx::query_scalar("SELECT IFNULL(MAX(seq), 0) FROM usage_events")
                .fetch_one(&mut *conn)
                .await?,
        )
    })
}

/// Drop from `batch` the events already committed after sequence number `after` (a commit that
/// reported an error but landed anyway), so a retry writes each event once. Returns how many
/// were dropped. Reads by the rowid, so it costs only the rows written since `after`.
pub(crate) fn drop_committed<'a>(
    conn: &'a mut SqliteConnection,
    batch: &'a mut Vec<UsageRecord>,
    after: i64,
) -> Boxed<'a, usize> {
    Box::pin(drop_committed_unboxed(conn, batch, after))
}

async fn drop_committed_unboxed(
    conn: &mut SqliteConnection,
    batch: &mut Vec<UsageRecord>,
    after: i64,
) -> Result<usize, SqliteStoreError> {
    let ids: HashSet<String> = sqlx::query_scalar("SELECT id FROM usage_events WHERE seq > ?")
        .bind(after)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .collect();
    if ids.is_empty() {
        return Ok(0);
    }
    let before = batch.len();
    batch.retain(|r| !ids.contains(&r.id.to_string()));
    Ok(before - batch.len())
}

/// Sums of one roll-up row.
#[derive(Debug, Default, Clone, Copy)]
struct Sums {
    requests: i64,
    prompt: i64,
    cached: i64,
    completion: i64,
    reasoning: i64,
    cost: i64,
    unpriced: i64,
    estimated: i64,
    errors: i64,
}

impl Sums {
    fn add(&mut self, r: &UsageRecord) {
        self.requests += 1;
        self.prompt += count(r.prompt_tokens);
        self.cached += count(r.cached_tokens);
        self.completion += count(r.completion_tokens);
        self.reasoning += count(r.reasoning_tokens);
        self.cost += r.cost.as_nanos();
        self.unpriced += i64::from(r.unpriced);
        self.estimated += i64::from(r.estimated);
        self.errors += i64::from(r.status >= 400);
    }
}

/// Rows per multi-row `INSERT`, largest first. A batch is cut into chunks of these sizes
/// only, so each table has at most five statement texts, each prepared once per connection
/// (17 columns × 256 rows stays under SQLite's 32 766 variables).
const CHUNKS: [usize; 5] = [256, 64, 16, 4, 1];

/// Cut `rows` into chunks whose sizes are in [`CHUNKS`].
fn chunks<T>(mut rows: &[T]) -> impl Iterator<Item = &[T]> {
    std::iter::from_fn(move || {
        let size = CHUNKS.into_iter().find(|&c| c <= rows.len())?;
        let (head, tail) = rows.split_at(size);
        rows = tail;
        Some(head)
    })
}

/// Bind a roll-up row's sums, in [`SUM_COLUMNS`] order.
fn push_sums(b: &mut Separated<'_, '_, Sqlite, &'static str>, s: &Sums) {
    b.push_bind(s.requests)
        .push_bind(s.prompt)
        .push_bind(s.cached)
        .push_bind(s.completion)
        .push_bind(s.reasoning)
        .push_bind(s.cost)
        .push_bind(s.unpriced)
        .push_bind(s.estimated)
        .push_bind(s.errors);
}

/// The summed columns of every roll-up, in [`push_sums`] order.
const SUM_COLUMNS: &str = "requests, prompt_tokens, cached_tokens, completion_tokens, \
                           reasoning_tokens, cost, unpriced, estimated, errors";

/// The `DO UPDATE` of a roll-up upsert: add the new sums to the stored ones.
const ADD_SUMS: &str = "requests = requests + excluded.requests, \
     prompt_tokens = prompt_tokens + excluded.prompt_tokens, \
     cached_tokens = cached_tokens + excluded.cached_tokens, \
     completion_tokens = completion_tokens + excluded.completion_tokens, \
     reasoning_tokens = reasoning_tokens + excluded.reasoning_tokens, \
     cost = cost + excluded.cost, \
     unpriced = unpriced + excluded.unpriced, \
     estimated = estimated + excluded.estimated, \
     errors = errors + excluded.errors";

/// A roll-up row's key: limiter, bucket start, model, user.
type RollupKey<'a> = (&'a str, i64, &'a str, &'a str);

/// What one batch adds to the roll-ups of one level, each list sorted by key.
struct LevelRows<'a> {
    level: Level,
    /// Per (limiter, bucket start, model, user).
    rows: Vec<(RollupKey<'a>, Sums)>,
    /// Per bucket start, over everything.
    global: Vec<(i64, Sums)>,
}

/// Insert `batch` and fold it into the roll-ups. Run inside [`begin`] … [`finish`].
pub(crate) fn write_batch<'a>(
    conn: &'a mut SqliteConnection,
    batch: &'a [UsageRecord],
) -> Boxed<'a, ()> {
    Box::pin(write_batch_unboxed(conn, batch))
}

async fn write_batch_unboxed(
    conn: &mut SqliteConnection,
    batch: &[UsageRecord],
) -> Result<(), SqliteStoreError> {
    let ids: Vec<(String, String)> = batch
        .iter()
        .map(|r| (r.id.to_string(), r.limiter_id.to_string()))
        .collect();
    let mut rollups = Vec::with_capacity(Level::ALL.len());
    for level in Level::ALL {
        let mut sums: HashMap<RollupKey<'_>, Sums> = HashMap::new();
        let mut global: HashMap<i64, Sums> = HashMap::new();
        for (r, (_, limiter)) in batch.iter().zip(&ids) {
            let at = micros(r.at);
            let start = level.floor(at).unwrap_or(at);
            let key = (
                limiter.as_str(),
                start,
                r.model.as_deref().unwrap_or(""),
                r.user.as_deref().unwrap_or(""),
            );
            sums.entry(key).or_default().add(r);
            global.entry(start).or_default().add(r);
        }
        let mut rows: Vec<_> = sums.into_iter().collect();
        rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut global: Vec<_> = global.into_iter().collect();
        global.sort_unstable_by_key(|g| g.0);
        rollups.push(LevelRows {
            level,
            rows,
            global,
        });
    }

    let rows: Vec<_> = batch.iter().zip(&ids).collect();
    for chunk in chunks(&rows) {
        let mut qb =
            QueryBuilder::<Sqlite>::new(format!("INSERT INTO usage_events ({EVENT_COLUMNS}) "));
        qb.push_values(chunk, |mut b, (r, (id, limiter))| {
            b.push_bind(id.as_str())
                .push_bind(micros(r.at))
                .push_bind(limiter.as_str())
                .push_bind(r.model.as_deref())
                .push_bind(r.user.as_deref())
                .push_bind(endpoint_str(r.endpoint))
                .push_bind(count(r.prompt_tokens))
                .push_bind(count(r.cached_tokens))
                .push_bind(count(r.completion_tokens))
                .push_bind(count(r.reasoning_tokens))
                .push_bind(r.cost.as_nanos())
                .push_bind(r.unpriced)
                .push_bind(r.estimated)
                .push_bind(i64::from(r.status))
                .push_bind(r.streamed)
                .push_bind(count(r.latency_ms))
                .push_bind(r.price_version.as_deref());
        });
        qb.build().execute(&mut *conn).await?;
    }
    for l in &rollups {
        let (table, column, global) = (l.level.table(), l.level.column(), l.level.global_table());
        // Global sums first: a roll-up row that is new adds its user to the bucket's user set
        // (trigger), and a user new to the set adds 1 to the bucket's global row (trigger).
        for chunk in chunks(&l.global) {
            let mut qb = QueryBuilder::<Sqlite>::new(format!(
                "INSERT INTO {global} ({column}, {SUM_COLUMNS}, users) "
            ));
            qb.push_values(chunk, |mut b, (start, s)| {
                b.push_bind(*start);
                push_sums(&mut b, s);
                b.push_bind(0_i64);
            });
            qb.push(format!(" ON CONFLICT ({column}) DO UPDATE SET {ADD_SUMS}"));
            qb.build().execute(&mut *conn).await?;
        }
        for chunk in chunks(&l.rows) {
            let mut qb = QueryBuilder::<Sqlite>::new(format!(
                "INSERT INTO {table} (limiter_id, {column}, model, user, {SUM_COLUMNS}) "
            ));
            qb.push_values(chunk, |mut b, ((limiter, start, model, user), s)| {
                b.push_bind(*limiter)
                    .push_bind(*start)
                    .push_bind(*model)
                    .push_bind(*user);
                push_sums(&mut b, s);
            });
            qb.push(format!(
                " ON CONFLICT (limiter_id, {column}, model, user) DO UPDATE SET {ADD_SUMS}"
            ));
            qb.build().execute(&mut *conn).await?;
        }
    }
    Ok(())
}

/// Delete a limiter, its events and its roll-ups. Run inside [`begin`] … [`finish`]. The
/// global roll-ups of the buckets it used lose its sums, and their user sets are rebuilt from
/// the other limiters' roll-ups of those buckets (a user may have been seen only through it).
pub(crate) fn purge(conn: &mut SqliteConnection, limiter_id: LimiterId) -> Boxed<'_, ()> {
    Box::pin(purge_unboxed(conn, limiter_id))
}

async fn purge_unboxed(
    conn: &mut SqliteConnection,
    limiter_id: LimiterId,
) -> Result<(), SqliteStoreError> {
    let id = limiter_id.to_string();
    for level in Level::ALL {
        let (table, c) = (level.table(), level.column());
        let (global, users) = (level.global_table(), level.users_table());
        let touched = format!("SELECT {c} FROM {table} WHERE limiter_id = ?1");
        for sql in [
            format!(
                "UPDATE {global} AS g SET \
                 requests = g.requests - s.requests, \
                 prompt_tokens = g.prompt_tokens - s.prompt_tokens, \
                 cached_tokens = g.cached_tokens - s.cached_tokens, \
                 completion_tokens = g.completion_tokens - s.completion_tokens, \
                 reasoning_tokens = g.reasoning_tokens - s.reasoning_tokens, \
                 cost = g.cost - s.cost, unpriced = g.unpriced - s.unpriced, \
                 estimated = g.estimated - s.estimated, errors = g.errors - s.errors, users = 0 \
                 FROM (SELECT {c} AS t, SUM(requests) AS requests, SUM(prompt_tokens) AS prompt_tokens, \
                       SUM(cached_tokens) AS cached_tokens, SUM(completion_tokens) AS completion_tokens, \
                       SUM(reasoning_tokens) AS reasoning_tokens, SUM(cost) AS cost, \
                       SUM(unpriced) AS unpriced, SUM(estimated) AS estimated, SUM(errors) AS errors \
                       FROM {table} WHERE limiter_id = ?1 GROUP BY {c}) AS s \
                 WHERE g.{c} = s.t"
            ),
            format!("DELETE FROM {users} WHERE {c} IN ({touched})"),
            // The trigger counts the re-inserted users into the (zeroed) global rows.
            format!(
                "INSERT INTO {users} ({c}, user) SELECT DISTINCT {c}, user FROM {table} \
                 WHERE {c} IN ({touched}) AND limiter_id <> ?1 AND user <> ''"
            ),
            format!("DELETE FROM {global} WHERE requests = 0 AND {c} IN ({touched})"),
            format!("DELETE FROM {table} WHERE limiter_id = ?1"),
        ] {
            sqlx::query(&sql).bind(&id).execute(&mut *conn).await?;
        }
    }
    for sql in [
        "DELETE FROM usage_events WHERE limiter_id = ?",
        "DELETE FROM refusals WHERE limiter_id = ?",
        "DELETE FROM limiters WHERE id = ?",
    ] {
        sqlx::query(sql).bind(&id).execute(&mut *conn).await?;
    }
    Ok(())
}
