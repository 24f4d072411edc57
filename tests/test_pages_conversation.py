"""The conversation (pure): every message once, proxied histories by what is new, folds of at most 50 steps."""

from whyops_local.pages import display
from whyops_local.pages.conversation import FOLD_STEPS, conversation
from whyops_local.pages.markdown import to_html


def ev(step, kind, content, source="sdk", span=None, **metadata):
    return {"id": step, "stepId": step, "node": str(step), "eventType": kind, "content": content, "metadata": metadata,
            "source": source, "costUsd": None, "tokens": (1, 0, 0, 2), "spanId": span or f"s{step}"}


def items(events):
    return [item for fold in conversation(events) for item in fold["items"]]


def test_markdown_is_rendered_and_raw_html_and_harmful_links_are_not():
    html = to_html('**b** [x](javascript:alert(1)) [y](data:text/html,1) <script>x</script> <svg onload=1> ![i](http://e/x.png)')
    assert "<strong>b</strong>" in html and "&lt;script&gt;" in html and "&lt;svg" in html
    assert "javascript:" not in html and "data:" not in html and "<img" not in html


def test_a_proxied_history_shows_only_what_is_new_and_tool_results_join_their_calls():
    call = {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    first = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather?"}]
    second = first + [{"role": "assistant", "content": None, "tool_calls": [call]},
                      {"role": "tool", "tool_call_id": "c1", "content": '{"temp": 21}'}]
    shown = items([
        ev(1, "user_message", {"messages": first}, "proxy", systemPrompt="Be brief."),
        ev(2, "llm_response", {"toolCalls": [call]}, "proxy"),
        ev(3, "tool_result", {"messages": second}, "proxy"),
        ev(4, "llm_response", {"content": "Sunny"}, "proxy"),
    ])
    assert [i["kind"] for i in shown] == ["input", "answer", "answer"]  # the resent history adds nothing
    assert [m["role"] for m in shown[0]["messages"]] == ["user"]  # the system prompt is shown apart, folded
    assert shown[1]["calls"][0]["result"] == [{"type": "json", "value": {"temp": 21}}]


def test_an_sdk_tool_span_joins_the_call_it_answers_by_tool_name():
    calls = [{"name": "search", "arguments": {"q": "x"}}]
    shown = items([
        ev(1, "llm_response", {"toolCalls": [{"id": "c1", "function": {"name": "search", "arguments": "{}"}}]}),
        ev(2, "tool_call_request", {"toolCalls": calls}, span="sp", tool="search"),
        ev(3, "tool_call_response", {"toolCalls": calls, "toolResults": {"hits": 3}}, span="sp", tool="search", latencyMs=5),
    ])
    assert len(shown) == 1 and shown[0]["calls"][0]["result"] == [{"type": "json", "value": {"hits": 3}}]
    assert shown[0]["calls"][0]["latencyMs"] == 5


def test_runs_without_user_messages_fold_into_blocks_of_at_most_fifty_steps():
    folds = conversation([ev(n, "llm_response", {"content": f"a{n}"}) for n in range(1, 131)])
    assert [len(f["items"]) for f in folds] == [FOLD_STEPS, FOLD_STEPS, 30]
    assert folds[0]["calls"] == 50 and folds[0]["tokens"] == [50, 0, 0, 100]


def test_an_error_shows_the_providers_message_not_its_json():
    assert display.error_message({"message": '{"error": {"message": "Rate limit", "type": "x"}}'}) == "Rate limit"
    assert display.error_message("plain") == "plain"


def test_the_tool_results_ending_a_history_carry_the_tools_names():
    history = [{"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "lookup", "input": {}}]},
               {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "found"}]}]
    assert display.tool_results({"messages": history}) == [
        {"id": "t1", "name": "lookup", "blocks": [{"type": "text", "text": "found"}]}]
