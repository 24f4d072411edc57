"""The unmodified whyops 0.1.1 SDK against a real server: what it sends reads back right."""

import uuid

import httpx
import pytest
from whyops import WhyOps
from whyops.types import AgentInfo

SUPPORT_METADATA = {
    "systemPrompt": "You are a precise customer support assistant.",
    "description": "Handles support, billing, and order status flows.",
    "tools": [
        {
            "name": "search_orders",
            "description": "Look up order state by ID",
            "inputSchema": "{\"type\":\"object\",\"properties\":{\"orderId\":{\"type\":\"string\"}},\"required\":[\"orderId\"]}",
            "outputSchema": "{\"type\":\"object\",\"properties\":{\"status\":{\"type\":\"string\"}}}",
        }
    ],
}
SEARCH = [{"name": "search_orders", "arguments": {"orderId": "123"}}]
CACHED_USAGE = {"promptTokens": 1200, "completionTokens": 240, "totalTokens": 9940,
                "cacheReadTokens": 8200, "cacheCreationTokens": 300}


@pytest.fixture
def sdk(server):
    return WhyOps(api_key="YOUR_WHYOPS_API_KEY", agent_name=f"customer-support-agent-{uuid.uuid4().hex[:6]}",
                  agent_metadata=SUPPORT_METADATA, proxy_base_url=server.proxy, analyse_base_url=server.api)


def read_trace(server, trace_id):
    response = httpx.get(f"{server.api}/traces/{trace_id}")
    assert response.status_code == 200, response.text
    return response.json()


def test_init_agent_sync_returns_agent_info(sdk):
    info = sdk.init_agent_sync()
    assert set(info) == set(AgentInfo.__annotations__)
    assert info["status"] == "created" and len(info["versionHash"]) == 32


async def test_init_agent_async_returns_agent_info(sdk):
    info = await sdk.init_agent()
    assert set(info) == set(AgentInfo.__annotations__) and info["agentId"]


def test_the_support_agent_example_reads_back(server, sdk, capsys):
    trace_id = f"session-{uuid.uuid4().hex}"
    trace = sdk.trace(trace_id)
    trace.user_message_sync([{"role": "user", "content": "Where is order 123?"}])
    span_id = trace.tool_call_request_sync("search_orders", SEARCH, latency_ms=11)
    trace.tool_call_response_sync("search_orders", span_id, SEARCH, {"status": "shipped"}, latency_ms=88)
    trace.llm_response_sync("openai/gpt-4o-mini", "openai", "Your order has shipped.", finish_reason="stop",
                            latency_ms=390, usage={"promptTokens": 42, "completionTokens": 16, "totalTokens": 58})
    trace.llm_response_sync("anthropic/claude-sonnet-4-5", "anthropic", "Done.", usage=CACHED_USAGE, latency_ms=860)
    trace.error_sync("upstream timed out", status=504, stack="Traceback ...")
    assert "failed" not in capsys.readouterr().err

    read = read_trace(server, trace_id)
    assert [e["eventType"] for e in read["events"]] == [
        "user_message", "tool_call_request", "tool_call_response", "llm_response", "llm_response", "error"]
    assert [e["stepId"] for e in read["events"]] == [1, 2, 3, 4, 5, 6]
    assert all(e["source"] == "sdk" for e in read["events"])
    request, response = read["events"][1], read["events"][2]
    assert request["spanId"] == response["spanId"] == span_id
    assert request["content"] == {"toolCalls": SEARCH}
    assert response["content"] == {"toolCalls": SEARCH, "toolResults": {"status": "shipped"}}
    assert response["metadata"] == {"tool": "search_orders", "latencyMs": 88}
    assert read["spans"] == [{
        "spanId": span_id, "tool": "search_orders", "requestStepId": 2, "responseStepId": 3,
        "startedAt": request["timestamp"], "endedAt": response["timestamp"], "latencyMs": 88,
        "arguments": SEARCH, "results": {"status": "shipped"}, "complete": True}]
    llm = read["events"][3]
    assert llm["content"] == {"content": "Your order has shipped.", "finishReason": "stop"}
    assert llm["metadata"] == {"model": "openai/gpt-4o-mini", "provider": "openai", "latencyMs": 390,
                               "usage": {"promptTokens": 42, "completionTokens": 16, "totalTokens": 58}}
    assert read["events"][4]["metadata"]["usage"] == CACHED_USAGE
    assert read["events"][5]["content"] == {"message": "upstream timed out", "status": 504, "stack": "Traceback ..."}
    # One meaning whatever the provider: 42 uncached from OpenAI, 1200 from Anthropic (whose cache comes on top).
    assert read["tokens"] == {"input": 1242, "cacheRead": 8200, "cacheWrite": 300, "cacheWrite1h": 0,
                              "output": 256, "reasoning": 0}
    assert read["usage"] == {"promptTokens": 9742, "completionTokens": 256, "totalTokens": 9998,
                             "cacheReadTokens": 8200, "cacheCreationTokens": 300}
    assert (read["eventCount"], read["llmCalls"], read["toolCalls"], read["errorCount"]) == (6, 2, 1, 1)
    assert read["agentName"] == sdk._agent_name


def test_every_sync_method_lands_as_its_event(server, sdk):
    trace_id = f"sync-{uuid.uuid4().hex}"
    _send_every_method_sync(sdk.trace(trace_id))
    _assert_every_method(read_trace(server, trace_id))


async def test_every_async_method_lands_as_its_event(server, sdk):
    trace_id = f"async-{uuid.uuid4().hex}"
    trace = sdk.trace(trace_id)
    await trace.user_message([{"role": "user", "content": "hi"}], metadata={"params": {"temperature": 0}})
    await trace.llm_thinking("Let me look.", signature="sig-abc")
    await trace.embedding_request(["order 123"])
    await trace.embedding_response("text-embedding-3-small", "openai", 1, 1536, total_tokens=3, latency_ms=20)
    span_id = await trace.tool_call_request("search_orders", SEARCH, requested_at="2026-01-01T00:00:00Z")
    await trace.tool_call_response("search_orders", span_id, SEARCH, {"status": "shipped"},
                                   responded_at="2026-01-01T00:00:01Z")
    await trace.tool_result("search_orders", {"status": "shipped"})
    await trace.llm_response("gpt-4o-mini", "openai", tool_calls=[
        {"id": "call_1", "function": {"name": "search_orders", "arguments": "{\"orderId\":\"123\"}"}}],
        finish_reason="tool_calls")
    await trace.error("boom", status=500)
    _assert_every_method(read_trace(server, trace_id))


def _send_every_method_sync(trace):
    trace.user_message_sync([{"role": "user", "content": "hi"}], metadata={"params": {"temperature": 0}})
    trace.llm_thinking_sync("Let me look.", signature="sig-abc")
    trace.embedding_request_sync(["order 123"])
    trace.embedding_response_sync("text-embedding-3-small", "openai", 1, 1536, total_tokens=3, latency_ms=20)
    span_id = trace.tool_call_request_sync("search_orders", SEARCH, requested_at="2026-01-01T00:00:00Z")
    trace.tool_call_response_sync("search_orders", span_id, SEARCH, {"status": "shipped"},
                                  responded_at="2026-01-01T00:00:01Z")
    trace.tool_result_sync("search_orders", {"status": "shipped"})
    trace.llm_response_sync("gpt-4o-mini", "openai", tool_calls=[
        {"id": "call_1", "function": {"name": "search_orders", "arguments": "{\"orderId\":\"123\"}"}}],
        finish_reason="tool_calls")
    trace.error_sync("boom", status=500)


def _assert_every_method(read):
    events = {e["eventType"]: e for e in read["events"]}
    assert list(events) == ["user_message", "llm_thinking", "embedding_request", "embedding_response",
                            "tool_call_request", "tool_call_response", "tool_result", "llm_response", "error"]
    assert events["user_message"]["metadata"] == {"params": {"temperature": 0}}
    assert events["llm_thinking"]["content"] == {"type": "thinking", "thinking": "Let me look.", "signature": "sig-abc"}
    assert events["embedding_request"]["content"] == {"input": ["order 123"]}
    assert events["embedding_response"]["content"] == {
        "object": "list", "embeddingCount": 1, "firstEmbeddingDimensions": 1536, "encodingFormat": "float"}
    assert events["embedding_response"]["metadata"]["usage"] == {"totalTokens": 3}
    assert events["tool_call_request"]["content"]["requestedAt"] == "2026-01-01T00:00:00Z"
    assert events["tool_call_response"]["spanId"] == events["tool_call_request"]["spanId"]
    assert events["tool_result"]["content"] == {"toolName": "search_orders", "output": {"status": "shipped"}}
    assert events["llm_response"]["content"]["toolCalls"][0]["function"]["name"] == "search_orders"
    assert events["error"]["content"] == {"message": "boom", "status": 500}
    assert read["spans"][0]["complete"] is True
