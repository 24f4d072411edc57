from functools import wraps
from typing import Any, Callable

from django.conf import settings
from django.http import HttpRequest

from .. import live, pricing
from ..store import PRICED_EVENTS
from ..totals import totals_by


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
        # Proxied streams running in this process: their traces show "in progress".
        "streaming": set(live.streams_in_progress),
    }


def by_model(events) -> list[dict[str, Any]]:
    """Per model: calls, tokens split into uncached input / cache read / cache write / output, and cost.

    "input" is the uncached part: OpenAI-style prompt counts include cached tokens, Anthropic's do not
    (decided by provider and model, as pricing does).
    """
    priced = events.filter(event_type__in=PRICED_EVENTS)
    out = []
    for (model, provider), row in sorted(totals_by(priced, "model", "provider").items()):
        on_top = pricing.cache_on_top(*pricing.split_model(provider, model))
        uncached = row["prompt"] if on_top else max(row["prompt"] - row["cache_read"] - row["cache_write"], 0)
        notes = (
            priced.filter(model=model, provider=provider)
            .exclude(cost_note="").values_list("cost_note", flat=True).distinct()[:3]
        )
        out.append({**row, "model": model, "provider": provider, "input": uncached, "notes": "; ".join(notes)})
    return out


def split_totals(models: list[dict[str, Any]]) -> dict[str, int]:
    return {key: sum(row[key] for row in models) for key in ("input", "cache_read", "cache_write", "output")}
