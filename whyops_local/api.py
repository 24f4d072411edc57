"""The WhyOps ingest API and whyops-local's read API (protocol sections 2-4 and 6)."""

import base64
import hmac
from datetime import datetime

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db.models import Exists, OuterRef, Q, TextField
from django.db.models.functions import Cast
from django.http import HttpRequest, JsonResponse
from ninja import NinjaAPI

from . import pricing
from .models import Agent, Event, Trace
from .proxy.record import wait_for_calls
from .spans import tool_spans
from .store import record_events, register_agent
from .validation import AgentInitIn, EventIn, Invalid, parse_agent_init, parse_events

api = NinjaAPI(
    title="whyops-local",
    version="1",
    description="The WhyOps event API (agent registration, event ingest) and whyops-local's read API.",
    docs_url="/docs",
    urls_namespace="api",
)


def error_response(status: int, error: str, details: list | None = None) -> JsonResponse:
    return JsonResponse({"error": error, "details": details or []}, status=status)


def key_refusal(request: HttpRequest) -> JsonResponse | None:
    """401 when the server has WHYOPS_API_KEY and the request does not carry it (protocol section 2)."""
    expected = settings.WHYOPS_API_KEY
    if not expected:
        return None
    auth = request.headers.get("Authorization", "")
    given = auth[7:].strip() if auth[:7].lower() == "bearer " else request.headers.get("X-API-Key", "")
    if given and hmac.compare_digest(given.encode(), expected.encode()):
        return None
    return error_response(401, "Missing or wrong API key: send 'Authorization: Bearer <WHYOPS_API_KEY>'")


def read_body(request: HttpRequest) -> bytes:
    try:
        body = request.body
    except RequestDataTooBig:
        body = None
    if body is None or len(body) > settings.WHYOPS_MAX_BODY_BYTES:
        raise Invalid(
            [{"field": "body", "message": f"larger than {settings.WHYOPS_MAX_BODY_BYTES} bytes", "code": "too_large"}],
            error=f"Request body too large (limit {settings.WHYOPS_MAX_BODY_BYTES} bytes, WHYOPS_MAX_BODY_BYTES)",
            status=413,
        )
    return body


def _schema_of(model) -> dict:
    return {"content": {"application/json": {"schema": model.model_json_schema(ref_template="#/components/schemas/{model}")}}}


def agent_init(request: HttpRequest) -> JsonResponse:
    if refusal := key_refusal(request):
        return refusal
    try:
        payload = parse_agent_init(read_body(request))
    except Invalid as exc:
        return JsonResponse(exc.to_dict(), status=exc.status)
    registration = register_agent(payload.agentName, payload.metadata_dict())
    return JsonResponse(registration.to_dict(), status=201 if registration.created else 200)


@api.post("/entities/init", openapi_extra={"requestBody": _schema_of(AgentInitIn)},
          summary="Register an agent and its version (created 201, existing 200)")
def entities_init(request: HttpRequest):
    return agent_init(request)


@api.post("/events/ingest", openapi_extra={"requestBody": _schema_of(EventIn)},
          summary="Ingest one event or a JSON array of them, atomically")
def events_ingest(request: HttpRequest):
    if refusal := key_refusal(request):
        return refusal
    try:
        events, is_array = parse_events(read_body(request))
    except Invalid as exc:
        return JsonResponse(exc.to_dict(), status=exc.status)
    wait_for_calls({event.traceId for event in events})  # proxied calls sent earlier come first
    saved = record_events(events, user=request.headers.get("X-External-User-Id") or None)
    answer = [result.to_dict() for result in saved]
    return JsonResponse(answer if is_array else answer[0], status=201, safe=False)


@api.get("/health", summary="Liveness and versions")
def health(request: HttpRequest):
    from django.db import connection

    return {"status": "ok", "database": connection.vendor, "priceData": pricing.PRICE_DATA_VERSION}


def _encode_cursor(trace: Trace) -> str:
    return base64.urlsafe_b64encode(f"{trace.last_event_at.isoformat()}|{trace.pk}".encode()).decode()


def _decode_cursor(cursor: str) -> Q:
    try:
        when, pk = base64.urlsafe_b64decode(cursor.encode()).decode().rsplit("|", 1)
        when, pk = datetime.fromisoformat(when), int(pk)
    except (ValueError, UnicodeDecodeError):
        raise Invalid([{"field": "cursor", "message": "not a cursor this API gave out", "code": "value_error"}]) from None
    return Q(last_event_at__lt=when) | Q(last_event_at=when, pk__lt=pk)


def filtered_traces(agent: str = "", user: str = "", model: str = "", q: str = "", has_error: bool | None = None):
    """Traces matching the list filters, newest activity first (shared with the pages)."""
    traces = Trace.objects.select_related("agent", "agent_version").order_by("-last_event_at", "-pk")
    if agent:
        traces = traces.filter(agent__name=agent)
    if user:
        traces = traces.filter(external_user_id=user)
    if has_error is not None:
        traces = traces.filter(error_count__gt=0) if has_error else traces.filter(error_count=0)
    if model:
        traces = traces.filter(Exists(Event.objects.filter(trace=OuterRef("pk"), model=model)))
    if q:
        matching = Event.objects.annotate(text=Cast("content", TextField())).filter(trace=OuterRef("pk"), text__icontains=q)
        traces = traces.filter(Q(trace_id__icontains=q) | Exists(matching))
    return traces


@api.get("/traces", summary="Traces, newest activity first, with keyset paging")
def list_traces(request: HttpRequest, agent: str = "", user: str = "", model: str = "", q: str = "",
                has_error: bool | None = None, limit: int = 50, cursor: str = ""):
    limit = max(1, min(limit, 500))
    traces = filtered_traces(agent, user, model, q, has_error)
    try:
        if cursor:
            traces = traces.filter(_decode_cursor(cursor))
    except Invalid as exc:
        return JsonResponse(exc.to_dict(), status=400)
    page = list(traces[: limit + 1])
    more = len(page) > limit
    page = page[:limit]
    return {"traces": [t.summary_dict() for t in page], "next": _encode_cursor(page[-1]) if more else None}


def trace_detail(trace: Trace) -> dict:
    events = [e.to_dict() for e in trace.events.select_related("trace").order_by("step_id", "pk")]
    return {**trace.summary_dict(), "events": events, "spans": tool_spans(events)}


@api.get("/traces/{path:trace_id}", summary="One trace with its events in step order and its tool spans")
def get_trace(request: HttpRequest, trace_id: str):
    trace = Trace.objects.select_related("agent", "agent_version").filter(trace_id=trace_id).first()
    if trace is None:
        return error_response(404, f"No trace with traceId {trace_id!r}")
    return trace_detail(trace)


@api.get("/agents", summary="Agents with their latest version")
def list_agents(request: HttpRequest):
    agents = []
    for agent in Agent.objects.order_by("name"):
        latest = agent.latest_version()
        agents.append({**agent.to_dict(), "latestVersion": latest.to_dict() if latest else None,
                       "traceCount": agent.traces.count()})
    return {"agents": agents}


@api.get("/agents/{path:name}", summary="One agent with all its versions, newest first")
def get_agent(request: HttpRequest, name: str):
    agent = Agent.objects.filter(name=name).first()
    if agent is None:
        return error_response(404, f"No agent named {name!r}")
    versions = [v.to_dict() for v in agent.versions.order_by("-seq")]
    return {**agent.to_dict(), "versions": versions, "traceCount": agent.traces.count()}
