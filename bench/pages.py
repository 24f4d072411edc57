"""How fast the pages are on this machine: a 5,000-event trace and a list of 100,000 traces.

    /work/venv/bin/python bench/pages.py [--events 5000] [--traces 100000] [--list-only] [--before ../main]

Builds the data in a throwaway data dir through the real storage path (the 5,000-event trace) or
bulk inserts (the 100,000 traces), starts the real server (manage.py runserver, daphne), then
measures the HTML served time (httpx, median of 5) and the time to interactive in headless
Chromium (navigation start -> the page's "whyops-ready" mark, median of 3). Targets: HTML < 1 s,
interactive < 3 s (the conversation view < 2 s); the list's search at 100,000 traces < 50 ms.
``--list-only`` builds and measures the list alone. ``--before DIR`` serves another checkout beside
this one (from a copy of the data migrated back to that checkout's newest migration), each measurement
taken in turn on both, and prints the ratio.
"""

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA_DIR = Path(tempfile.mkdtemp(prefix="whyops-bench-pages-"))
os.environ["WHYOPS_DATA_DIR"] = str(DATA_DIR)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "whyops_local.settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402

from tests.storing import record_events  # noqa: E402
from whyops_local.domain.schemas import EventIn  # noqa: E402
from whyops_local.models import Agent, Event, Trace  # noqa: E402
from whyops_local.storage import search  # noqa: E402
from whyops_local.storage.rows import register_agent  # noqa: E402

AGENT = "bench-agent"
LOREM = ("The customer asked about their order and the assistant checked the order system, "
         "the shipping provider and the refund policy before answering. ")


def agent_run(trace_id: str, total: int, turns: int) -> list[dict]:
    """A long agent run: per turn a user message, then loops of thinking, tool call, tool span, answer."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    events: list[dict] = []
    per_turn = max(total // turns, 6)
    clock = 0.0

    def add(kind: str, content, metadata=None, **extra):
        nonlocal clock
        clock += 0.05
        event = {"eventType": kind, "traceId": trace_id, "agentName": AGENT, "content": content,
                 "timestamp": (start + timedelta(seconds=clock)).isoformat(), **extra}
        if metadata:
            event["metadata"] = metadata
        events.append(event)

    turn = 0
    while len(events) < total:
        turn += 1
        add("user_message", {"messages": [{"role": "system", "content": "You are a support agent."},
                                          {"role": "user", "content": f"Turn {turn}: " + LOREM * 3}]},
            externalUserId="bench-user")
        in_turn = 1
        while in_turn < per_turn and len(events) < total:
            n = len(events)
            add("llm_thinking", {"type": "thinking", "thinking": LOREM * 2, "signature": "sig" * 20})
            add("llm_response", {"toolCalls": [{"id": f"c{n}", "function": {"name": "search_orders",
                                                                              "arguments": '{"orderId": "123"}'}}]},
                {"model": "gpt-4o-mini", "provider": "openai", "latencyMs": 420,
                 "usage": {"promptTokens": 1200, "completionTokens": 40, "totalTokens": 1240, "cacheReadTokens": 1024}})
            add("tool_call_request", {"toolCalls": [{"name": "search_orders", "arguments": {"orderId": "123"}}]},
                {"tool": "search_orders"}, spanId=f"span-{n}")
            add("tool_call_response", {"toolResults": {"status": "shipped", "detail": LOREM}},
                {"tool": "search_orders", "latencyMs": 80 + n % 300}, spanId=f"span-{n}")
            add("llm_response", {"content": LOREM, "finishReason": "stop"},
                {"model": "gpt-4o-mini", "provider": "openai", "latencyMs": 610,
                 "usage": {"promptTokens": 1500, "completionTokens": 90, "totalTokens": 1590}})
            in_turn += 5
    return events[:total]


def build_trace(trace_id: str, total: int, turns: int) -> float:
    started = time.perf_counter()
    events = agent_run(trace_id, total, turns)
    for i in range(0, len(events), 500):
        record_events([EventIn.model_validate(e) for e in events[i:i + 500]])
    return time.perf_counter() - started


def build_proxied_trace(trace_id: str, calls: int) -> tuple[float, int]:
    """A proxied tool loop whose request repeats the whole history every call (stored as the proxy
    stores it): the realistic heavy case. Returns the build time and the bytes of requests."""
    from whyops_local.models import Event as EventModel

    started, size = time.perf_counter(), 0
    history = [{"role": "system", "content": "You are a support agent. " + LOREM * 20},
               {"role": "user", "content": "Sort out order 123. " + LOREM}]
    clock = datetime(2026, 1, 2, tzinfo=UTC)
    for n in range(calls):
        kind = "tool_result" if n else "user_message"
        call = {"id": f"call_{n}", "type": "function", "function": {"name": "search_orders", "arguments": '{"orderId": "123"}'}}
        items = [
            {"eventType": kind, "content": {"messages": list(history)},
             "metadata": {"model": "gpt-4o-mini", "provider": "openai"}},
            {"eventType": "llm_response", "content": {"content": f"Step {n}: checking. " + LOREM, "toolCalls": [call]},
             "metadata": {"model": "gpt-4o-mini", "provider": "openai", "latencyMs": 500,
                          "usage": {"promptTokens": 2000 + n * 300, "completionTokens": 60, "totalTokens": 2060 + n * 300}}},
        ]
        size += len(json.dumps(history))
        record_events([EventIn.model_validate({**e, "traceId": trace_id, "agentName": AGENT,
                                               "timestamp": (clock + timedelta(seconds=n)).isoformat()}) for e in items],
                      source=EventModel.SOURCE_PROXY)
        history += [{"role": "assistant", "content": f"Step {n}: checking. " + LOREM, "tool_calls": [call]},
                    {"role": "tool", "tool_call_id": f"call_{n}",
                     "content": json.dumps({"status": "shipped", "detail": LOREM * 6})}]
    return time.perf_counter() - started, size


def search_to_highlight(driver, word: str) -> float:
    """Typing a word in the trace's find box until its first match is highlighted (seconds)."""
    return driver.execute_async_script("""
        const [word, done] = arguments;
        const input = document.getElementById('trace-find');
        const t0 = performance.now();
        input.value = word;
        input.dispatchEvent(new Event('input'));
        requestAnimationFrame(() => done(CSS.highlights.has('find-current') ? (performance.now() - t0) / 1000 : -1));
    """, word)


def build_many_traces(count: int) -> float:
    """``count`` small traces by bulk insert (one event each), for the list page."""
    started = time.perf_counter()
    agents = [Agent.objects.get_or_create(name=f"list-agent-{i}")[0] for i in range(5)]
    now = datetime(2026, 2, 1, tzinfo=UTC)
    batch = 5000
    for offset in range(0, count, batch):
        traces = [Trace(trace_id=f"list-{i:06}", agent=agents[i % 5], external_user_id=f"user-{i % 1000}",
                        started_at=now - timedelta(seconds=i), last_event_at=now - timedelta(seconds=i),
                        event_count=1, llm_calls=1, error_count=int(i % 50 == 0), total_tokens=100)
                  for i in range(offset, min(offset + batch, count))]
        Trace.objects.bulk_create(traces)
        created = Event.objects.bulk_create([
            Event(trace=t, agent=t.agent, event_type="llm_response", step_id=1, span_id=f"s{t.trace_id}",
                  timestamp=t.last_event_at, content={"content": f"answer {t.trace_id}" + (" needle" if i % 997 == 0 else "")},
                  metadata={"model": "gpt-4o-mini", "provider": "openai"},
                  model="gpt-4o-mini" if i % 3 else "claude-sonnet-4-5", provider="openai")
            for i, t in zip(range(offset, offset + batch),
                            Trace.objects.filter(trace_id__in=[t.trace_id for t in traces]).order_by("trace_id"), strict=True)
        ])
        search.index(created, set(), [])  # as the writer does in its commit
    return time.perf_counter() - started


def _in_turn(count: int, run: int) -> list[int]:
    """Which goes first alternates from run to run, so neither checkout always follows the other."""
    order = list(range(count))
    return order if run % 2 == 0 else order[::-1]


def served(urls: list[str], runs: int = 5) -> list[tuple[float, int]]:
    """Median time and size of each URL's page, the URLs fetched in turn (side by side on a noisy machine)."""
    import httpx

    times: list[list[float]] = [[] for _ in urls]
    sizes = [0] * len(urls)
    for run in range(runs):
        for i in _in_turn(len(urls), run):
            url = urls[i]
            started = time.perf_counter()
            response = httpx.get(url, timeout=60)
            times[i].append(time.perf_counter() - started)
            assert response.status_code == 200, (url, response.status_code)
            sizes[i] = len(response.content)
    return [(statistics.median(t), size) for t, size in zip(times, sizes, strict=True)]


def _ready(driver, url: str) -> float:
    from tests.browser import wait_ready

    driver.get("about:blank")
    driver.get(url)
    wait_ready(driver, timeout=60)
    return driver.execute_script("return performance.getEntriesByName('whyops-ready')[0].startTime") / 1000


def interactive(driver, urls: list[str], runs: int = 3) -> list[tuple[float, float]]:
    """Per URL, in turn: median time to the page's ready mark, and to a step panel loaded after a click (seconds)."""
    ready: list[list[float]] = [[] for _ in urls]
    click: list[list[float]] = [[] for _ in urls]
    for run in range(runs):
        for i in _in_turn(len(urls), run):
            url = urls[i]
            ready[i].append(_ready(driver, url))
            click[i].append(driver.execute_async_script("""
                const done = arguments[arguments.length - 1];
                const nodes = document.querySelectorAll('#graph g.node[data-node]');
                const node = nodes[Math.min(3, nodes.length - 1)];
                const t0 = performance.now();
                const panel = document.getElementById('step-panel');
                new MutationObserver((_, obs) => {
                  if (panel.querySelector(`article[data-node="${node.dataset.node}"]`)) {
                    obs.disconnect(); done((performance.now() - t0) / 1000);
                  }
                }).observe(panel, {childList: true, subtree: true});
                node.dispatchEvent(new MouseEvent('click', {bubbles: true}));
            """))
    return [(statistics.median(r), statistics.median(c)) for r, c in zip(ready, click, strict=True)]


def side_by_side(values: list[float], target: float) -> str:
    """This checkout's figure against its target, then (with --before) the other checkout's and the ratio."""
    mine = f"{values[0] * 1000:6.0f} ms {'ok  ' if values[0] < target else 'SLOW'}"
    if len(values) == 1:
        return mine
    return f"{mine}  before {values[1] * 1000:6.0f} ms  ratio {values[0] / values[1]:4.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--traces", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=200, help="calls of the proxied run whose history grows")
    parser.add_argument("--keep", action="store_true", help="keep the data dir (printed) for a look afterwards")
    parser.add_argument("--list-only", action="store_true", help="only the list of --traces traces")
    parser.add_argument("--before", type=Path, help="another checkout (say, the main branch) measured in turn with "
                                                      "this one: its figures and the ratio this / before beside")
    args = parser.parse_args()
    try:
        run(args)
    finally:
        if not args.keep:
            shutil.rmtree(DATA_DIR, ignore_errors=True)


def run(args: argparse.Namespace) -> None:
    call_command("migrate", interactive=False, verbosity=0)
    register_agent(AGENT, {"systemPrompt": "You are a support agent.", "tools": []})
    print(f"data dir {DATA_DIR}")
    if not args.list_only:
        print(f"built {args.events}-event trace in 50 turns: {build_trace('bench-turns', args.events, 50):.1f} s")
        print(f"built {args.events}-event trace in 1 turn:   {build_trace('bench-one-turn', args.events, 1):.1f} s")
        seconds, size = build_proxied_trace("bench-proxied", args.calls)
        print(f"built {args.calls}-call proxied run ({size / 1e6:.0f} MB of requests): {seconds:.1f} s")
    if args.traces:
        print(f"built {args.traces} list traces:            {build_many_traces(args.traces):.1f} s")
    from django.db import connections

    connections.close_all()
    if args.list_only:
        list_page(args)
        return

    from tests.browser import CHROMIUM, chromium
    from tests.servers import run_server

    with ExitStack() as stack:
        server = stack.enter_context(run_server(DATA_DIR))
        servers = [server] + ([stack.enter_context(run_server(_migrated_back(args.before), root=args.before))]
                              if args.before else [])
        if args.before:
            print(f"before: {args.before} (a copy of the data, measured in turn with this checkout)")
        print("\nHTML served (median of 5)                       time   target < 1000 ms   size")
        for label, path in (("trace page, 5,000 events, 50 turns", "/traces/bench-turns"),
                            ("trace page, 5,000 events, 1 turn", "/traces/bench-one-turn"),
                            ("step panel fragment", "/traces/bench-turns?step=4&partial=panel"),
                            ("conversation, 5,000 events, 50 turns", "/traces/bench-turns?view=conversation"),
                            ("conversation, 5,000 events, 1 turn", "/traces/bench-one-turn?view=conversation"),
                            (f"conversation, {args.calls}-call proxied run", "/traces/bench-proxied?view=conversation"),
                            ("proxied run, last call's panel", f"/traces/bench-proxied?step={args.calls * 2}&partial=panel")):
            results = served([s.url + path for s in servers])
            sizes = " / ".join(f"{size / 1024:.0f} KB" for _, size in results)
            print(f"  {label:<44} {side_by_side([t for t, _ in results], 1)}  {sizes}")
        if CHROMIUM.exists():
            print("\nHeadless Chromium (median of 3)              interactive, target < 3000 ms / click->panel")
            with chromium() as driver:
                for label, path in (("trace page, 5,000 events, 50 turns", "/traces/bench-turns"),
                                    ("trace page, 5,000 events, 1 turn", "/traces/bench-one-turn")):
                    results = interactive(driver, [s.url + path for s in servers])
                    print(f"  {label:<44} {side_by_side([r for r, _ in results], 3)}   click->panel "
                          + " / ".join(f"{c * 1000:.0f} ms" for _, c in results))
                print("\nConversation view (median of 3)             interactive, target < 2000 ms / find->highlight < 200 ms")
                for label, path, word in (("5,000 events, 50 turns", "/traces/bench-turns?view=conversation", "Turn 40:"),
                                          ("5,000 events, 1 turn", "/traces/bench-one-turn?view=conversation", "shipped"),
                                          (f"{args.calls}-call proxied run", "/traces/bench-proxied?view=conversation",
                                           f"Step {args.calls - 1}:")):
                    readies: list[list[float]] = [[] for _ in servers]
                    finds: list[list[float]] = [[] for _ in servers]
                    for run in range(3):
                        for i in _in_turn(len(servers), run):
                            readies[i].append(_ready(driver, servers[i].url + path))
                            finds[i].append(search_to_highlight(driver, word))
                    print(f"  {label:<44} {side_by_side([statistics.median(r) for r in readies], 2)}   find "
                          + " / ".join(f"{statistics.median(f) * 1000:.0f} ms" for f in finds))
        else:
            print("\n(no /usr/bin/chromium: browser figures skipped)")
    if args.traces:
        list_page(args)


LIST_CASES = (("newest", "/"), ("next page (keyset)", "/?cursor={cursor}"),
              ("agent filter", "/?agent=list-agent-3"), ("user filter", "/?user=user-7"),
              ("has error", "/?has_error=yes"), ("model filter", "/?model=claude-sonnet-4-5"),
              ("free text, frequent match", "/?q=needle"),
              ("free text, no match", "/?q=no-such-words"),
              ("free text, one match", "/?q=list-0042"),
              ("free text, 2 characters (no index)", "/?q=zq"))


def _migrated_back(other: Path) -> Path:
    """A copy of the data, migrated back (by this checkout) to the other checkout's newest migration."""
    import subprocess

    other = other.resolve()
    newest = max(path.stem for path in (other / "whyops_local" / "migrations").glob("0*.py"))
    copy = Path(tempfile.mkdtemp(prefix="whyops-bench-before-"))
    shutil.copy(DATA_DIR / "whyops.sqlite3", copy / "whyops.sqlite3")
    subprocess.run([sys.executable, "manage.py", "migrate", "whyops_local", newest, "-v0"], cwd=ROOT, check=True,
                   env={**os.environ, "WHYOPS_DATA_DIR": str(copy)})
    return copy


def list_page(args: argparse.Namespace) -> None:
    """The list's HTML served time for each filter, this checkout's (and ``--before``'s) in turn."""
    import re

    import httpx

    from tests.servers import ROOT as THIS
    from tests.servers import run_server

    with ExitStack() as stack:
        servers = [stack.enter_context(run_server(DATA_DIR, root=THIS))]
        if args.before:
            servers.append(stack.enter_context(run_server(_migrated_back(args.before), root=args.before)))
        html = httpx.get(servers[0].url + "/").text
        cursor = re.search(r'id="next-page" href="\?cursor=([^"]+)"', html).group(1)
        print(f"\nList page with {Trace.objects.count():,} traces (median of 5)")
        for label, path in LIST_CASES:
            results = served([server.url + path.format(cursor=cursor) for server in servers])
            target = 0.05 if "index" not in label and "free" in label else 1
            print(f"  {label:<44} {side_by_side([t for t, _ in results], target)}")


if __name__ == "__main__":
    main()
