"""How big a growing-history run gets: 200 proxied calls on one trace, each adding ~1.2 KB to the history.

Starts the fake upstream and a whyops-local server (subprocesses), runs the calls, and prints the
database size beside the distinct message bytes (target: <= 3x; and how much of it an empty
database takes, the schema and a page per table and index), the server's CPU per call
(recording included, the writer's apart) and the time to serve the trace page, its read API and
the last exchange's raw request. ``--before DIR`` runs the same against another checkout (say
``/work/main``) in the same run, printed side by side.
Run from the repository root:
    python bench/storage.py [--calls 200] [--before ../main]
"""

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import growing_history  # noqa: E402
from tests.servers import run_server  # noqa: E402
from whyops_local.demo.fake_provider import FakeUpstream  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def _cpu(pid: int) -> tuple[float, float]:
    """(the server's own CPU seconds, its children's: the writer)."""
    return _cpu_seconds(pid), sum(_cpu_seconds(child) for child in _children(pid))


def _median_ms(url: str, times: int = 7) -> float:
    spent = []
    for _ in range(times):
        started = time.perf_counter()
        httpx.get(url, timeout=60).raise_for_status()
        spent.append((time.perf_counter() - started) * 1000)
    return statistics.median(spent)


def _wait_recorded(server, trace_id: str, events: int) -> dict:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        answer = httpx.get(f"{server.api}/traces/{trace_id}", timeout=60)
        if answer.status_code == 200 and answer.json()["eventCount"] >= events:
            return answer.json()
        time.sleep(0.2)
    raise RuntimeError("the calls were not all recorded")


def _db_bytes(path: Path) -> tuple[int, int, dict[str, int]]:
    """(the file after a checkpoint, the file VACUUMed: what the data needs, its bytes per table and index)."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    on_disk = path.stat().st_size + (Path(f"{path}-wal").stat().st_size if Path(f"{path}-wal").exists() else 0)
    with tempfile.TemporaryDirectory() as scratch:
        db.execute("VACUUM INTO ?", (f"{scratch}/compact.sqlite3",))
        compact = Path(f"{scratch}/compact.sqlite3").stat().st_size
        with sqlite3.connect(f"{scratch}/compact.sqlite3") as copy:
            parts = dict(copy.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC"))
    db.close()
    return on_disk, compact, parts


def measure(root: Path, upstream: FakeUpstream, calls: int) -> dict:
    env = {"WHYOPS_OPENAI_BASE_URL": upstream.url + "/v1"}
    with tempfile.TemporaryDirectory() as data, run_server(Path(data), env=env, root=root) as server:
        trace_id = f"bench-{uuid.uuid4()}"
        time.sleep(1.0)  # the writer process is up
        empty = _db_bytes(server.sqlite_path)[1]
        before = _cpu(server.process.pid)
        sent, distinct = growing_history.run(server.proxy, trace_id, calls)
        trace = _wait_recorded(server, trace_id, 2 * calls)
        own, writer = (after - was for after, was in zip(_cpu(server.process.pid), before, strict=True))
        exchange = trace["events"][-1]["exchangeId"]
        raw_route = f"{server.api}/exchanges/{exchange}/request"
        raw_ok = httpx.get(raw_route).content == sent[-1] if httpx.get(raw_route).status_code == 200 else None
        on_disk, compact, parts = _db_bytes(server.sqlite_path)
        return {
            "distinct": distinct, "sent": sum(map(len, sent)), "on_disk": on_disk, "compact": compact, "parts": parts,
            "empty": empty,
            "server_ms": own * 1000 / calls, "writer_ms": writer * 1000 / calls,
            "page_ms": _median_ms(f"{server.url}/traces/{trace_id}"),
            "api_ms": _median_ms(f"{server.api}/traces/{trace_id}"),
            "exchange_ms": _median_ms(f"{server.api}/exchanges/{exchange}"), "raw_ok": raw_ok,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--before", type=Path, help="another checkout to measure beside this one")
    args = parser.parse_args()
    runs = {}
    with FakeUpstream() as upstream:
        if args.before:
            runs["before"] = measure(args.before.resolve(), upstream, args.calls)
        runs["this"] = measure(ROOT, upstream, args.calls)
    first = next(iter(runs.values()))
    print(f"{args.calls} calls on one trace; sent {first['sent'] / 1e6:.1f} MB of request bodies, "
          f"{first['distinct'] / 1e3:.0f} KB of distinct messages")
    print(f"{'':8} {'db file':>10} {'vacuumed':>10} {'x distinct':>10} {'server CPU/call':>16} {'writer CPU/call':>16}"
          f" {'trace page':>11} {'trace API':>10} {'exchange':>9}  raw request == sent")
    for name, r in runs.items():
        print(f"{name:8} {r['on_disk'] / 1e6:>8.2f}MB {r['compact'] / 1e6:>8.2f}MB {r['compact'] / r['distinct']:>9.2f}x"
              f" {r['server_ms']:>14.2f}ms {r['writer_ms']:>14.2f}ms {r['page_ms']:>9.1f}ms {r['api_ms']:>8.1f}ms"
              f" {r['exchange_ms']:>7.1f}ms  {r['raw_ok']}")
    print("target: vacuumed size <= 3x the distinct message bytes")
    for name, r in runs.items():  # a page per table and index, whatever the database holds
        print(f"{name}: of which an empty database's {r['empty'] / 1e3:.0f} KB; the rest is"
              f" {(r['compact'] - r['empty']) / r['distinct']:.1f}x the distinct message bytes")
    for name, r in runs.items():
        print(f"{name}: where the vacuumed bytes go (dbstat, KB): "
              + ", ".join(f"{table} {size / 1e3:.0f}" for table, size in list(r["parts"].items())[:10]))


if __name__ == "__main__":
    main()
