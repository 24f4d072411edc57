"""`/users/<externalUserId>/`: one end user's traces, tokens, cost and errors."""

from django.http import Http404, HttpRequest, HttpResponse

from ..models import Event, Trace
from ..storage.totals import by_model, split_totals, totals
from .site import page, render

PAGE_SIZE = 100


@page
def user_page(request: HttpRequest, user_id: str) -> HttpResponse:
    events = Event.objects.filter(trace__external_user_id=user_id)
    figures = totals(events)
    if not figures["traces"]:
        raise Http404(f"No traces for user {user_id!r}")
    models = by_model(events)
    return render(request, "users/detail.html", {
        "user_id": user_id,
        "totals": figures,
        "models": models,
        "split": split_totals(models),
        "traces": list(Trace.objects.filtered(user=user_id)[:PAGE_SIZE]),
        "more": figures["traces"] > PAGE_SIZE,
    })
