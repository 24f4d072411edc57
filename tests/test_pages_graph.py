"""The pure graph and content helpers behind the trace page (no database, milliseconds)."""

from whyops_local.pages.display import blocks, elide_base64, pretty_json, thinking_block, tool_call, transcript
from whyops_local.pages.graph import build_graph, label


def ev(step, kind, content=None, metadata=None, parent="prev", span=None, ts="2026-01-01T00:00:00Z", id=None):
    return {"id": id or step, "eventType": kind, "stepId": step, "parentStepId": step - 1 if parent == "prev" else parent,
            "spanId": span or f"s{step}", "timestamp": ts, "content": content, "metadata": metadata or {}, "costUsd": None}


SUPPORT = [
    ev(1, "user_message", {"messages": [{"role": "user", "content": "Where is order 123?"}]}, parent=None),
    ev(2, "llm_thinking", {"type": "thinking", "thinking": "look it up", "signature": "x"}),
    ev(3, "llm_response", {"toolCalls": [{"function": {"name": "search_orders", "arguments": "{}"}}]},
       {"model": "gpt-4o-mini", "provider": "openai", "latencyMs": 300}, ts="2026-01-01T00:00:01Z"),
    ev(4, "tool_call_request", {"toolCalls": [{"name": "search_orders", "arguments": {"orderId": "123"}}]},
       {"tool": "search_orders"}, span="sp", ts="2026-01-01T00:00:01.100Z"),
    ev(5, "tool_call_response", {"toolResults": {"status": "shipped"}}, {"tool": "search_orders", "latencyMs": 88},
       span="sp", ts="2026-01-01T00:00:01.200Z"),
    ev(6, "llm_response", {"content": "Your order has shipped."}, {"model": "gpt-4o-mini", "provider": "openai",
                                                                      "latencyMs": 390}, ts="2026-01-01T00:00:02Z"),
]


def test_a_tool_span_is_one_node_and_edges_follow_parents():
    graph = build_graph(SUPPORT)
    assert [(n["id"], n["kind"]) for n in graph["nodes"]] == [
        ("1", "user"), ("2", "thinking"), ("3", "llm"), ("4", "tool"), ("6", "llm")]
    assert graph["edges"] == [["1", "2"], ["2", "3"], ["3", "4"], ["4", "6"]]
    span = graph["nodes"][3]
    assert span["stepIds"] == [4, 5] and span["latencyMs"] == 88 and span["open"] is False


def test_labels_summarise_each_kind():
    assert [n["label"] for n in build_graph(SUPPORT)["nodes"]] == [
        "Where is order 123?", "look it up", "→ search_orders", "search_orders(orderId=123)", "Your order has shipped."]
    assert label(ev(1, "error", {"message": "boom"})) == "boom"
    # A proxied error keeps the provider's body: the node says its message.
    assert label(ev(1, "error", {"message": '{"error": {"message": "Rate limit", "code": "x"}}'})) == "Rate limit"
    assert label(ev(1, "user_message", {"messages": [{"role": "user", "content": "x" * 200}]})).endswith("…")


def test_a_tool_result_says_what_the_tools_answered():
    assert label(ev(1, "tool_result", {"toolName": "search_orders", "output": {"status": "shipped"}})) == \
        'search_orders → {"status": "shipped"}'
    # Proxied: the history a request ends with, each output named by the call that asked for it.
    history = {"messages": [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}},
            {"id": "c2", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": '{"temperatureC": 18}'},
        {"role": "tool", "tool_call_id": "c2", "content": "14:05"}]}
    assert label(ev(1, "tool_result", history)) == 'get_weather → {"temperatureC": 18}; get_time → 14:05'
    assert label(ev(1, "tool_result", {})) == "tool result"


def test_turns_start_at_each_user_message():
    events = SUPPORT + [ev(7, "user_message", {"messages": [{"role": "user", "content": "Thanks"}]}),
                        ev(8, "error", {"message": "boom"})]
    graph = build_graph(events)
    assert [(t["index"], t["size"], t["errors"], t["label"]) for t in graph["turns"]] == [
        (0, 5, 0, "Where is order 123?"), (1, 2, 1, "Thanks")]
    assert graph["nodes"][-1]["turn"] == 1
    assert [t["number"] for t in graph["turns"]] == [1, 2]
    early = build_graph([ev(1, "error", {}, parent=None)] + events)
    assert [t["number"] for t in early["turns"]] == [0, 1, 2]


def test_siblings_take_new_lanes_and_unknown_parents_make_roots():
    events = [ev(1, "user_message", {"messages": []}, parent=None), ev(2, "llm_response", {}, parent=1),
              ev(3, "llm_response", {}, parent=1), ev(4, "error", {}, parent=99)]
    graph = build_graph(events)
    assert [n["lane"] for n in graph["nodes"]] == [0, 0, 1, 0]
    assert graph["edges"] == [["1", "2"], ["1", "3"]]


def test_duplicate_step_ids_get_distinct_node_ids():
    graph = build_graph([ev(1, "user_message", {}, parent=None, id=10), ev(1, "error", {}, parent=None, id=11)])
    assert [n["id"] for n in graph["nodes"]] == ["1", "1-11"]


def test_content_blocks_cover_text_images_tool_use_and_thinking():
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
    parts = blocks([
        {"type": "text", "text": "hi"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
        {"type": "image", "source": {"type": "base64", "media_type": "image/svg+xml", "data": png}},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
        {"type": "tool_use", "id": "t1", "name": "search", "input": {"q": 1}},
        {"type": "thinking", "thinking": "hmm"},
    ])
    assert [p["type"] for p in parts] == ["text", "image", "image", "image_ref", "tool_call", "thinking"]
    assert parts[1]["src"].startswith("data:image/png;base64,") and parts[1]["bytes"] == 70
    assert parts[2]["src"] is None  # SVG could script: shown as a size only
    assert thinking_block({"type": "thinking", "thinking": "x"})["signed"] is False
    assert thinking_block({"type": "redacted_thinking", "data": "abc"}) == {
        "type": "thinking", "redacted": True, "text": "", "signed": True}


def test_tool_call_arguments_json_strings_are_parsed():
    assert tool_call({"id": "c", "function": {"name": "f", "arguments": "{\"a\": 1}"}}) == {
        "type": "tool_call", "id": "c", "name": "f", "arguments": {"a": 1}}
    assert tool_call({"function": {"name": "f", "arguments": "not json"}})["arguments"] == "not json"


def test_transcript_keeps_roles_and_assistant_tool_calls():
    turns = transcript({"messages": [{"role": "system", "content": "be nice"},
                                     {"role": "assistant", "content": None, "tool_calls": [
                                         {"id": "c1", "function": {"name": "f", "arguments": "{}"}}]},
                                     {"role": "tool", "tool_call_id": "c1", "content": "ok"}]})
    assert [(t["role"], [b["type"] for b in t["blocks"]]) for t in turns] == [
        ("system", ["text"]), ("assistant", ["tool_call"]), ("tool", ["text"])]


def test_base64_is_elided_from_json_views():
    value = {"img": "data:image/png;base64," + "A" * 4000, "blob": "B" * 4000, "text": "short"}
    elided = elide_base64(value)
    assert elided["img"] == "data:image/png;base64,… (3,000 bytes elided)"
    assert elided["blob"] == "… (base64, 3,000 bytes elided)"
    assert "AAAA" not in pretty_json(value)
