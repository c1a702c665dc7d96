//! The OpenAI API surface: which paths are canonical, and what a request to each costs.
//!
//! A budget proxy decides whether to meter a request from its path, and then forwards that path
//! upstream. If the two readings could differ (`/chat/complet%69ons`, `/chat/completions/.`,
//! `/completions/x/..` mean `/chat/completions` to an upstream that normalises paths), a client
//! could spend without being counted. So:
//!
//! 1. [`check_canonical`] accepts only paths that every HTTP server reads the same way: no
//!    percent-encoding, no `.` or `..` segment, no empty segment (`//`, a trailing `/`), no
//!    backslash or `;`, only the characters OpenAI's and Azure's paths use. A proxy refuses the
//!    rest with a 400 and forwards exactly the path it classified.
//! 2. [`classify`] sorts an API path (the part after `/v1/`, or Azure's `openai/...`) into
//!    [`ApiRoute::Metered`] (usage is read from the response), [`ApiRoute::Free`] (costs nothing:
//!    model lists, file reads, status of a batch…), [`ApiRoute::Unmetered`] (known to cost
//!    money that the response does not report: batches, fine-tuning, realtime sessions,
//!    vector-store work…) and [`ApiRoute::Unknown`].
//!
//! ```
//! use budget_core::api::{check_canonical, classify, ApiRoute};
//! use budget_core::usage::Endpoint;
//! use budget_core::Provider;
//!
//! assert!(check_canonical("/v1/abc/chat/complet%69ons").is_err());
//! assert!(check_canonical("/v1/abc/chat/completions/.").is_err());
//! assert_eq!(
//!     classify(Provider::Openai, "POST", "chat/completions"),
//!     ApiRoute::Metered(Endpoint::ChatCompletions)
//! );
//! assert_eq!(
//!     classify(Provider::Azure, "POST", "openai/deployments/gpt4o/chat/completions"),
//!     ApiRoute::Metered(Endpoint::ChatCompletions)
//! );
//! assert_eq!(classify(Provider::Openai, "POST", "batches"), ApiRoute::Unmetered("batches"));
//! assert_eq!(classify(Provider::Openai, "GET", "batches/batch_1"), ApiRoute::Free);
//! assert_eq!(classify(Provider::Azure, "GET", "__requests"), ApiRoute::OutsideApi);
//! ```

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::usage::Endpoint;
use crate::Provider;

/// Why a path is not canonical.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// `%xx` anywhere in the path.
    #[error("the path contains percent-encoding")]
    PercentEncoded,
    /// A `.` or `..` segment.
    #[error("the path contains a `.` or `..` segment")]
    DotSegment,
    /// `//`, or a trailing `/`.
    #[error("the path contains an empty segment")]
    EmptySegment,
    /// A character outside letters, digits and `-._~:@+=,!$&'()*`.
    #[error("the path contains a character that is not allowed in API paths")]
    Character,
}

/// Check that `path` reads the same to every HTTP server: see the [module docs](self).
///
/// `path` is the path of a request URI (no query); it must start with `/`.
pub fn check_canonical(path: &str) -> Result<(), PathError> {
    let Some(rest) = path.strip_prefix('/') else {
        return Err(PathError::EmptySegment);
    };
    for segment in rest.split('/') {
        match segment {
            "" => return Err(PathError::EmptySegment),
            "." | ".." => return Err(PathError::DotSegment),
            _ => {}
        }
        for b in segment.bytes() {
            match b {
                b'%' => return Err(PathError::PercentEncoded),
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => {}
                b'-' | b'.' | b'_' | b'~' | b':' | b'@' | b'+' | b'=' | b',' | b'!' | b'$'
                | b'&' | b'\'' | b'(' | b')' | b'*' => {}
                _ => return Err(PathError::Character),
            }
        }
    }
    Ok(())
}

/// What a request to an API path costs, as far as a budget is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiRoute {
    /// The response reports usage: metered.
    Metered(Endpoint),
    /// Costs nothing (lists, reads, deletes, cancelling, uploading a file).
    Free,
    /// Known to cost money that no response reports (the name says what it is, e.g.
    /// `batches`): refused unless the operator admits unmetered endpoints.
    Unmetered(&'static str),
    /// Not an endpoint this version knows.
    Unknown,
    /// Not part of the provider's API at all (e.g. an Azure path outside `openai/`).
    OutsideApi,
}

impl ApiRoute {
    /// Whether a request with this method may start billable work: anything but `GET`,
    /// `HEAD`, `DELETE` and `OPTIONS`.
    pub fn method_may_spend(method: &str) -> bool {
        !matches!(method, "GET" | "HEAD" | "DELETE" | "OPTIONS")
    }
}

/// Whether unmetered endpoints that may spend (and unknown ones) are admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnmeteredPolicy {
    /// Refuse them (the default): a budget must not have a door that spends without counting.
    #[default]
    Refuse,
    /// Forward them while the budget is open; their cost is not counted.
    Allow,
}

/// Classify `api_path` for `method` (upper case), for a limiter of `provider`.
///
/// `api_path` is what follows the proxy's own prefix, without a leading `/`: for OpenAI the
/// path after `/v1/` (`chat/completions`), for Azure the whole path (`openai/deployments/d/…`,
/// `openai/v1/…`), since Azure's API lives under `openai/`. Call [`check_canonical`] first.
pub fn classify(provider: Provider, method: &str, api_path: &str) -> ApiRoute {
    // Matched case-insensitively (metering more is the safe side), without allocating for the
    // usual lower-case path.
    let lower: Cow<'_, str> = if api_path.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(api_path.to_ascii_lowercase())
    } else {
        Cow::Borrowed(api_path)
    };
    // Azure's `openai/deployments/{name}/` plus the longest OpenAI path (5 segments).
    let mut buf = [""; 8];
    let mut n = 0;
    for seg in lower.split('/').filter(|s| !s.is_empty()) {
        if n == buf.len() {
            return ApiRoute::Unknown;
        }
        buf[n] = seg;
        n += 1;
    }
    let mut segs = &buf[..n];
    if provider == Provider::Azure {
        segs = match segs {
            ["openai", "deployments"] => return ApiRoute::Unknown,
            ["openai", "v1", rest @ ..] | ["openai", "deployments", _, rest @ ..] => rest,
            ["openai", rest @ ..] => rest,
            _ => return ApiRoute::OutsideApi,
        };
    }
    route_of(method, segs)
}

/// The table: `*` in a pattern is one id segment.
fn route_of(method: &str, segs: &[&str]) -> ApiRoute {
    use ApiRoute::{Free, Metered, Unknown, Unmetered};
    let post = method == "POST";
    let read = !ApiRoute::method_may_spend(method);
    let metered = |e| {
        if post {
            Metered(e)
        } else if read {
            Free
        } else {
            Unknown
        }
    };
    match segs {
        ["chat", "completions"] => metered(Endpoint::ChatCompletions),
        ["completions"] => metered(Endpoint::Completions),
        ["embeddings"] => metered(Endpoint::Embeddings),
        ["responses"] => metered(Endpoint::Responses),
        ["images", "generations" | "edits" | "variations"] => metered(Endpoint::Images),
        ["audio", "transcriptions" | "translations"] => metered(Endpoint::AudioTranscription),
        ["audio", "speech"] => metered(Endpoint::AudioSpeech),
        ["moderations"] => metered(Endpoint::Moderations),

        // Reads and bookkeeping that cost nothing.
        ["models"] | ["models", _] if read => Free,
        ["files"] | ["uploads"] => {
            if post || read {
                Free
            } else {
                Unknown
            }
        }
        ["files", _] | ["files", _, "content"] if read => Free,
        ["uploads", _, "parts" | "complete" | "cancel"] if post => Free,
        ["batches"] | ["batches", _] if read => Free,
        ["batches", _, "cancel"] if post => Free,
        ["batches"] if post => Unmetered("batches"),
        ["fine_tuning", "jobs"] | ["fine_tuning", "jobs", _] if read => Free,
        ["fine_tuning", "jobs", _, "events" | "checkpoints"] if read => Free,
        ["fine_tuning", "jobs", _, "cancel" | "pause" | "resume"] if post => Free,
        ["fine_tuning", "jobs"] if post => Unmetered("fine-tuning jobs"),
        ["fine_tuning", ..] if !read => Unmetered("fine-tuning"),
        ["chat", "completions", _] => {
            if read || post {
                Free // read, update metadata or delete a stored completion
            } else {
                Unknown
            }
        }
        ["chat", "completions", _, "messages"] if read => Free,
        ["responses", "input_tokens"] if post => Free,
        ["responses", _] | ["responses", _, "input_items"] if read => Free,
        ["responses", _, "cancel"] if post => Free,
        ["conversations", ..] if read || post => Free,
        ["vector_stores"] | ["vector_stores", _] if read => Free,
        ["vector_stores", _, "files" | "file_batches"] if read => Free,
        ["vector_stores", _, "files" | "file_batches", _] if read => Free,
        ["vector_stores", _, "file_batches", _, "files"] if read => Free,
        ["vector_stores", _, "file_batches", _, "cancel"] if post => Free,
        ["vector_stores", ..] => Unmetered("vector stores"),
        ["realtime", ..] if !read => Unmetered("realtime sessions"),
        ["assistants"] | ["assistants", _] if read || post => Free,
        ["threads", _, "runs", ..] | ["threads", "runs"] if !read => Unmetered("assistant runs"),
        ["threads", ..] if read || post => Free,
        ["containers", ..] if !read => Unmetered("containers"),
        ["containers", ..] => Free,
        ["evals", _, "runs", ..] if !read => Unmetered("eval runs"),
        ["evals", ..] if read || post => Free,
        ["videos", ..] if !read => Unmetered("videos"),
        ["videos", ..] => Free,
        _ => Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_canonical_spellings_are_refused() {
        for p in [
            "/v1/abc/chat/complet%69ons",
            "/v1/abc/chat/completions/.",
            "/v1/abc/completions/x/..",
            "/v1/abc/chat//completions",
            "/v1/abc/chat/completions/",
            "/v1//abc/chat/completions",
            "/v1/abc/./chat/completions",
            "/v1/abc/chat/completions;x=1",
            "/v1/abc/chat\\completions",
            "/v1/abc/chat/completions%2F",
            "/v1/abc/chat/completions\u{0}",
            "v1/abc/chat/completions",
        ] {
            assert!(check_canonical(p).is_err(), "{p} passed");
        }
        for p in [
            "/v1/abc/chat/completions",
            "/v1/abc/models/ft:gpt-4o-mini:org::abc123",
            "/v1/abc/openai/deployments/gpt-4o.2/chat/completions",
            "/v1/abc/files/file-abc_123/content",
        ] {
            assert_eq!(check_canonical(p), Ok(()), "{p}");
        }
    }

    #[test]
    fn metered_endpoints_only_on_post() {
        let c = |m, p| classify(Provider::Openai, m, p);
        assert_eq!(
            c("POST", "chat/completions"),
            ApiRoute::Metered(Endpoint::ChatCompletions)
        );
        assert_eq!(
            c("POST", "Chat/Completions"),
            ApiRoute::Metered(Endpoint::ChatCompletions)
        );
        assert_eq!(c("GET", "chat/completions"), ApiRoute::Free);
        assert_eq!(c("PUT", "chat/completions"), ApiRoute::Unknown);
        assert_eq!(
            c("POST", "audio/speech"),
            ApiRoute::Metered(Endpoint::AudioSpeech)
        );
        assert_eq!(
            c("POST", "images/edits"),
            ApiRoute::Metered(Endpoint::Images)
        );
    }

    #[test]
    fn costly_unmetered_and_unknown() {
        let c = |m, p| classify(Provider::Openai, m, p);
        assert_eq!(c("POST", "batches"), ApiRoute::Unmetered("batches"));
        assert_eq!(c("POST", "batches/b1/cancel"), ApiRoute::Free);
        assert_eq!(c("GET", "batches"), ApiRoute::Free);
        assert_eq!(
            c("POST", "fine_tuning/jobs"),
            ApiRoute::Unmetered("fine-tuning jobs")
        );
        assert_eq!(
            c("POST", "vector_stores/vs_1/files"),
            ApiRoute::Unmetered("vector stores")
        );
        assert_eq!(
            c("POST", "vector_stores/vs_1/search"),
            ApiRoute::Unmetered("vector stores")
        );
        assert_eq!(c("GET", "vector_stores/vs_1/files"), ApiRoute::Free);
        assert_eq!(
            c("POST", "realtime/sessions"),
            ApiRoute::Unmetered("realtime sessions")
        );
        assert_eq!(
            c("POST", "threads/t1/runs"),
            ApiRoute::Unmetered("assistant runs")
        );
        assert_eq!(c("POST", "threads/t1/messages"), ApiRoute::Free);
        assert_eq!(c("POST", "files"), ApiRoute::Free);
        assert_eq!(c("POST", "files/f1"), ApiRoute::Unknown);
        assert_eq!(c("POST", "something/new"), ApiRoute::Unknown);
        assert_eq!(c("GET", "models"), ApiRoute::Free);
        assert_eq!(c("POST", "models"), ApiRoute::Unknown);
        // The OpenAI surface is rooted at /v1/: an Azure-style path is just unknown there.
        assert_eq!(
            c("POST", "openai/deployments/d/chat/completions"),
            ApiRoute::Unknown
        );
    }

    #[test]
    fn azure_paths() {
        let c = |m, p| classify(Provider::Azure, m, p);
        assert_eq!(
            c("POST", "openai/deployments/gpt4o/chat/completions"),
            ApiRoute::Metered(Endpoint::ChatCompletions)
        );
        assert_eq!(
            c("POST", "openai/v1/responses"),
            ApiRoute::Metered(Endpoint::Responses)
        );
        assert_eq!(
            c("POST", "openai/deployments/emb/embeddings"),
            ApiRoute::Metered(Endpoint::Embeddings)
        );
        assert_eq!(c("GET", "openai/models"), ApiRoute::Free);
        assert_eq!(c("POST", "openai/batches"), ApiRoute::Unmetered("batches"));
        assert_eq!(c("GET", "__requests"), ApiRoute::OutsideApi);
        assert_eq!(c("POST", "v1/chat/completions"), ApiRoute::OutsideApi);
        assert_eq!(c("POST", "openai/deployments"), ApiRoute::Unknown);
    }
}
