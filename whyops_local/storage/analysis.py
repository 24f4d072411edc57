"""Reading what explains a run: one LLM call's prompt change, a run's events for comparing.

Read side, like totals: the pure work is in domain.context and domain.alignment.
"""

from typing import Any

from ..domain import context
from ..models import Event, Trace
from .content import unpack_events


def run_events(trace: Trace) -> list[dict[str, Any]]:
    """The trace's events in step order, with just what comparing needs.

    Rows, not model instances (building 10,000 of them took 0.16 -> 0.28 s of a 5,000-step comparison);
    only the few events with content stored apart are built, to be unpacked."""
    rows = trace.events.order_by("step_id", "pk").values_list(
        "pk", "event_type", "step_id", "content", "metadata", "packing", "agent_version_id")
    events = [{"eventType": kind, "stepId": step, "content": content, "metadata": metadata}
              for _, kind, step, content, metadata, _, _ in rows]
    packed = {i: Event(pk=pk, content=content, metadata=metadata, packing=packing, agent_version_id=version)
              for i, (pk, _, _, content, metadata, packing, version) in enumerate(rows) if packing}
    unpack_events(list(packed.values()))
    for i, event in packed.items():
        events[i].update(content=event.content, metadata=event.metadata)
    return events


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
