from functools import wraps
from typing import Any, Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string

from ..domain import pricing
from ..live import messages as live

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


def render(request: HttpRequest, template: str, context: dict[str, Any] | None = None) -> HttpResponse:
    """``django.shortcuts.render``, but text UTF-8 cannot carry (a lone surrogate, which JSON can spell
    and the API keeps) is shown as "?" instead of failing the whole page."""
    return HttpResponse(render_to_string(template, context, request).encode("utf-8", "replace"))


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
