//! Exact cost of a [`Usage`], and the worst case of a request before it is sent.

use std::fmt;

use serde::Serialize;

use super::{MatchRule, ModelPrice, PriceTable};
use crate::limiter::Provider;
use crate::money::{Money, Rate};
use crate::usage::{ServiceTier, Usage};

/// Output tokens assumed per choice by [`PriceTable::worst_case_cost`] when neither the request
/// nor the table gives a maximum.
pub const DEFAULT_WORST_CASE_OUTPUT_TOKENS: u64 = 16_384;

/// The unit a model lacked a price for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PriceUnit {
    /// Input (prompt) tokens, including cached, audio and image input tokens.
    InputTokens,
    /// Output (completion) tokens, including reasoning and audio output tokens.
    OutputTokens,
    /// Audio duration (milliseconds are counted; prices are per second).
    AudioMillis,
    /// Input characters.
    Characters,
    /// Images produced.
    Images,
}

impl fmt::Display for PriceUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PriceUnit::InputTokens => "input tokens",
            PriceUnit::OutputTokens => "output tokens",
            PriceUnit::AudioMillis => "audio milliseconds",
            PriceUnit::Characters => "characters",
            PriceUnit::Images => "images",
        })
    }
}

/// Why a cost could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum UnpricedReason {
    /// The usage names no model.
    NoModel,
    /// No table entry matches the model name.
    UnknownModel,
    /// The entry has no prices at all (or is marked `unpriced`).
    NoPrices,
    /// The usage has `quantity` units of a kind the entry has no price for.
    MissingPrice {
        /// The unpriced unit.
        unit: PriceUnit,
        /// How many of them the usage has.
        quantity: u64,
    },
}

impl fmt::Display for UnpricedReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnpricedReason::NoModel => f.write_str("the usage names no model"),
            UnpricedReason::UnknownModel => f.write_str("the model is not in the price table"),
            UnpricedReason::NoPrices => f.write_str("the price table has no price for the model"),
            UnpricedReason::MissingPrice { unit, quantity } => {
                write!(f, "the model has no price for {unit} ({quantity} used)")
            }
        }
    }
}

/// The cost of a usage (or a worst case), or why there is none.
///
/// There is no partial result: usage that is only partly priceable is `Unpriced` with
/// [`UnpricedReason::MissingPrice`], so an unpriced unit never silently counts as $0. Explicit
/// zero prices in the table (embedding output) are a real $0.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Cost {
    /// Every unit was priced.
    Priced {
        /// The cost, rounded up to the nano-dollar.
        total: Money,
        /// The table key that priced it.
        model: String,
        /// How the key was found.
        rule: MatchRule,
        /// The tier whose prices applied: the usage's tier when the model has prices for it,
        /// else [`ServiceTier::Default`].
        tier: ServiceTier,
    },
    /// The cost is unknown.
    Unpriced {
        /// The table key when one matched, else the model name as given (`None` without one).
        model: Option<String>,
        /// Why.
        reason: UnpricedReason,
    },
}

impl Cost {
    /// The total when priced.
    pub fn total(&self) -> Option<Money> {
        match self {
            Cost::Priced { total, .. } => Some(*total),
            Cost::Unpriced { .. } => None,
        }
    }

    /// True when no total could be computed.
    pub fn is_unpriced(&self) -> bool {
        matches!(self, Cost::Unpriced { .. })
    }

    /// The matched table key (priced), or the best-known model name (unpriced).
    pub fn model(&self) -> Option<&str> {
        match self {
            Cost::Priced { model, .. } => Some(model),
            Cost::Unpriced { model, .. } => model.as_deref(),
        }
    }

    /// Why the cost is unknown, when it is.
    pub fn unpriced_reason(&self) -> Option<&UnpricedReason> {
        match self {
            Cost::Priced { .. } => None,
            Cost::Unpriced { reason, .. } => Some(reason),
        }
    }
}

/// Pico-dollars for `units` at `rate`, or the missing-price reason (no rate needed for 0 units).
fn charge(rate: Option<Rate>, units: u64, unit: PriceUnit) -> Result<i128, UnpricedReason> {
    if units == 0 {
        return Ok(0);
    }
    rate.map(|r| r.picos_for(units))
        .ok_or(UnpricedReason::MissingPrice {
            unit,
            quantity: units,
        })
}

/// Pico-dollars for `millis` milliseconds at a per-second `rate`, rounded up.
fn charge_millis(rate: Option<Rate>, millis: u64) -> Result<i128, UnpricedReason> {
    let picos = charge(rate, millis, PriceUnit::AudioMillis)?;
    Ok(picos / 1000 + i128::from(picos % 1000 != 0))
}

/// The exact cost of `usage` at `price`, in pico-dollars, and the tier applied.
fn price_usage(price: &ModelPrice, usage: &Usage) -> Result<(i128, ServiceTier), UnpricedReason> {
    if !price.has_prices() {
        return Err(UnpricedReason::NoPrices);
    }
    let tier = price.tier(usage.service_tier);
    let applied = if tier.is_some() {
        usage.service_tier
    } else {
        ServiceTier::Default
    };
    let input = tier.and_then(|t| t.input).or(price.input);
    let cached_rate = tier
        .and_then(|t| t.cached_input)
        .or(price.cached_input)
        .or(input);
    let output = tier.and_then(|t| t.output).or(price.output);

    // Input: cached ⊆ prompt; audio and image input are parts of the uncached rest, billed at
    // their own rates when the model has them, else as text.
    let prompt = usage.prompt_tokens;
    let cached = usage.cached_tokens.min(prompt);
    let mut text_in = prompt - cached;
    let mut picos = charge(cached_rate, cached, PriceUnit::InputTokens)?;
    if price.audio_input.is_some() {
        let audio = usage.audio_prompt_tokens.min(text_in);
        picos += charge(price.audio_input, audio, PriceUnit::InputTokens)?;
        text_in -= audio;
    }
    if price.image_input.is_some() {
        let image = usage.image_prompt_tokens.min(text_in);
        picos += charge(price.image_input, image, PriceUnit::InputTokens)?;
        text_in -= image;
    }
    picos += charge(input, text_in, PriceUnit::InputTokens)?;

    // Output: reasoning and audio output are parts of completion.
    let mut text_out = usage.completion_tokens;
    if price.reasoning.is_some() {
        let reasoning = usage.reasoning_tokens.min(text_out);
        picos += charge(price.reasoning, reasoning, PriceUnit::OutputTokens)?;
        text_out -= reasoning;
    }
    if price.audio_output.is_some() {
        let audio = usage.audio_completion_tokens.min(text_out);
        picos += charge(price.audio_output, audio, PriceUnit::OutputTokens)?;
        text_out -= audio;
    }
    picos += charge(output, text_out, PriceUnit::OutputTokens)?;

    // Non-token units.
    picos += charge_millis(
        price.input_per_second.or(price.output_per_second),
        usage.audio_millis,
    )?;
    picos += charge(
        price.input_per_character,
        usage.characters,
        PriceUnit::Characters,
    )?;
    picos += charge(price.per_image, usage.images, PriceUnit::Images)?;
    Ok((picos, applied))
}

impl PriceTable {
    /// The cost of `usage`, served by `provider` (which only affects [lookup](Self::lookup)).
    ///
    /// Pico-dollars are summed exactly in `i128` and rounded up to the nano-dollar once:
    ///
    /// - input: `cached_tokens` at the cached-input price (else the input price);
    ///   `audio_prompt_tokens` / `image_prompt_tokens` at the audio / image input price when
    ///   the model has one (otherwise they stay text input); the rest of `prompt_tokens` at the
    ///   input price. Subsets are clamped to what is left of `prompt_tokens`.
    /// - output: `reasoning_tokens` at the reasoning price when the model has one, and
    ///   `audio_completion_tokens` at the audio output price when it has one; the rest of
    ///   `completion_tokens` at the output price.
    /// - `audio_millis` at the per-second input price (else the per-second output price, for
    ///   speech models billed by output duration), `rate × millis / 1000`, rounded up;
    ///   `characters` at the per-character price; `images` at the per-image price.
    /// - service tier: for `Batch` / `Priority` / `Flex`, when the model has prices for that
    ///   tier, the tier's `input` / `cached_input` / `output` replace the default ones; a price
    ///   the tier lacks falls back to the default price (cached input: tier cached → default
    ///   cached → the effective input price). Audio, reasoning, image and non-token prices are
    ///   not tiered.
    ///
    /// [`Cost::Unpriced`] when the usage names no model, no entry matches, the entry has no
    /// prices, or any nonzero unit has no price (no partial totals). `estimated` usage is
    /// priced like any other.
    pub fn cost(&self, usage: &Usage, provider: Provider) -> Cost {
        let Some(model) = usage.model.as_deref() else {
            return Cost::Unpriced {
                model: None,
                reason: UnpricedReason::NoModel,
            };
        };
        let Some(m) = self.lookup(model, provider) else {
            return Cost::Unpriced {
                model: Some(model.to_owned()),
                reason: UnpricedReason::UnknownModel,
            };
        };
        match price_usage(m.price, usage) {
            Ok((picos, tier)) => Cost::Priced {
                total: Money::from_picos_ceil(picos),
                model: m.name.to_owned(),
                rule: m.rule,
                tier,
            },
            Err(reason) => Cost::Unpriced {
                model: Some(m.name.to_owned()),
                reason,
            },
        }
    }

    /// An upper bound on the cost of a request, for strict budgets, at the default tier:
    ///
    /// `prompt_tokens` × the input price (no cache discount) + `max(n, 1)` × the output limit ×
    /// the most expensive output price of the model (output, reasoning, audio output). The
    /// output limit is `max_output_tokens` (the request's `max_tokens` /
    /// `max_completion_tokens` / `max_output_tokens`), else the model's `max_output_tokens`,
    /// else [`DEFAULT_WORST_CASE_OUTPUT_TOKENS`].
    ///
    /// Priority and flex prices are not considered (the tier is only known from the response);
    /// neither are audio input, per-second, per-character or per-image prices: a model with no
    /// input token price (whisper, tts) is [`Cost::Unpriced`] with
    /// [`UnpricedReason::MissingPrice`], as is an unknown model.
    pub fn worst_case_cost(
        &self,
        model: &str,
        provider: Provider,
        prompt_tokens: u64,
        max_output_tokens: Option<u64>,
        n: u64,
    ) -> Cost {
        let Some(m) = self.lookup(model, provider) else {
            return Cost::Unpriced {
                model: Some(model.to_owned()),
                reason: UnpricedReason::UnknownModel,
            };
        };
        let unpriced = |reason| Cost::Unpriced {
            model: Some(m.name.to_owned()),
            reason,
        };
        let p = m.price;
        if !p.has_prices() {
            return unpriced(UnpricedReason::NoPrices);
        }
        let limit = max_output_tokens
            .or(p.max_output_tokens)
            .unwrap_or(DEFAULT_WORST_CASE_OUTPUT_TOKENS);
        let out_tokens = limit.saturating_mul(n.max(1));
        let out_rate = [p.output, p.reasoning, p.audio_output]
            .into_iter()
            .flatten()
            .max();
        let picos = charge(p.input, prompt_tokens, PriceUnit::InputTokens)
            .and_then(|i| Ok(i + charge(out_rate, out_tokens, PriceUnit::OutputTokens)?));
        match picos {
            Ok(picos) => Cost::Priced {
                total: Money::from_picos_ceil(picos),
                model: m.name.to_owned(),
                rule: m.rule,
                tier: ServiceTier::Default,
            },
            Err(reason) => unpriced(reason),
        }
    }
}
