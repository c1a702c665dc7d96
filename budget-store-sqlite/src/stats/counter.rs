//! The cost counted in one budget counter, read back from the stored usage.

use budget_core::store::CounterKey;
use budget_core::Money;
use sqlx::SqlitePool;

use super::plan::{plan, Level};
use super::sql::rows_sql;
use crate::rows::micros;
use crate::SqliteStoreError;

/// The cost of the usage that counts in `key`: a limiter's window (from the roll-ups), or one
/// end user's window inside a limiter (from the raw events of that limiter and window).
pub(crate) async fn counter_cost(
    pool: &SqlitePool,
    key: &CounterKey,
) -> Result<Money, SqliteStoreError> {
    let (start, end) = (micros(key.window.start), micros(key.window.end));
    if let Some(user) = &key.user {
        let nanos: i64 = sqlx::query_scalar(
            "SELECT IFNULL(SUM(cost), 0) FROM usage_events \
             WHERE limiter_id = ? AND at >= ? AND at < ? AND user = ?",
        )
        .bind(key.limiter_id.to_string())
        .bind(start)
        .bind(end)
        .bind(user)
        .fetch_one(pool)
        .await?;
        return Ok(Money::from_nanos(nanos));
    }
    let mut segs = Vec::new();
    plan(start, end, &Level::ALL, &mut segs);
    if segs.is_empty() {
        return Ok(Money::ZERO);
    }
    let rows = rows_sql(Some(key.limiter_id), &segs)?;
    let sql = format!("SELECT IFNULL(SUM(cost), 0) FROM ({})", rows.sql);
    let nanos: i64 = sqlx::query_scalar_with(&sql, rows.args)
        .fetch_one(pool)
        .await?;
    Ok(Money::from_nanos(nanos))
}
