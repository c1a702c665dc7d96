//! Model names: alias → dated snapshot, the test-hook models, and `GET /v1/models`.

/// Well-known aliases and the dated snapshot OpenAI reports for them.
const SNAPSHOTS: &[(&str, &str)] = &[
    ("gpt-4o", "gpt-4o-2024-08-06"),
    ("gpt-4o-mini", "gpt-4o-mini-2024-07-18"),
    ("gpt-4.1", "gpt-4.1-2025-04-14"),
    ("gpt-4.1-mini", "gpt-4.1-mini-2025-04-14"),
    ("gpt-4.1-nano", "gpt-4.1-nano-2025-04-14"),
    ("gpt-4-turbo", "gpt-4-turbo-2024-04-09"),
    ("gpt-3.5-turbo", "gpt-3.5-turbo-0125"),
    ("gpt-5", "gpt-5-2025-08-07"),
    ("gpt-5-mini", "gpt-5-mini-2025-08-07"),
    ("gpt-5-nano", "gpt-5-nano-2025-08-07"),
    ("o1", "o1-2024-12-17"),
    ("o3", "o3-2025-04-16"),
    ("o3-mini", "o3-mini-2025-01-31"),
    ("o4-mini", "o4-mini-2025-04-16"),
];

/// Models that answer under their own name and are listed by `GET /v1/models`.
const LISTED: &[&str] = &[
    "gpt-4o",
    "gpt-4o-mini",
    "gpt-4.1",
    "gpt-4.1-mini",
    "o3-mini",
    "gpt-3.5-turbo-instruct",
    "text-embedding-3-small",
    "text-embedding-3-large",
    "gpt-image-1",
    "whisper-1",
    "gpt-4o-transcribe",
];

/// What Azure reports for a deployment whose name is not a known model.
pub(crate) const AZURE_DEFAULT_MODEL: &str = "gpt-4o-2024-08-06";

/// The model name a response reports for the requested `model`: the dated snapshot of a
/// well-known alias, anything else as is.
pub(crate) fn resolve(model: &str) -> &str {
    SNAPSHOTS
        .iter()
        .find(|(alias, _)| *alias == model)
        .map_or(model, |(_, dated)| dated)
}

/// The model Azure reports for a deployment (or Azure v1 `model`) name: a known alias → its
/// snapshot; a dated snapshot, a listed model or a `mock-*` name → as is; anything else (a
/// custom deployment name) → `fallback`, the model behind the deployment.
pub(crate) fn resolve_azure<'a>(name: &'a str, fallback: &'a str) -> &'a str {
    let resolved = resolve(name);
    if resolved != name
        || name.starts_with("mock-")
        || LISTED.contains(&name)
        || SNAPSHOTS.iter().any(|(_, dated)| *dated == name)
    {
        resolved
    } else {
        fallback
    }
}

/// The `GET /v1/models` body.
pub(crate) fn list_json() -> String {
    let mut out = String::from(r#"{"object":"list","data":["#);
    for (i, id) in LISTED
        .iter()
        .chain(SNAPSHOTS.iter().map(|(_, d)| d))
        .enumerate()
    {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!(
            r#"{{"id":"{id}","object":"model","created":1715367049,"owned_by":"system"}}"#
        ));
    }
    out.push_str("]}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_resolve_and_unknown_names_echo() {
        assert_eq!(resolve("gpt-4o"), "gpt-4o-2024-08-06");
        assert_eq!(resolve("gpt-4o-mini"), "gpt-4o-mini-2024-07-18");
        assert_eq!(resolve("my-model"), "my-model");
        assert_eq!(
            resolve_azure("prod-chat", AZURE_DEFAULT_MODEL),
            AZURE_DEFAULT_MODEL
        );
        assert_eq!(
            resolve_azure("mock-unpriced-model", AZURE_DEFAULT_MODEL),
            "mock-unpriced-model"
        );
        let list: serde_json::Value = serde_json::from_str(&list_json()).unwrap();
        assert!(list["data"].as_array().unwrap().len() > 10);
    }
}
