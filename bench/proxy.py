"""What the proxy adds: latency of plain calls and time to first chunk of streams, proxied vs direct.

Starts the fake upstream, a whyops-local server and a bare relay (all subprocesses), then sends the
same requests straight to the fake upstream, through the proxy and through the bare relay,
interleaved in random order, at each concurrency.
Run from the repository root:
    python bench/proxy.py [--requests 400] [--concurrency 1 8] [--upstream-ms 0 100] [--messages 31]
Targets: added p50 <= 3 ms, p99 <= 15 ms; added time to first chunk <= 3 ms.

Each request carries an agent's history: ``--messages`` messages (system prompt, turns and tool
results, ~1 KB each; the default is ~33 KB), since the proxy reads every message to find the trace
a call continues. ``--messages 2`` is a toy two-message request.

The bare relay (bench/bare_relay.py) is daphne and httpx with nothing else, the stack the proxy is
built on: what it adds is the floor for any proxy on that stack on this machine, printed beside.

``--upstream-ms`` is how long the fake provider takes before it answers. At 0, eight clients that
never wait saturate this 2-core machine (client, fake provider, proxy and its writer all want the
CPU at once): what is measured then is a queue for the CPU, whatever sits in the path. A provider
takes hundreds of milliseconds, so each concurrent case is also run against a fake provider that
takes 100 ms, the clients pausing a random 0-100 ms between calls as independent agents do; a lone
client is the same at any provider speed, so it is run at 0 only.
"""

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.servers import free_port, run_server, wait_until_up  # noqa: E402

HEADERS = {"Authorization": "Bearer sk-bench"}


def agent_request(messages: int, stream: bool = False, include_usage: bool = True) -> dict:
    """A chat request as an agent sends it some turns in: a system prompt, then turns and tool results."""
    history = [{"role": "system", "content": "You are an agent that checks the weather. " * 25}]
    for turn in range(messages - 1):
        if turn % 3 == 2:
            history.append({"role": "tool", "tool_call_id": f"call_{turn}",
                            "content": json.dumps({"readings": [{"hour": h, "celsius": 20 + h % 7} for h in range(24)]})})
        else:
            history.append({"role": "user" if turn % 3 == 0 else "assistant",
                            "content": "What the weather in Paris will be this afternoon, hour by hour. " * 15})
    body = {"model": "gpt-4o-mini", "messages": history}
    if not stream:
        return body
    # Without include_usage (what most frameworks send) the proxy asks upstream for it and strips it again.
    return {**body, "stream": True, **({"stream_options": {"include_usage": True}} if include_usage else {})}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def with_upstream_delay(body: dict, upstream_ms: float) -> dict:
    # The fake upstream waits as long as a "slow-<seconds>" model name says.
    return {**body, "model": f"{body['model']}-slow-{upstream_ms / 1000:g}"} if upstream_ms else body


async def plain(client: httpx.AsyncClient, url: str, body: dict) -> float:
    started = time.perf_counter()
    response = await client.post(url, json=body, headers=HEADERS)
    response.raise_for_status()
    return (time.perf_counter() - started) * 1000


async def first_chunk(client: httpx.AsyncClient, url: str, body: dict) -> float:
    started = time.perf_counter()
    async with client.stream("POST", url, json=body, headers=HEADERS) as response:
        elapsed = None
        async for _ in response.aiter_raw():
            if elapsed is None:
                elapsed = (time.perf_counter() - started) * 1000
    return elapsed


async def measure(measure_one, urls: dict[str, str], body: dict, requests: int, concurrency: int,
                  upstream_ms: float) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {name: [] for name in urls}
    limits = httpx.Limits(max_connections=concurrency * len(urls), max_keepalive_connections=concurrency * len(urls))
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        for _ in range(20):  # warm up connections and the servers' code paths
            for url in urls.values():
                await measure_one(client, url, body)
        slow_body = with_upstream_delay(body, upstream_ms)

        async def worker(count: int) -> None:
            for _ in range(count):
                # Interleaved in random order, so drift and wakeups affect all paths alike.
                for name, url in random.sample(list(urls.items()), len(urls)):
                    timings[name].append(await measure_one(client, url, slow_body))
                    if upstream_ms:
                        await asyncio.sleep(random.uniform(0, upstream_ms / 1000))

        await asyncio.gather(*(worker(requests // concurrency) for _ in range(concurrency)))
    return timings


def cpu_ms(pid: int) -> float:
    """CPU time a process and its children (the recording process) have used, from /proc.

    Steadier than latency on a busy machine.
    """
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    own = (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return own + sum(cpu_ms(int(child)) for child in children)


def run(measure_one, urls: dict[str, str], body: dict, requests: int, concurrency: int, upstream_ms: float,
        server_pid: int):
    before = cpu_ms(server_pid)
    timings = asyncio.run(measure(measure_one, urls, body, requests, concurrency, upstream_ms))
    time.sleep(1)  # let the writer process finish recording, its CPU counts too
    timings["server_cpu_ms"] = (cpu_ms(server_pid) - before) / (len(timings["proxy"]) + 20)
    return timings


def report(label: str, timings: dict) -> None:
    direct = timings["direct"]
    for name, title in (("proxy", label), ("bare", "  bare daphne+httpx relay")):
        relayed = timings[name]
        p50 = percentile(relayed, 50) - percentile(direct, 50)
        p99 = percentile(relayed, 99) - percentile(direct, 99)
        cpu = f"; server CPU with recording {timings['server_cpu_ms']:.2f} ms per proxied call" if name == "proxy" else ""
        print(f"  {title:<28} direct p50 {percentile(direct, 50):6.2f} ms  p99 {percentile(direct, 99):6.2f} ms | "
              f"{name} p50 {percentile(relayed, 50):6.2f} ms  p99 {percentile(relayed, 99):6.2f} ms | "
              f"added p50 {p50:+6.2f} ms  p99 {p99:+6.2f} ms  (n={len(relayed)}, mean added "
              f"{statistics.mean(relayed) - statistics.mean(direct):+.2f} ms{cpu})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="requests per path and kind at each concurrency")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--upstream-ms", type=float, nargs="+", default=[0, 100],
                        help="how long the fake provider takes to answer (see above)")
    parser.add_argument("--messages", type=int, default=31, help="messages in each request's history (see above)")
    args = parser.parse_args()
    fake = subprocess.Popen([sys.executable, "-m", "whyops_local.demo.fake_provider"], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    bare = None
    try:
        upstream = fake.stdout.readline().strip()
        bare_port = free_port()
        bare = subprocess.Popen([sys.executable, "-m", "daphne", "-v", "0", "-b", "127.0.0.1", "-p", str(bare_port),
                                 "bench.bare_relay:app"], cwd=ROOT, env={**os.environ, "BARE_RELAY_UPSTREAM": f"{upstream}/v1"})
        env = {"WHYOPS_OPENAI_BASE_URL": f"{upstream}/v1", "WHYOPS_LOG_LEVEL": "WARNING"}
        with tempfile.TemporaryDirectory() as data, run_server(Path(data), env=env) as server:
            path = "/v1/chat/completions"
            urls = {"direct": f"{upstream}{path}", "proxy": f"{server.proxy}{path}",
                    "bare": f"http://127.0.0.1:{bare_port}/proxy{path}"}
            for _ in range(5):  # start the recording process before any CPU is counted
                httpx.post(urls["proxy"], json=agent_request(2), headers=HEADERS)
            wait_until_up(f"http://127.0.0.1:{bare_port}/proxy/v1/models", bare)
            time.sleep(3)
            size = len(json.dumps(agent_request(args.messages))) / 1024
            print(f"each request: {args.messages} messages of history, {size:.0f} KB")
            for concurrency in args.concurrency:
                for upstream_ms in args.upstream_ms if concurrency > 1 else args.upstream_ms[:1]:
                    print(f"concurrency {concurrency}, provider answering after {upstream_ms:g} ms:")
                    for label, measure_one, stream, usage in (
                            ("non-streaming latency", plain, False, True),
                            ("streaming first chunk", first_chunk, True, True),
                            ("  same, no include_usage", first_chunk, True, False)):
                        report(label, run(measure_one, urls, agent_request(args.messages, stream, usage), args.requests,
                                          concurrency, upstream_ms, server.process.pid))
    finally:
        fake.terminate()
        if bare is not None:
            bare.terminate()


if __name__ == "__main__":
    main()
