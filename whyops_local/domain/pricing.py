"""Cost of one LLM call or embedding, from bundled `genai-prices` data or the user's prices file.

Never raises and never guesses: an unknown model or unusable usage gives ``cost_usd=None`` with the
reason in ``note``. Free of Django so the case table runs in milliseconds.
"""

import json
import logging
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from importlib.metadata import version
from pathlib import Path
from typing import Any

import genai_prices

log = logging.getLogger(__name__)

PRICE_DATA_VERSION = f"genai-prices {version('genai-prices')}"
MILLION = Decimal(1_000_000)
# Providers whose input token count excludes cache reads and writes (they come on top).
_CACHE_ON_TOP_PROVIDERS = {"anthropic"}


@dataclass(frozen=True)
class Price:
    cost_usd: Decimal | None
    note: str  # where the price came from, or why there is none


@dataclass(frozen=True)
class TokenCounts:
    """Usage in genai-prices' terms: ``input`` includes the cached part."""

    input: int
    output: int
    cache_read: int
    cache_write: int
    cache_write_1h: int = 0


def split_model(provider: str, model: str) -> tuple[str, str]:
    """("openai", "gpt-4o-mini") from ("", "openai/gpt-4o-mini"); the provider lower-cased."""
    provider = (provider or "").strip().lower()
    if "/" in model:
        prefix, rest = model.split("/", 1)
        if not provider or prefix.lower() == provider:
            return prefix.lower(), rest
    return provider, model


def cache_on_top(provider: str, model: str) -> bool:
    """Whether the provider reports cache tokens beside input tokens (Anthropic) or inside them (the rest)."""
    return provider in _CACHE_ON_TOP_PROVIDERS or model.lower().startswith("claude")


def token_counts(provider: str, model: str, event_type: str, usage: dict[str, Any]) -> TokenCounts | None:
    """Normalise WhyOps camelCase usage to input-including-cache counts, or None if there is nothing to price."""
    prompt = usage.get("promptTokens")
    output = usage.get("completionTokens") or 0
    cache_read = usage.get("cacheReadTokens") or 0
    cache_write = usage.get("cacheCreationTokens") or 0
    cache_write_1h = usage.get("cacheCreation1hTokens") or 0
    if event_type == "embedding_response" and prompt is None:
        prompt = usage.get("totalTokens")
    if prompt is None:
        return None
    if cache_on_top(provider, model):
        return TokenCounts(prompt + cache_read + cache_write, output, cache_read, cache_write, cache_write_1h)
    if cache_read + cache_write > prompt:
        return None  # cached tokens are a subset of prompt tokens here; more cached than sent is not usable
    return TokenCounts(prompt, output, cache_read, cache_write, cache_write_1h)


@lru_cache(maxsize=1)
def _overrides(path: str) -> dict[str, dict[str, Decimal]]:
    data = json.loads(Path(path).read_text())
    models = data.get("models", data)
    return {name: {k: Decimal(str(v)) for k, v in prices.items()} for name, prices in models.items()}


def _override_for(provider: str, model: str, path: str | None) -> dict[str, Decimal] | None:
    if not path:
        return None
    table = _overrides(path)
    return table.get(f"{provider}/{model}") or table.get(model)


def _from_override(prices: dict[str, Decimal], tokens: TokenCounts) -> Decimal:
    input_price = prices.get("input", Decimal(0))
    cache_write_price = prices.get("cacheWrite", input_price)
    uncached = tokens.input - tokens.cache_read - tokens.cache_write
    return (
        uncached * input_price
        + tokens.cache_read * prices.get("cacheRead", input_price)
        + (tokens.cache_write - tokens.cache_write_1h) * cache_write_price
        + tokens.cache_write_1h * prices.get("cacheWrite1h", cache_write_price)
        + tokens.output * prices.get("output", Decimal(0))
    ) / MILLION


@lru_cache(maxsize=65536)
def _from_bundled(provider: str, model: str, tokens: TokenCounts) -> tuple[Decimal, str]:
    # Memoised: genai-prices' general unit machinery takes ~100 us a call, and agents repeat
    # usages (the same prompt and cached prefix); the arguments are immutable.
    usage = genai_prices.Usage(
        input_tokens=tokens.input,
        output_tokens=tokens.output,
        cache_read_tokens=tokens.cache_read,
        cache_write_tokens=tokens.cache_write,
        **({"cache_write_1h_tokens": tokens.cache_write_1h} if tokens.cache_write_1h else {}),
    )
    result = genai_prices.calc_price(usage, model, provider_id=provider or None)
    return result.total_price, f"{PRICE_DATA_VERSION}: {result.provider.id}/{result.model.id}"


def price_event(provider: str, model: str, event_type: str, usage: dict[str, Any],
                prices_file: str | None = None) -> Price:
    """The cost of one event; ``prices_file`` (WHYOPS_PRICES_FILE) wins over the bundled prices."""
    provider, model = split_model(provider, model)
    try:
        tokens = token_counts(provider, model, event_type, usage)
        if tokens is None:
            return Price(None, "usage missing or inconsistent")
        override = _override_for(provider, model, prices_file)
        if override is not None:
            return Price(_from_override(override, tokens), f"WHYOPS_PRICES_FILE: {model}")
        try:
            cost, source = _from_bundled(provider, model, tokens)
        except LookupError:
            return Price(None, f"price unknown for {provider + '/' if provider else ''}{model}")
        return Price(cost, source)
    except Exception as exc:  # a pricing failure must never break ingestion
        log.warning("pricing failed for %s/%s: %s", provider, model, exc)
        return Price(None, f"pricing failed: {exc}")
