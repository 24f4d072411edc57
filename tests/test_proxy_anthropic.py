"""Unmodified Anthropic clients through the proxy: messages with thinking and tool use, plain and streamed."""

import anthropic
import httpx
import pytest

from .proxy_fixtures import kinds, read_trace

MESSAGES = [{"role": "user", "content": "weather in Paris?"}]
THINKING = {"type": "enabled", "budget_tokens": 1024}
USAGE = {"promptTokens": 25, "completionTokens": 15, "cacheReadTokens": 100, "cacheCreationTokens": 50,
         "cacheCreation1hTokens": 30, "totalTokens": 190}


def client(server, trace_id: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.proxy, api_key="sk-ant-client-key", max_retries=0,
                               default_headers={"X-Trace-ID": trace_id})


def test_a_message_with_thinking_and_tool_use_is_recorded(proxied, fake, trace_id):
    raw = client(proxied, trace_id).messages.with_raw_response.create(
        model="claude-sonnet-4-6-tools", max_tokens=2048, system="Be brief.", messages=MESSAGES, thinking=THINKING)
    message = raw.parse()
    assert [block.type for block in message.content] == ["thinking", "text", "tool_use"]
    assert raw.http_response.content == fake.sent[-1]
    assert raw.headers["X-Trace-ID"] == trace_id
    trace = read_trace(proxied, trace_id, 3)
    assert kinds(trace) == ["user_message", "llm_thinking", "llm_response"]
    request, thinking, response = trace["events"]
    assert request["metadata"]["systemPrompt"] == "Be brief."
    assert request["metadata"]["params"] == {"max_tokens": 2048, "thinking": THINKING}
    assert thinking["content"] == {"type": "thinking", "thinking": "Let me think.", "signature": "c2lnbmF0dXJl"}
    assert response["content"]["content"] == "Hello world"
    assert response["content"]["toolCalls"][0]["function"] == {"name": "get_weather", "arguments": '{"city": "Paris"}'}
    assert response["content"]["finishReason"] == "tool_use"
    assert response["metadata"]["usage"] == USAGE
    assert fake.requests[-1].headers["anthropic-version"]


def test_a_streamed_message_is_reassembled_from_its_events(proxied, fake, trace_id):
    with client(proxied, trace_id).messages.stream(model="claude-sonnet-4-6-tools", max_tokens=2048,
                                                   messages=MESSAGES, thinking=THINKING) as stream:
        final = stream.get_final_message()
    assert final.content[2].input == {"city": "Paris"}
    trace = read_trace(proxied, trace_id, 3)
    assert kinds(trace) == ["user_message", "llm_thinking", "llm_response"]
    assert trace["events"][1]["content"]["signature"] == "c2lnbmF0dXJl"
    assert trace["events"][2]["metadata"]["usage"] == USAGE
    assert trace["usage"]["cacheCreationTokens"] == 50


def test_streamed_bytes_reach_the_client_byte_for_byte(proxied, fake, trace_id):
    body = {"model": "claude-sonnet-4-6", "max_tokens": 100, "messages": MESSAGES, "stream": True}
    headers = {"X-Trace-ID": trace_id, "anthropic-version": "2023-06-01", "x-api-key": "sk-ant-x"}
    with httpx.stream("POST", f"{proxied.proxy}/v1/messages", json=body, headers=headers) as response:
        received = b"".join(response.iter_raw())
    assert received == fake.sent[-1]
    assert b"event: message_stop" in received
    response = read_trace(proxied, trace_id, 2)["events"][1]
    # 1-hour cache writes (30 of the 50) are priced at their own, higher rate
    assert response["costUsd"] == pytest.approx(0.000585)


async def test_the_async_client_works_plain_and_streamed(proxied, fake, trace_id):
    async with anthropic.AsyncAnthropic(base_url=proxied.proxy, api_key="sk-ant-x", max_retries=0,
                                        default_headers={"X-Trace-ID": trace_id}) as async_client:
        plain = await async_client.messages.create(model="claude-haiku-4-5", max_tokens=100, messages=MESSAGES)
        stream = await async_client.messages.create(model="claude-haiku-4-5", max_tokens=100, messages=MESSAGES,
                                                    stream=True)
        kinds_seen = [event.type async for event in stream]
    assert plain.content[0].text == "Hello world"
    assert kinds_seen[0] == "message_start" and kinds_seen[-1] == "message_stop"
    assert kinds(read_trace(proxied, trace_id, 4)) == ["user_message", "llm_response"] * 2


def test_count_tokens_and_models_pass_through_unrecorded(proxied, fake, trace_id):
    api = client(proxied, trace_id)
    assert api.messages.count_tokens(model="claude-sonnet-4-6", messages=MESSAGES).input_tokens == 12
    assert [m.id for m in api.models.list()] == ["claude-sonnet-4-6"]
    assert fake.requests[-1].path == "/v1/models"
    assert httpx.get(f"{proxied.api}/traces/{trace_id}").status_code == 404
