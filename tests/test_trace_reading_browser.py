"""Reading a run in a real headless Chromium: the conversation view, find, errors, live and the small pages.

Traces are made by the real whyops SDK, and by the real openai / anthropic SDKs through the proxy.
"""

import itertools
import json
import threading
import uuid

import httpx
import openai
import pytest
from whyops import WhyOps

from .browser import chromium, needs_chromium, wait_ready
from .proxy_fixtures import read_trace

pytestmark = needs_chromium

MD_HOSTILE = ('[click](javascript:window.__pwned=1) [d](data:text/html,<script>window.__pwned=2</script>) '
              '<script>window.__pwned=3</script><img src=x onerror="window.__pwned=4">'
              '<svg onload="window.__pwned=5"></svg> ![i](data:image/svg+xml,<svg onload=window.__pwned=6>)')


def sdk_trace(server, name: str = "reader-agent"):
    sdk = WhyOps(api_key="k", agent_name=name, agent_metadata={"systemPrompt": "You are support.", "tools": []},
                 analyse_base_url=server.api, proxy_base_url=server.proxy)
    trace = sdk.trace(f"read-{uuid.uuid4().hex[:10]}")
    trace.tid = trace._trace_id
    return trace


def user_message(server, trace_id: str, text: str, user: str) -> None:
    """A user message naming its end user (the SDK has no field for it; the event API has)."""
    event = {"eventType": "user_message", "traceId": trace_id, "agentName": "reader-agent", "externalUserId": user,
             "content": {"messages": [{"role": "user", "content": text}]}}
    assert httpx.post(f"{server.api}/events/ingest", json=event).status_code < 300


@pytest.fixture(scope="module")
def browser():
    with chromium() as driver:
        yield driver


def wait_for(driver, condition, timeout: float = 10):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(condition)


def conversation_text(browser, server, trace_id: str) -> str:
    browser.get(f"{server.url}/traces/{trace_id}?view=conversation")
    wait_ready(browser)
    # Selenium's .text is what is rendered visibly: folded or hidden text is not in it.
    return browser.find_element("id", "conversation").text


def test_every_message_answer_tool_argument_result_and_thinking_is_visible_without_a_click(server, browser):
    trace = sdk_trace(server)
    trace.user_message_sync([{"role": "user", "content": "Where is order **A-77**?"}])
    trace.llm_thinking_sync("Thinking-marker: look the order up first.", signature="sig")
    calls = [{"name": "search_orders", "arguments": {"orderId": "A-77-arg"}}]
    trace.llm_response_sync("openai/gpt-4o-mini", "openai", None, finish_reason="tool_calls", latency_ms=300,
                            tool_calls=[{"id": "c1", "function": {"name": "search_orders",
                                                                  "arguments": '{"orderId": "A-77-arg"}'}}],
                            usage={"promptTokens": 40, "completionTokens": 12, "totalTokens": 52})
    span = trace.tool_call_request_sync("search_orders", calls, latency_ms=11)
    trace.tool_call_response_sync("search_orders", span, calls, {"status": "result-shipped"}, latency_ms=88)
    trace.llm_response_sync("openai/gpt-4o-mini", "openai", "Your order has **shipped**.", finish_reason="stop",
                            latency_ms=390, usage={"promptTokens": 42, "completionTokens": 16, "totalTokens": 58})
    trace.error_sync('{"error": {"message": "Rate limit reached for gpt-4o-mini", "type": "rate_limit"}}', status=429)
    text = conversation_text(browser, server, trace.tid)
    for expected in ("Where is order A-77?", "Thinking-marker: look the order up first.", "search_orders", "A-77-arg",
                     "result-shipped", "Your order has shipped.", "Rate limit reached for gpt-4o-mini", "gpt-4o-mini"):
        assert expected in text, expected
    assert '"type": "rate_limit"' not in text  # the provider's message, not its JSON
    assert browser.find_element("css selector", ".k-answer .md strong").text == "shipped"  # Markdown, rendered
    assert text.count("result-shipped") == 1  # the tool span joined its call: shown once


def test_a_proxied_tool_loop_shows_only_what_is_new_and_its_tool_result_panel_shows_the_output(proxied, fake, browser):
    fake.gate.set()
    trace_id = f"read-{uuid.uuid4().hex[:10]}"
    client = openai.OpenAI(api_key="sk-test", base_url=f"{proxied.proxy}/v1",
                           default_headers={"X-Trace-ID": trace_id, "X-Agent-Name": "proxied-reader"})
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather in Paris-marker?"}]
    answer = client.chat.completions.create(model="gpt-4o-mini-tools", messages=messages).choices[0].message
    messages.append(answer.model_dump(exclude_none=True))
    for call in answer.tool_calls:
        messages.append({"role": "tool", "tool_call_id": call.id, "content": json.dumps({"out": f"tool-output-{call.id}"})})
    client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True).close()
    events = read_trace(proxied, trace_id, 5)["events"]
    text = conversation_text(browser, proxied, trace_id)
    assert text.count("Weather in Paris-marker?") == 1  # the resent history is not shown again
    for call in answer.tool_calls:
        assert text.count(f"tool-output-{call.id}") == 1  # inline under its call, once
    result_step = next(e["stepId"] for e in events if e["eventType"] == "tool_result")
    browser.get(f"{proxied.url}/traces/{trace_id}?step={result_step}")
    wait_ready(browser)
    panel = browser.find_element("id", "step-panel").text
    assert f"Output of {answer.tool_calls[0].function.name}" in panel and f"tool-output-{answer.tool_calls[0].id}" in panel
    assert "Weather in Paris-marker?" not in panel  # the outputs, not the history


def test_xss_payloads_in_every_field_do_not_execute(server, browser):
    trace = sdk_trace(server)
    trace.user_message_sync([{"role": "user", "content": MD_HOSTILE}])
    trace.llm_thinking_sync(MD_HOSTILE)
    trace.llm_response_sync("openai/gpt-4o-mini", "openai", MD_HOSTILE, finish_reason="stop",
                            tool_calls=[{"id": "x1", "function": {"name": MD_HOSTILE[:60],
                                                                  "arguments": json.dumps({"q": MD_HOSTILE})}}])
    span = trace.tool_call_request_sync("t", [{"name": "t", "arguments": {"q": MD_HOSTILE}}])
    trace.tool_call_response_sync("t", span, [{"name": "t", "arguments": {"q": MD_HOSTILE}}], {"html": MD_HOSTILE})
    trace.error_sync(MD_HOSTILE, stack=MD_HOSTILE)
    conversation_text(browser, server, trace.tid)
    for link in browser.find_elements("css selector", "#conversation .md a"):
        link.click()
    assert browser.execute_script("return window.__pwned") is None
    assert browser.execute_script("""return [...document.querySelectorAll('#conversation a')]
        .filter(a => /^(javascript|data):/i.test(a.getAttribute('href') || '')).length""") == 0
    found = "return document.querySelectorAll('#conversation script, #conversation svg, #conversation img').length"
    assert browser.execute_script(found) == 0


def _long_run(server, trace_id: str, steps: int, word_at: int) -> None:
    metadata = {"model": "gpt-4o-mini", "provider": "openai", "latencyMs": 100}
    base = {"traceId": trace_id, "agentName": "long-reader", "metadata": metadata}
    events = [{**base, "eventType": "user_message", "content": {"messages": [{"role": "user", "content": "Go."}]}}]
    for n in range(1, steps):
        text = f"step {n} answer" + (" zanzibarword" if n == word_at else "")
        events.append({**base, "eventType": "error" if n % 1000 == 999 else "llm_response",
                       "content": {"message": f"failure {n}"} if n % 1000 == 999 else {"content": text}})
    for start in range(0, len(events), 100):
        answer = httpx.post(f"{server.api}/events/ingest", json=events[start:start + 100], timeout=30)
        assert answer.status_code < 300, answer.text


def test_find_reaches_a_word_at_step_4000_of_5000_and_next_error_reaches_every_error(server, browser):
    trace_id = f"long-{uuid.uuid4().hex[:8]}"
    _long_run(server, trace_id, 5000, 4000)
    browser.get(f"{server.url}/traces/{trace_id}?view=conversation")
    wait_ready(browser, 30)
    assert len(browser.find_elements("css selector", "#conversation .conv-item")) == 5000  # no cap, no "load more"
    assert max(len(f.find_elements("css selector", ".conv-item")) for f in browser.find_elements("css selector", ".fold")) <= 50
    find = browser.find_element("id", "trace-find")
    find.send_keys("zanzibarword")
    wait_for(browser, lambda d: d.find_element("id", "find-count").text == "1 of 1")
    assert browser.execute_script("""const r = CSS.highlights.get('find-current').values().next().value.getBoundingClientRect();
        return r.top >= 0 && r.bottom <= innerHeight""")
    seen = []
    for _ in range(5):
        browser.find_element("id", "error-next").click()
        wait_for(browser, lambda d: d.find_elements("css selector", ".conv-item.k-error.selected"))
        seen.append(browser.find_element("css selector", ".conv-item.selected").get_attribute("data-node"))
    assert len(set(seen[:5])) == 5 and browser.find_element("id", "error-count").text == "error 5 of 5"
    browser.find_element("tag name", "body").send_keys("n")  # the key goes round to the first again
    wait_for(browser, lambda d: d.find_element("id", "error-count").text == "error 1 of 5")


def test_a_pending_proxied_stream_is_visible_while_upstream_holds_it(proxied, fake, browser):
    trace_id = f"read-{uuid.uuid4().hex[:10]}"
    client = openai.OpenAI(api_key="sk-test", base_url=f"{proxied.proxy}/v1",
                           default_headers={"X-Trace-ID": trace_id, "X-Agent-Name": "proxied-reader"})
    fake.gate.set()
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "first"}])
    read_trace(proxied, trace_id, 2)
    fake.gate.clear()
    browser.get(f"{proxied.url}/traces/{trace_id}?view=conversation")
    wait_ready(browser)
    pending = browser.find_element("id", "pending-call")
    assert not pending.is_displayed()
    worker = threading.Thread(target=lambda: "".join(str(c) for c in client.chat.completions.create(
        model="gpt-4o-mini-gated", messages=[{"role": "user", "content": "second"}], stream=True)))
    worker.start()
    try:
        wait_for(browser, lambda d: pending.is_displayed())
    finally:
        fake.gate.set()
        worker.join(10)
    wait_for(browser, lambda d: not pending.is_displayed())
    wait_for(browser, lambda d: d.find_element("id", "conversation").text.count("Hello world") == 2)


def test_an_unknown_trace_answers_404_and_shows_the_trace_when_its_first_event_arrives(server, browser):
    trace = sdk_trace(server)
    assert httpx.get(f"{server.url}/traces/{trace.tid}").status_code == 404
    browser.get(f"{server.url}/traces/{trace.tid}")
    wait_ready(browser)
    assert "Waiting for its first event" in browser.find_element("id", "waiting").text
    trace.user_message_sync([{"role": "user", "content": "arrived-marker"}])
    wait_for(browser, lambda d: d.find_elements("id", "trace-head"))


def test_no_page_scrolls_sideways_at_390_px(server, browser):
    trace = sdk_trace(server)
    user_message(server, trace.tid, "x" * 300 + " wide", "narrow-user")
    # A 5-minute call: the span tree's axis labels are at their widest ("2 min 30 s").
    trace.llm_response_sync("openai/gpt-4o-mini", "openai", "```\n" + "y" * 300 + "\n```", latency_ms=301_000,
                            usage={"promptTokens": 1, "completionTokens": 1, "totalTokens": 2})
    phone = {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": False}
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", phone)
    try:
        for path in ("/", f"/traces/{trace.tid}", f"/traces/{trace.tid}?view=conversation", "/agents/",
                     "/agents/reader-agent/", "/users/", "/users/narrow-user/", "/api/docs", "/traces/no-such-trace"):
            browser.get(server.url + path)
            wait_for(browser, lambda d: d.execute_script("return document.readyState") == "complete")
            assert browser.execute_script("return document.documentElement.scrollWidth") <= 390, path
        browser.get(f"{server.url}/traces/{trace.tid}")
        wait_ready(browser)
        ticks = browser.execute_script(
            "return [...document.querySelectorAll('.wf-tick')].map(t => t.getBoundingClientRect())"
            ".filter(r => r.width).map(r => [r.left, r.right])")
        assert len(ticks) >= 2 and all(a[1] <= b[0] for a, b in itertools.pairwise(ticks)), ticks
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_list_rows_keep_names_and_times_on_one_line(server, browser):
    trace = sdk_trace(server, "an-agent-with-a-rather-long-name")
    user_message(server, trace.tid, "hi", "someone.with.a.long.address@example.com")
    for width in (1440, 390):
        browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False})
        try:
            browser.get(f"{server.url}/")
            # Each one line high (an ellipsis splits a cut text's client rects, so their height tells).
            lines = browser.execute_script(
                "const row = document.querySelector(`tr[data-trace-id='${arguments[0]}']`);"
                "return [...row.querySelectorAll('td.one-line a, td.one-line time')]"
                ".map(e => e.getBoundingClientRect().height / parseFloat(getComputedStyle(e).fontSize))", trace.tid)
            assert len(lines) == 3 and all(height < 2 for height in lines), (width, lines)  # agent, user, started
        finally:
            browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_the_users_page_lists_end_users(server, browser):
    trace = sdk_trace(server)
    user_message(server, trace.tid, "hi", "listed-user-1")
    trace.error_sync("boom")
    browser.get(f"{server.url}/users/")
    row = next(r for r in browser.find_elements("css selector", "#users tbody tr") if "listed-user-1" in r.text)
    assert row.find_elements("css selector", "td")[4].text == "1"  # errors


def test_api_docs_load_offline_and_fetch_nothing_off_host(server, browser):
    browser.get(f"{server.url}/api/docs")
    wait_for(browser, lambda d: d.find_elements("css selector", ".swagger-ui .opblock"), 15)
    urls = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert urls and all(url.startswith(server.url) for url in urls), urls
