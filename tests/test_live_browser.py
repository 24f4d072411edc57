"""Watching an agent live in headless Chromium: new steps and traces appear without a reload,
and a page that lost its connection catches up on everything it missed."""

import time
import uuid

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from whyops import WhyOps

from .browser import ARTIFACTS, chromium, needs_chromium, wait_ready
from .servers import run_server

pytestmark = needs_chromium


def sdk_for(server) -> WhyOps:
    return WhyOps(api_key="k", agent_name="live-agent", agent_metadata={"systemPrompt": "s", "tools": []},
                  analyse_base_url=server.api, proxy_base_url=server.proxy)


def live(driver, timeout=5) -> None:
    WebDriverWait(driver, timeout).until(
        lambda d: d.find_element(By.ID, "live-indicator").get_attribute("data-state") == "live")


def total(driver, name) -> str:
    # Read in one script: the header is replaced as a whole on updates, so a found element can go stale.
    return driver.execute_script(f"return document.querySelector('[data-total=\"{name}\"]').textContent.trim()")


def graph_steps(driver) -> int:
    return driver.execute_script("return document.querySelectorAll('#graph [id^=\"step-\"]').length")


@pytest.fixture(scope="module")
def browser():
    with chromium() as driver:
        yield driver


def test_a_new_step_and_its_totals_appear_on_the_open_trace_page_within_a_second(server, browser):
    trace = sdk_for(server).trace(f"watch-{uuid.uuid4().hex[:8]}")
    trace.user_message_sync([{"role": "user", "content": "Where is order 123?"}])
    browser.get(f"{server.url}/traces/{trace._trace_id}")
    wait_ready(browser)
    live(browser)
    assert graph_steps(browser) == 1

    trace.error_sync("search_orders timed out", status=504)
    sent = time.monotonic()
    WebDriverWait(browser, 1, poll_frequency=0.02).until(lambda d: graph_steps(d) == 2)
    assert time.monotonic() - sent < 1
    WebDriverWait(browser, 1, poll_frequency=0.02).until(lambda d: total(d, "errorCount") == "1")
    assert total(browser, "eventCount") == "2"
    assert browser.execute_script("return performance.getEntriesByType('navigation').length") == 1  # no reload
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "live-trace-page.png"))


def test_a_new_trace_appears_at_the_top_of_the_open_list(server, browser):
    sdk_for(server).trace(f"first-{uuid.uuid4().hex[:8]}").user_message_sync([{"role": "user", "content": "a"}])
    browser.get(f"{server.url}/")
    live(browser)
    fresh = f"fresh-{uuid.uuid4().hex[:8]}"
    sdk_for(server).trace(fresh).user_message_sync([{"role": "user", "content": "b"}])
    WebDriverWait(browser, 1, poll_frequency=0.02).until(
        lambda d: d.find_element(By.CSS_SELECTOR, "table.traces tbody tr").get_attribute("data-trace-id") == fresh)


def test_a_page_that_lost_its_connection_catches_up_on_what_it_missed(tmp_path, browser):
    trace_id = f"reconnect-{uuid.uuid4().hex[:8]}"
    with run_server(tmp_path) as first:
        port = first.port
        sdk_for(first).trace(trace_id).user_message_sync([{"role": "user", "content": "start"}])
        browser.get(f"{first.url}/traces/{trace_id}")
        wait_ready(browser)
        live(browser)
    # The server is gone (as on a restart or laptop sleep): the page says so and keeps trying.
    WebDriverWait(browser, 5).until(
        lambda d: d.find_element(By.ID, "live-indicator").get_attribute("data-state") == "reconnecting")
    # Meanwhile the agent goes on, through another server on the same data, unseen by the page.
    with run_server(tmp_path) as elsewhere:
        trace = sdk_for(elsewhere).trace(trace_id)
        trace.llm_thinking_sync("missed one")
        trace.error_sync("missed two")
    with run_server(tmp_path, port=port) as again:
        live(browser, timeout=10)
        WebDriverWait(browser, 3).until(lambda d: graph_steps(d) == 3)
        # And it carries on live after catching up, without doubling anything.
        sdk_for(again).trace(trace_id).error_sync("after reconnect")
        WebDriverWait(browser, 2).until(lambda d: graph_steps(d) == 4)
        WebDriverWait(browser, 2).until(lambda d: total(d, "eventCount") == "4")


def test_a_running_proxied_stream_shows_as_in_progress_until_it_ends(proxied, fake, browser):
    import threading

    import httpx

    trace_id = f"stream-{uuid.uuid4().hex[:8]}"
    sdk_for(proxied).trace(trace_id).user_message_sync([{"role": "user", "content": "before the stream"}])
    browser.get(f"{proxied.url}/traces/{trace_id}")
    wait_ready(browser)
    live(browser)
    badge = "return !document.getElementById('stream-state').hidden"
    assert browser.execute_script(badge) is False

    body = {"model": "gpt-4o-mini-gated", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    streaming = threading.Thread(target=lambda: httpx.post(f"{proxied.proxy}/v1/chat/completions", json=body,
                                                          headers={"X-Trace-ID": trace_id}, timeout=20))
    streaming.start()
    try:
        WebDriverWait(browser, 3, poll_frequency=0.02).until(lambda d: d.execute_script(badge))
        browser.get(f"{proxied.url}/")  # the list shows it too, and so does a freshly loaded page
        WebDriverWait(browser, 3).until(lambda d: d.execute_script(
            f"return !document.querySelector('tr[data-trace-id=\"{trace_id}\"] [data-stream-state]').hidden"))
        browser.get(f"{proxied.url}/traces/{trace_id}")
        wait_ready(browser)
        live(browser)
        assert browser.execute_script(badge)
    finally:
        fake.gate.set()
        streaming.join(10)
    WebDriverWait(browser, 3, poll_frequency=0.02).until(lambda d: not d.execute_script(badge))
    WebDriverWait(browser, 3).until(lambda d: total(d, "llmCalls") == "1")
