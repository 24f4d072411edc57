"""Deleting a trace (API, page, live), searching what traces say, and handing a trace over as one file."""

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from .browser import ARTIFACTS, chromium, needs_chromium, wait_ready
from .servers import ROOT

# On PostgreSQL one database stands for every data dir.
sqlite_only = pytest.mark.skipif(bool(os.environ.get("DATABASE_URL")), reason="SQLite's search index and data dirs")


def ingest(server, events) -> None:
    httpx.post(f"{server.api}/events/ingest", json=events, timeout=30).raise_for_status()


def sdk_trace(server, trace_id: str, text: str = "Where is my order?") -> None:
    ingest(server, [
        {"eventType": "user_message", "traceId": trace_id, "agentName": "shop", "content": [{"role": "user", "content": text}]},
        {"eventType": "llm_response", "traceId": trace_id, "agentName": "shop", "content": {"content": "It shipped."},
         "metadata": {"model": "gpt-4o-mini", "provider": "openai"}}])


def found(server, query: str) -> list[str]:
    return [t["traceId"] for t in httpx.get(f"{server.api}/traces", params={"q": query, "limit": 500}).json()["traces"]]


def test_deleting_a_trace_by_the_api_removes_it_and_only_it(server):
    gone, kept = f"gone-{uuid.uuid4().hex[:8]}", f"kept-{uuid.uuid4().hex[:8]}"
    sdk_trace(server, gone, "unique-delete-word")
    sdk_trace(server, kept)
    assert httpx.delete(f"{server.api}/traces/{gone}").status_code == 204
    assert httpx.get(f"{server.api}/traces/{gone}").status_code == 404
    assert httpx.delete(f"{server.api}/traces/{gone}").json()["error"].startswith("No trace")
    assert found(server, "unique-delete-word") == []
    assert gone not in httpx.get(server.url + "/").text
    assert httpx.get(f"{server.api}/traces/{kept}").json()["eventCount"] == 2


@pytest.mark.parametrize("needle", ['say "yes"', "100%", "snake_case_name", "glob*star", "naïve café 東京",
                                    "ok", "東京", '"q', "%_"])  # the last four shorter than a trigram
def test_search_finds_text_literally_special_characters_included(server, needle):
    trace_id = f"search-{uuid.uuid4().hex[:8]}"
    sdk_trace(server, trace_id, f"before {needle} after")
    assert trace_id in found(server, needle)
    # Literal: "%" and "_" are not wildcards, "*" is not a prefix query, quotes are characters.
    assert trace_id not in found(server, needle.replace(needle[-1], "\u2603"))


def test_search_looks_in_answers_tool_arguments_and_results_thinking_and_errors(server):
    trace_id = f"kinds-{uuid.uuid4().hex[:8]}"
    qq = trace_id[-8:]  # words of this run only: on PostgreSQL one database serves every run
    span = str(uuid.uuid4())
    base = {"traceId": trace_id, "agentName": "shop"}
    ingest(server, [
        {**base, "eventType": "llm_response", "content": {"content": f"answer-word-{qq}"},
         "metadata": {"model": "m", "provider": "p"}},
        {**base, "eventType": "tool_call_request", "spanId": span, "metadata": {"tool": "lookup"},
         "content": {"toolCalls": [{"name": "lookup", "arguments": {"orderId": f"argument-{qq}"}}]}},
        {**base, "eventType": "tool_call_response", "spanId": span, "metadata": {"tool": "lookup"},
         "content": {"toolCalls": [{"name": "lookup", "arguments": {}}], "toolResults": {"status": f"result-{qq}"}}},
        {**base, "eventType": "llm_thinking", "content": {"type": "thinking", "thinking": f"thinking-{qq}"}},
        {**base, "eventType": "error", "content": {"message": f"error-{qq}"}},
    ])
    for word in (f"answer-word-{qq}", f"argument-{qq}", f"result-{qq}", f"thinking-{qq}", f"error-{qq}"):
        assert found(server, word) == [trace_id], word
    page = httpx.get(server.url + "/", params={"q": f"thinking-{qq}"}).text
    assert f"<mark>thinking-{qq}</mark>" in page  # the snippet of where it matched


def test_search_finds_a_proxied_conversation_s_messages_stored_once(proxied, fake):
    fake.gate.set()
    trace_id = f"proxied-search-{uuid.uuid4().hex[:8]}"
    run = trace_id[-8:]
    headers = {"X-Trace-ID": trace_id}
    history = [{"role": "user", "content": f"first question zebra-quartz {run}"}]
    for turn in range(3):
        answer = httpx.post(f"{proxied.proxy}/v1/chat/completions", headers=headers, timeout=30,
                            json={"model": "gpt-4o-mini", "messages": history}).json()
        history += [answer["choices"][0]["message"], {"role": "user", "content": f"follow-up {turn} of {run}"}]
    from .proxy_fixtures import read_trace

    read_trace(proxied, trace_id, events=6)
    assert found(proxied, f"zebra-quartz {run}") == [trace_id]
    assert found(proxied, f"follow-up 1 of {run}") == [trace_id]


def _manage(data_dir: Path, *args: str) -> str:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "whyops_local.settings", "WHYOPS_DATA_DIR": str(data_dir)}
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


@sqlite_only
def test_export_then_import_into_a_fresh_data_dir_then_export_gives_the_same_document(proxied, fake, tmp_path):
    fake.gate.set()
    trace_id = f"export-{uuid.uuid4().hex[:8]}"
    headers = {"X-Trace-ID": trace_id, "X-Agent-Name": "exporter"}
    history = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "héllo"}]
    for stream in (False, True):
        httpx.post(f"{proxied.proxy}/v1/chat/completions", headers=headers, timeout=30,
                   json={"model": "gpt-4o-mini", "messages": history, "stream": stream}).raise_for_status()
        history.append({"role": "user", "content": "more"})
    sdk_trace(proxied, trace_id)
    from .proxy_fixtures import read_trace

    read_trace(proxied, trace_id, events=6)
    exported = httpx.get(f"{proxied.api}/traces/{trace_id}/export")
    assert exported.status_code == 200 and "attachment" in exported.headers["content-disposition"]
    document = exported.json()
    assert len(document["exchanges"]) == 2 and document["agentVersion"]["systemPrompt"] == "Be brief."
    path = tmp_path / "run.json"
    path.write_bytes(exported.content)
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    _manage(fresh, "migrate", "-v0")
    assert "imported trace" in _manage(fresh, "import", str(path))
    assert "already here" in _manage(fresh, "import", str(path))  # stored once
    assert json.loads(_manage(fresh, "export", trace_id)) == document
    assert httpx.get(f"{proxied.api}/traces/no-such/export").status_code == 404


@needs_chromium
def test_delete_from_the_page_and_live_from_open_pages_then_the_html_export_opens_offline(server, tmp_path):
    trace_id, other = f"page-{uuid.uuid4().hex[:8]}", f"other-{uuid.uuid4().hex[:8]}"
    sdk_trace(server, trace_id, "shown in the export")
    sdk_trace(server, other)
    html = httpx.get(f"{server.api}/traces/{trace_id}/export", params={"format": "html"}).text
    assert "http://" not in html and "https://" not in html and "src=" not in html
    export = tmp_path / "run.html"
    export.write_text(html)
    with chromium(1440, 900) as browser:
        # The HTML export, from disk, the network closed: it shows the run.
        browser.set_network_conditions(offline=True, latency=0, download_throughput=0, upload_throughput=0)
        browser.get(export.as_uri())
        assert "shown in the export" in browser.find_element(By.ID, "steps").text
        browser.find_element(By.ID, "show-raw").click()
        assert trace_id in browser.find_element(By.ID, "raw").text
        ARTIFACTS.mkdir(exist_ok=True)
        browser.save_screenshot(str(ARTIFACTS / "html-export.png"))
        browser.delete_network_conditions()

        # An open page of another trace, and the list in a second tab, see it go live.
        browser.get(f"{server.url}/traces/{other}")
        wait_ready(browser)
        browser.switch_to.new_window("tab")
        browser.get(f"{server.url}/")
        WebDriverWait(browser, 5).until(lambda d: d.find_element(By.ID, "live-indicator").get_attribute("data-state") == "live")
        browser.switch_to.new_window("tab")
        browser.get(f"{server.url}/traces/{trace_id}")
        wait_ready(browser)
        browser.find_element(By.CSS_SELECTOR, ".trace-delete summary").click()
        browser.save_screenshot(str(ARTIFACTS / "delete-confirm.png"))
        browser.find_element(By.ID, "confirm-delete").click()
        WebDriverWait(browser, 5).until(lambda d: d.current_url.rstrip("/") == server.url)
        assert not browser.find_elements(By.CSS_SELECTOR, f'tr[data-trace-id="{trace_id}"]')
        list_tab, = [h for h in browser.window_handles[1:2]]
        browser.switch_to.window(list_tab)
        WebDriverWait(browser, 5).until(lambda d: not d.find_elements(By.CSS_SELECTOR, f'tr[data-trace-id="{trace_id}"]'))
        assert browser.find_elements(By.CSS_SELECTOR, f'tr[data-trace-id="{other}"]')
    assert httpx.get(f"{server.api}/traces/{trace_id}").status_code == 404
    assert httpx.get(f"{server.api}/traces/{other}").status_code == 200


@needs_chromium
def test_an_open_trace_page_says_so_when_its_trace_is_deleted(server):
    trace_id = f"watched-{uuid.uuid4().hex[:8]}"
    sdk_trace(server, trace_id)
    with chromium() as browser:
        browser.get(f"{server.url}/traces/{trace_id}")
        wait_ready(browser)
        WebDriverWait(browser, 5).until(lambda d: d.find_element(By.ID, "live-indicator").get_attribute("data-state") == "live")
        assert httpx.delete(f"{server.api}/traces/{trace_id}").status_code == 204
        WebDriverWait(browser, 3).until(lambda d: d.find_elements(By.ID, "trace-deleted"))
        assert "was deleted" in browser.find_element(By.ID, "trace-deleted").text


def test_the_page_s_delete_needs_its_csrf_token(server):
    trace_id = f"csrf-{uuid.uuid4().hex[:8]}"
    sdk_trace(server, trace_id)
    answer = httpx.post(f"{server.url}/delete-trace", data={"trace_id": trace_id})
    assert answer.status_code == 403
    assert httpx.get(f"{server.api}/traces/{trace_id}").status_code == 200
    assert httpx.get(f"{server.url}/delete-trace").status_code == 405
