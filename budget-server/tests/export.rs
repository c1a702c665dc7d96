//! `GET /api/usage/export` over a real socket with a real SQLite file: CSV that a strict RFC
//! 4180 reader reads back to the stored records (awkward users included), JSON Lines, the
//! range and limiter filters, pages beyond the first, and bad parameters.

use budget_core::store::UsageRecord;
use budget_core::usage::{Endpoint, Usage};
use budget_core::{Limiter, Money, NewLimiter, Period};
use chrono::{DateTime, Duration, TimeZone, Utc};
use http::StatusCode;

mod common;
use common::TestServer;

async fn serve(dir: &std::path::Path) -> TestServer {
    TestServer::start(&dir.join("export.db"), |_| {}).await
}

/// A GET with the admin's token or none: the status, the headers and the body, which must be
/// UTF-8.
async fn get(s: &TestServer, path: &str, token: bool) -> (StatusCode, http::HeaderMap, String) {
    let auth = [("authorization", s.admin.as_str())];
    let headers: &[(&str, &str)] = if token { &auth } else { &[] };
    let a = s.send("GET", path, headers, "").await;
    (
        a.status,
        a.headers,
        String::from_utf8(a.bytes.to_vec()).unwrap(),
    )
}

/// A strict RFC 4180 reader: fields separated by `,`, records by CRLF, quoted fields with `""`.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let (mut row, mut field) = (Vec::new(), String::new());
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                other => field.push(other),
            }
            continue;
        }
        match c {
            '"' if field.is_empty() => quoted = true,
            ',' => row.push(std::mem::take(&mut field)),
            '\r' => {
                assert_eq!(chars.next(), Some('\n'), "a record ends with CRLF");
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            '"' | '\n' => panic!("{c:?} outside quotes"),
            other => field.push(other),
        }
    }
    assert!(
        field.is_empty() && row.is_empty(),
        "the last record ends with CRLF"
    );
    rows
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap()
}

fn record(l: &Limiter, at: DateTime<Utc>, nanos: i64, user: Option<&str>) -> UsageRecord {
    let usage = Usage {
        model: Some("gpt-4o-mini".into()),
        prompt_tokens: 120,
        completion_tokens: 30,
        ..Usage::default()
    };
    let mut r = UsageRecord::new(
        l.id,
        at,
        Endpoint::ChatCompletions,
        &usage,
        Some(Money::from_nanos(nanos)),
    );
    r.user = user.map(str::to_owned);
    r
}

#[tokio::test]
async fn usage_exports_as_csv_and_json_lines_page_by_page() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve(dir.path()).await;
    let store = s.state.store.clone();
    let mk = |name: &str| {
        Limiter::create(
            NewLimiter::new(
                name,
                Money::from_dollars(1_000_000),
                Period::Year,
                "https://api.openai.com",
            ),
            t0() - Duration::days(1),
        )
        .unwrap()
    };
    let (a, b) = (mk("Customer, \"A\""), mk("B"));
    store.create_limiter(&a).await.unwrap();
    store.create_limiter(&b).await.unwrap();
    // 4,500 records (more than two pages), one second apart; awkward users on some.
    let awkward = [
        "=cmd|' /C calc'!A0",
        "comma, \"quote\"\r\nnewline",
        "-1+1",
        "café 🚀",
    ];
    let n = 4500i64;
    for i in 0..n {
        let l = if i % 3 == 0 { &b } else { &a };
        let user = (i % 10 == 0).then(|| awkward[(i / 10) as usize % awkward.len()]);
        store
            .record_usage(record(l, t0() + Duration::seconds(i), 21_000 + i, user))
            .await
            .unwrap();
    }
    store.flush().await.unwrap();

    let (status, headers, body) = get(&s, "/api/usage/export", true).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(headers["content-type"], "text/csv; charset=utf-8");
    assert!(headers["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment; filename=\"usage-"));
    assert!(
        headers.get("content-length").is_none(),
        "streamed, not built in memory first"
    );
    assert_eq!(headers["cache-control"], "no-store");
    let rows = parse_csv(&body);
    assert_eq!(rows[0], budget_server::admin::stats::EXPORT_COLUMNS);
    assert_eq!(
        rows.len() as i64,
        n + 1,
        "one header row and every record once"
    );
    let col = |name: &str| rows[0].iter().position(|c| c == name).unwrap();
    for (i, row) in rows[1..].iter().enumerate() {
        let i = i as i64;
        let at = t0() + Duration::seconds(i);
        assert_eq!(
            row[col("at")],
            at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        );
        assert_eq!(
            row[col("cost_usd")],
            Money::from_nanos(21_000 + i).to_decimal_string()
        );
        let want_limiter = if i % 3 == 0 { &b } else { &a };
        assert_eq!(row[col("limiter_id")], want_limiter.id.to_string());
        assert_eq!(row[col("limiter_name")], want_limiter.name);
        let user = &row[col("user")];
        if i % 10 == 0 {
            let original = awkward[(i / 10) as usize % awkward.len()];
            // A value a spreadsheet would run as a formula is prefixed with `'`.
            let expected = if original.starts_with(['=', '+', '-', '@']) {
                format!("'{original}")
            } else {
                original.to_owned()
            };
            assert_eq!(user, &expected);
        } else {
            assert_eq!(user, "");
        }
        assert_eq!(row[col("endpoint")], "chat_completions");
        assert_eq!(row[col("prompt_tokens")], "120");
    }
    assert_eq!(rows[1][col("cost_usd")], "0.000021");

    // JSON Lines, one limiter, a range.
    let from = (t0() + Duration::seconds(100)).to_rfc3339();
    let to = (t0() + Duration::seconds(2200)).to_rfc3339();
    let q = format!(
        "/api/usage/export?format=jsonl&limiter_id={}&from={}&to={}",
        b.id,
        urlencode(&from),
        urlencode(&to)
    );
    let (status, headers, body) = get(&s, &q, true).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(headers["content-type"], "application/x-ndjson");
    // The keys come in the CSV's column order.
    let first = body.lines().next().unwrap();
    let positions: Vec<usize> = budget_server::admin::stats::EXPORT_COLUMNS
        .iter()
        .map(|c| first.find(&format!("\"{c}\":")).unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{first}");
    let lines: Vec<serde_json::Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let want = (100..2200).filter(|i| i % 3 == 0).count();
    assert_eq!(lines.len(), want);
    assert!(lines
        .iter()
        .all(|l| l["limiter_id"] == b.id.to_string().as_str()));
    assert_eq!(
        lines[0]["at"],
        (t0() + Duration::seconds(102)).to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    );
    assert_eq!(
        lines[0]["cost_usd"],
        Money::from_nanos(21_102).to_decimal_string()
    );
    assert!(
        lines
            .iter()
            .any(|l| l["user"] == "comma, \"quote\"\r\nnewline"),
        "JSON keeps the user as it is"
    );

    // An empty range is just the header row.
    let (status, _, body) = get(
        &s,
        "/api/usage/export?from=2000-01-01T00:00:00Z&to=2000-01-02T00:00:00Z",
        true,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(parse_csv(&body).len(), 1);

    // Bad parameters are 400s naming them; no token is 401.
    for (q, field) in [
        ("format=xlsx", "format"),
        ("from=yesterday", "from"),
        ("limiter_id=nope", "limiter_id"),
        ("from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z", "to"),
    ] {
        let (status, _, body) = get(&s, &format!("/api/usage/export?{q}"), true).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{q}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["error"]["field"], field, "{q}");
    }
    let (status, _, _) = get(&s, "/api/usage/export", false).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}
