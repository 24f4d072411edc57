"""Reasoning tokens are recorded from both OpenAI APIs and the SDK, shown as part of output, priced once."""

from decimal import Decimal

import httpx
import openai
from whyops import WhyOps

from .proxy_fixtures import read_trace

MESSAGES = [{"role": "user", "content": "think"}]


def _client(server, trace_id: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.proxy}/v1", api_key="sk-x", max_retries=0,
                         default_headers={"X-Trace-ID": trace_id})


def test_chat_completions_reasoning_tokens_plain_and_streamed(proxied, fake, trace_id):
    _client(proxied, trace_id).chat.completions.create(model="o3-mini", messages=MESSAGES, reasoning_effort="low")
    list(_client(proxied, trace_id).chat.completions.create(model="o3-mini", messages=MESSAGES, reasoning_effort="low",
                                                            stream=True))
    trace = read_trace(proxied, trace_id, 4)
    calls = [e for e in trace["events"] if e["eventType"] == "llm_response"]
    for call in calls:
        assert call["metadata"]["usage"]["reasoningTokens"] == 8
        assert call["tokens"] == {"input": 20, "cacheRead": 100, "cacheWrite": 0, "cacheWrite1h": 0,
                                  "output": 12, "reasoning": 8}
        # 20 x $1.10 + 100 x $0.55 + 12 x $4.40 per million: the 8 reasoning tokens are in the 12, billed once
        assert Decimal(str(call["costUsd"])) == Decimal("0.0001298")
    assert trace["tokens"]["reasoning"] == 16 and trace["tokens"]["output"] == 24
    panel = httpx.get(f"{proxied.url}/traces/{trace_id}?step={calls[0]['stepId']}&partial=panel").text
    assert "(8 reasoning)" in panel and "(of which reasoning 8)" in panel


def test_responses_reasoning_tokens(proxied, fake, trace_id):
    _client(proxied, trace_id).responses.create(model="o3-mini", input="think")
    call = read_trace(proxied, trace_id, 3)["events"][-1]
    assert call["tokens"] == {"input": 40, "cacheRead": 10, "cacheWrite": 0, "cacheWrite1h": 0, "output": 5,
                              "reasoning": 2}


def test_the_sdks_reasoning_tokens(proxied, trace_id):
    sdk = WhyOps(api_key="k", agent_name="thinker", agent_metadata={"systemPrompt": "s", "tools": []},
                 analyse_base_url=proxied.api, proxy_base_url=proxied.proxy)
    sdk.trace(trace_id).llm_response_sync("o3-mini", "openai", "42", usage={
        "promptTokens": 1000, "completionTokens": 500, "totalTokens": 1500, "reasoningTokens": 300})
    call = read_trace(proxied, trace_id, 1)["events"][0]
    assert call["tokens"]["reasoning"] == 300 and call["tokens"]["output"] == 500
    assert Decimal(str(call["costUsd"])) == (1000 * Decimal("1.1") + 500 * Decimal("4.4")) / 1_000_000
    refused = httpx.post(f"{proxied.api}/events/ingest", json={
        "eventType": "llm_response", "traceId": trace_id, "agentName": "thinker",
        "metadata": {"model": "o3-mini", "provider": "openai", "usage": {"reasoningTokens": -1}}})
    assert refused.status_code == 400
    assert refused.json()["details"][0]["field"] == "metadata.usage.reasoningTokens"
