"""Formatting for the pages: money that never says "$0" for an unknown price, tokens, latency, long text."""

from decimal import Decimal
from typing import Any

from django import template
from django.utils.html import escape
from django.utils.safestring import mark_safe

from ..domain.events import KIND_NAMES
from ..domain.flags import KINDS as FLAG_NAMES
from ..pages.display import pretty_json

register = template.Library()

# Text longer than this shows its start and a "show all" control.
PREVIEW_CHARS = 2000


@register.filter
def usd(value: Any) -> str:
    if value is None or value == "":
        return "price unknown"
    value = Decimal(str(value))
    if value == 0:
        return "$0.00"
    if abs(value) >= 1:
        return f"${value:,.2f}"
    # Sub-cent calls are the norm: keep three significant digits.
    digits = max(2, -value.adjusted() + 2)
    return f"${value:.{digits}f}"


BUCKET_NAMES = {"input": "Input (uncached)", "cacheRead": "Cache read", "cacheWrite": "Cache write (5 min)",
                "cacheWrite1h": "Cache write (1 h)", "output": "Output"}


@register.filter
def bucketname(value: str) -> str:
    return BUCKET_NAMES.get(value, value)


@register.filter
def rate(value: Any) -> str:
    """A price per million tokens, as exact as the price data gives it ($0.075, $3.75)."""
    value = Decimal(str(value))
    return f"${value.normalize():f}" if value.as_tuple().exponent < -2 else f"${value:.2f}"


@register.filter
def tokens(value: Any) -> str:
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return "–"


@register.filter
def ms(value: Any) -> str:
    if value is None or value == "":
        return "–"
    value = float(value)
    if value < 1000:
        return f"{value:.0f} ms"
    if value < 60_000:
        return f"{value / 1000:.2f} s"
    minutes, seconds = divmod(value / 1000, 60)
    if minutes < 60:
        return f"{minutes:.0f} min {seconds:.0f} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours:.0f} h {minutes:.0f} min"


@register.inclusion_tag("components/longtext.html")
def longtext(text: Any, limit: int = PREVIEW_CHARS, css: str = "") -> dict[str, Any]:
    text = "" if text is None else str(text)
    return {"text": text, "preview": text[:limit], "cut": len(text) > limit, "size": len(text), "css": css}


@register.inclusion_tag("components/longtext.html")
def jsonblock(value: Any, limit: int = PREVIEW_CHARS) -> dict[str, Any]:
    return longtext(pretty_json(value), limit, "json")


@register.inclusion_tag("components/cost.html")
def cost(value: Any, note: str = "", complete: bool = True) -> dict[str, Any]:
    """A cost with its price source (or the reason it is unknown) as tooltip; marks incomplete sums."""
    return {"value": value, "note": note, "complete": complete}


@register.filter
def kindname(value: str) -> str:
    return KIND_NAMES.get(value, value)


@register.filter
def flagname(kind: str) -> str:
    return FLAG_NAMES.get(kind, kind)


@register.filter
def signed(value: Any) -> str:
    """A difference with its sign: +3, −2, 0."""
    if value is None:
        return "–"
    return f"+{value:,}" if value > 0 else f"−{-value:,}" if value < 0 else "0"


@register.filter
def signed_usd(value: Any) -> str:
    if value is None:
        return "price unknown"
    return ("+" if value > 0 else "−" if value < 0 else "") + usd(abs(value))


@register.filter
def snippet(text: str) -> str:
    """A search snippet (storage/search.py) escaped, its match marked."""
    return mark_safe(escape(text).replace("\x02", "<mark>").replace("\x03", "</mark>"))
