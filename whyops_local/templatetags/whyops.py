"""Formatting for the pages: money that never says "$0" for an unknown price, tokens, latency, long text."""

from decimal import Decimal
from functools import cache, partial
from typing import Any
from urllib.parse import quote

from django import template
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape, format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import Truncator

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


@register.simple_tag
def cost(value: Any, note: str = "", complete: bool = True) -> SafeString:
    """A cost with its price source (or the reason it is unknown) as tooltip; marks incomplete sums."""
    css = "cost" + (" unknown" if value is None else "") + ("" if complete else " incomplete")
    title = ("" if complete else "Incomplete: some calls have no known price. ") + (note or "")
    return format_html('<span class="{}"{}>{}{}</span>', css, format_html(' title="{}"', title) if title else "",
                       usd(value), mark_safe("<sup>+?</sup>") if not complete and value is not None else "")


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


_PATH_SAFE = "!$&'()*+,;=/~:@"  # what django.urls.reverse leaves unquoted in a path argument


@cache
def _around(name: str) -> tuple[str, str]:
    url = reverse(name, args=["x"])
    at = url.rindex("x")
    return url[:at], url[at + 1:]


def _url(name: str, value: str) -> str:
    """``reverse(name, args=[value])`` for a route whose one argument is a path, without its cost."""
    before, after = _around(name)
    return before + quote(value, safe=_PATH_SAFE) + after


_list_url = cache(partial(reverse, "trace_list"))


@register.simple_tag
def trace_row(t: Any, streaming: set[str]) -> SafeString:
    """A row of the trace lists, built here rather than by a template: fifty rows of a dozen cells
    took the template engine ~40 ms a page at 100,000 traces (bench/pages.py), most of the search
    page's 50 ms."""
    flags = format_html_join("", '<a class="badge warn flag-badge" href="{}?flag={}" title="{}: show only these">{}</a>',
                             ((_list_url(), kind, flagname(kind), flagname(kind)) for kind in t.flag_names()))
    status = (format_html('<span class="badge error" title="{} error event(s)">error</span>', t.error_count)
              if t.error_count else mark_safe('<span class="badge ok">ok</span>'))
    agent = format_html('<a href="{}">{}</a>', _url("agent", t.agent.name), t.agent.name)
    if t.agent_version:
        agent += format_html(' <span class="muted">v{}</span>', t.agent_version.seq)
    user = (format_html('<a href="{}">{}</a>', _url("user", t.external_user_id), t.external_user_id)
            if t.external_user_id else mark_safe('<span class="muted">–</span>'))
    found = getattr(t, "snippet", None)
    started, last = timezone.localtime(t.started_at), timezone.localtime(t.last_event_at)
    return format_html(
        '<tr id="trace-{}" data-trace-id="{}" data-seq="{}">'
        '<td class="pick"><input type="checkbox" name="t" value="{}" form="compare-form" aria-label="choose to compare"></td>'
        '<td>{} <span class="badge running" data-stream-state{}>in progress</span>{}</td>'
        '<td class="one-line" title="{}">{}</td><td class="one-line" title="{}">{}</td>'
        '<td class="trace-id"><a href="{}">{}</a>{}</td>'
        '<td class="one-line"><time datetime="{}" title="last event {} UTC">{}</time></td>'
        '<td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td>'
        '<td class="num">{}</td><td class="num">{}</td></tr>\n',
        t.pk, t.trace_id, getattr(t, "last_seq", ""), t.trace_id,
        status, "" if t.trace_id in streaming else " hidden", flags,
        t.agent.name, agent, t.external_user_id or "", user,
        _url("trace", t.trace_id), Truncator(t.trace_id).chars(40),
        format_html('<div class="snippet muted">{}</div>', snippet(found)) if found else "",
        started.isoformat(), last.strftime("%Y-%m-%d %H:%M:%S"), started.strftime("%Y-%m-%d %H:%M:%S"),
        ms(t.duration_ms), t.event_count, t.llm_calls, t.tool_calls, tokens(t.total_tokens),
        cost(t.cost_usd_or_none, "", t.cost_complete))
