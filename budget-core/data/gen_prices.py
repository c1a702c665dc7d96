#!/usr/bin/env python3
"""Generate budget-core/data/prices.json from the litellm-derived price map in data/source/.

Usage (from the repository root):

    python3 budget-core/data/gen_prices.py [SOURCE_JSON] [OUTPUT_JSON]

SOURCE_JSON defaults to budget-core/data/source/openai-prices.json (a copy of the upstream
price data, kept with its licence), OUTPUT_JSON to budget-core/data/prices.json next to this script. Standard library only.

Prices are converted from the source's binary floats (US dollars per unit) to exact decimal
strings through the float's shortest repr, using `decimal`, never float arithmetic:
token prices become dollars per 1M tokens, per-second / per-character / per-image prices stay
dollars per unit. A value finer than a whole pico-dollar per unit is kept exact here (and noted
on stderr); budget-core rounds it up to the next pico-dollar when it loads the table.
"""

import hashlib
import json
import os
import sys
from decimal import Decimal, localcontext

SCRIPT_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(SCRIPT_DIR))
DEFAULT_SOURCE = os.path.join(SCRIPT_DIR, "source", "openai-prices.json")
DEFAULT_OUTPUT = os.path.join(SCRIPT_DIR, "prices.json")

SOURCE_NOTE = (
    "OpenAI and Azure OpenAI list prices from the model price map shipped in litellm 1.110.2 "
    "(litellm/model_prices_and_context_window_backup.json), MIT licence: see "
    "LICENSE-litellm-prices"
)

UNITS = {
    "tokens": "USD per 1M tokens: input, cached_input, cache_write, output, reasoning, "
    "audio_input, audio_output, image_input (and the same names inside batch/priority/flex)",
    "per_second": "USD per second of audio: input_per_second, output_per_second",
    "per_character": "USD per input character: input_per_character",
    "per_image": "USD per image: per_image",
}

# Our field -> (source field, scale). Scale 1_000_000 turns $/token into $/1M tokens.
PER_M = 1_000_000
BASE_FIELDS = [
    ("input", "input_cost_per_token", PER_M),
    ("cached_input", "cache_read_input_token_cost", PER_M),
    ("cache_write", "cache_creation_input_token_cost", PER_M),
    ("output", "output_cost_per_token", PER_M),
    ("reasoning", "output_cost_per_reasoning_token", PER_M),
    ("audio_input", "input_cost_per_audio_token", PER_M),
    ("audio_output", "output_cost_per_audio_token", PER_M),
    ("image_input", "input_cost_per_image_token", PER_M),
    ("input_per_second", "input_cost_per_second", 1),
    ("output_per_second", "output_cost_per_second", 1),
    ("input_per_character", "input_cost_per_character", 1),
    ("per_image", "output_cost_per_image", 1),
]
# Source fields whose absence from BASE_FIELDS/TIER_FIELDS would silently drop a price.
ALIASES = {"input_cost_per_image": "per_image"}
TIERS = {"batch": "_batches", "priority": "_priority", "flex": "_flex"}
TIER_FIELDS = [
    ("input", "input_cost_per_token", PER_M),
    ("cached_input", "cache_read_input_token_cost", PER_M),
    ("output", "output_cost_per_token", PER_M),
]
META_FIELDS = {"max_input_tokens", "max_output_tokens", "mode", "deprecation_date"}


def exact_decimal(model, field, value, scale):
    """The float `value` (dollars per unit) times `scale`, as an exact decimal string."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        sys.exit(f"{model}: field {field} is not a number: {value!r}")
    if value < 0:
        sys.exit(f"{model}: field {field} is negative: {value!r}")
    with localcontext() as ctx:
        ctx.prec = 60
        d = Decimal(repr(value))  # the shortest decimal that reads back to the float
        picos = d * Decimal(10) ** 12
        if picos != picos.to_integral_value():
            # Kept exact here; budget-core rounds it up to the next pico-dollar per unit.
            print(f"note: {model}: {field} = {value!r} is finer than a pico-dollar per unit "
                  "(budget-core rounds it up)", file=sys.stderr)
        scaled = (d * scale).normalize()
    text = format(scaled, "f")
    return "0" if scaled == 0 else text


def convert(name, entry):
    out = {"provider": "azure" if name.startswith("azure/") else "openai"}
    if "mode" in entry:
        out["mode"] = entry["mode"]
    known = set(META_FIELDS)
    for ours, theirs, scale in BASE_FIELDS:
        known.add(theirs)
        if theirs in entry:
            out[ours] = exact_decimal(name, theirs, entry[theirs], scale)
    for theirs, ours in ALIASES.items():
        known.add(theirs)
        if theirs in entry and ours not in out:
            out[ours] = exact_decimal(name, theirs, entry[theirs], 1)
    for tier, suffix in TIERS.items():
        prices = {}
        for ours, theirs, scale in TIER_FIELDS:
            known.add(theirs + suffix)
            if theirs + suffix in entry:
                prices[ours] = exact_decimal(name, theirs + suffix, entry[theirs + suffix], scale)
        if prices:
            out[tier] = prices
    unknown = sorted(f for f in entry if f not in known)
    if unknown:
        sys.exit(f"{name}: unknown source field(s) {unknown}: teach gen_prices.py about them")
    if not any(k not in ("provider", "mode") for k in out):
        out["unpriced"] = True
    for f in ("max_input_tokens", "max_output_tokens"):
        if f in entry:
            if not isinstance(entry[f], int) or entry[f] < 0:
                sys.exit(f"{name}: field {f} is not a non-negative integer: {entry[f]!r}")
            out[f] = entry[f]
    if "deprecation_date" in entry:
        out["deprecation_date"] = entry["deprecation_date"]
    return out


def main(argv):
    """gen_prices.py [--check] [SOURCE [OUTPUT]]: write OUTPUT, or with --check only verify
    that OUTPUT is what SOURCE generates (exit 1 if not)."""
    args = [a for a in argv[1:] if a != "--check"]
    check = "--check" in argv[1:]
    source = args[0] if len(args) > 0 else DEFAULT_SOURCE
    output = args[1] if len(args) > 1 else DEFAULT_OUTPUT
    with open(source, "rb") as f:
        raw = f.read()
    data = json.loads(raw)
    models = {}
    for name in sorted(data):
        key = name.lower()
        if key in models:
            sys.exit(f"{name}: duplicate model name (names are case-insensitive)")
        if not (key.startswith("azure/") or "/" not in key):
            sys.exit(f"{name}: neither an OpenAI nor an azure/ name")
        models[key] = convert(name, data[name])
    result = {
        "source": SOURCE_NOTE,
        "generated_from": "budget-core/data/source/openai-prices.json",
        "generated_from_sha256": hashlib.sha256(raw).hexdigest(),
        "generator": "budget-core/data/gen_prices.py",
        "units": UNITS,
        "models": models,
    }
    text = json.dumps(result, indent=1, ensure_ascii=False) + "\n"
    if check:
        with open(output, encoding="utf-8") as f:
            current = f.read()
        if current != text:
            sys.exit(f"{output} is out of date: run python3 budget-core/data/gen_prices.py")
        print(f"{output} matches {source} ({len(models)} models)", file=sys.stderr)
        return
    tmp = output + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, output)
    print(f"wrote {len(models)} models to {output}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv)
