"""The trace page's span tree in a real headless Chromium: nesting, collapsed totals, zoom, failed calls,
selection shared with the graph; and a proxied call that shows live before and while it streams.

Traces are made by the real whyops SDK, and by the real openai SDK through the proxy (FakeUpstream behind).
"""

import json
import threading
import uuid

import openai
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from whyops import WhyOps

from .browser import chromium, needs_chromium, wait_ready
from .proxy_fixtures import read_trace
from .test_trace_reading_browser import _long_run

pytestmark = needs_chromium

USAGE = {"promptTokens": 1000, "completionTokens": 200, "totalTokens": 1200}


@pytest.fixture(scope="module")
def browser():
    with chromium(width=1440, height=1000) as driver:
        yield driver


def wait_for(driver, condition, timeout: float = 10):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(condition)


def row(browser, row_id: str):
    found = browser.find_elements("id", f"wf-{row_id}")
    return found[0] if found else None


def sdk_run(server) -> str:
    sdk = WhyOps(api_key="k", agent_name="tree-agent", agent_metadata={"systemPrompt": "Be precise.", "tools": []},
                 analyse_base_url=server.api, proxy_base_url=server.proxy)
    trace = sdk.trace(f"tree-{uuid.uuid4().hex[:10]}")
    trace.user_message_sync([{"role": "user", "content": "Where is order 123?"}])                        # step 1
    trace.llm_response_sync("openai/gpt-4o-mini", "openai", None, usage=USAGE, latency_ms=400,            # step 2
                            tool_calls=[{"name": "search_orders", "arguments": {"orderId": "123"}}])
    span = trace.tool_call_request_sync("search_orders", [{"name": "search_orders", "arguments": {"orderId": "123"}}])
    trace.tool_call_response_sync("search_orders", span, [{"name": "search_orders", "arguments": {"orderId": "123"}}],
                                  {"status": "shipped"}, latency_ms=88)                                   # steps 3-4
    trace.llm_thinking_sync("a sub-step of the first call", parent_step_id=2)                            # step 5
    trace.error_sync("the carrier API timed out", parent_step_id=2)                                      # step 6
    trace.llm_response_sync("openai/gpt-4o-mini", "openai", "It has shipped.", usage=USAGE, latency_ms=300)  # step 7
    return trace._trace_id


def test_the_tree_nests_sdk_parents_and_a_collapsed_call_still_shows_its_totals(server, browser):
    trace_id = sdk_run(server)
    read_trace(server, trace_id, 7)
    browser.get(f"{server.url}/traces/{trace_id}")
    wait_ready(browser)
    depths = {r.get_attribute("data-row"): r.get_attribute("data-depth")
              for r in browser.find_elements("css selector", "#tree .wf-spacer .wf-row")}
    # turn -> the call -> its tool span and the two steps that name it as their parent; the answer beside it.
    assert depths == {"turn-0": "0", "1": "1", "2": "1", "3": "2", "5": "2", "6": "2", "7": "1"}
    assert "has-error" in row(browser, "6").get_attribute("class")

    row(browser, "2").find_element("css selector", ".wf-toggle").click()
    wait_for(browser, lambda d: row(d, "3") is None)
    assert row(browser, "5") is None and row(browser, "6") is None
    collapsed = row(browser, "2")
    # The call's own 1,200 tokens plus nothing else priced; its subtree's time, steps and error.
    figures = collapsed.find_element("css selector", ".wf-figs").text
    assert figures.startswith("4 steps · ") and "1,200 tok" in figures and "1 error" in figures, figures
    assert "has-error" in collapsed.get_attribute("class")
    turn = row(browser, "turn-0").find_element("css selector", ".wf-figs").text
    assert turn.startswith("6 steps · ") and "2,400 tok" in turn and "1 error" in turn, turn


def test_zoom_rescales_the_axis_and_reset_brings_it_back(server, browser):
    trace_id = sdk_run(server)
    read_trace(server, trace_id, 7)
    browser.get(f"{server.url}/traces/{trace_id}")
    wait_ready(browser)

    def ticks():
        return [t.text for t in browser.find_elements("css selector", "#tree .wf-axis .wf-tick")]

    full = ticks()
    browser.find_element("id", "wf-zoom-in").click()
    wait_for(browser, lambda d: ticks() != full)
    assert ticks()[0] != "0" and "showing" in browser.find_element("css selector", ".wf-range").text
    browser.find_element("id", "wf-zoom-reset").click()
    wait_for(browser, lambda d: ticks() == full)

    # Dragging across the axis zooms into what was dragged over: here its second quarter.
    axis = browser.find_element("css selector", "#tree .wf-ticks")
    width = axis.size["width"]
    ActionChains(browser).move_to_element_with_offset(axis, -width // 4 + 2, 0).click_and_hold() \
        .move_by_offset(width // 4, 0).release().perform()
    wait_for(browser, lambda d: ticks() != full)
    bars_shown = browser.execute_script(
        "return [...document.querySelectorAll('#tree .wf-spacer .wf-bar')].filter(b => !b.hidden).length")
    assert "showing" in browser.find_element("css selector", ".wf-range").text and bars_shown >= 1


def test_clicking_a_tree_row_selects_the_step_in_the_graph_and_the_other_way_round(server, browser):
    trace_id = sdk_run(server)
    read_trace(server, trace_id, 7)
    browser.get(f"{server.url}/traces/{trace_id}")
    wait_ready(browser)
    row(browser, "3").click()
    wait_for(browser, lambda d: "selected" in d.find_element("id", "step-3").get_attribute("class"))
    wait_for(browser, lambda d: "Tool span" in d.find_element("id", "step-panel").text)
    assert "step=3" in browser.find_element("id", "tab-conversation").get_attribute("href")

    browser.find_element("id", "step-7").click()
    wait_for(browser, lambda d: "selected" in row(d, "7").get_attribute("class"))
    assert "selected" not in row(browser, "3").get_attribute("class")

    # The conversation opens on the step selected here; a step selected there comes back selected here.
    browser.find_element("id", "tab-conversation").click()
    wait_ready(browser)
    wait_for(browser, lambda d: d.find_element("id", "c-7").get_attribute("class").count("selected"))
    browser.find_element("css selector", "#c-6").click()
    wait_for(browser, lambda d: "step=6" in d.find_element("id", "tab-graph").get_attribute("href"))
    browser.get(browser.find_element("id", "tab-graph").get_attribute("href"))
    wait_ready(browser)
    wait_for(browser, lambda d: "selected" in row(d, "6").get_attribute("class"))
    assert "selected" in browser.find_element("id", "step-6").get_attribute("class")


def test_every_row_of_a_5000_step_run_is_reachable_and_only_those_in_view_are_drawn(server, browser):
    trace_id = f"long-{uuid.uuid4().hex[:8]}"
    _long_run(server, trace_id, 5000, 4000)
    browser.get(f"{server.url}/traces/{trace_id}?step=4000")
    wait_ready(browser, 30)
    # The selected step's row is drawn, selected and scrolled into the tree's view.
    wait_for(browser, lambda d: row(d, "4000") is not None and "selected" in row(d, "4000").get_attribute("class"))
    assert browser.execute_script("""const box = document.querySelector('#tree .wf-scroll').getBoundingClientRect();
        const r = document.getElementById('wf-4000').getBoundingClientRect();
        return r.top >= box.top && r.bottom <= box.bottom""")
    drawn = len(browser.find_elements("css selector", "#tree .wf-spacer .wf-row"))
    assert drawn < 100  # of 5,001 rows (the turn and its steps)
    browser.execute_script("const s = document.querySelector('#tree .wf-scroll'); s.scrollTop = s.scrollHeight;")
    wait_for(browser, lambda d: row(d, "5000") is not None)
    row(browser, "5000").click()
    wait_for(browser, lambda d: "failure 4999" in d.find_element("id", "step-panel").text)


def test_proxied_tool_spans_nest_under_their_call_and_a_failed_call_is_a_row(proxied, fake, browser):
    fake.gate.set()
    trace_id = f"tree-{uuid.uuid4().hex[:10]}"
    client = openai.OpenAI(api_key="sk-test", base_url=f"{proxied.proxy}/v1", max_retries=0,
                           default_headers={"X-Trace-ID": trace_id, "X-Agent-Name": "proxied-tree"})
    messages = [{"role": "user", "content": "Weather in Paris?"}]
    answer = client.chat.completions.create(model="gpt-4o-mini-tools", messages=messages).choices[0].message
    messages.append(answer.model_dump(exclude_none=True))
    for call in answer.tool_calls:
        messages.append({"role": "tool", "tool_call_id": call.id, "content": json.dumps({"out": call.id})})
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="gpt-4o-mini-error-429", messages=messages)
    client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    events = read_trace(proxied, trace_id, 8)["events"]
    first_call = next(e["stepId"] for e in events if e["eventType"] == "llm_response")
    tools = [e["stepId"] for e in events if e["eventType"] == "tool_call_request"]
    error = next(e["stepId"] for e in events if e["eventType"] == "error")

    browser.get(f"{proxied.url}/traces/{trace_id}")
    wait_ready(browser)
    call_row = row(browser, str(first_call))
    assert tools and all(row(browser, str(step)).get_attribute("data-depth") == str(int(call_row.get_attribute("data-depth")) + 1)
                         for step in tools)
    failed = row(browser, str(error))
    assert "k-error" in failed.get_attribute("class") and "Error" in failed.text
    # The failed call lasted from its request to its error: a bar, not a moment.
    assert failed.find_element("css selector", ".wf-bar").get_attribute("class").split() == ["wf-bar", "k-error"]


def _trace_with_one_call(proxied, fake) -> tuple[str, openai.OpenAI]:
    """A new trace holding one stored proxied call, and the client that made it (for the next one)."""
    trace_id = f"tree-{uuid.uuid4().hex[:10]}"
    client = openai.OpenAI(api_key="sk-test", base_url=f"{proxied.proxy}/v1", max_retries=0,
                           default_headers={"X-Trace-ID": trace_id, "X-Agent-Name": "proxied-tree"})
    fake.gate.set()
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "first"}])
    read_trace(proxied, trace_id, 2)
    return trace_id, client


def test_a_proxied_call_is_pending_in_tree_and_graph_while_upstream_has_not_answered(proxied, fake, browser):
    trace_id, client = _trace_with_one_call(proxied, fake)
    browser.get(f"{proxied.url}/traces/{trace_id}")
    wait_ready(browser)
    pending = "return document.querySelectorAll('#tree [data-pending], #graph [data-pending]').length"
    assert browser.execute_script(pending) == 0
    # slow-3: upstream sends no headers for 3 s.
    worker = threading.Thread(target=lambda: client.chat.completions.create(
        model="gpt-4o-mini-slow-3", messages=[{"role": "user", "content": "second"}], stream=True).close())
    worker.start()
    try:
        wait_for(browser, lambda d: d.execute_script(pending) == 2, timeout=2.5)  # a row in the tree, a node in the graph
        assert "waiting for upstream" in browser.find_element("css selector", "#tree [data-pending]").text
        assert "waiting for upstream" in browser.find_element("css selector", "#graph [data-pending]").text
    finally:
        worker.join(10)
    wait_for(browser, lambda d: d.execute_script(pending) == 0)
    wait_for(browser, lambda d: len(d.find_elements("css selector", "#tree .wf-row.k-llm")) == 2)


def test_streamed_text_grows_in_the_conversation_while_upstream_holds_the_stream(proxied, fake, browser):
    trace_id, client = _trace_with_one_call(proxied, fake)
    fake.gate.clear()
    fake.gate_before = 2  # "Hello" goes out, " world" waits for the gate
    browser.get(f"{proxied.url}/traces/{trace_id}?view=conversation")
    wait_ready(browser)
    y = browser.execute_script("return scrollY")
    worker = threading.Thread(target=lambda: "".join(str(c) for c in client.chat.completions.create(
        model="gpt-4o-mini-gated", messages=[{"role": "user", "content": "second"}], stream=True)))
    worker.start()
    pending = browser.find_element("id", "pending-call")
    try:
        wait_for(browser, lambda d: pending.is_displayed() and "Hello" in pending.text)
        assert "Hello world" not in pending.text  # only what has streamed so far
        fake.gate.set()
        wait_for(browser, lambda d: "Hello world" in pending.text or not pending.is_displayed())
    finally:
        fake.gate.set()
        worker.join(10)
    wait_for(browser, lambda d: not pending.is_displayed())
    wait_for(browser, lambda d: d.find_element("id", "conversation").text.count("Hello world") == 2)
    assert browser.execute_script("return scrollY") == y  # no reload, no jump
