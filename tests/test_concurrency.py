"""Many SDK clients at once against one real server: nothing lost, nothing doubled, no lock errors."""

import asyncio
import uuid

import httpx


async def test_the_same_idempotency_key_from_10_clients_at_once_is_stored_once(server):
    trace_id = f"idem-{uuid.uuid4().hex}"
    body = {"eventType": "user_message", "traceId": trace_id, "agentName": "idem", "idempotencyKey": "retry-1",
            "content": {"messages": [{"role": "user", "content": "yes"}]}}
    async with httpx.AsyncClient(timeout=30) as client:
        responses = await asyncio.gather(*[client.post(f"{server.api}/events/ingest", json=body) for _ in range(10)])
    assert [r.status_code for r in responses] == [201] * 10
    assert sorted(r.json()["status"] for r in responses) == ["saved"] + ["skipped"] * 9
    assert len({r.json()["id"] for r in responses}) == 1
    trace = httpx.get(f"{server.api}/traces/{trace_id}").json()
    assert trace["eventCount"] == 1 and len(trace["events"]) == 1


async def test_20_clients_sending_200_events_each_lose_nothing(server):
    run = uuid.uuid4().hex[:8]

    async def client(n: int) -> None:
        # Each client keeps its own connection, as an agent process would; the SDK itself opens a
        # new one per event, which makes the client, not the server, the slow part of this test.
        async with httpx.AsyncClient(timeout=60) as http:
            for i in range(200):
                response = await http.post(f"{server.api}/events/ingest", json={
                    "eventType": "user_message", "traceId": f"load-{run}-{n % 5}",  # four clients share each trace
                    "agentName": f"load-{run}", "content": {"messages": [{"role": "user", "content": f"{n}/{i}"}]}})
                assert response.status_code == 201, response.text

    await asyncio.gather(*[client(n) for n in range(20)])

    for n in range(5):
        trace = httpx.get(f"{server.api}/traces/load-{run}-{n}", timeout=30).json()
        assert trace["eventCount"] == len(trace["events"]) == len({e["stepId"] for e in trace["events"]}) == 800
    listed = httpx.get(f"{server.api}/traces", params={"agent": f"load-{run}", "limit": 10}).json()
    assert sorted(t["eventCount"] for t in listed["traces"]) == [800] * 5


def test_two_server_processes_on_one_sqlite_file_keep_one_trace_consistent(tmp_path):
    """Each server's writer caches rows between transactions; the other's commits must invalidate them."""
    from .servers import run_server

    with run_server(tmp_path) as first, run_server(tmp_path) as second:
        for i in range(30):
            target = (first, second)[i % 3 % 2]  # irregular alternation, runs of two on one server
            response = httpx.post(f"{target.api}/events/ingest", json={
                "eventType": "llm_response", "traceId": "shared", "agentName": "two",
                "metadata": {"model": "gpt-4o-mini", "provider": "openai", "usage": {"promptTokens": 10}}})
            assert response.status_code == 201
            assert response.json()["stepId"] == i + 1
        for server in (first, second):
            trace = httpx.get(f"{server.api}/traces/shared").json()
            assert trace["eventCount"] == 30 and trace["usage"]["promptTokens"] == 300 and trace["llmCalls"] == 30


async def test_a_trace_read_while_it_grows_has_totals_that_agree_with_its_events(server):
    """The trace's row and its events are read in one snapshot: a commit between the two reads would give
    totals (and flags) that lag the events listed beside them."""
    trace_id = f"growing-{uuid.uuid4().hex}"
    sent, done = 400, asyncio.Event()

    async def send() -> None:
        async with httpx.AsyncClient(timeout=60) as http:
            for i in range(sent):
                response = await http.post(f"{server.api}/events/ingest", json={
                    "eventType": "llm_response", "traceId": trace_id, "agentName": "growing",
                    "content": {"content": f"answer {i}"}, "metadata": {"model": "gpt-4o-mini", "provider": "openai"}})
                assert response.status_code == 201, response.text
        done.set()

    async def read() -> list[tuple[int, int, int]]:
        disagreed = []
        async with httpx.AsyncClient(timeout=60) as http:
            while not done.is_set():
                answer = await http.get(f"{server.api}/traces/{trace_id}")
                if answer.status_code == 200:
                    trace = answer.json()
                    if not trace["eventCount"] == trace["llmCalls"] == len(trace["events"]):
                        disagreed.append((trace["eventCount"], trace["llmCalls"], len(trace["events"])))
        return disagreed

    _, disagreed = await asyncio.gather(send(), read())
    assert disagreed == []
