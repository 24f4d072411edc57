"""Two server processes on one PostgreSQL database and one Redis (the PostgreSQL lane, .ci/postgres-lane):
live across servers, steps of one trace numbered once across both, and a kill -9 of one losing nothing
it acknowledged."""

import os
import signal
import threading

import httpx
import pytest

from .servers import ON_POSTGRES, run_server, shared_services_env
from .test_durability import Load
from .test_live_server import assert_live, sdk_for

pytestmark = pytest.mark.skipif(not (ON_POSTGRES and os.environ.get("REDIS_URL")),
                                reason="needs DATABASE_URL (PostgreSQL) and REDIS_URL: .ci/postgres-lane")


@pytest.fixture
def two_servers(tmp_path):
    shared = shared_services_env(tmp_path)  # one database and Redis db for both
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with run_server(tmp_path / "a", env=shared) as first, run_server(tmp_path / "b", env=shared) as second:
        yield first, second


async def test_a_page_on_one_server_sees_sdk_events_sent_to_the_other_live(two_servers):
    first, second = two_servers
    await assert_live(listening_server=first, sending_server=second)
    await assert_live(listening_server=second, sending_server=first)


def test_ten_sdk_writers_on_one_trace_across_both_servers_get_unique_contiguous_steps(two_servers):
    per_writer = 30

    def write(server, n: int) -> None:
        trace = sdk_for(server).trace("shared-trace")
        for i in range(per_writer):
            trace.user_message_sync([{"role": "user", "content": f"writer {n} message {i}"}])

    writers = [threading.Thread(target=write, args=(two_servers[n % 2], n)) for n in range(10)]
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    for server in two_servers:
        events = httpx.get(f"{server.api}/traces/shared-trace", timeout=30).json()["events"]
        assert sorted(e["stepId"] for e in events) == list(range(1, 10 * per_writer + 1))
        assert len({e["content"]["messages"][0]["content"] for e in events}) == 10 * per_writer


def test_killing_one_server_under_load_loses_nothing_it_acknowledged(two_servers):
    first, second = two_servers
    with Load(first, ingest_clients=3, name="killed") as killed, Load(second, ingest_clients=3, name="kept") as kept:
        killed.wait_for(200)
        os.kill(first.process.pid, signal.SIGKILL)
        kept.wait_for(100)  # the other server carries on
    killed.assert_all_stored(second)
    kept.assert_all_stored(second)
