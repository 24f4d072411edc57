"""Reading what explains a run: one LLM call's prompt change, a run's events for comparing.

Read side, like totals: the pure work is in domain.context and domain.alignment.
"""

from typing import Any

from django.db.models import TextField
from django.db.models.functions import Cast

from ..domain import context, jsontext
from ..models import Trace


def run_events(trace: Trace) -> list[dict[str, Any]]:
    """The trace's events in step order, with just what comparing needs (no model instances).

    The JSON columns are read as text and parsed by orjson: JSONField's json.loads took most of a
    5,000-step comparison's time."""
    rows = (trace.events.order_by("step_id", "pk")
            .annotate(content_text=Cast("content", TextField()), metadata_text=Cast("metadata", TextField()))
            .values_list("event_type", "step_id", "content_text", "metadata_text"))
    return [{"eventType": kind, "stepId": step, "content": jsontext.loads(content) if content is not None else None,
             "metadata": jsontext.loads(metadata) if metadata is not None else {}}
            for kind, step, content, metadata in rows]


def call_context(trace: Trace, step_id: int) -> dict[str, Any] | None:
    """What changed in the prompt from the previous LLM call to the one ``step_id`` belongs to (its
    response or its request); None when the step is neither. Reads four events, whatever the trace's size."""
    rows = (trace.events.filter(event_type__in=(*context.REQUEST_KINDS, "llm_response")).order_by("step_id", "pk")
            .values_list("step_id", "event_type", "pk"))
    calls = context.pair_calls(list(rows))
    index = context.find_call(calls, step_id)
    if index is None:
        return None
    call, previous = calls[index], calls[index - 1] if index else None
    keys = [call.request_key, call.response_key, *((previous.request_key, previous.response_key) if previous else ())]
    events = {}
    for event in trace.events.filter(pk__in=[key for key in keys if key is not None]):
        event.trace = trace  # to_dict reads trace.trace_id; spare a query
        events[event.pk] = event.to_dict()
    return context.context_change(call.response_step, previous.response_step if previous else None,
                                  events.get(call.request_key), events.get(call.response_key),
                                  events.get(previous.request_key) if previous else None,
                                  events.get(previous.response_key) if previous else None)
