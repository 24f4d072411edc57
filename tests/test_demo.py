"""``whyops-local demo``: a server on a throwaway data dir, recording scripted agents that go through the
real proxy (to the built-in fake provider) and the real ingest API."""

import re
import time
from pathlib import Path

import httpx
import pytest

from .servers import run_cli

RUNS = {"demo-openai-tools", "demo-openai-streamed", "demo-anthropic-thinking", "demo-upstream-error",
        "demo-prompt-cache", "demo-long-run"}


@pytest.fixture(scope="module")
def demo():
    with run_cli("demo", "--port", "0") as running:
        deadline = time.monotonic() + 60
        while "recorded" not in running.output() and time.monotonic() < deadline and running.process.poll() is None:
            time.sleep(0.2)
        assert "recorded 6 runs" in running.output(), running.output()
        yield running
        assert running.stop() == 0
    assert "Traceback" not in running.output(), running.output()


def _trace(demo, trace_id: str) -> dict:
    answer = httpx.get(f"{demo.api}/traces/{trace_id}")
    assert answer.status_code == 200, answer.text
    return answer.json()


def _kinds(trace: dict) -> list[str]:
    return [event["eventType"] for event in trace["events"]]


def test_it_lists_its_runs_of_two_agents_and_two_users(demo):
    traces = httpx.get(f"{demo.api}/traces", params={"limit": 50}).json()["traces"]
    assert {trace["traceId"] for trace in traces} == RUNS
    assert {trace["agentName"] for trace in traces} == {"support-agent", "research-agent"}
    assert {trace["externalUserId"] for trace in traces} == {"alice@example.com", "bob@example.com"}
    assert all(trace["costUsd"] for trace in traces)  # priced models, not "price unknown"


def test_the_openai_tool_loops_are_proxied_with_their_raw_exchanges_and_paired_tool_spans(demo):
    for trace_id in ("demo-openai-tools", "demo-openai-streamed"):
        trace = _trace(demo, trace_id)
        assert _kinds(trace) == ["user_message", "llm_response", "tool_call_request", "tool_call_response",
                                 "tool_call_request", "tool_call_response", "tool_result", "llm_response"]
        assert {span["tool"] for span in trace["spans"] if span["complete"]} == {"get_weather", "get_time"}
        proxied = [event for event in trace["events"] if event["source"] == "proxy" and event["eventType"] == "llm_response"]
        exchange = httpx.get(f"{demo.api}/exchanges/{proxied[-1]['exchangeId']}").json()
        assert exchange["status"] == 200 and exchange["path"].endswith("/chat/completions")
        assert "light rain" in exchange["requestBody"]  # the tool result the agent sent back
        assert bool(exchange["chunks"]) == (trace_id == "demo-openai-streamed")


def test_the_anthropic_run_has_thinking_blocks_and_tool_use(demo):
    trace = _trace(demo, "demo-anthropic-thinking")
    thinking = [event for event in trace["events"] if event["eventType"] == "llm_thinking"]
    assert len(thinking) == 2 and thinking[0]["content"]["signature"]
    assert [span["tool"] for span in trace["spans"] if span["complete"]] == ["get_weather"]


def test_the_upstream_error_is_recorded_and_the_agent_carries_on(demo):
    trace = _trace(demo, "demo-upstream-error")
    assert trace["errorCount"] == 1
    error = next(event for event in trace["events"] if event["eventType"] == "error")
    assert error["content"]["status"] == 529
    assert _kinds(trace)[-1] == "llm_response"


def test_the_prompt_cache_is_written_then_read(demo):
    usage = _trace(demo, "demo-prompt-cache")["usage"]
    assert usage["cacheCreationTokens"] > 0 and usage["cacheReadTokens"] > usage["cacheCreationTokens"]


def test_the_long_run_has_hundreds_of_steps(demo):
    trace = _trace(demo, "demo-long-run")
    assert trace["eventCount"] > 300 and len([s for s in trace["spans"] if s["complete"]]) == 100


def test_its_pages_show_the_runs(demo):
    assert "demo-long-run" in httpx.get(f"{demo.url}/").text
    page = httpx.get(f"{demo.url}/traces/demo-anthropic-thinking")
    assert page.status_code == 200 and "Let me think." in page.text


def test_the_throwaway_data_dir_is_removed_when_it_stops():
    with run_cli("demo", "--port", "0") as running:
        data_dir = Path(re.search(r"data in (\S+)/whyops.sqlite3", running.output()).group(1))
        assert data_dir.is_dir()
        assert running.stop() == 0
    assert not data_dir.exists()


def test_run_again_on_a_kept_data_dir_it_records_new_traces(tmp_path):
    for _ in range(2):
        with run_cli("demo", "--port", "0", "--data-dir", str(tmp_path)) as running:
            deadline = time.monotonic() + 60
            while "recorded" not in running.output() and time.monotonic() < deadline:
                time.sleep(0.2)
            traces = httpx.get(f"{running.api}/traces", params={"limit": 50}).json()["traces"]
            assert running.stop() == 0
    assert len(traces) == 12 and len({trace["eventCount"] for trace in traces if "openai-tools" in trace["traceId"]}) == 1
    assert tmp_path.is_dir()
