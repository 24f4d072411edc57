"""`/`: traces, newest activity first, with filters and keyset paging (fast at 100,000 traces)."""

from django.http import HttpRequest, HttpResponse

from ..domain.schemas import Invalid
from ..models import Agent, Event, Trace
from .site import page, render

PAGE_SIZE = 50


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


def _has_error(value: str) -> bool | None:
    return {"yes": True, "no": False}.get(value)


@page
def trace_list(request: HttpRequest) -> HttpResponse:
    filters = {key: request.GET.get(key, "").strip() for key in ("agent", "user", "model", "q", "has_error")}
    cursor = request.GET.get("cursor", "")
    live_rows = request.GET.get("partial") == "rows"
    traces = Trace.objects.filtered(filters["agent"], filters["user"], filters["model"], filters["q"],
                             _has_error(filters["has_error"]),
                             changed_after=_int(request.GET.get("changed_after")) or 0 if live_rows else None)
    if live_rows:
        # What the live list fetches when told of new events: the rows changed since it last looked.
        return render(request, "components/trace_row_list.html", {"traces": traces[:PAGE_SIZE]})
    bad_cursor = False
    try:
        page, next_cursor = traces.keyset_page(PAGE_SIZE, cursor)
    except Invalid:
        bad_cursor = True
        page, next_cursor = traces.keyset_page(PAGE_SIZE)
    filtered = any(filters.values()) or bool(cursor)
    # The empty state is for a server nothing has talked to yet, not for a filter that matched nothing.
    empty = not page and not filtered and not Trace.objects.exists()
    return render(request, "traces/list.html", {
        "traces": page,
        "filters": filters,
        "next_cursor": next_cursor,
        "paged": bool(cursor),
        "bad_cursor": bad_cursor,
        "filtered": filtered,
        "empty": empty,
        "agents": Agent.objects.order_by("name").values_list("name", flat=True),
        # Distinct over the model index; capped so a pathological store cannot slow the page.
        "models": Event.objects.exclude(model="").order_by("model").values_list("model", flat=True).distinct()[:100],
    })
