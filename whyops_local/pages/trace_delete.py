"""`POST /delete-trace` (the trace page's delete button, after its confirm step): delete a trace whole."""

from django.http import Http404, HttpRequest, HttpResponseRedirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from ..live.messages import publish_soon
from ..storage import retention
from ..storage.writer import write


@require_POST
async def trace_delete(request: HttpRequest) -> HttpResponseRedirect:
    messages = await write(retention.delete_trace_named, request.POST.get("trace_id", ""))
    if messages is None:
        raise Http404("No such trace")
    publish_soon(messages)  # open pages drop it
    return HttpResponseRedirect(reverse("trace_list"))
