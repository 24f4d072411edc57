"""OTLP spans per second readable through POST /v1/traces, beside raw sqlite3 inserts of the same rows.

    python bench/otlp.py [--spans 3000] [--before ../main] [--rounds 2]

Starts the real server with a throwaway data dir and sends protobuf ExportTraceServiceRequests
(the OTLP/HTTP exporter's default encoding), each span an LLM call with messages, usage and a
parent (two events once mapped), over keep-alive connections. The clock stops only once every span
reads back through the read API (its events counted in the trace summaries). Then a 5,000-span
trace is exported in 100-span requests and the time from the last export's answer until the whole
trace reads back (its summary, then every event through GET /api/traces/{id}) is printed.

Beside each rate: the server's and the writer process's CPU per span (less noisy than rates on a
shared machine). ``--before DIR`` runs another checkout's server beside this one, the cases
alternating between them (best of ``--rounds`` each, which goes first swapped every round: the
one measured first was 5% slower in the one-span case), and prints the ratio.

Targets: one span per request from 8 senders >= 1,500 spans/s; 100-span requests >= 8,000 spans/s
(4 senders); the 5,000-span trace readable within 2 s of its last export.
"""

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest  # noqa: E402
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue  # noqa: E402

from bench.ingest import KeepAliveClient, raw_sqlite_rate  # noqa: E402
from tests.servers import run_server  # noqa: E402

PROTOBUF = "application/x-protobuf"
START = time.time_ns()


def _kv(key: str, value) -> KeyValue:
    any_value = AnyValue(int_value=value) if isinstance(value, int) else AnyValue(string_value=value)
    return KeyValue(key=key, value=any_value)


def request(agent: str, trace_hex: str, first: int, count: int) -> bytes:
    """``count`` chat spans of one trace, children of one agent span (never sent: a parent that is
    not stored yet, the case the store must handle)."""
    export = ExportTraceServiceRequest()
    resource_spans = export.resource_spans.add()
    resource_spans.resource.attributes.append(_kv("service.name", agent))
    spans = resource_spans.scope_spans.add().spans
    for i in range(first, first + count):
        span = spans.add()
        span.trace_id, span.span_id = bytes.fromhex(trace_hex), (i + 1).to_bytes(8, "big")
        span.parent_span_id = (10**9).to_bytes(8, "big")
        span.name = "chat gpt-4o-mini"
        span.start_time_unix_nano = START + i * 1_000_000
        span.end_time_unix_nano = span.start_time_unix_nano + 420_000_000
        messages = json.dumps([{"role": "user", "parts": [{"type": "text", "content": f"Where is order {i}?"}]}])
        output = json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": f"Order {i} has shipped."}],
                              "finish_reason": "stop"}])
        span.attributes.extend([
            _kv("gen_ai.operation.name", "chat"), _kv("gen_ai.provider.name", "openai"),
            _kv("gen_ai.request.model", "gpt-4o-mini"), _kv("gen_ai.usage.input_tokens", 900 + i % 500),
            _kv("gen_ai.usage.output_tokens", 40 + i % 60), _kv("gen_ai.usage.cache_read.input_tokens", 512),
            _kv("gen_ai.input.messages", messages), _kv("gen_ai.output.messages", output)])
    return export.SerializeToString()


async def readable_spans(port: int, agent: str) -> int:
    async with KeepAliveClient(port) as http:
        status, body = await http.request("GET", f"/api/traces?agent={agent}&limit=500")
        assert status == 200, body
        return sum(t["eventCount"] for t in json.loads(body)["traces"]) // 2


async def send_all(port: int, bodies: list[list[bytes]]) -> None:
    async def sender(mine: list[bytes]) -> None:
        async with KeepAliveClient(port) as http:
            for body in mine:
                status, answer = await http.request("POST", "/v1/traces", body, PROTOBUF)
                assert status == 200, answer

    await asyncio.gather(*[sender(mine) for mine in bodies])


async def otlp_rate(port: int, spans: int, senders: int, per_request: int) -> float:
    agent = f"bench-{uuid.uuid4().hex[:8]}"
    per_sender = spans // senders // per_request
    traces = [uuid.uuid4().hex for _ in range(senders)]  # one trace per sender, as an agent run
    bodies = [[request(agent, trace, r * per_request, per_request) for r in range(per_sender)] for trace in traces]
    start = time.perf_counter()
    await send_all(port, bodies)
    sent = per_sender * per_request * senders
    while await readable_spans(port, agent) < sent:  # exported = readable, not merely answered
        await asyncio.sleep(0.001)
    return sent / (time.perf_counter() - start)


async def big_trace(port: int, spans: int = 5000) -> tuple[float, float, float]:
    """Seconds to export the trace, then from its last answer until its summary and all its events read back."""
    agent, trace_hex = f"bench-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    bodies = [request(agent, trace_hex, first, 100) for first in range(0, spans, 100)]
    start = time.perf_counter()
    await send_all(port, [bodies[n::4] for n in range(4)])
    answered = time.perf_counter()
    while await readable_spans(port, agent) < spans:
        await asyncio.sleep(0.001)
    summary = time.perf_counter()
    async with KeepAliveClient(port) as http:
        status, body = await http.request("GET", f"/api/traces/{trace_hex}")
    assert status == 200 and len(json.loads(body)["events"]) == 2 * spans
    return answered - start, summary - answered, time.perf_counter() - answered


CASES = [  # name, spans (times --spans), senders, spans per request, raw sqlite3 rows per transaction, target
    ("1 span per request, 8 senders", 1, 8, 1, 2, 1_500),
    ("100-span requests, 1 sender", 5, 1, 100, 200, 0),
    ("100-span requests, 4 senders", 5, 4, 100, 200, 8_000),
]


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _processes(server) -> tuple[int, int]:
    """The server's pid and its writer's (the child process that is not multiprocessing's resource tracker)."""
    children = [int(pid) for pid in Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children")
                .read_text().split()]
    writer = next(pid for pid in children if "resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_text())
    return server.process.pid, writer


async def measured(server, spans: int, senders: int, per_request: int) -> tuple[float, float, float]:
    """Spans/s, and the server's and the writer's CPU microseconds per span."""
    pids = _processes(server)
    before = [_cpu_seconds(pid) for pid in pids]
    rate = await otlp_rate(server.port, spans, senders, per_request)
    used = [_cpu_seconds(pid) - was for pid, was in zip(pids, before, strict=True)]
    return rate, used[0] * 1e6 / spans, used[1] * 1e6 / spans


async def main(spans: int, before: Path | None, rounds: int) -> None:
    roots = {"this": ROOT, **({"before": before.resolve()} if before else {})}
    with contextlib.ExitStack() as stack:
        servers = {name: stack.enter_context(run_server(Path(stack.enter_context(tempfile.TemporaryDirectory())),
                                                        root=root)) for name, root in roots.items()}
        for server in servers.values():
            await otlp_rate(server.port, 400, 8, 1)  # warm-up: imports, first connections, page cache
        results = {}
        for name, scale, senders, per_request, per_transaction, target in CASES:
            raw = raw_sqlite_rate(2 * spans * scale, per_transaction) / 2
            runs: dict[str, list] = {checkout: [] for checkout in servers}
            for turn in range(rounds if before else 1):  # alternated, best of the rounds: the machine is shared
                for checkout, server in list(servers.items())[::-1 if turn % 2 else 1]:
                    runs[checkout].append(await measured(server, spans * scale, senders, per_request))
            results[name] = ({checkout: max(r) for checkout, r in runs.items()}, raw, target)
        big = {checkout: await big_trace(server.port) for checkout, server in servers.items()}
    print(f"{'case':32} {'checkout':8} {'spans/s':>9} {'server us/span':>15} {'writer us/span':>15} "
          f"{'raw sqlite3/s':>14} {'ratio':>7} {'target':>8}")
    for name, (by_checkout, raw, target) in results.items():
        for checkout, (rate, server_us, writer_us) in by_checkout.items():
            verdict = "" if not target else ("ok" if rate >= target else "MISSED")
            print(f"{name:32} {checkout:8} {rate:9.0f} {server_us:15.0f} {writer_us:15.0f} {raw:14.0f} "
                  f"{rate / raw:7.3f} {target or '':>8} {verdict}")
        if before:
            print(f"{'':32} {'this/before':>12} {by_checkout['this'][0] / by_checkout['before'][0]:5.2f}x")
    for checkout, (export_s, summary_s, events_s) in big.items():
        print(f"5,000-span trace ({checkout}): exported in {export_s:.2f} s; after its last export, summary readable "
              f"in {summary_s:.3f} s, all 10,000 events read back in {events_s:.2f} s (target 2 s: "
              f"{'ok' if events_s <= 2 else 'MISSED'})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=3000, help="spans for the 8-sender case (others scale)")
    parser.add_argument("--before", type=Path, help="another checkout to measure beside this one, alternating")
    parser.add_argument("--rounds", type=int, default=2, help="rounds per case and checkout with --before")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.spans, arguments.before, arguments.rounds))
