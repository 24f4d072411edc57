"""Untrusted event content turned into display blocks for the step panel (pure, no Django).

Nothing here produces markup: blocks are plain dicts the templates render with autoescape on.
Images travel as base64 data and are only ever shown as ``<img src="data:image/...">`` for raster
types after checking the payload is base64; everything else is text.
"""

import json
import re
from typing import Any

from ..domain import jsontext

# Raster types only: an SVG data URL could carry script.
IMAGE_TYPES = ("image/png", "image/jpeg", "image/jpg", "image/gif", "image/webp")
_DATA_URL = re.compile(r"^data:(image/[a-z0-9.+-]+);base64,([A-Za-z0-9+/=\s]*)$", re.I)
_BASE64 = re.compile(r"^[A-Za-z0-9+/=\s]+$")
# Strings longer than this that look like base64 are elided in JSON views.
BASE64_ELIDE = 256


def base64_size(data: str) -> int:
    data = "".join(data.split())
    return len(data) * 3 // 4 - data[-2:].count("=")


def image_block(mime: str, data: str) -> dict[str, Any]:
    mime = mime.lower()
    ok = mime in IMAGE_TYPES and bool(_BASE64.match(data or ""))
    return {
        "type": "image",
        "mime": mime,
        "bytes": base64_size(data or ""),
        "src": f"data:{mime};base64,{''.join(data.split())}" if ok else None,
    }


def _image_from_url(url: Any) -> dict[str, Any]:
    if isinstance(url, dict):
        url = url.get("url")
    if isinstance(url, str):
        match = _DATA_URL.match(url)
        if match:
            return image_block(match.group(1), match.group(2))
        # A remote image is named, never fetched: the viewer works offline and leaks nothing.
        return {"type": "image_ref", "url": url}
    return {"type": "json", "value": url}


def blocks(content: Any) -> list[dict[str, Any]]:
    """Display blocks for a message's content: text, image, tool call, tool result, thinking or JSON."""
    if content is None:
        return []
    if isinstance(content, str):
        match = _DATA_URL.match(content) if content.startswith("data:image/") else None
        return [image_block(match.group(1), match.group(2))] if match else [{"type": "text", "text": content}]
    if isinstance(content, list):
        out: list[dict[str, Any]] = []
        for part in content:
            out += _part(part)
        return out
    return [{"type": "json", "value": content}]


def _part(part: Any) -> list[dict[str, Any]]:
    if isinstance(part, str):
        return blocks(part)
    if not isinstance(part, dict):
        return [{"type": "json", "value": part}]
    kind = part.get("type")
    if kind in ("text", "input_text", "output_text") and isinstance(part.get("text"), str):
        return [{"type": "text", "text": part["text"]}]
    if kind in ("image_url", "input_image"):
        return [_image_from_url(part.get("image_url") or part.get("url"))]
    if kind == "image" and isinstance(part.get("source"), dict):
        source = part["source"]
        if source.get("type") == "base64":
            return [image_block(str(source.get("media_type", "")), str(source.get("data", "")))]
        return [_image_from_url(source.get("url"))]
    if kind == "tool_use":
        return [{"type": "tool_call", "id": part.get("id"), "name": part.get("name"), "arguments": part.get("input")}]
    if kind == "tool_result":
        return [{"type": "tool_result", "id": part.get("tool_use_id"), "blocks": blocks(part.get("content"))}]
    if kind in ("thinking", "redacted_thinking"):
        return [thinking_block(part)]
    return [{"type": "json", "value": part}]


def thinking_block(content: Any) -> dict[str, Any]:
    body = content if isinstance(content, dict) else {"thinking": content}
    redacted = body.get("type") == "redacted_thinking"
    return {
        "type": "thinking",
        "redacted": redacted,
        "text": "" if redacted else str(body.get("thinking") or ""),
        "signed": bool(body.get("signature")) or (redacted and bool(body.get("data"))),
    }


def transcript(content: Any) -> list[dict[str, Any]]:
    """A user_message's messages as chat turns: role, name and blocks."""
    messages = content.get("messages") if isinstance(content, dict) else content
    if not isinstance(messages, list):
        return [{"role": "content", "blocks": blocks(content)}]
    turns = []
    for message in messages:
        if not isinstance(message, dict):
            turns.append({"role": "?", "blocks": blocks(message)})
            continue
        turn_blocks = blocks(message.get("content"))
        for call in message.get("tool_calls") or message.get("toolCalls") or []:
            turn_blocks.append(tool_call(call))
        turns.append({"role": str(message.get("role") or "?"), "name": message.get("name") or message.get("tool_call_id"),
                      "blocks": turn_blocks})
    return turns


def parse_json_string(value: Any) -> Any:
    """Tool arguments arrive as a JSON string (OpenAI) or an object; show them as the object when they parse."""
    return jsontext.parsed_or_as_is(value)


def tool_call(call: Any) -> dict[str, Any]:
    if not isinstance(call, dict):
        return {"type": "tool_call", "id": None, "name": None, "arguments": call}
    function = call.get("function") if isinstance(call.get("function"), dict) else {}
    return {
        "type": "tool_call",
        "id": call.get("id"),
        "name": call.get("name") or function.get("name"),
        "arguments": parse_json_string(call.get("arguments", function.get("arguments"))),
    }


def elide_base64(value: Any) -> Any:
    """A copy of JSON ``value`` with long base64 payloads replaced by their size."""
    if isinstance(value, str):
        if len(value) > BASE64_ELIDE:
            match = _DATA_URL.match(value) if value.startswith("data:") else None
            if match:
                return f"data:{match.group(1)};base64,… ({base64_size(match.group(2)):,} bytes elided)"
            if _BASE64.match(value) and " " not in value.strip():
                return f"… (base64, {base64_size(value):,} bytes elided)"
        return value
    if isinstance(value, list):
        return [elide_base64(item) for item in value]
    if isinstance(value, dict):
        return {key: elide_base64(item) for key, item in value.items()}
    return value


def pretty_json(value: Any) -> str:
    try:
        if isinstance(value, str):
            value = parse_json_string(value) if value[:1] in "{[" else value
        return json.dumps(elide_base64(value), indent=2, ensure_ascii=False, default=str)
    except RecursionError:  # what the proxy relayed is stored as it came, however deep
        return "(nested too deeply to show here: the read API has it as it was sent)"


def error_message(content: Any) -> str:
    """An error's readable message: a provider's ``error.message`` (its JSON body is what the proxy
    keeps), else the message as given."""
    body = content if isinstance(content, dict) else {"message": content}
    message = body.get("message")
    parsed = parse_json_string(message) if isinstance(message, str) and message[:1] == "{" else message
    if isinstance(parsed, dict):
        inner = parsed.get("error") if isinstance(parsed.get("error"), dict) else parsed
        if isinstance(inner.get("message"), str):
            return inner["message"]
    return "" if message is None else str(message)


def _result_of(message: dict[str, Any]) -> list[tuple[str | None, Any]]:
    """(call id, output) for each tool result a history entry carries, in the three APIs' shapes."""
    if message.get("role") == "tool":
        return [(message.get("tool_call_id"), message.get("content"))]
    if message.get("type") == "function_call_output":
        return [(message.get("call_id"), message.get("output"))]
    content = message.get("content")
    parts = content if message.get("role") == "user" and isinstance(content, list) else []
    return [(p.get("tool_use_id"), p.get("content")) for p in parts if isinstance(p, dict) and p.get("type") == "tool_result"]


def _call_names(messages: list[Any]) -> dict[str, str]:
    names: dict[str, str] = {}
    for message in messages:
        if not isinstance(message, dict):
            continue
        if message.get("type") == "function_call":
            names[str(message.get("call_id"))] = str(message.get("name"))
        content = message.get("content") if isinstance(message.get("content"), list) else []
        calls = [tool_call(c) for c in message.get("tool_calls") or []]
        calls += [p for part in content for p in _part(part) if p["type"] == "tool_call"]
        names.update({str(c["id"]): str(c["name"]) for c in calls if c["id"] and c["name"]})
    return names


def tool_outputs(content: Any) -> list[tuple[str | None, str | None, Any]]:
    """``(call id, tool name, output)`` of the tool results that end a proxied request's history (what
    the tools answered), each named from the assistant message that called it."""
    messages = content.get("messages") if isinstance(content, dict) else None
    if not isinstance(messages, list):
        return []
    results: list[tuple[str | None, Any]] = []
    for message in reversed(messages):
        found = _result_of(message) if isinstance(message, dict) else []
        if not found:
            break
        results = found + results
    names = _call_names(messages)
    return [(call_id, names.get(str(call_id)), parse_json_string(output)) for call_id, output in results]


def tool_results(content: Any) -> list[dict[str, Any]]:
    """``tool_outputs`` as display blocks."""
    return [{"id": call_id, "name": name, "blocks": blocks(output)} for call_id, name, output in tool_outputs(content)]
