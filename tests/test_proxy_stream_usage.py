"""Every proxied OpenAI stream has its usage, and the client still gets exactly the bytes it asked for."""

import httpx
import openai
import pytest

from whyops_local.proxy.providers import openai as mapping

from .proxy_fixtures import read_trace, unproxied
from .servers import run_server

MESSAGES = [{"role": "user", "content": "hi"}]
BODY = {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True}
TOKENS = {"input": 20, "cacheRead": 100, "cacheWrite": 0, "cacheWrite1h": 0, "output": 12, "reasoning": 0}


def _client(server, trace_id: str, fake_id: int | None = None) -> openai.OpenAI:
    headers = {"X-Trace-ID": trace_id, **({"X-Fake-Id": str(fake_id)} if fake_id else {})}
    return openai.OpenAI(base_url=f"{server.proxy}/v1", api_key="sk-x", max_retries=0, default_headers=headers)


def _recorded(server, trace_id: str) -> dict:
    return read_trace(server, trace_id, 2)["events"][1]


def test_a_raw_stream_without_include_usage_gets_upstreams_bytes_and_is_costed(proxied, fake, trace_id):
    with httpx.stream("POST", f"{proxied.proxy}/v1/chat/completions", json=BODY,
                      headers={"X-Trace-ID": trace_id, "X-Fake-Id": "7001"}) as response:
        received = b"".join(response.iter_raw())
    asked = fake.requests[-1].body
    assert asked["stream_options"] == {"include_usage": True}  # what the proxy asked upstream
    assert b'"usage"' in fake.sent[-1]
    assert received == unproxied(fake, "/chat/completions", BODY, 7001)
    assert b'"usage"' not in received
    response = _recorded(proxied, trace_id)
    assert response["tokens"] == TOKENS and response["costUsd"] == pytest.approx(0.0000177)


@pytest.mark.parametrize("tools", [False, True])
def test_the_openai_sdk_streaming_without_include_usage_sees_no_difference(proxied, fake, trace_id, tools):
    model = "gpt-4o-mini-tools" if tools else "gpt-4o-mini"
    with _client(proxied, trace_id, 7002).chat.completions.with_streaming_response.create(
            model=model, messages=MESSAGES, stream=True) as response:
        received = b"".join(response.iter_bytes())
    assert received == unproxied(fake, "/chat/completions", {**BODY, "model": model}, 7002)
    chunks = list(_client(proxied, f"{trace_id}-parsed").chat.completions.create(model=model, messages=MESSAGES,
                                                                                  stream=True))
    assert all(chunk.usage is None and chunk.choices for chunk in chunks)
    for recorded in (trace_id, f"{trace_id}-parsed"):
        assert _recorded(proxied, recorded)["tokens"] == TOKENS


def test_a_stream_asking_for_usage_is_relayed_as_upstream_sends_it(proxied, fake, trace_id):
    chunks = list(_client(proxied, trace_id).chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}))
    assert chunks[-1].choices == [] and chunks[-1].usage.prompt_tokens == 120
    assert "include_usage" in str(fake.requests[-1].body)
    with httpx.stream("POST", f"{proxied.proxy}/v1/chat/completions",
                      json={**BODY, "stream_options": {"include_usage": True}}, headers={"X-Trace-ID": trace_id}) as r:
        assert b"".join(r.iter_raw()) == fake.sent[-1]
    assert _recorded(proxied, trace_id)["tokens"] == TOKENS


def test_responses_and_anthropic_streams_are_left_exact(proxied, fake, trace_id):
    with httpx.stream("POST", f"{proxied.proxy}/v1/responses", json={"model": "gpt-4o-mini", "input": "hi", "stream": True},
                      headers={"X-Trace-ID": trace_id}) as response:
        assert b"".join(response.iter_raw()) == fake.sent[-1]
    assert "stream_options" not in fake.requests[-1].body
    body = {"model": "claude-sonnet-4-5", "max_tokens": 5, "messages": MESSAGES, "stream": True}
    with httpx.stream("POST", f"{proxied.proxy}/v1/messages", json=body,
                      headers={"X-Trace-ID": f"{trace_id}-a", "anthropic-version": "2023-06-01"}) as response:
        assert b"".join(response.iter_raw()) == fake.sent[-1]
    assert "stream_options" not in fake.requests[-1].body


def test_whyops_proxy_stream_usage_0_relays_the_request_as_sent(fake, tmp_path, trace_id):
    env = {"WHYOPS_OPENAI_BASE_URL": fake.url + "/v1", "WHYOPS_PROXY_STREAM_USAGE": "0"}
    with run_server(tmp_path, env=env) as server:
        with httpx.stream("POST", f"{server.proxy}/v1/chat/completions", json=BODY,
                          headers={"X-Trace-ID": trace_id}) as response:
            assert b"".join(response.iter_raw()) == fake.sent[-1]
        assert "stream_options" not in fake.requests[-1].body
        response = _recorded(server, trace_id)
    assert "usage" not in response["metadata"] and response["costUsd"] is None


def test_asking_for_usage_keeps_the_clients_bytes_and_merges_its_options():
    raw = b' {"model": "m",  "stream": true, "messages": []}'
    asked = mapping.CHAT.asking_for_usage({"model": "m", "stream": True, "messages": []}, raw)
    assert asked == b' {"stream_options":{"include_usage":true},"model": "m",  "stream": true, "messages": []}'
    body = {"stream": True, "stream_options": {"include_obfuscation": False}}
    assert mapping.CHAT.asking_for_usage(body, b"{}") == \
        b'{"stream":true,"stream_options":{"include_obfuscation":false,"include_usage":true}}'
    assert mapping.CHAT.asking_for_usage({"stream_options": {"include_usage": True}}, b"{}") is None
    assert mapping.RESPONSES.asking_for_usage({"stream": True}, b"{}") is None


def _openai_stream(crlf: bool = False) -> tuple[bytes, bytes]:
    """A stream as OpenAI sends it when asked for usage, and as it sends it when not."""
    end = b"\r\n\r\n" if crlf else b"\n\n"
    head = b'{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"a \\"usage\\": null, b"}}]'
    asked = (b"data: " + head + b',"usage":null}' + end + b"data: " + head + b', "usage": null}' + end
             + b'data: {"id":"c","choices":[],"usage":{"prompt_tokens":1}}' + end + b"data: [DONE]" + end)
    plain = b"data: " + head + b"}" + end + b"data: " + head + b"}" + end + b"data: [DONE]" + end
    return asked, plain


@pytest.mark.parametrize("crlf", [False, True])
def test_the_stripper_gives_the_unasked_bytes_however_the_stream_is_cut(crlf):
    asked, plain = _openai_stream(crlf)
    for size in (1, 2, 7, 64, len(asked)):
        stripper = mapping.UsageStripper()
        out = b"".join(stripper.feed(asked[i:i + size]) for i in range(0, len(asked), size)) + stripper.close()
        assert out == plain, size
