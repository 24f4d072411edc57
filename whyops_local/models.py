import base64
import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import models
from django.db.models import Exists, OuterRef, Q, Subquery
from django.db.models.fields.json import KeyTransform
from django.utils import timezone

from .domain import flags as flag_rules
from .domain import jsontext
from .domain.delta import unsqueeze
from .domain.events import KIND_NAMES
from .domain.pricing import Tokens, family, split_model
from .domain.schemas import Invalid


class JSONField(models.JSONField):
    """Django's JSONField, keeping every JSON value exactly on PostgreSQL too (see ``jsontext.for_jsonb``),
    and parsing with orjson: json.loads took most of a 5,000-step comparison's read time."""

    def get_db_prep_value(self, value, connection, prepared=False):
        if connection.vendor == "postgresql":
            value, prepared = jsontext.for_jsonb(value if prepared else self.get_prep_value(value)), True
        return super().get_db_prep_value(value, connection, prepared)

    def from_db_value(self, value, expression, connection):
        if value is None or isinstance(expression, KeyTransform):  # a key's value is not a whole column's
            return super().from_db_value(value, expression, connection)
        try:
            value = jsontext.loads(value)
        except ValueError:
            return value
        return jsontext.from_jsonb(value) if connection.vendor == "postgresql" else value

    def deconstruct(self):
        # The column is Django's own: migrations see no change (an AlterField rebuilds a SQLite table).
        name, _, args, kwargs = super().deconstruct()
        return name, "django.db.models.JSONField", args, kwargs


def _uuid() -> str:
    return str(uuid.uuid4())


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def money(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


class TokenColumns(models.Model):
    """The token columns of an event, and a trace's sums of them, in one meaning (domain.pricing.Tokens)."""

    input_tokens = models.BigIntegerField(default=0)  # uncached
    cache_read_tokens = models.BigIntegerField(default=0)
    cache_write_tokens = models.BigIntegerField(default=0)
    cache_write_1h_tokens = models.BigIntegerField(default=0)  # part of cache_write_tokens
    output_tokens = models.BigIntegerField(default=0)
    reasoning_tokens = models.BigIntegerField(default=0)  # part of output_tokens
    total_tokens = models.BigIntegerField(default=0)  # input + cache read + cache write + output

    class Meta:
        abstract = True

    @property
    def tokens(self) -> Tokens:
        return Tokens(self.input_tokens, self.cache_read_tokens, self.cache_write_tokens, self.cache_write_1h_tokens,
                      self.output_tokens, self.reasoning_tokens)

    def tokens_as_usage(self) -> dict[str, int]:
        """The API's older ``usage`` block, kept for its clients: prompt tokens include the cached ones."""
        tokens = self.tokens
        return {"promptTokens": tokens.prompt, "completionTokens": tokens.output, "cacheReadTokens": tokens.cache_read,
                "cacheCreationTokens": tokens.cache_write, "totalTokens": self.total_tokens}


# The token columns of Event and Trace, in one meaning each (input uncached; reasoning is part of output).
TOKEN_COLUMNS = ("input_tokens", "cache_read_tokens", "cache_write_tokens", "cache_write_1h_tokens", "output_tokens",
                 "reasoning_tokens", "total_tokens")


class AgentQuerySet(models.QuerySet):
    def with_latest_version(self) -> "AgentQuerySet":
        """Agents whose ``latest_version()`` needs no query of its own (one for all of them)."""
        newest_first = AgentVersion.objects.order_by("-seq")
        return self.prefetch_related(models.Prefetch("versions", queryset=newest_first, to_attr="_newest_first"))


class Agent(models.Model):
    id = models.CharField(primary_key=True, max_length=36, default=_uuid, editable=False)
    name = models.CharField(max_length=255, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = AgentQuerySet.as_manager()

    def __str__(self) -> str:
        return self.name

    def latest_version(self) -> "AgentVersion | None":
        prefetched = getattr(self, "_newest_first", None)
        if prefetched is not None:
            return prefetched[0] if prefetched else None
        return self.versions.order_by("-seq").first()

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "createdAt": iso(self.created_at)}


class AgentVersion(models.Model):
    id = models.CharField(primary_key=True, max_length=36, default=_uuid, editable=False)
    # Not indexed alone: the unique (agent, version_hash) index starts with it.
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="versions", db_index=False)
    # Order of creation within the agent, 1-based: "v3" in the UI.
    seq = models.PositiveIntegerField()
    version_hash = models.CharField(max_length=32)
    system_prompt = models.TextField(blank=True, default="")
    description = models.TextField(blank=True, default="")
    tools = JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["agent", "version_hash"], name="agent_version_hash_unique"),
            models.UniqueConstraint(fields=["agent", "seq"], name="agent_version_seq_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.agent_id} v{self.seq}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "version": self.seq,
            "versionHash": self.version_hash,
            "systemPrompt": self.system_prompt,
            "description": self.description,
            "tools": self.tools,
            "createdAt": iso(self.created_at),
        }


def _encode_cursor(trace: "Trace") -> str:
    return base64.urlsafe_b64encode(f"{trace.last_event_at.isoformat()}|{trace.pk}".encode()).decode()


def _decode_cursor(cursor: str) -> Q:
    try:
        when, pk = base64.urlsafe_b64decode(cursor.encode()).decode().rsplit("|", 1)
        when, pk = datetime.fromisoformat(when), int(pk)
    except (ValueError, UnicodeDecodeError):
        raise Invalid([{"field": "cursor", "message": "not a cursor this API gave out", "code": "value_error"}]) from None
    return Q(last_event_at__lt=when) | Q(last_event_at=when, pk__lt=pk)


def of_model(spelling: str) -> Q:
    """Events of a model however it is spelled (``openai/gpt-4o-mini`` or ``gpt-4o-mini``), and of the dated
    snapshots genai-prices prices as it (``gpt-4o`` finds ``gpt-4o-2024-08-06``)."""
    provider, model = split_model("", spelling)
    same_provider = Q(provider=provider) if provider else Q()
    stored = Event.objects.order_by().values_list("model", flat=True).distinct()  # over the model index
    snapshots = [name for name in stored if name != model and family(provider, name) == model]
    return Q(model=spelling) | (same_provider & Q(model__in=[model, *snapshots]))


class TraceQuerySet(models.QuerySet):
    def filtered(self, agent: str = "", user: str = "", model: str = "", q: str = "", has_error: bool | None = None,
                 changed_after: int | None = None, flag: str = "") -> "TraceQuerySet":
        """Traces matching the list filters (API and pages), newest activity first, each with
        ``last_seq``: the live-update sequence number of its newest event."""
        newest_event = Event.objects.filter(trace=OuterRef("pk")).order_by("-pk").values("pk")[:1]
        traces = (self.select_related("agent", "agent_version").order_by("-last_event_at", "-pk")
                  .defer("flag_state").annotate(last_seq=Subquery(newest_event)))
        if agent:
            traces = traces.filter(agent__name=agent)
        if user:
            traces = traces.filter(external_user_id=user)
        if has_error is not None:
            traces = traces.filter(error_count__gt=0) if has_error else traces.filter(error_count=0)
        if model:
            traces = traces.filter(Exists(Event.objects.filter(of_model(model), trace=OuterRef("pk"))))
        if q:
            from .storage.search import matching

            traces = traces.filter(matching(q))
        if changed_after is not None:
            traces = traces.filter(Exists(Event.objects.filter(trace=OuterRef("pk"), pk__gt=changed_after)))
        if flag:
            traces = traces.with_flag(flag)
        return traces

    def with_flag(self, kind: str) -> "TraceQuerySet":
        """Traces flagged ``kind``; for ``dangling_tool`` also those with a call open for too long by now."""
        flagged = Q(flag_kinds__contains=f",{kind},")
        if kind == "dangling_tool":
            waited = timezone.now() - timedelta(seconds=flag_rules.DANGLING_AFTER_S)
            flagged |= Q(open_call_at__lt=waited)
        return self.filter(flagged)

    def keyset_page(self, limit: int, cursor: str = "") -> "tuple[list[Trace], str | None]":
        """Up to ``limit`` traces (newest activity first) after ``cursor``, and the next page's cursor.

        Raises ``Invalid`` for a cursor this API did not give out."""
        traces = self.filter(_decode_cursor(cursor)) if cursor else self
        rows = list(traces[: limit + 1])
        return rows[:limit], (_encode_cursor(rows[limit - 1]) if len(rows) > limit else None)


class Trace(TokenColumns):
    """A thread of events sharing a traceId, with totals kept up to date on every insert."""

    trace_id = models.CharField(max_length=128, unique=True)
    # Indexed by trace_agent_recent, whose first column it is.
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="traces", db_index=False)
    agent_version = models.ForeignKey(AgentVersion, null=True, on_delete=models.SET_NULL, related_name="traces")
    # NULL, not "": the protocol's "no user", kept apart from any id a client could send.
    external_user_id = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    started_at = models.DateTimeField()
    last_event_at = models.DateTimeField()
    # The highest step id given out or seen; the next auto-assigned step is this + 1.
    max_step = models.BigIntegerField(null=True)
    event_count = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    llm_calls = models.PositiveIntegerField(default=0)
    tool_calls = models.PositiveIntegerField(default=0)
    # Distinct model names of the trace's LLM calls and embeddings, in first-seen order.
    model_names = JSONField(default=list)
    cost_usd = models.DecimalField(max_digits=20, decimal_places=10, null=True)
    # Count of priced-kind events (LLM calls, embeddings) with no known price.
    unpriced_count = models.PositiveIntegerField(default=0)
    # What domain.flags keeps between events (its flags among it), updated with the totals.
    flag_state = JSONField(default=dict)
    # ",kind,kind," of the flags found, and when the longest-open tool call started: for the list filter.
    flag_kinds = models.CharField(max_length=255, blank=True, default="")
    open_call_at = models.DateTimeField(null=True)

    objects = TraceQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(fields=["-last_event_at", "-id"], name="trace_recent"),
            models.Index(fields=["agent", "-last_event_at"], name="trace_agent_recent"),
            models.Index(fields=["external_user_id", "-last_event_at"], name="trace_user_recent"),
        ]

    def __str__(self) -> str:
        return self.trace_id

    @property
    def duration_ms(self) -> int:
        return int((self.last_event_at - self.started_at).total_seconds() * 1000)

    @property
    def cost_complete(self) -> bool:
        return self.unpriced_count == 0

    @property
    def cost_usd_or_none(self) -> float | None:
        """The known cost; 0 for a trace with nothing to price; None when nothing priced had a price."""
        if self.cost_usd is None:
            return 0.0 if self.cost_complete else None
        return money(self.cost_usd)

    def flags(self) -> list[dict[str, Any]]:
        """Flags found as events arrived, and tool calls that by now waited too long for an answer."""
        found = flag_rules.flags_of(self.flag_state)
        if self.open_call_at is not None:
            found += flag_rules.dangling(self.flag_state, timezone.now().timestamp())
        return found

    def flag_names(self) -> list[str]:
        """The kinds of flags() from the trace's own columns (lists leave the flag state unread)."""
        kinds = [kind for kind in self.flag_kinds.split(",") if kind]
        waited = timezone.now() - timedelta(seconds=flag_rules.DANGLING_AFTER_S)
        if self.open_call_at is not None and self.open_call_at < waited:
            kinds.append("dangling_tool")
        return flag_rules.kinds_of({"kind": kind} for kind in kinds)

    def summary_dict(self) -> dict[str, Any]:
        """The read API's TraceSummary (docs/whyops-protocol.md §6)."""
        return {
            "traceId": self.trace_id,
            "agentName": self.agent.name,
            "agentVersion": self.agent_version.seq if self.agent_version else None,
            "externalUserId": self.external_user_id,
            "startedAt": iso(self.started_at),
            "lastEventAt": iso(self.last_event_at),
            "durationMs": self.duration_ms,
            "eventCount": self.event_count,
            "errorCount": self.error_count,
            "llmCalls": self.llm_calls,
            "toolCalls": self.tool_calls,
            "models": self.model_names,
            "tokens": self.tokens.to_api(),
            "usage": self.tokens_as_usage(),
            "costUsd": self.cost_usd_or_none,
            "costComplete": self.cost_complete,
            "flags": self.flag_names(),
        }


WHOLE = "_whole_parts"  # where an Exchange keeps its headers and response body once read whole


class Exchange(models.Model):
    """The raw HTTP exchange behind proxied events (credentials redacted before storage)."""

    provider = models.CharField(max_length=32)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=512)
    status = models.PositiveSmallIntegerField(null=True)
    # The request body, byte for byte, as storage/content.py keeps it: the bytes it shares with the
    # request of ``request_base`` (the trace's previous exchange) at its start and end, and the
    # squeezed bytes between (the whole body when there is no base).
    request_base = models.BigIntegerField(null=True)
    request_prefix = models.PositiveIntegerField(default=0)
    request_suffix = models.PositiveIntegerField(default=0)
    request_data = models.BinaryField(default=b"")
    # The messages (their uses, ``MessageBlob`` ids, as runs) whose stored JSON request_data is squeezed with.
    request_dictionary = JSONField(null=True)
    # Headers and the response body (as relayed) as storage/content.py keeps them: whole, or, with
    # ``pack_base`` (an exchange of the same trace, kept whole), headers as a list of what changed
    # from its and the body squeezed with its body as the dictionary. Read whole through
    # ``request_headers``, ``response_headers`` and ``response_bytes()``.
    pack_base = models.BigIntegerField(null=True)
    request_head = JSONField(default=dict, db_column="request_headers")
    response_head = JSONField(default=dict, db_column="response_headers")
    response_data = models.BinaryField(default=b"")
    # For streamed responses: each chunk's arrival offset in ms and its length in characters of the
    # decoded body (the chunks' text is the body's, cut there).
    chunk_marks = JSONField(null=True)
    started_at = models.DateTimeField()
    ttfb_ms = models.FloatField(null=True)
    total_ms = models.FloatField(null=True)
    interrupted = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"{self.method} {self.path} {self.status}"

    def request_bytes(self) -> bytes:
        from .storage.content import request_bodies

        if self.request_base or self.request_dictionary:
            return request_bodies([self.pk])[self.pk]
        return unsqueeze(bytes(self.request_data))

    def response_bytes(self) -> bytes:
        return self.parts().response

    def parts(self):
        """Headers and response body, whole (storage/content.py's ``Parts``)."""
        from .storage.content import unpack_exchanges

        if WHOLE not in self.__dict__:
            unpack_exchanges([self])
        return self.__dict__[WHOLE]

    @property
    def request_headers(self) -> dict[str, str]:
        return self.parts().request_headers

    @request_headers.setter
    def request_headers(self, value: dict[str, str]) -> None:  # whole headers, as Exchange(request_headers=...) gives
        self.request_head = value
        self.__dict__.pop(WHOLE, None)

    @property
    def response_headers(self) -> dict[str, str]:
        return self.parts().response_headers

    @response_headers.setter
    def response_headers(self, value: dict[str, str]) -> None:
        self.response_head = value
        self.__dict__.pop(WHOLE, None)

    @property
    def request_body(self) -> str:
        return self.request_bytes().decode("utf-8", "replace")

    @property
    def response_body(self) -> str:
        return self.response_bytes().decode("utf-8", "replace")

    @property
    def chunks(self) -> list[list[Any]] | None:
        """Streamed chunks as ``[ms, text]``."""
        if self.chunk_marks is None:
            return None
        text, start, found = self.response_body, 0, []
        for ms, length in self.chunk_marks:
            found.append([ms, text[start:start + length]])
            start += length
        return found

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.pk,
            "provider": self.provider,
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "requestHeaders": self.request_headers,
            "requestBody": self.request_body,
            "responseHeaders": self.response_headers,
            "responseBody": self.response_body,
            "chunks": self.chunks,
            "startedAt": iso(self.started_at),
            "ttfbMs": self.ttfb_ms,
            "totalMs": self.total_ms,
            "interrupted": self.interrupted,
        }


class EventQuerySet(models.QuerySet):
    def _fetch_all(self) -> None:
        # Events come back whole: content stored once elsewhere (storage/content.py) is put back.
        loading = self._result_cache is None
        super()._fetch_all()
        if loading and self._iterable_class is models.query.ModelIterable:
            from .storage.content import unpack_events

            unpack_events(self._result_cache)


class Event(TokenColumns):
    SOURCE_SDK = "sdk"
    SOURCE_PROXY = "proxy"
    SOURCE_OTLP = "otlp"

    # Each index costs every insert (events are the one table written at ingest rate): the trace's
    # is the first column of event_trace_step, and events are never looked up by version or exchange.
    trace = models.ForeignKey(Trace, on_delete=models.CASCADE, related_name="events", db_index=False)
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="events")
    agent_version = models.ForeignKey(AgentVersion, null=True, on_delete=models.SET_NULL, related_name="events",
                                      db_index=False)
    event_type = models.CharField(max_length=32, choices=KIND_NAMES.items())
    step_id = models.BigIntegerField()
    parent_step_id = models.BigIntegerField(null=True)
    span_id = models.CharField(max_length=128)
    timestamp = models.DateTimeField()
    external_user_id = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001  (as on Trace)
    # NULL for events without one: the unique (trace, idempotency_key) constraint admits many NULLs, not many "".
    idempotency_key = models.CharField(max_length=128, null=True)  # noqa: DJ001
    content = JSONField(null=True)
    metadata = JSONField(default=dict)
    source = models.CharField(max_length=8, default=SOURCE_SDK)
    exchange = models.ForeignKey(Exchange, null=True, on_delete=models.SET_NULL, related_name="events",
                                 db_index=False)
    # Denormalised from metadata so lists, filters and sums need no JSON queries.
    model = models.CharField(max_length=255, blank=True, default="")
    provider = models.CharField(max_length=64, blank=True, default="")
    latency_ms = models.FloatField(null=True)
    cost_usd = models.DecimalField(max_digits=20, decimal_places=10, null=True)
    # Why cost_usd is null for an event that should have a price ("" when priced or not priceable).
    cost_note = models.CharField(max_length=255, blank=True, default="")
    # False for a manual LLM response repeating a proxied one (a double_count flag): one turn, counted once.
    counted = models.BooleanField(default=True)
    # Where parts of content and metadata are stored instead (storage/content.py); NULL: all here.
    packing = JSONField(null=True)

    objects = EventQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["trace", "idempotency_key"], name="event_idempotency_unique"),
        ]
        # No (trace, span_id) index: span ids are random, so it cost each insert a random page, and the
        # one query by span (a tool span's panel) reads within one trace through event_trace_step.
        indexes = [
            models.Index(fields=["trace", "step_id", "id"], name="event_trace_step"),
            models.Index(fields=["model"], name="event_model"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} step {self.step_id}"

    def to_dict(self) -> dict[str, Any]:
        """The read API's Event (docs/whyops-protocol.md §6)."""
        return {
            "id": self.pk,
            "eventType": self.event_type,
            "traceId": self.trace.trace_id,
            "stepId": self.step_id,
            "parentStepId": self.parent_step_id,
            "spanId": self.span_id,
            "timestamp": iso(self.timestamp),
            "externalUserId": self.external_user_id,
            "content": self.content,
            "metadata": self.metadata,
            "source": self.source,
            "tokens": self.tokens.to_api(),
            "costUsd": money(self.cost_usd),
            "costNote": self.cost_note,
            "idempotencyKey": self.idempotency_key,
            "exchangeId": self.exchange_id,
        }



class Message(models.Model):
    """A message of a conversation, stored once in the database however many calls and traces resend it."""

    digest = models.BinaryField(max_length=16, unique=True)
    data = models.BinaryField()  # its JSON, squeezed (domain.delta): searched through the search index

    def __str__(self) -> str:
        return f"message {self.pk}"


class MessageBlob(models.Model):
    """A trace's use of a message: what its events' message lists hold, and what keeps the message stored."""

    trace = models.ForeignKey(Trace, on_delete=models.CASCADE, related_name="+", db_index=False)
    message = models.ForeignKey(Message, on_delete=models.PROTECT, related_name="uses")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["trace", "message"], name="message_blob_use_unique")]

    def __str__(self) -> str:
        return f"message {self.message_id} of trace {self.trace_id}"


class OtelConversation(models.Model):
    """An OTel trace whose spans named a conversation (``gen_ai.conversation.id`` or ``session.id``): all
    its spans, those that name it and those that do not, are stored in that conversation's trace."""

    otel_trace_id = models.CharField(max_length=32, primary_key=True)
    # The WhyOps trace id, not a key: the mapping is written before the trace's first event is.
    trace_id = models.CharField(max_length=128)

    def __str__(self) -> str:
        return f"OTel trace {self.otel_trace_id} in {self.trace_id}"
