"""Latency from an ingest request's response to the websocket message at each open page, and what open
pages cost the ingest requests themselves.

    python bench/live.py [--events 300] [--subscribers 1 20 1000] [--database-url postgresql://...]

Starts the real server, then for each subscriber count opens that many websockets on one trace, sends
events one at a time (10 ms apart) and reports, for every (event, subscriber) pair, the time from the
ingest response to that subscriber's message, beside the ingest round trip itself; the first row, with
no subscriber, is the ingest round trip to compare with. The subscribers run in a process of their own,
so the sender's clock measures the server, not the subscribers' own work. Events are announced before
the response is sent, so a message can arrive before the response (a negative latency).

With ``--database-url`` (or ``DATABASE_URL``), the same cases also run on a server on a fresh database
of that PostgreSQL, and print beside SQLite's.

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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest import KeepAliveClient  # noqa: E402
from tests.servers import fresh_database, run_server  # noqa: E402

CONNECTING_AT_ONCE = 50  # daphne (twisted) listens with a backlog of 50


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def subscribe(port: int, trace_id: str, subscribers: int, events: int, pipe) -> None:
    """In a process of its own: open the websockets, say so, then send back every ``event.new``'s arrival times."""

    async def run() -> dict[int, list[float]]:
        arrivals: dict[int, list[float]] = {}

        async def subscriber(ws) -> None:
            received = 0
            while received < events:
                message = json.loads(await ws.recv())
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
        await asyncio.wait_for(asyncio.gather(*(subscriber(ws) for ws in sockets)), 120 + events * subscribers / 100)
        for ws in sockets:
            await ws.close()
        return arrivals

    pipe.send(asyncio.run(run()))


async def measure(port: int, subscribers: int, events: int) -> tuple[list[float], list[float]]:
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
            await asyncio.to_thread(ours.recv)  # "ready"
        answered: dict[int, float] = {}
        round_trips = []
        for i in range(events):
            start = time.perf_counter()
            status, answer = await http.request("POST", "/api/events/ingest", body(i))
            answered[json.loads(answer)["id"]] = time.perf_counter()
            round_trips.append((time.perf_counter() - start) * 1000)
            await asyncio.sleep(0.01)
        arrivals = await asyncio.to_thread(ours.recv) if process else {}
        if process:
            process.join()
    latencies = [(at - answered[seq]) * 1000 for seq, times in arrivals.items() for at in times]
    return latencies, round_trips


async def cases(port: int, subscriber_counts: list[int], events: int) -> list[tuple]:
    await measure(port, 1, 50)  # warm-up
    return [(n, *await measure(port, n, events)) for n in [0, *subscriber_counts]]


def verdict(n: int, latencies: list[float], round_trips: list[float]) -> str:
    if n == 20:
        ok = percentile(latencies, 0.5) <= 20 and percentile(latencies, 0.99) <= 100
        return "msg p50<=20 p99<=100 " + ("ok" if ok else "MISSED")
    if n == 1000:
        return "ingest p99<=50 " + ("ok" if percentile(round_trips, 0.99) <= 50 else "MISSED")
    return ""


async def main(events: int, subscriber_counts: list[int], database_url: str | None) -> None:
    results = {}
    for database in ["sqlite", "postgres"] if database_url else ["sqlite"]:
        env = {"DATABASE_URL": fresh_database(database_url)} if database == "postgres" else {}
        with tempfile.TemporaryDirectory() as data_dir, run_server(Path(data_dir), env=env) as server:
            results[database] = await cases(server.port, subscriber_counts, events)
    print(f"{'database':>9} {'subscribers':>11} {'msg p50 ms':>11} {'msg p99 ms':>11} {'ingest p50 ms':>14} "
          f"{'ingest p99 ms':>14}  target")
    for database, rows in results.items():
        for n, latencies, round_trips in rows:
            print(f"{database:>9} {n:>11} {percentile(latencies, 0.5):11.2f} {percentile(latencies, 0.99):11.2f} "
                  f"{statistics.median(round_trips):14.2f} {percentile(round_trips, 0.99):14.2f}  "
                  f"{verdict(n, latencies, round_trips)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--subscribers", type=int, nargs="+", default=[1, 20],
                        help="subscriber counts to measure after the one without (default: 1 20)")
    parser.add_argument("--database-url", help="a PostgreSQL server to measure beside SQLite (default: DATABASE_URL)")
    arguments = parser.parse_args()
    # Taken out of the environment: the SQLite server must not inherit it.
    database_url = arguments.database_url or os.environ.pop("DATABASE_URL", None)
    asyncio.run(main(arguments.events, arguments.subscribers, database_url))
