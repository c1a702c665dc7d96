//! The price table in force, in dollars as JSON numbers (`GET /pricing`).

use axum::extract::State;
use axum::Json;
use budget_core::pricing::{ModelPrice, TierPrice};
use budget_core::{Provider, Rate};
use serde::Serialize;
use utoipa::ToSchema;

use crate::admin::auth::AdminUser;
use crate::admin::schemas::ProviderSchema;
use crate::state::AppState;

/// Dollars per 1M units, as a JSON number.
fn per_million(rate: Option<Rate>) -> Option<f64> {
    rate.and_then(|r| r.per_million_string().parse::<f64>().ok())
}

/// Dollars per unit, as a JSON number.
fn per_unit(rate: Option<Rate>) -> Option<f64> {
    rate.map(Rate::to_f64_lossy)
}

/// The price table in force (`GET /pricing`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Pricing {
    /// Where the table came from (a file or URL), if known.
    pub source: Option<String>,
    /// A content hash of the prices in force (built-in table and any override): every usage
    /// record names the version that priced it (`price_version`).
    pub version: String,
    /// One entry per model.
    pub models: Vec<PriceView>,
}

/// One model of the price table: token prices in US dollars per 1M tokens, other prices in
/// dollars per unit (second, character, image); absent prices are left out, except the three
/// token prices, which are `null` when absent.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = ModelPrice)]
pub struct PriceView {
    /// The model name.
    pub name: String,
    /// The provider that lists it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<ProviderSchema>)]
    pub provider: Option<Provider>,
    /// The source's mode (`chat`, `embedding`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Uncached input tokens, per 1M.
    #[schema(required = true)]
    pub input: Option<f64>,
    /// Cached input tokens, per 1M.
    #[schema(required = true)]
    pub cached_input: Option<f64>,
    /// Output tokens, per 1M.
    #[schema(required = true)]
    pub output: Option<f64>,
    /// Cache writes, per 1M tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_write: Option<f64>,
    /// Reasoning tokens, per 1M.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<f64>,
    /// Audio input tokens, per 1M.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audio_input: Option<f64>,
    /// Audio output tokens, per 1M.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audio_output: Option<f64>,
    /// Image input tokens, per 1M.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_input: Option<f64>,
    /// Per second of input audio.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_per_second: Option<f64>,
    /// Per second of output audio.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_per_second: Option<f64>,
    /// Per input character.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_per_character: Option<f64>,
    /// Per image produced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_image: Option<f64>,
    /// Batch API prices.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch: Option<TierView>,
    /// `service_tier: "priority"` prices.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<TierView>,
    /// `service_tier: "flex"` prices.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flex: Option<TierView>,
    /// Known but without a price: its usage is recorded as unpriced.
    pub unpriced: bool,
    /// Context window, in tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_input_tokens: Option<u64>,
    /// Largest completion, in tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u64>,
    /// When the provider retires the model (`YYYY-MM-DD`), if announced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deprecation_date: Option<String>,
}

/// Token prices of a service tier, US dollars per 1M tokens (`null` when absent).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = TierPrice)]
pub struct TierView {
    /// Uncached input tokens.
    #[schema(required = true)]
    pub input: Option<f64>,
    /// Cached input tokens.
    #[schema(required = true)]
    pub cached_input: Option<f64>,
    /// Output tokens.
    #[schema(required = true)]
    pub output: Option<f64>,
}

fn tier(t: &Option<TierPrice>) -> Option<TierView> {
    t.as_ref().map(|t| TierView {
        input: per_million(t.input),
        cached_input: per_million(t.cached_input),
        output: per_million(t.output),
    })
}

impl PriceView {
    fn new(name: &str, p: &ModelPrice) -> Self {
        PriceView {
            name: name.to_owned(),
            provider: p.provider,
            mode: p.mode.clone(),
            input: per_million(p.input),
            cached_input: per_million(p.cached_input),
            output: per_million(p.output),
            cache_write: per_million(p.cache_write),
            reasoning: per_million(p.reasoning),
            audio_input: per_million(p.audio_input),
            audio_output: per_million(p.audio_output),
            image_input: per_million(p.image_input),
            input_per_second: per_unit(p.input_per_second),
            output_per_second: per_unit(p.output_per_second),
            input_per_character: per_unit(p.input_per_character),
            per_image: per_unit(p.per_image),
            batch: tier(&p.batch),
            priority: tier(&p.priority),
            flex: tier(&p.flex),
            unpriced: p.unpriced,
            max_input_tokens: p.max_input_tokens,
            max_output_tokens: p.max_output_tokens,
            deprecation_date: p.deprecation_date.clone(),
        }
    }
}

/// `GET /pricing`: the price table in force.
#[utoipa::path(
    get,
    path = "/api/pricing",
    operation_id = "pricing",
    tag = "stats",
    responses((status = 200, description = "The price table in force", body = Pricing))
)]
pub async fn pricing(_admin: AdminUser, State(state): State<AppState>) -> Json<Pricing> {
    Json(Pricing {
        source: state.prices.source().map(str::to_owned),
        version: state.prices.version().to_owned(),
        models: state
            .prices
            .iter()
            .map(|(name, p)| PriceView::new(name, p))
            .collect(),
    })
}
