"""Pure mapping of provider requests, responses and reassembled streams to WhyOps events."""

import pytest

from whyops_local.demo.fake_provider import FakeUpstream
from whyops_local.proxy.providers import anthropic, openai
from whyops_local.proxy.sse import SSEParser


@pytest.fixture(scope="module")
def wire():
    """The fake upstream's answers, produced without serving them."""
    fake = FakeUpstream()
    yield fake
    fake.server.server_close()


def answer(wire, route, body):
    wire._calls = 0
    return route(body)


def reassembled(api, chunks: list[bytes]):
    stream, parser = api.stream(), SSEParser()
    for chunk in chunks:
        for sse in parser.feed(chunk):
            stream.feed(sse)
    return stream


CASES = [
    (openai.CHAT, "_chat", {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}],
                            "stream_options": {"include_usage": True}}),
    (openai.CHAT, "_chat", {"model": "gpt-4o-mini-tools", "messages": [{"role": "user", "content": "hi"}],
                            "stream_options": {"include_usage": True}}),
    (openai.RESPONSES, "_responses", {"model": "gpt-4.1", "input": "hi"}),
    (anthropic.MESSAGES, "_messages", {"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "hi"}]}),
    (anthropic.MESSAGES, "_messages", {"model": "claude-sonnet-4-5-tools", "thinking": {"type": "enabled"},
                                       "messages": [{"role": "user", "content": "hi"}]}),
]


@pytest.mark.parametrize(("api", "route", "body"), CASES, ids=lambda v: v.get("model") if isinstance(v, dict) else None)
def test_a_reassembled_stream_maps_to_the_same_events_as_the_plain_response(wire, api, route, body):
    plain = answer(wire, getattr(wire, route), body)
    stream = reassembled(api, answer(wire, getattr(wire, route), {**body, "stream": True}))
    assert stream.done
    assert api.response_events(body, stream.response(), 5) == api.response_events(body, plain, 5)


def test_openai_chat_tool_calls_are_merged_by_index(wire):
    body = {"model": "gpt-4o-mini-tools", "messages": [], "stream": True}
    events = openai.CHAT.response_events(body, reassembled(openai.CHAT, answer(wire, wire._chat, body)).response(), 1)
    assert events[0]["content"]["toolCalls"] == [
        {"id": "call_1_0", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
        {"id": "call_1_1", "function": {"name": "get_time", "arguments": '{"tz": "CET"}'}},
    ]
    assert events[0]["content"]["finishReason"] == "tool_calls"


def test_openai_chat_stream_without_include_usage_has_no_usage(wire):
    body = {"model": "gpt-4o-mini", "messages": [], "stream": True}
    events = openai.CHAT.response_events(body, reassembled(openai.CHAT, answer(wire, wire._chat, body)).response(), 1)
    assert "usage" not in events[0]["metadata"]


def test_openai_cached_tokens_stay_a_subset_of_prompt_tokens():
    raw = {"prompt_tokens": 120, "completion_tokens": 12, "total_tokens": 132, "prompt_tokens_details": {"cached_tokens": 100}}
    assert openai.usage(raw) == {"promptTokens": 120, "completionTokens": 12, "totalTokens": 132, "cacheReadTokens": 100}


def test_anthropic_cache_tokens_come_on_top_with_one_hour_writes_apart():
    raw = {"input_tokens": 25, "output_tokens": 15, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 50,
           "cache_creation": {"ephemeral_5m_input_tokens": 20, "ephemeral_1h_input_tokens": 30}}
    assert anthropic.usage(raw) == {"promptTokens": 25, "completionTokens": 15, "cacheReadTokens": 100,
                                    "cacheCreationTokens": 50, "cacheCreation1hTokens": 30, "totalTokens": 190}


def test_anthropic_stream_keeps_thinking_with_its_signature_and_tool_input(wire):
    body = {"model": "claude-tools", "thinking": {"type": "enabled"}, "messages": [], "stream": True}
    events = anthropic.MESSAGES.response_events(
        body, reassembled(anthropic.MESSAGES, answer(wire, wire._messages, body)).response(), 1)
    assert [e["eventType"] for e in events] == ["llm_thinking", "llm_response"]
    assert events[0]["content"] == {"type": "thinking", "thinking": "Let me think.", "signature": "c2lnbmF0dXJl"}
    assert events[1]["content"]["toolCalls"][0]["function"] == {"name": "get_weather", "arguments": '{"city": "Paris"}'}
    # message_start's input and cache counts survive message_delta's output count
    assert events[1]["metadata"]["usage"]["promptTokens"] == 25
    assert events[1]["metadata"]["usage"]["completionTokens"] == 15


def test_a_cut_anthropic_stream_gives_what_arrived(wire):
    body = {"model": "claude-tools", "messages": [], "stream": True}
    chunks = answer(wire, wire._messages, body)
    cut = reassembled(anthropic.MESSAGES, chunks[:-4])  # inside the tool_use block's input
    assert not cut.done
    response = cut.response()
    assert response["content"][0]["text"] == "Hello world"
    assert response["content"][1]["input"] == '{"ci'


def test_request_events_name_the_system_prompt_tools_and_params():
    body = {"model": "gpt-4o", "temperature": 0.2, "messages": [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
        "tools": [{"type": "function", "function": {"name": "f", "description": "d", "parameters": {"type": "object"}}}]}
    [event] = openai.CHAT.request_events(body)
    assert event["eventType"] == "user_message"
    assert event["metadata"] == {"model": "gpt-4o", "provider": "openai", "systemPrompt": "Be brief.",
                                 "tools": [{"name": "f", "description": "d", "inputSchema": '{"type": "object"}'}],
                                 "params": {"temperature": 0.2}}


def test_a_request_ending_in_tool_results_is_a_tool_result_event():
    chat = {"messages": [{"role": "user", "content": "hi"}, {"role": "tool", "tool_call_id": "c1", "content": "42"}]}
    claude = {"messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "42"}]}]}
    responses = {"input": [{"type": "function_call_output", "call_id": "c1", "output": "42"}]}
    assert openai.CHAT.request_events(chat)[0]["eventType"] == "tool_result"
    assert anthropic.MESSAGES.request_events(claude)[0]["eventType"] == "tool_result"
    assert openai.RESPONSES.request_events(responses)[0]["eventType"] == "tool_result"
    assert openai.CHAT.tool_results(chat) == [("c1", "42")]
    assert anthropic.MESSAGES.tool_results(claude) == [("t1", "42")]


def test_embedding_dimensions_are_read_from_base64_too(wire):
    body = {"model": "text-embedding-3-small", "input": ["a", "b"], "encoding_format": "base64"}
    [event] = openai.EMBEDDINGS.response_events(body, wire._embeddings(body), 3)
    assert event["content"] == {"object": "list", "embeddingCount": 2, "firstEmbeddingDimensions": 8,
                                "encodingFormat": "base64"}
    assert event["metadata"]["usage"] == {"promptTokens": 7, "totalTokens": 7}
