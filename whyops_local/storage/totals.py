"""Token and cost totals over any set of events, grouped by agent, version, user or model.

Computed from the events themselves at read time, so they agree with the per-event figures
whatever order the events arrived in; trace totals are kept on the trace as events arrive.
The API and the pages both show these.
"""

from typing import Any

from django.db.models import Count, Max, Q, QuerySet, Sum

from ..domain import pricing
from ..domain.events import LLM_EVENTS, PRICED_EVENTS
from ..models import Event, money


def _aggregates() -> dict[str, Any]:
    # Usage and calls leave out a manual copy of a proxied LLM response (Event.counted): one turn, counted once.
    counted = Q(counted=True)
    return {
        "events": Count("pk"),
        "traces": Count("trace", distinct=True),
        "calls": Count("pk", filter=Q(event_type__in=PRICED_EVENTS) & counted),  # LLM calls and embeddings
        "llm_calls": Count("pk", filter=Q(event_type__in=LLM_EVENTS) & counted),
        "errors": Count("pk", filter=Q(event_type="error")),
        "prompt": Sum("prompt_tokens", default=0, filter=counted),
        "output": Sum("completion_tokens", default=0, filter=counted),
        "cache_read": Sum("cache_read_tokens", default=0, filter=counted),
        "cache_write": Sum("cache_creation_tokens", default=0, filter=counted),
        "tokens": Sum("total_tokens", default=0, filter=counted),
        "cost": Sum("cost_usd", filter=counted),
        "unpriced": Count("pk", filter=Q(event_type__in=PRICED_EVENTS, cost_usd__isnull=True) & counted),
        "last": Max("timestamp"),
    }


def _with_cost(row: dict[str, Any]) -> dict[str, Any]:
    # Same rule as a trace: the known sum; 0 when nothing needed a price; None when nothing that
    # needed a price had one ("price unknown", never $0).
    unpriced = row["unpriced"]
    cost = row["cost"]
    if cost is None:
        cost = None if unpriced else 0
    return {**row, "cost": cost, "complete": unpriced == 0}


def totals(events: QuerySet[Event]) -> dict[str, Any]:
    return _with_cost(events.aggregate(**_aggregates()))


def totals_by(events: QuerySet[Event], *fields: str) -> dict[Any, dict[str, Any]]:
    """Totals for each value of ``fields`` among ``events``, keyed by that value (a tuple for several)."""
    rows = events.order_by().values(*fields).annotate(**_aggregates())
    key = (lambda row: tuple(row[f] for f in fields)) if len(fields) > 1 else (lambda row: row[fields[0]])
    return {key(row): _with_cost(row) for row in rows}


def no_events() -> dict[str, Any]:
    """The totals of an empty set of events, without asking the database."""
    return _with_cost({"events": 0, "traces": 0, "calls": 0, "llm_calls": 0, "errors": 0, "prompt": 0, "output": 0,
                       "cache_read": 0, "cache_write": 0, "tokens": 0, "cost": None, "unpriced": 0, "last": None})


def as_api(figures: dict[str, Any]) -> dict[str, Any]:
    """Totals in the read API's shape (the field names of a TraceSummary)."""
    return {
        "eventCount": figures["events"],
        "traceCount": figures["traces"],
        "llmCalls": figures["llm_calls"],
        "errorCount": figures["errors"],
        "usage": {
            "promptTokens": figures["prompt"],
            "completionTokens": figures["output"],
            "cacheReadTokens": figures["cache_read"],
            "cacheCreationTokens": figures["cache_write"],
            "totalTokens": figures["tokens"],
        },
        "costUsd": money(figures["cost"]) if figures["cost"] is not None else None,
        "costComplete": figures["complete"],
    }


def by_model(events: QuerySet[Event]) -> list[dict[str, Any]]:
    """Per model: calls, tokens split into uncached input / cache read / cache write / output, and cost.

    "input" is the uncached part: OpenAI-style prompt counts include cached tokens, Anthropic's do not
    (decided by provider and model, as pricing does).
    """
    priced = events.filter(event_type__in=PRICED_EVENTS)
    notes: dict[tuple[str, str], list[str]] = {}
    for model, provider, note in (priced.exclude(cost_note="").order_by()
                                  .values_list("model", "provider", "cost_note").distinct()):
        notes.setdefault((model, provider), []).append(note)
    out = []
    for (model, provider), row in sorted(totals_by(priced, "model", "provider").items()):
        on_top = pricing.cache_on_top(*pricing.split_model(provider, model))
        uncached = row["prompt"] if on_top else max(row["prompt"] - row["cache_read"] - row["cache_write"], 0)
        out.append({**row, "model": model, "provider": provider, "input": uncached,
                    "notes": "; ".join(sorted(notes.get((model, provider), []))[:3])})
    return out


def split_totals(models: list[dict[str, Any]]) -> dict[str, int]:
    return {key: sum(row[key] for row in models) for key in ("input", "cache_read", "cache_write", "output")}
