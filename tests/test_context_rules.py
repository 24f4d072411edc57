"""domain.context on its own: which messages were appended, removed or edited between two calls."""

from whyops_local.domain import context

SYSTEM = {"role": "system", "content": "You are helpful."}


def msg(role, text):
    return {"role": role, "content": text}


def test_a_growing_conversation_only_appends():
    before = [SYSTEM, msg("user", "hi")]
    after = [*before, msg("assistant", "hello"), msg("user", "weather?")]
    change = context.diff_messages(before, after)
    assert [(e["index"], e["role"], e["text"]) for e in change["appended"]] == [
        (2, "assistant", "hello"), (3, "user", "weather?")]
    assert change["removed"] == change["edited"] == []


def test_compaction_names_the_dropped_messages_and_the_summary_that_replaced_them():
    old = [SYSTEM, msg("user", "first question"), msg("assistant", "first answer"), msg("user", "second question")]
    new = [SYSTEM, msg("user", "Summary: we discussed two questions."), msg("user", "third question")]
    change = context.diff_messages(old, new)
    assert [e["text"] for e in change["removed"]] == ["first question", "first answer", "second question"]
    assert [e["text"] for e in change["appended"]] == ["Summary: we discussed two questions.", "third question"]
    assert change["edited"] == []


def test_a_message_changed_in_place_is_edited():
    old = [SYSTEM, msg("user", "What is the weather in Paris today?"), msg("assistant", "Sunny.")]
    new = [SYSTEM, msg("user", "What is the weather in Lyon today?"), msg("assistant", "Sunny.")]
    (edit,) = context.diff_messages(old, new)["edited"]
    assert (edit["index"], edit["previousIndex"], edit["previousText"]) == (1, 1, "What is the weather in Paris today?")


def test_tool_blocks_are_named_and_tokens_estimated():
    message = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "22 C"}]}
    (entry,) = context.diff_messages([], [message])["appended"]
    assert entry["text"] == "[tool result: 22 C]" and entry["estimatedTokens"] == 5


def test_calls_pair_each_response_with_the_request_before_it():
    rows = [(1, "user_message", "a"), (2, "llm_response", "b"), (3, "tool_call_request", "c"),
            (4, "tool_result", "d"), (5, "llm_response", "e"), (6, "llm_response", "f")]
    calls = context.pair_calls(rows)
    assert [(c.request_step, c.response_step) for c in calls] == [(1, 2), (4, 5), (None, 6)]
    assert context.find_call(calls, 4) == 1 and context.find_call(calls, 3) is None


def test_system_prompt_tools_and_token_change_between_calls():
    def request(system, tools):
        return {"content": {"messages": [msg("user", "hi")]}, "metadata": {"systemPrompt": system, "tools": tools}}

    def response(tokens):
        return {"metadata": {"usage": {"promptTokens": tokens}}}

    change = context.context_change(5, 2, request("B", [{"name": "x"}]), response(300), request("A", []), response(120))
    assert (change["systemPromptChanged"], change["toolsChanged"], change["promptTokensDelta"]) == (True, True, 180)
    first = context.context_change(2, None, request("A", []), response(120), None, None)
    assert (first["previousStepId"], first["systemPromptChanged"], len(first["appended"])) == (None, False, 1)


def test_odd_messages_are_shown_not_raised():
    odd = [None, 3, "text", {"role": 5, "content": [None, {"type": "text", "text": 7}, {"type": "tool_result"}]},
           {"role": "assistant", "tool_calls": [None, {"function": {"name": "f"}}]}]
    change = context.diff_messages([], odd)
    assert len(change["appended"]) == len(odd)
