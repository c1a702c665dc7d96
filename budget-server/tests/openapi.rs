//! The committed `budget-server/openapi.json` is the document the server generates and serves.
//! The dashboard's TypeScript types are generated from that file, so a stale copy means stale
//! types: regenerate with `UPDATE_OPENAPI=1 cargo test -p budget-server --test openapi`.

use std::path::PathBuf;

use budget_server::admin::openapi::document_json;

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("openapi.json")
}

#[test]
fn committed_document_is_current() {
    let generated = document_json();
    let path = committed_path();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).expect("write openapi.json");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} is stale: regenerate it with `UPDATE_OPENAPI=1 cargo test -p budget-server --test \
         openapi`, then the dashboard's types with `npm run gen:api` in budget-server/dashboard",
        path.display()
    );
}

#[test]
fn document_is_openapi_3_1_with_every_schema_it_refers_to() {
    let doc: serde_json::Value = serde_json::from_str(&document_json()).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in [
        "Money",
        "Limiter",
        "LimiterCreate",
        "LimiterUpdate",
        "Error",
        "Period",
    ] {
        assert!(schemas.contains_key(name), "no {name} schema");
    }
    // Money is a JSON number at the edge, never a string.
    let limiter = serde_json::to_string(&doc["components"]["schemas"]["LimiterRecord"]).unwrap();
    assert!(limiter.contains(r##""budget_limit":{"$ref":"#/components/schemas/Money""##));
}
