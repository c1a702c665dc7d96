use std::collections::BTreeMap;

use proptest::prelude::*;

use super::lookup::{azure_spelling, fine_tune_base, undated};
use super::rates::{format_scaled, parse_scaled};
use super::*;
use crate::money::Money;
use crate::usage::Usage;

fn per_m(s: &str) -> Rate {
    Rate::per_million(s).unwrap()
}

fn usage(model: &str, prompt: u64, completion: u64) -> Usage {
    Usage {
        model: Some(model.into()),
        prompt_tokens: prompt,
        completion_tokens: completion,
        ..Default::default()
    }
}

fn total(cost: &Cost) -> Money {
    cost.total()
        .unwrap_or_else(|| panic!("expected a priced cost, got {cost:?}"))
}

#[test]
fn builtin_parses_every_entry() {
    let t = PriceTable::builtin();
    assert_eq!(t.len(), 502);
    assert!(!t.is_empty());
    assert!(t.source().unwrap().contains("litellm 1.110.2"));
    let names: Vec<&str> = t.iter().map(|(n, _)| n).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted);
    for (name, price) in t.iter() {
        assert_eq!(name, name.to_ascii_lowercase());
        let expected = if name.starts_with("azure/") {
            Provider::Azure
        } else {
            Provider::Openai
        };
        assert_eq!(price.provider, Some(expected), "{name}");
        assert!(price.mode.is_some(), "{name}");
        assert_eq!(price.unpriced, !price.has_prices(), "{name}");
    }
    // Clones share the parsed data.
    assert!(Arc::ptr_eq(&t.data, &PriceTable::builtin().data));
}

#[test]
fn spot_check_prices() {
    let t = PriceTable::builtin();
    let gpt4o = t.get_exact("gpt-4o").unwrap();
    assert_eq!(gpt4o.input, Some(Rate::from_picos(2_500_000)));
    assert_eq!(gpt4o.cached_input, Some(per_m("1.25")));
    assert_eq!(gpt4o.output, Some(per_m("10")));
    assert_eq!(gpt4o.batch.as_ref().unwrap().output, Some(per_m("5")));
    assert_eq!(
        gpt4o.priority.as_ref().unwrap().cached_input,
        Some(per_m("2.125"))
    );
    assert_eq!(gpt4o.max_output_tokens, Some(16_384));
    assert_eq!(gpt4o.mode.as_deref(), Some("chat"));
    let emb = t.get_exact("text-embedding-3-small").unwrap();
    assert_eq!(emb.input, Some(Rate::from_picos(20_000)));
    assert_eq!(emb.output, Some(Rate::ZERO));
    let whisper = t.get_exact("whisper-1").unwrap();
    assert_eq!(
        whisper.input_per_second,
        Some(Rate::from_picos(100_000_000))
    );
    let tts = t.get_exact("tts-1").unwrap();
    assert_eq!(tts.input_per_character, Some(Rate::from_picos(15_000_000)));
    assert!(t.get_exact("sora-2").unwrap().unpriced);
    assert_eq!(t.get_exact("GPT-4O"), Some(gpt4o));
    // 0.000833333333333 $/s is finer than a pico-dollar: rounded up.
    let live = t.get_exact("gpt-live-1").unwrap();
    assert_eq!(live.input_per_second, Some(Rate::from_picos(833_333_334)));
}

/// Proves data/prices.json is generated from the source price map (kept in the repository at
/// `data/source/openai-prices.json`, with its licence), not hand-typed.
#[test]
fn builtin_matches_source_exactly() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/source/openai-prices.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "the price source {} is needed by this test: {e}",
            path.display()
        )
    });
    let source: BTreeMap<String, BTreeMap<String, serde_json::Value>> =
        serde_json::from_str(&text).unwrap();
    let t = PriceTable::builtin();
    assert_eq!(source.len(), t.len());
    let rate = |e: &BTreeMap<String, serde_json::Value>, f: &str| {
        e.get(f)
            .map(|v| Rate::from_dollars_f64(v.as_f64().unwrap()).unwrap())
    };
    let mut checked = 0;
    for (name, e) in &source {
        let p = t
            .get_exact(name)
            .unwrap_or_else(|| panic!("{name} missing from data/prices.json"));
        let tier = |t: &Option<TierPrice>| t.clone().unwrap_or_default();
        let pairs = [
            (p.input, "input_cost_per_token"),
            (p.cached_input, "cache_read_input_token_cost"),
            (p.cache_write, "cache_creation_input_token_cost"),
            (p.output, "output_cost_per_token"),
            (p.audio_input, "input_cost_per_audio_token"),
            (p.audio_output, "output_cost_per_audio_token"),
            (p.output_per_second, "output_cost_per_second"),
            (p.input_per_character, "input_cost_per_character"),
            (tier(&p.batch).input, "input_cost_per_token_batches"),
            (tier(&p.batch).output, "output_cost_per_token_batches"),
            (tier(&p.priority).input, "input_cost_per_token_priority"),
            (
                tier(&p.priority).cached_input,
                "cache_read_input_token_cost_priority",
            ),
            (tier(&p.priority).output, "output_cost_per_token_priority"),
            (tier(&p.flex).input, "input_cost_per_token_flex"),
            (
                tier(&p.flex).cached_input,
                "cache_read_input_token_cost_flex",
            ),
            (tier(&p.flex).output, "output_cost_per_token_flex"),
        ];
        for (ours, field) in pairs {
            assert_eq!(ours, rate(e, field), "{name}: {field}");
            checked += usize::from(ours.is_some());
        }
        // Per-second prices may be finer than a pico-dollar (rounded up by at most one).
        let theirs = e.get("input_cost_per_second").map(|v| v.as_f64().unwrap());
        match (p.input_per_second, theirs) {
            (None, None) => {}
            (Some(r), Some(f)) => {
                let diff = r.as_picos() as f64 - f * 1e12;
                assert!((0.0..1.0).contains(&diff), "{name}: {r:?} vs {f}");
            }
            other => panic!("{name}: input_per_second {other:?}"),
        }
        for (f, ours) in [
            ("max_input_tokens", p.max_input_tokens),
            ("max_output_tokens", p.max_output_tokens),
        ] {
            assert_eq!(e.get(f).map(|v| v.as_u64().unwrap()), ours, "{name}: {f}");
        }
        assert_eq!(e.get("mode").and_then(|v| v.as_str()), p.mode.as_deref());
        assert_eq!(
            e.get("deprecation_date").and_then(|v| v.as_str()),
            p.deprecation_date.as_deref()
        );
    }
    assert!(checked > 2000, "only {checked} prices compared");
}

#[test]
fn json_roundtrip_and_numbers() {
    let t = PriceTable::builtin();
    let back = PriceTable::from_json_str(&t.to_json_string()).unwrap();
    assert_eq!(back.len(), t.len());
    assert!(t.iter().zip(back.iter()).all(|(a, b)| a == b));
    // JSON numbers are read through their shortest decimal; exponents are fine.
    let t = PriceTable::from_json_str(
        r#"{"models": {"m": {"input": 2.5, "output": "1e1", "input_per_second": 0.0001}}}"#,
    )
    .unwrap();
    let m = t.get_exact("m").unwrap();
    assert_eq!(m.input, Some(per_m("2.5")));
    assert_eq!(m.output, Some(per_m("10")));
    assert_eq!(m.input_per_second, Some(Rate::from_picos(100_000_000)));
}

#[test]
fn versions_name_the_prices_in_force() {
    let t = PriceTable::builtin();
    let v = t.version().to_owned();
    assert!(v.starts_with("sha256:") && v.len() == 23, "{v}");
    // The same prices read back from their file: the same version.
    let back = PriceTable::from_json_str(&t.to_json_string()).unwrap();
    assert_eq!(back.version(), v);
    // An override in force, even of one price: another version.
    let one = PriceTable::from_json_str(r#"{"models": {"gpt-4o": {"input": 2.6, "output": 10}}}"#)
        .unwrap();
    let overridden = t.clone().with_overrides(one);
    assert_ne!(overridden.version(), v);
}

#[test]
fn decimal_helpers() {
    assert_eq!(parse_scaled("0.075", 6).unwrap().as_picos(), 75_000);
    assert_eq!(parse_scaled("0.0025", 6).unwrap().as_picos(), 2_500);
    assert_eq!(parse_scaled("0", 6).unwrap(), Rate::ZERO);
    assert_eq!(parse_scaled("0.0000000000001", 12).unwrap().as_picos(), 1);
    assert_eq!(parse_scaled("1e-300", 12).unwrap().as_picos(), 1);
    assert!(parse_scaled("-1", 6).is_err());
    assert!(parse_scaled("abc", 6).is_err());
    assert!(parse_scaled("", 6).is_err());
    assert!(parse_scaled("1e30", 6).is_err());
    assert_eq!(format_scaled(Rate::from_picos(2_500_000), 6), "2.5");
    assert_eq!(format_scaled(Rate::from_picos(10_000_000), 6), "10");
    assert_eq!(format_scaled(Rate::from_picos(100_000_000), 12), "0.0001");
    assert_eq!(format_scaled(Rate::ZERO, 12), "0");
}

#[test]
fn load_errors_name_file_model_and_field() {
    let err = PriceTable::from_json_str(r#"{"models": {"m": {"input": "abc"}}}"#).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("model `m`") && msg.contains("field `input`"),
        "{msg}"
    );
    let err = PriceTable::from_json_str(r#"{"models": {"m": {"inptu": "1"}}}"#).unwrap_err();
    assert!(err.to_string().contains("field `inptu`"), "{err}");
    let err =
        PriceTable::from_json_str(r#"{"models": {"m": {"batch": {"output": "-1"}}}}"#).unwrap_err();
    assert!(err.to_string().contains("field `batch`"), "{err}");
    let err = PriceTable::from_json_str(r#"{"models": {"m": {"unpriced": true, "input": "1"}}}"#)
        .unwrap_err();
    assert!(err.to_string().contains("field `unpriced`"), "{err}");
    let err = PriceTable::from_json_str(r#"{"models": {"M": {}, "m": {}}}"#).unwrap_err();
    assert!(matches!(err, PricingError::DuplicateModel { .. }), "{err}");
    assert!(matches!(
        PriceTable::from_json_str("{}"),
        Err(PricingError::Json { .. })
    ));
    let missing = std::env::temp_dir().join("budget-core-no-such-prices.json");
    let err = PriceTable::load_file(&missing).unwrap_err();
    assert!(
        err.to_string().contains("budget-core-no-such-prices.json"),
        "{err}"
    );
}

#[test]
fn load_file_and_overrides_replace_and_extend() {
    let path = std::env::temp_dir().join(format!("budget-core-prices-{}.json", std::process::id()));
    std::fs::write(
        &path,
        r#"{"models": {
            "GPT-4o": {"input": "3", "output": "12"},
            "acme-llm": {"input": "1", "cached_input": "0.5", "output": "2", "max_output_tokens": 1000}
        }}"#,
    )
    .unwrap();
    let overrides = PriceTable::load_file(&path).unwrap();
    std::fs::remove_file(&path).ok();
    assert_eq!(overrides.len(), 2);
    let t = PriceTable::builtin().with_overrides(overrides);
    assert_eq!(t.len(), 503);
    // Replaced as a whole: the builtin cached price is gone with the rest of the entry.
    let gpt4o = t.get_exact("gpt-4o").unwrap();
    assert_eq!(gpt4o.input, Some(per_m("3")));
    assert_eq!(gpt4o.cached_input, None);
    assert_eq!(
        total(&t.cost(&usage("gpt-4o", 1_000_000, 0), Provider::Openai)),
        Money::from_dollars(3)
    );
    // Dated snapshots keep their own builtin entry.
    assert_eq!(
        total(&t.cost(&usage("gpt-4o-2024-08-06", 1_000_000, 0), Provider::Openai)).to_string(),
        "$2.50"
    );
    let acme = t.cost(
        &usage("acme-llm-2025-01-01", 1_000_000, 1_000_000),
        Provider::Openai,
    );
    assert_eq!(total(&acme), Money::from_dollars(3));
    assert_eq!(acme.model(), Some("acme-llm"));
    // The builtin table itself is untouched.
    assert_eq!(
        PriceTable::builtin().get_exact("gpt-4o").unwrap().input,
        Some(per_m("2.5"))
    );
}

#[test]
fn lookup_rules() {
    let t = PriceTable::builtin();
    let hit = |m: &str, p: Provider| {
        t.lookup(m, p)
            .map(|m| (m.name.to_owned(), m.rule))
            .unwrap_or_else(|| panic!("{m} not found"))
    };
    let oa = Provider::Openai;
    let az = Provider::Azure;
    assert_eq!(hit("gpt-4o", oa), ("gpt-4o".into(), MatchRule::Exact));
    assert_eq!(hit("  GPT-4o ", oa), ("gpt-4o".into(), MatchRule::Exact));
    // A dated snapshot with its own entry wins over the alias.
    assert_eq!(
        hit("gpt-4o-2024-05-13", oa),
        ("gpt-4o-2024-05-13".into(), MatchRule::Exact)
    );
    assert_eq!(
        hit("gpt-4o-2030-01-02", oa),
        ("gpt-4o".into(), MatchRule::Undated)
    );
    assert_eq!(hit("gpt-4-0314", oa), ("gpt-4".into(), MatchRule::Undated));
    // Fine-tunes: the table's ft: entry first, else the base.
    assert_eq!(
        hit("ft:gpt-4o-mini-2024-07-18:acme::abc123", oa),
        ("ft:gpt-4o-mini-2024-07-18".into(), MatchRule::FineTune)
    );
    assert_eq!(
        hit("ft:gpt-4o-mini:acme:custom:abc123", oa),
        ("gpt-4o-mini".into(), MatchRule::FineTuneBase)
    );
    assert_eq!(
        hit("ft:o3-mini-2025-01-31:acme::x", oa),
        ("o3-mini-2025-01-31".into(), MatchRule::FineTuneBase)
    );
    assert_eq!(
        hit("gpt-4o-mini-2024-07-18.ft-0123abcd", oa),
        ("ft:gpt-4o-mini-2024-07-18".into(), MatchRule::FineTune)
    );
    // Azure spellings and azure/ preference.
    assert_eq!(
        hit("gpt-35-turbo", oa),
        ("gpt-3.5-turbo".into(), MatchRule::AzureSpelling)
    );
    assert_eq!(
        hit("gpt-35-turbo-0125", oa),
        ("gpt-3.5-turbo-0125".into(), MatchRule::AzureSpelling)
    );
    assert_eq!(
        hit("gpt-35-turbo", az),
        ("azure/gpt-35-turbo".into(), MatchRule::Exact)
    );
    assert_eq!(hit("gpt-4o", az), ("azure/gpt-4o".into(), MatchRule::Exact));
    assert_eq!(
        hit("gpt-4o-2024-08-06", az),
        ("azure/gpt-4o-2024-08-06".into(), MatchRule::Exact)
    );
    assert_eq!(
        hit("azure/eu/gpt-4o", oa),
        ("azure/eu/gpt-4o".into(), MatchRule::Exact)
    );
    assert_eq!(
        hit("whisper-1", az),
        ("azure/whisper-1".into(), MatchRule::Exact)
    );
    // Falls back to the OpenAI name when Azure has no entry.
    assert_eq!(hit("gpt-3.5-turbo-0125", az).0, "gpt-3.5-turbo-0125");
    // Longest prefix on a '-' boundary.
    assert_eq!(
        hit("gpt-4o-mini-custom-thing", oa),
        ("gpt-4o-mini".into(), MatchRule::Prefix)
    );
    assert_eq!(
        hit("gpt-4o-custom", oa),
        ("gpt-4o".into(), MatchRule::Prefix)
    );
    assert_eq!(
        hit("gpt-4o-custom", az),
        ("azure/gpt-4o".into(), MatchRule::Prefix)
    );
    assert!(
        t.lookup("o1-whatever", oa).is_none(),
        "prefix shorter than MIN_PREFIX_LEN"
    );
    assert!(
        t.lookup("gpt-4omini", oa).is_none(),
        "prefix must end at '-'"
    );
    // Unknown.
    assert!(t.lookup("llama-3-70b", oa).is_none());
    assert!(t.lookup("", oa).is_none());
    assert!(t.lookup("ft:", oa).is_none());
}

#[test]
fn name_helpers() {
    assert_eq!(undated("gpt-4o-2024-08-06"), Some("gpt-4o"));
    assert_eq!(undated("gpt-4-0613"), Some("gpt-4"));
    assert_eq!(undated("gpt-4o-2024-13-06"), None);
    assert_eq!(undated("text-embedding-3-large-1536"), None);
    assert_eq!(undated("gpt-4o"), None);
    assert_eq!(undated("-0613"), None);
    assert_eq!(fine_tune_base("ft:gpt-4o:org::id"), Some("gpt-4o"));
    assert_eq!(
        fine_tune_base("gpt-35-turbo-0613.ft-abc"),
        Some("gpt-35-turbo-0613")
    );
    assert_eq!(fine_tune_base("gpt-4o"), None);
    assert_eq!(
        azure_spelling("gpt-35-turbo-16k").as_deref(),
        Some("gpt-3.5-turbo-16k")
    );
    assert_eq!(
        azure_spelling("azure/gpt-35-turbo").as_deref(),
        Some("azure/gpt-3.5-turbo")
    );
    assert_eq!(azure_spelling("gpt-4o"), None);
}

#[test]
fn the_crate_doc_example() {
    let cost = PriceTable::builtin().cost(&usage("gpt-4o-2024-08-06", 1000, 500), Provider::Openai);
    assert_eq!(total(&cost).to_string(), "$0.0075");
    assert!(matches!(
        &cost,
        Cost::Priced { model, rule: MatchRule::Exact, tier: ServiceTier::Default, .. }
            if model == "gpt-4o-2024-08-06"
    ));
}

#[test]
fn cached_reasoning_and_tiny_prices() {
    let t = PriceTable::builtin();
    // gpt-4o: 1M prompt of which 400k cached: 600k × 2.5 + 400k × 1.25 = 1.5 + 0.5.
    let mut u = usage("gpt-4o", 1_000_000, 0);
    u.cached_tokens = 400_000;
    assert_eq!(total(&t.cost(&u, Provider::Openai)), Money::from_dollars(2));
    // Cached more than prompt is clamped.
    u.cached_tokens = 5_000_000;
    assert_eq!(total(&t.cost(&u, Provider::Openai)), Money::from_cents(125));
    // No cached price: cached tokens at the input price.
    let mut u = usage("gpt-4o-2024-05-13", 1_000_000, 0);
    u.cached_tokens = 500_000;
    assert_eq!(total(&t.cost(&u, Provider::Openai)), Money::from_dollars(5));
    // Reasoning is inside completion, at the output price when no reasoning price exists.
    let mut u = usage("o1", 0, 1_000_000);
    u.reasoning_tokens = 900_000;
    assert_eq!(
        total(&t.cost(&u, Provider::Openai)),
        Money::from_dollars(60)
    );
    // ... and at the reasoning price when one exists.
    let custom = PriceTable::from_json_str(
        r#"{"models": {"r": {"input": "1", "output": "10", "reasoning": "20"}}}"#,
    )
    .unwrap();
    let mut u = usage("r", 0, 1_000_000);
    u.reasoning_tokens = 250_000;
    assert_eq!(
        total(&custom.cost(&u, Provider::Openai)),
        Money::from_cents(1250)
    );
    // One token of a $0.075/1M model costs 75 nano-dollars.
    let cheap = PriceTable::from_json_str(r#"{"models": {"cheap": {"input": "0.075"}}}"#).unwrap();
    assert_eq!(
        total(&cheap.cost(&usage("cheap", 1, 0), Provider::Openai)),
        Money::from_nanos(75)
    );
    // Embeddings: explicit $0 output is a real $0.
    let emb = t.cost(
        &usage("text-embedding-3-small", 1_000_000, 10),
        Provider::Openai,
    );
    assert_eq!(total(&emb), Money::from_cents(2));
}

#[test]
fn audio_and_non_token_units() {
    let t = PriceTable::builtin();
    // gpt-4o-audio-preview-2024-12-17: text 2.5/10, audio 40/80 per 1M.
    let mut u = usage("gpt-4o-audio-preview-2024-12-17", 1_000_000, 1_000_000);
    u.audio_prompt_tokens = 100_000;
    u.audio_completion_tokens = 500_000;
    // in: 900k × 2.5 + 100k × 40 = 2.25 + 4; out: 500k × 10 + 500k × 80 = 5 + 40.
    assert_eq!(
        total(&t.cost(&u, Provider::Openai)),
        Money::from_cents(5125)
    );
    // A model without audio prices bills audio tokens as text.
    let mut u = usage("gpt-4o", 1_000_000, 0);
    u.audio_prompt_tokens = 1_000_000;
    assert_eq!(total(&t.cost(&u, Provider::Openai)), Money::from_cents(250));
    // whisper-1: $0.0001 / s; 1.5 s = $0.00015; billed once, not per input and output.
    let u = Usage {
        model: Some("whisper-1".into()),
        audio_millis: 1500,
        ..Default::default()
    };
    assert_eq!(
        total(&t.cost(&u, Provider::Openai)),
        Money::from_nanos(150_000)
    );
    // 1 ms of a finer-than-pico per-second price still costs something (rounded up).
    let u = Usage {
        model: Some("gpt-live-1".into()),
        audio_millis: 1,
        ..Default::default()
    };
    assert_eq!(total(&t.cost(&u, Provider::Openai)), Money::from_nanos(834));
    // tts-1: $15 / 1M characters.
    let u = Usage {
        model: Some("tts-1".into()),
        characters: 1000,
        ..Default::default()
    };
    assert_eq!(
        total(&t.cost(&u, Provider::Openai)),
        Money::from_nanos(15_000_000)
    );
    // Per image.
    let img = PriceTable::from_json_str(r#"{"models": {"img": {"per_image": "0.04"}}}"#).unwrap();
    let u = Usage {
        model: Some("img".into()),
        images: 3,
        ..Default::default()
    };
    assert_eq!(
        total(&img.cost(&u, Provider::Openai)),
        Money::from_cents(12)
    );
}

#[test]
fn service_tiers() {
    let t = PriceTable::builtin();
    let mut u = usage("gpt-4o", 1_000_000, 1_000_000);
    u.service_tier = ServiceTier::Priority;
    let c = t.cost(&u, Provider::Openai);
    assert_eq!(total(&c), Money::from_cents(425 + 1700));
    assert!(matches!(
        c,
        Cost::Priced {
            tier: ServiceTier::Priority,
            ..
        }
    ));
    u.service_tier = ServiceTier::Batch;
    u.cached_tokens = 1_000_000; // no batch cached price: the default cached price
    assert_eq!(
        total(&t.cost(&u, Provider::Openai)),
        Money::from_cents(125 + 500)
    );
    // No flex prices for gpt-4o: default prices, reported as the default tier.
    u.service_tier = ServiceTier::Flex;
    u.cached_tokens = 0;
    let c = t.cost(&u, Provider::Openai);
    assert_eq!(total(&c), Money::from_cents(250 + 1000));
    assert!(matches!(
        c,
        Cost::Priced {
            tier: ServiceTier::Default,
            ..
        }
    ));
}

#[test]
fn unpriced_is_never_zero() {
    let t = PriceTable::builtin();
    let oa = Provider::Openai;
    let no_model = t.cost(&Usage::default(), oa);
    assert_eq!(no_model.unpriced_reason(), Some(&UnpricedReason::NoModel));
    assert!(no_model.is_unpriced() && no_model.total().is_none());
    let unknown = t.cost(&usage("llama-3-70b", 10, 10), oa);
    assert_eq!(
        unknown.unpriced_reason(),
        Some(&UnpricedReason::UnknownModel)
    );
    assert_eq!(unknown.model(), Some("llama-3-70b"));
    // Known, but no prices at all: unpriced even for zero usage.
    let sora = t.cost(&usage("sora-2", 0, 0), oa);
    assert_eq!(sora.unpriced_reason(), Some(&UnpricedReason::NoPrices));
    assert_eq!(sora.model(), Some("sora-2"));
    // gpt-image-1 has an input but no output token price.
    let img = t.cost(&usage("gpt-image-1", 10, 4160), oa);
    assert_eq!(
        img.unpriced_reason(),
        Some(&UnpricedReason::MissingPrice {
            unit: PriceUnit::OutputTokens,
            quantity: 4160
        })
    );
    assert!(!t.cost(&usage("gpt-image-1", 10, 0), oa).is_unpriced());
    // whisper has no token price.
    let w = t.cost(&usage("whisper-1", 5, 0), oa);
    assert!(matches!(
        w.unpriced_reason(),
        Some(UnpricedReason::MissingPrice {
            unit: PriceUnit::InputTokens,
            quantity: 5
        })
    ));
    // tts-1 has no per-second price.
    let u = Usage {
        model: Some("tts-1".into()),
        audio_millis: 10,
        ..Default::default()
    };
    assert!(t.cost(&u, oa).is_unpriced());
    let json = serde_json::to_value(&img).unwrap();
    assert_eq!(json["status"], "unpriced");
    assert_eq!(json["reason"]["kind"], "missing_price");
    assert!(img
        .unpriced_reason()
        .unwrap()
        .to_string()
        .contains("output tokens"));
}

#[test]
fn worst_case() {
    let t = PriceTable::builtin();
    let oa = Provider::Openai;
    // gpt-4o: 1000 × 2.5/1M + 2 × 500 × 10/1M = 0.0025 + 0.01
    let c = t.worst_case_cost("gpt-4o", oa, 1000, Some(500), 2);
    assert_eq!(total(&c), Money::from_nanos(12_500_000));
    // The model's max_output_tokens (16 384) when the request gives none; n = 0 counts as 1.
    let c = t.worst_case_cost("gpt-4o", oa, 0, None, 0);
    assert_eq!(total(&c), Money::from_nanos(163_840_000));
    // No max anywhere: the documented fallback.
    let custom = PriceTable::from_json_str(
        r#"{"models": {"m": {"input": "1", "output": "1", "audio_output": "2"}}}"#,
    )
    .unwrap();
    let c = custom.worst_case_cost("m", oa, 0, None, 1);
    // The most expensive output rate (audio, $2/1M).
    assert_eq!(
        total(&c),
        Money::from_picos_ceil(i128::from(DEFAULT_WORST_CASE_OUTPUT_TOKENS) * 2_000_000)
    );
    assert!(t.worst_case_cost("nope", oa, 1, None, 1).is_unpriced());
    assert!(t.worst_case_cost("sora-2", oa, 1, None, 1).is_unpriced());
    assert!(t.worst_case_cost("whisper-1", oa, 1, None, 1).is_unpriced());
    assert!(t
        .worst_case_cost("gpt-image-1", oa, 1, Some(10), 1)
        .is_unpriced());
    // Embeddings: zero output price is fine.
    let c = t.worst_case_cost("text-embedding-3-small", oa, 1_000_000, None, 1);
    assert_eq!(total(&c), Money::from_cents(2));
}

#[test]
fn every_priced_chat_model_costs_something() {
    let t = PriceTable::builtin();
    for (name, p) in t.iter() {
        if p.input.is_some_and(|r| r > Rate::ZERO) {
            let c = t.cost(&usage(name, 1, 0), Provider::Openai);
            assert!(total(&c) > Money::ZERO, "{name}");
            assert_eq!(c.model(), Some(name));
        }
    }
}

proptest! {
    #[test]
    fn cost_is_monotonic_in_completion_tokens(
        idx in 0usize..502,
        prompt in 0u64..10_000_000,
        cached in 0u64..10_000_000,
        reasoning in 0u64..1_000_000,
        audio in 0u64..1_000_000,
        a in 0u64..10_000_000,
        b in 0u64..10_000_000,
    ) {
        let t = PriceTable::builtin();
        let (name, _) = t.iter().nth(idx).unwrap();
        let (lo, hi) = (a.min(b), a.max(b));
        let mut u = usage(name, prompt, lo);
        u.cached_tokens = cached;
        u.reasoning_tokens = reasoning;
        u.audio_completion_tokens = audio;
        let c_lo = t.cost(&u, Provider::Openai);
        u.completion_tokens = hi;
        let c_hi = t.cost(&u, Provider::Openai);
        if let (Some(x), Some(y)) = (c_lo.total(), c_hi.total()) {
            prop_assert!(x <= y, "{name}: {x} > {y}");
        }
        // More output never turns an unpriced cost into a priced one.
        prop_assert!(!c_lo.is_unpriced() || c_hi.is_unpriced() || lo == 0);
    }
}
