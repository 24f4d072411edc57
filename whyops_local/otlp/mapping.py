"""OTel spans mapped onto WhyOps events: the GenAI semantic conventions (current and deprecated) and
OpenInference (pure).

Each span becomes events of one trace: an LLM call its input messages (``user_message``) and its
answer (``llm_response``, with thinking and errors beside it), a tool span a ``tool_call_request`` /
``tool_call_response`` pair, anything else (agents, chains, unknown spans) one ``span`` event that
the tree hangs its children from. Usage goes through the proxy's own provider mappings, so cache
tokens keep each provider's meaning and are priced the same way (an Anthropic span's input tokens,
which the conventions count with the cache, are first made Anthropic's, without it).

Steps are a function of the span alone: its start time in 10 us ticks, a few bits of its span id
(two spans starting in the same tick), and the event's slot within the span. So events sort
by start time whatever order the exporter sends spans in (it batches them by end time), and a retried
span gets the same steps. A child's ``parentStepId`` is its parent's first step, which needs the
parent's start time: the store resolves it (``otlp/store.py``).
"""

import json
import zlib
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from ..domain import jsontext
from ..proxy.providers import anthropic, openai
from .decode import STATUS_ERROR, Span

LLM_OPERATIONS = {"chat", "generate_content", "text_completion", "completion"}
TOOL_OPERATIONS = {"execute_tool"}
SLOTS = 8  # events per span: input, up to five thinking blocks, the answer, an error
ERROR_SLOT = SLOTS - 1


# Steps must stay below 2**53, where the pages' JavaScript numbers lose integers: counted in 10 us
# ticks from 2025 (44 years of them fit), each tick split 8 ways by span id and 8 ways by slot.
STEP_EPOCH_NS = 1_735_689_600_000_000_000  # 2025-01-01T00:00:00Z
TICK_NS = 10_000


def span_step(span: Span, slot: int = 0) -> int:
    spread = zlib.crc32(span.span_id.encode()) % 8
    tick = max(0, span.start_ns - STEP_EPOCH_NS) // TICK_NS
    return ((tick * 8 + spread) * SLOTS + slot) + SLOTS  # never 0, which the store reserves (store.UNRESOLVED)


def kind_of(span: Span) -> str:
    attrs = span.attributes
    operation = attrs.get("gen_ai.operation.name")
    openinference = str(attrs.get("openinference.span.kind") or "").upper()
    if operation in LLM_OPERATIONS or openinference == "LLM":
        return "llm"
    if operation in TOOL_OPERATIONS or openinference == "TOOL":
        return "tool"
    if operation in ("invoke_agent", "create_agent") or openinference == "AGENT":
        return "agent"
    if openinference == "CHAIN":
        return "chain"
    return "span"


def _json(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return jsontext.loads(value)  # orjson: json.loads was a tenth of mapping an LLM span
        except ValueError:
            return value
    return value


@lru_cache(maxsize=1024)  # a span's start and end are each written two or three times
def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat()


_EMPTY = (None, "", [], {})  # named once: the tuple, holding a list and a dict, was built for every value


def _present(**fields: Any) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value not in _EMPTY}


# Messages ---------------------------------------------------------------------------------------------


def _tool_call(call_id: Any, name: Any, arguments: Any) -> dict[str, Any]:
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments) if arguments is not None else ""
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def _from_parts(message: dict[str, Any]) -> dict[str, Any]:
    """A current-semconv message (``role`` and typed ``parts``) as an OpenAI-style message."""
    texts, calls, shaped = [], [], {"role": message.get("role") or "user"}
    for part in message.get("parts") or []:
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind == "text":
            texts.append(str(part.get("content") or ""))
        elif kind == "tool_call":
            calls.append(_tool_call(part.get("id"), part.get("name"), part.get("arguments")))
        elif kind == "tool_call_response":
            shaped.update(role="tool", tool_call_id=part.get("id"))
            response = part.get("response", part.get("result"))
            texts.append(response if isinstance(response, str) else json.dumps(response))
        elif kind == "reasoning":
            shaped.setdefault("reasoning", []).append(part.get("content"))
    shaped["content"] = "".join(texts)
    if calls:
        shaped["tool_calls"] = calls
    if message.get("finish_reason"):
        shaped["finish_reason"] = message["finish_reason"]
    return shaped


def _messages(raw: Any) -> list[dict[str, Any]]:
    raw = _json(raw)
    if not isinstance(raw, list):
        return []
    return [_from_parts(m) if "parts" in m else m for m in raw if isinstance(m, dict)]


def _flattened(attrs: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    """OpenInference's ``llm.input_messages.N.message.*`` (or the deprecated ``gen_ai.prompt.N.*``)
    as messages; ``prefix`` ends with the dot before N."""
    by_index: dict[int, dict[str, Any]] = {}
    for key, value in attrs.items():
        if not key.startswith(prefix):
            continue
        index, _, rest = key[len(prefix):].partition(".")
        if index.isdigit():
            by_index.setdefault(int(index), {})[rest.removeprefix("message.")] = value
    messages = []
    for _, fields in sorted(by_index.items()):
        contents = _flattened_contents(fields)
        message = _present(role=fields.get("role") or "user",
                           content=fields.get("content") or "".join(c.get("text") or "" for c in contents
                                                                     if c.get("type") == "text"),
                           tool_call_id=fields.get("tool_call_id"), name=fields.get("name"),
                           finish_reason=fields.get("finish_reason"),
                           reasoning=[c.get("text") for c in contents if c.get("type") == "reasoning" and c.get("text")])
        message.setdefault("content", "")
        calls = _flattened_calls(fields)
        if calls:
            message["tool_calls"] = calls
        messages.append(message)
    return messages


def _flattened_contents(fields: dict[str, Any]) -> list[dict[str, Any]]:
    """OpenInference's ``message.contents.N.message_content.{type,text}`` parts."""
    parts: dict[int, dict[str, Any]] = {}
    for key, value in fields.items():
        index, _, rest = key.removeprefix("contents.").partition(".")
        if key.startswith("contents.") and index.isdigit():
            parts.setdefault(int(index), {})[rest.removeprefix("message_content.")] = value
    return [part for _, part in sorted(parts.items())]


def _flattened_calls(fields: dict[str, Any]) -> list[dict[str, Any]]:
    calls: dict[int, dict[str, Any]] = {}
    for key, value in fields.items():
        if not key.startswith("tool_calls."):
            continue
        index, _, rest = key[len("tool_calls."):].partition(".")
        if index.isdigit():
            calls.setdefault(int(index), {})[rest.removeprefix("tool_call.").removeprefix("function.")] = value
    return [_tool_call(c.get("id"), c.get("name"), c.get("arguments")) for _, c in sorted(calls.items())]


_EVENT_ROLES = {"gen_ai.system.message": "system", "gen_ai.user.message": "user",
                "gen_ai.assistant.message": "assistant", "gen_ai.tool.message": "tool"}
# Where an LLM span's messages come from. A call's input holds the conversation so far, so a copy in
# metadata.otel stored it again with every call: 775 KB of metadata for a 50-call run of 27 KB of
# messages, 32 KB without (the content store keeps each message of the content once).
MESSAGE_ATTRIBUTES = ("gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions",
                      "gen_ai.prompt.", "gen_ai.completion.", "llm.input_messages.", "llm.output_messages.")
MESSAGE_EVENTS = {*_EVENT_ROLES, "gen_ai.client.inference.operation.details", "gen_ai.choice",
                  "gen_ai.content.prompt", "gen_ai.content.completion"}


def _event_messages(span: Span) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Input and output messages carried by the span's events (older GenAI conventions)."""
    inputs, outputs = [], []
    for event in span.events:
        attrs, name = event["attributes"], event["name"]
        if name in ("gen_ai.client.inference.operation.details",):
            inputs += _messages(attrs.get("gen_ai.input.messages"))
            outputs += _messages(attrs.get("gen_ai.output.messages"))
        elif name in _EVENT_ROLES:
            inputs.append(_present(role=_EVENT_ROLES[name], content=attrs.get("content"), id=attrs.get("id")))
        elif name == "gen_ai.choice":
            message = _json(attrs.get("message")) or {}
            outputs.append({"role": "assistant", **(message if isinstance(message, dict) else {"content": message}),
                            "finish_reason": attrs.get("finish_reason")})
        elif name == "gen_ai.content.prompt":
            inputs += _messages(attrs.get("gen_ai.prompt"))
        elif name == "gen_ai.content.completion":
            outputs += _messages(attrs.get("gen_ai.completion"))
    return inputs, outputs


def input_messages(span: Span) -> list[dict[str, Any]]:
    attrs = span.attributes
    messages = (_messages(attrs.get("gen_ai.input.messages")) or _flattened(attrs, "llm.input_messages.")
                or _flattened(attrs, "gen_ai.prompt.") or _event_messages(span)[0])
    system = _json(attrs.get("gen_ai.system_instructions"))
    if system and not any(m.get("role") == "system" for m in messages):
        text = "".join(p.get("content") or "" for p in system if isinstance(p, dict)) if isinstance(system, list) else system
        messages = [{"role": "system", "content": str(text)}, *messages]
    return messages


def output_messages(span: Span) -> list[dict[str, Any]]:
    attrs = span.attributes
    return (_messages(attrs.get("gen_ai.output.messages")) or _flattened(attrs, "llm.output_messages.")
            or _flattened(attrs, "gen_ai.completion.") or _event_messages(span)[1])


# Usage ------------------------------------------------------------------------------------------------


def _first(attrs: dict[str, Any], *keys: str) -> int | None:
    for key in keys:
        if type(value := attrs.get(key)) is int:  # not a bool
            return value
    return None


def provider_of(span: Span) -> str:
    attrs = span.attributes
    name = str(attrs.get("gen_ai.provider.name") or attrs.get("gen_ai.system") or attrs.get("llm.provider")
               or attrs.get("llm.system") or "").lower()
    return _PROVIDERS.get(name, name)


_PROVIDERS = {"az.ai.openai": "openai", "azure.ai.openai": "openai", "gcp.gemini": "google",
              "gcp.vertex_ai": "google", "gcp.gen_ai": "google", "aws.bedrock": "aws"}


def _uncached(prompt: int | None, read: int | None, write: int | None) -> int | None:
    """Anthropic's own ``input_tokens`` (the uncached part) from a span's input tokens.

    The GenAI conventions say ``gen_ai.usage.input_tokens`` includes cache reads and writes (as
    OpenInference's ``llm.token_count.prompt`` does), while Anthropic's API and the proxy count them
    apart. An input smaller than the cache tokens cannot include them: that exporter used Anthropic's
    meaning, and the count is taken as it is."""
    cached = (read or 0) + (write or 0)
    if prompt is None or prompt < cached:
        return prompt
    return prompt - cached


def usage(span: Span, provider: str) -> dict[str, int] | None:
    """``metadata.usage`` as the proxy makes it for the provider, plus ``reasoningTokens``."""
    attrs = span.attributes
    prompt = _first(attrs, "gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.token_count.prompt")
    completion = _first(attrs, "gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens",
                        "llm.token_count.completion")
    read = _first(attrs, "gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_read_input_tokens",
                  "llm.token_count.prompt_details.cache_read")
    write = _first(attrs, "gen_ai.usage.cache_creation.input_tokens", "gen_ai.usage.cache_creation_input_tokens",
                   "llm.token_count.prompt_details.cache_write")
    reasoning = _first(attrs, "gen_ai.usage.reasoning.output_tokens", "gen_ai.usage.reasoning_tokens",
                       "llm.token_count.completion_details.reasoning")
    if provider == "anthropic":
        mapped = anthropic.usage(_present(input_tokens=_uncached(prompt, read, write), output_tokens=completion,
                                          cache_read_input_tokens=read, cache_creation_input_tokens=write))
    else:
        total = _first(attrs, "llm.token_count.total", "gen_ai.usage.total_tokens")
        if total is None and prompt is not None and completion is not None:
            total = prompt + completion
        mapped = openai.usage(_present(prompt_tokens=prompt, completion_tokens=completion, total_tokens=total,
                                       prompt_tokens_details=_present(cached_tokens=read)))
        if mapped is not None and write is not None:
            mapped["cacheCreationTokens"] = write
    if mapped is not None and reasoning is not None:
        mapped["reasoningTokens"] = reasoning
    return mapped


# Spans ------------------------------------------------------------------------------------------------


def _otel(span: Span, kind: str) -> dict[str, Any]:
    attributes, events = span.attributes, span.events
    if kind == "llm":  # its messages are the events' content: not kept twice
        attributes = {key: value for key, value in attributes.items() if not key.startswith(MESSAGE_ATTRIBUTES)}
        events = [event for event in events if event["name"] not in MESSAGE_EVENTS]
    return _present(traceId=span.trace_id, spanId=span.span_id, parentSpanId=span.parent_id, name=span.name,
                    kind=kind, scope=span.scope, startTime=_iso(span.start_ns), endTime=_iso(span.end_ns),
                    status=span.status_message or (span.status_code == STATUS_ERROR and "error") or None,
                    attributes=attributes, events=events)


def _event(span: Span, kind: str, slot: int, ns: int, content: Any, metadata: dict[str, Any]) -> dict[str, Any]:
    return {"eventType": kind, "spanId": span.span_id, "stepId": span_step(span, slot), "timestamp": _iso(ns),
            "idempotencyKey": f"otlp:{span.span_id}:{slot}", "content": content, "metadata": metadata}


def _latency(span: Span) -> float:
    return round((span.end_ns - span.start_ns) / 1e6, 3)


def _llm(span: Span, otel: dict[str, Any]) -> list[dict[str, Any]]:
    attrs = span.attributes
    provider = provider_of(span) or "unknown"
    model = str(attrs.get("gen_ai.response.model") or attrs.get("gen_ai.request.model") or attrs.get("llm.model_name")
                or "unknown")
    events = [_event(span, "user_message", 0, span.start_ns, {"messages": input_messages(span)},
                     {"model": model, "provider": provider, "otel": otel})]
    outputs = output_messages(span)
    texts = "".join(m.get("content") or "" for m in outputs if isinstance(m.get("content"), str))
    calls = [call for m in outputs for call in m.get("tool_calls") or []]
    reasons = attrs.get("gen_ai.response.finish_reasons")
    finish = (reasons[0] if isinstance(reasons, list) and reasons else reasons) or next(
        (m["finish_reason"] for m in outputs if m.get("finish_reason")), None)
    for n, thought in enumerate([t for m in outputs for t in m.get("reasoning") or []][:SLOTS - 3]):
        events.append(_event(span, "llm_thinking", 1 + n, span.end_ns, {"type": "thinking", "thinking": thought},
                             {"otel": {"spanId": span.span_id}}))
    content = _present(content=texts or None, toolCalls=calls or None, finishReason=finish)
    metadata = _present(model=model, provider=provider, usage=usage(span, provider), latencyMs=_latency(span),
                        responseId=attrs.get("gen_ai.response.id"), otel={"spanId": span.span_id})
    events.append(_event(span, "llm_response", SLOTS - 2, span.end_ns, content, metadata))
    return events


def _tool(span: Span, otel: dict[str, Any]) -> list[dict[str, Any]]:
    attrs = span.attributes
    name = str(attrs.get("gen_ai.tool.name") or attrs.get("tool.name") or span.name.removeprefix("execute_tool ")
               or "tool")
    arguments = _json(next((attrs[k] for k in ("gen_ai.tool.call.arguments", "tool_arguments", "input.value",
                                                "tool.parameters") if k in attrs), None))
    result = _json(next((attrs[k] for k in ("gen_ai.tool.call.result", "tool_response", "output.value")
                         if k in attrs), None))
    call_id = attrs.get("gen_ai.tool.call.id") or attrs.get("tool_call.id")
    described = [_present(id=call_id, name=name, arguments=arguments)]
    request = {"toolCalls": described, "requestedAt": _iso(span.start_ns)}
    response = {"toolCalls": described, "toolResults": result if isinstance(result, dict) else {"output": result},
                "respondedAt": _iso(span.end_ns)}
    return [_event(span, "tool_call_request", 0, span.start_ns, request, {"tool": name, "otel": otel}),
            _event(span, "tool_call_response", 1, span.end_ns, response,
                   {"tool": name, "latencyMs": _latency(span), "otel": {"spanId": span.span_id}})]


def _generic(span: Span, kind: str, otel: dict[str, Any]) -> list[dict[str, Any]]:
    attrs = span.attributes
    content = _present(name=span.name, kind=kind, agent=attrs.get("gen_ai.agent.name"),
                       input=_json(attrs.get("input.value")), output=_json(attrs.get("output.value")))
    return [_event(span, "span", 0, span.start_ns, content, {"latencyMs": _latency(span), "otel": otel})]


def _errors(span: Span) -> list[dict[str, Any]]:
    for event in span.events:
        if event["name"] == "exception":
            attrs = event["attributes"]
            return [_event(span, "error", ERROR_SLOT, event["timeNs"] or span.end_ns,
                           _present(message=attrs.get("exception.message") or span.status_message or "exception",
                                    errorType=attrs.get("exception.type"), stack=attrs.get("exception.stacktrace")),
                           {"otel": {"spanId": span.span_id}})]
    if span.status_code == STATUS_ERROR:
        return [_event(span, "error", ERROR_SLOT, span.end_ns, {"message": span.status_message or f"{span.name} failed"},
                       {"otel": {"spanId": span.span_id}})]
    return []


def span_events(span: Span) -> list[dict[str, Any]]:
    """The events of one span, without trace, agent, user or the first event's parent."""
    kind = kind_of(span)
    otel = _otel(span, kind)
    if kind == "llm":
        events = _llm(span, otel)
    elif kind == "tool":
        events = _tool(span, otel)
    else:
        events = _generic(span, kind, otel)
    events += _errors(span)
    # Within a span each event follows the one before; the first hangs from the parent span.
    for before, event in zip(events, events[1:], strict=False):
        event["parentStepId"] = before["stepId"]
    return events


# Grouping ---------------------------------------------------------------------------------------------


def _attribute(spans: Iterable[Span], *keys: str) -> str | None:
    for span in spans:
        for key in keys:
            found = span.attributes.get(key, span.resource.get(key))
            if found not in (None, ""):
                return str(found)
    return None


def grouped(spans: list[Span]) -> list[tuple[dict[str, Any], list[Span]]]:
    """The spans of a request by OTel trace, each with what its events share: ``traceId`` (the
    conversation or session id when a span names one, else the OTel trace id), ``agentName``
    (``gen_ai.agent.name``, else ``service.name``) and ``externalUserId``."""
    by_trace: dict[str, list[Span]] = {}
    for span in spans:
        by_trace.setdefault(span.trace_id, []).append(span)
    groups = []
    for trace_id, members in by_trace.items():
        shared = _present(
            traceId=(_attribute(members, "gen_ai.conversation.id", "session.id") or trace_id)[:128],
            agentName=(_attribute(members, "gen_ai.agent.name", "agent.name") or _attribute(members, "service.name")
                       or "otel")[:255],
            externalUserId=(_attribute(members, "user.id", "enduser.id") or "")[:255] or None)
        groups.append((shared, members))
    return groups
