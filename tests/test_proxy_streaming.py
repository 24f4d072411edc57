"""Streams are passed on as they arrive, and recorded whenever and however the client hangs up."""

import httpx

from .proxy_fixtures import read_trace, unproxied

BODY = {"model": "gpt-4o-mini-gated", "messages": [{"role": "user", "content": "hi"}], "stream": True}


def test_the_client_holds_the_first_chunk_before_upstream_sends_the_second(proxied, fake, trace_id):
    with httpx.stream("POST", f"{proxied.proxy}/v1/chat/completions", json=BODY,
                      headers={"X-Trace-ID": trace_id, "X-Fake-Id": "9001"}, timeout=5) as response:
        chunks = response.iter_raw()
        first = next(chunks)  # would time out if the proxy waited for more of the stream
        assert first.startswith(b"data: ") and b'"role": "assistant"' in first
        assert not fake.gate.is_set()
        fake.gate.set()
        received = first + b"".join(chunks)
    assert received == unproxied(fake, "/chat/completions", BODY, 9001)
    assert read_trace(proxied, trace_id, 2)["events"][1]["content"]["content"] == "Hello world"


def test_a_client_hanging_up_right_after_done_still_gets_its_call_recorded(proxied, fake, trace_id):
    body = {**BODY, "model": "gpt-4o-mini"}
    with httpx.stream("POST", f"{proxied.proxy}/v1/chat/completions", json=body,
                      headers={"X-Trace-ID": trace_id}) as response:
        for chunk in response.iter_raw():
            if b"[DONE]" in chunk:
                break  # the OpenAI SDK's way: close as soon as the end marker is read
    response = read_trace(proxied, trace_id, 2)["events"][1]
    assert response["content"] == {"content": "Hello world", "finishReason": "stop"}
    assert "interrupted" not in response["metadata"]


def test_a_client_hanging_up_mid_stream_leaves_a_partial_response_marked_interrupted(proxied, fake, trace_id):
    fake.gate_before = 3  # the role chunk, "Hello" and " world" arrive; then upstream waits
    received = b""
    body = {**BODY, "stream_options": {"include_usage": True}}  # relayed as upstream sends it
    with httpx.stream("POST", f"{proxied.proxy}/v1/chat/completions", json=body,
                      headers={"X-Trace-ID": trace_id}, timeout=5) as response:
        for chunk in response.iter_raw():
            received += chunk
            if received.count(b"data: ") == 3:
                break
    trace = read_trace(proxied, trace_id, 2)
    fake.gate.set()
    response = trace["events"][1]
    assert response["eventType"] == "llm_response"
    assert response["content"]["content"] == "Hello world"
    assert "finishReason" not in response["content"]
    assert response["metadata"]["interrupted"] is True
    exchange = httpx.get(f"{proxied.api}/exchanges/{response['exchangeId']}").json()
    assert exchange["interrupted"] is True
    assert "".join(text for _, text in exchange["chunks"]).encode() == received
