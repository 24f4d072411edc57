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

_BUCKETS = ("input", "cache_read", "cache_write", "cache_write_1h", "output", "reasoning")


def tokens_of(figures: dict[str, Any]) -> pricing.Tokens:
    return pricing.Tokens(*(figures[bucket] for bucket in _BUCKETS))


def _aggregates() -> dict[str, Any]:
    # Usage and calls leave out a manual copy of a proxied LLM response (Event.counted): one turn, counted once.
    counted = Q(counted=True)
    return {
        "events": Count("pk"),
        "traces": Count("trace", distinct=True),
        "calls": Count("pk", filter=Q(event_type__in=PRICED_EVENTS) & counted),  # LLM calls and embeddings
        "llm_calls": Count("pk", filter=Q(event_type__in=LLM_EVENTS) & counted),
        "errors": Count("pk", filter=Q(event_type="error")),
        **{bucket: Sum(f"{bucket}_tokens", default=0, filter=counted) for bucket in _BUCKETS},
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
    return _with_cost({"events": 0, "traces": 0, "calls": 0, "llm_calls": 0, "errors": 0, **dict.fromkeys(_BUCKETS, 0),
                       "tokens": 0, "cost": None, "unpriced": 0, "last": None})


def as_api(figures: dict[str, Any]) -> dict[str, Any]:
    """Totals in the read API's shape (the field names of a TraceSummary)."""
    return {
        "eventCount": figures["events"],
        "traceCount": figures["traces"],
        "llmCalls": figures["llm_calls"],
        "errorCount": figures["errors"],
        "tokens": tokens_of(figures).to_api(),
        # The older block, kept for its clients: prompt tokens include the cached ones.
        "usage": {
            "promptTokens": tokens_of(figures).prompt,
            "completionTokens": figures["output"],
            "cacheReadTokens": figures["cache_read"],
            "cacheCreationTokens": figures["cache_write"],
            "totalTokens": figures["tokens"],
        },
        "costUsd": money(figures["cost"]) if figures["cost"] is not None else None,
        "costComplete": figures["complete"],
    }


def by_model(events: QuerySet[Event]) -> list[dict[str, Any]]:
    """Per model (provider and canonical name): calls, tokens by bucket and cost, snapshots next to
    their family (what genai-prices prices them as)."""
    priced = events.filter(event_type__in=PRICED_EVENTS)
    notes: dict[tuple[str, str], list[str]] = {}
    for model, provider, note in (priced.exclude(cost_note="").order_by()
                                  .values_list("model", "provider", "cost_note").distinct()):
        notes.setdefault((model, provider), []).append(note)
    out = []
    for (model, provider), row in totals_by(priced, "model", "provider").items():
        out.append({**row, "model": model, "provider": provider, "name": pricing.model_name(provider, model),
                    "family": pricing.family(provider, model),
                    "notes": "; ".join(sorted(notes.get((model, provider), []))[:3])})
    return sorted(out, key=lambda row: (row["provider"], row["family"], row["model"]))
