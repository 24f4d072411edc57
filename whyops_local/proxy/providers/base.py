"""The WhyOps event shapes both provider mappings produce, and the helpers they share (pure)."""

import json
from collections.abc import Sequence
from typing import Any

import orjson

from ...domain import jsontext
from ..sse import SSEEvent

PartialEvent = dict[str, Any]  # eventType, content, metadata: the proxy adds trace, agent, time and span


def event(kind: str, content: Any, metadata: dict[str, Any] | None = None) -> PartialEvent:
    return {"eventType": kind, "content": content, "metadata": metadata or {}}


def present(**fields: Any) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None}


def provider_usage(response: dict[str, Any]) -> dict[str, Any] | None:
    """The response's usage exactly as the provider reported it (``metadata.providerUsage``), to check the
    counts and cost against; ``metadata.usage`` is its WhyOps form."""
    raw = response.get("usage")
    return raw if isinstance(raw, dict) else None


def params(body: dict[str, Any], skip: tuple[str, ...]) -> dict[str, Any]:
    """The request's generation parameters: everything but the conversation, tools and model."""
    return {key: value for key, value in body.items() if key not in skip}


def text_of(content: Any) -> str:
    """The text of a message content: a string, or the ``text`` of each part of a list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text") or "" for part in content if isinstance(part, dict))
    return ""


def entry(role: str, text: str, calls: Sequence[str] = (), result_for: str | None = None) -> bytes:
    """One message reduced to what a client echoes back unchanged, for matching histories.

    Tool arguments are left out: some clients re-serialise them (key order, spacing) when they resend.
    Every message of every request is reduced so: orjson took a tenth of json.dumps's time (which
    builds an encoder per call with ``ensure_ascii=False``).
    """
    reduced = [role, text, list(calls), result_for]
    try:
        return orjson.dumps(reduced)
    except TypeError:  # a lone surrogate, which UTF-8 cannot carry
        return json.dumps(reduced).encode()


def json_or_none(data: bytes | str) -> Any:
    try:
        return jsontext.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):  # nested past any parser: not JSON we can use
        return None


def json_object(data: bytes) -> dict[str, Any] | None:
    parsed = json_or_none(data)
    return parsed if isinstance(parsed, dict) else None


def arguments_object(arguments: Any) -> Any:
    """Tool arguments as an object when they are a JSON string of one (how tool spans show them)."""
    if isinstance(arguments, str):
        parsed = json_or_none(arguments)
        return parsed if parsed is not None else arguments
    return arguments


class Api:
    """What the proxy needs to know about one provider API; the defaults suit an unrecorded route."""

    provider = ""
    recorded = True

    def request_events(self, body: dict[str, Any]) -> list[PartialEvent]:
        return []

    def response_events(self, body: dict[str, Any], response: dict[str, Any], latency_ms: float) -> list[PartialEvent]:
        return []

    def stream(self) -> "Reassembly | None":
        """A reassembly for the API's streamed answers; None for APIs not streamed or not recorded."""
        return None

    def asking_for_usage(self, body: dict[str, Any], raw: bytes) -> bytes | None:
        """For a stream request whose stream would carry no usage unless asked: the body asking for it."""
        return None

    def usage_stripper(self) -> "UsageStripper | None":
        """What takes out of the relayed stream what ``asking_for_usage`` added to it."""
        return None

    def conversation(self, body: dict[str, Any]) -> list[bytes]:
        """The request's history as ``entry`` values, to find the earlier call it continues."""
        return []

    def answer(self, response: dict[str, Any]) -> list[bytes]:
        """The response as the ``entry`` values the client will send back in its next history."""
        return []

    def tool_results(self, body: dict[str, Any]) -> list[tuple[str, Any]]:
        """(tool call id, result) for the tool results that end the request's history."""
        return []

    def previous_id(self, body: dict[str, Any]) -> str | None:
        """The id of the earlier response this request explicitly continues, if the API has one."""
        return None

    def error_body(self, kind: str, message: str) -> dict[str, Any]:
        raise NotImplementedError


class UsageStripper:
    def feed(self, chunk: bytes) -> bytes:
        raise NotImplementedError

    def close(self) -> bytes:
        raise NotImplementedError


class Reassembly:
    """Rebuilds a response object from its stream's events, so streamed and plain calls map alike."""

    done = False  # the stream's own end marker was seen

    def feed(self, sse: SSEEvent) -> None:
        raise NotImplementedError

    def response(self) -> dict[str, Any]:
        raise NotImplementedError

    def text(self) -> str:
        """The answer's text streamed so far (what an open page shows growing)."""
        return ""
