"""Token and cost totals over any set of events, grouped by agent version, user or model.

Computed from the events themselves at read time, so they agree with the per-event figures
whatever order the events arrived in; trace totals are kept on the trace as events arrive.
"""

from typing import Any

from django.db.models import Count, Q, QuerySet, Sum

from .models import Event, money
from .store import LLM_EVENTS, PRICED_EVENTS

_SUMS = {
    "promptTokens": "prompt_tokens",
    "completionTokens": "completion_tokens",
    "cacheReadTokens": "cache_read_tokens",
    "cacheCreationTokens": "cache_creation_tokens",
    "totalTokens": "total_tokens",
}


def _aggregates() -> dict[str, Any]:
    return {
        "events": Count("pk"),
        "traces": Count("trace", distinct=True),
        "llm_calls": Count("pk", filter=Q(event_type__in=LLM_EVENTS)),
        "errors": Count("pk", filter=Q(event_type="error")),
        "cost": Sum("cost_usd"),
        "unpriced": Count("pk", filter=Q(event_type__in=PRICED_EVENTS, cost_usd__isnull=True)),
        **{field: Sum(field) for field in _SUMS.values()},
    }


def _shape(row: dict[str, Any]) -> dict[str, Any]:
    complete = row["unpriced"] == 0
    cost = row["cost"]
    return {
        "eventCount": row["events"],
        "traceCount": row["traces"],
        "llmCalls": row["llm_calls"],
        "errorCount": row["errors"],
        "usage": {name: row[field] or 0 for name, field in _SUMS.items()},
        # Same rule as a trace: the known sum, None when nothing that needed a price had one.
        "costUsd": money(cost) if cost is not None else (0.0 if complete else None),
        "costComplete": complete,
    }


def totals(events: QuerySet[Event]) -> dict[str, Any]:
    return _shape(events.aggregate(**_aggregates()))


def totals_by(events: QuerySet[Event], field: str) -> dict[Any, dict[str, Any]]:
    """``{value of field: totals}`` for each value of ``field`` among ``events``."""
    rows = events.order_by().values(field).annotate(**_aggregates())
    return {row[field]: _shape(row) for row in rows}
