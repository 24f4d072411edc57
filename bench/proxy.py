"""What the proxy adds: latency of plain calls and time to first chunk of streams, proxied vs direct.

Starts the fake upstream and a whyops-local server (both subprocesses), then sends the same
requests straight to the fake upstream and through the proxy, interleaved, at each concurrency.
Run from the repository root:  python bench/proxy.py [--requests 400] [--concurrency 1 8] [--upstream-ms 0 100]
Targets (issue 3): added p50 <= 3 ms, p99 <= 15 ms; added time to first chunk <= 3 ms.

``--upstream-ms`` is how long the fake provider takes before it answers. At 0, eight clients that
never wait saturate this 2-core machine (client, fake provider, proxy and its writer all want the
CPU at once): what is measured then is a queue for the CPU, whatever sits in the path. A provider
takes hundreds of milliseconds, so each concurrent case is also run against a fake provider that
takes 100 ms, the clients pausing a random 0-100 ms between calls as independent agents do; a lone
client is the same at any provider speed, so it is run at 0 only.
"""

import argparse
import asyncio
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

from tests.servers import run_server  # noqa: E402

BODY = {"model": "gpt-4o-mini", "messages": [{"role": "system", "content": "Be brief."},
                                             {"role": "user", "content": "Say hello."}]}
STREAM_BODY = {**BODY, "stream": True, "stream_options": {"include_usage": True}}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def with_upstream_delay(body: dict, upstream_ms: float) -> dict:
    # The fake upstream waits as long as a "slow-<seconds>" model name says.
    return {**body, "model": f"{body['model']}-slow-{upstream_ms / 1000:g}"} if upstream_ms else body


async def plain(client: httpx.AsyncClient, url: str, upstream_ms: float) -> float:
    started = time.perf_counter()
    response = await client.post(url, json=with_upstream_delay(BODY, upstream_ms),
                                 headers={"Authorization": "Bearer sk-bench"})
    response.raise_for_status()
    return (time.perf_counter() - started) * 1000


async def first_chunk(client: httpx.AsyncClient, url: str, upstream_ms: float) -> float:
    started = time.perf_counter()
    async with client.stream("POST", url, json=with_upstream_delay(STREAM_BODY, upstream_ms),
                             headers={"Authorization": "Bearer sk-bench"}) as response:
        elapsed = None
        async for _ in response.aiter_raw():
            if elapsed is None:
                elapsed = (time.perf_counter() - started) * 1000
    return elapsed


async def measure(measure_one, direct: str, proxied: str, requests: int, concurrency: int,
                  upstream_ms: float) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {"direct": [], "proxy": []}
    limits = httpx.Limits(max_connections=concurrency * 2, max_keepalive_connections=concurrency * 2)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        for _ in range(20):  # warm up connections and the server's code paths
            await measure_one(client, direct, 0)
            await measure_one(client, proxied, 0)

        async def worker(count: int) -> None:
            for i in range(count):
                # Interleaved, alternating which goes first, so drift affects both alike.
                order = (("direct", direct), ("proxy", proxied)) if i % 2 else (("proxy", proxied), ("direct", direct))
                for name, url in order:
                    timings[name].append(await measure_one(client, url, upstream_ms))
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


def run(measure_one, direct: str, proxied: str, requests: int, concurrency: int, upstream_ms: float,
        server_pid: int):
    before = cpu_ms(server_pid)
    timings = asyncio.run(measure(measure_one, direct, proxied, requests, concurrency, upstream_ms))
    time.sleep(1)  # let the writer process finish recording, its CPU counts too
    timings["server_cpu_ms"] = (cpu_ms(server_pid) - before) / (len(timings["proxy"]) + 20)
    return timings


def report(label: str, timings: dict) -> None:
    direct, proxy = timings["direct"], timings["proxy"]
    p50 = percentile(proxy, 50) - percentile(direct, 50)
    p99 = percentile(proxy, 99) - percentile(direct, 99)
    print(f"  {label:<28} direct p50 {percentile(direct, 50):6.2f} ms  p99 {percentile(direct, 99):6.2f} ms | "
          f"proxy p50 {percentile(proxy, 50):6.2f} ms  p99 {percentile(proxy, 99):6.2f} ms | "
          f"added p50 {p50:+6.2f} ms  p99 {p99:+6.2f} ms  (n={len(proxy)}, mean added "
          f"{statistics.mean(proxy) - statistics.mean(direct):+.2f} ms; server CPU with recording "
          f"{timings['server_cpu_ms']:.2f} ms per proxied call)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="requests per path and kind at each concurrency")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--upstream-ms", type=float, nargs="+", default=[0, 100],
                        help="how long the fake provider takes to answer (see above)")
    args = parser.parse_args()
    fake = subprocess.Popen([sys.executable, "-m", "tests.fake_upstream"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        upstream = fake.stdout.readline().strip()
        env = {"WHYOPS_OPENAI_BASE_URL": f"{upstream}/v1", "WHYOPS_LOG_LEVEL": "WARNING"}
        with tempfile.TemporaryDirectory() as data, run_server(Path(data), env=env) as server:
            direct, proxied = f"{upstream}/v1/chat/completions", f"{server.proxy}/v1/chat/completions"
            for _ in range(5):  # start the recording process before any CPU is counted
                httpx.post(proxied, json=BODY, headers={"Authorization": "Bearer sk-bench"})
            time.sleep(3)
            for concurrency in args.concurrency:
                for upstream_ms in args.upstream_ms if concurrency > 1 else args.upstream_ms[:1]:
                    print(f"concurrency {concurrency}, provider answering after {upstream_ms:g} ms:")
                    for label, measure_one in (("non-streaming latency", plain), ("streaming first chunk", first_chunk)):
                        report(label, run(measure_one, direct, proxied, args.requests, concurrency, upstream_ms,
                                          server.process.pid))
    finally:
        fake.terminate()


if __name__ == "__main__":
    main()
