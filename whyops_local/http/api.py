"""The WhyOps ingest API and whyops-local's read API (docs/whyops-protocol.md §2-4, §6)."""

from asgiref.sync import sync_to_async
from django.db import DatabaseError
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, JsonResponse
from ninja import NinjaAPI

from ..domain import flags as flag_rules
from ..domain import pricing
from ..domain.schemas import AgentInitIn, EventIn, Invalid, parse_agent_init
from ..domain.spans import tool_spans
from ..live.messages import publish_soon
from ..models import Agent, Event, Trace
from ..pages.standalone import export_file
from ..storage import retention
from ..storage.faults import Unstored, read_fault
from ..storage.rows import register_agent
from ..storage.snapshot import snapshot
from ..storage.totals import as_api, no_events, totals, totals_by
from ..storage.writer import backlog, write
from . import analysis
from .guards import error_response, read_body
from .ingest import ingest

api = NinjaAPI(
    title="whyops-local",
    version="1",
    description="The WhyOps event API (agent registration, event ingest) and whyops-local's read API.",
    docs_url="/docs",
    urls_namespace="api",
)


@api.exception_handler(Unstored)
def unstored(request: HttpRequest, exc: Unstored) -> JsonResponse:
    """A write the database could not take (a full disk: 507; read-only, gone, writer stopped: 503)."""
    return error_response(exc.status, str(exc))


def _schema_of(model) -> dict:
    return {"content": {"application/json": {"schema": model.model_json_schema(ref_template="#/components/schemas/{model}")}}}


async def agent_init(request: HttpRequest) -> JsonResponse:
    try:
        payload = parse_agent_init(read_body(request))
    except Invalid as exc:
        return JsonResponse(exc.to_dict(), status=exc.status)
    try:
        registration = await write(register_agent, payload.agentName, payload.metadata_dict())
    except Unstored as exc:  # also served outside the ninja API, at /proxy/v1/agents/init
        return unstored(request, exc)
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


@api.get("/health", summary="Liveness, versions, the data's size and counts, and writes held or dropped")
async def health(request: HttpRequest):
    """``degraded`` while proxied calls' records the database refused wait to be stored, or once some
    were dropped (``unstoredWaiting``, ``unstoredDropped``); with the database unreadable, that is
    still said, beside the 503's error."""
    from django.db import connection

    held = backlog()
    about = {"status": "degraded" if any(held.values()) else "ok", "database": connection.vendor,
             "priceData": pricing.PRICE_DATA_VERSION, **held}
    try:
        return {**about, **await sync_to_async(retention.data_figures)()}
    except DatabaseError as exc:
        if (fault := read_fault(exc)) is None:
            raise
        return error_response(fault.status, str(fault), extra={**about, "status": "unavailable"})


@api.get("/traces", summary="Traces, newest activity first, with keyset paging")
def list_traces(request: HttpRequest, agent: str = "", user: str = "", model: str = "", q: str = "",
                has_error: bool | None = None, limit: int = 50, cursor: str = "", changed_after: int | None = None,
                flag: str = ""):
    """``changed_after=<seq>``: only traces with events stored after that live-update sequence number
    (what a reconnecting page missed). Each trace's ``lastSeq`` is the newest of its events' sequence.
    ``flag=<kind>``: only traces with that flag (``tool_loop``, ``truncated``, ...)."""
    if flag and flag not in flag_rules.KINDS:
        return error_response(400, "Validation failed", [{"field": "flag", "code": "value_error",
                                                          "message": f"one of {', '.join(flag_rules.KINDS)}"}])
    limit = max(1, min(limit, 500))
    traces = Trace.objects.filtered(agent, user, model, q, has_error, changed_after, flag)
    try:
        page, next_cursor = traces.keyset_page(limit, cursor)
    except Invalid as exc:
        return JsonResponse(exc.to_dict(), status=400)
    return {"traces": [{**t.summary_dict(), "lastSeq": t.last_seq} for t in page], "next": next_cursor}


def trace_detail(trace: Trace, after: int | None = None) -> dict:
    events = trace.events.select_related("trace").order_by("step_id", "pk")
    if after is not None:
        events = events.filter(pk__gt=after)
    dicts = [e.to_dict() for e in events]
    return {**trace.summary_dict(), "events": dicts, "spans": tool_spans(dicts), "flags": trace.flags()}


# Before /traces/{path:trace_id}, which would take the whole rest of the path as the trace id.
@api.get("/traces/{path:trace_id}/steps/{step_id}/context",
         summary="What changed in the prompt since the trace's previous LLM call")
def get_step_context(request: HttpRequest, trace_id: str, step_id: int):
    """``stepId``: an LLM response or the request before it. Messages appended, removed and edited, whether the
    system prompt or the tools changed, and the prompt tokens of both calls."""
    return analysis.step_context(trace_id, step_id)


@api.get("/compare", summary="Two runs aligned step by step, their first divergence and the differences in totals")
def compare_traces(request: HttpRequest, a: str = "", b: str = ""):
    return analysis.compare(a, b)


@api.get("/traces/{path:trace_id}/export", summary="One trace as a JSON document (events, raw exchanges, agent "
         "version), for `manage.py import`; `?format=html`: one self-contained HTML file")
def export_trace(request: HttpRequest, trace_id: str, format: str = "json"):
    if format not in ("json", "html"):
        return error_response(400, "Validation failed", [{"field": "format", "message": "json or html", "code": "value_error"}])
    document = export_file(trace_id, html=format == "html")
    if document is None:
        return error_response(404, f"No trace with traceId {trace_id!r}")
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in trace_id)[:80]
    if format == "html":
        return HttpResponse(document, content_type="text/html; charset=utf-8",
                            headers={"Content-Disposition": f'attachment; filename="{name}.html"'})
    return HttpResponse(document, content_type="application/json",
                        headers={"Content-Disposition": f'attachment; filename="{name}.json"'})


@api.delete("/traces/{path:trace_id}", response={204: None}, summary="Delete a trace: its events, raw exchanges and messages")
async def delete_trace(request: HttpRequest, trace_id: str):
    messages = await write(retention.delete_trace_named, trace_id)
    if messages is None:
        return error_response(404, f"No trace with traceId {trace_id!r}")
    publish_soon(messages)
    return 204, None


@api.get("/traces/{path:trace_id}", summary="One trace with its events in step order and its tool spans")
def get_trace(request: HttpRequest, trace_id: str, after: int | None = None):
    """``after=<seq>``: only the events stored after that live-update sequence number (an event's ``id``)."""
    with snapshot():
        trace = Trace.objects.select_related("agent", "agent_version").filter(trace_id=trace_id).first()
        if trace is None:
            return error_response(404, f"No trace with traceId {trace_id!r}")
        return trace_detail(trace, after)


@api.get("/agents", summary="Agents with their latest version")
def list_agents(request: HttpRequest):
    agents = Agent.objects.order_by("name").with_latest_version().annotate(trace_count=Count("traces"))
    return {"agents": [{**agent.to_dict(), "latestVersion": (latest := agent.latest_version()) and latest.to_dict(),
                        "traceCount": agent.trace_count} for agent in agents]}


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
    traces = Trace.objects.filtered(user=external_user_id)[: max(1, min(limit, 500))]
    return {"externalUserId": external_user_id, "totals": as_api(totals(events)),
            "traces": [t.summary_dict() for t in traces]}


@api.get("/models", summary="Totals per model (provider/name, however spelled) over every LLM call and embedding")
def list_models(request: HttpRequest):
    per_model = totals_by(Event.objects.exclude(model=""), "provider", "model")
    return {"priceData": pricing.PRICE_DATA_VERSION, "models": [
        {"model": pricing.model_name(provider, model), "provider": provider, "name": model,
         "family": pricing.model_name(provider, pricing.family(provider, model)), **as_api(figures)}
        for (provider, model), figures in sorted(per_model.items())]}
