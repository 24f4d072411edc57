"""The WhyOps ingest API and whyops-local's read API (protocol sections 2-4 and 6)."""

import base64
from datetime import datetime

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db.models import Exists, OuterRef, Q, Subquery, TextField
from django.db.models.functions import Cast
from django.http import HttpRequest, HttpResponse, JsonResponse
from ninja import NinjaAPI

from . import pricing
from .models import Agent, Event, Trace
from .spans import tool_spans
from .ingest import api_key_error, ingest, too_large
from .store import register_agent
from .totals import as_api, no_events, totals, totals_by
from .writer import write
from .validation import AgentInitIn, EventIn, Invalid, parse_agent_init

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
    error = api_key_error(request.headers)
    return error_response(401, error) if error else None


def read_body(request: HttpRequest) -> bytes:
    try:
        body = request.body
    except RequestDataTooBig:
        raise too_large() from None
    if len(body) > settings.WHYOPS_MAX_BODY_BYTES:
        raise too_large()
    return body


def _schema_of(model) -> dict:
    return {"content": {"application/json": {"schema": model.model_json_schema(ref_template="#/components/schemas/{model}")}}}


async def agent_init(request: HttpRequest) -> JsonResponse:
    if refusal := key_refusal(request):
        return refusal
    try:
        payload = parse_agent_init(read_body(request))
    except Invalid as exc:
        return JsonResponse(exc.to_dict(), status=exc.status)
    registration = await write(register_agent, payload.agentName, payload.metadata_dict())
    return JsonResponse(registration.to_dict(), status=201 if registration.created else 200)


@api.post("/entities/init", openapi_extra={"requestBody": _schema_of(AgentInitIn)},
          summary="Register an agent and its version (created 201, existing 200)")
async def entities_init(request: HttpRequest):
    return await agent_init(request)


@api.post("/events/ingest", openapi_extra={"requestBody": _schema_of(EventIn)},
          summary="Ingest one event or a JSON array of them, atomically")
async def events_ingest(request: HttpRequest):
    # Served by ingest.IngestFastPath under ASGI; this view documents it and answers the test client.
    try:
        body = read_body(request)
    except Invalid as exc:
        return JsonResponse(exc.to_dict(), status=exc.status)
    status, answer = await ingest(body, request.headers)
    return HttpResponse(answer, status=status, content_type="application/json")


@api.get("/health", summary="Liveness and versions")
async def health(request: HttpRequest):
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


def keyset_page(traces, limit: int, cursor: str = "") -> tuple[list[Trace], str | None]:
    """Up to ``limit`` of ``traces`` (newest activity first) after ``cursor``, and the next page's cursor.

    Raises ``Invalid`` for a cursor this API did not give out (shared with the list page)."""
    if cursor:
        traces = traces.filter(_decode_cursor(cursor))
    rows = list(traces[: limit + 1])
    return rows[:limit], (_encode_cursor(rows[limit - 1]) if len(rows) > limit else None)


def filtered_traces(agent: str = "", user: str = "", model: str = "", q: str = "", has_error: bool | None = None,
                    changed_after: int | None = None):
    """Traces matching the list filters, newest activity first (shared with the pages), each with
    ``last_seq``: the live-update sequence number of its newest event."""
    newest_event = Event.objects.filter(trace=OuterRef("pk")).order_by("-pk").values("pk")[:1]
    traces = (Trace.objects.select_related("agent", "agent_version").order_by("-last_event_at", "-pk")
              .annotate(last_seq=Subquery(newest_event)))
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
    if changed_after is not None:
        traces = traces.filter(Exists(Event.objects.filter(trace=OuterRef("pk"), pk__gt=changed_after)))
    return traces


@api.get("/traces", summary="Traces, newest activity first, with keyset paging")
def list_traces(request: HttpRequest, agent: str = "", user: str = "", model: str = "", q: str = "",
                has_error: bool | None = None, limit: int = 50, cursor: str = "", changed_after: int | None = None):
    """``changed_after=<seq>``: only traces with events stored after that live-update sequence number
    (what a reconnecting page missed). Each trace's ``lastSeq`` is the newest of its events' sequence."""
    limit = max(1, min(limit, 500))
    traces = filtered_traces(agent, user, model, q, has_error, changed_after)
    try:
        page, next_cursor = keyset_page(traces, limit, cursor)
    except Invalid as exc:
        return JsonResponse(exc.to_dict(), status=400)
    return {"traces": [{**t.summary_dict(), "lastSeq": t.last_seq} for t in page], "next": next_cursor}


def trace_detail(trace: Trace, after: int | None = None) -> dict:
    events = trace.events.select_related("trace").order_by("step_id", "pk")
    if after is not None:
        events = events.filter(pk__gt=after)
    dicts = [e.to_dict() for e in events]
    return {**trace.summary_dict(), "events": dicts, "spans": tool_spans(dicts)}


@api.get("/traces/{path:trace_id}", summary="One trace with its events in step order and its tool spans")
def get_trace(request: HttpRequest, trace_id: str, after: int | None = None):
    """``after=<seq>``: only the events stored after that live-update sequence number (an event's ``id``)."""
    trace = Trace.objects.select_related("agent", "agent_version").filter(trace_id=trace_id).first()
    if trace is None:
        return error_response(404, f"No trace with traceId {trace_id!r}")
    return trace_detail(trace, after)


@api.get("/agents", summary="Agents with their latest version")
def list_agents(request: HttpRequest):
    agents = []
    for agent in Agent.objects.order_by("name"):
        latest = agent.latest_version()
        agents.append({**agent.to_dict(), "latestVersion": latest.to_dict() if latest else None,
                       "traceCount": agent.traces.count()})
    return {"agents": agents}


@api.get("/agents/{path:name}", summary="One agent with all its versions, newest first, and their totals")
def get_agent(request: HttpRequest, name: str):
    agent = Agent.objects.filter(name=name).first()
    if agent is None:
        return error_response(404, f"No agent named {name!r}")
    per_version = totals_by(agent.events.all(), "agent_version")
    versions = [{**v.to_dict(), "totals": as_api(per_version.get(v.id, no_events()))}
                for v in agent.versions.order_by("-seq")]
    return {**agent.to_dict(), "versions": versions, "traceCount": agent.traces.count(),
            "totals": as_api(totals(agent.events.all()))}


@api.get("/users/{path:external_user_id}", summary="An external user's totals and their traces")
def get_user(request: HttpRequest, external_user_id: str, limit: int = 50):
    events = Event.objects.filter(trace__external_user_id=external_user_id)
    traces = filtered_traces(user=external_user_id)[: max(1, min(limit, 500))]
    return {"externalUserId": external_user_id, "totals": as_api(totals(events)),
            "traces": [t.summary_dict() for t in traces]}


@api.get("/models", summary="Totals per model over every LLM call and embedding")
def list_models(request: HttpRequest):
    per_model = totals_by(Event.objects.exclude(model=""), "model")
    return {"priceData": pricing.PRICE_DATA_VERSION,
            "models": [{"model": model, **as_api(figures)} for model, figures in sorted(per_model.items())]}
