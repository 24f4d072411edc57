"""domain.flags on its own: each detector from event sequences, in milliseconds."""

from datetime import UTC, datetime

from whyops_local.domain import flags
from whyops_local.domain.flags import Step


class Run:
    """Feeds steps to one state, numbering them and a second apart."""

    def __init__(self):
        self.state = {}
        self.n = 0
        self.uncounted = []

    def add(self, kind, content=None, at=None, **fields):
        self.n += 1
        if "cache_read" in fields:
            fields["cache_read_tokens"] = fields.pop("cache_read")
        when = datetime.fromtimestamp(at if at is not None else 1000.0 + self.n, UTC)
        step = Step(event_type=kind, step_id=self.n, timestamp=when, content=content, **fields)
        if (gone := flags.observe(self.state, step)) is not None:
            self.uncounted.append(gone)
        return self.n

    def tool(self, name="search", arguments=None, latency=None, span=None):
        span = span or f"span-{self.n}"
        calls = [{"name": name, "arguments": arguments or {"q": "x"}}]
        first = self.add("tool_call_request", {"toolCalls": calls}, span_id=span, metadata={"tool": name})
        self.add("tool_call_response", {"toolCalls": calls, "toolResults": {"ok": True}}, span_id=span,
                 metadata={"tool": name}, latency_ms=latency)
        return first

    def answer(self, text="Done.", calls=None, reason="stop", **fields):
        content = {"content": text, "finishReason": reason, **({"toolCalls": calls} if calls else {})}
        return self.add("llm_response", content, model=fields.pop("model", "gpt-4o-mini"), **fields)

    def kinds(self):
        return [f["kind"] for f in flags.flags_of(self.state)]

    def flagged(self, kind):
        return [f for f in flags.flags_of(self.state) if f["kind"] == kind]


def test_the_same_tool_call_three_times_is_a_loop_naming_its_steps():
    run = Run()
    steps = [run.tool("search", {"q": "weather"}) for _ in range(3)]
    (loop,) = run.flagged("tool_loop")
    assert loop["stepIds"] == steps
    assert "search was called 3 times with the same arguments" in loop["message"]


def test_different_arguments_or_only_two_repeats_are_no_loop():
    run = Run()
    run.tool("search", {"q": "a"}), run.tool("search", {"q": "b"}), run.tool("search", {"q": "a"})
    run.tool("search", {"q": "c"})
    assert run.kinds() == []


def test_arguments_as_json_text_or_objects_and_call_ids_do_not_hide_a_loop():
    run = Run()
    for i, arguments in enumerate(['{"q": "x"}', {"q": "x"}, '{"q":"x"}']):
        calls = [{"id": f"call_{i}", "name": "search", "arguments": arguments}]
        run.add("tool_call_request", {"toolCalls": calls}, span_id=f"s{i}", metadata={"tool": "search"})
    assert run.kinds() == ["tool_loop"]


def test_three_final_answers_in_a_row_with_the_same_text_repeat():
    run = Run()
    steps = []
    for _ in range(3):
        run.add("user_message", {"messages": [{"role": "user", "content": "again?"}]})
        steps.append(run.answer("I cannot help with that."))
    (flag,) = run.flagged("repeated_answer")
    assert flag["stepIds"] == steps and "I cannot help with that." in flag["message"]


def test_answers_that_come_with_tool_calls_or_differ_do_not_repeat():
    run = Run()
    for _ in range(3):
        run.answer("Let me check.", calls=[{"function": {"name": "search", "arguments": "{}"}}])
    run.answer("A"), run.answer("A"), run.answer("B"), run.answer("A")
    assert run.kinds() == []


def test_three_errors_in_a_row_are_a_streak_requests_between_them_do_not_break_it():
    run = Run()
    steps = []
    for _ in range(3):
        run.add("user_message", {"messages": []})
        steps.append(run.add("error", {"message": "rate limited", "status": 429}))
    (flag,) = run.flagged("error_streak")
    assert flag["stepIds"] == steps and flag["message"] == "3 errors in a row"


def test_a_success_between_errors_breaks_the_streak_and_tool_errors_count():
    run = Run()
    run.add("error", {"message": "x"}), run.add("error", {"message": "x"}), run.answer()
    run.add("error", {"message": "x"})
    assert run.kinds() == []
    run.add("tool_call_response", {"toolResults": {"error": "timeout"}}, span_id="a", metadata={"tool": "t"})
    run.add("tool_result", {"toolName": "t", "output": {"isError": True}})
    assert run.kinds() == ["error_streak"]


def test_a_tool_span_still_open_at_the_final_answer_dangles():
    run = Run()
    opened = run.add("tool_call_request", {"toolCalls": []}, span_id="lost", metadata={"tool": "charge_card"})
    run.answer("Charged.")
    (flag,) = run.flagged("dangling_tool")
    assert flag["stepIds"] == [opened] and "charge_card" in flag["message"]
    # Its response after all: no longer dangling.
    run.add("tool_call_response", {"toolResults": {}}, span_id="lost", metadata={"tool": "charge_card"})
    assert run.kinds() == []


def test_an_open_call_dangles_at_read_time_only_after_ten_minutes():
    run = Run()
    opened = run.add("tool_call_request", {"toolCalls": []}, at=5000.0, span_id="s", metadata={"tool": "slow"})
    assert flags.dangling(run.state, now=5000.0 + 599) == []
    (flag,) = flags.dangling(run.state, now=5000.0 + 601)
    assert flag["stepIds"] == [opened] and "after 10 minutes" in flag["message"]
    assert flags.oldest_open(run.state) == 5000.0


def test_an_llm_tool_call_answered_by_the_next_request_does_not_dangle():
    run = Run()
    run.answer(None, calls=[{"function": {"name": "get_weather", "arguments": "{}"}}], reason="tool_calls", at=0.0)
    assert flags.dangling(run.state, now=10_000) != []
    run.add("tool_result", {"messages": []})
    assert flags.dangling(run.state, now=10_000) == [] and flags.oldest_open(run.state) is None


def test_truncated_and_empty_answers():
    run = Run()
    cut = run.answer("The list goes on and", reason="length")
    cut_anthropic = run.answer("Half", reason="max_tokens")
    empty = run.answer("", reason="stop")
    assert [(f["kind"], f["stepIds"]) for f in flags.flags_of(run.state)] == [
        ("truncated", [cut]), ("truncated", [cut_anthropic]), ("empty_answer", [empty])]
    assert "finish reason “length”" in run.flagged("truncated")[0]["message"]


def _request(run, system="You are helpful.", tools=None, messages=None, kind="user_message"):
    messages = messages or [{"role": "user", "content": "hi"}]
    return run.add(kind, {"messages": messages}, metadata={"systemPrompt": system, "tools": tools or []})


def test_a_cache_break_names_the_system_prompt_change():
    run = Run()
    _request(run), run.answer("a", cache_read=0)
    _request(run), run.answer("b", cache_read=2048)
    _request(run, system="You are terse.")
    broke = run.answer("c", cache_read=0)
    (flag,) = run.flagged("cache_break")
    assert flag["stepIds"] == [broke]
    assert flag["message"] == "Cache reads fell from 2,048 to 0 tokens: the system prompt changed"


def test_a_cache_break_names_tools_or_an_earlier_message():
    run = Run()
    history = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    _request(run, messages=history), run.answer("a", cache_read=4000)
    edited = [{"role": "user", "content": "hi!"}, history[1], {"role": "user", "content": "more"}]
    _request(run, messages=edited, tools=[{"name": "new"}]), run.answer("b", cache_read=10)
    assert run.flagged("cache_break")[0]["message"].endswith("the tools and message 1 (user) changed")


def test_a_cache_break_names_dropped_messages_or_the_first_one_edited_past_the_first():
    history = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
               {"role": "user", "content": "more"}]
    dropped, edited = Run(), Run()
    for run, next_messages in ((dropped, history[:1]), (edited, [history[0], {"role": "assistant", "content": "hey"}])):
        _request(run, messages=history), run.answer("a", cache_read=4000)
        _request(run, messages=next_messages), run.answer("b", cache_read=0)
    assert dropped.flagged("cache_break")[0]["message"].endswith(": messages from 2 on (dropped) changed")
    assert edited.flagged("cache_break")[0]["message"].endswith(": message 2 (assistant) changed")


def test_steady_or_growing_cache_reads_and_small_caches_do_not_break():
    run = Run()
    for read in (0, 1500, 1600, 1700, 1200):
        _request(run), run.answer(f"x{read}", cache_read=read)
    small = Run()
    for read in (900, 0):
        _request(small), small.answer(f"x{read}", cache_read=read)
    assert run.kinds() == [] and small.kinds() == []


def test_a_step_over_three_times_the_median_and_five_seconds_is_slow():
    run = Run()
    for latency in (1000, 1200, 900):
        run.answer(f"x{latency}", latency_ms=latency)
    slow = run.answer("y", latency_ms=20_000)
    (flag,) = run.flagged("slow_step")
    assert flag["stepIds"] == [slow]
    assert flag["message"] == "This LLM call took 20.0 s, 18× the trace's median LLM call (1.1 s)"


def test_a_slow_tool_span_is_timed_from_its_request_when_no_latency_is_given():
    run = Run()
    for _ in range(3):
        run.tool(latency=200)
    opened = run.add("tool_call_request", {"toolCalls": []}, at=2000.0, span_id="long", metadata={"tool": "t"})
    run.add("tool_call_response", {"toolResults": {}}, at=2009.0, span_id="long", metadata={"tool": "t"})
    assert [f["stepIds"] for f in run.flagged("slow_step")] == [[opened]]


def test_uniformly_slow_steps_or_a_short_outlier_are_not_slow():
    run = Run()
    for latency in (8000, 9000, 8500, 9500):
        run.answer(f"x{latency}", latency_ms=latency)
    quick = Run()
    for i, latency in enumerate((100, 100, 100, 4000)):
        quick.answer(f"x{i}", latency_ms=latency)
    assert run.kinds() == [] and quick.kinds() == []


def test_a_manual_copy_of_a_proxied_answer_is_flagged_and_uncounted_in_either_order():
    run = Run()
    proxied = run.answer("Hello world", source="proxy", model="claude-sonnet-4-5")
    manual = run.answer("Hello world", source="sdk", model="anthropic/claude-sonnet-4-5")
    (flag,) = run.flagged("double_count")
    assert flag["stepIds"] == [proxied, manual] and run.uncounted == [manual]
    other = Run()
    manual = other.answer("Hello world", source="sdk")
    other.answer("Hello world", source="proxy")
    assert other.uncounted == [manual]


def test_manual_answers_beside_proxied_ones_that_differ_are_no_double_count():
    run = Run()
    run.answer("Hello world", source="proxy"), run.answer("Summary: hello", source="sdk")
    run.answer("Hello world", source="sdk"), run.answer("Hello world", source="sdk")
    assert "double_count" not in run.kinds() and run.uncounted == []


def test_the_state_stays_json_and_small_over_a_long_run():
    run = Run()
    for i in range(2000):
        run.add("user_message", {"messages": [{"role": "user", "content": str(i)}]})
        run.answer(f"answer {i}", calls=[{"function": {"name": "search", "arguments": f'{{"q": {i}}}'}}],
                   latency_ms=400 + i % 50)
        run.tool("search", {"q": i}, latency=80)
    size = len(flags.jsontext.dumps(run.state))
    assert run.kinds() == [] and size < 2_000, size


def test_a_loop_is_found_among_the_most_recent_distinct_calls_only():
    run = Run()
    run.tool("search", {"q": "loop"}), run.tool("search", {"q": "loop"})
    for i in range(flags.TOOL_SIGNATURES):
        run.tool("search", {"q": i})
    run.tool("search", {"q": "loop"})
    assert run.kinds() == []  # forgotten: 64 other calls came between
    run.tool("search", {"q": 3}), run.tool("search", {"q": 3})
    assert run.kinds() == ["tool_loop"]


def test_past_fifty_steps_the_median_comes_from_the_histogram_within_its_bucket():
    run = Run()
    for i in range(200):
        run.answer(f"x{i}", latency_ms=1000 + i)
    slow = run.answer("slow", latency_ms=30_000)
    assert run.state["dur"]["llm"]["x"] is None
    (flag,) = run.flagged("slow_step")
    assert flag["stepIds"] == [slow] and "median LLM call (1.1 s)" in flag["message"]  # true median 1.1 s


def test_odd_content_never_raises():
    run = Run()
    odd = [None, "text", 3, [1, "x", {"text": 5}], {"content": [{"text": None}, 7], "toolCalls": "nope"},
           {"toolCalls": [None, {"function": "x"}, {"function": {"name": {"a": 1}, "arguments": "{bad"}}]},
           {"messages": [None, 1, {"role": 5, "content": [{"type": None}]}]}, {"toolResults": [1], "output": "x"}]
    for content in odd:
        for kind in ("user_message", "llm_response", "tool_call_request", "tool_call_response", "tool_result", "error"):
            run.add(kind, content, metadata={"tool": {"x": 1}, "tools": "x", "systemPrompt": 5}, latency_ms=float(run.n))
    assert isinstance(flags.flags_of(run.state), list)


def test_a_long_run_of_one_answer_or_of_errors_is_one_flag_and_a_small_state():
    run = Run()
    for _ in range(300):
        run.answer("Hello world")
    (repeated,) = run.flagged("repeated_answer")
    assert repeated["stepIds"] == list(range(281, 301)) and "300 times" in repeated["message"]
    for _ in range(1000):
        run.add("error", {"message": "rate limited", "status": 429})
    (streak,) = run.flagged("error_streak")
    assert streak["stepIds"] == list(range(301, 321)) and streak["message"] == "1000 errors in a row"
    assert len(flags.jsontext.dumps(run.state)) < 2_500


def test_states_stored_before_runs_kept_their_first_step_still_flag_once():
    run = Run()
    run.state = {"ans": [flags.digest("Hi"), [7, 8], 2], "err": [3, 4]}
    run.n = 8
    run.add("error", {"message": "x"})
    run.answer("Hi"), run.answer("Hi")
    assert [(f["kind"], f["stepIds"], f["message"]) for f in flags.flags_of(run.state)] == [
        ("error_streak", [3, 4, 9], "3 errors in a row"),
        ("repeated_answer", [7, 8, 10, 11], "The same answer 4 times in a row: “Hi”")]
