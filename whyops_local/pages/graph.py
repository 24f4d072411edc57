"""A trace's events as a thread graph (nodes, parent -> child edges, turns) (pure).

Input is read-API event dicts (``Event.to_dict()``) in step order. A tool span (request and
response sharing a spanId) is one node; every other event is its own node. A turn is one user
message and everything after it up to the next user message. No Django imports: unit-tested in
milliseconds and cheap enough for 5,000-event traces.
"""

import json
from typing import Any

from ..domain.events import STEP_KINDS, TOOL_EVENTS
from .display import error_message, parse_json_string, tool_outputs

LABEL_CHARS = 80
# Nodes that branch off further than this many lanes share the last lane rather than run off screen.
MAX_LANE = 6


def short(text: Any, limit: int = LABEL_CHARS) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def message_text(content: Any) -> str:
    """The readable text of a message's content: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict):
                if isinstance(part.get("text"), str):
                    parts.append(part["text"])
                elif part.get("type") in ("image", "image_url", "input_image"):
                    parts.append("[image]")
        return " ".join(parts)
    return ""


def last_user_text(content: Any) -> str:
    messages = content.get("messages") if isinstance(content, dict) else None
    if not isinstance(messages, list):
        return ""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return message_text(message.get("content"))
    for message in reversed(messages):
        if isinstance(message, dict):
            return message_text(message.get("content"))
    return ""


def _tool_call_names(calls: Any) -> list[str]:
    names = []
    for call in calls if isinstance(calls, list) else []:
        if isinstance(call, dict):
            function = call.get("function") if isinstance(call.get("function"), dict) else {}
            name = call.get("name") or function.get("name")
            if isinstance(name, str):
                names.append(name)
    return names


def _tool_label(body: dict[str, Any], metadata: dict[str, Any]) -> str:
    """What a tool step did: ``search_orders(orderId=123)``."""
    calls = body.get("toolCalls") if isinstance(body.get("toolCalls"), list) else []
    name = metadata.get("tool") or ", ".join(_tool_call_names(calls)) or "tool"
    arguments = calls[0].get("arguments") if calls and isinstance(calls[0], dict) else None
    arguments = parse_json_string(arguments)
    if isinstance(arguments, dict):
        return f"{name}(" + ", ".join(f"{key}={value}" for key, value in arguments.items()) + ")"
    return name


def _compact(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def label(event: dict[str, Any]) -> str:
    """A one-line summary of an event, for a graph node or a timeline row."""
    kind, content = event["eventType"], event.get("content")
    body = content if isinstance(content, dict) else {}
    metadata = event.get("metadata") or {}
    if kind == "user_message":
        return short(last_user_text(content) or "user message")
    if kind == "llm_response":
        calls = _tool_call_names(body.get("toolCalls"))
        text = message_text(body.get("content"))
        if calls and not text:
            return short("→ " + ", ".join(calls))
        return short(text or body.get("finishReason") or metadata.get("model") or "response")
    if kind == "llm_thinking":
        if body.get("type") == "redacted_thinking":
            return "redacted thinking"
        return short(body.get("thinking") or "thinking")
    if kind in TOOL_EVENTS:
        return short(_tool_label(body, metadata))
    if kind == "tool_result":
        outputs = tool_outputs(content) or [(None, body.get("toolName"), body.get("output"))]
        return short("; ".join(f"{name or 'tool'} → {_compact(output)}" for _, name, output in outputs
                               if name or output is not None) or "tool result")
    if kind == "embedding_request":
        inputs = body.get("input")
        return f"{len(inputs)} input(s)" if isinstance(inputs, list) else "embedding request"
    if kind == "embedding_response":
        return short(metadata.get("model") or "embedding")
    if kind == "error":
        return short(error_message(content) or "error")
    if kind == "span":  # an OpenTelemetry agent, chain or other span
        return short(body.get("name") or "span")
    return kind


def build_graph(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Nodes in step order with lanes and turns, edges between node ids, and the turns themselves.

    A node's ``id`` is its first step id (as a string, as used in ``?step=`` and ``id="step-<id>"``).
    """
    nodes: list[dict[str, Any]] = []
    by_id: dict[str, dict[str, Any]] = {}
    node_of_step: dict[int, str] = {}
    node_of_span: dict[str, str] = {}
    turns: list[dict[str, Any]] = []
    for event in events:
        kind = STEP_KINDS.get(event["eventType"], event["eventType"])
        step = event["stepId"]
        if kind == "tool" and event.get("spanId") in node_of_span:
            node = by_id[node_of_span[event["spanId"]]]
            node["stepIds"].append(step)
            node["eventIds"].append(event["id"])
            node_of_step.setdefault(step, node["id"])
            if event["eventType"] == "tool_call_response":
                node["latencyMs"] = (event.get("metadata") or {}).get("latencyMs", node["latencyMs"])
                node["open"] = False
            continue
        if kind == "user" or not turns:
            # Turns are numbered from 1 by user message; steps before the first message are turn 0.
            number = (turns[-1]["number"] + 1) if turns else int(kind == "user")
            turns.append({"index": len(turns), "number": number,
                          "label": label(event) if kind == "user" else "before the first message",
                          "first": None, "size": 0, "errors": 0})
        node_id = str(step) if str(step) not in by_id else f"{step}-{event['id']}"
        metadata = event.get("metadata") or {}
        node = {
            "id": node_id,
            "kind": kind,
            "eventType": event["eventType"],
            "label": label(event),
            "stepIds": [step],
            "eventIds": [event["id"]],
            "turn": turns[-1]["index"],
            "latencyMs": metadata.get("latencyMs"),
            "model": metadata.get("model"),
            "costUsd": event.get("costUsd"),
            # A tool span whose response has not arrived (yet).
            "open": event["eventType"] == "tool_call_request",
            "parent": None,
            "lane": 0,
        }
        nodes.append(node)
        by_id[node_id] = node
        node_of_step.setdefault(step, node_id)
        if kind == "tool" and event.get("spanId"):
            node_of_span[event["spanId"]] = node_id
        turn = turns[-1]
        turn["first"] = turn["first"] or node_id
        turn["size"] += 1
        turn["errors"] += kind == "error"

    edges: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for event in events:
        parent_step = event.get("parentStepId")
        child = node_of_step.get(event["stepId"])
        if event["eventType"] in TOOL_EVENTS and event.get("spanId") in node_of_span:
            child = node_of_span[event["spanId"]]
        parent = node_of_step.get(parent_step) if parent_step is not None else None
        if parent is None or child is None or parent == child or (parent, child) in seen:
            continue
        seen.add((parent, child))
        edges.append((parent, child))
        if by_id[child]["parent"] is None:
            by_id[child]["parent"] = parent

    # Lanes: a node continues its parent's lane when it is the parent's first child; siblings step right.
    children_seen: dict[str, int] = {}
    for node in nodes:
        parent = node["parent"]
        if parent is None:
            continue
        nth = children_seen.get(parent, 0)
        children_seen[parent] = nth + 1
        node["lane"] = min(by_id[parent]["lane"] + nth, MAX_LANE)
    return {"nodes": nodes, "edges": [list(edge) for edge in edges], "turns": turns}


def node_id_for(graph: dict[str, Any], step: str) -> str:
    """The node showing ``step`` (a node id, or any step id of a tool span); ``step`` itself if none."""
    if any(node["id"] == step for node in graph["nodes"]):
        return step
    for node in graph["nodes"]:
        if any(str(s) == step for s in node["stepIds"]):
            return node["id"]
    return step

