"""Unmodified OpenAI clients through the proxy: chat (plain, streamed, tools), responses, embeddings, models."""

import httpx
import openai
import pytest

from .proxy_fixtures import kinds, read_trace

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]


def client(server, trace_id: str, **kwargs) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.proxy}/v1", api_key="sk-client-key", max_retries=0,
                         default_headers={"X-Trace-ID": trace_id, "X-Agent-Name": "openai-agent"}, **kwargs)


def test_a_chat_completion_comes_back_unchanged_and_is_recorded_with_usage(proxied, fake, trace_id):
    raw = client(proxied, trace_id).chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    assert raw.parse().choices[0].message.content == "Hello world"
    assert raw.headers["X-Trace-ID"] == trace_id and raw.headers["X-Thread-ID"] == trace_id
    assert raw.headers["x-request-id"].startswith("req_")  # provider headers pass through
    assert raw.http_response.content == fake.sent[-1]
    trace = read_trace(proxied, trace_id, 2)
    assert trace["agentName"] == "openai-agent"
    assert kinds(trace) == ["user_message", "llm_response"]
    request, response = trace["events"]
    assert request["source"] == "proxy"
    assert request["content"] == {"messages": MESSAGES}
    assert request["metadata"]["systemPrompt"] == "Be brief."
    assert response["content"] == {"content": "Hello world", "finishReason": "stop"}
    assert response["metadata"]["usage"] == {"promptTokens": 120, "completionTokens": 12, "totalTokens": 132,
                                             "cacheReadTokens": 100, "reasoningTokens": 0}
    assert response["metadata"]["latencyMs"] > 0
    assert trace["usage"]["promptTokens"] == 120  # cached tokens are not added on top


def test_the_raw_exchange_is_viewable_from_the_event(proxied, fake, trace_id):
    client(proxied, trace_id).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    event = read_trace(proxied, trace_id, 2)["events"][1]
    exchange = httpx.get(f"{proxied.api}/exchanges/{event['exchangeId']}").json()
    assert exchange["status"] == 200 and exchange["path"] == "/proxy/v1/chat/completions"
    assert exchange["responseBody"].encode() == fake.sent[-1]
    assert exchange["requestHeaders"]["authorization"] == "[redacted]"
    assert exchange["ttfbMs"] > 0 and exchange["totalMs"] >= exchange["ttfbMs"]


def test_a_streamed_chat_with_tool_calls_is_reassembled(proxied, fake, trace_id):
    stream = client(proxied, trace_id).chat.completions.create(
        model="gpt-4o-mini-tools", messages=MESSAGES, stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    assert chunks[-1].usage.prompt_tokens == 120
    trace = read_trace(proxied, trace_id, 2)
    response = trace["events"][1]
    assert [call["function"]["name"] for call in response["content"]["toolCalls"]] == ["get_weather", "get_time"]
    assert response["content"]["toolCalls"][0]["function"]["arguments"] == '{"city": "Paris"}'
    assert response["content"]["finishReason"] == "tool_calls"
    assert response["metadata"]["usage"]["cacheReadTokens"] == 100
    exchange = httpx.get(f"{proxied.api}/exchanges/{response['exchangeId']}").json()
    assert "".join(text for _, text in exchange["chunks"]).encode() == fake.sent[-1]
    assert exchange["interrupted"] is False


def test_streamed_bytes_reach_the_client_byte_for_byte(proxied, fake, trace_id):
    body = {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True}}
    with httpx.stream("POST", f"{proxied.proxy}/v1/chat/completions", json=body,
                      headers={"X-Trace-ID": trace_id}) as response:
        received = b"".join(response.iter_raw())
        assert response.headers["content-type"].startswith("text/event-stream")
    assert received == fake.sent[-1]
    assert read_trace(proxied, trace_id, 2)["events"][1]["content"]["content"] == "Hello world"


async def test_the_async_client_streams_through_the_proxy(proxied, fake, trace_id):
    async with openai.AsyncOpenAI(base_url=f"{proxied.proxy}/v1", api_key="sk-x", max_retries=0,
                                  default_headers={"X-Trace-ID": trace_id}) as async_client:
        stream = await async_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
        text = "".join([chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices])
        plain = await async_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert text == plain.choices[0].message.content == "Hello world"
    assert kinds(read_trace(proxied, trace_id, 4)) == ["user_message", "llm_response"] * 2


def test_the_responses_api_plain_and_streamed(proxied, fake, trace_id):
    api = client(proxied, trace_id)
    plain = api.responses.create(model="gpt-4.1", input="hi", instructions="Be brief.")
    assert plain.output_text == "Hello world"
    with api.responses.stream(model="gpt-4.1", input="hi") as stream:
        final = stream.get_final_response()
    assert final.output_text == "Hello world"
    trace = read_trace(proxied, trace_id, 6)
    assert kinds(trace) == ["user_message", "llm_thinking", "llm_response"] * 2
    assert trace["events"][0]["metadata"]["systemPrompt"] == "Be brief."
    assert trace["events"][2]["content"] == {"content": "Hello world", "finishReason": "completed"}
    assert trace["events"][5]["metadata"]["usage"] == {"promptTokens": 50, "completionTokens": 5,
                                                       "totalTokens": 55, "cacheReadTokens": 10,
                                                       "reasoningTokens": 2}


def test_embeddings_are_recorded_as_request_and_response(proxied, fake, trace_id):
    result = client(proxied, trace_id).embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    assert len(result.data) == 2 and len(result.data[0].embedding) == 8
    request, response = read_trace(proxied, trace_id, 2)["events"]
    assert request["eventType"] == "embedding_request" and request["content"] == {"input": ["a", "b"]}
    assert response["content"]["embeddingCount"] == 2
    assert response["content"]["firstEmbeddingDimensions"] == 8
    assert response["metadata"]["usage"]["totalTokens"] == 7


def test_the_model_list_passes_through_unrecorded(proxied, fake, trace_id):
    models = client(proxied, trace_id).models.list()
    assert [m.id for m in models] == ["gpt-4o-mini"]
    assert httpx.get(f"{proxied.api}/traces/{trace_id}").status_code == 404


@pytest.mark.parametrize("base", ["/proxy", "/proxy/v1", "/proxy/"])
def test_routes_answer_with_and_without_v1(proxied, fake, trace_id, base):
    api = openai.OpenAI(base_url=proxied.url + base, api_key="sk-x", default_headers={"X-Trace-ID": trace_id})
    assert api.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES).choices[0].message.content
    assert fake.requests[-1].path == "/v1/chat/completions"


def test_a_doubled_slash_from_a_base_url_ending_in_slash_is_tolerated(proxied, fake, trace_id):
    answer = httpx.post(f"{proxied.url}/proxy//v1/chat/completions", json={"model": "gpt-4o-mini", "messages": MESSAGES},
                        headers={"X-Trace-ID": trace_id})
    assert answer.status_code == 200 and answer.content == fake.sent[-1]


def test_agent_registration_still_answers_on_the_proxy_base_url(proxied):
    answer = httpx.post(f"{proxied.proxy}/v1/agents/init",
                        json={"agentName": "registered", "metadata": {"systemPrompt": "sys", "tools": []}})
    assert answer.status_code in (200, 201)
    assert answer.json()["versionHash"] == "b2639e885c7f4daca9d6a14ec612bb5a"
