"""Token counts in one meaning, and the cost of one LLM call or embedding, from bundled `genai-prices`
data or the user's prices file, bucket by bucket (tokens x price per million) for showing how it adds up.

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
from genai_prices import data_snapshot
from genai_prices.types import ModelPrice, TieredPrices, calc_unit_price

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
class Tokens:
    """Token counts in whyops-local's one meaning, whatever the provider's: ``input`` is the uncached
    input; ``cache_write_1h`` is the part of ``cache_write`` written for an hour; ``reasoning`` is
    the part of ``output`` spent reasoning (billed as output, once)."""

    input: int = 0
    cache_read: int = 0
    cache_write: int = 0
    cache_write_1h: int = 0
    output: int = 0
    reasoning: int = 0

    @property
    def prompt(self) -> int:
        """Every input token, cached or not (genai-prices' ``input_tokens``, OpenAI's ``prompt_tokens``)."""
        return self.input + self.cache_read + self.cache_write

    @property
    def total(self) -> int:
        return self.prompt + self.output

    def to_api(self) -> dict[str, int]:
        return {"input": self.input, "cacheRead": self.cache_read, "cacheWrite": self.cache_write,
                "cacheWrite1h": self.cache_write_1h, "output": self.output, "reasoning": self.reasoning}


def split_model(provider: str, model: str) -> tuple[str, str]:
    """("openai", "gpt-4o-mini") from ("", "openai/gpt-4o-mini"); the provider lower-cased."""
    provider = (provider or "").strip().lower()
    if "/" in model:
        prefix, rest = model.split("/", 1)
        if not provider or prefix.lower() == provider:
            return prefix.lower(), rest
    return provider, model


def model_name(provider: str, model: str) -> str:
    """A model's one name: ``openai/gpt-4o-mini`` for both ``gpt-4o-mini`` from openai and ``openai/gpt-4o-mini``."""
    provider, model = split_model(provider, model)
    return f"{provider}/{model}" if provider and model else model


@lru_cache(maxsize=4096)
def family(provider: str, model: str) -> str:
    """The model genai-prices prices it as (``gpt-4o`` for ``gpt-4o-2024-08-06``); the model itself if unknown."""
    provider, model = split_model(provider, model)
    try:
        return genai_prices.calc_price(genai_prices.Usage(), model, provider_id=provider or None).model.id
    except Exception:  # noqa: BLE001  (unknown models, and any failure of the price data, name themselves)
        return model


def cache_on_top(provider: str, model: str) -> bool:
    """Whether the provider reports cache tokens beside input tokens (Anthropic) or inside them (the rest)."""
    return provider in _CACHE_ON_TOP_PROVIDERS or model.lower().startswith("claude")


_NO_TOKENS, _UNUSABLE = Tokens(), "usage missing or inconsistent"


def read_usage(provider: str, model: str, event_type: str, usage: dict[str, Any]) -> tuple[Tokens, str]:
    """WhyOps camelCase usage (in its provider's meaning) as ``Tokens``, and "" or why it cannot be priced.

    ``provider`` and ``model`` as ``split_model`` gives them."""
    if not usage:  # most events (messages, tool calls): said at once, 2.5 us an event otherwise
        return _NO_TOKENS, _UNUSABLE
    prompt = usage.get("promptTokens")
    output = usage.get("completionTokens") or 0
    cache_read = usage.get("cacheReadTokens") or 0
    cache_write = usage.get("cacheCreationTokens") or 0
    cache_write_1h = min(usage.get("cacheCreation1hTokens") or 0, cache_write)
    reasoning = min(usage.get("reasoningTokens") or 0, output)
    if event_type == "embedding_response" and prompt is None:
        prompt = usage.get("totalTokens")
    problem = "" if prompt is not None else _UNUSABLE
    prompt = prompt or 0
    if not cache_on_top(provider, model):
        if cache_read + cache_write > prompt:
            # cached tokens are a subset of prompt tokens here; more cached than sent is not usable
            problem = _UNUSABLE
        prompt = max(prompt - cache_read - cache_write, 0)
    return Tokens(prompt, cache_read, cache_write, cache_write_1h, output, reasoning), problem


@dataclass(frozen=True)
class Bucket:
    """One priced part of a call: ``tokens`` x ``per_million`` / 1,000,000 = ``usd``."""

    name: str  # input, cacheRead, cacheWrite (5-minute), cacheWrite1h, output
    tokens: int
    per_million: Decimal
    usd: Decimal


@dataclass(frozen=True)
class Breakdown:
    buckets: tuple[Bucket, ...]
    source: str  # the genai-prices version and model, or the override file

    @property
    def total(self) -> Decimal:
        return sum((bucket.usd for bucket in self.buckets), Decimal(0))


def _bucket_tokens(tokens: Tokens) -> dict[str, int]:
    return {"input": tokens.input, "cacheRead": tokens.cache_read,
            "cacheWrite": tokens.cache_write - tokens.cache_write_1h, "cacheWrite1h": tokens.cache_write_1h,
            "output": tokens.output}


def _buckets(rates: dict[str, Decimal], tokens: Tokens) -> tuple[Bucket, ...]:
    return tuple(Bucket(name, count, rates[name], count * rates[name] / MILLION)
                 for name, count in _bucket_tokens(tokens).items() if count)


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


def _override_rates(prices: dict[str, Decimal]) -> dict[str, Decimal]:
    input_price = prices.get("input", Decimal(0))
    cache_write = prices.get("cacheWrite", input_price)
    return {"input": input_price, "cacheRead": prices.get("cacheRead", input_price), "cacheWrite": cache_write,
            "cacheWrite1h": prices.get("cacheWrite1h", cache_write), "output": prices.get("output", Decimal(0))}


def _genai_usage(tokens: Tokens) -> genai_prices.Usage:
    return genai_prices.Usage(
        input_tokens=tokens.prompt,  # genai-prices' input includes the cached part
        output_tokens=tokens.output,
        cache_read_tokens=tokens.cache_read,
        cache_write_tokens=tokens.cache_write,
        **({"cache_write_1h_tokens": tokens.cache_write_1h} if tokens.cache_write_1h else {}),
    )


# The rates a price may have to be added up here: its token buckets', and those of what a usage here
# never counts (searches, code runs). Anything else (a fee per request, audio, text or reasoning
# priced apart...) is left to genai-prices.
_SUMMABLE = frozenset({"input_mtok", "cache_read_mtok", "cache_write_mtok", "cache_write_1h_mtok", "output_mtok",
                       "web_searches_kcount", "social_searches_kcount", "storage_searches_kcount",
                       "rerank_searches_kcount", "code_executions_kcount"})


@lru_cache(maxsize=4096)
def _bundled_model(provider: str, model: str) -> tuple[str, ModelPrice | None, dict[str, Decimal] | None]:
    """The source of a model's bundled price; that price when it is one set of rates in force at any
    time, made of summable rates (then it is the sum of its token buckets, tested against genai-prices'
    own calculation over every bundled model); and its rates when no tier changes them. Raises
    LookupError for a model genai-prices does not know."""
    found, info = data_snapshot.get_snapshot().find_provider_model(model, None, provider or None, None)
    fixed = info.prices if isinstance(info.prices, ModelPrice) else None
    if fixed is not None and not {key for key, rate in vars(fixed).items() if rate is not None} <= _SUMMABLE:
        fixed = None
    flat = fixed is not None and not any(isinstance(rate, TieredPrices) for rate in vars(fixed).values())
    return f"{PRICE_DATA_VERSION}: {found.id}/{info.id}", fixed, _bundled_rates(fixed, Tokens()) if flat else None


@lru_cache(maxsize=65536)
def _calculated(provider: str, model: str, tokens: Tokens) -> tuple[Decimal, str, Any]:
    # Memoised: genai-prices' general unit machinery takes ~60 us a call, and agents repeat
    # usages (the same prompt and cached prefix); the arguments are immutable.
    result = genai_prices.calc_price(_genai_usage(tokens), model, provider_id=provider or None)
    return result.total_price, f"{PRICE_DATA_VERSION}: {result.provider.id}/{result.model.id}", result.model_price


def _from_bundled(provider: str, model: str, tokens: Tokens) -> tuple[Decimal, str, Any]:
    """(cost, source, genai-prices' model price). Rates are added up here: calc_price took 50-80 us a
    call, this 6-14 (and real calls rarely repeat a usage: 55 us more an OTLP span with distinct ones)."""
    source, fixed, rates = _bundled_model(provider, model)
    if fixed is None:  # time-of-day or dated prices, fees per request, audio...
        return _calculated(provider, model, tokens)
    return Breakdown(_buckets(rates or _bundled_rates(fixed, tokens), tokens), source).total, source, fixed


def _bundled_rates(model_price: Any, tokens: Tokens) -> dict[str, Decimal]:
    """The $/million of each bucket, at the tier the call's input reaches (as genai-prices bills it)."""
    def rate(*names: str) -> Decimal:
        price = next((getattr(model_price, n) for n in names if getattr(model_price, n, None) is not None), None)
        return calc_unit_price(price, MILLION, tokens.prompt, 1_000_000)

    return {"input": rate("input_mtok"), "cacheRead": rate("cache_read_mtok", "input_mtok"),
            "cacheWrite": rate("cache_write_mtok", "input_mtok"),
            "cacheWrite1h": rate("cache_write_1h_mtok", "cache_write_mtok", "input_mtok"),
            "output": rate("output_mtok")}


def price_tokens(provider: str, model: str, tokens: Tokens, prices_file: str | None = None) -> Price:
    """The cost of ``tokens`` (priceable ones, as ``read_usage`` gives them); never raises."""
    provider, model = split_model(provider, model)
    try:
        override = _override_for(provider, model, prices_file)
        if override is not None:
            return Price(Breakdown(_buckets(_override_rates(override), tokens), "").total, f"WHYOPS_PRICES_FILE: {model}")
        cost, source, _ = _from_bundled(provider, model, tokens)
    except LookupError:
        return Price(None, f"price unknown for {provider + '/' if provider else ''}{model}")
    except Exception as exc:  # a pricing failure must never break ingestion
        log.warning("pricing failed for %s/%s: %s", provider, model, exc)
        return Price(None, f"pricing failed: {exc}")
    return Price(cost, source)


def breakdown(provider: str, model: str, tokens: Tokens, prices_file: str | None = None) -> Breakdown | None:
    """Each priced bucket of ``tokens``, for showing how a cost was reached; None if there is no price."""
    provider, model = split_model(provider, model)
    try:
        override = _override_for(provider, model, prices_file)
        if override is not None:
            return Breakdown(_buckets(_override_rates(override), tokens), f"WHYOPS_PRICES_FILE: {model}")
        _, source, model_price = _from_bundled(provider, model, tokens)
        return Breakdown(_buckets(_bundled_rates(model_price, tokens), tokens), source)
    except Exception:  # noqa: BLE001  (no price, shown as such)
        return None


def price_event(provider: str, model: str, event_type: str, usage: dict[str, Any],
                prices_file: str | None = None) -> Price:
    """The cost of one event; ``prices_file`` (WHYOPS_PRICES_FILE) wins over the bundled prices."""
    try:
        tokens, problem = read_usage(*split_model(provider, model), event_type, usage)
    except Exception as exc:  # a pricing failure must never break ingestion
        return Price(None, f"pricing failed: {exc}")
    if problem:
        return Price(None, problem)
    return price_tokens(provider, model, tokens, prices_file)


def summed(breakdowns: list[Breakdown]) -> Breakdown:
    """Several calls' breakdowns as one: tokens and dollars added per bucket; a bucket's price kept when
    every call paid the same (long-context tiers can differ), else ``per_million`` is None."""
    merged: dict[str, Bucket] = {}
    for bucket in (b for breakdown in breakdowns for b in breakdown.buckets):
        seen = merged.get(bucket.name)
        merged[bucket.name] = bucket if seen is None else Bucket(
            bucket.name, seen.tokens + bucket.tokens,
            seen.per_million if seen.per_million == bucket.per_million else None, seen.usd + bucket.usd)
    order = list(_bucket_tokens(Tokens()))
    sources = dict.fromkeys(breakdown.source for breakdown in breakdowns)
    return Breakdown(tuple(sorted(merged.values(), key=lambda b: order.index(b.name))), "; ".join(sources))
