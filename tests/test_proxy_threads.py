"""Pure trace matching by message history, and tool spans between two calls."""

from datetime import UTC, datetime, timedelta

from whyops_local.proxy.conversations import Conversations, History
from whyops_local.proxy.providers import anthropic, openai
from whyops_local.proxy.tool_spans import tool_spans

FIRST = {"messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": "weather?"}]}
ANSWER = {"choices": [{"message": {"role": "assistant", "content": None, "tool_calls": [
    {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]}}]}
# What the OpenAI SDK sends back: the answer's message dumped, with its extra fields.
ECHOED = {"role": "assistant", "content": None, "refusal": None, "annotations": [], "tool_calls": [
    {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]}
SECOND = {"messages": [*FIRST["messages"], ECHOED, {"role": "tool", "tool_call_id": "c1", "content": "sunny"}]}


def remembered(agent="a") -> Conversations:
    index = Conversations(limit=100)
    index.remember(History(agent, openai.CHAT.conversation(FIRST)), openai.CHAT.answer(ANSWER), "trace-1")
    return index


def test_a_request_continuing_an_earlier_history_finds_its_trace():
    assert remembered().find(History("a", openai.CHAT.conversation(SECOND))) == "trace-1"


def test_a_new_conversation_with_the_same_opening_does_not():
    assert remembered().find(History("a", openai.CHAT.conversation(FIRST))) is None


def test_histories_are_kept_apart_per_agent():
    assert remembered("a").find(History("b", openai.CHAT.conversation(SECOND))) is None


def test_a_response_id_continued_explicitly_finds_its_trace():
    index = Conversations(limit=100)
    index.remember(History("a", []), [], "trace-9", response_id="resp_1")
    assert index.find(History("a", []), previous_id="resp_1") == "trace-9"


def test_the_oldest_histories_are_forgotten_past_the_limit():
    index = Conversations(limit=1)
    index.remember(History("a", [b"x"]), [], "old")
    index.remember(History("a", [b"y"]), [], "new")
    assert index.find(History("a", [b"x", b"more"])) is None
    assert index.find(History("a", [b"y", b"more"])) == "new"


def test_anthropic_histories_match_with_thinking_left_out():
    first = {"system": "sys", "messages": [{"role": "user", "content": "weather?"}]}
    answer = {"content": [{"type": "thinking", "thinking": "hm", "signature": "s"},
                          {"type": "tool_use", "id": "t1", "name": "get_weather", "input": {"city": "Paris"}}]}
    second = {"system": "sys", "messages": [*first["messages"], {"role": "assistant", "content": answer["content"]},
                                            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1",
                                                                          "content": "sunny"}]}]}
    index = Conversations(limit=10)
    index.remember(History("a", anthropic.MESSAGES.conversation(first)), anthropic.MESSAGES.answer(answer), "trace-2")
    assert index.find(History("a", anthropic.MESSAGES.conversation(second))) == "trace-2"


def test_histories_holding_a_lone_surrogate_still_match():
    # JSON can spell one ("\ud800") and json reads it; UTF-8 cannot carry it.
    first = {"messages": [{"role": "user", "content": "half an emoji: \ud800"}]}
    second = {"messages": [*first["messages"], {"role": "assistant", "content": "ok"}, {"role": "user", "content": "and?"}]}
    index = Conversations(limit=10)
    index.remember(History("a", openai.CHAT.conversation(first)),
                   openai.CHAT.answer({"choices": [{"message": {"role": "assistant", "content": "ok"}}]}), "trace-3")
    assert index.find(History("a", openai.CHAT.conversation(second))) == "trace-3"


def test_tool_calls_are_paired_with_their_results_into_spans_with_latency():
    asked = datetime(2026, 1, 1, tzinfo=UTC)
    calls = ANSWER["choices"][0]["message"]["tool_calls"]
    request, response = tool_spans(calls, [("c1", '{"sky": "sunny"}')], asked, asked + timedelta(milliseconds=250))
    assert (request["eventType"], response["eventType"]) == ("tool_call_request", "tool_call_response")
    assert request["spanId"] == response["spanId"]
    assert request["metadata"] == {"tool": "get_weather"}
    assert request["content"]["toolCalls"] == [{"id": "c1", "name": "get_weather", "arguments": {"city": "Paris"}}]
    assert response["content"]["toolResults"] == {"sky": "sunny"}
    assert response["metadata"]["latencyMs"] == 250


def test_results_for_unknown_calls_and_tools_the_sdk_recorded_give_no_span():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    calls = ANSWER["choices"][0]["message"]["tool_calls"]
    assert tool_spans(calls, [("other", "x")], now, now) == []
    assert tool_spans(calls, [("c1", "x")], now, now, skip_tools={"get_weather"}) == []
