"""Which trace a proxied call belongs to, and the tool spans between two calls of a trace (pure).

A call with no trace header joins the trace of the earlier call whose history it continues: the
earlier request's messages plus that call's answer are a prefix of the new request's messages. The
index lives in memory (bounded, most recent first); after a restart such calls start new traces.
"""

import hashlib
import uuid
from collections import OrderedDict
from datetime import datetime
from typing import Any

from .shapes import arguments_object, json_or_none


class History:
    """A request's history as the digest of each of its prefixes, the agent's alone first.

    Built once per call, while upstream works on it: it is both looked up (``find``) and, continued
    by the answer, remembered for the next call.
    """

    def __init__(self, agent: str, entries: list[bytes]) -> None:
        self.digests = _chained(hashlib.sha256(agent.encode()).digest(), entries)

    def continued(self, entries: list[bytes]) -> bytes | None:
        """The digest of this history followed by ``entries``; None if that is still no history at all."""
        if len(self.digests) == 1 and not entries:
            return None
        return _chained(self.digests[-1], entries)[-1]


def _chained(start: bytes, entries: list[bytes]) -> list[bytes]:
    """``start``, then the digest of each longer prefix, each built on the previous one (linear, not quadratic)."""
    digests = [start]
    for item in entries:
        digests.append(hashlib.sha256(digests[-1] + item).digest())
    return digests


class Conversations:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._traces: OrderedDict[bytes | str, str] = OrderedDict()

    def find(self, history: History, previous_id: str | None = None) -> str | None:
        keys: list[bytes | str] = [f"id:{previous_id}"] if previous_id else []
        keys += reversed(history.digests[1:])  # the longest continued history wins
        for key in keys:
            trace_id = self._traces.get(key)
            if trace_id is not None:
                self._traces.move_to_end(key)
                return trace_id
        return None

    def remember(self, history: History, answer: list[bytes], trace_id: str, response_id: str | None = None) -> None:
        if (key := history.continued(answer)) is not None:
            self._put(key, trace_id)
        if response_id:
            self._put(f"id:{response_id}", trace_id)

    def _put(self, key: bytes | str, trace_id: str) -> None:
        self._traces[key] = trace_id
        self._traces.move_to_end(key)
        while len(self._traces) > self.limit:
            self._traces.popitem(last=False)


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
