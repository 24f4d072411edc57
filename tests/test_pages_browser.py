"""The pages in a real headless Chromium against the real server, fed by the real whyops SDK."""

import urllib.parse

import httpx
import pytest

from .browser import ARTIFACTS, chromium, needs_chromium, wait_ready
from .pages_fixtures import SUPPORT_AGENT

pytestmark = needs_chromium

HOSTILE = ('<script>window.__pwned=1;document.title="pwned"</script>'
           '<img src=x onerror="window.__pwned=2;document.title=\'pwned\'">'
           '<a href="javascript:window.__pwned=3">click me</a> javascript:window.__pwned=4')
# Trace ids and agent names are at most 128 characters.
HOSTILE_ID = '<script>window.__pwned=6</script><img src=x onerror="window.__pwned=7">/?a=1#x'


@pytest.fixture(scope="module")
def support_trace_id(server):
    """The seed docs' support-agent run, sent with the published SDK exactly as a user would."""
    from whyops import WhyOps

    sdk = WhyOps(api_key="k", agent_name="customer-support-agent", agent_metadata=SUPPORT_AGENT,
                 analyse_base_url=server.api, proxy_base_url=server.proxy)
    trace = sdk.trace("session-123")
    trace.user_message_sync([{"role": "user", "content": "Where is order 123?"}])
    trace.llm_thinking_sync("The user wants order 123: call search_orders.", signature="EqQBCkYIARgCKkD")
    trace.llm_response_sync("openai/gpt-4o-mini", "openai", None, finish_reason="tool_calls", latency_ms=300,
                            tool_calls=[{"id": "call_1", "function": {"name": "search_orders",
                                                                      "arguments": "{\"orderId\": \"123\"}"}}],
                            usage={"promptTokens": 40, "completionTokens": 12, "totalTokens": 52})
    span_id = trace.tool_call_request_sync("search_orders", [{"name": "search_orders", "arguments": {"orderId": "123"}}],
                                           latency_ms=11)
    trace.tool_call_response_sync("search_orders", span_id, [{"name": "search_orders", "arguments": {"orderId": "123"}}],
                                  {"status": "shipped"}, latency_ms=88)
    trace.llm_response_sync("openai/gpt-4o-mini", "openai", "Your order has shipped.", finish_reason="stop",
                            latency_ms=390, usage={"promptTokens": 42, "completionTokens": 16, "totalTokens": 58})
    assert httpx.get(f"{server.api}/traces/session-123").json()["eventCount"] == 6
    return "session-123"


@pytest.fixture(scope="module")
def browser():
    with chromium() as driver:
        yield driver


def js_errors(driver) -> list[dict]:
    return [entry for entry in driver.get_log("browser")
            if entry["level"] == "SEVERE" and "favicon" not in entry["message"]]


def wait_for(driver, condition, timeout: float = 5):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(condition)


def test_the_support_agent_trace_reads_step_by_step(server, support_trace_id, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser.get(f"{server.url}/traces/{support_trace_id}")
    wait_ready(browser)

    nodes = browser.find_elements(By.CSS_SELECTOR, "#graph g.node")
    assert [(n.get_attribute("id"), n.get_attribute("data-kind")) for n in nodes] == [
        ("step-1", "user"), ("step-2", "thinking"), ("step-3", "llm"), ("step-4", "tool"), ("step-6", "llm")]
    edges = [(e.get_attribute("data-from"), e.get_attribute("data-to"))
             for e in browser.find_elements(By.CSS_SELECTOR, "#graph path.edge")]
    assert edges == [("1", "2"), ("2", "3"), ("3", "4"), ("4", "6")]
    assert len(browser.find_elements(By.CSS_SELECTOR, "#tree .wf-spacer .wf-row")) == 6  # the turn and its 5 steps

    # Select the tool span: its arguments and result appear, and the URL remembers the step.
    browser.find_element(By.ID, "step-4").click()
    wait_for(browser, lambda d: "Tool span" in d.find_element(By.ID, "step-panel").text)
    panel = browser.find_element(By.ID, "step-panel").text
    assert "search_orders" in panel and '"orderId": "123"' in panel and '"status": "shipped"' in panel
    assert "88 ms" in panel
    assert urllib.parse.urlparse(browser.current_url).query == "step=4"
    assert "selected" in browser.find_element(By.ID, "step-4").get_attribute("class")

    # k goes back to the LLM call, k again to the thinking block; expand it.
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys("k")
    wait_for(browser, lambda d: "Tool calls" in d.find_element(By.ID, "step-panel").text)
    body.send_keys("k")
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#step-panel details.thinking"))
    thinking = browser.find_element(By.CSS_SELECTOR, "#step-panel details.thinking")
    assert "signature present" in thinking.text
    assert thinking.get_attribute("open") == "true"  # the selected thinking step is open
    assert "call search_orders" in thinking.text
    assert "step=2" in browser.current_url

    # j moves forward; "/" focuses the search box.
    body.send_keys("j")
    wait_for(browser, lambda d: "step=3" in d.current_url)
    body.send_keys("/")
    assert browser.switch_to.active_element.get_attribute("id") == "global-search"
    browser.switch_to.active_element.send_keys(Keys.ESCAPE)

    # Reloading with ?step= keeps the selection.
    browser.get(f"{server.url}/traces/{support_trace_id}?step=4")
    wait_ready(browser)
    assert "selected" in browser.find_element(By.ID, "step-4").get_attribute("class")
    browser.find_element(By.ID, "step-4").click()
    wait_for(browser, lambda d: "Tool span" in d.find_element(By.ID, "step-panel").text)
    ARTIFACTS.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / "trace-page.png"))
    assert js_errors(browser) == []


def test_list_agent_and_user_pages_render_in_the_browser(server, support_trace_id, browser):
    from selenium.webdriver.common.by import By

    browser.get(f"{server.url}/")
    row = browser.find_element(By.CSS_SELECTOR, "tr[data-trace-id='session-123']")
    row.find_element(By.LINK_TEXT, "session-123").click()
    wait_ready(browser)
    browser.get(f"{server.url}/agents/customer-support-agent/")
    assert "search_orders" in browser.find_element(By.TAG_NAME, "main").text
    assert js_errors(browser) == []


def test_hostile_content_renders_as_text_and_nothing_executes(server, browser):
    from selenium.webdriver.common.by import By

    events = [
        {"eventType": "user_message", "traceId": HOSTILE_ID, "agentName": HOSTILE_ID, "externalUserId": HOSTILE,
         "content": {"messages": [{"role": "user", "content": HOSTILE}, {"role": HOSTILE, "content": [
             {"type": "text", "text": HOSTILE}, {"type": "image_url", "image_url": {"url": "javascript:window.__pwned=5"}}]}]},
         "metadata": {"systemPrompt": HOSTILE, "tools": [{"name": HOSTILE, "description": HOSTILE}]}},
        {"eventType": "llm_thinking", "traceId": HOSTILE_ID, "agentName": HOSTILE_ID,
         "content": {"type": "thinking", "thinking": HOSTILE, "signature": HOSTILE}},
        {"eventType": "llm_response", "traceId": HOSTILE_ID, "agentName": HOSTILE_ID,
         "content": {"content": HOSTILE, "toolCalls": [{"function": {"name": HOSTILE, "arguments": HOSTILE}}]},
         "metadata": {"model": HOSTILE, "provider": "openai", "usage": {"promptTokens": 1}}},
        {"eventType": "tool_call_request", "traceId": HOSTILE_ID, "agentName": HOSTILE_ID, "spanId": "x",
         "content": {"toolCalls": [{"name": HOSTILE, "arguments": {HOSTILE: HOSTILE}}]}, "metadata": {"tool": HOSTILE}},
        {"eventType": "tool_call_response", "traceId": HOSTILE_ID, "agentName": HOSTILE_ID, "spanId": "x",
         "content": {"toolResults": {HOSTILE: HOSTILE}}, "metadata": {"tool": HOSTILE}},
        {"eventType": "error", "traceId": HOSTILE_ID, "agentName": HOSTILE_ID,
         "content": {"message": HOSTILE, "stack": HOSTILE}},
    ]
    response = httpx.post(f"{server.api}/events/ingest", json=events)
    assert response.status_code == 201, response.text
    quoted = urllib.parse.quote(HOSTILE_ID, safe="")
    user = urllib.parse.quote(HOSTILE, safe="")

    def assert_nothing_ran():
        assert browser.execute_script("return window.__pwned") is None
        assert browser.title != "pwned"

    for url in (f"{server.url}/", f"{server.url}/?q=script", f"{server.url}/agents/",
                f"{server.url}/agents/{quoted}/", f"{server.url}/users/{user}/"):
        browser.get(url)
        assert "<script>" in browser.find_element(By.TAG_NAME, "main").text, url  # shown, as text
        assert_nothing_ran()
    browser.get(f"{server.url}/traces/{quoted}")
    wait_ready(browser)
    assert_nothing_ran()
    for node in browser.find_elements(By.CSS_SELECTOR, "#graph g.node"):
        node.click()
        node_id = node.get_attribute("data-node")
        # Not while loading: the node selected first has its panel already, and the fetch replaces it.
        wait_for(browser, lambda d, node_id=node_id: d.find_elements(
            By.CSS_SELECTOR, f"#step-panel:not(.loading) article[data-node='{node_id}']"))
        for details in browser.find_elements(By.CSS_SELECTOR, "#step-panel details"):
            browser.execute_script("arguments[0].open = true", details)
        assert "<script>" in browser.find_element(By.ID, "step-panel").text
        assert_nothing_ran()
    # No link anywhere points at javascript:, so there is nothing to click.
    assert browser.find_elements(By.CSS_SELECTOR, "a[href^='javascript:' i], [src^='javascript:' i]") == []
    assert_nothing_ran()
    assert js_errors(browser) == []


def test_long_runs_collapse_by_turn_and_expand_on_click(server, browser):
    from selenium.webdriver.common.by import By

    events = []
    for turn in range(5):
        events.append({"eventType": "user_message", "traceId": "long-run", "agentName": "looper",
                       "content": {"messages": [{"role": "user", "content": f"question {turn}"}]}})
        for i in range(24):
            events.append({"eventType": "llm_response", "traceId": "long-run", "agentName": "looper",
                           "content": {"content": f"answer {turn}.{i}"},
                           "metadata": {"model": "gpt-4o-mini", "provider": "openai", "latencyMs": 10}})
    assert httpx.post(f"{server.api}/events/ingest", json=events).status_code == 201

    browser.get(f"{server.url}/traces/long-run?step=60")  # step 60 is in the third turn (51..75)
    wait_ready(browser)
    shown = [n.get_attribute("data-node") for n in browser.find_elements(By.CSS_SELECTOR, "#graph g.node[data-kind]:not(.turn)")]
    assert shown == [str(step) for step in range(51, 76)]
    assert len(browser.find_elements(By.CSS_SELECTOR, "#graph g.node.turn")) == 4
    assert "selected" in browser.find_element(By.ID, "step-60").get_attribute("class")

    browser.find_element(By.ID, "turn-toggle-0").click()
    assert browser.find_elements(By.ID, "step-1") and browser.find_elements(By.ID, "step-25")
    # j past the end of an open turn opens the next one.
    browser.find_element(By.ID, "step-75").click()
    wait_for(browser, lambda d: "step=75" in d.current_url)
    browser.find_element(By.TAG_NAME, "body").send_keys("j")
    wait_for(browser, lambda d: d.find_elements(By.ID, "step-76"))
    assert "selected" in browser.find_element(By.ID, "step-76").get_attribute("class")
    wait_for(browser, lambda d: "question 3" in d.find_element(By.ID, "step-panel").text)
    browser.find_element(By.ID, "collapse-all").click()
    assert browser.find_elements(By.CSS_SELECTOR, "#graph g.node[data-kind]:not(.turn)") == []
    browser.find_element(By.ID, "expand-all").click()
    assert len(browser.find_elements(By.CSS_SELECTOR, "#graph g.node[data-kind]:not(.turn)")) == 125
    assert js_errors(browser) == []


def test_dark_theme_and_laptop_width(server, support_trace_id, browser):
    browser.set_window_size(1280, 800)
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
    try:
        browser.get(f"{server.url}/traces/{support_trace_id}?step=2")
        wait_ready(browser)
        background = browser.execute_script("return getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(15, 20, 25)"
        # Nothing overflows sideways at a laptop width.
        assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
        ARTIFACTS.mkdir(exist_ok=True)
        assert browser.save_screenshot(str(ARTIFACTS / "trace-page-dark-1280.png"))
    finally:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
        browser.set_window_size(1400, 1000)
