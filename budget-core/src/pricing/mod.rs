//! OpenAI and Azure OpenAI list prices, shipped as data, with lookup by model name and exact
//! cost computation.
//!
//! The built-in table is `budget-core/data/prices.json` (generated from litellm's MIT-licensed
//! price map by `data/gen_prices.py`, see `data/README.md`), embedded in the binary and parsed
//! once. Operators extend or correct it at run time with a file in the same format
//! ([`PriceTable::load_file`] + [`PriceTable::with_overrides`]).
//!
//! - [`PriceTable::lookup`] maps the model name a response reports (`gpt-4o-2024-08-06`,
//!   `ft:gpt-4o-mini-2024-07-18:acme::abc123`, Azure's `gpt-35-turbo`) to a table entry; the
//!   rules and their order are documented there.
//! - [`PriceTable::cost`] prices a [`Usage`](crate::usage::Usage) exactly: pico-dollars summed
//!   in `i128`, rounded up to the nano-dollar once. An unknown model, a model without prices,
//!   or usage of a unit the model has no price for is [`Cost::Unpriced`], never a silent $0.
//! - [`PriceTable::worst_case_cost`] bounds a request before it is sent, for strict budgets.
//!
//! # Data-file format
//!
//! ```json
//! {
//!   "source": "free text (optional)",
//!   "models": {
//!     "gpt-4o": {
//!       "provider": "openai", "mode": "chat",
//!       "input": "2.5", "cached_input": "1.25", "output": "10",
//!       "batch": {"input": "1.25", "output": "5"},
//!       "priority": {"input": "4.25", "cached_input": "2.125", "output": "17"},
//!       "max_input_tokens": 128000, "max_output_tokens": 16384,
//!       "deprecation_date": "2027-01-14"
//!     },
//!     "whisper-1": {"input_per_second": "0.0001"},
//!     "sora-2": {"unpriced": true}
//!   }
//! }
//! ```
//!
//! Token prices (`input`, `cached_input`, `cache_write`, `output`, `reasoning`, `audio_input`,
//! `audio_output`, `image_input`, and `input` / `cached_input` / `output` inside `batch`,
//! `priority`, `flex`) are **US dollars per 1M tokens**; `input_per_second`,
//! `output_per_second`, `input_per_character` and `per_image` are **US dollars per unit**.
//! Prices are decimal strings (JSON numbers are accepted too), read exactly; a price finer than
//! one pico-dollar per unit is rounded **up** to the next pico-dollar. Every field is optional;
//! unknown fields are an error (a typo must not silently drop a price). Model names are
//! case-insensitive and stored in lower case. Top-level keys other than `models` are metadata
//! and may be absent.
//!
//! ```
//! use budget_core::pricing::PriceTable;
//! use budget_core::usage::Usage;
//! use budget_core::Provider;
//!
//! let table = PriceTable::builtin();
//! let usage = Usage {
//!     model: Some("gpt-4o-2024-08-06".into()),
//!     prompt_tokens: 1000,
//!     completion_tokens: 500,
//!     ..Default::default()
//! };
//! // $2.50 / 1M input, $10 / 1M output
//! assert_eq!(table.cost(&usage, Provider::Openai).total().unwrap().to_string(), "$0.0075");
//!
//! let operator = PriceTable::from_json_str(r#"{"models": {"my-model": {"input": "1", "output": "2"}}}"#)
//!     .unwrap();
//! let table = table.with_overrides(operator);
//! assert!(table.lookup("my-model", Provider::Openai).is_some());
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};

use crate::limiter::Provider;
use crate::money::Rate;
use crate::usage::ServiceTier;

mod cost;
mod lookup;
mod rates;
#[cfg(test)]
mod tests;

pub use cost::{Cost, PriceUnit, UnpricedReason, DEFAULT_WORST_CASE_OUTPUT_TOKENS};
pub use lookup::{MatchRule, PriceMatch, MIN_PREFIX_LEN};

/// The built-in price data, in the format described in the [module docs](self).
pub const BUILTIN_PRICES_JSON: &str = include_str!("../../data/prices.json");

/// Tier-specific token prices (Batch API, `service_tier: "priority"` / `"flex"`), in US dollars
/// per 1M tokens in the data file. A missing field falls back as described on
/// [`PriceTable::cost`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierPrice {
    /// Uncached input tokens.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "rates::per_million"
    )]
    pub input: Option<Rate>,
    /// Cached input tokens.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "rates::per_million"
    )]
    pub cached_input: Option<Rate>,
    /// Output tokens.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "rates::per_million"
    )]
    pub output: Option<Rate>,
}

impl TierPrice {
    /// True when at least one price is set.
    pub fn has_prices(&self) -> bool {
        self.input.is_some() || self.cached_input.is_some() || self.output.is_some()
    }
}

/// The prices and limits of one model. Every [`Rate`] is per unit (token, second, character,
/// image) in memory; in the data file token prices are written per 1M tokens.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelPrice {
    /// Whose name this is (`openai`, or `azure` for `azure/...` keys). Informational.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<Provider>,
    /// Which API the model serves (`chat`, `embedding`, `audio_transcription`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Uncached input (prompt) tokens.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "rates::per_million"
    )]
    pub input: Option<Rate>,
    /// Cached input tokens (prompt-cache reads).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "rates::per_million"
    )]
    pub cached_input: Option<Rate>,
    /// Prompt-cache writes. Kept for reference; [`Usage`](crate::usage::Usage) has no
    /// cache-write count, so [`PriceTable::cost`] does not use it.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "rates::per_million"
    )]
    pub cache_write: Option<Rate>,
    /// Output (completion) tokens.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "rates::per_million"
    )]
    pub output: Option<Rate>,
    /// Reasoning tokens, when priced differently from other output tokens.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "rates::per_million"
    )]
    pub reasoning: Option<Rate>,
    /// Audio input tokens.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "rates::per_million"
    )]
    pub audio_input: Option<Rate>,
    /// Audio output tokens.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "rates::per_million"
    )]
    pub audio_output: Option<Rate>,
    /// Image input tokens, when priced differently from text input tokens.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "rates::per_million"
    )]
    pub image_input: Option<Rate>,
    /// Per second of input audio (whisper).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "rates::per_unit"
    )]
    pub input_per_second: Option<Rate>,
    /// Per second of output audio (tts).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "rates::per_unit"
    )]
    pub output_per_second: Option<Rate>,
    /// Per input character (tts).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "rates::per_unit"
    )]
    pub input_per_character: Option<Rate>,
    /// Per image produced.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "rates::per_unit"
    )]
    pub per_image: Option<Rate>,
    /// Batch API prices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<TierPrice>,
    /// `service_tier: "priority"` prices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<TierPrice>,
    /// `service_tier: "flex"` prices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flex: Option<TierPrice>,
    /// The model is known but has no price (the source lists none): every cost is
    /// [`Cost::Unpriced`]. Must not be combined with prices.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unpriced: bool,
    /// Context window, in tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_input_tokens: Option<u64>,
    /// Largest completion, in tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u64>,
    /// When the provider retires the model (`YYYY-MM-DD`), if announced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deprecation_date: Option<String>,
}

impl ModelPrice {
    /// True when any price (default or tier) is set and the entry is not marked `unpriced`.
    pub fn has_prices(&self) -> bool {
        !self.unpriced
            && ([
                self.input,
                self.cached_input,
                self.cache_write,
                self.output,
                self.reasoning,
                self.audio_input,
                self.audio_output,
                self.image_input,
                self.input_per_second,
                self.output_per_second,
                self.input_per_character,
                self.per_image,
            ]
            .iter()
            .any(Option::is_some)
                || [&self.batch, &self.priority, &self.flex]
                    .iter()
                    .any(|t| t.as_ref().is_some_and(TierPrice::has_prices)))
    }

    /// The tier-specific prices for `tier`, if the model has any (`None` for
    /// [`ServiceTier::Default`]).
    pub fn tier(&self, tier: ServiceTier) -> Option<&TierPrice> {
        match tier {
            ServiceTier::Default => None,
            ServiceTier::Batch => self.batch.as_ref(),
            ServiceTier::Priority => self.priority.as_ref(),
            ServiceTier::Flex => self.flex.as_ref(),
        }
        .filter(|t| t.has_prices())
    }
}

/// Why a price table could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PricingError {
    /// The file could not be read.
    #[error("cannot read price file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Not JSON, or no `models` object.
    #[error("price data {origin} is not a valid price file: {source}")]
    Json {
        /// The file path, or `<string>`.
        origin: String,
        /// The parse error.
        source: serde_json::Error,
    },
    /// One model entry is invalid.
    #[error("price data {origin}: model `{model}`{}: {message}",
        field.as_ref().map(|f| format!(", field `{f}`")).unwrap_or_default())]
    InvalidModel {
        /// The file path, or `<string>`.
        origin: String,
        /// The model name as written.
        model: String,
        /// The offending field, when known.
        field: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// Two model names differ only in case.
    #[error("price data {origin}: model `{model}` appears twice (names are case-insensitive)")]
    DuplicateModel {
        /// The file path, or `<string>`.
        origin: String,
        /// The model name as written.
        model: String,
    },
}

#[derive(Debug, Clone, Default)]
struct TableData {
    source: Option<String>,
    models: BTreeMap<String, ModelPrice>,
    /// [`PriceTable::version`], computed on first use.
    version: OnceLock<String>,
}

/// A table of model prices: the built-in list prices, possibly extended or corrected by an
/// operator's file. Cheap to clone (the entries are shared).
#[derive(Clone)]
pub struct PriceTable {
    data: Arc<TableData>,
}

impl fmt::Debug for PriceTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PriceTable")
            .field("models", &self.data.models.len())
            .field("source", &self.data.source)
            .finish()
    }
}

impl Default for PriceTable {
    /// The built-in table.
    fn default() -> Self {
        PriceTable::builtin()
    }
}

#[derive(Deserialize)]
struct RawFile {
    #[serde(default)]
    source: Option<String>,
    models: BTreeMap<String, serde_json::Value>,
}

#[derive(Serialize)]
struct OutFile<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<&'a str>,
    models: &'a BTreeMap<String, ModelPrice>,
}

impl PriceTable {
    /// The built-in OpenAI and Azure OpenAI list prices (`data/prices.json`), parsed on first
    /// use and shared by every clone.
    pub fn builtin() -> PriceTable {
        static BUILTIN: OnceLock<Arc<TableData>> = OnceLock::new();
        let data = BUILTIN.get_or_init(|| match parse(BUILTIN_PRICES_JSON, "data/prices.json") {
            Ok(data) => Arc::new(data),
            // Covered by the unit tests: the embedded file always parses.
            Err(e) => panic!("built-in price table is invalid: {e}"),
        });
        PriceTable { data: data.clone() }
    }

    /// A table with no entries (every model unknown).
    pub fn empty() -> PriceTable {
        PriceTable {
            data: Arc::new(TableData::default()),
        }
    }

    /// Parse a table in the data-file format (see the [module docs](self)).
    pub fn from_json_str(json: &str) -> Result<PriceTable, PricingError> {
        parse(json, "<string>").map(|data| PriceTable {
            data: Arc::new(data),
        })
    }

    /// Read a table in the data-file format from a file.
    pub fn load_file(path: impl AsRef<Path>) -> Result<PriceTable, PricingError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| PricingError::Io {
            path: path.to_owned(),
            source,
        })?;
        parse(&text, &path.display().to_string()).map(|data| PriceTable {
            data: Arc::new(data),
        })
    }

    /// This table with the entries of `other` added: an entry of `other` replaces the entry of
    /// the same (case-insensitive) name as a whole (fields are not merged), new names extend
    /// the table. The `source` note stays this table's.
    pub fn with_overrides(self, other: PriceTable) -> PriceTable {
        let mut data = Arc::unwrap_or_clone(self.data);
        let other = Arc::unwrap_or_clone(other.data);
        data.models.extend(other.models);
        data.version = OnceLock::new();
        PriceTable {
            data: Arc::new(data),
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.data.models.len()
    }

    /// True when the table has no entries.
    pub fn is_empty(&self) -> bool {
        self.data.models.is_empty()
    }

    /// The `source` note of the data (provenance and licence), if any.
    pub fn source(&self) -> Option<&str> {
        self.data.source.as_deref()
    }

    /// Every entry as `(name, price)`, sorted by name (names are lower case).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &ModelPrice)> + '_ {
        self.data.models.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The entry named exactly `name` (case-insensitive), without any fallback.
    pub fn get_exact(&self, name: &str) -> Option<&ModelPrice> {
        self.get_entry(&name.trim().to_ascii_lowercase())
            .map(|(_, p)| p)
    }

    /// The table in the data-file format (pretty JSON); reads back with
    /// [`PriceTable::from_json_str`] to an equal table.
    pub fn to_json_string(&self) -> String {
        let out = OutFile {
            source: self.data.source.as_deref(),
            models: &self.data.models,
        };
        // Serializing plain structs and string-keyed maps cannot fail.
        serde_json::to_string_pretty(&out).unwrap_or_default()
    }

    /// A content hash of the prices in force (`sha256:` and 16 hex digits of the SHA-256 of the
    /// entries in data-file form): what a usage record names so a charge can be audited
    /// against the exact table that priced it. Equal tables have equal versions; any change of
    /// a price, a built-in update or an override in force changes it.
    pub fn version(&self) -> &str {
        self.data.version.get_or_init(|| {
            use sha2::{Digest, Sha256};
            let out = OutFile {
                source: None,
                models: &self.data.models,
            };
            let digest = Sha256::digest(serde_json::to_vec(&out).unwrap_or_default());
            let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
            format!("sha256:{hex}")
        })
    }

    /// Entry by an already lower-cased name.
    fn get_entry(&self, lower: &str) -> Option<(&str, &ModelPrice)> {
        self.data
            .models
            .get_key_value(lower)
            .map(|(k, v)| (k.as_str(), v))
    }
}

fn parse(json: &str, origin: &str) -> Result<TableData, PricingError> {
    let raw: RawFile = serde_json::from_str(json).map_err(|source| PricingError::Json {
        origin: origin.to_owned(),
        source,
    })?;
    let mut models = BTreeMap::new();
    for (name, value) in raw.models {
        let invalid = |field: Option<String>, message: String| PricingError::InvalidModel {
            origin: origin.to_owned(),
            model: name.clone(),
            field,
            message,
        };
        let key = name.trim().to_ascii_lowercase();
        if key.is_empty() {
            return Err(invalid(None, "empty model name".into()));
        }
        let price = match ModelPrice::deserialize(&value) {
            Ok(p) => p,
            Err(e) => return Err(invalid(offending_field(&value), e.to_string())),
        };
        if price.unpriced && price.has_prices_ignoring_flag() {
            return Err(invalid(
                Some("unpriced".into()),
                "`unpriced: true` together with prices; remove one".into(),
            ));
        }
        if models.insert(key, price).is_some() {
            return Err(PricingError::DuplicateModel {
                origin: origin.to_owned(),
                model: name,
            });
        }
    }
    Ok(TableData {
        source: raw.source,
        models,
        version: OnceLock::new(),
    })
}

impl ModelPrice {
    fn has_prices_ignoring_flag(&self) -> bool {
        ModelPrice {
            unpriced: false,
            ..self.clone()
        }
        .has_prices()
    }
}

/// The first field of a model object that fails to deserialize on its own.
fn offending_field(value: &serde_json::Value) -> Option<String> {
    let obj = value.as_object()?;
    obj.iter()
        .find(|(k, v)| {
            let single =
                serde_json::Value::Object([((*k).clone(), (*v).clone())].into_iter().collect());
            ModelPrice::deserialize(&single).is_err()
        })
        .map(|(k, _)| k.clone())
}
