"""Upstream errors pass through unchanged; unreachable or slow upstreams give provider-shaped errors."""

import os
import signal
import time

import anthropic
import httpx
import openai
import pytest

from .proxy_fixtures import kinds, read_trace, unproxied
from .servers import free_port, run_server, writer_pids

MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def broken(fake_upstream, tmp_path_factory):
    """A server whose OpenAI upstream refuses connections and whose Anthropic upstream is given 0.5 s."""
    env = {"WHYOPS_OPENAI_BASE_URL": f"http://127.0.0.1:{free_port()}/v1", "WHYOPS_ANTHROPIC_BASE_URL": fake_upstream.url,
           "WHYOPS_PROXY_TIMEOUT": "0.5", "WHYOPS_PROXY_STREAM_TIMEOUT": "0.5"}
    with run_server(tmp_path_factory.mktemp("whyops-broken"), env=env) as running:
        yield running


def test_an_upstream_error_reaches_the_client_unchanged_and_is_recorded(proxied, fake, trace_id):
    api = openai.OpenAI(base_url=f"{proxied.proxy}/v1", api_key="sk-x", max_retries=0,
                        default_headers={"X-Trace-ID": trace_id})
    with pytest.raises(openai.RateLimitError) as raised:
        api.chat.completions.create(model="gpt-error-429", messages=MESSAGES)
    assert raised.value.response.content == fake.sent[-1]
    trace = read_trace(proxied, trace_id, 2)
    assert kinds(trace) == ["user_message", "error"]
    assert trace["events"][1]["content"]["status"] == 429
    assert "fake upstream error 429" in trace["events"][1]["content"]["message"]
    assert trace["errorCount"] == 1


def test_an_anthropic_overload_passes_through_as_is(proxied, fake, trace_id):
    api = anthropic.Anthropic(base_url=proxied.proxy, api_key="sk-x", max_retries=0,
                              default_headers={"X-Trace-ID": trace_id})
    with pytest.raises(anthropic.InternalServerError) as raised:
        api.messages.create(model="claude-error-529", max_tokens=10, messages=MESSAGES, stream=True)
    assert raised.value.status_code == 529
    assert raised.value.response.content == fake.sent[-1]
    assert kinds(read_trace(proxied, trace_id, 2)) == ["user_message", "error"]


def test_a_refused_connection_gives_an_openai_shaped_502_and_an_error_event(broken, trace_id):
    api = openai.OpenAI(base_url=f"{broken.proxy}/v1", api_key="sk-x", max_retries=0,
                        default_headers={"X-Trace-ID": trace_id})
    with pytest.raises(openai.APIStatusError) as raised:
        api.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert raised.value.status_code == 502
    assert raised.value.body["type"] == "upstream_unreachable"  # the SDK unwraps {"error": {...}}
    assert raised.value.response.headers["X-Trace-ID"] == trace_id
    trace = read_trace(broken, trace_id, 2)
    assert kinds(trace) == ["user_message", "error"]
    assert trace["events"][1]["content"]["status"] == 502


@pytest.mark.parametrize("stream", [False, True])
def test_a_slow_upstream_gives_an_anthropic_shaped_504(broken, fake, trace_id, stream):
    api = anthropic.Anthropic(base_url=broken.proxy, api_key="sk-x", max_retries=0,
                              default_headers={"X-Trace-ID": trace_id})
    with pytest.raises(anthropic.APIStatusError) as raised:
        api.messages.create(model="claude-slow-1.5", max_tokens=10, messages=MESSAGES, stream=stream)
    assert raised.value.status_code == 504
    assert raised.value.body["type"] == "error" and raised.value.body["error"]["type"] == "timeout"
    assert kinds(read_trace(broken, trace_id, 2)) == ["user_message", "error"]


def test_malformed_json_is_refused_without_calling_upstream(proxied, fake):
    before = len(fake.requests)
    answer = httpx.post(f"{proxied.proxy}/v1/chat/completions", content=b'{"model": "gpt-4o", "messages": [',
                        headers={"content-type": "application/json"})
    assert answer.status_code == 400
    assert answer.json()["error"]["type"] == "invalid_request_error"
    assert len(fake.requests) == before


def test_an_upstream_pointing_back_at_this_server_is_refused(tmp_path):
    port = free_port()
    env = {"WHYOPS_OPENAI_BASE_URL": f"http://localhost:{port}/proxy/v1"}
    with run_server(tmp_path, env=env, port=port) as server:
        answer = httpx.post(f"{server.proxy}/v1/chat/completions", json={"model": "gpt-4o", "messages": MESSAGES})
    assert answer.status_code == 502
    assert "points back at this server" in answer.json()["error"]["message"]


def test_an_upstream_cutting_a_stream_ends_the_clients_there_and_leaves_an_interrupted_response(
        proxied, fake, trace_id):
    body = {"model": "gpt-4o-mini-cut", "messages": MESSAGES, "stream": True}
    with httpx.stream("POST", f"{proxied.proxy}/v1/chat/completions", json=body,
                      headers={"X-Trace-ID": trace_id, "X-Fake-Id": "9002"}) as response:
        received = b"".join(response.iter_raw())
    assert received == unproxied(fake, "/chat/completions", body, 9002)
    trace = read_trace(proxied, trace_id, 3)
    assert kinds(trace) == ["user_message", "llm_response", "error"]
    assert trace["events"][1]["content"]["content"] == "Hello"
    assert trace["events"][1]["metadata"]["interrupted"] is True
    assert "stream failed" in trace["events"][2]["content"]["message"]


def test_a_trace_id_too_long_to_store_is_refused_before_calling_upstream(proxied, fake):
    before = len(fake.requests)
    answer = httpx.post(f"{proxied.proxy}/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": MESSAGES},
                        headers={"X-Trace-ID": "t" * 129})
    assert answer.status_code == 400
    assert len(fake.requests) == before


def test_a_dead_recording_process_is_replaced(fake_upstream, fake, tmp_path, trace_id):
    with run_server(tmp_path, env={"WHYOPS_OPENAI_BASE_URL": fake_upstream.url + "/v1"}) as server:
        api = openai.OpenAI(base_url=f"{server.proxy}/v1", api_key="sk-x", default_headers={"X-Trace-ID": trace_id})
        api.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        read_trace(server, trace_id, 2)
        [writer] = writer_pids(server)
        os.kill(writer, signal.SIGKILL)
        time.sleep(0.5)  # the pool notices its worker is gone
        api.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        assert len(read_trace(server, trace_id, 4, timeout=15)["events"]) == 4
        assert writer_pids(server) != [writer]


def test_calls_answered_while_the_writer_hangs_are_stored_once_after_it_is_killed(fake_upstream, fake, tmp_path):
    """The proxy answers before recording; a writer that dies holding those records must not lose them."""
    with run_server(tmp_path, env={"WHYOPS_OPENAI_BASE_URL": fake_upstream.url + "/v1"}) as server:
        httpx.post(f"{server.api}/events/ingest",  # the writer is up and has stored something
                   json={"eventType": "user_message", "traceId": "warm-up", "agentName": "a"}).raise_for_status()
        [writer] = writer_pids(server)
        os.kill(writer, signal.SIGSTOP)
        traces = [f"held-{n}" for n in range(20)]
        for trace in traces:
            answer = httpx.post(f"{server.proxy}/v1/chat/completions", headers={"X-Trace-ID": trace},
                                json={"model": "gpt-4o-mini", "messages": MESSAGES})
            assert answer.status_code == 200
        time.sleep(0.3)  # handed to the (stopped) writer
        os.kill(writer, signal.SIGKILL)
        for trace in traces:
            recorded = read_trace(server, trace, 2, timeout=20)
            assert [e["eventType"] for e in recorded["events"]] == ["user_message", "llm_response"]
        assert writer_pids(server) != [writer]
