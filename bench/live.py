"""Latency from an ingest request's response to the websocket message at each open page.

    python bench/live.py [--events 300]

Starts the real server, opens 1 and then 20 subscribers on one trace's websocket, sends events one
at a time (10 ms apart) and reports, for every (event, subscriber) pair, the time from the ingest
response to that subscriber's message, beside the ingest round trip itself. Events are announced
before the response is sent, so a message can arrive before the response (a negative latency).
"""

import argparse
import asyncio
import json
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
from tests.servers import run_server  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(port: int, subscribers: int, events: int) -> tuple[list[float], list[float]]:
    trace_id = f"live-{uuid.uuid4().hex[:8]}"
    def body(i: int) -> bytes:
        return json.dumps({"eventType": "user_message", "traceId": trace_id, "agentName": "bench-live",
                           "content": {"messages": [{"role": "user", "content": f"message {i}"}]}}).encode()
    async with KeepAliveClient(port) as http:
        await http.request("POST", "/api/events/ingest", body(-1))  # the trace must exist to subscribe
        arrivals: dict[int, list[float]] = {}

        async def subscriber(ready: asyncio.Event) -> None:
            async with connect(f"ws://127.0.0.1:{port}/ws/traces/{trace_id}", origin=f"http://127.0.0.1:{port}") as ws:
                await ws.recv()  # hello
                ready.set()
                received = 0
                while received < events:
                    message = json.loads(await ws.recv())
                    if message["type"] == "event.new":
                        arrivals.setdefault(message["seq"], []).append(time.perf_counter())
                        received += 1

        readies = [asyncio.Event() for _ in range(subscribers)]
        tasks = [asyncio.create_task(subscriber(ready)) for ready in readies]
        await asyncio.gather(*(ready.wait() for ready in readies))
        answered: dict[int, float] = {}
        round_trips = []
        for i in range(events):
            start = time.perf_counter()
            status, answer = await http.request("POST", "/api/events/ingest", body(i))
            answered[json.loads(answer)["id"]] = time.perf_counter()
            round_trips.append((answered[json.loads(answer)["id"]] - start) * 1000)
            await asyncio.sleep(0.01)
        await asyncio.wait_for(asyncio.gather(*tasks), 30)
    latencies = [(at - answered[seq]) * 1000 for seq, times in arrivals.items() for at in times]
    return latencies, round_trips


async def main(events: int) -> None:
    with tempfile.TemporaryDirectory() as data_dir, run_server(Path(data_dir)) as server:
        await measure(server.port, 1, 50)  # warm-up
        rows = [(n, *await measure(server.port, n, events)) for n in (1, 20)]
    print(f"{'subscribers':>11} {'msg p50 ms':>11} {'msg p99 ms':>11} {'ingest p50 ms':>14} {'ingest p99 ms':>14}  target")
    for n, latencies, round_trips in rows:
        p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
        verdict = ("ok" if p50 <= 20 and p99 <= 100 else "MISSED") if n == 20 else ""
        print(f"{n:>11} {p50:11.2f} {p99:11.2f} {statistics.median(round_trips):14.2f} "
              f"{percentile(round_trips, 0.99):14.2f}  {'p50<=20 p99<=100 ' + verdict if n == 20 else ''}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300)
    asyncio.run(main(parser.parse_args().events))
