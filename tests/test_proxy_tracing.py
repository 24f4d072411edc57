"""Calls land on the right trace: by header with SDK events alongside (hybrid), or by message history."""

import json

import anthropic
import httpx
import openai
import pytest
from whyops import WhyOps

from .proxy_fixtures import kinds, read_trace

QUESTION = [{"role": "system", "content": "You check the weather."}, {"role": "user", "content": "Paris?"}]


def test_proxied_calls_and_sdk_tool_spans_share_one_trace(proxied, fake, trace_id):
    sdk = WhyOps(api_key="local", agent_name="hybrid-agent",
                 agent_metadata={"systemPrompt": "You check the weather.", "tools": []},
                 proxy_base_url=proxied.proxy, analyse_base_url=proxied.api)
    api = openai.OpenAI(base_url=f"{proxied.proxy}/v1", api_key="sk-x",
                        default_headers={"X-Agent-Name": "hybrid-agent", "X-Trace-ID": trace_id})
    first = api.chat.completions.create(model="gpt-4o-mini-tools", messages=QUESTION)
    weather, clock = first.choices[0].message.tool_calls
    trace = sdk.trace(trace_id)
    arguments = [{"name": "get_weather", "arguments": {"city": "Paris"}}]
    span = trace.tool_call_request_sync("get_weather", arguments)
    trace.tool_call_response_sync("get_weather", span, arguments, {"sky": "sunny"})
    history = [*QUESTION, first.choices[0].message.model_dump(exclude_none=True),
               {"role": "tool", "tool_call_id": weather.id, "content": '{"sky": "sunny"}'},
               {"role": "tool", "tool_call_id": clock.id, "content": "12:00"}]
    api.chat.completions.create(model="gpt-4o-mini", messages=history)
    recorded = read_trace(proxied, trace_id, 8)
    assert recorded["agentName"] == "hybrid-agent"
    assert [(e["eventType"], e["source"]) for e in recorded["events"]] == [
        ("user_message", "proxy"), ("llm_response", "proxy"),
        ("tool_call_request", "sdk"), ("tool_call_response", "sdk"),
        # the SDK recorded get_weather itself; the proxy pairs only the call it was left with
        ("tool_call_request", "proxy"), ("tool_call_response", "proxy"),
        ("tool_result", "proxy"), ("llm_response", "proxy")]
    assert [s["tool"] for s in recorded["spans"]] == ["get_weather", "get_time"]
    assert all(s["complete"] for s in recorded["spans"])


def test_sdk_openai_helper_fails_with_current_clients_as_documented():
    sdk = WhyOps(api_key="local", agent_name="a", agent_metadata={"systemPrompt": "s", "tools": []})
    with pytest.raises(AttributeError):
        sdk.openai(openai.OpenAI(api_key="sk-x"))


def test_a_chat_without_trace_headers_continues_its_trace_with_tool_spans(proxied, fake):
    api = openai.OpenAI(base_url=f"{proxied.proxy}/v1", api_key="sk-x")
    first = api.chat.completions.with_raw_response.create(model="gpt-4o-mini-tools", messages=QUESTION)
    message = first.parse().choices[0].message
    results = [{"role": "tool", "tool_call_id": call.id, "content": "ok"} for call in message.tool_calls]
    second = api.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[*QUESTION, message.model_dump(), *results])
    trace_id = first.headers["X-Trace-ID"]
    assert second.headers["X-Trace-ID"] == trace_id
    trace = read_trace(proxied, trace_id, 8)
    assert kinds(trace) == ["user_message", "llm_response", "tool_call_request", "tool_call_response",
                            "tool_call_request", "tool_call_response", "tool_result", "llm_response"]
    assert [s["tool"] for s in trace["spans"]] == ["get_weather", "get_time"]
    assert all(s["latencyMs"] >= 0 for s in trace["spans"])
    # The history sent again with a further turn pairs nothing twice.
    third = api.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[*QUESTION, message.model_dump(), *results,
                                       second.parse().choices[0].message.model_dump(),
                                       {"role": "user", "content": "thanks"}])
    assert third.headers["X-Trace-ID"] == trace_id
    assert len(read_trace(proxied, trace_id, 10)["spans"]) == 2
    # The same opening in a new conversation is a new trace.
    again = api.chat.completions.with_raw_response.create(model="gpt-4o-mini-tools", messages=QUESTION)
    assert again.headers["X-Trace-ID"] != trace_id


def test_a_history_holding_half_a_surrogate_pair_is_relayed_as_sent_and_continues_its_trace(proxied, fake):
    # JSON can spell a lone surrogate ("\ud800") and Python reads it; UTF-8 cannot carry it.
    url, headers = f"{proxied.proxy}/v1/chat/completions", {"content-type": "application/json"}
    opening = {"role": "user", "content": "half an emoji: \ud800"}
    first = httpx.post(url, content=json.dumps({"model": "gpt-4o-mini", "messages": [opening]}), headers=headers)
    assert first.status_code == 200 and fake.requests[-1].body["messages"] == [opening]
    history = [opening, first.json()["choices"][0]["message"], {"role": "user", "content": "and?"}]
    second = httpx.post(url, content=json.dumps({"model": "gpt-4o-mini", "messages": history}).encode(), headers=headers)
    assert second.status_code == 200
    assert second.headers["X-Trace-ID"] == first.headers["X-Trace-ID"]
    assert read_trace(proxied, first.headers["X-Trace-ID"], 4)["events"][0]["content"]["messages"] == [opening]


def test_a_streamed_anthropic_conversation_without_headers_stays_on_one_trace(proxied, fake):
    api = anthropic.Anthropic(base_url=proxied.proxy, api_key="sk-x")
    question = [{"role": "user", "content": "Paris weather, streamed?"}]
    with api.messages.stream(model="claude-haiku-4-5-tools", max_tokens=100, messages=question,
                             thinking={"type": "enabled", "budget_tokens": 1024}) as stream:
        final = stream.get_final_message()
        trace_id = stream.response.headers["X-Trace-ID"]
    tool = final.content[-1]
    history = [*question, {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in final.content]},
               {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool.id, "content": "sunny"}]}]
    second = api.messages.with_raw_response.create(model="claude-haiku-4-5", max_tokens=100, messages=history)
    assert second.headers["X-Trace-ID"] == trace_id
    trace = read_trace(proxied, trace_id, 7)
    assert kinds(trace) == ["user_message", "llm_thinking", "llm_response", "tool_call_request",
                            "tool_call_response", "tool_result", "llm_response"]
    assert trace["spans"][0]["results"] == {"output": "sunny"}


def test_a_responses_call_continuing_a_previous_response_joins_its_trace_with_tool_spans(proxied, fake):
    api = openai.OpenAI(base_url=f"{proxied.proxy}/v1", api_key="sk-x")
    first = api.responses.with_raw_response.create(model="gpt-4.1-tools", input="weather in Paris?")
    call = first.parse().output[-1]
    assert call.type == "function_call"
    second = api.responses.with_raw_response.create(
        model="gpt-4.1", previous_response_id=first.parse().id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": '{"sky": "sunny"}'}])
    trace_id = first.headers["X-Trace-ID"]
    assert second.headers["X-Trace-ID"] == trace_id
    trace = read_trace(proxied, trace_id, 8)
    assert kinds(trace)[3:6] == ["tool_call_request", "tool_call_response", "tool_result"]
    assert trace["spans"][0]["results"] == {"sky": "sunny"}


def test_thread_id_and_external_user_headers_are_honoured(proxied, fake, trace_id):
    answer = httpx.post(f"{proxied.proxy}/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": QUESTION},
                        headers={"X-Thread-ID": trace_id, "X-External-User-Id": "user-7"})
    assert answer.headers["X-Trace-ID"] == trace_id
    trace = read_trace(proxied, trace_id, 2)
    assert trace["externalUserId"] == "user-7" and trace["agentName"] == "default"
