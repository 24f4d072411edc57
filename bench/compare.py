"""How fast two long runs are compared: two 5,000-step runs of one agent, diverging here and there.

    python bench/compare.py [--steps 5000]

Builds both runs in a throwaway data dir through the real storage path, starts the real server
(manage.py runserver, daphne), and times ``GET /api/compare`` and the ``/compare/`` page (median of
5, served over HTTP), beside the pure alignment alone (domain.alignment). Target: the API < 1 s.
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA_DIR = Path(tempfile.mkdtemp(prefix="whyops-bench-compare-"))
os.environ["WHYOPS_DATA_DIR"] = str(DATA_DIR)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "whyops_local.settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402

from tests.storing import record_events  # noqa: E402
from whyops_local.domain import alignment  # noqa: E402
from whyops_local.domain.schemas import EventIn  # noqa: E402
from whyops_local.models import Trace  # noqa: E402
from whyops_local.storage.analysis import run_events  # noqa: E402

LLM = {"model": "gpt-4o-mini", "provider": "openai", "latencyMs": 400,
       "usage": {"promptTokens": 900, "completionTokens": 40, "totalTokens": 940}}


def agent_run(trace_id: str, steps: int, diverge_every: int) -> list[dict]:
    """A user message, then rounds of LLM call + tool span; every ``diverge_every``-th lookup differs."""
    base = {"traceId": trace_id, "agentName": "bench-compare"}
    events = [{**base, "eventType": "user_message", "content": {"messages": [{"role": "user", "content": "go"}]}}]
    i = 0
    while len(events) < steps:
        order = f"x{i}" if diverge_every and i % diverge_every == diverge_every - 1 else str(i)
        calls = [{"name": "search_orders", "arguments": {"orderId": order}}]
        span = f"{trace_id}-{i}"
        events += [
            {**base, "eventType": "llm_response", "metadata": LLM, "content": {
                "content": f"Looking up order {order}.", "toolCalls": [
                    {"id": f"c{i}", "function": {"name": "search_orders", "arguments": f'{{"orderId":"{order}"}}'}}]}},
            {**base, "eventType": "tool_call_request", "spanId": span, "metadata": {"tool": "search_orders"},
             "content": {"toolCalls": calls}},
            {**base, "eventType": "tool_call_response", "spanId": span, "metadata": {"tool": "search_orders", "latencyMs": 80},
             "content": {"toolCalls": calls, "toolResults": {"status": "shipped"}}},
        ]
        i += 1
    return events[:steps]


def build(trace_id: str, steps: int, diverge_every: int) -> None:
    events = agent_run(trace_id, steps, diverge_every)
    for start in range(0, len(events), 500):
        record_events([EventIn.model_validate(e) for e in events[start:start + 500]])


def served(url: str, runs: int = 5) -> float:
    import httpx

    times = []
    for _ in range(runs):
        started = time.perf_counter()
        answer = httpx.get(url, timeout=60)
        times.append(time.perf_counter() - started)
        assert answer.status_code == 200, answer.text[:300]
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5000)
    steps = parser.parse_args().steps
    try:
        call_command("migrate", interactive=False, verbosity=0)
        build("run-a", steps, 0)
        build("run-b", steps, 50)  # a different lookup every 50 rounds: ~33 divergences
        a, b = Trace.objects.get(trace_id="run-a"), Trace.objects.get(trace_id="run-b")
        started = time.perf_counter()
        compared = alignment.compare(a.summary_dict(), run_events(a), b.summary_dict(), run_events(b))
        direct = time.perf_counter() - started
        differing = sum(not row["same"] for row in compared["rows"])
        from tests.servers import run_server

        with run_server(DATA_DIR) as server:
            api = served(f"{server.api}/compare?a=run-a&b=run-b")
            self_compare = served(f"{server.api}/compare?a=run-a&b=run-a")
            page = served(f"{server.url}/compare/?a=run-a&b=run-b")
        print(f"two runs of {steps:,} events ({len(compared['rows']):,} rows, {differing} differing, "
              f"first divergence at row {compared['firstDivergence']})")
        print(f"{'measure':40} {'seconds':>8} {'target':>7}")
        print(f"{'load + align in process':40} {direct:8.3f}")
        for name, seconds in (("GET /api/compare (median of 5)", api), ("GET /api/compare, a run with itself", self_compare)):
            print(f"{name:40} {seconds:8.3f} {'< 1':>7} {'ok' if seconds < 1 else 'MISSED'}")
        print(f"{'GET /compare/ page (median of 5)':40} {page:8.3f}")
    finally:
        shutil.rmtree(DATA_DIR, ignore_errors=True)


if __name__ == "__main__":
    main()
