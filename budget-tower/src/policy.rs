//! A limiter's request policies, checked before anything reaches the upstream: a required
//! end-user id, the model rule and the per-request price guard. Budgets (several windows, per
//! user) are the store's: they are decided atomically by `reserve`.

use budget_core::pricing::PriceTable;
use budget_core::usage::{Endpoint, RequestInfo};
use budget_core::Limiter;

use crate::Refusal;

/// The end-user and model rules.
pub(crate) fn check_request(
    limiter: &Limiter,
    info: &RequestInfo,
    user: Option<&str>,
) -> Result<(), Refusal> {
    if limiter.require_user && user.is_none_or(str::is_empty) {
        return Err(Refusal::user_required());
    }
    if !limiter.allowed_models.is_empty() {
        match info.model.as_deref() {
            Some(m) if limiter.allows_model(m) => {}
            m => return Err(Refusal::model_not_allowed(m)),
        }
    }
    Ok(())
}

/// The per-request price guard (`max_request_cost`) for a request of `prompt` estimated input
/// tokens: `Ok(None)` lets the request through as it
/// is; `Ok(Some(limit))` asks to give it that output limit (it set none, and with the largest
/// one that keeps its worst case under the cap it fits); `Err` refuses it.
pub(crate) fn price_guard(
    prices: &PriceTable,
    limiter: &Limiter,
    info: &RequestInfo,
    prompt: u64,
) -> Result<Option<u64>, Refusal> {
    let Some(cap) = limiter.max_request_cost else {
        return Ok(None);
    };
    let Some(model) = info.model.as_deref() else {
        return Err(Refusal::request_too_costly(None, cap, ""));
    };
    let worst = |limit: Option<u64>| {
        prices
            .worst_case_cost(model, limiter.provider, prompt, limit, info.n)
            .total()
    };
    let Some(worst_case) = worst(info.max_output_tokens) else {
        return Err(Refusal::request_too_costly(None, cap, ""));
    };
    if worst_case <= cap {
        return Ok(None);
    }
    let hint = "Lower the request's output limit (max_completion_tokens / max_output_tokens / \
                max_tokens) or its prompt";
    if info.max_output_tokens.is_some() || !limiter.cap_output_tokens {
        return Err(Refusal::request_too_costly(Some(worst_case), cap, hint));
    }
    // The largest output limit whose worst case fits (the worst case grows with the limit).
    let fits = |limit: u64| worst(Some(limit)).is_some_and(|w| w <= cap);
    if !fits(1) {
        return Err(Refusal::request_too_costly(Some(worst_case), cap, hint));
    }
    let (mut lo, mut hi) = (1u64, u32::MAX as u64);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if fits(mid) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    Ok(Some(lo))
}

/// The request body with its output limit set to `limit`, in the field `endpoint` reads;
/// `None` if the endpoint has no output limit or the body is not a JSON object.
pub(crate) fn set_output_limit(endpoint: Endpoint, body: &[u8], limit: u64) -> Option<Vec<u8>> {
    let field = match endpoint {
        Endpoint::ChatCompletions => "max_completion_tokens",
        Endpoint::Completions => "max_tokens",
        Endpoint::Responses => "max_output_tokens",
        _ => return None,
    };
    let mut value: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(body).ok()?;
    value.insert(field.to_owned(), limit.into());
    serde_json::to_vec(&value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use budget_core::{Money, NewLimiter, Period};

    fn limiter(cap_cents: Option<i64>, cap_output: bool) -> Limiter {
        let mut n = NewLimiter::new(
            "p",
            Money::from_dollars(100),
            Period::Day,
            "https://api.openai.com",
        );
        n.max_request_cost = cap_cents.map(Money::from_cents);
        n.cap_output_tokens = Some(cap_output);
        Limiter::create(n, chrono::Utc::now()).unwrap()
    }

    fn guard(prices: &PriceTable, l: &Limiter, info: &RequestInfo) -> Result<Option<u64>, Refusal> {
        price_guard(prices, l, info, info.estimate_prompt_tokens())
    }

    fn info(body: &str) -> RequestInfo {
        RequestInfo::parse(Endpoint::ChatCompletions, body.as_bytes())
    }

    #[test]
    fn the_guard_caps_or_refuses() {
        let prices = PriceTable::builtin();
        let small = info(r#"{"model":"gpt-4o","max_tokens":100,"messages":[]}"#);
        assert_eq!(guard(&prices, &limiter(Some(50), true), &small), Ok(None));
        assert_eq!(guard(&prices, &limiter(None, true), &small), Ok(None));

        // gpt-4o output is $10/M: 1M tokens is $10, far above $0.50.
        let big = info(r#"{"model":"gpt-4o","max_tokens":1000000,"messages":[]}"#);
        let e = guard(&prices, &limiter(Some(50), true), &big).unwrap_err();
        assert_eq!((e.status.as_u16(), e.code), (400, "request_cost_too_high"));
        assert!(e.message.contains("$0.50"), "{}", e.message);

        // No output limit: gpt-4o's own (16 384 tokens, $0.16) fits $0.50…
        let open = info(r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#);
        assert_eq!(guard(&prices, &limiter(Some(50), true), &open), Ok(None));
        // …but not $0.10: the largest that fits at $10/M output is 10 000 tokens, less what
        // the prompt costs.
        let Ok(Some(limit)) = guard(&prices, &limiter(Some(10), true), &open) else {
            panic!("a cap is given")
        };
        assert!((9_900..10_000).contains(&limit), "{limit}");
        let worst = |l| {
            prices
                .worst_case_cost(
                    "gpt-4o",
                    budget_core::Provider::Openai,
                    open.estimate_prompt_tokens(),
                    Some(l),
                    1,
                )
                .total()
                .unwrap()
        };
        assert!(worst(limit) <= Money::from_cents(10));
        assert!(
            worst(limit + 1) > Money::from_cents(10),
            "the largest that fits"
        );
        // …unless the limiter refuses instead.
        assert!(guard(&prices, &limiter(Some(10), false), &open).is_err());

        let unknown = info(r#"{"model":"no-such-model","max_tokens":1,"messages":[]}"#);
        assert!(guard(&prices, &limiter(Some(50), true), &unknown).is_err());
    }

    #[test]
    fn the_output_limit_goes_in_the_endpoints_field() {
        let out =
            set_output_limit(Endpoint::Responses, br#"{"model":"m","input":"x"}"#, 7).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["max_output_tokens"], 7);
        assert_eq!(v["input"], "x");
        assert!(set_output_limit(Endpoint::Embeddings, br#"{"model":"m"}"#, 7).is_none());
        assert!(set_output_limit(Endpoint::ChatCompletions, b"[1]", 7).is_none());
    }

    #[test]
    fn user_and_model_rules() {
        let mut l = limiter(None, true);
        l.allowed_models = vec!["gpt-4o-mini".into(), "text-embedding-3-*".into()];
        let ok = info(r#"{"model":"gpt-4o-mini","messages":[]}"#);
        assert!(check_request(&l, &ok, None).is_ok());
        let e = check_request(&l, &info(r#"{"model":"gpt-4o","messages":[]}"#), None).unwrap_err();
        assert_eq!((e.status.as_u16(), e.code), (403, "model_not_allowed"));
        assert!(e.message.contains("gpt-4o"));
        l.require_user = true;
        assert_eq!(
            check_request(&l, &ok, None).unwrap_err().code,
            "user_required"
        );
        assert!(check_request(&l, &ok, Some("alice")).is_ok());
    }
}
