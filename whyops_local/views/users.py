"""`/users/<externalUserId>/`: one end user's traces, tokens, cost and errors."""

from django.db.models import Count, Sum
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from ..api import filtered_traces
from ..models import Event, Trace
from .common import by_model, page, split_totals

PAGE_SIZE = 100


@page
def user_page(request: HttpRequest, user_id: str) -> HttpResponse:
    traces = Trace.objects.filter(external_user_id=user_id)
    totals = traces.aggregate(traces=Count("pk"), errors=Sum("error_count", default=0),
                              events=Sum("event_count", default=0), tokens=Sum("total_tokens", default=0))
    if not totals["traces"]:
        raise Http404(f"No traces for user {user_id!r}")
    models = by_model(Event.objects.filter(trace__external_user_id=user_id))
    cost = [row["cost"] for row in models if row["cost"] is not None]
    return render(request, "users/detail.html", {
        "user_id": user_id,
        "totals": totals,
        "models": models,
        "split": split_totals(models),
        "cost": sum(cost) if cost else (None if models else 0),
        "cost_complete": all(row["complete"] for row in models),
        "traces": list(filtered_traces(user=user_id)[:PAGE_SIZE]),
        "more": totals["traces"] > PAGE_SIZE,
    })
