"""Building traces for the page tests through the real storage path (validation + record_events)."""

from typing import Any

from tests.storing import record_events
from whyops_local.domain.schemas import EventIn
from whyops_local.storage.rows import register_agent

SUPPORT_AGENT = {
    "systemPrompt": "You are a precise customer support assistant.",
    "description": "Handles support, billing, and order status flows.",
    "tools": [{
        "name": "search_orders",
        "description": "Look up order state by ID",
        "inputSchema": "{\"type\":\"object\",\"properties\":{\"orderId\":{\"type\":\"string\"}},\"required\":[\"orderId\"]}",
        "outputSchema": "{\"type\":\"object\",\"properties\":{\"status\":{\"type\":\"string\"}}}",
    }],
}


def send(trace_id: str, event_type: str, content: Any = None, metadata: dict | None = None,
         agent: str = "customer-support-agent", **fields: Any):
    payload = {"eventType": event_type, "traceId": trace_id, "agentName": agent, "content": content, **fields}
    if metadata is not None:
        payload["metadata"] = metadata
    return record_events([EventIn.model_validate(payload)])[0].event


def support_trace(trace_id: str = "session-123", user: str | None = "user_12345") -> None:
    """The seed docs' support-agent example: message, thinking, tool call, tool span, answer."""
    register_agent("customer-support-agent", SUPPORT_AGENT)
    extra = {"externalUserId": user} if user else {}
    send(trace_id, "user_message", {"messages": [{"role": "user", "content": "Where is order 123?"}]}, **extra)
    send(trace_id, "llm_thinking", {"type": "thinking", "thinking": "The user asks about order 123; look it up.",
                                    "signature": "EqQBCkYIARgCKkD"})
    send(trace_id, "llm_response",
         {"toolCalls": [{"id": "call_1", "function": {"name": "search_orders", "arguments": "{\"orderId\": \"123\"}"}}],
          "finishReason": "tool_calls"},
         {"model": "openai/gpt-4o-mini", "provider": "openai", "latencyMs": 300,
          "usage": {"promptTokens": 40, "completionTokens": 12, "totalTokens": 52}})
    send(trace_id, "tool_call_request", {"toolCalls": [{"name": "search_orders", "arguments": {"orderId": "123"}}]},
         {"tool": "search_orders", "latencyMs": 11}, spanId="span-1")
    send(trace_id, "tool_call_response", {"toolCalls": [{"name": "search_orders", "arguments": {"orderId": "123"}}],
                                          "toolResults": {"status": "shipped"}},
         {"tool": "search_orders", "latencyMs": 88}, spanId="span-1")
    send(trace_id, "llm_response", {"content": "Your order has shipped.", "finishReason": "stop"},
         {"model": "openai/gpt-4o-mini", "provider": "openai", "latencyMs": 390,
          "usage": {"promptTokens": 42, "completionTokens": 16, "totalTokens": 58}})
