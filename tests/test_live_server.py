"""Live updates through real servers: one process, and two processes sharing a Redis channel layer."""

import asyncio
import json
import shutil
import subprocess
import time
import uuid

import pytest
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


async def next_message(ws, kind, timeout=1.0):
    deadline = time.monotonic() + timeout
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), deadline - time.monotonic()))
        if message["type"] == kind:
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
        new = await next_message(trace_ws, "event.new")
        update = await next_message(list_ws, "trace.update")
        assert time.monotonic() - sent < 1.0
        assert new["event"]["eventType"] == "error" and new["event"]["content"]["message"] == "it broke"
        assert update["trace"]["traceId"] == trace_id and update["trace"]["errorCount"] == 1
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
