//! Arbitrary request paths through `budget_core::api`: never panics; a path that
//! `check_canonical` accepts reads the same to a server that normalises paths (percent-decoding,
//! dot segments, repeated and trailing slashes), so what the proxy meters is what the upstream
//! serves; only `POST` is ever metered; the classification of an API path does not depend on
//! its letter case (OpenAI's router ignores it).
#![no_main]

use budget_core::api::{check_canonical, classify, ApiRoute};
use budget_core::Provider;
use libfuzzer_sys::fuzz_target;

const METHODS: [&str; 6] = ["GET", "POST", "DELETE", "PUT", "PATCH", "HEAD"];

/// What a lenient server (Starlette/uvicorn, many gateways) routes on: the percent-decoded path
/// with dot segments resolved (RFC 3986 5.2.4) and empty segments dropped.
fn normalise(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).ok()?, 16) {
                decoded.push(b);
                i += 3;
                continue;
            }
        }
        decoded.push(bytes[i]);
        i += 1;
    }
    let decoded = String::from_utf8(decoded).ok()?.replace('\\', "/");
    let mut out: Vec<&str> = Vec::new();
    for seg in decoded.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    Some(format!("/{}", out.join("/")))
}

fuzz_target!(|data: &[u8]| {
    let Some((&m, rest)) = data.split_first() else {
        return;
    };
    let Ok(path) = std::str::from_utf8(rest) else {
        return;
    };
    let method = METHODS[usize::from(m) % METHODS.len()];
    if check_canonical(path).is_ok() {
        assert_eq!(
            normalise(path).as_deref(),
            Some(path),
            "a canonical path must read the same to a normalising server"
        );
    }
    let api = path.trim_start_matches('/');
    for provider in [Provider::Openai, Provider::Azure] {
        let route = classify(provider, method, api);
        if let ApiRoute::Metered(_) = route {
            assert_eq!(method, "POST", "{api}");
        }
        assert_eq!(
            classify(provider, method, &api.to_ascii_uppercase()),
            classify(provider, method, &api.to_ascii_lowercase()),
            "{api}"
        );
    }
});
