"""What changed between two LLM calls of a proxied run, and two SDK runs compared, through the read API."""

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import openai
import pytest
from whyops import WhyOps

from .proxy_fixtures import read_trace
from .test_sdk import SUPPORT_METADATA

SYSTEM = {"role": "system", "content": "You are a weather bot."}


def context_of(server, trace_id, step):
    answer = httpx.get(f"{server.api}/traces/{trace_id}/steps/{step}/context")
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_the_context_diff_of_a_compacted_proxied_run_names_the_dropped_messages(proxied, fake, trace_id):
    api = openai.OpenAI(base_url=f"{proxied.proxy}/v1", api_key="sk-x", default_headers={"X-Trace-ID": trace_id})
    first = [SYSTEM, {"role": "user", "content": "weather in Paris?"}]
    api.chat.completions.create(model="gpt-4o-mini", messages=first)
    second = [*first, {"role": "assistant", "content": "Hello world"}, {"role": "user", "content": "and in Lyon?"}]
    api.chat.completions.create(model="gpt-4o-mini", messages=second)
    # The client compacts: the old turns give way to a summary.
    third = [SYSTEM, {"role": "user", "content": "Summary so far: the user asked about Paris and Lyon."},
             {"role": "user", "content": "and in Nice?"}]
    api.chat.completions.create(model="gpt-4o-mini", messages=third)
    steps = [e["stepId"] for e in read_trace(proxied, trace_id, 6)["events"] if e["eventType"] == "llm_response"]

    grown = context_of(proxied, trace_id, steps[1])
    assert grown["previousStepId"] == steps[0]
    assert [(m["index"], m["role"], m["text"]) for m in grown["appended"]] == [
        (2, "assistant", "Hello world"), (3, "user", "and in Lyon?")]
    assert grown["removed"] == grown["edited"] == []
    assert (grown["systemPromptChanged"], grown["toolsChanged"]) == (False, False)
    assert (grown["promptTokens"], grown["previousPromptTokens"], grown["promptTokensDelta"]) == (120, 120, 0)

    compacted = context_of(proxied, trace_id, steps[2])
    assert compacted["previousStepId"] == steps[1]
    assert [m["text"] for m in compacted["removed"]] == ["weather in Paris?", "Hello world", "and in Lyon?"]
    assert [m["text"] for m in compacted["appended"]] == [
        "Summary so far: the user asked about Paris and Lyon.", "and in Nice?"]
    assert all(m["estimatedTokens"] > 0 for m in compacted["removed"])
    # The request's own step answers too; the first call has nothing before it.
    assert context_of(proxied, trace_id, steps[2] - 1)["removed"] == compacted["removed"]
    assert context_of(proxied, trace_id, steps[0])["previousStepId"] is None


def test_a_step_that_is_no_llm_call_or_an_unknown_trace_is_a_json_404(proxied, fake, trace_id):
    openai.OpenAI(base_url=f"{proxied.proxy}/v1", api_key="sk-x", default_headers={"X-Trace-ID": trace_id}
                  ).chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    read_trace(proxied, trace_id, 2)
    for url in (f"/traces/{trace_id}/steps/99/context", "/traces/no-such-trace/steps/1/context"):
        answer = httpx.get(proxied.api + url)
        assert answer.status_code == 404 and "error" in answer.json()


@pytest.fixture
def sdk(proxied):
    return WhyOps(api_key="local", agent_name=f"compare-{uuid.uuid4().hex[:6]}", agent_metadata=SUPPORT_METADATA,
                  proxy_base_url=proxied.proxy, analyse_base_url=proxied.api)


START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
USAGE = {"promptTokens": 100, "completionTokens": 20, "totalTokens": 120}


def agent_run(server, sdk, trace_id, orders, seconds, error=False):
    """The support agent: a question, then per order an LLM call asking for a lookup and the tool span."""
    trace, clock = sdk.trace(trace_id), iter(range(1000))

    def at():
        return (START + timedelta(seconds=next(clock) * seconds)).isoformat()

    opening = [{"role": "system", "content": "You track orders."}, {"role": "user", "content": "Where are my orders?"}]
    trace.user_message_sync(opening, timestamp=at())
    for order in orders:
        calls = [{"name": "search_orders", "arguments": {"orderId": order}}]
        trace.llm_response_sync("gpt-4o-mini", "openai", tool_calls=[
            {"id": f"call_{order}", "function": {"name": "search_orders", "arguments": f'{{"orderId":"{order}"}}'}}],
            finish_reason="tool_calls", usage=USAGE, timestamp=at())
        span = trace.tool_call_request_sync("search_orders", calls, timestamp=at())
        trace.tool_call_response_sync("search_orders", span, calls, {"status": "shipped"}, timestamp=at())
    if error:
        trace.error_sync("order service unavailable", status=503, timestamp=at())
    trace.llm_response_sync("gpt-4o-mini", "openai", "All shipped.", finish_reason="stop", usage=USAGE, timestamp=at())
    return read_trace(server, trace_id, 2 + 3 * len(orders) + error)


def test_two_runs_diverging_at_the_third_tool_call(sdk, proxied):
    good, bad = f"good-{uuid.uuid4()}", f"bad-{uuid.uuid4()}"
    agent_run(proxied, sdk, good, ["1", "2", "3"], seconds=1)
    agent_run(proxied, sdk, bad, ["1", "2", "9", "4"], seconds=2, error=True)
    answer = httpx.get(f"{proxied.api}/compare", params={"a": good, "b": bad})
    assert answer.status_code == 200, answer.text
    compared = answer.json()
    assert (compared["a"]["traceId"], compared["b"]["traceId"]) == (good, bad)
    rows = compared["rows"]
    # user, llm, tool 1, llm, tool 2, llm, tool 3 <- the third tool call
    assert compared["firstDivergence"] == 6
    third = rows[6]
    assert (third["a"]["name"], third["a"]["text"], third["b"]["text"]) == (
        "search_orders", '{"orderId":"3"}', '{"orderId":"9"}')
    assert third["same"] is False and all(row["same"] for row in rows[:6])
    assert rows[0]["a"]["text"] == rows[0]["b"]["text"] == "Where are my orders?"
    # Then b goes on alone (one more lookup, an error) until both answer.
    assert [(row["a"], row["b"]["eventType"]) for row in rows[7:10]] == [
        (None, "llm_response"), (None, "tool_call_request"), (None, "error")]
    assert rows[-1]["same"] and rows[-1]["a"]["text"] == rows[-1]["b"]["text"] == "All shipped."
    # a: 11 events a second apart; b: 15 events two seconds apart.
    assert compared["delta"] == {"durationMs": 28_000 - 10_000, "llmCalls": 1, "toolCalls": 1, "errors": 1,
                                 "tokens": 120, "costUsd": pytest.approx(compared["b"]["costUsd"] - compared["a"]["costUsd"])}
    assert compared["delta"]["costUsd"] > 0


def test_a_run_compared_with_itself_has_no_divergence(sdk, proxied):
    run = f"self-{uuid.uuid4()}"
    agent_run(proxied, sdk, run, ["1", "2", "3"], seconds=1)
    compared = httpx.get(f"{proxied.api}/compare", params={"a": run, "b": run}).json()
    assert compared["firstDivergence"] is None and all(row["same"] for row in compared["rows"])
    assert compared["delta"] == {"durationMs": 0, "llmCalls": 0, "toolCalls": 0, "errors": 0, "tokens": 0, "costUsd": 0}


def test_compare_names_a_missing_or_unknown_run(proxied):
    missing = httpx.get(f"{proxied.api}/compare", params={"a": "x"})
    assert missing.status_code == 400 and missing.json()["details"][0]["field"] == "b"
    unknown = httpx.get(f"{proxied.api}/compare", params={"a": "nope", "b": "nope"})
    assert unknown.status_code == 404 and unknown.json()["details"][0]["field"] == "a"
