//! `GET /usage/export`: usage records as CSV (RFC 4180) or JSON Lines, streamed page by page
//! from the store ([`budget_core::store::UsageStats::usage_page`]), so an export of millions of
//! records holds one page in memory, never the file.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use budget_core::store::{Store, UsageCursor, UsageQuery, UsageRecord};
use budget_core::LimiterId;
use bytes::Bytes;
use chrono::SecondsFormat;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::params::StatsParams;
use crate::admin::auth::AdminUser;
use crate::admin::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// Records read from the store per page (and per chunk of the answer).
pub const PAGE: usize = 2000;

/// The columns, in order (the CSV header row; the JSON Lines keys).
pub const COLUMNS: [&str; 18] = [
    "id",
    "at",
    "limiter_id",
    "limiter_name",
    "model",
    "user",
    "endpoint",
    "status",
    "streamed",
    "prompt_tokens",
    "cached_tokens",
    "completion_tokens",
    "reasoning_tokens",
    "cost_usd",
    "unpriced",
    "estimated",
    "latency_ms",
    "price_version",
];

/// `format` of `GET /usage/export`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    /// RFC 4180 CSV (the default).
    #[default]
    Csv,
    /// JSON Lines: one JSON object per record.
    Jsonl,
}

/// The query of `GET /usage/export`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    /// Records at or after this time (RFC 3339).
    #[param(value_type = Option<chrono::DateTime<chrono::Utc>>)]
    pub from: Option<String>,
    /// Records before this time (RFC 3339); not before `from`.
    #[param(value_type = Option<chrono::DateTime<chrono::Utc>>)]
    pub to: Option<String>,
    /// Only this limiter's records.
    #[param(value_type = Option<uuid::Uuid>)]
    pub limiter_id: Option<String>,
    /// `csv` (default) or `jsonl`.
    #[param(value_type = Option<ExportFormat>)]
    pub format: Option<String>,
}

/// `GET /usage/export`: every record in the range, oldest first, as a download.
#[utoipa::path(
    get,
    path = "/api/usage/export",
    operation_id = "exportUsage",
    tag = "stats",
    params(ExportParams),
    responses(
        (status = 200, description = "The records, oldest first: CSV with one header row (money in decimal dollars, times RFC 3339 UTC), or JSON Lines", content(
            (String = "text/csv"),
            (String = "application/x-ndjson"),
        )),
        (status = 400, description = "Bad query parameter (named in `field`)", body = ErrorBody),
    )
)]
pub async fn export(
    _admin: AdminUser,
    State(state): State<AppState>,
    params: Result<Query<ExportParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(p) = params.map_err(|e| ApiError::bad_param("query", e.body_text()))?;
    let format = match p.format.as_deref().filter(|f| !f.is_empty()) {
        None | Some("csv") => ExportFormat::Csv,
        Some("jsonl") | Some("ndjson") => ExportFormat::Jsonl,
        Some(other) => {
            return Err(ApiError::bad_param(
                "format",
                format!("`{other}` is not `csv` or `jsonl`"),
            ))
        }
    };
    let query = StatsParams {
        from: p.from,
        to: p.to,
        limiter_id: p.limiter_id,
        ..StatsParams::default()
    }
    .usage_query()?;
    // Names of every limiter, deleted ones included; purged ones have none.
    let names: HashMap<LimiterId, String> = state
        .store
        .list_limiters(true)
        .await?
        .into_iter()
        .map(|l| (l.id, l.name))
        .collect();
    let (content_type, ext) = match format {
        ExportFormat::Csv => ("text/csv; charset=utf-8", "csv"),
        ExportFormat::Jsonl => ("application/x-ndjson", "jsonl"),
    };
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let body = Body::from_stream(pages(state.store.clone(), query, names, format));
    let mut res = Response::new(body);
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"usage-{stamp}.{ext}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    *res.status_mut() = StatusCode::OK;
    Ok(res)
}

/// What the stream remembers between pages.
struct Cursor {
    after: Option<UsageCursor>,
    first: bool,
    done: bool,
}

/// The answer's chunks: the header row (CSV), then one chunk per page of records. A store
/// error ends the stream with an error, which aborts the download (the client sees a
/// truncated transfer, not a short file that looks complete) and is logged.
fn pages(
    store: Arc<dyn Store>,
    query: UsageQuery,
    names: HashMap<LimiterId, String>,
    format: ExportFormat,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    let start = Cursor {
        after: None,
        first: true,
        done: false,
    };
    futures::stream::try_unfold(start, move |c| {
        let store = store.clone();
        let query = query.clone();
        let names = names.clone();
        async move {
            if c.done {
                return Ok(None);
            }
            let page = store.usage_page(&query, c.after, PAGE).await.map_err(|e| {
                tracing::error!(error = %e, "usage export: the store failed; download aborted");
                std::io::Error::other(e.to_string())
            })?;
            let mut out = String::with_capacity(256 * page.len() + 256);
            if c.first && format == ExportFormat::Csv {
                out.push_str(&COLUMNS.join(","));
                out.push_str("\r\n");
            }
            for r in &page {
                let name = names.get(&r.limiter_id).map_or("", String::as_str);
                match format {
                    ExportFormat::Csv => csv_row(&mut out, r, name),
                    ExportFormat::Jsonl => jsonl_row(&mut out, r, name),
                }
            }
            let next = Cursor {
                after: page.last().map(UsageCursor::after),
                first: false,
                done: page.len() < PAGE,
            };
            Ok(Some((Bytes::from(out), next)))
        }
    })
}

/// A text field as CSV: quoted when it holds a comma, quote or line break (RFC 4180), and with
/// a leading `'` when a spreadsheet would read it as a formula (`=`, `+`, `-`, `@`, tab, CR):
/// `user` and `model` come from clients.
fn csv_text(out: &mut String, v: &str) {
    let formula = v.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let quote = formula || v.contains([',', '"', '\r', '\n']);
    if quote {
        out.push('"');
    }
    if formula {
        out.push('\'');
    }
    for ch in v.chars() {
        if ch == '"' {
            out.push('"');
        }
        out.push(ch);
    }
    if quote {
        out.push('"');
    }
}

fn csv_row(out: &mut String, r: &UsageRecord, limiter_name: &str) {
    let _ = write!(
        out,
        "{},{},{},",
        r.id,
        r.at.to_rfc3339_opts(SecondsFormat::Micros, true),
        r.limiter_id
    );
    csv_text(out, limiter_name);
    out.push(',');
    csv_text(out, r.model.as_deref().unwrap_or(""));
    out.push(',');
    csv_text(out, r.user.as_deref().unwrap_or(""));
    let _ = write!(
        out,
        ",{},{},{},{},{},{},{},{},{},{},{},",
        r.endpoint.as_str(),
        r.status,
        r.streamed,
        r.prompt_tokens,
        r.cached_tokens,
        r.completion_tokens,
        r.reasoning_tokens,
        r.cost.to_decimal_string(),
        r.unpriced,
        r.estimated,
        r.latency_ms,
    );
    csv_text(out, r.price_version.as_deref().unwrap_or(""));
    out.push_str("\r\n");
}

/// One JSON object per line; `cost_usd` is a string of exact decimal dollars (a JSON number
/// would be read as a float by most parsers).
fn jsonl_row(out: &mut String, r: &UsageRecord, limiter_name: &str) {
    /// The keys in the CSV's column order.
    #[derive(serde::Serialize)]
    struct Row<'a> {
        id: uuid::Uuid,
        at: String,
        limiter_id: LimiterId,
        limiter_name: &'a str,
        model: Option<&'a str>,
        user: Option<&'a str>,
        endpoint: &'static str,
        status: u16,
        streamed: bool,
        prompt_tokens: u64,
        cached_tokens: u64,
        completion_tokens: u64,
        reasoning_tokens: u64,
        cost_usd: String,
        unpriced: bool,
        estimated: bool,
        latency_ms: u64,
        price_version: Option<&'a str>,
    }
    let row = Row {
        id: r.id,
        at: r.at.to_rfc3339_opts(SecondsFormat::Micros, true),
        limiter_id: r.limiter_id,
        limiter_name,
        model: r.model.as_deref(),
        user: r.user.as_deref(),
        endpoint: r.endpoint.as_str(),
        status: r.status,
        streamed: r.streamed,
        prompt_tokens: r.prompt_tokens,
        cached_tokens: r.cached_tokens,
        completion_tokens: r.completion_tokens,
        reasoning_tokens: r.reasoning_tokens,
        cost_usd: r.cost.to_decimal_string(),
        unpriced: r.unpriced,
        estimated: r.estimated,
        latency_ms: r.latency_ms,
        price_version: r.price_version.as_deref(),
    };
    if let Ok(line) = serde_json::to_string(&row) {
        out.push_str(&line);
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        let mut s = String::new();
        csv_text(&mut s, "plain");
        s.push('|');
        csv_text(&mut s, "a,b \"c\"\nd");
        s.push('|');
        csv_text(&mut s, "=HYPERLINK(\"x\")");
        s.push('|');
        csv_text(&mut s, "-1");
        assert_eq!(
            s,
            "plain|\"a,b \"\"c\"\"\nd\"|\"'=HYPERLINK(\"\"x\"\")\"|\"'-1\""
        );
    }
}
