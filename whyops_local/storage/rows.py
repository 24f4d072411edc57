"""Writing agents, versions, traces and events: one transaction per request, totals kept on the trace."""

import sqlite3
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from operator import itemgetter
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, connections, models, transaction
from django.db.models.base import ModelState
from django.utils import timezone

from ..domain import jsontext, pricing, versioning
from ..domain.events import LLM_EVENTS, PRICED_EVENTS, TOOL_SPAN_STARTS
from ..domain.schemas import EventIn
from ..domain.versioning import version_hash
from ..models import TOKEN_COLUMNS, Agent, AgentVersion, Event, Exchange, Trace
from . import flagging, search
from .content import Known, Listed, pack_events, patch_metadata, restore, save_exchange, unpatch_metadata


@dataclass
class Registration:
    agent: Agent
    version: AgentVersion
    created: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "success": True,
            "agentId": self.agent.id,
            "agentVersionId": self.version.id,
            "status": "created" if self.created else "existing",
            "versionHash": self.version.version_hash,
        }


def _agent(name: str) -> Agent:
    agent = Agent.objects.filter(name=name).first()
    if agent is None:
        try:
            with transaction.atomic():
                agent = Agent.objects.create(name=name)
        except IntegrityError:  # created meanwhile by a concurrent request (PostgreSQL)
            agent = Agent.objects.get(name=name)
    return agent


def _version(agent: Agent, metadata: dict[str, Any], digest: str | None = None) -> tuple[AgentVersion, bool]:
    """The agent's version for this metadata: an existing one (even an older one) or a new one.
    ``digest``: the version's hash as another database computed it (an import), else computed here."""
    digest = digest or version_hash(metadata)
    version = agent.versions.filter(version_hash=digest).first()
    if version is not None:
        return version, False
    last = agent.versions.order_by("-seq").values_list("seq", flat=True).first() or 0
    version = AgentVersion.objects.create(
        agent=agent,
        seq=last + 1,
        version_hash=digest,
        system_prompt=jsontext.storable_text(metadata.get("systemPrompt") or ""),
        description=jsontext.storable_text(metadata.get("description") or ""),
        tools=metadata.get("tools") or [],
    )
    return version, True


def _definition(version: AgentVersion) -> versioning.Definition:
    return versioning.definition(version.id, version.seq, version.system_prompt, version.tools, version.description)


@transaction.atomic
def register_agent(name: str, metadata: dict[str, Any], digest: str | None = None) -> Registration:
    agent = _agent(name)
    version, created = _version(agent, metadata, digest)
    return Registration(agent, version, created)


@dataclass
class Saved:
    event: Event
    status: str  # "saved" or "skipped"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.event.pk,
            "status": self.status,
            "stepId": self.event.step_id,
            "parentStepId": self.event.parent_step_id,
            "spanId": self.event.span_id,
        }


class RowCache:
    """Agents, traces and latest versions read or written in a transaction, so an array of events
    costs one lookup per agent and trace.

    The writer process keeps one across transactions, which spares most queries of a single-event
    request: on SQLite it stays valid while no other connection commits, which ``PRAGMA
    data_version`` tells (checked inside the write transaction, when no one else can commit).
    """

    MAX_TRACES = 10_000

    def __init__(self) -> None:
        self.data_version: int | None = None
        self.clear()

    def clear(self) -> None:
        self.agents: dict[str, Agent] = {}
        self.latest_versions: dict[str, str | None] = {}
        self.definitions: dict[str, versioning.Definitions] = {}  # by agent id
        self.traces: dict[str, Trace] = {}
        self.requests: dict[str, Known] = {}  # trace id -> its newest proxied request body (content.py)
        self.message_lists: dict[int, Listed | None] = {}  # trace pk -> its newest packed message list
        self.blobs: dict[int, dict[bytes, int]] = {}  # trace pk -> its stored messages' digests and ids
        # (trace pk, event type) -> its first event's (pk, stored metadata), or that event still unsaved
        self.metadata_bases: dict[tuple[int, str], Any] = {}
        # trace id -> {parent span id -> ids of events waiting for that parent} (otlp/store.py)
        self.otlp_orphans: dict[str, dict[str, list[int]]] = {}
        self.otlp_spans: dict[str, dict[str, int]] = {}  # trace id -> {stored span id -> its first step}
        self.otlp_conversations: dict[str, str | None] = {}  # OTel trace id -> its conversation's trace id

    def revalidate(self) -> None:
        """Forget what may have changed since the last transaction; call inside a write transaction."""
        if connection.vendor != "sqlite" or len(self.traces) > self.MAX_TRACES:
            self.clear()
            return
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA data_version")
            (version,) = cursor.fetchone()
        if version != self.data_version:
            self.clear()
            self.data_version = version

    def agent(self, name: str) -> Agent:
        if name not in self.agents:
            self.agents[name] = _agent(name)
        return self.agents[name]

    def version_id(self, agent: Agent, trace: Trace, metadata: dict[str, Any]) -> str | None:
        # An event saying the agent's system prompt or tools (a proxied call, a user_message) belongs to
        # the registered version they match, or makes a new one; other events belong to their trace's
        # version, and the first event of a trace to the agent's latest.
        prompt, tools = versioning.said_prompt(metadata.get("systemPrompt")), versioning.said_tools(metadata.get("tools"))
        if prompt is None and tools is None:
            return self._trace_or_latest_version(agent, trace)
        known = self._definitions(agent)
        found = known.match(prompt, tools)
        if found is None:
            config = {k: metadata.get(k) for k in ("systemPrompt", "tools", "description")}
            try:
                with transaction.atomic():
                    version = _version(agent, config)[0]
            except (IntegrityError, TypeError, AttributeError):
                return self._trace_or_latest_version(agent, trace)  # too malformed to be a version; still counts
            known.add(_definition(version))
            found = version.id
        self.latest_versions[agent.name] = found
        return found

    def _definitions(self, agent: Agent) -> versioning.Definitions:
        if agent.id not in self.definitions:
            self.definitions[agent.id] = versioning.Definitions(map(_definition, agent.versions.all()))
        return self.definitions[agent.id]

    def _trace_or_latest_version(self, agent: Agent, trace: Trace) -> str | None:
        if trace.agent_id == agent.id and trace.agent_version_id is not None:
            return trace.agent_version_id
        if agent.name not in self.latest_versions:
            self.latest_versions[agent.name] = agent.versions.order_by("-seq").values_list("id", flat=True).first()
        return self.latest_versions[agent.name]

    def trace(self, event: EventIn, agent: Agent, when: datetime) -> Trace:
        trace = self.traces.get(event.traceId)
        if trace is None:
            # The plainest query the ORM makes here: with select_related and first() it cost twice as much
            # (~0.5 ms, measured), on every call of a new proxied conversation.
            found = Trace.objects.filter(trace_id=event.traceId)
            if connection.features.has_select_for_update:  # PostgreSQL, where other servers may write
                found = found.select_for_update()
            trace = next(iter(found[:1]), None)
            if trace is not None and trace.agent_id == agent.id:
                trace.agent = agent  # for the live update's trace summary, without a query
            if trace is None:
                try:
                    with transaction.atomic():
                        trace = Trace.objects.create(
                            trace_id=event.traceId, agent=agent, started_at=when, last_event_at=when
                        )
                except IntegrityError:  # created meanwhile by a concurrent request (PostgreSQL)
                    trace = Trace.objects.select_for_update().get(trace_id=event.traceId)
            self.traces[event.traceId] = trace
        return trace


def _existing(trace: Trace, key: str | None) -> Event | None:
    if key is None:
        return None
    return Event.objects.filter(trace=trace, idempotency_key=key).first()


def _next_step(trace: Trace, event: EventIn) -> tuple[int, int | None]:
    if event.stepId is None:
        step = (trace.max_step or 0) + 1
        parent = event.parentStepId if event.parentStepId is not None else trace.max_step
    else:
        step = event.stepId
        parent = event.parentStepId if event.parentStepId is not None else (step - 1 if step > 1 else None)
    trace.max_step = step if trace.max_step is None else max(trace.max_step, step)
    return step, parent


def _token_columns(tokens: pricing.Tokens) -> dict[str, int]:
    return {"input_tokens": tokens.input, "cache_read_tokens": tokens.cache_read,
            "cache_write_tokens": tokens.cache_write, "cache_write_1h_tokens": tokens.cache_write_1h,
            "output_tokens": tokens.output, "reasoning_tokens": tokens.reasoning, "total_tokens": tokens.total}


_TOKEN_FIELDS = TOKEN_COLUMNS


# The trace columns _add_to_trace and _next_step change.
_TRACE_TOTALS = (
    "started_at", "last_event_at", "max_step", "event_count", "error_count", "llm_calls", "tool_calls",
    *_TOKEN_FIELDS, "model_names", "cost_usd", "unpriced_count", "external_user_id", "agent_version_id",
    *flagging.FLAG_COLUMNS,
)


def _add_to_trace(trace: Trace, event: Event) -> None:
    # Through the instances' __dict__, where every column is (as _db_values reads them): attribute
    # reads and writes of the model went through descriptors, 3.4 us an event against 1.8 (measured).
    totals, values = trace.__dict__, event.__dict__
    kind, when = values["event_type"], values["timestamp"]
    if when < totals["started_at"]:
        totals["started_at"] = when
    if when > totals["last_event_at"]:
        totals["last_event_at"] = when
    totals["event_count"] += 1
    totals["error_count"] += kind == "error"
    totals["llm_calls"] += kind in LLM_EVENTS
    totals["tool_calls"] += kind in TOOL_SPAN_STARTS
    for field in _TOKEN_FIELDS:
        totals[field] += values[field]
    if values["model"]:
        name = pricing.model_name(values["provider"], values["model"])
        if name not in totals["model_names"]:
            totals["model_names"] = [*totals["model_names"], name]
    if kind in PRICED_EVENTS:
        if values["cost_usd"] is None:
            totals["unpriced_count"] += 1
        else:
            totals["cost_usd"] = (totals["cost_usd"] or 0) + values["cost_usd"]
    if values["external_user_id"] and not totals["external_user_id"]:
        totals["external_user_id"] = values["external_user_id"]
    if values["agent_version_id"]:
        totals["agent_version_id"] = values["agent_version_id"]


def _build_event(batch: RowCache, item: EventIn, *, source: str, user: str | None, exchange: Exchange | None,
                 now: datetime, known_new: bool = False) -> Event | Saved:
    agent = batch.agent(item.agentName)
    when = item.timestamp or now
    trace = batch.trace(item, agent, when)
    duplicate = None if known_new else _existing(trace, item.idempotencyKey)
    if duplicate is not None:
        return Saved(duplicate, "skipped")
    metadata = item.metadata or {}
    usage = item.usage
    step, parent = _next_step(trace, item)
    # A model is known by its provider and canonical name: "openai/gpt-4o-mini" is gpt-4o-mini from openai.
    provider, model = pricing.split_model(
        metadata.get("provider") if isinstance(metadata.get("provider"), str) else "",
        metadata.get("model") if isinstance(metadata.get("model"), str) else "")
    tokens, problem = pricing.read_usage(provider, model, item.eventType, usage)
    cost = note = None
    if item.eventType in PRICED_EVENTS:
        price = (pricing.Price(None, problem) if problem
                 else pricing.price_tokens(provider, model, tokens, settings.WHYOPS_PRICES_FILE))
        cost, note = price.cost_usd, price.note
    return _new_event(
        {"trace": trace, "agent": agent, "exchange": exchange},
        agent_version_id=batch.version_id(agent, trace, metadata),
        event_type=item.eventType,
        step_id=step,
        parent_step_id=parent,
        span_id=item.spanId or str(uuid.uuid4()),
        timestamp=when,
        external_user_id=item.externalUserId or user,
        idempotency_key=item.idempotencyKey,
        content=item.content,
        metadata=metadata,
        source=source,
        model=model,
        provider=provider,
        latency_ms=metadata.get("latencyMs"),
        cost_usd=cost,
        cost_note=note or "",
        counted=True,
        packing=None,
        **_token_columns(tokens),
    )


def _new_event(related: dict[str, Any], **values: Any) -> Event:
    """An unsaved Event from clean values for every column, as ``Event(**values)`` would make it.

    Model.__init__ spends ~20 us per event resolving keyword arguments field by field (measured);
    the hot path already has every value in its final form.
    """
    event = Event.__new__(Event)
    event._state = ModelState()
    event.__dict__.update(values, id=None, **{f"{name}_id": obj.pk if obj else None for name, obj in related.items()})
    event._state.fields_cache.update(related)  # event.trace etc. without a query, as __init__ leaves them
    return event


@dataclass
class EventsJob:
    """One request's events and where they came from; ``user`` is the header's external user id,
    used where an event names none. An unsaved ``exchange`` (its headers and response body whole) is
    saved along with the events, with its ``request`` body (storage/content.py ``save_exchange``)."""

    items: list[EventIn]
    source: str = Event.SOURCE_SDK
    user: str | None = None
    exchange: Exchange | None = None
    request: bytes = b""
    # (traceId, idempotencyKey) pairs the caller found unstored in this transaction, spared a lookup each
    new_keys: frozenset = frozenset()


# The ingest hot path writes events and trace totals with plain statements built from the models'
# own field lists: Django's insert and update compilers spent half of a request's writer time on
# them (profiled). Values go to the database as get_db_prep_save would send them, through the
# converters below, chosen once per field and database (their parity is tested).
_EVENT_FIELDS = tuple(f for f in Event._meta.concrete_fields if not f.primary_key)
_TOTAL_FIELDS = tuple(Trace._meta.get_field(name) for name in _TRACE_TOTALS)
# Columns whose database value is the validated Python value itself (str, int, float, bool, a
# foreign key's id): their get_db_prep_save would only convert a value to its own type.
_AS_IS = {models.CharField, models.BigIntegerField, models.PositiveIntegerField, models.PositiveSmallIntegerField,
          models.FloatField, models.BooleanField, models.ForeignKey}


def _sqlite_json(value: Any, db) -> str | None:
    # JSONField stores None as SQL NULL and anything else as JSON text (DatabaseOperations.adapt_json_value).
    return None if value is None else jsontext.dumps(value)


def _sqlite_datetime(value: datetime | None, db) -> str | None:
    # An aware datetime as SQLite's adapt_datetimefield_value stores it: naive UTC, str().
    if value is None:  # said at once: building the field below for a NULL was 7% of an OTLP writer's time (profiled)
        return None
    if value.tzinfo is None:
        return models.DateTimeField().get_db_prep_save(value, db)
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(" ")[:-6]  # str() of it naive, without "+00:00": half the time of replace() and str()


def _converter(field: models.Field, vendor: str):
    if type(field) in _AS_IS:
        return None
    if vendor == "sqlite" and isinstance(field, models.JSONField) and field.encoder is None:
        return _sqlite_json
    if vendor == "sqlite" and type(field) is models.DateTimeField and settings.USE_TZ:
        return _sqlite_datetime
    return field.get_db_prep_save


@lru_cache(maxsize=8)
def _row_reader(fields: tuple, vendor: str) -> tuple[itemgetter, tuple]:
    """What reads ``fields`` off an instance's __dict__ at once, and the (position, converter) pairs of
    the few columns that need converting."""
    converting = tuple((i, convert) for i, f in enumerate(fields) if (convert := _converter(f, vendor)))
    return itemgetter(*(f.attname for f in fields)), converting


def _db_values(fields: tuple, objects: list, db) -> list:
    """The database values of ``fields`` of each of ``objects``, in order (what save() would send)."""
    # Read from each instance's __dict__: a foreign key's attribute is a data descriptor, a Python
    # call per read. Every column is there (the hot path's events and fully loaded traces).
    read, converting = _row_reader(fields, db.vendor)
    values = []
    for row in map(vars, objects):
        columns = list(read(row))
        for position, convert in converting:
            columns[position] = convert(columns[position], db)
        values += columns
    return values


def _db():
    # The connection itself: every attribute read through the ``connection`` proxy is a
    # thread-local lookup, thousands of them per request here.
    return connections[DEFAULT_DB_ALIAS]


@lru_cache(maxsize=64)
def _insert_sql(vendor: str, rows: int) -> str:
    quote = _db().ops.quote_name
    columns = ", ".join(quote(f.column) for f in _EVENT_FIELDS)
    row = "(" + ", ".join(["?" if vendor == "sqlite" else "%s"] * len(_EVENT_FIELDS)) + ")"
    return (f"INSERT INTO {quote(Event._meta.db_table)} ({columns}) VALUES {', '.join([row] * rows)}"
            f" RETURNING {quote(Event._meta.pk.column)}")


def _execute(db, cursor, sql: str, params: list) -> None:
    """``cursor.execute``, but on SQLite ``sql`` is in sqlite3's own style ("?") and goes to sqlite3 as
    it is: Django's cursor rewrites each "%s" with a regex first, 2.5 ms for a 400-row insert (6 us
    an event, measured)."""
    if db.vendor != "sqlite":
        cursor.execute(sql, params)
        return
    with db.wrap_database_errors:
        sqlite3.Cursor.execute(cursor.cursor, sql, params)


def _insert(events: list[Event]) -> None:
    """``bulk_create`` for the hot path: multi-row ``INSERT ... RETURNING``, setting each pk."""
    db = _db()
    if not events or not db.features.can_return_rows_from_bulk_insert:
        Event.objects.bulk_create(events)
        return
    # Both SQLite and PostgreSQL cap a statement's parameters; stay well under SQLite's 32766.
    rows_per_statement = max(1, 30000 // len(_EVENT_FIELDS))
    with db.cursor() as cursor:
        for start in range(0, len(events), rows_per_statement):
            chunk = events[start:start + rows_per_statement]
            _execute(db, cursor, _insert_sql(db.vendor, len(chunk)), _db_values(_EVENT_FIELDS, chunk, db))
            for event, (pk_value,) in zip(chunk, cursor.fetchall(), strict=True):
                event.pk = pk_value
                event._state.adding = False


@lru_cache(maxsize=4)
def _totals_sql(vendor: str) -> str:
    quote = _db().ops.quote_name
    assignments = ", ".join(f"{quote(f.column)} = %s" for f in _TOTAL_FIELDS)
    return f"UPDATE {quote(Trace._meta.db_table)} SET {assignments} WHERE {quote(Trace._meta.pk.column)} = %s"


def _save_totals(trace: Trace) -> None:
    """``Trace.save(update_fields=_TRACE_TOTALS)`` for the hot path."""
    db = _db()
    with db.cursor() as cursor:
        cursor.execute(_totals_sql(db.vendor), [*_db_values(_TOTAL_FIELDS, [trace], db), trace.pk])


def _record(batch: RowCache, job: EventsJob) -> list[Saved]:
    now = timezone.now()
    results: list[Saved | None] = []
    pending: list[Event] = []
    keys_in_request: dict[tuple[str, str], Event] = {}
    for item in job.items:
        key = (item.traceId, item.idempotencyKey) if item.idempotencyKey else None
        if key in keys_in_request:
            results.append(Saved(keys_in_request[key], "skipped"))
            continue
        built = _build_event(batch, item, source=job.source, user=job.user, exchange=job.exchange, now=now,
                             known_new=key in job.new_keys)
        if isinstance(built, Saved):
            results.append(built)
            continue
        if key:
            keys_in_request[key] = built
        pending.append(built)
        results.append(None)
    originals, new_messages = pack_events(pending, batch)
    if job.exchange is not None and job.exchange.pk is None:
        # A proxied call's raw exchange: stored with its events or not at all, after them, as its request
        # body is squeezed against their messages.
        save_exchange(job.exchange, job.request, job.items[0].traceId, batch, originals)
        for event in pending:
            event.exchange_id = job.exchange.pk
    patched = patch_metadata(pending, batch)
    _insert(pending)
    search.index(pending, {event.pk for event, *_ in originals}, new_messages)
    unpatch_metadata(patched, pending, batch)
    restore(originals, batch)
    touched = {}
    for event in pending:
        trace = batch.traces[event.trace.trace_id]
        _add_to_trace(trace, event)
        flagging.observe(trace, event)
        touched[trace.pk] = trace
    for trace in touched.values():
        flagging.settle(trace)
        _save_totals(trace)
    created = iter(pending)
    return [result or Saved(next(created), "saved") for result in results]


def record_jobs(jobs: list[EventsJob], cache: RowCache | None = None) -> list[list[Saved] | Exception]:
    """Store several requests' events in one transaction (one commit), each request atomic on its own:
    all its events, with traces and totals updated, or none. Events with an idempotency key already
    stored on their trace (or earlier in the same request) are answered ``skipped`` and change nothing.

    A request that fails is rolled back to its savepoint and answered with its exception; the
    others are unaffected. Commit is the expensive part of a small write, so the writer groups
    the requests that queued up meanwhile, and passes the ``cache`` it keeps between them.
    """
    cache = cache or RowCache()
    outcomes: list[list[Saved] | Exception] = []
    try:
        with transaction.atomic():
            cache.revalidate()
            if len(jobs) == 1:  # alone, a request fails with its transaction: no savepoint needed
                return [_record(cache, jobs[0])]
            for job in jobs:
                try:
                    with transaction.atomic():
                        outcomes.append(_record(cache, job))
                except Exception as exc:  # noqa: BLE001  (handed to that request's caller)
                    outcomes.append(exc)
                    cache.clear()  # its cached rows may have been rolled back
    except BaseException:
        cache.clear()
        raise
    return outcomes
