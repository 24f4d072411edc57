"""The span tree behind the trace page's waterfall (pure: no database, milliseconds)."""

from whyops_local.domain.waterfall import build_tree
from whyops_local.pages.graph import build_graph


def ev(step, kind, content=None, metadata=None, parent=None, span=None, ts="2026-01-01T00:00:00Z", **extra):
    return {"id": extra.pop("id", step), "eventType": kind, "stepId": step, "parentStepId": parent,
            "spanId": span or f"s{step}", "timestamp": ts, "content": content, "metadata": metadata or {},
            "costUsd": extra.pop("cost", None), "tokens": extra.pop("tokens", {}), **extra}


def tree(events):
    graph = build_graph(events)
    return build_tree(events, graph["nodes"], graph["turns"])


def shape(result):
    return [(row["id"], row["depth"]) for row in result["rows"]]


USER = {"messages": [{"role": "user", "content": "Where is order 123?"}]}
CALL = {"model": "gpt-4o-mini", "provider": "openai", "latencyMs": 400}


def test_an_sdk_parent_step_id_nests_and_a_step_without_one_hangs_from_its_turn():
    result = tree([
        ev(1, "user_message", USER, ts="2026-01-01T00:00:00Z"),
        ev(2, "llm_response", {"toolCalls": [{"name": "search"}]}, CALL, ts="2026-01-01T00:00:01Z"),
        ev(3, "tool_call_request", {}, {"tool": "search"}, parent=2, span="t", ts="2026-01-01T00:00:01.100Z"),
        ev(4, "tool_call_response", {}, {"tool": "search", "latencyMs": 50}, span="t", ts="2026-01-01T00:00:01.150Z"),
        ev(5, "llm_thinking", {"thinking": "sub"}, parent=3, ts="2026-01-01T00:00:01.120Z"),
        # The server's default parent (the step before) says it follows, not that it nests.
        ev(6, "llm_response", {"content": "shipped"}, CALL, parent=5, ts="2026-01-01T00:00:02Z"),
        ev(7, "error", {"message": "later"}, parent=2, ts="2026-01-01T00:00:03Z"),
    ])
    assert shape(result) == [("turn-0", 0), ("1", 1), ("2", 1), ("3", 2), ("7", 2), ("5", 1), ("6", 1)]


def test_a_proxied_tool_span_nests_under_the_call_that_asked_for_it():
    # The proxy stores tool spans with the next call, without a parent: before its request and answer.
    result = tree([
        ev(1, "user_message", USER, exchangeId=1),
        ev(2, "llm_response", {"toolCalls": [{"name": "search"}]}, CALL, ts="2026-01-01T00:00:01Z", exchangeId=1),
        ev(3, "tool_call_request", {}, {"tool": "search"}, span="t", ts="2026-01-01T00:00:01Z", exchangeId=2),
        ev(4, "tool_call_response", {}, {"tool": "search", "latencyMs": 300}, span="t",
           ts="2026-01-01T00:00:01.3Z", exchangeId=2),
        ev(5, "tool_result", {"messages": []}, ts="2026-01-01T00:00:01.3Z", exchangeId=2),
        ev(6, "llm_response", {"content": "shipped"}, CALL, ts="2026-01-01T00:00:02Z", exchangeId=2),
    ])
    assert shape(result) == [("turn-0", 0), ("1", 1), ("2", 1), ("3", 2), ("5", 1), ("6", 1)]
    tool, result_row = result["rows"][3], result["rows"][4]
    assert (tool["start"], tool["dur"], tool["known"]) == (1000.0, 300.0, True)
    assert (result_row["start"], result_row["dur"], result_row.get("known")) == (1300.0, 0, None)  # a moment


def test_a_group_carries_the_total_time_tokens_cost_and_errors_of_everything_under_it():
    result = tree([
        ev(1, "user_message", USER),
        ev(2, "llm_response", {"toolCalls": [{"name": "search"}]}, CALL, ts="2026-01-01T00:00:01Z",
           tokens={"input": 100, "cacheRead": 20, "cacheWrite": 5, "output": 10, "reasoning": 3}, cost=0.25),
        ev(3, "tool_call_request", {}, {"tool": "search"}, parent=2, span="t", ts="2026-01-01T00:00:01Z"),
        ev(4, "tool_call_response", {}, {"tool": "search", "latencyMs": 2000}, span="t", ts="2026-01-01T00:00:03Z"),
        ev(5, "error", {"message": "boom"}, parent=2, ts="2026-01-01T00:00:02Z"),
        ev(6, "llm_response", {"content": "done"}, CALL, ts="2026-01-01T00:00:04Z", tokens={"input": 7, "output": 3}),
        ev(7, "user_message", USER, ts="2026-01-01T00:00:05Z"),
    ])
    rows = {row["id"]: row for row in result["rows"]}
    # The call's subtree: from the call's start (0.6 s) to the tool span's end (3 s).
    assert rows["2"]["total"] == {"start": 600.0, "dur": 2400.0, "tokens": 135, "cost": 0.25, "errors": 1, "steps": 3}
    assert rows["turn-0"]["total"] == {"start": 0.0, "dur": 4000.0, "tokens": 145, "cost": 0.25, "errors": 1, "steps": 5}
    assert rows["turn-1"]["total"]["steps"] == 1 and "total" not in rows["6"]
    # Defaults are left out: a turn selects its first step, a node itself; no cost, no errors.
    assert rows["turn-0"]["node"] == "1" and "node" not in rows["6"] and "cost" not in rows["6"] and "errors" not in rows["6"]
    # A row's "end" is where its subtree stops, so a collapsed row skips straight past it.
    order = [row["id"] for row in result["rows"]]
    assert order[rows["turn-0"]["end"]] == "turn-1" and order[rows["2"]["end"]] == "6"
    assert result["totalMs"] == 5000.0


def test_a_failed_proxied_call_is_a_row_from_its_request_to_its_error():
    result = tree([
        ev(1, "user_message", USER, exchangeId=9),
        ev(2, "error", {"message": "rate limited", "status": 429}, {"provider": "openai"},
           ts="2026-01-01T00:00:00.750Z", exchangeId=9),
    ])
    error = result["rows"][2]
    assert (error["id"], error["kind"], error["start"], error["dur"], error["known"], error["errors"]) == (
        "2", "error", 0.0, 750.0, True, 1)
    assert result["rows"][0]["total"]["errors"] == 1


def test_opentelemetry_spans_nest_by_parent_span_and_a_spans_own_events_are_siblings():
    otel = {"startTime": "2026-01-01T00:00:00Z", "endTime": "2026-01-01T00:00:03Z"}
    inner = {"startTime": "2026-01-01T00:00:01Z", "endTime": "2026-01-01T00:00:02Z"}
    result = tree([
        ev(10, "span", {"name": "agent run"}, {"otel": otel, "latencyMs": 3000}, span="A"),
        # The LLM span under it: its request and answer chain one to the other (mapping.py).
        ev(20, "user_message", USER, {"otel": inner}, parent=10, span="B", ts="2026-01-01T00:00:01Z"),
        ev(21, "llm_response", {"content": "hi"}, {"otel": {"spanId": "B"}, "latencyMs": 1000}, parent=20, span="B",
           ts="2026-01-01T00:00:02Z"),
    ])
    # The user message starts turn 1, but its OpenTelemetry parent places it under the agent span: no empty turn.
    assert shape(result) == [("turn-0", 0), ("10", 1), ("20", 2), ("21", 2)]
    rows = {row["id"]: row for row in result["rows"]}
    assert (rows["10"]["start"], rows["10"]["dur"]) == (0.0, 3000.0)
    assert (rows["20"]["start"], rows["20"]["dur"]) == (1000.0, 1000.0)


def test_a_parent_chain_thousands_deep_is_built_without_recursion():
    events = [ev(1, "user_message", USER), ev(2, "llm_response", {"content": "x"}, CALL)] + [
        ev(n, "llm_response", {"content": "x"}, CALL, parent=n - 2) for n in range(3, 5002)]
    result = tree(events)
    assert len(result["rows"]) == 5002 and max(row["depth"] for row in result["rows"]) == 2501
    assert result["rows"][0]["total"]["steps"] == 5001
