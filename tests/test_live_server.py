"""Live updates through real servers: one process, and two processes sharing a Redis channel layer."""

import asyncio
import json
import shutil
import subprocess
import time
import uuid

import httpx
import pytest
from channels_redis.core import RedisChannelLayer
from websockets.asyncio.client import connect
from whyops import WhyOps

from .servers import free_port, run_server


def sdk_for(server) -> WhyOps:
    return WhyOps(api_key="k", agent_name="live-agent", agent_metadata={"systemPrompt": "s", "tools": []},
                  analyse_base_url=server.api, proxy_base_url=server.proxy)


async def listen(server, path):
    ws = await connect(f"ws://127.0.0.1:{server.port}{path}", origin=f"http://127.0.0.1:{server.port}")
    assert json.loads(await ws.recv())["type"] == "hello"
    return ws


async def next_message(ws, kind, timeout=1.0, where=lambda message: True):
    deadline = time.monotonic() + timeout
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), deadline - time.monotonic()))
        if message["type"] == kind and where(message):
            return message


async def assert_live(listening_server, sending_server):
    trace_id = f"live-{uuid.uuid4().hex}"
    trace = sdk_for(sending_server).trace(trace_id)
    await trace.user_message([{"role": "user", "content": "first"}])
    list_ws = await listen(listening_server, "/ws/traces/")
    trace_ws = await listen(listening_server, f"/ws/traces/{trace_id}")
    try:
        await trace.error("it broke", status=500)
        sent = time.monotonic()
        # The first event's announcement may come after the pages opened (over Redis, say): it is
        # already on them, and the pages skip it; what counts is that the error's comes within a second.
        new = await next_message(trace_ws, "event.new", where=lambda m: m["event"]["eventType"] == "error")
        update = await next_message(list_ws, "trace.update", where=lambda m: m["trace"]["errorCount"] == 1)
        assert time.monotonic() - sent < 1.0
        assert new["event"]["content"]["message"] == "it broke" and update["trace"]["traceId"] == trace_id
    finally:
        await list_ws.close()
        await trace_ws.close()


async def test_an_sdk_event_reaches_the_open_pages_within_a_second(server):
    await assert_live(server, server)


@pytest.fixture
def redis_url():
    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    process = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no"], stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True).stdout.strip() == b"PONG":
                break
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(5)


async def test_two_server_processes_share_live_updates_through_redis(tmp_path, redis_url):
    env = {"REDIS_URL": redis_url}
    with run_server(tmp_path, env) as first, run_server(tmp_path, env) as second:
        await assert_live(listening_server=first, sending_server=second)
        await assert_live(listening_server=second, sending_server=first)


async def test_hundreds_of_pages_open_through_quiet_redis_receives_all_hear_the_next_event(tmp_path, redis_url):
    """Each wait for a Redis message is one BZPOPMIN of ``brpop_timeout`` seconds; a page open through
    several of them must not be closed (1011) by one of them timing out, and must hear what comes next."""
    pages = 300
    trace_id = f"quiet-{uuid.uuid4().hex}"
    event = {"eventType": "user_message", "traceId": trace_id, "agentName": "live-agent",
             "content": {"messages": [{"role": "user", "content": "hello"}]}}
    with run_server(tmp_path, {"REDIS_URL": redis_url}) as server:
        assert httpx.post(f"{server.api}/events/ingest", json=event).status_code == 201
        sockets = []
        for _ in range(0, pages, 50):  # daphne listens with a backlog of 50
            sockets += await asyncio.gather(*(listen(server, f"/ws/traces/{trace_id}") for _ in range(50)))
        try:
            await asyncio.sleep(2 * RedisChannelLayer.brpop_timeout + 1)
            assert httpx.post(f"{server.api}/events/ingest", json=event).status_code == 201
            heard = await asyncio.gather(*(next_message(ws, "event.new", timeout=30) for ws in sockets),
                                         return_exceptions=True)
            assert [h for h in heard if isinstance(h, BaseException)] == []
            assert {h["event"]["stepId"] for h in heard} == {2}
        finally:
            await asyncio.gather(*(ws.close() for ws in sockets))
        # Nor did the hub's own receive time out (it retries, but a message popped then is lost).
        log = (tmp_path / f"server-{server.port}.log").read_text()
        assert "could not receive live messages" not in log and "Exception inside application" not in log
