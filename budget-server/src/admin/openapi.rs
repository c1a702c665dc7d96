//! The OpenAPI 3.1 document, generated with [`utoipa`] from the handlers' own request and
//! response types (`#[derive(ToSchema)]`) and the `#[utoipa::path]` beside each handler, and
//! served at `GET /api/openapi.json` (no token needed).
//!
//! It covers the admin API (`/api/...`) and the operations endpoints (`/health`, `/metrics`,
//! `/v1/{code}/budget`); the proxy itself (`/v1/{code}/...`) speaks OpenAI's API and is not
//! described here. A copy is committed as `budget-server/openapi.json` (a test fails when it is
//! stale) and the dashboard's TypeScript types are generated from that copy.
//!
//! Types from `budget-core` carry no OpenAPI knowledge; the fields that hold them name a schema
//! from [`super::schemas`] instead (money is a JSON number of US dollars).

use std::sync::OnceLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use super::{
    accounts, alerts, audit, auth, credentials, error, limiters, policies, session, stats,
};
use crate::ops;

/// The document's source: every documented handler and the security scheme.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "budget-server API",
        description = "Manage limiters (hard dollar budgets in front of the OpenAI API) and read \
            usage statistics under `/api`; operations endpoints at the root. Money is a JSON \
            number of US dollars; times are RFC 3339 UTC. Every `/api` route but login and this \
            document needs `Authorization: Bearer <token>` from `POST /api/auth/login` (or the \
            dashboard's session cookie)."
    ),
    paths(
        auth::login,
        session::logout,
        accounts::me,
        accounts::change_password,
        accounts::list,
        accounts::create,
        accounts::get,
        accounts::update,
        limiters::list,
        limiters::create,
        limiters::get,
        limiters::update,
        limiters::delete,
        limiters::rotate_code,
        limiters::stats,
        credentials::list,
        credentials::create,
        credentials::get,
        credentials::update,
        credentials::delete,
        policies::users,
        policies::set_user,
        policies::remove_user,
        stats::overview,
        stats::timeseries,
        stats::breakdown,
        stats::recent,
        stats::export,
        audit::list,
        alerts::list,
        stats::pricing,
        serve,
        ops::health,
        ops::metrics,
        ops::own_budget,
    ),
    components(schemas(error::ErrorBody, stats::Bucket, stats::BreakdownBy, stats::ExportFormat)),
    modifiers(&SharedAnswers),
    security(("bearerAuth" = []), ("sessionCookie" = [])),
    tags(
        (name = "auth", description = "Admin login, who is signed in, one's own password"),
        (name = "accounts", description = "Team accounts: admins and viewers (admins only)"),
        (name = "limiters", description = "Limiter management"),
        (name = "credentials", description = "Upstream keys held by the server (write-only)"),
        (name = "audit", description = "The audit trail of admin actions (append-only)"),
        (name = "alerts", description = "Threshold alerts by webhook: settings and deliveries"),
        (name = "stats", description = "Usage statistics and prices"),
        (name = "operations", description = "Health, metrics, this document, and a key holder's own budget"),
    )
)]
struct ApiDoc;

/// Adds the security schemes the `security` entries name, and the answers every route of a
/// kind shares:
///
/// - a route that needs the admin token (no `security` of its own) answers `401` without a
///   valid one, `503` when the store is unavailable and, when it changes state, `403` to a
///   session-cookie request without the CSRF header;
/// - a route with a JSON body answers `400` (not JSON), `413` (too large), `415` (no JSON
///   content type) and `422` (wrong shape or an invalid field, named in `field`).
struct SharedAnswers;

impl Modify for SharedAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearerAuth",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("A token from `POST /api/auth/login`"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "sessionCookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                session::SESSION_COOKIE.to_owned(),
                format!(
                    "The dashboard's HttpOnly session cookie, set by login; requests other than \
                     GET, HEAD and OPTIONS must also echo the `{}` cookie in `{}`",
                    session::CSRF_COOKIE,
                    session::CSRF_HEADER
                ),
            ))),
        );
        components.add_security_scheme(
            "metricsToken",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("`METRICS_TOKEN`, when the server sets one"))
                    .build(),
            ),
        );
        let error = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(RefOr::Ref(Ref::from_schema_name("Error"))))
                        .build(),
                )
                .build()
        };
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                (false, &mut item.get),
                (true, &mut item.put),
                (true, &mut item.post),
                (true, &mut item.delete),
                (true, &mut item.patch),
            ];
            for (changes_state, op) in operations {
                let Some(op) = op else { continue };
                let answers = &mut op.responses.responses;
                let mut add = |status: &str, description: &str| {
                    answers
                        .entry(status.to_owned())
                        .or_insert_with(|| error(description).into());
                };
                if op.security.is_none() {
                    add("401", "Missing, invalid or expired token");
                    add("503", "The store is unavailable");
                    if changes_state {
                        add(
                            "403",
                            "A viewer account (`forbidden`: viewers change nothing but their \
                             own password), or authenticated by the session cookie without a \
                             matching `X-CSRF-Token` (`csrf_failed`)",
                        );
                    }
                }
                if op.request_body.is_some() {
                    add("400", "The body is not valid JSON");
                    add("413", "The body is too large");
                    add("415", "No `Content-Type: application/json`");
                    add("422", "Wrong shape or an invalid field (named in `field`)");
                }
            }
        }
    }
}

/// The document.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The document as pretty-printed JSON with a final newline: what `/api/openapi.json` serves
/// and what `budget-server/openapi.json` holds.
pub fn document_json() -> String {
    let mut text = document()
        .to_pretty_json()
        .expect("an OpenAPI document always serializes");
    text.push('\n');
    text
}

/// `GET /api/openapi.json`: this document.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    operation_id = "openapi",
    tag = "operations",
    security(()),
    responses((status = 200, description = "This OpenAPI 3.1 document", content_type = "application/json", body = Object))
)]
pub async fn serve() -> Response {
    static TEXT: OnceLock<String> = OnceLock::new();
    let text = TEXT.get_or_init(document_json);
    ([(header::CONTENT_TYPE, "application/json")], text.clone()).into_response()
}
