"""Anthropic's messages API mapped to WhyOps events (pure).

Usage keeps Anthropic's meaning: ``input_tokens`` exclude the cache, so cache reads and writes come on
top, and 1-hour cache writes are counted apart (``cacheCreation1hTokens``) because they cost more.
"""

import json
from typing import Any

from ..sse import SSEEvent
from .base import Api, PartialEvent, Reassembly, entry, event, json_or_none, params, present, provider_usage, text_of

PROVIDER = "anthropic"


def usage(raw: dict[str, Any] | None) -> dict[str, int] | None:
    if not isinstance(raw, dict):
        return None
    prompt, completion = raw.get("input_tokens"), raw.get("output_tokens")
    read, write = raw.get("cache_read_input_tokens"), raw.get("cache_creation_input_tokens")
    mapped = {"promptTokens": prompt, "completionTokens": completion, "cacheReadTokens": read,
              "cacheCreationTokens": write,
              "cacheCreation1hTokens": (raw.get("cache_creation") or {}).get("ephemeral_1h_input_tokens") or None}
    mapped = {key: value for key, value in mapped.items() if isinstance(value, int)}
    if mapped:
        mapped["totalTokens"] = sum(value or 0 for value in (prompt, completion, read, write))
    return mapped or None


def _tools(tools: Any) -> list[dict[str, Any]] | None:
    if not isinstance(tools, list):
        return None
    return [present(name=tool.get("name") or tool.get("type") or "tool", description=tool.get("description"),
                    inputSchema=json.dumps(tool["input_schema"]) if "input_schema" in tool else None)
            for tool in tools if isinstance(tool, dict)]


def _blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [block for block in content if isinstance(block, dict)] if isinstance(content, list) else []


class AnthropicApi(Api):
    provider = PROVIDER

    def error_body(self, kind: str, message: str) -> dict[str, Any]:
        return {"type": "error", "error": {"type": kind, "message": message}}


class Messages(AnthropicApi):
    _skip = ("messages", "system", "tools", "model")

    def request_events(self, body: dict[str, Any]) -> list[PartialEvent]:
        messages = body.get("messages") or []
        kind = "tool_result" if self.tool_results(body) else "user_message"
        metadata = present(model=body.get("model"), provider=PROVIDER, systemPrompt=text_of(body.get("system")) or None,
                           tools=_tools(body.get("tools")), params=params(body, self._skip))
        return [event(kind, {"messages": messages}, metadata)]

    def response_events(self, body: dict[str, Any], response: dict[str, Any], latency_ms: float) -> list[PartialEvent]:
        events, texts, calls = [], [], []
        for block in _blocks(response.get("content")):
            kind = block.get("type")
            if kind == "thinking":
                events.append(event("llm_thinking", present(type="thinking", thinking=block.get("thinking"),
                                                           signature=block.get("signature"))))
            elif kind == "redacted_thinking":
                events.append(event("llm_thinking", {"type": "redacted_thinking", "data": block.get("data")}))
            elif kind == "text":
                texts.append(block.get("text") or "")
            elif kind in ("tool_use", "server_tool_use"):
                arguments = block.get("input")
                calls.append({"id": block.get("id"), "function": {
                    "name": block.get("name"),
                    "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments)}})
        content = present(content="".join(texts) if texts else None, toolCalls=calls or None,
                          finishReason=response.get("stop_reason"))
        metadata = present(model=response.get("model") or body.get("model"), provider=PROVIDER,
                           usage=usage(response.get("usage")), providerUsage=provider_usage(response), latencyMs=latency_ms)
        return [*events, event("llm_response", content, metadata)]

    def stream(self) -> "MessageStream":
        return MessageStream()

    def conversation(self, body: dict[str, Any]) -> list[bytes]:
        entries = [entry("system", text_of(body.get("system")))] if body.get("system") else []
        for message in body.get("messages") or []:
            if isinstance(message, dict):
                entries += _entries(message.get("role") or "", message.get("content"))
        return entries

    def answer(self, response: dict[str, Any]) -> list[bytes]:
        return _entries("assistant", response.get("content"))

    def tool_results(self, body: dict[str, Any]) -> list[tuple[str, Any]]:
        messages = body.get("messages") or []
        last = messages[-1] if messages and isinstance(messages[-1], dict) else {}
        if last.get("role") != "user":
            return []
        return [(block.get("tool_use_id"), block.get("content"))
                for block in _blocks(last.get("content")) if block.get("type") == "tool_result"]


def _entries(role: str, content: Any) -> list[bytes]:
    """One entry for a message's text and tool uses, one per tool result (thinking is left out)."""
    blocks = _blocks(content)
    text = "".join(block.get("text") or "" for block in blocks if block.get("type") == "text")
    calls = [block.get("id") for block in blocks if block.get("type") in ("tool_use", "server_tool_use")]
    results = [entry("tool", text_of(block.get("content")), result_for=block.get("tool_use_id"))
               for block in blocks if block.get("type") == "tool_result"]
    return results + ([entry(role, text, calls)] if text or calls or not results else [])


class MessageStream(Reassembly):
    """Message events rebuilt into one message: blocks by index, deltas appended, usage merged."""

    def __init__(self) -> None:
        self.message: dict[str, Any] = {}
        self.blocks: dict[int, dict[str, Any]] = {}
        self.partial_json: dict[int, list[str]] = {}

    def feed(self, sse: SSEEvent) -> None:
        data = json_or_none(sse.data)
        if not isinstance(data, dict):
            return
        kind = data.get("type") or sse.event
        if kind == "message_start":
            self.message = dict(data.get("message") or {})
        elif kind == "content_block_start":
            self.blocks[data.get("index", 0)] = dict(data.get("content_block") or {})
        elif kind == "content_block_delta":
            self._delta(data.get("index", 0), data.get("delta") or {})
        elif kind == "content_block_stop":
            self._finish_block(data.get("index", 0))
        elif kind == "message_delta":
            self.message.update({k: v for k, v in (data.get("delta") or {}).items() if v is not None})
            # message_delta usage is cumulative; keys it leaves out keep their message_start values.
            merged = dict(self.message.get("usage") or {})
            merged.update({k: v for k, v in (data.get("usage") or {}).items() if v is not None})
            self.message["usage"] = merged
        elif kind == "message_stop":
            self.done = True

    def _delta(self, index: int, delta: dict[str, Any]) -> None:
        block = self.blocks.setdefault(index, {})
        kind = delta.get("type")
        if kind == "text_delta":
            block["text"] = block.get("text", "") + delta.get("text", "")
        elif kind == "thinking_delta":
            block["thinking"] = block.get("thinking", "") + delta.get("thinking", "")
        elif kind == "signature_delta":
            block["signature"] = block.get("signature", "") + delta.get("signature", "")
        elif kind == "input_json_delta":
            self.partial_json.setdefault(index, []).append(delta.get("partial_json", ""))
        elif kind == "citations_delta":
            block.setdefault("citations", []).append(delta.get("citation"))

    def _finish_block(self, index: int) -> None:
        if index in self.partial_json:
            raw = "".join(self.partial_json.pop(index))
            parsed = json_or_none(raw) if raw else {}
            # An unfinished input (cut stream) is kept as the raw text that arrived.
            self.blocks.setdefault(index, {})["input"] = parsed if parsed is not None else raw

    def text(self) -> str:
        return "".join(self.blocks[index].get("text", "") for index in sorted(self.blocks))

    def response(self) -> dict[str, Any]:
        for index in list(self.partial_json):
            self._finish_block(index)
        return {**self.message, "content": [self.blocks[index] for index in sorted(self.blocks)]}


class Passthrough(AnthropicApi):
    """Routes relayed unrecorded (``messages/count_tokens``, the model list)."""

    recorded = False


MESSAGES, PASSTHROUGH = Messages(), Passthrough()
