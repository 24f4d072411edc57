"""The tool spans between two proxied calls of a trace: the previous answer's tool calls paired with
the tool results that end the next request (pure)."""

import uuid
from datetime import datetime
from typing import Any

from .providers.base import arguments_object, json_or_none


def _results_object(result: Any) -> dict[str, Any]:
    parsed = json_or_none(result) if isinstance(result, str) else result
    return parsed if isinstance(parsed, dict) else {"output": result}


def _key(call_id: str, side: str) -> str:
    return f"proxy-tool:{call_id}:{side}"[-128:]


def tool_spans(calls: list[dict[str, Any]], results: list[tuple[str, Any]], requested_at: datetime,
               responded_at: datetime, skip_tools: set[str] = frozenset()) -> list[dict[str, Any]]:
    """A ``tool_call_request`` / ``tool_call_response`` pair for each tool call answered by a result.

    ``calls`` are the ``toolCalls`` of the trace's previous LLM response, ``results`` the (call id,
    result) pairs ending the new request. Tools in ``skip_tools`` were already recorded by the SDK.
    Idempotency keys make a resent history pair nothing twice.
    """
    by_id = {call.get("id"): call for call in calls if isinstance(call, dict) and call.get("id")}
    latency = round((responded_at - requested_at).total_seconds() * 1000, 3)
    events = []
    for call_id, result in results:
        call = by_id.get(call_id)
        if call is None:
            continue
        function = call.get("function") or {}
        name = function.get("name") or "tool"
        if name in skip_tools:
            continue
        described = [{"id": call_id, "name": name, "arguments": arguments_object(function.get("arguments"))}]
        span = str(uuid.uuid4())
        events.append({
            "eventType": "tool_call_request", "spanId": span, "timestamp": requested_at.isoformat(),
            "idempotencyKey": _key(call_id, "request"),
            "content": {"toolCalls": described, "requestedAt": requested_at.isoformat()},
            "metadata": {"tool": name},
        })
        events.append({
            "eventType": "tool_call_response", "spanId": span, "timestamp": responded_at.isoformat(),
            "idempotencyKey": _key(call_id, "response"),
            "content": {"toolCalls": described, "toolResults": _results_object(result),
                        "respondedAt": responded_at.isoformat()},
            "metadata": {"tool": name, "latencyMs": latency},
        })
    return events
