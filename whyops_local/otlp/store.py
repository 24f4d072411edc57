"""Storing an OTLP export: in the writer process, like ingest, so a 2xx means committed.

The writer decodes, maps and validates a request too (``prepare``), unless the server did: it does
for a large export while the writer is busy with others (``views._prepared``). Always done by the
server, that cost more than it spared the writer: one-span requests, server 780 -> 1,260 us a span
and writer 1,650 -> 1,390 (bench/otlp.py --before, CPU a span); one 100-span request at a time,
0.87x the spans/s (one hop more). Each is stored as one ``EventsJob``:
atomic, retried spans skipped by their idempotency keys. What the pure mapping
cannot know is where a span's parent is: the parent's first step, found in the requests being
stored together or among the trace's stored spans (read once, then kept in the writer's cache). A child
that arrives before its parent gets ``parentStepId`` 0 (no step is 0 here) and is pointed at the
parent when the parent is stored, in the same transaction.

A conversation id (``gen_ai.conversation.id``, ``session.id``) may come on any span of an OTel
trace, often the last exported (the root's). Once one has, the OTel trace's spans all go to the
conversation's trace (``OtelConversation`` remembers it): those sent later without it, and those
stored before under the OTel trace id, which are stored again in the conversation's trace (totals,
flags and search with them) and their own trace deleted, announced live like a deletion.
"""

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction

from ..domain.schemas import EventIn, Invalid, validate_event
from ..live import messages as live
from ..models import Event, OtelConversation, Trace
from ..storage import retention
from ..storage.rows import EventsJob, RowCache, Saved, record_jobs
from . import decode, mapping

log = logging.getLogger(__name__)
UNRESOLVED = 0  # the parentStepId of a span whose parent is not stored yet


@dataclass
class Prepared:
    """A request's events, ready to store."""

    position: int  # in its group
    encoding: str
    items: list[EventIn] = field(default_factory=list)
    parents: list[tuple[EventIn, str]] = field(default_factory=list)  # a span's first event, its parent span id
    rejected: int = 0
    reasons: list[str] = field(default_factory=list)
    # OTel trace id -> the conversation's trace id this request named for it, or None (its events then
    # carry the OTel trace id until the writer knows better)
    otel_traces: dict[str, str | None] = field(default_factory=dict)
    moved: list[Any] = field(default_factory=list)  # the live messages of the traces regrouped into a conversation


def _valid(events: list[dict[str, Any]]) -> list[EventIn] | str:
    try:
        return [validate_event(event) for event in events]
    except Invalid as exc:
        return "; ".join(f"{d['field']}: {d['message']}" for d in exc.details)


def prepare(body: bytes, encoding: str, content_encoding: str) -> Prepared:
    """A request's spans as validated events; raises ``Invalid`` for a body that cannot be read at all."""
    plain = decode.inflate(body, content_encoding, settings.WHYOPS_MAX_BODY_BYTES)
    spans = decode.spans(decode.parse_request(plain, encoding))
    prepared = Prepared(0, encoding)
    for shared, members in mapping.grouped(spans):
        otel = members[0].trace_id
        prepared.otel_traces[otel] = shared["traceId"] if shared["traceId"] != otel else None
        for span in members:
            checked = _valid([{**shared, **event} for event in mapping.span_events(span)])
            if isinstance(checked, str):  # refused alone, named in the answer's partialSuccess
                prepared.rejected += 1
                prepared.reasons.append(f"span {span.span_id}: {checked}")
                continue
            if span.parent_id:
                prepared.parents.append((checked[0], span.parent_id))
            prepared.items += checked
    return prepared


def _stored_spans(trace_id: str, cache: RowCache) -> dict[str, int]:
    """The trace's stored spans, span id -> first step: read once, then kept up to date in the cache.

    Asked of the database for each group instead, the lookup (an ORM query per group) was a fifth of
    the writer's time with one span per request (profiled; 13-22% at 8 senders)."""
    if trace_id not in cache.otlp_spans:
        firsts = Event.objects.filter(trace__trace_id=trace_id, source=Event.SOURCE_OTLP,
                                      idempotency_key__endswith=":0")
        cache.otlp_spans[trace_id] = {key.split(":")[1]: step
                                      for key, step in firsts.values_list("idempotency_key", "step_id")}
    return cache.otlp_spans[trace_id]


def _conversation(otel_trace_id: str, cache: RowCache) -> str | None:
    if otel_trace_id not in cache.otlp_conversations:
        named = OtelConversation.objects.filter(pk=otel_trace_id).values_list("trace_id", flat=True)
        cache.otlp_conversations[otel_trace_id] = named.first()
    return cache.otlp_conversations[otel_trace_id]


def _restored(event: Event, trace_id: str, agent: str) -> EventIn:
    """A stored event as the event to store again in another trace, steps and keys kept."""
    return validate_event({
        "eventType": event.event_type, "traceId": trace_id, "agentName": agent, "spanId": event.span_id,
        "stepId": event.step_id, "parentStepId": event.parent_step_id, "timestamp": event.timestamp.isoformat(),
        "externalUserId": event.external_user_id or None, "idempotencyKey": event.idempotency_key,
        "content": event.content, "metadata": event.metadata})


def _move_into(request: Prepared, otel_trace_id: str, conversation: str) -> bool:
    """Have ``request`` store again, in the conversation's trace, the spans stored under the OTel trace
    id before the conversation was named, and delete that trace; False if there were none. They take
    the agent the request names, as they would have had it come with them."""
    trace = Trace.objects.filter(trace_id=otel_trace_id[:128]).first()
    if trace is None:
        return False
    agent = next((item.agentName for item in request.items if item.traceId == conversation), trace.agent.name)
    moved = [_restored(event, conversation, agent) for event in trace.events.order_by("step_id", "id")]
    request.items[:0] = moved
    request.parents += [(item, item.metadata["otel"]["parentSpanId"]) for item in moved
                        if item.parentStepId == UNRESOLVED and "parentSpanId" in item.metadata.get("otel", {})]
    deleted = retention.delete_traces([trace.pk])
    for _, message in deleted:
        message["movedTo"] = conversation  # an open page of it follows (static/js/pages/trace.js)
    request.moved += deleted
    return True


def _regroup(requests: list[Prepared], cache: RowCache) -> None:
    """Send every span of an OTel trace that named a conversation to the conversation's trace."""
    for request in requests:
        for otel, conversation in request.otel_traces.items():
            if conversation is not None and _conversation(otel, cache) is None:
                OtelConversation.objects.create(otel_trace_id=otel, trace_id=conversation)
                if _move_into(request, otel, conversation):
                    cache.clear()  # the moved trace's rows and spans are gone
                cache.otlp_conversations[otel] = conversation
    for request in requests:  # after all of them: one that did not name it may come first
        for otel, conversation in request.otel_traces.items():
            if conversation is None and (named := _conversation(otel, cache)) is not None:
                for item in request.items:
                    if item.traceId == otel:
                        item.traceId = named


def _look_up(prepared: list[Prepared], cache: RowCache) -> list[frozenset]:
    """Resolve each span's first parentStepId (its parent's first step: among these requests, else
    stored, else UNRESOLVED) and return, per request, the idempotency keys not stored yet, so no event
    needs a lookup of its own. A span stored already (all its events were, together) or in several of
    the requests is left to the row writer's own lookup, which finds it stored."""
    known: dict[tuple[str, str], int] = {}
    for request in prepared:
        for item in request.items:
            if item.idempotencyKey.endswith(":0"):
                known.setdefault((item.traceId, item.spanId), item.stepId)
    for request in prepared:
        for item, parent in request.parents:
            step = known.get((item.traceId, parent))
            item.parentStepId = step if step is not None else _stored_spans(item.traceId, cache).get(parent, UNRESOLVED)
    per_request, claimed = [], set()
    for request in prepared:
        mine = {(item.traceId, item.idempotencyKey) for item in request.items
                if item.spanId not in _stored_spans(item.traceId, cache)} - claimed
        claimed |= mine
        per_request.append(frozenset(mine))
    return per_request


def _orphans(trace_id: str, cache: RowCache) -> dict[str, list[int]]:
    """The trace's events waiting for their parent, by parent span id: read once, then kept in the cache."""
    if trace_id not in cache.otlp_orphans:
        waiting: dict[str, list[int]] = defaultdict(list)
        stored = Event.objects.filter(trace__trace_id=trace_id, parent_step_id=UNRESOLVED, source=Event.SOURCE_OTLP)
        for pk, parent in stored.values_list("id", "metadata__otel__parentSpanId"):
            waiting[parent].append(pk)
        cache.otlp_orphans[trace_id] = waiting
    return cache.otlp_orphans[trace_id]


def _adopt_orphans(stored: list[tuple[Prepared, list[Saved]]], cache: RowCache) -> None:
    """Point children stored before their parent (parentStepId 0) at the parent stored now, and
    remember the children stored now whose parent has yet to come."""
    for request, saved in stored:
        for item, result in zip(request.items, saved, strict=True):
            if item.idempotencyKey.endswith(":0") and result.status == "saved":
                _stored_spans(item.traceId, cache)[item.spanId] = item.stepId
                pks = _orphans(item.traceId, cache).pop(item.spanId, None)
                if pks:
                    Event.objects.filter(pk__in=pks).update(parent_step_id=item.stepId)
    for request, saved in stored:
        positions = {id(item): n for n, item in enumerate(request.items)}
        for item, parent in request.parents:
            result = saved[positions[id(item)]]
            if item.parentStepId == UNRESOLVED and result.status == "saved":
                _orphans(item.traceId, cache)[parent].append(result.event.pk)


def _record(jobs: list[EventsJob], cache: RowCache) -> list:
    """``record_jobs``, but the group's requests stored as one job first: a savepoint and a totals
    update per request were most of the writer's time for one-span requests (profiled). Only if that
    fails is each request stored on its own, so one bad request still fails alone."""
    if len(jobs) > 1:
        merged = EventsJob([item for job in jobs for item in job.items], Event.SOURCE_OTLP,
                           new_keys=frozenset().union(*(job.new_keys for job in jobs)))
        try:
            with transaction.atomic():
                (saved,) = record_jobs([merged], cache)
        except Exception:  # noqa: BLE001  (stored one by one below, each failing alone)
            cache.clear()
        else:
            outcomes, start = [], 0
            for job in jobs:
                outcomes.append(saved[start:start + len(job.items)])
                start += len(job.items)
            return outcomes
    return record_jobs(jobs, cache)


def _answer(request: Prepared) -> bytes:
    message = "; ".join(request.reasons)[:2000]
    return decode.export_response(request.rejected, message, request.encoding)


def export_group(tasks: list, cache: RowCache | None = None) -> list[tuple[int, bytes, str, list] | Exception]:
    """Decode, map and store several OTLP export requests in one commit; one answer per request:
    (status, body, content type, live messages) or the exception that failed it."""
    cache = cache or RowCache()
    answers: list[Any] = [None] * len(tasks)
    prepared = []
    for position, task in enumerate(tasks):
        try:
            request = task.prepared or prepare(task.body, task.encoding, task.content_encoding)
            request.position = position
            prepared.append(request)
        except Invalid as exc:
            answers[position] = (exc.status, *decode.error_body(exc, task.encoding), [])
        except Exception as exc:  # noqa: BLE001  (that request's answer, never the writer's end)
            log.exception("could not read an OTLP export")
            answers[position] = exc
    storing = [request for request in prepared if request.items]
    for request in prepared:
        if not request.items:
            answers[request.position] = (200, _answer(request), request.encoding, [])
    if not storing:
        return answers
    try:
        with transaction.atomic():
            cache.revalidate()  # before its spans are looked up in it
            _regroup(storing, cache)
            jobs = [EventsJob(r.items, Event.SOURCE_OTLP, new_keys=keys)
                    for r, keys in zip(storing, _look_up(storing, cache), strict=True)]
            outcomes = _record(jobs, cache)
            if failed := next((o for r, o in zip(storing, outcomes, strict=True)
                               if r.moved and isinstance(o, Exception)), None):
                raise failed  # not a moved trace deleted and its events not stored again
            _adopt_orphans([(r, outcome) for r, outcome in zip(storing, outcomes, strict=True)
                            if not isinstance(outcome, Exception)], cache)
    except Exception as exc:  # noqa: BLE001  (the commit failed: every request in the group fails)
        cache.clear()
        outcomes = [exc] * len(storing)
    for request, outcome in zip(storing, outcomes, strict=True):
        answers[request.position] = outcome if isinstance(outcome, Exception) else (
            200, _answer(request), request.encoding, request.moved + live.announcements(outcome))
    return answers
