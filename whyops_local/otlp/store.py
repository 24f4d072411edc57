"""Storing an OTLP export: run in the writer process, like ingest, so a 2xx means committed.

Each request is decoded and mapped there (off the server's event loop) and stored as one
``EventsJob``: atomic, retried spans skipped by their idempotency keys. What the pure mapping
cannot know is where a span's parent is: the parent's first step, found in the requests being
stored together or among the stored events (by its idempotency key, an indexed lookup). A child
that arrives before its parent gets ``parentStepId`` 0 (no step is 0 here) and is pointed at the
parent when the parent is stored, in the same transaction.
"""

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction

from ..domain.schemas import EventIn, Invalid, validate_event
from ..live import messages as live
from ..models import Event
from ..storage.rows import EventsJob, RowCache, Saved, record_jobs
from . import decode, mapping

log = logging.getLogger(__name__)
UNRESOLVED = 0  # the parentStepId of a span whose parent is not stored yet


@dataclass
class Prepared:
    position: int
    encoding: str
    items: list[EventIn] = field(default_factory=list)
    parents: list[tuple[EventIn, str]] = field(default_factory=list)  # a span's first event, its parent span id
    rejected: int = 0
    reasons: list[str] = field(default_factory=list)


def _valid(events: list[dict[str, Any]]) -> list[EventIn] | str:
    try:
        return [validate_event(event) for event in events]
    except Invalid as exc:
        return "; ".join(f"{d['field']}: {d['message']}" for d in exc.details)


def _prepare(position: int, body: bytes, encoding: str, content_encoding: str) -> Prepared:
    plain = decode.inflate(body, content_encoding, settings.WHYOPS_MAX_BODY_BYTES)
    spans = decode.spans(decode.parse_request(plain, encoding))
    prepared = Prepared(position, encoding)
    for shared, members in mapping.grouped(spans):
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


def _stored_steps(wanted: dict[str, set[str]]) -> dict[tuple[str, str], int]:
    """(trace id, idempotency key) -> step of those already stored: one query for every trace of the group."""
    keys = set().union(*wanted.values())
    stored = Event.objects.filter(trace__trace_id__in=list(wanted), idempotency_key__in=keys)
    return {(trace_id, key): step for trace_id, key, step in stored.values_list("trace__trace_id", "idempotency_key",
                                                                               "step_id")
            if key in wanted[trace_id]}


def _look_up(prepared: list[Prepared]) -> list[frozenset]:
    """Resolve each span's first parentStepId (its parent's first step: among these requests, else
    stored, else UNRESOLVED) and return, per request, the idempotency keys not stored yet, so no event
    needs a lookup of its own. A key in several of the requests is left to the first; the others look
    it up once it is stored."""
    known: dict[tuple[str, str], int] = {}
    wanted: dict[str, set[str]] = defaultdict(set)
    for request in prepared:
        for item in request.items:
            wanted[item.traceId].add(item.idempotencyKey)
            if item.idempotencyKey.endswith(":0"):
                known[(item.traceId, item.spanId)] = item.stepId
    for request in prepared:
        for item, parent in request.parents:
            if (item.traceId, parent) not in known:
                wanted[item.traceId].add(f"otlp:{parent}:0")
    stored = _stored_steps(wanted)
    for (trace_id, key), step in stored.items():
        known.setdefault((trace_id, key.split(":")[1]), step)
    for request in prepared:
        for item, parent in request.parents:
            item.parentStepId = known.get((item.traceId, parent), UNRESOLVED)
    per_request, given = [], set(stored)
    for request in prepared:
        mine = {(item.traceId, item.idempotencyKey) for item in request.items} - given
        given |= mine
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
            prepared.append(_prepare(position, task.body, task.encoding, task.content_encoding))
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
            jobs = [EventsJob(r.items, Event.SOURCE_OTLP, new_keys=keys)
                    for r, keys in zip(storing, _look_up(storing), strict=True)]
            outcomes = _record(jobs, cache)
            _adopt_orphans([(r, outcome) for r, outcome in zip(storing, outcomes, strict=True)
                            if not isinstance(outcome, Exception)], cache)
    except Exception as exc:  # noqa: BLE001  (the commit failed: every request in the group fails)
        cache.clear()
        outcomes = [exc] * len(storing)
    for request, outcome in zip(storing, outcomes, strict=True):
        answers[request.position] = outcome if isinstance(outcome, Exception) else (
            200, _answer(request), request.encoding, live.announcements(outcome))
    return answers
