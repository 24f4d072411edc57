import base64
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import models
from django.db.models import Exists, OuterRef, Q, Subquery, TextField
from django.db.models.functions import Cast

from .domain.events import KIND_NAMES
from .domain.schemas import Invalid


def _uuid() -> str:
    return str(uuid.uuid4())


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def money(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


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
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="versions")
    # Order of creation within the agent, 1-based: "v3" in the UI.
    seq = models.PositiveIntegerField()
    version_hash = models.CharField(max_length=32)
    system_prompt = models.TextField(blank=True, default="")
    description = models.TextField(blank=True, default="")
    tools = models.JSONField(default=list)
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


class TraceQuerySet(models.QuerySet):
    def filtered(self, agent: str = "", user: str = "", model: str = "", q: str = "", has_error: bool | None = None,
                 changed_after: int | None = None) -> "TraceQuerySet":
        """Traces matching the list filters (API and pages), newest activity first, each with
        ``last_seq``: the live-update sequence number of its newest event."""
        newest_event = Event.objects.filter(trace=OuterRef("pk")).order_by("-pk").values("pk")[:1]
        traces = (self.select_related("agent", "agent_version").order_by("-last_event_at", "-pk")
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
            text = Event.objects.annotate(text=Cast("content", TextField()))
            traces = traces.filter(Q(trace_id__icontains=q) | Exists(text.filter(trace=OuterRef("pk"), text__icontains=q)))
        if changed_after is not None:
            traces = traces.filter(Exists(Event.objects.filter(trace=OuterRef("pk"), pk__gt=changed_after)))
        return traces

    def keyset_page(self, limit: int, cursor: str = "") -> "tuple[list[Trace], str | None]":
        """Up to ``limit`` traces (newest activity first) after ``cursor``, and the next page's cursor.

        Raises ``Invalid`` for a cursor this API did not give out."""
        traces = self.filter(_decode_cursor(cursor)) if cursor else self
        rows = list(traces[: limit + 1])
        return rows[:limit], (_encode_cursor(rows[limit - 1]) if len(rows) > limit else None)


class Trace(models.Model):
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
    prompt_tokens = models.BigIntegerField(default=0)
    completion_tokens = models.BigIntegerField(default=0)
    cache_read_tokens = models.BigIntegerField(default=0)
    cache_creation_tokens = models.BigIntegerField(default=0)
    total_tokens = models.BigIntegerField(default=0)
    # Distinct model names of the trace's LLM calls and embeddings, in first-seen order.
    model_names = models.JSONField(default=list)
    cost_usd = models.DecimalField(max_digits=20, decimal_places=10, null=True)
    # Count of priced-kind events (LLM calls, embeddings) with no known price.
    unpriced_count = models.PositiveIntegerField(default=0)

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
            "usage": {
                "promptTokens": self.prompt_tokens,
                "completionTokens": self.completion_tokens,
                "cacheReadTokens": self.cache_read_tokens,
                "cacheCreationTokens": self.cache_creation_tokens,
                "totalTokens": self.total_tokens,
            },
            "costUsd": self.cost_usd_or_none,
            "costComplete": self.cost_complete,
        }


class Exchange(models.Model):
    """The raw HTTP exchange behind proxied events (credentials redacted before storage)."""

    provider = models.CharField(max_length=32)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=512)
    status = models.PositiveSmallIntegerField(null=True)
    request_headers = models.JSONField(default=dict)
    request_body = models.TextField(blank=True, default="")
    response_headers = models.JSONField(default=dict)
    response_body = models.TextField(blank=True, default="")
    # Raw SSE chunks with their arrival offsets in ms, for streamed responses.
    chunks = models.JSONField(null=True)
    started_at = models.DateTimeField()
    ttfb_ms = models.FloatField(null=True)
    total_ms = models.FloatField(null=True)
    interrupted = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"{self.method} {self.path} {self.status}"

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


class Event(models.Model):
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
    received_at = models.DateTimeField(auto_now_add=True)
    external_user_id = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001  (as on Trace)
    # NULL for events without one: the unique (trace, idempotency_key) constraint admits many NULLs, not many "".
    idempotency_key = models.CharField(max_length=128, null=True)  # noqa: DJ001
    content = models.JSONField(null=True)
    metadata = models.JSONField(default=dict)
    source = models.CharField(max_length=8, default=SOURCE_SDK)
    exchange = models.ForeignKey(Exchange, null=True, on_delete=models.SET_NULL, related_name="events",
                                 db_index=False)
    # Denormalised from metadata so lists, filters and sums need no JSON queries.
    model = models.CharField(max_length=255, blank=True, default="")
    provider = models.CharField(max_length=64, blank=True, default="")
    latency_ms = models.FloatField(null=True)
    prompt_tokens = models.BigIntegerField(default=0)
    completion_tokens = models.BigIntegerField(default=0)
    cache_read_tokens = models.BigIntegerField(default=0)
    cache_creation_tokens = models.BigIntegerField(default=0)
    total_tokens = models.BigIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=20, decimal_places=10, null=True)
    # Why cost_usd is null for an event that should have a price ("" when priced or not priceable).
    cost_note = models.CharField(max_length=255, blank=True, default="")

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
            "costUsd": money(self.cost_usd),
            "costNote": self.cost_note,
            "idempotencyKey": self.idempotency_key,
            "exchangeId": self.exchange_id,
        }

