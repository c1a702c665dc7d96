//! Model-name lookup: from the name a response reports to a price-table entry.

use serde::Serialize;

use super::{ModelPrice, PriceTable};
use crate::limiter::Provider;

/// The shortest table key the prefix rule ([`MatchRule::Prefix`]) may match, in bytes.
pub const MIN_PREFIX_LEN: usize = 4;

/// Which rule of [`PriceTable::lookup`] found the entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchRule {
    /// The name itself (case-insensitive; for Azure possibly as `azure/<name>`).
    Exact,
    /// The name without its trailing date (`-2024-08-06`, or `-0613`).
    Undated,
    /// A fine-tune priced by the table's fine-tune entry (`ft:<base>`).
    FineTune,
    /// A fine-tune priced as its base model (the table has no `ft:<base>` entry).
    FineTuneBase,
    /// Azure's spelling translated (`gpt-35-turbo` → `gpt-3.5-turbo`).
    AzureSpelling,
    /// The longest table key that is a prefix of the name ending at a `-`.
    Prefix,
}

/// A successful [`PriceTable::lookup`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PriceMatch<'a> {
    /// The table key that matched (lower case; may be `azure/...`).
    pub name: &'a str,
    /// Its prices.
    pub price: &'a ModelPrice,
    /// The rule that found it.
    pub rule: MatchRule,
}

impl PriceTable {
    /// The entry that prices `model`, or `None` when no rule finds one.
    ///
    /// The name is trimmed and compared case-insensitively. Rules, first match wins:
    ///
    /// 1. [`Exact`](MatchRule::Exact): the name itself. A dated name whose snapshot has its own
    ///    entry (`gpt-4o-2024-05-13`) gets that price.
    /// 2. [`Undated`](MatchRule::Undated): the name without a trailing `-YYYY-MM-DD`, or
    ///    without a trailing `-MMDD` (`gpt-4-0613`, `gpt-3.5-turbo-0125`) when `MM` is a month
    ///    (01–12) and `DD` a day (01–31). (Four trailing digits that are no date, like
    ///    `-1536`, are left alone; the prefix rule may still apply.)
    /// 3. Fine-tunes: `ft:<base>:<org>:<suffix>:<id>` (OpenAI) or `<base>.ft-<id>` (Azure).
    ///    First [`FineTune`](MatchRule::FineTune): the key `ft:<base>`, then
    ///    `ft:<undated base>` (fine-tuned models often have their own, higher prices); then
    ///    [`FineTuneBase`](MatchRule::FineTuneBase): `<base>`, then `<undated base>`.
    /// 4. [`AzureSpelling`](MatchRule::AzureSpelling): Azure's `gpt-35-…` as `gpt-3.5-…`
    ///    (applied to the fine-tune base when there is one), then without its date.
    /// 5. [`Prefix`](MatchRule::Prefix): the longest key that the (fine-tune base, spelled)
    ///    name starts with, followed by a `-` (`gpt-4o-mini-custom` → `gpt-4o-mini`), and at
    ///    least [`MIN_PREFIX_LEN`] bytes long (so `o1-foo` does **not** match `o1`).
    ///
    /// With [`Provider::Azure`], every candidate name is first tried as `azure/<name>` (Azure's
    /// global-standard price), then as `<name>`. Regional keys (`azure/eu/...`) are matched only
    /// when asked for by their full name. With [`Provider::Openai`] `azure/` keys are matched
    /// only when the name itself starts with `azure/`.
    pub fn lookup(&self, model: &str, provider: Provider) -> Option<PriceMatch<'_>> {
        // Candidates are tried in order as they are made: the usual name (lower case, priced
        // by rule 1 or 2) allocates nothing.
        let trimmed = model.trim();
        let name: std::borrow::Cow<'_, str> = if trimmed.bytes().any(|b| b.is_ascii_uppercase()) {
            trimmed.to_ascii_lowercase().into()
        } else {
            trimmed.into()
        };
        let name = &*name;
        if name.is_empty() {
            return None;
        }
        let find = |key: &str, rule| self.find(key, provider, rule);
        let undated_of = |n: &str, rule| undated(n).and_then(|u| find(u, rule));
        if let Some(m) =
            find(name, MatchRule::Exact).or_else(|| undated_of(name, MatchRule::Undated))
        {
            return Some(m);
        }
        let base = fine_tune_base(name);
        if let Some(base) = base {
            let found = find(&format!("ft:{base}"), MatchRule::FineTune)
                .or_else(|| {
                    undated(base).and_then(|u| find(&format!("ft:{u}"), MatchRule::FineTune))
                })
                .or_else(|| find(base, MatchRule::FineTuneBase))
                .or_else(|| undated_of(base, MatchRule::FineTuneBase));
            if found.is_some() {
                return found;
            }
        }
        let root = base.unwrap_or(name);
        let spelled = azure_spelling(root);
        if let Some(s) = &spelled {
            let found = find(s, MatchRule::AzureSpelling)
                .or_else(|| undated_of(s, MatchRule::AzureSpelling));
            if found.is_some() {
                return found;
            }
        }
        let stem = spelled.as_deref().unwrap_or(root);
        stem.char_indices()
            .rev()
            .filter(|&(i, c)| c == '-' && i >= MIN_PREFIX_LEN)
            .find_map(|(i, _)| self.find(&stem[..i], provider, MatchRule::Prefix))
    }

    /// `azure/<key>` first for Azure, then `<key>`.
    fn find(&self, key: &str, provider: Provider, rule: MatchRule) -> Option<PriceMatch<'_>> {
        let azure = (provider == Provider::Azure && !key.starts_with("azure/"))
            .then(|| self.get_entry(&format!("azure/{key}")))
            .flatten();
        azure
            .or_else(|| self.get_entry(key))
            .map(|(name, price)| PriceMatch { name, price, rule })
    }
}

/// `name` without a trailing `-YYYY-MM-DD` or `-MMDD` date.
pub(crate) fn undated(name: &str) -> Option<&str> {
    let b = name.as_bytes();
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    let num = |s: &[u8]| s.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
    let valid = |m: &[u8], d: &[u8]| (1..=12).contains(&num(m)) && (1..=31).contains(&num(d));
    let n = b.len();
    if n > 11
        && b[n - 11] == b'-'
        && b[n - 6] == b'-'
        && b[n - 3] == b'-'
        && digits(&b[n - 10..n - 6])
        && digits(&b[n - 5..n - 3])
        && digits(&b[n - 2..])
        && valid(&b[n - 5..n - 3], &b[n - 2..])
    {
        return Some(&name[..n - 11]);
    }
    if n > 5 && b[n - 5] == b'-' && digits(&b[n - 4..]) && valid(&b[n - 4..n - 2], &b[n - 2..]) {
        return Some(&name[..n - 5]);
    }
    None
}

/// The base model of a fine-tune: `ft:<base>:...` or Azure's `<base>.ft-<id>`.
pub(crate) fn fine_tune_base(name: &str) -> Option<&str> {
    if let Some(rest) = name.strip_prefix("ft:") {
        let base = rest.split(':').next().unwrap_or("");
        return (!base.is_empty()).then_some(base);
    }
    let (base, _) = name.split_once(".ft-")?;
    (!base.is_empty()).then_some(base)
}

/// Azure's model spelling in OpenAI's: `gpt-35-turbo…` → `gpt-3.5-turbo…`.
pub(crate) fn azure_spelling(name: &str) -> Option<String> {
    let (prefix, rest) = match name.strip_prefix("azure/") {
        Some(rest) => ("azure/", rest),
        None => ("", name),
    };
    rest.strip_prefix("gpt-35")
        .map(|tail| format!("{prefix}gpt-3.5{tail}"))
}
