"""Latency from an ingest request's response to the websocket message at each open page, and what open
pages cost the ingest requests themselves.

    python bench/live.py [--events 300] [--subscribers 1 20 1000] [--database-url postgresql://...]
                         [--redis-url redis://...]

Starts the real server, then for each subscriber count opens that many websockets on one trace, sends
events one at a time (10 ms apart) and reports, for every (event, subscriber) pair, the time from the
ingest response to that subscriber's message, beside the ingest round trip itself, and the share of
those messages that arrived at all (a page closed by the server, 1011, stops hearing); the first row,
with no subscriber, is the ingest round trip to compare with. The subscribers run in a process of their own,
so the sender's clock measures the server, not the subscribers' own work. Events are announced before
the response is sent, so a message can arrive before the response (a negative latency).

With ``--database-url`` (or ``DATABASE_URL``) and/or ``--redis-url`` (or ``REDIS_URL``), the same cases
also run on a server on a fresh database of that PostgreSQL and with that Redis as its channel layer,
each row beside SQLite's (with the in-memory layer). ``.ci/services`` starts a throwaway pair:

    .ci/services .venv/bin/python bench/live.py --subscribers 1000

Targets: with 20 subscribers, messages p50 <= 20 ms and p99 <= 100 ms; with 1,000 subscribers, ingest
p99 <= 50 ms.
"""

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest import KeepAliveClient  # noqa: E402
from tests.servers import fresh_database, run_server  # noqa: E402

CONNECTING_AT_ONCE = 50  # daphne (twisted) listens with a backlog of 50


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def subscribe(port: int, trace_id: str, subscribers: int, events: int, pipe) -> None:
    """In a process of its own: open the websockets, say so, then send back every ``event.new``'s arrival
    times and how many websockets the server closed."""

    async def run() -> tuple[dict[int, list[float]], int]:
        arrivals: dict[int, list[float]] = {}
        closed = 0

        async def subscriber(ws) -> None:
            nonlocal closed
            received = 0
            while received < events:
                try:
                    message = json.loads(await ws.recv())
                except ConnectionClosed:
                    closed += 1
                    return
                if message["type"] == "event.new":
                    arrivals.setdefault(message["seq"], []).append(time.perf_counter())
                    received += 1

        sockets = []
        for start in range(0, subscribers, CONNECTING_AT_ONCE):
            opened = await asyncio.gather(*(
                connect(f"ws://127.0.0.1:{port}/ws/traces/{trace_id}", origin=f"http://127.0.0.1:{port}",
                        max_queue=None, open_timeout=60, ping_interval=None)
                for _ in range(start, min(subscribers, start + CONNECTING_AT_ONCE))))
            for ws in opened:
                await ws.recv()  # hello
            sockets.extend(opened)
        pipe.send("ready")
        # Generous: with 1,000 pages the fan-out (twisted and autobahn, ~0.1-0.3 ms a frame) trails far behind.
        # What has not arrived by then counts as not delivered.
        listening = [asyncio.ensure_future(subscriber(ws)) for ws in sockets]
        _, late = await asyncio.wait(listening, timeout=120 + events * subscribers / 100)
        for task in late:
            task.cancel()
        for ws in sockets:
            await ws.close()
        return arrivals, closed

    pipe.send(asyncio.run(run()))


async def measure(port: int, subscribers: int, events: int) -> tuple[list[float], list[float], int]:
    """(message latencies, ingest round trips, websockets the server closed), all in ms but the last."""
    trace_id = f"live-{uuid.uuid4().hex[:8]}"

    def body(i: int) -> bytes:
        return json.dumps({"eventType": "user_message", "traceId": trace_id, "agentName": "bench-live",
                           "content": {"messages": [{"role": "user", "content": f"message {i}"}]}}).encode()

    async with KeepAliveClient(port) as http:
        await http.request("POST", "/api/events/ingest", body(-1))  # the trace must exist to subscribe
        ours, theirs = multiprocessing.get_context("spawn").Pipe()
        process = None
        if subscribers:
            process = multiprocessing.get_context("spawn").Process(
                target=subscribe, args=(port, trace_id, subscribers, events, theirs))
            process.start()
            theirs.close()  # ours.recv() then raises EOFError if the subscribers' process dies
            await asyncio.to_thread(ours.recv)  # "ready"
        answered: dict[int, float] = {}
        round_trips = []
        for i in range(events):
            start = time.perf_counter()
            status, answer = await http.request("POST", "/api/events/ingest", body(i))
            answered[json.loads(answer)["id"]] = time.perf_counter()
            round_trips.append((time.perf_counter() - start) * 1000)
            await asyncio.sleep(0.01)
        arrivals, closed = await asyncio.to_thread(ours.recv) if process else ({}, 0)
        if process:
            process.join()
    latencies = [(at - answered[seq]) * 1000 for seq, times in arrivals.items() for at in times]
    return latencies, round_trips, closed


async def cases(port: int, subscriber_counts: list[int], events: int) -> list[tuple]:
    await measure(port, 1, 50)  # warm-up
    return [(n, *await measure(port, n, events)) for n in [0, *subscriber_counts]]


def verdict(n: int, latencies: list[float], round_trips: list[float], delivered: float) -> str:
    if n == 20:
        ok = percentile(latencies, 0.5) <= 20 and percentile(latencies, 0.99) <= 100 and delivered == 1
        return "msg p50<=20 p99<=100, all delivered " + ("ok" if ok else "MISSED")
    if n == 1000:
        ok = percentile(round_trips, 0.99) <= 50 and delivered == 1
        return "ingest p99<=50, all delivered " + ("ok" if ok else "MISSED")
    return ""


def setups(database_url: str | None, redis_url: str | None) -> dict[str, dict[str, str]]:
    """The servers to measure, by name: SQLite with the in-memory layer, then the services given."""
    if not (database_url or redis_url):
        return {"sqlite": {}}
    other = {"DATABASE_URL": fresh_database(database_url)} if database_url else {}
    if redis_url:
        other["REDIS_URL"] = redis_url
    name = "+".join(label for label, url in (("postgres", database_url), ("redis", redis_url)) if url)
    return {"sqlite": {}, name: other}


async def main(events: int, subscriber_counts: list[int], database_url: str | None, redis_url: str | None) -> None:
    results = {}
    for name, env in setups(database_url, redis_url).items():
        with tempfile.TemporaryDirectory() as data_dir, run_server(Path(data_dir), env=env) as server:
            results[name] = await cases(server.port, subscriber_counts, events)
    print(f"{'server':>14} {'subscribers':>11} {'msg p50 ms':>11} {'msg p99 ms':>11} {'delivered':>10} "
          f"{'closed':>6} {'ingest p50 ms':>14} {'ingest p99 ms':>14}  target")
    for row in range(len(subscriber_counts) + 1):  # each subscriber count's rows together
        for name, rows in results.items():
            n, latencies, round_trips, closed = rows[row]
            delivered = len(latencies) / (n * events) if n else 1
            print(f"{name:>14} {n:>11} {percentile(latencies, 0.5):11.2f} {percentile(latencies, 0.99):11.2f} "
                  f"{f'{delivered:.2%}' if n else '-':>10} {closed:6} {statistics.median(round_trips):14.2f} "
                  f"{percentile(round_trips, 0.99):14.2f}  {verdict(n, latencies, round_trips, delivered)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--subscribers", type=int, nargs="+", default=[1, 20],
                        help="subscriber counts to measure after the one without (default: 1 20)")
    parser.add_argument("--database-url", help="a PostgreSQL server to measure beside SQLite (default: DATABASE_URL)")
    parser.add_argument("--redis-url", help="a Redis for that server's channel layer (default: REDIS_URL)")
    arguments = parser.parse_args()
    database_url = arguments.database_url or os.environ.get("DATABASE_URL")
    redis_url = arguments.redis_url or os.environ.get("REDIS_URL")
    # Taken out of the environment: the SQLite server must not inherit them.
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("REDIS_URL", None)
    asyncio.run(main(arguments.events, arguments.subscribers, database_url, redis_url))
