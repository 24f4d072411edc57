"""Events per second through HTTP into a running whyops-local, beside raw sqlite3 inserts of the same rows.

    python bench/ingest.py [--events 4000] [--flags] [--database-url postgresql://...]

Starts the real server (manage.py runserver, daphne) on a free port with a throwaway data dir,
sends events with a minimal keep-alive HTTP/1.1 client (so the client's own cost stays small on
a 2-core machine), and stops the clock only once every event reads back through the read API.
The raw rate is plain sqlite3 (WAL, synchronous=NORMAL) inserting the same JSON rows, one
transaction per event or per 100 events, measured in the same run.

Targets: single-event requests from 8 clients >= 1,000 events/s; array ingest >= 10,000
events/s, a throughput, measured with 4 senders. A lone sender waits for each answer before it
sends the next array, so its rate is a latency figure (client, server and writer one after the
other); it is printed beside, without a target.

With ``--database-url`` (or ``DATABASE_URL``), the same cases also run on a server on a fresh database
of that PostgreSQL, printed beside SQLite's (the raw sqlite3 figures are SQLite's alone).

``--flags`` measures what finding flags as events are stored costs: a second server with
``WHYOPS_FLAGS=0`` runs beside the first, each case alternates between them (``--rounds`` rounds,
the order swapped every round), and the rates print side by side with the CPU time the server and
its writer spent per event (read from /proc: on a shared machine, CPU time moves far less than a
rate does). The cost is the median of each round's pair, measured one right after the other, so a
slow minute of a shared machine moves one pair rather than one side; the spread prints beside it.
Target: flags cost < 10%. ``--before DIR`` measures another checkout (say ``/work/main``) beside
this one the same way.
"""

import argparse
import asyncio
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.servers import fresh_database, run_server  # noqa: E402


class KeepAliveClient:
    """Just enough HTTP/1.1 to POST JSON and GET on one connection."""

    def __init__(self, port: int):
        self.port = port

    async def __aenter__(self):
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc):
        self.writer.close()

    async def request(self, method: str, path: str, body: bytes = b"",
                      content_type: str = "application/json") -> tuple[int, bytes]:
        head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n")
        self.writer.write(head.encode() + body)
        status_line = await self.reader.readline()
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        return int(status_line.split()[1]), await self.reader.readexactly(length)


def event(run: str, client: int, i: int) -> dict:
    """The i-th event of an agent run: turns of user message, LLM call, tool span, final answer."""
    base = {"traceId": f"{run}-{client}", "agentName": f"bench-{run}"}
    usage = {"promptTokens": 900 + i % 500, "completionTokens": 40 + i % 60, "cacheReadTokens": 512}
    llm = {"model": "gpt-4o-mini", "provider": "openai", "latencyMs": 420 + i % 100, "usage": usage}
    tool = [{"name": "search_orders", "arguments": {"orderId": str(i)}}]
    kind = i % 5
    if kind == 0:
        return {**base, "eventType": "user_message",
                "content": {"messages": [{"role": "user", "content": f"Where is order {i}?"}]}}
    if kind == 1:
        return {**base, "eventType": "llm_response", "metadata": llm, "content": {
            "toolCalls": [{"id": f"call_{i}", "function": {"name": "search_orders", "arguments": f'{{"orderId":"{i}"}}'}}],
            "finishReason": "tool_calls"}}
    if kind == 2:
        return {**base, "eventType": "tool_call_request", "spanId": f"{run}-{client}-{i}",
                "metadata": {"tool": "search_orders", "latencyMs": 3}, "content": {"toolCalls": tool}}
    if kind == 3:
        return {**base, "eventType": "tool_call_response", "spanId": f"{run}-{client}-{i - 1}",
                "metadata": {"tool": "search_orders", "latencyMs": 85},
                "content": {"toolCalls": tool, "toolResults": {"status": "shipped"}}}
    return {**base, "eventType": "llm_response", "metadata": llm,
            "content": {"content": f"Order {i} has shipped.", "finishReason": "stop"}}


async def readable_count(port: int, run: str) -> int:
    async with KeepAliveClient(port) as http:
        status, body = await http.request("GET", f"/api/traces?agent=bench-{run}&limit=500")
        assert status == 200, body
        return sum(t["eventCount"] for t in json.loads(body)["traces"])


async def http_rate(port: int, events: int, clients: int, per_request: int) -> float:
    run = uuid.uuid4().hex[:8]
    requests_per_client = events // clients // per_request

    async def client(n: int) -> None:
        async with KeepAliveClient(port) as http:
            for r in range(requests_per_client):
                items = [event(run, n, r * per_request + j) for j in range(per_request)]
                body = json.dumps(items[0] if per_request == 1 else items).encode()
                status, answer = await http.request("POST", "/api/events/ingest", body)
                assert status == 201, answer

    start = time.perf_counter()
    await asyncio.gather(*[client(n) for n in range(clients)])
    sent = requests_per_client * per_request * clients
    while await readable_count(port, run) < sent:  # ingested = readable, not merely answered
        await asyncio.sleep(0.001)
    return sent / (time.perf_counter() - start)


def raw_sqlite_rate(events: int, per_transaction: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        db = sqlite3.connect(Path(tmp) / "raw.sqlite3", isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("CREATE TABLE event (id INTEGER PRIMARY KEY, trace_id TEXT, event_type TEXT, step_id INTEGER,"
                   " content TEXT, metadata TEXT, timestamp TEXT)")
        db.execute("CREATE INDEX event_trace_step ON event (trace_id, step_id, id)")
        rows = [("raw", e["eventType"], i, json.dumps(e["content"]), json.dumps(e.get("metadata", {})),
                 "2026-01-01T00:00:00Z") for i, e in enumerate(event("raw", 0, i) for i in range(events))]
        start = time.perf_counter()
        for offset in range(0, events, per_transaction):
            db.execute("BEGIN IMMEDIATE")
            db.executemany("INSERT INTO event (trace_id, event_type, step_id, content, metadata, timestamp)"
                           " VALUES (?, ?, ?, ?, ?, ?)", rows[offset:offset + per_transaction])
            db.execute("COMMIT")
        elapsed = time.perf_counter() - start
        db.close()
    return events / elapsed


CASES = [("single-event requests, 1 client", 1 / 4, 1, 1, 0), ("single-event requests, 8 clients", 1, 8, 1, 1_000),
         ("100-event arrays, 1 client", 5, 1, 100, 0), ("100-event arrays, 4 clients", 5, 4, 100, 10_000)]


async def rates(port: int, events: int) -> list[float]:
    await http_rate(port, 400, 8, 1)  # warm-up: imports, first connections, page cache
    return [await http_rate(port, int(events * scale), clients, per_request) for _, scale, clients, per_request, _ in CASES]


async def main(events: int, database_url: str | None) -> None:
    with tempfile.TemporaryDirectory() as data_dir, run_server(Path(data_dir)) as server:
        sqlite_rates = await rates(server.port, events)
    postgres_rates = [None] * len(CASES)
    if database_url:
        with (tempfile.TemporaryDirectory() as data_dir,
              run_server(Path(data_dir), env={"DATABASE_URL": fresh_database(database_url)}) as server):
            postgres_rates = await rates(server.port, events)
    print(f"{'case':36} {'events/s':>10} {'raw sqlite3/s':>14} {'ratio':>7} {'target':>8}       "
          f"{'PostgreSQL/s' if database_url else ''}")
    for (name, scale, _, per_request, target), rate, postgres in zip(CASES, sqlite_rates, postgres_rates, strict=True):
        raw = raw_sqlite_rate(int(events * scale), per_request)
        verdict = "" if not target else ("ok" if rate >= target else "MISSED")
        print(f"{name:36} {rate:10.0f} {raw:14.0f} {rate / raw:7.3f} {target or '':>8} {verdict:6} "
              f"{'' if postgres is None else f'{postgres:12.0f}'}")


FLAG_CASES = [("single-event requests, 1 client", 4, 1, 1), ("single-event requests, 8 clients", 1, 8, 1),
              ("100-event arrays, 1 client", 1 / 5, 1, 100), ("100-event arrays, 4 clients", 1 / 5, 4, 100)]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and all its descendants (the server and its writer)."""
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    total = (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            children = (task / "children").read_text().split()
        except FileNotFoundError:  # a thread that has just ended
            continue
        total += sum(map(cpu_seconds, map(int, children)))
    return total


async def measured(server, count: int, clients: int, per_request: int) -> tuple[float, float]:
    """(events/s, server CPU seconds per event) of one case on one server."""
    before = cpu_seconds(server.process.pid)
    rate = await http_rate(server.port, count, clients, per_request)
    return rate, (cpu_seconds(server.process.pid) - before) / count


async def main_pair(events: int, rounds: int, before: Path | None) -> None:
    """The same cases on two servers, alternating: one finding flags and one not, or (``before``)
    another checkout's and this one's. A case's cost is the median over rounds of the cost between
    the two measurements taken one after the other; its spread across rounds prints beside it."""
    first, second = ("before", "this") if before else ("flags off", "flags on")
    with (tempfile.TemporaryDirectory() as first_dir, tempfile.TemporaryDirectory() as second_dir,
          run_server(Path(first_dir), **({"root": before} if before else {"env": {"WHYOPS_FLAGS": "0"}})) as a,
          run_server(Path(second_dir)) as b):
        for server in (a, b):
            await http_rate(server.port, 400, 8, 1)
        rows = []
        for name, divisor, clients, per_request in FLAG_CASES:
            count = int(events / divisor)
            pairs = []
            for round_number in range(rounds):
                got = {}
                for label, server in ((first, a), (second, b))[::1 if round_number % 2 else -1]:
                    got[label] = await measured(server, count, clients, per_request)
                pairs.append((got[first], got[second]))
            rows.append((name, pairs))
    target = "  (target < 10%)" if not before else ""
    print(f"{'case':36} {first + '/s':>12} {second + '/s':>11} {'cost':>7} {'spread':>15}   "
          f"{'CPU us/event ' + first:>22} {second:>9} {'cost':>7} {'spread':>15}{target}")
    for name, pairs in rows:
        costs = sorted(1 - rate_b / rate_a for (rate_a, _), (rate_b, _) in pairs)
        cpu_costs = sorted(cpu_b / cpu_a - 1 for (_, cpu_a), (_, cpu_b) in pairs)
        cost, cpu_cost = statistics.median(costs), statistics.median(cpu_costs)
        verdicts = [("ok" if c < 0.10 else "MISSED") if not before else "" for c in (cost, cpu_cost)]
        rate_a, rate_b = (statistics.median(p[side][0] for p in pairs) for side in (0, 1))
        cpu_a, cpu_b = (statistics.median(p[side][1] for p in pairs) for side in (0, 1))
        print(f"{name:36} {rate_a:12.0f} {rate_b:11.0f} {cost:7.1%} {costs[0]:7.1%}..{costs[-1]:<6.1%} {verdicts[0]:6}"
              f" {cpu_a * 1e6:19.0f} {cpu_b * 1e6:9.0f} {cpu_cost:7.1%} {cpu_costs[0]:7.1%}..{cpu_costs[-1]:<6.1%}"
              f" {verdicts[1]}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=4000, help="events for the 8-client case (others scale)")
    parser.add_argument("--flags", action="store_true", help="flags on and off side by side instead")
    parser.add_argument("--before", type=Path, help="another checkout measured beside this one, as --flags does")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per server and case with --flags or --before")
    parser.add_argument("--database-url", help="a PostgreSQL server to measure beside SQLite (default: DATABASE_URL)")
    arguments = parser.parse_args()
    # Taken out of the environment: the SQLite server must not inherit it.
    database_url = arguments.database_url or os.environ.pop("DATABASE_URL", None)
    pair = arguments.flags or arguments.before
    asyncio.run(main_pair(arguments.events, arguments.rounds, arguments.before and arguments.before.resolve())
                if pair else main(arguments.events, database_url))
