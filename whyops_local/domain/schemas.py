"""Validation of the WhyOps ingest payloads (docs/whyops-protocol.md §3, §4), free of Django.

Every failure becomes a list of ``{"field", "message", "code"}`` details naming the exact field
(``"0.traceId"`` for the first item of an array body), so a client can fix its request.
"""

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .events import EVENT_TYPES
from .pricing import split_model

REQUIRED_METADATA = {
    "llm_response": ("model", "provider"),
    "embedding_response": ("model", "provider"),
    "tool_call_request": ("tool",),
    "tool_call_response": ("tool",),
}
# Limits of what is stored (README "The API"): deeper JSON would exhaust the parsers' and the pages'
# recursion; larger integers do not fit the database's 64-bit columns (token counts are summed per
# trace, hence their lower bound); timestamps far ahead would pin a trace to the top of every list.
MAX_JSON_DEPTH = 100
MAX_STEP = 2**63 - 1
MAX_TOKENS = 10**12
MAX_LATENCY_MS = 10**12  # 30 years: beyond it a number is no latency, and past 2^63 no database column holds it
FUTURE_TOLERANCE = timedelta(days=1)
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
# Ids end up in URLs, headers and page links: no control characters (newlines, tabs, NUL, DEL).
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
# cacheCreation1hTokens: the part of cacheCreationTokens written for an hour (priced higher by Anthropic);
# reasoningTokens: the part of completionTokens spent reasoning.
USAGE_FIELDS = ("promptTokens", "completionTokens", "totalTokens", "cacheReadTokens", "cacheCreationTokens",
                "cacheCreation1hTokens", "reasoningTokens")


class Invalid(Exception):
    """A request that must be refused as a whole; ``details`` name each bad field."""

    def __init__(self, details: list[dict[str, str]], error: str = "Validation failed", status: int = 400):
        super().__init__(error)
        self.error = error
        self.details = details
        self.status = status

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.error, "details": self.details}


def _detail(field: str, message: str, code: str) -> dict[str, str]:
    return {"field": field, "message": message, "code": code}


def _pydantic_details(exc: ValidationError, prefix: str = "") -> list[dict[str, str]]:
    return [
        _detail(prefix + ".".join(str(part) for part in err["loc"]), err["msg"], err["type"])
        for err in exc.errors(include_url=False)
    ]


def _strict(**extra: Any) -> ConfigDict:
    return ConfigDict(strict=True, **extra)


def _no_control_characters(value: str | None) -> str | None:
    if value is not None and CONTROL_CHARACTERS.search(value):
        raise ValueError("must not contain control characters (newline, tab, NUL and the like)")
    return value


class ToolIn(BaseModel):
    model_config = _strict(extra="allow")
    name: str = Field(min_length=1, max_length=255)
    description: str | None = None
    inputSchema: str | None = None
    outputSchema: str | None = None

    @field_validator("inputSchema", "outputSchema")
    @classmethod
    def _json_string(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                json.loads(value)
            except ValueError as exc:
                raise ValueError(f"must be a JSON string ({exc})") from None
        return value


class AgentMetadataIn(BaseModel):
    model_config = _strict(extra="allow")
    systemPrompt: str
    description: str | None = None
    tools: list[ToolIn] = []


class AgentInitIn(BaseModel):
    model_config = _strict(extra="ignore")
    agentName: str = Field(min_length=1, max_length=255)
    metadata: AgentMetadataIn

    _plain_name = field_validator("agentName")(_no_control_characters)

    def metadata_dict(self) -> dict[str, Any]:
        return self.metadata.model_dump(exclude_none=True)


class UsageIn(BaseModel):
    model_config = _strict(extra="allow")
    promptTokens: int | None = Field(None, ge=0, le=MAX_TOKENS)
    completionTokens: int | None = Field(None, ge=0, le=MAX_TOKENS)
    totalTokens: int | None = Field(None, ge=0, le=MAX_TOKENS)
    cacheReadTokens: int | None = Field(None, ge=0, le=MAX_TOKENS)
    cacheCreationTokens: int | None = Field(None, ge=0, le=MAX_TOKENS)
    cacheCreation1hTokens: int | None = Field(None, ge=0, le=MAX_TOKENS)
    reasoningTokens: int | None = Field(None, ge=0, le=MAX_TOKENS)


class EventIn(BaseModel):
    model_config = _strict(extra="ignore")
    eventType: Literal[EVENT_TYPES]  # type: ignore[valid-type]
    traceId: str = Field(min_length=1, max_length=128)
    agentName: str = Field(min_length=1, max_length=255)
    spanId: str | None = Field(None, min_length=1, max_length=128)
    stepId: int | None = Field(None, ge=0, le=MAX_STEP)
    parentStepId: int | None = Field(None, ge=0, le=MAX_STEP)
    timestamp: datetime | None = None
    externalUserId: str | None = Field(None, min_length=1, max_length=255)
    idempotencyKey: str | None = Field(None, min_length=1, max_length=128)
    content: Any = None
    metadata: dict[str, Any] | None = None

    _plain_ids = field_validator("traceId", "agentName", "spanId", "externalUserId", "idempotencyKey")(
        _no_control_characters)

    @field_validator("timestamp", mode="before")
    @classmethod
    def _iso_timestamp(cls, value: Any) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise ValueError("must be an ISO-8601 string")
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"not an ISO-8601 timestamp: {value[:64]!r}") from None
        # A timestamp without an offset is read as UTC rather than refused.
        try:
            parsed = parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        except OverflowError:  # 9999-12-31T23:59:59-05:00 is past the end of time in UTC
            raise ValueError(f"outside the range of timestamps: {value[:64]!r}") from None
        if parsed < EARLIEST or parsed > datetime.now(UTC) + FUTURE_TOLERANCE:
            raise ValueError(f"must lie between 1970 and a day from now: {value[:64]!r}")
        return parsed

    @property
    def usage(self) -> dict[str, int]:
        usage = (self.metadata or {}).get("usage") or {}
        return {key: usage[key] for key in USAGE_FIELDS if usage.get(key) is not None}


_USAGE_KEYS = frozenset(UsageIn.model_fields)  # read once: pydantic works the mapping out at every read (0.6 us)


def _plain_usage(usage: Any) -> bool:
    """The common valid case, decided without building a model (UsageIn says why anything else fails)."""
    return type(usage) is dict and all(
        value is None or (type(value) is int and 0 <= value <= MAX_TOKENS)
        for key, value in usage.items() if key in _USAGE_KEYS)


def _metadata_details(event: EventIn) -> list[dict[str, str]]:
    metadata = event.metadata or {}
    details = [
        _detail(f"metadata.{key}", f"{event.eventType} requires metadata.{key} (a non-empty string)", "missing")
        for key in REQUIRED_METADATA.get(event.eventType, ())
        if not (isinstance(metadata.get(key), str) and metadata[key])
    ]
    usage = metadata.get("usage")
    if usage is not None and not _plain_usage(usage):
        try:
            UsageIn.model_validate(usage)
        except ValidationError as exc:
            details += _pydantic_details(exc, "metadata.usage.")
    details += _model_details(metadata)
    latency = metadata.get("latencyMs")
    if latency is not None and (isinstance(latency, bool) or not isinstance(latency, (int, float))
                                or not 0 <= latency <= MAX_LATENCY_MS):
        details.append(_detail("metadata.latencyMs", f"must be a number of milliseconds from 0 to {MAX_LATENCY_MS}",
                               "number_type"))
    return details


_MODEL_COLUMNS = (("provider", 64), ("model", 255))  # their columns' lengths (PostgreSQL enforces them)
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _plain_name(value: Any) -> bool:
    return value is None or (type(value) is str and value.isascii() and len(value) <= _MODEL_COLUMNS[0][1])


def _model_details(metadata: dict[str, Any]) -> list[dict[str, str]]:
    """The model and provider as stored (split as ``openai/gpt-4o-mini`` is) must fit their columns."""
    # The common case, decided at once (half of the cost of validating an OTLP span's metadata): ASCII
    # holds no lone surrogate and keeps its length lower-cased, so split_model cannot make either name
    # longer than the longer of the two given, within the shorter column.
    if _plain_name(metadata.get("provider")) and _plain_name(metadata.get("model")):
        return []
    given = {key: metadata[key] if isinstance(metadata.get(key), str) else "" for key, _ in _MODEL_COLUMNS}
    split = dict(zip(("provider", "model"), split_model(given["provider"], given["model"]), strict=True))
    return [_detail(f"metadata.{key}", f"at most {limit} characters (without a lone surrogate) as stored", "too_long")
            for key, limit in _MODEL_COLUMNS if len(split[key]) > limit or _LONE_SURROGATE.search(given[key])]


def _event(item: Any, prefix: str) -> EventIn:
    try:
        event = EventIn.model_validate(item)
    except ValidationError as exc:
        raise Invalid(_pydantic_details(exc, prefix)) from None
    details = _metadata_details(event)
    if details:
        raise Invalid([{**d, "field": prefix + d["field"]} for d in details])
    return event


def validate_event(item: Any, prefix: str = "") -> EventIn:
    """One event dict validated as ingest validates it; raises ``Invalid`` naming its fields."""
    return _event(item, prefix)


def _not_json(constant: str) -> None:
    # Python's json reads NaN and Infinity; JSON has no such values, and the database's JSON cannot hold them.
    raise ValueError(f"{constant} is not a JSON value")


def _deeper_than(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        value, depth = stack.pop()
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def cut_to_depth(value: Any, limit: int = MAX_JSON_DEPTH) -> Any:
    """``value`` with whatever lies deeper than ``limit`` levels replaced by a note saying so (for what the
    proxy relayed: stored as events it must fit, while the raw exchange keeps it whole)."""
    if not _deeper_than(value, limit):
        return value

    def cut(item: Any, depth: int) -> Any:
        if not isinstance(item, dict | list):
            return item
        if depth >= limit:
            return f"(nested deeper than {limit} levels: see the raw exchange)"
        if isinstance(item, dict):
            return {key: cut(child, depth + 1) for key, child in item.items()}
        return [cut(child, depth + 1) for child in item]

    return cut(value, 1)


def load_json(body: bytes) -> Any:
    """The body's JSON; ``Invalid`` if it is not JSON or is nested deeper than MAX_JSON_DEPTH."""
    too_deep = Invalid([_detail("body", f"nested deeper than {MAX_JSON_DEPTH} levels", "too_deep")],
                       error=f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        data = json.loads(body, parse_constant=_not_json)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Invalid([_detail("body", str(exc), "json_invalid")], error=f"Malformed JSON: {exc}") from None
    except RecursionError:
        raise too_deep from None
    # Fewer brackets than the limit cannot nest deeper than it: most bodies skip the walk.
    if body.count(b"[") + body.count(b"{") > MAX_JSON_DEPTH and _deeper_than(data, MAX_JSON_DEPTH):
        raise too_deep
    return data


def parse_events(body: bytes) -> tuple[list[EventIn], bool]:
    """The events of an ingest body, and whether it was an array. Raises ``Invalid`` for the whole body."""
    data = load_json(body)
    if isinstance(data, list):
        if not data:
            raise Invalid([_detail("body", "the array holds no events", "too_short")])
        events, details = [], []
        for index, item in enumerate(data):
            try:
                events.append(_event(item, f"{index}."))
            except Invalid as exc:
                details += exc.details
        if details:
            raise Invalid(details)
        return events, True
    if isinstance(data, dict):
        return [_event(data, "")], False
    raise Invalid([_detail("body", "must be an event object or an array of them", "model_type")])


def parse_agent_init(body: bytes) -> AgentInitIn:
    data = load_json(body)
    try:
        return AgentInitIn.model_validate(data)
    except ValidationError as exc:
        raise Invalid(_pydantic_details(exc)) from None
