"""`/users/`: the end users, and `/users/<externalUserId>/`: one end user's traces, tokens, cost and errors."""

from django.db.models import Count, Max, Sum
from django.http import Http404, HttpRequest, HttpResponse

from ..models import Event, Trace
from ..storage.totals import by_model, tokens_of, totals
from .site import page, render

PAGE_SIZE = 100


@page
def user_list(request: HttpRequest) -> HttpResponse:
    users = (Trace.objects.exclude(external_user_id__isnull=True).exclude(external_user_id="")
             .values("external_user_id")
             .annotate(traces=Count("pk"), errors=Sum("error_count"), cost=Sum("cost_usd"), last=Max("last_event_at"),
                       tokens=Sum("total_tokens"))
             .order_by("-last"))
    return render(request, "users/list.html", {"users": list(users[:PAGE_SIZE * 10])})


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
        "split": tokens_of(figures),
        "traces": list(Trace.objects.filtered(user=user_id)[:PAGE_SIZE]),
        "more": figures["traces"] > PAGE_SIZE,
    })
