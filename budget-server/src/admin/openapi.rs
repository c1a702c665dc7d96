//! The OpenAPI 3.1 document of the admin API, written by hand and served at
//! `GET /api/openapi.json` (no token needed). The tests check that it lists exactly
//! [`super::ROUTES`].

use std::sync::OnceLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// `GET /openapi.json`.
pub async fn serve() -> Response {
    static TEXT: OnceLock<String> = OnceLock::new();
    let text = TEXT.get_or_init(|| document().to_string());
    ([(header::CONTENT_TYPE, "application/json")], text.clone()).into_response()
}

fn schema(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn body(name: &str) -> Value {
    json!({"required": true, "content": {"application/json": {"schema": schema(name)}}})
}

fn ok(description: &str, s: Value) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": s}}})
}

fn err(description: &str) -> Value {
    ok(description, schema("Error"))
}

fn param(name: &str) -> Value {
    json!({"$ref": format!("#/components/parameters/{name}")})
}

/// Standard answers of a protected route, plus its own.
fn answers(mut own: Value) -> Value {
    if let Some(o) = own.as_object_mut() {
        o.entry("401")
            .or_insert_with(|| err("Missing, invalid or expired token"));
        o.entry("503")
            .or_insert_with(|| err("The store is unavailable"));
    }
    own
}

fn range_params() -> Vec<Value> {
    vec![param("from"), param("to"), param("limiter_id")]
}

fn with(mut base: Vec<Value>, extra: &[&str]) -> Vec<Value> {
    base.extend(extra.iter().map(|p| param(p)));
    base
}

fn money(description: &str) -> Value {
    json!({"type": "number", "description": format!("{description} (US dollars)")})
}

fn int(description: &str) -> Value {
    json!({"type": "integer", "minimum": 0, "description": description})
}

fn time(description: &str) -> Value {
    json!({"type": "string", "format": "date-time", "description": description})
}

fn limiter_input_properties() -> Value {
    json!({
        "name": {"type": "string", "minLength": 1, "maxLength": 200},
        "budget_limit": {"type": "number", "exclusiveMinimum": 0, "description": "Budget per period (US dollars); a decimal string is accepted too"},
        "period_type": {"type": "string", "enum": ["minute", "hour", "day", "week", "month", "year"]},
        "base_url": {"type": "string", "format": "uri", "description": "Upstream, http(s); default OPENAI_API_BASE_URL on create"},
        "timezone": {"type": "string", "description": "IANA time zone for day/week/month/year windows (default UTC)"},
        "provider": {"type": "string", "enum": ["openai", "azure"]},
        "mode": {"type": "string", "enum": ["soft", "strict"]},
        "unpriced": {"type": "string", "enum": ["admit", "refuse"]},
        "is_active": {"type": "boolean"}
    })
}

fn schemas() -> Value {
    json!({
        "Error": {
            "type": "object", "required": ["error"],
            "properties": {"error": {
                "type": "object", "required": ["message", "type", "code"],
                "properties": {
                    "message": {"type": "string"},
                    "type": {"type": "string", "description": "invalid_request_error, authentication_error, not_found_error, rate_limit_error, server_error"},
                    "code": {"type": "string", "description": "validation_failed, invalid_body, invalid_json, invalid_parameter, unsupported_media_type, missing_token, invalid_token, token_expired, invalid_credentials, too_many_login_attempts, not_found, conflict, store_unavailable, internal_error"},
                    "field": {"type": "string", "description": "The body field or query parameter at fault"}
                }
            }}
        },
        "LoginRequest": {
            "type": "object", "required": ["username", "password"],
            "properties": {"username": {"type": "string"}, "password": {"type": "string", "format": "password"}}
        },
        "LoginResponse": {
            "type": "object", "required": ["token", "username", "expires_at"],
            "properties": {"token": {"type": "string", "description": "HS256 JWT"}, "username": {"type": "string"}, "expires_at": time("When the token stops working")}
        },
        "LimiterCreate": {
            "type": "object", "additionalProperties": false,
            "required": ["name", "budget_limit", "period_type"],
            "properties": limiter_input_properties()
        },
        "LimiterUpdate": {
            "type": "object", "additionalProperties": false,
            "description": "Any subset of the create fields",
            "properties": limiter_input_properties()
        },
        "Limiter": {
            "type": "object",
            "required": ["id", "name", "code", "proxy_endpoint", "budget_limit", "period_type", "timezone", "base_url", "provider", "mode", "unpriced", "is_active", "created_at", "updated_at", "deleted_at", "current_spend", "remaining_budget", "usage_percentage", "period_start", "period_end"],
            "properties": {
                "id": {"type": "string", "format": "uuid"},
                "name": {"type": "string"},
                "code": {"type": "string", "description": "The proxy code (32 hex digits); a credential"},
                "proxy_endpoint": {"type": "string", "format": "uri", "description": "Set an SDK's base_url to this"},
                "budget_limit": money("Budget per period"),
                "period_type": {"type": "string", "enum": ["minute", "hour", "day", "week", "month", "year"]},
                "timezone": {"type": "string"},
                "base_url": {"type": "string", "format": "uri"},
                "provider": {"type": "string", "enum": ["openai", "azure"]},
                "mode": {"type": "string", "enum": ["soft", "strict"]},
                "unpriced": {"type": "string", "enum": ["admit", "refuse"]},
                "is_active": {"type": "boolean"},
                "created_at": time("Created"),
                "updated_at": time("Last changed"),
                "deleted_at": {"type": ["string", "null"], "format": "date-time"},
                "current_spend": money("Settled spend in the current window"),
                "remaining_budget": money("Budget minus spend and holds, at least 0"),
                "usage_percentage": {"type": "number", "description": "Spend and holds as a percentage of the budget, two decimals"},
                "period_start": time("Current window start"),
                "period_end": time("Current window end")
            }
        },
        "LimiterStats": {
            "type": "object",
            "required": ["limiter_id", "limiter_name", "current_spend", "budget_limit", "remaining_budget", "usage_percentage", "total_requests", "period_start", "period_end"],
            "properties": {
                "limiter_id": {"type": "string", "format": "uuid"},
                "limiter_name": {"type": "string"},
                "current_spend": money("Settled spend in the current window"),
                "budget_limit": money("Budget per period"),
                "remaining_budget": money("Budget minus spend and holds, at least 0"),
                "usage_percentage": {"type": "number"},
                "total_requests": int("Requests in the current window"),
                "period_start": time("Current window start"),
                "period_end": time("Current window end"),
                "held": money("Held by requests in flight"),
                "in_flight": int("Requests in flight"),
                "prompt_tokens": int("Input tokens in the current window"),
                "completion_tokens": int("Output tokens in the current window"),
                "total_tokens": int("Tokens in the current window"),
                "unpriced_requests": int("Requests for unpriced models"),
                "estimated_requests": int("Requests with estimated token counts")
            }
        },
        "LimiterUsageRow": {
            "type": "object",
            "required": ["limiter_id", "limiter_name", "is_active", "is_deleted", "requests", "total_tokens", "cost", "current_spend", "budget_limit", "usage_percentage"],
            "properties": {
                "limiter_id": {"type": "string", "format": "uuid"},
                "limiter_name": {"type": "string"},
                "is_active": {"type": "boolean"},
                "is_deleted": {"type": "boolean"},
                "requests": int("Requests in the range"),
                "total_tokens": int("Tokens in the range"),
                "cost": money("Cost in the range"),
                "current_spend": money("Settled spend in the current window"),
                "budget_limit": money("Budget per period"),
                "usage_percentage": {"type": "number"}
            }
        },
        "Overview": {
            "type": "object",
            "required": ["total_requests", "total_tokens", "total_cost", "active_users", "unpriced_requests", "estimated_requests", "error_requests", "limiters"],
            "properties": {
                "total_requests": int("Requests"),
                "total_tokens": int("Tokens"),
                "total_cost": money("Cost"),
                "active_users": int("Distinct end users"),
                "unpriced_requests": int("Requests for unpriced models"),
                "estimated_requests": int("Requests with estimated token counts"),
                "error_requests": int("Requests answered with status >= 400"),
                "limiters": {"type": "array", "items": schema("LimiterUsageRow")}
            }
        },
        "TimeseriesPoint": {
            "type": "object", "required": ["start", "requests", "total_tokens", "cost"],
            "properties": {"start": time("Bucket start (UTC-aligned)"), "requests": int("Requests"), "total_tokens": int("Tokens"), "cost": money("Cost")}
        },
        "BreakdownRow": {
            "type": "object",
            "required": ["key", "label", "requests", "prompt_tokens", "completion_tokens", "total_tokens", "cost", "unpriced_requests"],
            "properties": {
                "key": {"type": ["string", "null"], "description": "Model, user or limiter id; null for records without a model or user"},
                "label": {"type": "string", "description": "Model, user or limiter name; (none) for a null key"},
                "requests": int("Requests"),
                "prompt_tokens": int("Input tokens"),
                "completion_tokens": int("Output tokens"),
                "total_tokens": int("Tokens"),
                "cost": money("Cost"),
                "unpriced_requests": int("Requests for unpriced models")
            }
        },
        "UsageRecord": {
            "type": "object",
            "required": ["id", "at", "limiter_id", "limiter_name", "endpoint", "prompt_tokens", "completion_tokens", "total_tokens", "cost", "status"],
            "properties": {
                "id": {"type": "string", "format": "uuid"},
                "at": time("When the request was admitted"),
                "limiter_id": {"type": "string", "format": "uuid"},
                "limiter_name": {"type": "string"},
                "model": {"type": ["string", "null"]},
                "user": {"type": ["string", "null"]},
                "endpoint": {"type": "string", "description": "chat_completions, completions, embeddings, responses, images, audio_transcription, audio_speech, moderations, other"},
                "prompt_tokens": int("Input tokens"),
                "cached_tokens": int("Cached input tokens"),
                "completion_tokens": int("Output tokens"),
                "reasoning_tokens": int("Reasoning tokens"),
                "total_tokens": int("Input + output tokens"),
                "cost": money("Cost"),
                "unpriced": {"type": "boolean"},
                "estimated": {"type": "boolean"},
                "status": {"type": "integer"},
                "streamed": {"type": "boolean"},
                "latency_ms": int("Admission to end of response")
            }
        },
        "ModelPrice": {
            "type": "object", "required": ["name", "input", "cached_input", "output"],
            "description": "Token prices in US dollars per 1M tokens; *_per_second, *_per_character and per_image in dollars per unit; absent prices are left out",
            "properties": {
                "name": {"type": "string"},
                "provider": {"type": "string"},
                "mode": {"type": "string"},
                "input": {"type": ["number", "null"]},
                "cached_input": {"type": ["number", "null"]},
                "output": {"type": ["number", "null"]},
                "cache_write": {"type": "number"},
                "reasoning": {"type": "number"},
                "audio_input": {"type": "number"},
                "audio_output": {"type": "number"},
                "image_input": {"type": "number"},
                "input_per_second": {"type": "number"},
                "output_per_second": {"type": "number"},
                "input_per_character": {"type": "number"},
                "per_image": {"type": "number"},
                "batch": {"type": "object"},
                "priority": {"type": "object"},
                "flex": {"type": "object"},
                "unpriced": {"type": "boolean"},
                "max_input_tokens": {"type": "integer"},
                "max_output_tokens": {"type": "integer"},
                "deprecation_date": {"type": "string"}
            }
        },
        "Pricing": {
            "type": "object", "required": ["source", "models"],
            "properties": {"source": {"type": ["string", "null"]}, "models": {"type": "array", "items": schema("ModelPrice")}}
        }
    })
}

fn parameters() -> Value {
    let q = |name: &str, description: &str, s: Value| json!({"name": name, "in": "query", "required": false, "description": description, "schema": s});
    json!({
        "id": {"name": "id", "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"}},
        "from": q("from", "Records at or after (RFC 3339)", json!({"type": "string", "format": "date-time"})),
        "to": q("to", "Records before (RFC 3339)", json!({"type": "string", "format": "date-time"})),
        "limiter_id": q("limiter_id", "Only this limiter", json!({"type": "string", "format": "uuid"})),
        "bucket": q("bucket", "Bucket width (default hour)", json!({"type": "string", "enum": ["minute", "hour", "day"]})),
        "by": q("by", "Group by (default model)", json!({"type": "string", "enum": ["model", "user", "limiter"]})),
        "limit": q("limit", "Rows (default 50)", json!({"type": "integer", "minimum": 1, "maximum": 1000})),
        "include_deleted": q("include_deleted", "Also list deleted limiters", json!({"type": "boolean"})),
        "purge": q("purge", "Also delete the limiter's usage records", json!({"type": "boolean"}))
    })
}

/// The document.
pub fn document() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "budget admin API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Manage limiters (hard dollar budgets in front of the OpenAI API) and read usage statistics. Money is a JSON number of US dollars; times are RFC 3339 UTC."
        },
        "servers": [{"url": "/api"}],
        "security": [{"bearerAuth": []}],
        "paths": {
            "/auth/login": {"post": {
                "summary": "Log in as the admin", "operationId": "login", "security": [],
                "requestBody": body("LoginRequest"),
                "responses": {
                    "200": ok("A token", schema("LoginResponse")),
                    "400": err("Malformed JSON"),
                    "401": err("Wrong user name or password"),
                    "422": err("Missing field"),
                    "429": {"description": "Too many failed attempts from this client", "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait"}}, "content": {"application/json": {"schema": schema("Error")}}}
                }
            }},
            "/auth/logout": {"post": {
                "summary": "Delete the dashboard's session cookies", "operationId": "logout", "security": [],
                "responses": {"204": {"description": "The session cookies are deleted (`Set-Cookie` with `Max-Age=0`)"}}
            }},
            "/limiters": {
                "get": {
                    "summary": "List limiters (oldest first)", "operationId": "listLimiters",
                    "parameters": [param("include_deleted")],
                    "responses": answers(json!({"200": ok("Limiters", json!({"type": "array", "items": schema("Limiter")}))}))
                },
                "post": {
                    "summary": "Create a limiter", "operationId": "createLimiter",
                    "requestBody": body("LimiterCreate"),
                    "responses": answers(json!({
                        "201": ok("The new limiter", schema("Limiter")),
                        "400": err("Malformed JSON"),
                        "422": err("Invalid field (named in `field`)")
                    }))
                }
            },
            "/limiters/{id}": {
                "parameters": [param("id")],
                "get": {
                    "summary": "One limiter", "operationId": "getLimiter",
                    "responses": answers(json!({"200": ok("The limiter", schema("Limiter")), "404": err("Unknown or deleted")}))
                },
                "put": {
                    "summary": "Change some of a limiter's fields", "operationId": "updateLimiter",
                    "requestBody": body("LimiterUpdate"),
                    "responses": answers(json!({
                        "200": ok("The limiter", schema("Limiter")),
                        "400": err("Malformed JSON"),
                        "404": err("Unknown or deleted"),
                        "422": err("Invalid field (named in `field`)")
                    }))
                },
                "delete": {
                    "summary": "Delete a limiter (its code stops working at once)", "operationId": "deleteLimiter",
                    "parameters": [param("purge")],
                    "responses": answers(json!({"204": {"description": "Deleted"}, "404": err("Unknown or already deleted")}))
                }
            },
            "/limiters/{id}/rotate-code": {
                "parameters": [param("id")],
                "post": {
                    "summary": "Give a limiter a new code; the old one stops working at once", "operationId": "rotateCode",
                    "responses": answers(json!({"200": ok("The limiter with its new code", schema("Limiter")), "404": err("Unknown or deleted")}))
                }
            },
            "/limiters/{id}/stats": {
                "parameters": [param("id")],
                "get": {
                    "summary": "The limiter's current window", "operationId": "limiterStats",
                    "responses": answers(json!({"200": ok("Stats", schema("LimiterStats")), "404": err("Unknown or deleted")}))
                }
            },
            "/stats": {"get": {
                "summary": "Totals and one row per limiter", "operationId": "stats",
                "parameters": range_params(),
                "responses": answers(json!({"200": ok("Overview", schema("Overview")), "400": err("Bad query parameter (named in `field`)")}))
            }},
            "/stats/timeseries": {"get": {
                "summary": "Totals per time bucket (empty buckets left out)", "operationId": "timeseries",
                "parameters": with(range_params(), &["bucket"]),
                "responses": answers(json!({"200": ok("Points, oldest first", json!({"type": "array", "items": schema("TimeseriesPoint")})), "400": err("Bad query parameter (named in `field`)")}))
            }},
            "/stats/breakdown": {"get": {
                "summary": "Totals per model, user or limiter, most expensive first", "operationId": "breakdown",
                "parameters": with(range_params(), &["by", "limit"]),
                "responses": answers(json!({"200": ok("Rows", json!({"type": "array", "items": schema("BreakdownRow")})), "400": err("Bad query parameter (named in `field`)")}))
            }},
            "/usage/recent": {"get": {
                "summary": "The latest usage records, newest first", "operationId": "recentUsage",
                "parameters": with(range_params(), &["limit"]),
                "responses": answers(json!({"200": ok("Records", json!({"type": "array", "items": schema("UsageRecord")})), "400": err("Bad query parameter (named in `field`)")}))
            }},
            "/pricing": {"get": {
                "summary": "The price table in force", "operationId": "pricing",
                "responses": answers(json!({"200": ok("Prices", schema("Pricing"))}))
            }},
            "/openapi.json": {"get": {
                "summary": "This document", "operationId": "openapi", "security": [],
                "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {}}}}
            }}
        },
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
            "schemas": schemas(),
            "parameters": parameters()
        }
    })
}
