"""Read API views that explain a run: what changed between two LLM calls, two runs compared."""

from django.http import HttpResponse

from ..domain import alignment, jsontext
from ..models import Trace
from ..storage.analysis import call_context, run_events
from .guards import error_response


def _trace(trace_id: str) -> Trace | None:
    return Trace.objects.select_related("agent", "agent_version").filter(trace_id=trace_id).first()


def step_context(trace_id: str, step_id: int):
    trace = _trace(trace_id)
    if trace is None:
        return error_response(404, f"No trace with traceId {trace_id!r}")
    change = call_context(trace, step_id)
    if change is None:
        return error_response(404, f"Step {step_id} of trace {trace_id!r} is not an LLM call or its request")
    return change


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
    compared = alignment.compare(traces["a"].summary_dict(), run_events(traces["a"]),
                                 traces["b"].summary_dict(), run_events(traces["b"]))
    # Thousands of rows: orjson, not the API's own encoder.
    return HttpResponse(jsontext.dumps(compared), content_type="application/json")
