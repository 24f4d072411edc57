"""Read API views that explain a run: what changed between two LLM calls, two runs compared."""

from typing import Any

from ..domain import alignment, context
from ..models import Trace
from .guards import error_response


def _trace(trace_id: str) -> Trace | None:
    return Trace.objects.select_related("agent", "agent_version").filter(trace_id=trace_id).first()


def run_events(trace: Trace) -> list[dict[str, Any]]:
    """The trace's events in step order, with just what comparing needs (no model instances)."""
    rows = trace.events.order_by("step_id", "pk").values_list("event_type", "step_id", "content", "metadata")
    return [{"eventType": kind, "stepId": step, "content": content, "metadata": metadata}
            for kind, step, content, metadata in rows]


def step_context(trace_id: str, step_id: int):
    trace = _trace(trace_id)
    if trace is None:
        return error_response(404, f"No trace with traceId {trace_id!r}")
    rows = (trace.events.filter(event_type__in=(*context.REQUEST_KINDS, "llm_response")).order_by("step_id", "pk")
            .values_list("step_id", "event_type", "pk"))
    calls = context.pair_calls(list(rows))
    index = context.find_call(calls, step_id)
    if index is None:
        return error_response(404, f"Step {step_id} of trace {trace_id!r} is not an LLM call or its request")
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


def compare(a: str, b: str):
    missing = [{"field": side, "message": "a traceId is required", "code": "missing"}
               for side, trace_id in (("a", a), ("b", b)) if not trace_id]
    if missing:
        return error_response(400, "Validation failed", missing)
    traces = {}
    for side, trace_id in (("a", a), ("b", b)):
        traces[side] = _trace(trace_id)
        if traces[side] is None:
            return error_response(404, f"No trace with traceId {trace_id!r}",
                                  [{"field": side, "message": "no such trace", "code": "not_found"}])
    return alignment.compare(traces["a"].summary_dict(), run_events(traces["a"]),
                             traces["b"].summary_dict(), run_events(traces["b"]))
