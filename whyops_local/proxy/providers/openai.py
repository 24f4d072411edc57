"""OpenAI's chat completions, responses and embeddings APIs mapped to WhyOps events (pure).

Usage keeps OpenAI's meaning: ``prompt_tokens`` include the cached ones, so ``cached_tokens`` becomes
``cacheReadTokens`` as a subset, never added on top; ``reasoning_tokens`` are likewise part of the
completion tokens.
"""

import base64
import json
import re
from typing import Any

from ...domain import jsontext
from ..sse import SSEEvent
from . import base
from .base import Api, PartialEvent, Reassembly, entry, event, json_or_none, params, present, provider_usage, text_of

PROVIDER = "openai"


def usage(raw: dict[str, Any] | None) -> dict[str, int] | None:
    if not isinstance(raw, dict):
        return None
    details = raw.get("prompt_tokens_details") or raw.get("input_tokens_details") or {}
    output_details = raw.get("completion_tokens_details") or raw.get("output_tokens_details") or {}
    mapped = {
        "promptTokens": raw.get("prompt_tokens", raw.get("input_tokens")),
        "completionTokens": raw.get("completion_tokens", raw.get("output_tokens")),
        "totalTokens": raw.get("total_tokens"),
        "cacheReadTokens": details.get("cached_tokens") if isinstance(details, dict) else None,
        # Part of the completion tokens, as cached tokens are part of the prompt tokens.
        "reasoningTokens": output_details.get("reasoning_tokens") if isinstance(output_details, dict) else None,
    }
    return {key: value for key, value in mapped.items() if isinstance(value, int)} or None


def _tools(tools: Any) -> list[dict[str, Any]] | None:
    """Request tools in the agent-version shape (``inputSchema`` as a JSON string)."""
    if not isinstance(tools, list):
        return None
    shaped = []
    for tool in tools:
        if not isinstance(tool, dict):
            continue
        spec = tool.get("function") if isinstance(tool.get("function"), dict) else tool
        name = spec.get("name") or tool.get("type") or "tool"
        schema = spec.get("parameters")
        shaped.append(present(name=name, description=spec.get("description"),
                              inputSchema=json.dumps(schema) if schema is not None else None))
    return shaped


def _request_metadata(body: dict[str, Any], system: str | None, skip: tuple[str, ...]) -> dict[str, Any]:
    return present(model=body.get("model"), provider=PROVIDER, systemPrompt=system or None,
                   tools=_tools(body.get("tools")), params=params(body, skip))


class OpenAIApi(Api):
    provider = PROVIDER

    def error_body(self, kind: str, message: str) -> dict[str, Any]:
        return {"error": {"message": message, "type": kind, "param": None, "code": kind}}


class ChatCompletions(OpenAIApi):
    _skip = ("messages", "tools", "model")

    def request_events(self, body: dict[str, Any]) -> list[PartialEvent]:
        messages = body.get("messages") or []
        system = "\n\n".join(text_of(m.get("content")) for m in messages
                             if isinstance(m, dict) and m.get("role") in ("system", "developer"))
        last = messages[-1] if messages and isinstance(messages[-1], dict) else {}
        kind = "tool_result" if last.get("role") == "tool" else "user_message"
        return [event(kind, {"messages": messages}, _request_metadata(body, system, self._skip))]

    def response_events(self, body: dict[str, Any], response: dict[str, Any], latency_ms: float) -> list[PartialEvent]:
        choice = (response.get("choices") or [{}])[0]
        message = choice.get("message") or {}
        calls = [{"id": call.get("id"), "function": call.get("function") or {}}
                 for call in message.get("tool_calls") or []]
        content = present(content=message.get("content"), toolCalls=calls or None,
                          finishReason=choice.get("finish_reason"))
        metadata = present(model=response.get("model") or body.get("model"), provider=PROVIDER,
                           usage=usage(response.get("usage")), providerUsage=provider_usage(response), latencyMs=latency_ms)
        return [event("llm_response", content, metadata)]

    def stream(self) -> "ChatStream":
        return ChatStream()

    def asking_for_usage(self, body: dict[str, Any], raw: bytes) -> bytes | None:
        """The stream request asking for usage at its end (``stream_options.include_usage``), or None if it does.

        The client's bytes are kept as they are when the option is simply absent (the common case)."""
        if "stream_options" not in body:
            start = raw.index(b"{") + 1  # the body is a JSON object: only whitespace may come before it
            return raw[:start] + b'"stream_options":{"include_usage":true},' + raw[start:]
        options = body["stream_options"]
        if options is None or isinstance(options, dict) and not options.get("include_usage"):
            return jsontext.dumps({**body, "stream_options": {**(options or {}), "include_usage": True}}).encode()
        return None

    def usage_stripper(self) -> "UsageStripper":
        return UsageStripper()

    def conversation(self, body: dict[str, Any]) -> list[bytes]:
        return [_chat_entry(m) for m in body.get("messages") or [] if isinstance(m, dict)]

    def answer(self, response: dict[str, Any]) -> list[bytes]:
        choice = (response.get("choices") or [{}])[0]
        return [_chat_entry({"role": "assistant", **(choice.get("message") or {})})]

    def tool_results(self, body: dict[str, Any]) -> list[tuple[str, Any]]:
        results = []
        for message in reversed(body.get("messages") or []):
            if not isinstance(message, dict) or message.get("role") != "tool":
                break
            results.append((message.get("tool_call_id"), message.get("content")))
        return results[::-1]

def _chat_entry(message: dict[str, Any]) -> bytes:
    calls = [call.get("id") for call in message.get("tool_calls") or [] if isinstance(call, dict)]
    return entry(message.get("role") or "", text_of(message.get("content")), calls, message.get("tool_call_id"))


class ChatStream(Reassembly):
    """Chat completion chunks merged into one completion: text joined, tool calls merged by index."""

    def __init__(self) -> None:
        self.head: dict[str, Any] = {}
        self.parts: list[str] = []
        self.calls: dict[int, dict[str, Any]] = {}
        self.finish: str | None = None
        self.usage: dict[str, Any] | None = None

    def feed(self, sse: SSEEvent) -> None:
        if sse.data == "[DONE]":
            self.done = True
            return
        chunk = json_or_none(sse.data)
        if not isinstance(chunk, dict):
            return
        for key in ("id", "object", "created", "model", "system_fingerprint"):
            if key in chunk and key not in self.head:
                self.head[key] = chunk[key]
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) == 0:
                self._delta(choice.get("delta") or {})
                self.finish = choice.get("finish_reason") or self.finish

    def _delta(self, delta: dict[str, Any]) -> None:
        if delta.get("content"):
            self.parts.append(delta["content"])
        for part in delta.get("tool_calls") or []:
            call = self.calls.setdefault(part.get("index", 0), {"id": None, "type": "function",
                                                               "function": {"name": "", "arguments": ""}})
            function = part.get("function") or {}
            call["id"] = part.get("id") or call["id"]
            call["function"]["name"] = function.get("name") or call["function"]["name"]
            call["function"]["arguments"] += function.get("arguments") or ""

    def text(self) -> str:
        return "".join(self.parts)

    def response(self) -> dict[str, Any]:
        message = {"role": "assistant", "content": "".join(self.parts) if self.parts or not self.calls else None}
        if self.calls:
            message["tool_calls"] = [self.calls[index] for index in sorted(self.calls)]
        choice = {"index": 0, "message": message, "finish_reason": self.finish}
        return {**self.head, "object": "chat.completion", "choices": [choice], "usage": self.usage}


_EVENT_END = re.compile(rb"\r\n\r\n|\n\n|\r\r")
# A JSON key with unescaped quotes cannot occur inside a JSON string, so this finds only keys.
_USAGE_NULL = re.compile(rb',\s*"usage"\s*:\s*null(?=\s*[,}])|"usage"\s*:\s*null\s*,')


class UsageStripper(base.UsageStripper):
    """What asking for usage adds to a chat-completions stream, taken out of the relayed bytes: the
    usage-only chunk at the end (``"choices": []``) and the ``"usage": null`` of every other chunk.

    Works on whole events, so a chunk is passed on once its event's blank line has arrived (upstream
    writes one or more whole events at a time)."""

    def __init__(self) -> None:
        self._tail = b""

    def feed(self, chunk: bytes) -> bytes:
        data = self._tail + chunk
        ends = list(_EVENT_END.finditer(data))
        if not ends:
            self._tail = data
            return b""
        self._tail = data[ends[-1].end():]
        starts = [0, *(end.end() for end in ends[:-1])]
        return b"".join(_without_usage(data[start:end.end()]) for start, end in zip(starts, ends, strict=True))

    def close(self) -> bytes:
        rest, self._tail = self._tail, b""
        return _without_usage(rest) if rest else b""


def _without_usage(raw: bytes) -> bytes:
    if b'"usage"' not in raw:
        return raw
    lines = raw.splitlines()
    data = b"\n".join(line[5:].removeprefix(b" ") for line in lines if line.startswith(b"data:"))
    chunk = json_or_none(data)
    if not isinstance(chunk, dict) or "usage" not in chunk:
        return raw
    if chunk["usage"] is not None:
        return b"" if chunk.get("choices") == [] else raw  # the usage-only chunk the client did not ask for
    found = list(_USAGE_NULL.finditer(raw))
    if not found:
        return raw
    last = found[-1]  # the top-level key comes last in OpenAI's chunks
    return raw[:last.start()] + raw[last.end():]


class Responses(OpenAIApi):
    _skip = ("input", "instructions", "tools", "model")

    def request_events(self, body: dict[str, Any]) -> list[PartialEvent]:
        items = _input_items(body)
        last = items[-1] if items and isinstance(items[-1], dict) else {}
        kind = "tool_result" if last.get("type") == "function_call_output" else "user_message"
        instructions = body.get("instructions") if isinstance(body.get("instructions"), str) else None
        return [event(kind, {"messages": items}, _request_metadata(body, instructions, self._skip))]

    def response_events(self, body: dict[str, Any], response: dict[str, Any], latency_ms: float) -> list[PartialEvent]:
        events, texts, calls = [], [], []
        for item in response.get("output") or []:
            kind = item.get("type")
            if kind == "reasoning":
                summary = "".join(part.get("text") or "" for part in item.get("summary") or [])
                if summary:
                    events.append(event("llm_thinking", {"type": "thinking", "thinking": summary}))
            elif kind == "message":
                texts.append(text_of(item.get("content")))
            elif kind == "function_call":
                calls.append({"id": item.get("call_id"), "function": {"name": item.get("name"),
                                                                      "arguments": item.get("arguments")}})
        finish = (response.get("incomplete_details") or {}).get("reason") or response.get("status")
        content = present(content="".join(texts) if texts else None, toolCalls=calls or None, finishReason=finish)
        metadata = present(model=response.get("model") or body.get("model"), provider=PROVIDER,
                           usage=usage(response.get("usage")), providerUsage=provider_usage(response), latencyMs=latency_ms)
        return [*events, event("llm_response", content, metadata)]

    def stream(self) -> "ResponsesStream":
        return ResponsesStream()

    def conversation(self, body: dict[str, Any]) -> list[bytes]:
        return [e for e in map(_responses_entry, _input_items(body)) if e]

    def answer(self, response: dict[str, Any]) -> list[bytes]:
        return [e for e in map(_responses_entry, response.get("output") or []) if e]

    def tool_results(self, body: dict[str, Any]) -> list[tuple[str, Any]]:
        results = []
        for item in reversed(_input_items(body)):
            if not isinstance(item, dict) or item.get("type") != "function_call_output":
                break
            results.append((item.get("call_id"), item.get("output")))
        return results[::-1]

    def previous_id(self, body: dict[str, Any]) -> str | None:
        return body.get("previous_response_id")

def _input_items(body: dict[str, Any]) -> list[Any]:
    given = body.get("input")
    if isinstance(given, str):
        return [{"role": "user", "content": given}]
    return given if isinstance(given, list) else []


def _responses_entry(item: Any) -> bytes | None:
    if not isinstance(item, dict):
        return None
    kind = item.get("type", "message")
    if kind == "message":
        return entry(item.get("role") or "", text_of(item.get("content")))
    if kind == "function_call":
        return entry("assistant", "", [item.get("call_id")])
    if kind == "function_call_output":
        return entry("tool", text_of(item.get("output")), result_for=item.get("call_id"))
    return None  # reasoning and other items are not always echoed back


class ResponsesStream(Reassembly):
    """The final ``response.completed`` object; for a cut stream, what arrived of the output."""

    def __init__(self) -> None:
        self.final: dict[str, Any] | None = None
        self.started: dict[str, Any] = {}
        self.items: list[dict[str, Any]] = []
        self.parts: list[str] = []

    def feed(self, sse: SSEEvent) -> None:
        data = json_or_none(sse.data)
        if not isinstance(data, dict):
            return
        kind = data.get("type") or sse.event
        if kind in ("response.completed", "response.incomplete", "response.failed"):
            self.final = data.get("response") or {}
            self.done = True
        elif kind == "response.created":
            self.started = data.get("response") or {}
        elif kind == "response.output_item.done":
            self.items.append(data.get("item") or {})
        elif kind == "response.output_text.delta":
            self.parts.append(data.get("delta") or "")

    def text(self) -> str:
        return "".join(self.parts)

    def response(self) -> dict[str, Any]:
        if self.final is not None:
            return self.final
        output = list(self.items)
        if self.parts and not any(item.get("type") == "message" for item in output):
            output.append({"type": "message", "role": "assistant",
                           "content": [{"type": "output_text", "text": "".join(self.parts)}]})
        return {**self.started, "output": output}


class Embeddings(OpenAIApi):

    def request_events(self, body: dict[str, Any]) -> list[PartialEvent]:
        given = body.get("input")
        inputs = [given] if isinstance(given, str) else given
        return [event("embedding_request", {"input": inputs}, present(model=body.get("model"), provider=PROVIDER))]

    def response_events(self, body: dict[str, Any], response: dict[str, Any], latency_ms: float) -> list[PartialEvent]:
        data = response.get("data") or []
        content = {"object": response.get("object", "list"), "embeddingCount": len(data),
                   "firstEmbeddingDimensions": _dimensions(data[0].get("embedding")) if data else 0,
                   "encodingFormat": body.get("encoding_format") or "float"}
        metadata = present(model=response.get("model") or body.get("model"), provider=PROVIDER,
                           usage=usage(response.get("usage")), providerUsage=provider_usage(response), latencyMs=latency_ms)
        return [event("embedding_response", content, metadata)]

def _dimensions(embedding: Any) -> int:
    if isinstance(embedding, list):
        return len(embedding)
    if isinstance(embedding, str):  # base64 of little-endian float32s, the SDKs' default encoding
        try:
            return len(base64.b64decode(embedding)) // 4
        except ValueError:
            return 0
    return 0


class Passthrough(OpenAIApi):
    """Routes relayed unrecorded (the model list)."""

    recorded = False


CHAT, RESPONSES, EMBEDDINGS, PASSTHROUGH = ChatCompletions(), Responses(), Embeddings(), Passthrough()
