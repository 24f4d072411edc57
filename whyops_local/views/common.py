from functools import wraps
from typing import Any, Callable

from django.conf import settings
from django.db.models import Count, Q, Sum
from django.http import HttpRequest

from .. import pricing
from ..store import PRICED_EVENTS


# Defence in depth for pages full of untrusted text: only our own scripts and styles run, images
# may be data: URLs (inline screenshots), nothing is framed or loaded from elsewhere.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def page(view: Callable) -> Callable:
    """Marks a view as an HTML page: adds the Content-Security-Policy."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any):
        response = view(request, *args, **kwargs)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response

    return wrapped


def site_context(request: HttpRequest) -> dict[str, Any]:
    """What every page shows: the price data's version and where to point clients."""
    base = request.build_absolute_uri("/").rstrip("/")
    return {
        "price_data_version": pricing.PRICE_DATA_VERSION,
        "base_url": base,
        "api_key_required": bool(settings.WHYOPS_API_KEY),
    }


def with_cost(row: dict[str, Any]) -> dict[str, Any]:
    """``cost`` and ``complete`` for a row of sums: 0 when nothing needed a price, None when none was known."""
    unpriced = row.get("unpriced") or 0
    cost = row.get("cost")
    return {**row, "cost": cost if cost is not None else (None if unpriced else 0), "complete": not unpriced}


def usage_totals(events) -> dict[str, Any]:
    """Token and cost sums over an Event queryset, with the count of calls that have no price."""
    return with_cost(events.aggregate(
        calls=Count("pk", filter=Q(event_type__in=PRICED_EVENTS)),
        prompt=Sum("prompt_tokens", default=0),
        output=Sum("completion_tokens", default=0),
        cache_read=Sum("cache_read_tokens", default=0),
        cache_write=Sum("cache_creation_tokens", default=0),
        total=Sum("total_tokens", default=0),
        cost=Sum("cost_usd"),
        unpriced=Count("pk", filter=Q(event_type__in=PRICED_EVENTS, cost_usd__isnull=True)),
    ))


def by_model(events) -> list[dict[str, Any]]:
    """Per model: calls, tokens split into uncached input / cache read / cache write / output, and cost.

    "input" is the uncached part: OpenAI-style prompt counts include cached tokens, Anthropic's do not
    (decided by provider and model, as pricing does).
    """
    rows = (
        events.filter(event_type__in=PRICED_EVENTS)
        .values("model", "provider")
        .annotate(
            calls=Count("pk"),
            prompt=Sum("prompt_tokens"),
            output=Sum("completion_tokens"),
            cache_read=Sum("cache_read_tokens"),
            cache_write=Sum("cache_creation_tokens"),
            cost=Sum("cost_usd"),
            unpriced=Count("pk", filter=Q(cost_usd__isnull=True)),
        )
        .order_by("model", "provider")
    )
    out = []
    for row in rows:
        provider, model = pricing.split_model(row["provider"], row["model"])
        on_top = pricing.cache_on_top(provider, model)
        uncached = row["prompt"] if on_top else max(row["prompt"] - row["cache_read"] - row["cache_write"], 0)
        notes = (
            events.filter(model=row["model"], provider=row["provider"], event_type__in=PRICED_EVENTS)
            .exclude(cost_note="").values_list("cost_note", flat=True).distinct()[:3]
        )
        out.append({**row, "input": uncached, "notes": "; ".join(notes), "complete": row["unpriced"] == 0,
                    "cost": None if row["unpriced"] == row["calls"] else row["cost"]})
    return out


def split_totals(models: list[dict[str, Any]]) -> dict[str, int]:
    return {key: sum(row[key] for row in models) for key in ("input", "cache_read", "cache_write", "output")}
