"""What changed in the prompt between two consecutive LLM calls of a trace (pure, no Django).

A call is a request event (``user_message`` or ``tool_result`` carrying ``content.messages``, as the
proxy records every request and the SDK's ``user_message`` does) and the ``llm_response`` after it.
Messages are compared whole: appended at the end, removed (compaction, truncation), or edited in place.
"""

import difflib
from dataclasses import dataclass
from typing import Any

from . import jsontext

REQUEST_KINDS = ("user_message", "tool_result")
PREVIEW = 200


@dataclass
class Call:
    request_step: int | None
    response_step: int
    request_key: Any = None  # the events' own keys (database ids), to fetch just these
    response_key: Any = None


def pair_calls(rows: list[tuple[int, str, Any]]) -> list[Call]:
    """LLM calls from (step id, event type, key) rows in step order: each response with the request before it."""
    calls, request = [], None
    for step_id, kind, key in rows:
        if kind in REQUEST_KINDS:
            request = (step_id, key)
        elif kind == "llm_response":
            calls.append(Call(request[0] if request else None, step_id, request[1] if request else None, key))
            request = None
    return calls


def find_call(calls: list[Call], step_id: int) -> int | None:
    """The index of the call a step belongs to (its response or its request)."""
    for index, call in enumerate(calls):
        if step_id in (call.response_step, call.request_step):
            return index
    return None


def message_text(message: Any) -> str:
    """A message's text, with tool uses and results named, for showing and for token estimates."""
    if not isinstance(message, dict):
        return jsontext.dumps(message)
    content = message.get("content")
    if isinstance(content, str):
        parts = [content]
    elif isinstance(content, list):
        parts = [_part_text(part) for part in content]
    else:
        parts = []
    for call in message.get("tool_calls") or []:
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            parts.append(f"[tool call {function.get('name')}({function.get('arguments')})]")
    return "\n".join(part for part in parts if part)


def _part_text(part: Any) -> str:
    if not isinstance(part, dict):
        return str(part)
    kind = part.get("type")
    if kind in ("text", "input_text", "output_text"):
        return part["text"] if isinstance(part.get("text"), str) else ""
    if kind == "tool_use":
        return f"[tool use {part.get('name')}({jsontext.dumps(part.get('input'))})]"
    if kind == "tool_result":
        inner = part.get("content")
        return f"[tool result: {inner if isinstance(inner, str) else message_text({'content': inner})}]"
    return f"[{kind}]" if isinstance(kind, str) else ""


def _entry(index: int, message: Any) -> dict[str, Any]:
    text = message_text(message)
    return {"index": index, "role": message.get("role") if isinstance(message, dict) else None,
            "text": text[:PREVIEW] + ("…" if len(text) > PREVIEW else ""),
            # Per-message counts are not reported by providers; ~4 characters a token.
            "estimatedTokens": (len(text) + 3) // 4}


def _key(message: Any) -> str:
    return jsontext.dumps(message)


def diff_messages(before: list[Any], after: list[Any]) -> dict[str, list[dict[str, Any]]]:
    """Messages appended, removed and edited from ``before`` to ``after`` (indexes are each list's own)."""
    appended, removed, edited = [], [], []
    matcher = difflib.SequenceMatcher(None, [_key(m) for m in before], [_key(m) for m in after], autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "delete":
            removed += [_entry(i, before[i]) for i in range(i1, i2)]
        elif tag == "insert":
            appended += [_entry(j, after[j]) for j in range(j1, j2)]
        elif tag == "replace":
            # Side by side, a message is edited when it is still recognisably itself (same role, similar
            # text); a summary standing in for several dropped messages is removals and an addition.
            for offset in range(max(i2 - i1, j2 - j1)):
                old = _entry(i1 + offset, before[i1 + offset]) if i1 + offset < i2 else None
                new = _entry(j1 + offset, after[j1 + offset]) if j1 + offset < j2 else None
                if old and new and _same_message(old, new):
                    edited.append({**new, "previousIndex": old["index"], "previousText": old["text"]})
                    continue
                if old:
                    removed.append(old)
                if new:
                    appended.append(new)
    return {"appended": appended, "removed": removed, "edited": edited}


def _same_message(old: dict[str, Any], new: dict[str, Any]) -> bool:
    return old["role"] == new["role"] and difflib.SequenceMatcher(None, old["text"], new["text"]).ratio() >= 0.5


def _messages(request: dict[str, Any] | None) -> list[Any]:
    content = (request or {}).get("content")
    messages = content.get("messages") if isinstance(content, dict) else None
    return messages if isinstance(messages, list) else []


def _meta(event: dict[str, Any] | None, key: str) -> Any:
    return ((event or {}).get("metadata") or {}).get(key)


def _changed(before: dict[str, Any] | None, after: dict[str, Any] | None, key: str, empty: Any) -> bool:
    return (_meta(before, key) or empty) != (_meta(after, key) or empty)


def _prompt_tokens(response: dict[str, Any] | None) -> int | None:
    usage = _meta(response, "usage")
    return usage.get("promptTokens") if isinstance(usage, dict) else None


def context_change(step_id: int, previous_step_id: int | None, request: dict[str, Any] | None,
                   response: dict[str, Any] | None, previous_request: dict[str, Any] | None,
                   previous_response: dict[str, Any] | None) -> dict[str, Any]:
    """The API's answer for one call, given its events and the previous call's (read-API event dicts)."""
    changes = diff_messages(_messages(previous_request), _messages(request))
    first = previous_step_id is None
    tokens, before = _prompt_tokens(response), _prompt_tokens(previous_response)
    return {
        "stepId": step_id,
        "previousStepId": previous_step_id,
        **changes,
        "systemPromptChanged": not first and _changed(previous_request, request, "systemPrompt", ""),
        "toolsChanged": not first and _changed(previous_request, request, "tools", []),
        "promptTokens": tokens,
        "previousPromptTokens": before,
        "promptTokensDelta": tokens - before if tokens is not None and before is not None else None,
    }
