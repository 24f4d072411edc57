"""Fixtures for the proxy tests (a pytest plugin, see conftest): a fake upstream and a live
whyops-local server proxying to it, and helpers to read what was recorded."""

import time
import uuid

import httpx
import pytest

from whyops_local.demo.fake_provider import FakeUpstream

from .servers import run_server


@pytest.fixture(scope="session")
def fake_upstream():
    with FakeUpstream() as running:
        yield running


@pytest.fixture(scope="session")
def proxied(fake_upstream, tmp_path_factory):
    """A whyops-local server whose OpenAI and Anthropic upstreams are the fake one."""
    env = {"WHYOPS_OPENAI_BASE_URL": fake_upstream.url + "/v1", "WHYOPS_ANTHROPIC_BASE_URL": fake_upstream.url}
    with run_server(tmp_path_factory.mktemp("whyops-proxy"), env=env) as running:
        yield running


@pytest.fixture
def fake(fake_upstream):
    """The fake upstream, its gate closed and no delay, for one test."""
    fake_upstream.gate.clear()
    fake_upstream.chunk_delay = 0.0
    fake_upstream.gate_before = 1
    yield fake_upstream
    fake_upstream.gate.set()


@pytest.fixture
def trace_id() -> str:
    return f"test-{uuid.uuid4()}"


def read_trace(server, trace_id: str, events: int = 1, timeout: float = 20) -> dict:
    """The trace from the read API, once it holds at least ``events`` events (or as it is after ``timeout``:
    a proxied call is recorded after its answer, later still on a loaded machine or on PostgreSQL)."""
    deadline = time.monotonic() + timeout
    while True:
        answer = httpx.get(f"{server.api}/traces/{trace_id}")
        if answer.status_code == 200 and len(answer.json()["events"]) >= events or time.monotonic() > deadline:
            assert answer.status_code == 200, answer.text
            return answer.json()
        time.sleep(0.05)


def kinds(trace: dict) -> list[str]:
    return [event["eventType"] for event in trace["events"]]


def unproxied(fake, path: str, body: dict, fake_id: int) -> bytes:
    """The bytes the fake upstream answers ``body`` sent straight to it, its ids numbered ``fake_id``:
    what a client gets without the proxy in between."""
    received = []
    with httpx.stream("POST", f"{fake.url}/v1{path}", json=body, headers={"X-Fake-Id": str(fake_id)}) as response:
        try:
            received.extend(response.iter_raw())
        except httpx.RemoteProtocolError:  # a stream the fake cuts (``cut`` models)
            pass
    return b"".join(received)
