"""A trace as one JSON document (the API's export, ``manage.py export`` / ``import``), and back.

The document holds what a trace is, without what one database numbers its way (event, exchange and
version ids, a version's place in its agent's list): exported again after an import, anywhere, it
is the same document. Raw bodies are text when they are UTF-8, base64 otherwise, byte-exact either way.
"""

import base64
from typing import Any

from django.db import transaction

from ..domain.schemas import EventIn
from ..models import Event, Exchange, Trace
from . import content
from .rows import EventsJob, RowCache, record_jobs, register_agent

FORMAT = "whyops-local trace export"
VERSION = 1
_EVENT_FIELDS = ("eventType", "stepId", "parentStepId", "spanId", "timestamp", "externalUserId", "content",
                 "metadata", "source", "costUsd", "costNote", "idempotencyKey")
_EXCHANGE_FIELDS = ("provider", "method", "path", "status", "requestHeaders", "responseHeaders", "startedAt",
                    "ttfbMs", "totalMs", "interrupted")


def _body(data: bytes) -> dict[str, str]:
    try:
        return {"text": data.decode()}
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode()}


def _bytes(body: dict[str, str]) -> bytes:
    return body["text"].encode() if "text" in body else base64.b64decode(body["base64"])


def _exchange_dict(exchange: Exchange, request: bytes) -> dict[str, Any]:
    as_api = exchange.to_dict()
    return {**{key: as_api[key] for key in _EXCHANGE_FIELDS}, "requestBody": _body(request),
            "responseBody": _body(exchange.response_bytes()), "chunkMarks": exchange.chunk_marks}


def export_trace(trace: Trace) -> dict[str, Any]:
    events = list(trace.events.select_related("trace").order_by("step_id", "pk"))
    exchange_ids = list(dict.fromkeys(e.exchange_id for e in events if e.exchange_id))
    exchanges = {x.pk: x for x in Exchange.objects.filter(pk__in=exchange_ids)}
    content.unpack_exchanges(list(exchanges.values()))
    requests = content.request_bodies(exchange_ids)
    position = {pk: n for n, pk in enumerate(exchange_ids)}
    summary = {k: v for k, v in trace.summary_dict().items() if k != "agentVersion"}
    version = trace.agent_version
    return {
        "format": FORMAT, "version": VERSION,
        "trace": summary,
        "agentVersion": version and {k: v for k, v in version.to_dict().items() if k not in ("id", "version", "createdAt")},
        "events": [{**{k: v for k, v in e.to_dict().items() if k in _EVENT_FIELDS},
                    "exchange": position.get(e.exchange_id)} for e in events],
        "exchanges": [_exchange_dict(exchanges[pk], requests[pk]) for pk in exchange_ids],
    }


def _exchange(data: dict[str, Any]) -> Exchange:
    return Exchange(
        provider=data["provider"], method=data["method"], path=data["path"], status=data["status"],
        request_headers=data["requestHeaders"], response_headers=data["responseHeaders"],
        response_data=_bytes(data["responseBody"]), chunk_marks=data["chunkMarks"],
        started_at=data["startedAt"], ttfb_ms=data["ttfbMs"], total_ms=data["totalMs"], interrupted=data["interrupted"])


def _jobs(document: dict[str, Any]):
    """The events as the writer's jobs: a run of events sharing a source and an exchange is one job."""
    trace, run, key = document["trace"], [], None
    for event in document["events"]:
        fields = {k: event[k] for k in ("eventType", "stepId", "parentStepId", "spanId", "timestamp", "externalUserId",
                                        "content", "metadata", "idempotencyKey")}
        item = EventIn.model_validate({**fields, "traceId": trace["traceId"], "agentName": trace["agentName"]})
        if run and (event["source"], event["exchange"]) != key:
            yield key, run
            run = []
        key = (event["source"], event["exchange"])
        run.append(item)
    if run:
        yield key, run


@transaction.atomic
def import_document(document: dict[str, Any]) -> tuple[str, bool]:
    """Store an exported trace; ``(trace id, stored)``, not stored when the database has it already."""
    if document.get("format") != FORMAT or document.get("version") != VERSION:
        raise ValueError(f"not a {FORMAT} (version {VERSION})")
    trace_id = document["trace"]["traceId"]
    if Trace.objects.filter(trace_id=trace_id).exists():
        return trace_id, False
    if document.get("agentVersion"):
        version = document["agentVersion"]
        # Under the exported hash: "" and an absent description are one version here but hash apart.
        register_agent(document["trace"]["agentName"], {"systemPrompt": version["systemPrompt"],
                                                        "description": version["description"], "tools": version["tools"]},
                       version["versionHash"])
    exchanges: dict[int, Exchange] = {}
    cache = RowCache()  # the trace's newest exchange, the next one's base
    for (source, position), items in _jobs(document):
        exchange, request = None, b""
        if position is not None:
            if position not in exchanges:
                exchanges[position] = _exchange(document["exchanges"][position])
                request = _bytes(document["exchanges"][position]["requestBody"])
            exchange = exchanges[position]
        (outcome,) = record_jobs([EventsJob(items, source=source or Event.SOURCE_SDK, exchange=exchange, request=request)],
                                 cache)
        if isinstance(outcome, Exception):
            raise outcome
    return trace_id, True
