"""A trace read top to bottom: every message once, in order, folded into blocks (pure, no Django).

Input is read-API event dicts in step order, each with ``node`` (its graph node id) and ``tokens``
(input, cache read, cache write, output). A proxied request repeats the whole history, so only what
is new since the previous request is shown: the answers are already there, and tool results join the
tool call they answer, as do tool spans.
"""

from typing import Any

from ..domain.events import TOOL_EVENTS
from . import display
from .markdown import to_html

# No fold holds more steps than this: long turns, and runs without user messages, split into blocks.
FOLD_STEPS = 50


def _line(event: dict[str, Any]) -> dict[str, Any]:
    metadata = event.get("metadata") or {}
    return {"model": metadata.get("model"), "latencyMs": metadata.get("latencyMs"), "tokens": event.get("tokens"),
            "costUsd": event.get("costUsd"), "costNote": event.get("costNote")}


def _text_html(content: Any) -> tuple[str, list[dict[str, Any]]]:
    """Markdown HTML for a message's text parts, and its other blocks (images, JSON) for the template."""
    parts = display.blocks(content)
    texts = [b["text"] for b in parts if b["type"] == "text"]
    return to_html("\n\n".join(texts)) if texts else "", [b for b in parts if b["type"] != "text"]


class Reader:
    """Walks the events once; ``items`` is the conversation, ``folds`` groups it."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.calls: dict[str, dict[str, Any]] = {}  # tool calls by id, waiting for their results
        self.waiting: list[dict[str, Any]] = []  # tool calls without a result yet, matched by tool name
        self.history = 0  # length of the previous proxied request's history

    def add(self, event: dict[str, Any]) -> None:
        kind = event["eventType"]
        handler = getattr(self, "_" + kind, None) if kind not in TOOL_EVENTS else self._tool
        item = handler(event) if handler else {"kind": "other", "label": kind, "value": event.get("content")}
        if item is not None:
            self.items.append({"node": event["node"], "step": event["stepId"], "eventType": kind, **item})

    def _messages(self, event: dict[str, Any]) -> list[Any]:
        content = event.get("content")
        messages = content.get("messages") if isinstance(content, dict) else None
        if not isinstance(messages, list):
            return [{"role": "user", "content": content}]
        if event.get("source") != "proxy":
            return messages
        new = messages[self.history:] if len(messages) > self.history else messages
        first = self.history == 0 or len(messages) <= self.history
        self.history = len(messages)
        # The answers in a resent history were shown when they were made.
        return new if first else [m for m in new if not _said_by_model(m)]

    def _user_message(self, event: dict[str, Any]) -> dict[str, Any] | None:
        metadata = event.get("metadata") or {}
        turns = []
        for message in self._messages(event):
            if not isinstance(message, dict):
                turns.append({"role": "user", "html": "", "blocks": display.blocks(message)})
                continue
            if self._attach_results(message) or (message.get("role") in ("system", "developer") and metadata.get("systemPrompt")):
                continue
            role = str(message.get("role") or message.get("type") or "?")
            html, rest = _text_html(message.get("content"))
            turns.append({"role": role, "html": html, "blocks": rest})
        system = metadata.get("systemPrompt")
        if not turns and not system:
            return None
        return {"kind": "input", "system": system, "messages": turns}

    _tool_result = _user_message

    def _attach_results(self, message: dict[str, Any]) -> bool:
        """Give each tool result in ``message`` to its call; True when nothing else is left to show."""
        results = display.tool_results({"messages": [message]})
        for result in results:
            call = self.calls.get(str(result["id"]))
            if call is not None and call.get("result") is None:
                call["result"] = result["blocks"]
        return bool(results) and all(str(r["id"]) in self.calls for r in results)

    def _llm_response(self, event: dict[str, Any]) -> dict[str, Any]:
        body = event.get("content") if isinstance(event.get("content"), dict) else {"content": event.get("content")}
        html, rest = _text_html(body.get("content"))
        calls = [{**display.tool_call(c), "result": None} for c in body.get("toolCalls") or []]
        for call in calls:
            if call["id"]:
                self.calls[str(call["id"])] = call
        self.waiting += calls
        return {"kind": "answer", "html": html, "blocks": rest, "calls": calls, "finish": body.get("finishReason"),
                "line": _line(event), "interrupted": (event.get("metadata") or {}).get("interrupted")}

    def _llm_thinking(self, event: dict[str, Any]) -> dict[str, Any]:
        return {"kind": "thinking", "thinking": display.thinking_block(event.get("content"))}

    def _error(self, event: dict[str, Any]) -> dict[str, Any]:
        body = event.get("content") if isinstance(event.get("content"), dict) else {}
        return {"kind": "error", "message": display.error_message(event.get("content")), "status": body.get("status"),
                "stack": body.get("stack"), "line": _line(event)}

    def _embedding_request(self, event: dict[str, Any]) -> dict[str, Any]:
        inputs = (event.get("content") or {}).get("input") if isinstance(event.get("content"), dict) else None
        return {"kind": "embedding", "inputs": inputs if isinstance(inputs, list) else [inputs]}

    def _embedding_response(self, event: dict[str, Any]) -> dict[str, Any]:
        return {"kind": "embedded", "line": _line(event)}

    def _tool(self, event: dict[str, Any]) -> dict[str, Any] | None:
        """A tool span's request or response: joins the model's tool call when there is one."""
        body = event.get("content") if isinstance(event.get("content"), dict) else {}
        described = [display.tool_call(c) for c in body.get("toolCalls") or []]
        name = (event.get("metadata") or {}).get("tool") or next((c["name"] for c in described if c["name"]), None)
        call = self.calls.get(str(event.get("spanId"))) or self._call_for(described, name)
        result = display.blocks(body["toolResults"]) if "toolResults" in body else None
        if call is not None:
            self.calls[str(event.get("spanId"))] = call  # the span's response finds it by span id
            call["latencyMs"] = (event.get("metadata") or {}).get("latencyMs", call.get("latencyMs"))
            if result is not None and call.get("result") is None:
                call["result"] = result
            return None
        call = {"type": "tool_call", "id": event.get("spanId"), "name": name, "result": result,
                "arguments": described[0]["arguments"] if described else None,
                "latencyMs": (event.get("metadata") or {}).get("latencyMs")}
        self.calls[str(event.get("spanId"))] = call
        return {"kind": "tool", "calls": [call]}

    def _call_for(self, described: list[dict[str, Any]], name: str | None) -> dict[str, Any] | None:
        for call in described:
            if call["id"] and str(call["id"]) in self.calls:
                return self.calls[str(call["id"])]
        # An SDK's tool span names its tool but not the model's call id.
        for call in self.waiting:
            if call["name"] == name:
                self.waiting.remove(call)
                return call
        return None


def _said_by_model(message: Any) -> bool:
    return isinstance(message, dict) and (message.get("role") == "assistant" or message.get("type") in
                                          ("function_call", "reasoning"))


def _fold(number: int, items: list[dict[str, Any]]) -> dict[str, Any]:
    lines = [i["line"] for i in items if i.get("line")]
    tokens = [sum((line["tokens"] or (0, 0, 0, 0))[k] or 0 for line in lines) for k in range(4)]
    costs = [line["costUsd"] for line in lines if line["costUsd"] is not None]
    return {"number": number, "items": items, "first": items[0]["step"], "last": items[-1]["step"],
            "calls": len(lines), "errors": sum(i["kind"] == "error" for i in items),
            "latencyMs": sum(line["latencyMs"] or 0 for line in lines), "tokens": tokens,
            "costUsd": sum(costs) if costs else None}


def folds(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Blocks of at most ``FOLD_STEPS`` items, each starting at a user's message when there is one."""
    out: list[list[dict[str, Any]]] = []
    for item in items:
        starts_turn = item["eventType"] == "user_message"
        if not out or starts_turn or len(out[-1]) >= FOLD_STEPS:
            out.append([])
        out[-1].append(item)
    return [_fold(number, block) for number, block in enumerate(out, 1)]


def conversation(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    reader = Reader()
    for event in events:
        reader.add(event)
    return folds(reader.items)
