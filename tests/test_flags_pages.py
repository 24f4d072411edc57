"""Flags, the prompt change and compare on the pages: test client for content, Chromium for the markers."""

import time

import pytest

from whyops_local.storage.rows import register_agent

from .pages_fixtures import SUPPORT_AGENT, send

pytestmark = pytest.mark.django_db
LLM = {"model": "gpt-4o-mini", "provider": "openai"}


def looping_run(trace_id, city="Paris", answer="It is sunny.", agent="weather-agent"):
    send(trace_id, "user_message", {"messages": [{"role": "user", "content": "weather?"}]}, agent=agent)
    for _ in range(3):
        send(trace_id, "tool_call_request", {"toolCalls": [{"name": "get_weather", "arguments": {"city": city}}]},
             {"tool": "get_weather"}, agent=agent, spanId=f"{trace_id}-{_}")
        city = city if city == "Paris" else city + "x"
    send(trace_id, "llm_response", {"content": answer, "finishReason": "stop"}, LLM, agent=agent)


def test_the_list_shows_a_badge_per_flag_and_filters_by_flag(client):
    looping_run("loop-run")
    looping_run("good-run", city="Lyon")
    html = client.get("/").content.decode()
    start = html.index('data-trace-id="loop-run"')
    row = html[start:html.index("</tr>", start)]
    assert "Tool loop" in row and "flag-badge" in row and 'href="/?flag=tool_loop"' in row
    assert '<option value="tool_loop"' in html
    filtered = client.get("/?flag=tool_loop").content.decode()
    assert 'data-trace-id="loop-run"' in filtered and 'data-trace-id="good-run"' not in filtered
    assert 'data-trace-id="good-run"' in client.get("/?flag=nonsense").content.decode()


def test_the_trace_page_marks_each_flag_with_links_to_its_steps_and_offers_the_previous_run(client):
    looping_run("first-run", city="Lyon")
    looping_run("second-run")
    html = client.get("/traces/second-run").content.decode()
    assert "get_weather was called 3 times with the same arguments" in html
    for step in (2, 3, 4):
        assert f'href="?step={step}" data-step="{step}"' in html
    assert 'href="/compare/?a=first-run&amp;b=second-run"' in html
    assert "previous run" not in client.get("/traces/first-run").content.decode()


def test_the_generation_panel_shows_what_changed_since_the_previous_call(client):
    history = [{"role": "user", "content": "old question"}, {"role": "assistant", "content": "old answer"}]
    send("ctx", "user_message", {"messages": history}, {"systemPrompt": "A"})
    send("ctx", "llm_response", {"content": "one"}, LLM)
    send("ctx", "user_message", {"messages": [{"role": "user", "content": "new question"}]}, {"systemPrompt": "B"})
    send("ctx", "llm_response", {"content": "two"}, LLM)
    panel = client.get("/traces/ctx?step=4&partial=panel").content.decode()
    assert "Since the previous call" in panel and 'data-step="2"' in panel
    assert "system prompt changed" in panel and "old question" in panel and "old answer" in panel
    assert "0 appended · 1 removed · 1 edited" in panel  # the question rewritten, the old answer dropped
    assert "The first LLM call" in client.get("/traces/ctx?step=2&partial=panel").content.decode()


def test_the_compare_page_marks_the_divergence_and_diffs_answers_and_system_prompts(client):
    register_agent("weather-agent", SUPPORT_AGENT)
    looping_run("run-a", city="Lyon", answer="Sunny in Lyon.\nTake a hat.")
    register_agent("weather-agent", {**SUPPORT_AGENT, "systemPrompt": "You are a terse weather bot."})
    looping_run("run-b", answer="Sunny in Paris.\nTake a hat.")
    html = client.get("/compare/?a=run-a&b=run-b").content.decode()
    # user message, then the first lookup differs (Lyon / Paris)
    assert '<tr id="row-1" class="differs divergence">' in html and "parts here" in html and 'href="#row-1"' in html
    assert '<span class="d-del">- Sunny in Lyon.</span>' in html and '<span class="d-add">+ Sunny in Paris.</span>' in html
    assert "System prompt: v1 → v2" in html and '<span class="d-add">+You are a terse weather bot.</span>' in html
    same = client.get("/compare/?a=run-a&b=run-a").content.decode()
    assert 'id="no-divergence"' in same and "System prompt:" not in same


def test_two_ticked_rows_open_the_compare_page_and_a_missing_run_is_explained(client):
    looping_run("run-a")
    picked = client.get("/compare/?t=run-a&t=run-b")
    assert picked.status_code == 302 and picked["Location"] == "/compare/?a=run-a&b=run-b"
    missing = client.get("/compare/?t=run-a")
    assert missing.status_code == 400 and "you chose 1" in missing.content.decode()
    assert client.get("/compare/?a=run-a&b=nope").status_code == 404


@pytest.mark.usefixtures("transactional_db")
def test_a_flag_marker_selects_its_step_in_place(live_server):
    from selenium.webdriver.common.by import By

    from .browser import chromium, needs_chromium, wait_ready

    if needs_chromium.args[0]:
        pytest.skip(needs_chromium.kwargs["reason"])
    looping_run("marker-run")
    with chromium() as driver:
        driver.get(f"{live_server.url}/traces/marker-run")
        wait_ready(driver)
        flagged = driver.find_elements(By.CSS_SELECTOR, "#graph .node.flagged")
        assert sorted(el.get_attribute("id") for el in flagged) == ["step-2", "step-3", "step-4"]
        assert "called 3 times" in flagged[0].find_element(By.TAG_NAME, "title").get_attribute("textContent")
        driver.execute_script("window.__same_page = 1")
        driver.find_element(By.CSS_SELECTOR, '.flags a[data-step="4"]').click()
        deadline = time.monotonic() + 5
        while 'data-node="4"' not in driver.find_element(By.ID, "step-panel").get_attribute("innerHTML"):
            assert time.monotonic() < deadline, "the panel never showed step 4"
            time.sleep(0.05)
        assert driver.execute_script("return window.__same_page") == 1  # no reload
        assert driver.current_url.endswith("?step=4")
