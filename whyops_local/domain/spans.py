"""Pairing tool_call_request / tool_call_response events into tool spans by spanId (pure)."""

from datetime import datetime
from typing import Any


def _ms_between(start: str | None, end: str | None) -> float | None:
    if start is None or end is None:
        return None
    return round((datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds() * 1000, 3)


def tool_spans(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One span per spanId that has a tool request or response, in order of first appearance.

    ``events`` are read-API event dicts (ISO-8601 timestamps). A span's latency is the
    response's own ``latencyMs`` when given, else the time between request and response.
    """
    spans: dict[str, dict[str, Any]] = {}
    for event in events:
        kind = event["eventType"]
        if kind not in ("tool_call_request", "tool_call_response"):
            continue
        span = spans.setdefault(event["spanId"], {
            "spanId": event["spanId"], "tool": None, "requestStepId": None, "responseStepId": None,
            "startedAt": None, "endedAt": None, "latencyMs": None, "arguments": None, "results": None,
        })
        content = event["content"] if isinstance(event["content"], dict) else {}
        span["tool"] = span["tool"] or (event["metadata"] or {}).get("tool")
        if kind == "tool_call_request":
            span["requestStepId"] = event["stepId"]
            span["startedAt"] = event["timestamp"]
            span["arguments"] = content.get("toolCalls")
        else:
            span["responseStepId"] = event["stepId"]
            span["endedAt"] = event["timestamp"]
            span["results"] = content.get("toolResults")
            span["latencyMs"] = (event["metadata"] or {}).get("latencyMs")
            if span["arguments"] is None:
                span["arguments"] = content.get("toolCalls")
    for span in spans.values():
        if span["latencyMs"] is None:
            span["latencyMs"] = _ms_between(span["startedAt"], span["endedAt"])
        span["complete"] = span["requestStepId"] is not None and span["responseStepId"] is not None
    return list(spans.values())
