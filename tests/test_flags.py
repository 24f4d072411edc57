"""Flags raised by runs made through the real SDKs and the proxy (with the fake upstream), and not by
normal runs of the same shape, nor by the seed docs' examples."""

import json
import uuid
from datetime import UTC, datetime, timedelta

import anthropic
import httpx
import openai
import pytest
from whyops import WhyOps

from .proxy_fixtures import read_trace
from .test_sdk import CACHED_USAGE, SEARCH, SUPPORT_METADATA, _send_every_method_sync

QUESTION = [{"role": "user", "content": "weather in Paris?"}]


@pytest.fixture
def sdk(proxied):
    return WhyOps(api_key="local", agent_name=f"flags-{uuid.uuid4().hex[:6]}", agent_metadata=SUPPORT_METADATA,
                  proxy_base_url=proxied.proxy, analyse_base_url=proxied.api)


def flags(server, trace_id, events=1):
    return read_trace(server, trace_id, events)["flags"]


def kinds(server, trace_id, events=1):
    return [flag["kind"] for flag in flags(server, trace_id, events)]


def chat(server, trace_id):
    return openai.OpenAI(base_url=f"{server.proxy}/v1", api_key="sk-x", max_retries=0,
                         default_headers={"X-Trace-ID": trace_id})


def claude(server, trace_id):
    return anthropic.Anthropic(base_url=server.proxy, api_key="sk-ant-x", max_retries=0,
                               default_headers={"X-Trace-ID": trace_id})


def tool_loop_run(server, trace_id, model, rounds=3):
    """A framework-style agent loop: call, run the tools asked for, send their results, until a final answer."""
    api, messages = chat(server, trace_id), list(QUESTION)
    for _ in range(rounds):
        message = api.chat.completions.create(model=model, messages=messages).choices[0].message
        messages.append(message.model_dump(exclude_none=True))
        messages += [{"role": "tool", "tool_call_id": call.id, "content": json.dumps({"ok": call.function.arguments})}
                     for call in message.tool_calls]
    api.chat.completions.create(model="gpt-4o-mini", messages=messages)
    # Each round: its request, the answer, two tool spans of two events each; then the last request and answer.
    return read_trace(server, trace_id, 6 * rounds + 2)


def test_a_proxied_agent_calling_the_same_tools_three_times_is_a_tool_loop(proxied, fake, trace_id):
    trace = tool_loop_run(proxied, trace_id, "gpt-4o-mini-tools")
    loops = [flag for flag in trace["flags"] if flag["kind"] == "tool_loop"]
    requests = {e["stepId"]: e["metadata"]["tool"] for e in trace["events"] if e["eventType"] == "tool_call_request"}
    assert sorted(requests[loop["stepIds"][0]] for loop in loops) == ["get_time", "get_weather"]
    assert all(len(loop["stepIds"]) == 3 and set(loop["stepIds"]) <= set(requests) for loop in loops)
    assert any('get_weather was called 3 times with the same arguments ({"city":"Paris"})' == f["message"] for f in loops)
    summary = httpx.get(f"{proxied.api}/traces", params={"flag": "tool_loop"}).json()["traces"]
    assert trace_id in [t["traceId"] for t in summary]
    assert next(t for t in summary if t["traceId"] == trace_id)["flags"] == ["tool_loop"]


def test_a_proxied_agent_whose_tool_arguments_change_is_no_loop(proxied, fake, trace_id):
    trace = tool_loop_run(proxied, trace_id, "gpt-4o-mini-tools-varied")
    assert trace["toolCalls"] == 6 and trace["flags"] == []
    listed = httpx.get(f"{proxied.api}/traces", params={"flag": "tool_loop"}).json()["traces"]
    assert trace_id not in [t["traceId"] for t in listed]


def test_an_answer_cut_at_max_tokens_is_truncated(proxied, fake, trace_id):
    claude(proxied, trace_id).messages.create(model="claude-truncated", max_tokens=5, messages=QUESTION)
    (flag,) = flags(proxied, trace_id, 2)
    assert flag == {"kind": "truncated", "stepIds": [2],
                    "message": "The answer was cut at its token limit (finish reason “max_tokens”)"}


def test_a_chat_answer_cut_by_length_is_truncated_and_a_finished_one_is_not(proxied, fake, trace_id):
    chat(proxied, trace_id).chat.completions.create(model="gpt-truncated", messages=QUESTION, max_tokens=3)
    assert kinds(proxied, trace_id, 2) == ["truncated"]
    normal = f"{trace_id}-normal"
    chat(proxied, normal).chat.completions.create(model="gpt-4o-mini", messages=QUESTION)
    claude(proxied, normal).messages.create(model="claude-sonnet-4-6", max_tokens=50, messages=QUESTION)
    assert kinds(proxied, normal, 4) == []


def test_an_answer_with_no_text_and_no_tool_call_is_empty(proxied, fake, trace_id):
    claude(proxied, trace_id).messages.create(model="claude-empty", max_tokens=50, messages=QUESTION)
    assert kinds(proxied, trace_id, 2) == ["empty_answer"]


def test_a_changed_system_prompt_between_cached_anthropic_calls_is_a_cache_break(proxied, fake, trace_id):
    api = claude(proxied, trace_id)
    for system in ("You are a weather bot. " * 50, "You are a weather bot. " * 50, "You are a terse weather bot."):
        api.messages.create(model="claude-cached", max_tokens=50, system=system, messages=QUESTION)
    # The fake answers "Hello world" each time: a repeated answer too, rightly.
    (flag,) = [flag for flag in flags(proxied, trace_id, 6) if flag["kind"] == "cache_break"]
    assert flag == {"kind": "cache_break", "stepIds": [6],
                    "message": "Cache reads fell from 2,048 to 0 tokens: the system prompt changed"}


def test_cached_calls_with_the_same_prompt_prefix_do_not_break(proxied, fake, trace_id):
    api, messages = claude(proxied, trace_id), list(QUESTION)
    for turn in range(3):
        answer = api.messages.create(model="claude-cached", max_tokens=50, system="You are a weather bot.",
                                     messages=messages)
        messages += [{"role": "assistant", "content": answer.content[0].text}, {"role": "user", "content": f"and {turn}?"}]
    trace = read_trace(proxied, trace_id, 6)
    assert trace["usage"]["cacheReadTokens"] >= 4096
    assert [flag["kind"] for flag in trace["flags"]] == ["repeated_answer"]  # the fake's same "Hello world"


def test_three_failed_calls_in_a_row_are_an_error_streak(proxied, fake, trace_id):
    api = chat(proxied, trace_id)
    for _ in range(3):
        with pytest.raises(openai.InternalServerError):
            api.chat.completions.create(model="gpt-error-500", messages=QUESTION)
    (flag,) = flags(proxied, trace_id, 6)
    assert flag == {"kind": "error_streak", "stepIds": [2, 4, 6], "message": "3 errors in a row"}


def test_a_failed_call_retried_successfully_is_no_streak(proxied, fake, trace_id):
    api = chat(proxied, trace_id)
    for model in ("gpt-error-500", "gpt-error-500", "gpt-4o-mini", "gpt-error-500"):
        try:
            api.chat.completions.create(model=model, messages=QUESTION)
        except openai.InternalServerError:
            pass
    assert kinds(proxied, trace_id, 8) == []


def test_a_tool_span_never_answered_before_the_final_answer_dangles(sdk, proxied, trace_id):
    trace = sdk.trace(trace_id)
    trace.user_message_sync([{"role": "user", "content": "Charge me"}])
    trace.tool_call_request_sync("charge_card", [{"name": "charge_card", "arguments": {"amount": 4999}}])
    trace.llm_response_sync("gpt-4o-mini", "openai", "Charged.", finish_reason="stop")
    (flag,) = flags(proxied, trace_id, 3)
    assert flag == {"kind": "dangling_tool", "stepIds": [2],
                    "message": "The call to charge_card got no response or result before the final answer"}


def test_a_tool_span_open_for_ten_minutes_dangles_when_read(sdk, proxied, trace_id):
    trace = sdk.trace(trace_id)
    eleven_minutes_ago = (datetime.now(UTC) - timedelta(minutes=11)).isoformat()
    trace.tool_call_request_sync("search_orders", SEARCH, timestamp=eleven_minutes_ago)
    recent = f"{trace_id}-recent"
    sdk.trace(recent).tool_call_request_sync("search_orders", SEARCH)
    assert flags(proxied, trace_id) == [{"kind": "dangling_tool", "stepIds": [1],
                                         "message": "The call to search_orders got no response or result after 10 minutes"}]
    assert flags(proxied, recent) == []
    listed = [t["traceId"] for t in httpx.get(f"{proxied.api}/traces", params={"flag": "dangling_tool"}).json()["traces"]]
    assert trace_id in listed and recent not in listed


def test_repeating_the_same_answer_three_times_in_a_row(sdk, proxied, trace_id):
    trace = sdk.trace(trace_id)
    for question in ("Where is my order?", "Hello?", "Can you check again?"):
        trace.user_message_sync([{"role": "user", "content": question}])
        trace.llm_response_sync("gpt-4o-mini", "openai", "I could not find that order.", finish_reason="stop")
    (flag,) = flags(proxied, trace_id, 6)
    assert flag["kind"] == "repeated_answer" and flag["stepIds"] == [2, 4, 6]
    assert flag["message"] == "The same answer 3 times in a row: “I could not find that order.”"


def test_a_step_three_times_slower_than_the_median_and_over_five_seconds_is_slow(sdk, proxied, trace_id):
    trace = sdk.trace(trace_id)
    for i, latency in enumerate((900, 1100, 1000, 21_000, 950)):
        trace.llm_response_sync("gpt-4o-mini", "openai", f"answer {i}", finish_reason="stop", latency_ms=latency)
    (flag,) = flags(proxied, trace_id, 5)
    assert flag == {"kind": "slow_step", "stepIds": [4],
                    "message": "This LLM call took 21.0 s, 21× the trace's median LLM call (1.0 s)"}


def test_a_manual_copy_of_a_proxied_response_is_flagged_and_counted_once(sdk, proxied, fake, trace_id):
    chat(proxied, trace_id).chat.completions.create(model="gpt-4o-mini", messages=QUESTION)
    read_trace(proxied, trace_id, 2)
    sdk.trace(trace_id).llm_response_sync("gpt-4o-mini", "openai", "Hello world", finish_reason="stop",
                                          usage={"promptTokens": 120, "completionTokens": 12, "totalTokens": 132})
    trace = read_trace(proxied, trace_id, 3)
    assert trace["flags"] == [{"kind": "double_count", "stepIds": [2, 3],
                               "message": "Step 3 repeats the proxied LLM response by hand; counted once in the totals"}]
    assert (trace["llmCalls"], trace["usage"]["totalTokens"], trace["usage"]["promptTokens"]) == (1, 132, 120)



def test_a_manual_copy_is_counted_once_in_the_agents_totals_too(sdk, proxied, fake, trace_id):
    api = openai.OpenAI(base_url=f"{proxied.proxy}/v1", api_key="sk-x", max_retries=0,
                        default_headers={"X-Trace-ID": trace_id, "X-Agent-Name": sdk._agent_name})
    api.chat.completions.create(model="gpt-4o-mini", messages=QUESTION)
    read_trace(proxied, trace_id, 2)
    sdk.trace(trace_id).llm_response_sync("gpt-4o-mini", "openai", "Hello world",
                                          usage={"promptTokens": 120, "completionTokens": 12, "totalTokens": 132})
    assert kinds(proxied, trace_id, 3) == ["double_count"]
    totals = httpx.get(f"{proxied.api}/agents/{sdk._agent_name}").json()["totals"]
    assert (totals["eventCount"], totals["llmCalls"], totals["usage"]["totalTokens"]) == (3, 1, 132)


def test_the_seed_docs_hybrid_pattern_raises_no_flag(sdk, proxied, fake, trace_id):
    api = chat(proxied, trace_id)
    api.chat.completions.create(model="gpt-4o-mini-tools", messages=QUESTION)
    trace = sdk.trace(trace_id)
    charge = [{"name": "charge_card", "arguments": {"amount": 4999, "currency": "usd"}}]
    span_id = trace.tool_call_request_sync("charge_card", charge)
    trace.tool_call_response_sync("charge_card", span_id, charge, {"status": "charged"})
    api.chat.completions.create(model="gpt-4o-mini", messages=QUESTION)
    assert kinds(proxied, trace_id, 6) == []


def test_the_seed_docs_runtime_examples_raise_no_flag(sdk, proxied, trace_id):
    trace = sdk.trace(trace_id)
    trace.user_message_sync([{"role": "user", "content": "Where is order 123?"}])
    span_id = trace.tool_call_request_sync("search_orders", SEARCH, latency_ms=11)
    trace.tool_call_response_sync("search_orders", span_id, SEARCH, {"status": "shipped"}, latency_ms=88)
    trace.llm_response_sync("openai/gpt-4o-mini", "openai", "Your order has shipped.", finish_reason="stop",
                            latency_ms=390, usage={"promptTokens": 42, "completionTokens": 16, "totalTokens": 58})
    trace.llm_response_sync("anthropic/claude-sonnet-4-5", "anthropic", "Done.", usage=CACHED_USAGE, latency_ms=860)
    every = f"{trace_id}-every"
    _send_every_method_sync(sdk.trace(every))
    assert kinds(proxied, trace_id, 5) == [] and kinds(proxied, every, 9) == []


def test_an_unknown_flag_filter_is_a_clear_error(proxied):
    answer = httpx.get(f"{proxied.api}/traces", params={"flag": "loops"})
    assert answer.status_code == 400
    assert answer.json()["details"][0]["field"] == "flag" and "tool_loop" in answer.json()["details"][0]["message"]


def test_with_flags_off_nothing_is_flagged(tmp_path, fake_upstream):
    from .servers import run_server

    env = {"WHYOPS_FLAGS": "0", "WHYOPS_OPENAI_BASE_URL": fake_upstream.url + "/v1"}
    with run_server(tmp_path, env=env) as server:
        trace_id = f"off-{uuid.uuid4()}"
        chat(server, trace_id).chat.completions.create(model="gpt-truncated", messages=QUESTION)
        assert flags(server, trace_id, 2) == []
